//! The controller lease key (KV bucket, leader reads). Decisions are made by
//! `bsfg_core::lease::LeaseState`; this type only reads and writes.

use crate::answer::{Meaning, meaning};
use crate::errors::{internal, unavailable};
use crate::kv::{CasOutcome, cas_result, leader_read_bucket};
use crate::substrate::Substrate;
use async_nats::jetstream::kv;
use bsfg_core::BsfgError;
use bsfg_core::lease::{LeaseRecord, Observation};
use std::path::Path;
use std::time::Duration;

const LEASE_KEY: &str = "controller";

/// The host's monotonic clock (`CLOCK_MONOTONIC`), as a duration since boot.
///
/// Every lease decision uses this clock. Unlike `std::time::Instant`, its
/// readings are comparable between processes on one host, which lets the
/// gate agent hand its lease observation to the controller it starts.
pub fn monotonic_now() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What an observer on this host has seen of the lease: a revision and the
/// monotonic time it was first seen. The gate agent writes it continuously;
/// the controller it starts seeds its own [`bsfg_core::lease::LeaseState`]
/// from it, so a lease that the agent has already watched expire is taken at
/// once instead of after another full TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseSighting {
    /// `None`: the key was absent.
    pub revision: Option<u64>,
    /// `monotonic_now()` in milliseconds when this revision was first seen.
    pub first_seen_monotonic_ms: u64,
}

impl LeaseSighting {
    /// Writes the sighting atomically (temp file + rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self)?)?;
        // Readable by the controller, which runs as another user; not secret.
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(tmp, path)
    }

    /// Reads a sighting; `None` if the file is missing or unreadable.
    pub fn read(path: &Path) -> Option<LeaseSighting> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    pub fn first_seen(&self) -> Duration {
        Duration::from_millis(self.first_seen_monotonic_ms)
    }
}

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
            Err(e) => match meaning(&e) {
                // Someone wrote the key since: it is not ours to delete.
                Meaning::SequenceMismatch | Meaning::ExpectationPending => Ok(false),
                _ => Err(unavailable("releasing the lease", e)),
            },
        }
    }
}
