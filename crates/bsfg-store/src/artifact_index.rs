//! The zone-wide artifact index: which blobs exist, whatever host stores them.

use crate::errors::{internal, unavailable};
use crate::kv::{CasOutcome, cas_result, leader_read_bucket};
use crate::substrate::Substrate;
use async_nats::jetstream::kv;
use bsfg_core::BsfgError;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

pub const ARTIFACT_BUCKET: &str = "bsfg_artifacts";

/// What the index knows about one artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub bucket: String,
    pub key: String,
    /// `sha256:<hex>`
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub created_at_unix_ms: i64,
    /// Host whose controller stored the blob first.
    pub stored_by: String,
    /// The peer zone the artifact was replicated from; `None` when produced here.
    #[serde(default)]
    pub origin_zone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexOutcome {
    /// Recorded now.
    Created,
    /// Already recorded; the stored record is returned (same or other digest).
    Existing(ArtifactRecord),
}

#[derive(Clone)]
pub struct ArtifactIndex {
    kv: kv::Store,
}

impl std::fmt::Debug for ArtifactIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtifactIndex")
    }
}

/// KV key of an artifact: object keys may be long and contain `/`, so the
/// key part is hashed; the record carries the real key.
fn index_key(bucket: &str, key: &str) -> String {
    let token = bsfg_core::identity::message_token(key);
    format!("{bucket}.{token}")
}

impl ArtifactIndex {
    pub async fn open(substrate: &Substrate) -> Result<ArtifactIndex, BsfgError> {
        let kv = leader_read_bucket(substrate, ARTIFACT_BUCKET, "BSFG artifact index").await?;
        Ok(ArtifactIndex { kv })
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<ArtifactRecord>, BsfgError> {
        let entry = self
            .kv
            .get(index_key(bucket, key))
            .await
            .map_err(|e| unavailable("reading the artifact index", e))?;
        entry
            .map(|bytes| {
                serde_json::from_slice(&bytes)
                    .map_err(|e| internal("decoding an artifact record", e))
            })
            .transpose()
    }

    /// Records the artifact unless the bucket/key is already known.
    pub async fn record_if_absent(
        &self,
        record: &ArtifactRecord,
    ) -> Result<IndexOutcome, BsfgError> {
        let body =
            serde_json::to_vec(record).map_err(|e| internal("encoding an artifact record", e))?;
        for _ in 0..3 {
            let r = crate::kv::write_with_retry(|| {
                self.kv
                    .create(index_key(&record.bucket, &record.key), body.clone().into())
            })
            .await;
            match cas_result(r, "recording an artifact")? {
                CasOutcome::Written(_) => return Ok(IndexOutcome::Created),
                CasOutcome::Conflict => {
                    if let Some(existing) = self.get(&record.bucket, &record.key).await? {
                        return Ok(IndexOutcome::Existing(existing));
                    }
                }
            }
        }
        Err(unavailable(
            "recording an artifact",
            "the key kept changing",
        ))
    }

    /// Every artifact the index knows (for rehydration and reports).
    ///
    /// The keys come from the stream's subject list, which its leader
    /// answers. `kv::Store::keys` uses an ephemeral consumer instead, whose
    /// "nothing pending" can be taken on a replica that has not applied the
    /// latest writes: on a loaded R3 cluster it listed nothing right after
    /// an acknowledged put, and a listing that is short without an error is
    /// taken for complete by the rehydrator.
    pub async fn list(&self) -> Result<Vec<ArtifactRecord>, BsfgError> {
        let subjects: Vec<(String, usize)> = self
            .kv
            .stream
            .info_with_subjects(format!("{}>", self.kv.prefix))
            .await
            .map_err(|e| unavailable("listing artifacts", e))?
            .try_collect()
            .await
            .map_err(|e| unavailable("listing artifacts", e))?;
        let keys: Vec<String> = subjects
            .into_iter()
            .filter_map(|(subject, _)| {
                subject
                    .strip_prefix(self.kv.prefix.as_str())
                    .map(str::to_owned)
            })
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(bytes) = self
                .kv
                .get(k)
                .await
                .map_err(|e| unavailable("reading the artifact index", e))?
            {
                out.push(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| internal("decoding an artifact record", e))?,
                );
            }
        }
        Ok(out)
    }
}
