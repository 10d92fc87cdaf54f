//! The controller lease key (KV bucket, leader reads). Decisions are made by
//! `bsfg_core::lease::LeaseState`; this type only reads and writes.

use crate::errors::{internal, unavailable};
use crate::kv::{CasOutcome, cas_result, leader_read_bucket};
use crate::substrate::Substrate;
use async_nats::jetstream::kv;
use bsfg_core::BsfgError;
use bsfg_core::lease::{LeaseRecord, Observation};

const LEASE_KEY: &str = "controller";

/// Outcome of a lease write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseWrite {
    Written { revision: u64 },
    Conflict,
}

#[derive(Clone)]
pub struct LeaseStore {
    kv: kv::Store,
}

impl std::fmt::Debug for LeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeaseStore")
    }
}

impl LeaseStore {
    pub async fn open(substrate: &Substrate, bucket: &str) -> Result<LeaseStore, BsfgError> {
        let kv = leader_read_bucket(substrate, bucket, "BSFG zone controller lease").await?;
        Ok(LeaseStore { kv })
    }

    /// Reads the lease key from the bucket's leader.
    pub async fn read(&self) -> Result<Observation, BsfgError> {
        let entry = self
            .kv
            .entry(LEASE_KEY)
            .await
            .map_err(|e| unavailable("reading the lease", e))?;
        Ok(match entry {
            None => Observation::Vacant { revision: None },
            Some(e) if e.operation != kv::Operation::Put => Observation::Vacant {
                revision: Some(e.revision),
            },
            Some(e) => {
                let record: LeaseRecord = serde_json::from_slice(&e.value)
                    .map_err(|err| internal("decoding the lease", err))?;
                Observation::Held {
                    record,
                    revision: e.revision,
                }
            }
        })
    }

    /// Creates the key (when absent or deleted) or CAS-updates it on `expected_revision`.
    pub async fn write(
        &self,
        record: &LeaseRecord,
        expected_revision: Option<u64>,
    ) -> Result<LeaseWrite, BsfgError> {
        let body = serde_json::to_vec(record).map_err(|e| internal("encoding the lease", e))?;
        let outcome = match expected_revision {
            None => cas_result(
                self.kv.create(LEASE_KEY, body.into()).await,
                "taking the lease",
            )?,
            Some(rev) => cas_result(
                self.kv.update(LEASE_KEY, body.into(), rev).await,
                "writing the lease",
            )?,
        };
        Ok(match outcome {
            CasOutcome::Written(revision) => LeaseWrite::Written { revision },
            CasOutcome::Conflict => LeaseWrite::Conflict,
        })
    }

    /// Deletes the key if it is still at `revision` (release on demotion).
    pub async fn release(&self, revision: u64) -> Result<bool, BsfgError> {
        match self
            .kv
            .delete_expect_revision(LEASE_KEY, Some(revision))
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if e.to_string().contains("wrong last sequence") => Ok(false),
            Err(e) => Err(unavailable("releasing the lease", e)),
        }
    }
}
