//! A page pulled from a peer zone (`FetchFactsResponse`, as tonic decodes
//! it), triaged by the replicator before anything is stored: a hostile peer.
//!
//! Mode byte: bit 0 selects the small limits.

use super::{assert_rejection, fact::check_fact, fact::small_limits, mode};
use crate::Outcome;
use bsfg_controller::replicator::page::{self, Admission};
use bsfg_core::{Limits, Reason, fact};
use bsfg_proto::v1::FetchFactsResponse;
use prost::Message;

/// The peer zone the seeds' facts come from.
pub const PEER: &str = "plant-b";

pub fn run(data: &[u8]) -> Outcome {
    let (m, bytes) = mode(data);
    let Ok(page) = FetchFactsResponse::decode(bytes) else {
        return Outcome::Rejected;
    };
    let limits = if m & 1 == 0 {
        Limits::default()
    } else {
        small_limits()
    };
    let plan = page::plan(PEER, &page, &limits);
    assert_eq!(plan.facts.len(), page.facts.len(), "one admission per fact");
    assert_eq!(plan.confirm, page.facts.last().map(|f| f.offset));
    let mut stored = 0;
    for (admission, sent) in plan.facts.iter().zip(&page.facts) {
        match admission {
            Admission::Store {
                offset,
                fact: f,
                artifact,
            } => {
                stored += 1;
                assert_eq!(*offset, sent.offset);
                assert!(sent.fact.as_ref() == Some(*f));
                let env = f.envelope.as_ref().expect("stored facts have envelopes");
                assert_eq!(env.from_zone, PEER, "stored a fact another zone sent");
                assert_eq!(*artifact, env.artifact.as_ref());
                fact::validate(f, &limits).expect("stored facts are valid here");
                assert_eq!(check_fact(f, &limits), Outcome::Accepted);
            }
            Admission::Reject { offset, error } => {
                assert_eq!(*offset, sent.offset);
                assert_rejection(
                    error,
                    &[
                        Reason::InvalidFact,
                        Reason::FactTooLarge,
                        Reason::ZoneMismatch,
                    ],
                );
            }
        }
    }
    if let Some(newest) = plan.newest_stored_at_unix_ms {
        for now in [0, 1_780_000_000_000, i64::MIN, i64::MAX, newest] {
            let lag = page::lag_seconds(now, newest);
            assert!(lag.is_finite() && lag >= 0.0, "lag {lag} at now={now}");
        }
    }
    if stored > 0 {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}
