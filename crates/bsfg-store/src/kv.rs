//! KV buckets whose reads go to the RAFT leader.
//!
//! async-nats creates KV buckets with `allow_direct = true`, which lets any
//! replica answer reads — a lagging follower can return a stale cursor or
//! lease. We create the bucket's stream ourselves with the same layout
//! (`KV_<bucket>`, subjects `$KV.<bucket>.>`) but `allow_direct = false`, then
//! open it as a normal KV store; its reads then use the leader-served API.

use crate::errors::unavailable;
use crate::substrate::Substrate;
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use bsfg_core::BsfgError;

pub(crate) fn is_stream_not_found(kind: &GetStreamErrorKind) -> bool {
    matches!(kind, GetStreamErrorKind::JetStream(e) if e.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Opens `bucket`, creating it (leader reads, `history` 1, zone replicas) if missing.
pub(crate) async fn leader_read_bucket(
    substrate: &Substrate,
    bucket: &str,
    description: &str,
) -> Result<kv::Store, BsfgError> {
    let js = substrate.jetstream();
    let name = format!("KV_{bucket}");
    match js.get_stream(&name).await {
        Ok(_) => {}
        Err(e) if is_stream_not_found(&e.kind()) => {
            let config = stream::Config {
                name: name.clone(),
                description: Some(description.to_owned()),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                storage: StorageType::File,
                num_replicas: substrate.replicas(),
                allow_rollup: true,
                deny_delete: true,
                allow_direct: false,
                discard: DiscardPolicy::New,
                ..Default::default()
            };
            tracing::info!(
                bucket,
                replicas = substrate.replicas(),
                "creating KV bucket"
            );
            if let Err(e) = js.create_stream(config).await {
                // Another process may have created it meanwhile; the open below decides.
                tracing::debug!(bucket, error = %e, "create bucket stream");
            }
        }
        Err(e) => return Err(unavailable(&format!("looking up bucket {bucket}"), e)),
    }
    js.get_key_value(bucket)
        .await
        .map_err(|e| unavailable(&format!("opening bucket {bucket}"), e))
}

/// Outcome of a compare-and-swap write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CasOutcome {
    Written(u64),
    Conflict,
}

/// Maps a KV create/update error: a wrong revision is a conflict, the rest is unavailability.
pub(crate) fn cas_result<E: std::fmt::Display>(
    r: Result<u64, E>,
    what: &str,
) -> Result<CasOutcome, BsfgError> {
    match r {
        Ok(rev) => Ok(CasOutcome::Written(rev)),
        Err(e) => {
            let text = e.to_string();
            if text.contains("wrong last sequence")
                || text.contains("key already exists")
                || text.contains("10071")
            {
                Ok(CasOutcome::Conflict)
            } else {
                Err(unavailable(what, text))
            }
        }
    }
}
