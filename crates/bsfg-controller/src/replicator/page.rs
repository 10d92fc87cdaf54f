//! What a page from a peer zone asks of this zone, decided before any I/O.
//!
//! A peer is another site's controller: its page may be broken or hostile.
//! [`plan`] triages every fact of it, so the replicator stores only facts this
//! zone's own rules accept (the peer's `from_zone`, this zone's grammar and
//! limits) and fetches artifacts only for those.

use bsfg_client::pb::{ArtifactRef, Fact, FetchFactsResponse};
use bsfg_core::{BsfgError, Limits, Reason, fact};

/// One fact of a page, triaged.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission<'a> {
    /// Valid and from the peer: store it (after its artifact, if it has one).
    Store {
        offset: u64,
        fact: &'a Fact,
        artifact: Option<&'a ArtifactRef>,
    },
    /// Never materialised here; counted and confirmed with the page.
    Reject { offset: u64, error: BsfgError },
}

/// A page, triaged.
#[derive(Debug, Clone, PartialEq)]
pub struct PagePlan<'a> {
    /// One per fact of the page, in page order.
    pub facts: Vec<Admission<'a>>,
    /// The offset to confirm once the page is handled: the page's last.
    pub confirm: Option<u64>,
    /// The newest `stored_at_unix_ms` of the page (the peer's clock).
    pub newest_stored_at_unix_ms: Option<i64>,
}

/// Triages a page pulled from `peer`.
pub fn plan<'a>(peer: &str, page: &'a FetchFactsResponse, limits: &Limits) -> PagePlan<'a> {
    let facts = page
        .facts
        .iter()
        .map(|stored| match admit(peer, stored.fact.as_ref(), limits) {
            Ok(fact) => Admission::Store {
                offset: stored.offset,
                fact,
                artifact: fact.envelope.as_ref().and_then(|e| e.artifact.as_ref()),
            },
            Err(error) => Admission::Reject {
                offset: stored.offset,
                error,
            },
        })
        .collect();
    PagePlan {
        facts,
        confirm: page.facts.last().map(|f| f.offset),
        newest_stored_at_unix_ms: page.facts.iter().map(|f| f.stored_at_unix_ms).max(),
    }
}

/// Whether this zone accepts `fact` from `peer`: this zone's grammar and
/// limits, and the peer may only forward facts from its own zone.
pub fn admit<'a>(
    peer: &str,
    fact: Option<&'a Fact>,
    limits: &Limits,
) -> Result<&'a Fact, BsfgError> {
    let fact = fact.ok_or_else(|| Reason::InvalidFact.err("the stored fact is empty"))?;
    fact::validate(fact, limits)?;
    let from = &fact.envelope.as_ref().expect("validated").from_zone;
    if from != peer {
        return Err(
            Reason::ZoneMismatch.err(format!("a fact from peer {peer} says from_zone {from:?}"))
        );
    }
    Ok(fact)
}

/// Replication lag in seconds: how long ago (by our clock) the newest fact
/// of a page was stored at the peer. Never negative, whatever the peer's
/// clock or its timestamps say.
pub fn lag_seconds(now_unix_ms: i64, newest_stored_at_unix_ms: i64) -> f64 {
    now_unix_ms.saturating_sub(newest_stored_at_unix_ms).max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use bsfg_client::pb::{Envelope, StoredFact};

    fn fact(id: &str, from: &str) -> Fact {
        Fact {
            envelope: Some(Envelope {
                message_id: id.into(),
                from_zone: from.into(),
                to_zone: "here".into(),
                produced_at_unix_ms: 1,
                ..Default::default()
            }),
            subject: "order:1".into(),
            predicate: "is".into(),
            object_json: "{}".into(),
        }
    }

    fn stored(offset: u64, fact: Option<Fact>, at: i64) -> StoredFact {
        StoredFact {
            offset,
            fact,
            stored_at_unix_ms: at,
        }
    }

    #[test]
    fn a_page_is_triaged_fact_by_fact_and_confirmed_at_its_last_offset() {
        let mut bad_grammar = fact("m-3", "peer");
        bad_grammar.subject = "no subject".into();
        let page = FetchFactsResponse {
            facts: vec![
                stored(7, Some(fact("m-1", "peer")), 100),
                stored(8, Some(fact("m-2", "elsewhere")), 300),
                stored(9, Some(bad_grammar), 200),
                stored(10, None, 50),
            ],
            backlog: 0,
        };
        let p = plan("peer", &page, &Limits::default());
        assert_eq!(p.confirm, Some(10));
        assert_eq!(p.newest_stored_at_unix_ms, Some(300));
        assert!(matches!(p.facts[0], Admission::Store { offset: 7, .. }));
        let reasons: Vec<_> = p.facts[1..]
            .iter()
            .map(|a| match a {
                Admission::Reject { error, .. } => error.reason,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            [
                Reason::ZoneMismatch,
                Reason::InvalidFact,
                Reason::InvalidFact
            ]
        );
    }

    #[test]
    fn an_empty_page_confirms_nothing() {
        let empty = FetchFactsResponse::default();
        let p = plan("peer", &empty, &Limits::default());
        assert_eq!(p.confirm, None);
        assert!(p.facts.is_empty());
    }

    #[test]
    fn lag_survives_any_peer_timestamp() {
        assert_eq!(lag_seconds(10_000, 7_500), 2.5);
        assert_eq!(lag_seconds(10_000, 20_000), 0.0);
        assert_eq!(lag_seconds(10_000, i64::MIN), i64::MAX as f64 / 1000.0);
        assert_eq!(lag_seconds(i64::MIN, i64::MAX), 0.0);
    }
}
