//! KV buckets whose reads go to the RAFT leader.
//!
//! async-nats creates KV buckets with `allow_direct = true`, which lets any
//! replica answer reads — a lagging follower can return a stale cursor or
//! lease. We create the bucket's stream ourselves with the same layout
//! (`KV_<bucket>`, subjects `$KV.<bucket>.>`) but `allow_direct = false`, then
//! open it as a normal KV store; its reads then use the leader-served API.

use crate::answer::{Answer, Meaning, meaning};
use crate::errors::{internal, unavailable};
use crate::substrate::Substrate;
use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use async_nats::jetstream::{ErrorCode, context::GetStreamError};
use bsfg_core::BsfgError;
use bsfg_core::retry::Backoff;

/// The stream lookup found no such stream (10059).
pub(crate) fn is_stream_not_found(e: &GetStreamError) -> bool {
    Answer::of(e) == Answer::Api(ErrorCode::STREAM_NOT_FOUND)
}

/// Waits until a replicated stream has an elected leader, so the first write
/// after creation does not find "no stream for subject". Single servers have
/// no RAFT group and return at once.
pub(crate) async fn wait_for_leader(substrate: &Substrate, stream: &str) -> Result<(), BsfgError> {
    let deadline = tokio::time::Instant::now()
        + substrate
            .request_timeout()
            .max(std::time::Duration::from_secs(10));
    loop {
        let info = match substrate.jetstream().get_stream(stream).await {
            Ok(mut s) => s.info().await.cloned().ok(),
            Err(_) => None,
        };
        if let Some(info) = info {
            let led = match &info.cluster {
                Some(c) => {
                    c.leader.is_some() || info.config.num_replicas <= 1 && c.replicas.is_empty()
                }
                None => true,
            };
            if led {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(unavailable(
                &format!("stream {stream}"),
                "no RAFT leader elected",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
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
        Err(e) if is_stream_not_found(&e) => {
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
    wait_for_leader(substrate, &name).await?;
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

/// Runs a KV write, retrying for up to ~1.5 s while it was not carried out
/// (no server answers for the bucket: fresh cluster routes, a leader change;
/// or another write with an expected revision is in flight on the key).
pub(crate) async fn write_with_retry<F, Fut, E>(mut write: F) -> Result<u64, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, E>>,
    E: std::error::Error + 'static,
{
    let mut backoff = Backoff::new(
        std::time::Duration::from_millis(5),
        std::time::Duration::from_millis(400),
    );
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
    loop {
        match write().await {
            Err(e)
                if matches!(meaning(&e), Meaning::NotDone)
                    && tokio::time::Instant::now() < give_up =>
            {
                tokio::time::sleep(backoff.next_delay(rand::random())).await;
            }
            other => return other,
        }
    }
}

/// Maps a KV create/update outcome: a wrong revision (or a write of the key
/// still in flight, which moves it) is a conflict; the rest is unavailability.
pub(crate) fn cas_result<E: std::error::Error + 'static>(
    r: Result<u64, E>,
    what: &str,
) -> Result<CasOutcome, BsfgError> {
    match r {
        Ok(rev) => Ok(CasOutcome::Written(rev)),
        Err(e) => match meaning(&e) {
            Meaning::SequenceMismatch | Meaning::ExpectationPending => Ok(CasOutcome::Conflict),
            Meaning::Refused => Err(internal(what, e)),
            _ => Err(unavailable(what, e)),
        },
    }
}
