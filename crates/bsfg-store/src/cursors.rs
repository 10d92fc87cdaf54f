//! Consumer cursors: one KV key per consumer, advanced by compare-and-swap.

use crate::errors::{internal, unavailable};
use crate::kv::{CasOutcome, cas_result, leader_read_bucket};
use crate::substrate::Substrate;
use async_nats::jetstream::kv;
use bsfg_core::BsfgError;

pub const CURSOR_BUCKET: &str = "bsfg_cursors";

/// A cursor and the KV revision it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredCursor {
    pub offset: u64,
    pub revision: u64,
}

/// Outcome of an advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorAdvance {
    Advanced(StoredCursor),
    /// Somebody else moved the cursor since `revision` was read: re-read and decide again.
    Conflict,
}

#[derive(Clone)]
pub struct CursorStore {
    kv: kv::Store,
}

impl std::fmt::Debug for CursorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorStore")
    }
}

impl CursorStore {
    pub async fn open(substrate: &Substrate) -> Result<CursorStore, BsfgError> {
        let kv = leader_read_bucket(substrate, CURSOR_BUCKET, "BSFG consumer cursors").await?;
        Ok(CursorStore { kv })
    }

    /// The stored cursor of `consumer`, if it was ever initialised.
    pub async fn load(&self, consumer: &str) -> Result<Option<StoredCursor>, BsfgError> {
        let entry = self
            .kv
            .entry(consumer)
            .await
            .map_err(|e| unavailable("reading a cursor", e))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let text =
                    std::str::from_utf8(&e.value).map_err(|e| internal("decoding a cursor", e))?;
                let offset = text
                    .trim()
                    .parse::<u64>()
                    .map_err(|e| internal("decoding a cursor", e))?;
                Ok(Some(StoredCursor {
                    offset,
                    revision: e.revision,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Returns the stored cursor, or stores `initial` if there is none yet.
    pub async fn load_or_init(
        &self,
        consumer: &str,
        initial: u64,
    ) -> Result<StoredCursor, BsfgError> {
        for _ in 0..3 {
            if let Some(c) = self.load(consumer).await? {
                return Ok(c);
            }
            let r = crate::kv::write_with_retry(|| {
                self.kv.create(consumer, initial.to_string().into())
            })
            .await;
            if let CasOutcome::Written(revision) = cas_result(r, "initialising a cursor")? {
                return Ok(StoredCursor {
                    offset: initial,
                    revision,
                });
            }
        }
        Err(unavailable(
            "initialising a cursor",
            "the key kept changing",
        ))
    }

    /// Moves `consumer`'s cursor to `offset` if it is still at `expected_revision`.
    pub async fn advance(
        &self,
        consumer: &str,
        offset: u64,
        expected_revision: u64,
    ) -> Result<CursorAdvance, BsfgError> {
        let r = crate::kv::write_with_retry(|| {
            self.kv
                .update(consumer, offset.to_string().into(), expected_revision)
        })
        .await;
        Ok(match cas_result(r, "advancing a cursor")? {
            CasOutcome::Written(revision) => {
                CursorAdvance::Advanced(StoredCursor { offset, revision })
            }
            CasOutcome::Conflict => CursorAdvance::Conflict,
        })
    }
}
