//! Cross-zone replay under failover: the simulated zone is the
//! RECEIVING zone of a peer node ([`crate::zone::peer`]); the load generator
//! appends facts at the peer, the zone's active controller pulls them into
//! its forward buffer, and alpha crashes while it does.
//!
//! What the drill proves: the replicator follows the lease — it stops with
//! alpha and resumes on beta from the peer's durable cursor — and the
//! boundary holds: every fact the peer acknowledged is in the forward buffer
//! exactly once (read back through the VIP by the forward consumer's
//! reader), never two controllers serving, and beta's replicator ends
//! `caught_up` with backlog 0. What it measures (never asserts): the
//! replication stall (crash → first fact stored in the forward buffer
//! again) and the per-fact lag (stored in the forward buffer − stored at
//! the peer, both JetStream timestamps on this machine's clock), before the
//! crash, for facts the peer stored during the stall, and after it.

use super::ctx::hosts;
use super::metrics::ms;
use super::outcome::Outcome;
use super::scenarios::{crash, roles, serves};
use super::{Ctx, PROMOTION_TIMEOUT};
use crate::zone::Zone;
use anyhow::{Context, Result};
use bsfg_mgmt::controller::{PeerReplication, PeerState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Facts the active controller must have replicated before the crash.
pub const REPLICATED_BEFORE_FAULT: u64 = 50;
/// How long the drill looks for a moment with a page in flight on alpha.
pub const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);
/// How long the peer keeps producing after replication resumed on beta.
pub const KEEP_PRODUCING: Duration = Duration::from_secs(10);

/// Lag of the facts of one phase, seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lag {
    pub facts: usize,
    pub p50_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

/// The `replication` object of a replication drill's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicationReport {
    /// The peer zone and its endpoint.
    pub peer: String,
    pub endpoint: String,
    /// The consumer on the peer the zone pulls from.
    pub consumer: String,
    /// The zone's consumer of its forward buffer (the read-back).
    pub forward_consumer: String,
    /// Acknowledged facts found in the peer's own store buffer.
    pub peer_stored: usize,
    /// Facts found in the zone's forward buffer.
    pub forwarded: usize,
    /// Crash → the first fact stored in the forward buffer after it.
    pub stall_s: Option<f64>,
    /// Crash → the new active controller's `/status` first showed a
    /// replicated fact (polled every ~100 ms; coarser than `stall_s`).
    pub resumed_in_status_s: Option<f64>,
    /// Longest time between two consecutive facts stored in the forward buffer.
    pub longest_gap_s: Option<f64>,
    /// Lag of facts the peer stored before the crash.
    pub lag_before_fault: Option<Lag>,
    /// Lag of facts the peer stored between the crash and the resumption.
    pub lag_during_stall: Option<Lag>,
    /// Lag of facts the peer stored after replication resumed.
    pub lag_after_resume: Option<Lag>,
    /// The active replicator's `/status` entry just before the crash.
    pub status_before_fault: Option<PeerReplication>,
    /// The new active replicator's `/status` entry at the end.
    pub status_at_end: Option<PeerReplication>,
}

/// What the scenario observed from `/status`, for the report.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub resumed_in_status_s: Option<f64>,
    pub before_fault: Option<PeerReplication>,
    pub at_end: Option<PeerReplication>,
}

/// The nearest-rank percentile `q` (0..=1) of sorted `v`.
fn percentile(v: &[f64], q: f64) -> f64 {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn lag(mut v: Vec<f64>) -> Option<Lag> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Lag {
        facts: v.len(),
        p50_s: ms(percentile(&v, 0.5)),
        p99_s: ms(percentile(&v, 0.99)),
        max_s: ms(v[v.len() - 1]),
    })
}

/// The timing figures from the two buffers' store times (Unix ms, by
/// message id): `peer` as the peer stored them, `forwarded` as the zone's
/// forward buffer did. Ids missing from either side are left out (the
/// read-back counts them as lost).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub stall_s: Option<f64>,
    pub longest_gap_s: Option<f64>,
    pub before: Option<Lag>,
    pub during: Option<Lag>,
    pub after: Option<Lag>,
}

pub fn figures(
    peer: &BTreeMap<String, i64>,
    forwarded: &BTreeMap<String, i64>,
    fault_unix_ms: Option<i64>,
) -> Figures {
    let mut times: Vec<i64> = forwarded.values().copied().collect();
    times.sort_unstable();
    let longest_gap_s = times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .map(|g| ms(g as f64 / 1000.0));
    let resumed = fault_unix_ms.and_then(|f| times.iter().copied().find(|t| *t >= f));
    let stall_s = fault_unix_ms
        .zip(resumed)
        .map(|(f, r)| ms((r - f) as f64 / 1000.0));
    let (mut before, mut during, mut after) = (Vec::new(), Vec::new(), Vec::new());
    for (id, stored) in peer {
        let Some(fwd) = forwarded.get(id) else {
            continue;
        };
        let l = (fwd - stored) as f64 / 1000.0;
        match (fault_unix_ms, resumed) {
            (Some(f), _) if *stored < f => before.push(l),
            (Some(_), Some(r)) if *stored < r => during.push(l),
            (Some(_), _) => after.push(l),
            (None, _) => before.push(l),
        }
    }
    Figures {
        stall_s,
        longest_gap_s,
        before: lag(before),
        during: lag(during),
        after: lag(after),
    }
}

/// Whether a replicator's `/status` entry shows it has taken everything
/// the peer had: `caught_up`, backlog 0, no error.
pub fn drained(r: &PeerReplication) -> Result<String, String> {
    if r.state == PeerState::CaughtUp && r.backlog == 0 && r.last_error.is_none() {
        Ok(format!(
            "{} caught_up, backlog 0, {} replicated by this controller, confirmed offset {}, lag {:.3} s",
            r.peer, r.replicated, r.confirmed_offset, r.lag_seconds
        ))
    } else {
        Err(format!(
            "{} {}, backlog {}, last error {}",
            r.peer,
            r.state,
            r.backlog,
            r.last_error.as_deref().unwrap_or("none")
        ))
    }
}

/// Whether a replicator pulls: replicating or caught up with at least
/// `min` facts stored by this controller.
pub fn pulling(r: &PeerReplication, min: u64) -> bool {
    matches!(r.state, PeerState::Replicating | PeerState::CaughtUp) && r.replicated >= min
}

async fn peer_status(z: &Zone, host: &str, peer: &str) -> Option<PeerReplication> {
    z.controller_status(host).await.ok()?.peer(peer).cloned()
}

/// `replication-alpha-crash`: alpha of the receiving zone crashes while it
/// pulls from the peer.
pub(super) async fn alpha_crash(z: &Zone, c: &mut Ctx) -> Result<()> {
    let (a, b, _) = roles(z);
    let v = c.samples();
    let peer = c
        .peer
        .clone()
        .context("the replication drill runs with a peer node")?;
    let pz = peer.plan.zone.clone();
    c.expected = Outcome {
        summary: format!(
            "the receiving zone's Alpha crashes during replication from {pz} → VIP, \
             controller and replication move to Beta, which resumes from the peer's cursor; \
             every fact {pz} acknowledged is in the forward buffer exactly once"
        ),
        vip: hosts(&[&b]),
        serving: hosts(&[&b]),
    };
    c.target = Some(b.clone());
    let pulling_on_a = c
        .wait_for(
            &format!("{a}'s controller replicates from {pz} before the fault"),
            PROMOTION_TIMEOUT,
            || async {
                let r = peer_status(z, &a, &pz).await?;
                pulling(&r, REPLICATED_BEFORE_FAULT).then(|| {
                    format!(
                        "{} {}, {} replicated, backlog {}",
                        r.peer, r.state, r.replicated, r.backlog
                    )
                })
            },
        )
        .await;
    if !pulling_on_a {
        return Ok(());
    }
    c.check(
        &format!("{b} runs no controller before the fault (only the active host replicates)"),
        z.controller_pids(&b).is_empty(),
        format!("controller pids on {b}: {:?}", z.controller_pids(&b)),
    );
    // Crash while a page is in flight if we can: right after a `/status`
    // read showing `replicating` (the last round had facts; the next one
    // starts at once). Best effort: at a low rate the replicator may be
    // idle between polls (`caught_up`), which is recorded.
    let deadline = tokio::time::Instant::now() + IN_FLIGHT_WAIT;
    loop {
        c.replication.before_fault = peer_status(z, &a, &pz).await;
        let replicating = c
            .replication
            .before_fault
            .as_ref()
            .is_some_and(|r| r.state == PeerState::Replicating);
        if replicating || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let state = c
        .replication
        .before_fault
        .as_ref()
        .map_or("unknown".to_owned(), |r| {
            format!("{}, {} replicated", r.state, r.replicated)
        });
    c.event(format!("{a}'s replicator just before the crash: {state}"));
    crash(
        z,
        c,
        &[&a],
        format!("{a} crashes during replication: cable pulled, every process killed"),
    )?;
    let fault = c.fault_at.context("the crash marks the fault")?;
    c.wait_for(
        &format!("{b} holds the VIP and serves"),
        PROMOTION_TIMEOUT,
        || serves(&v, &b),
    )
    .await;
    let resumed = c
        .wait_for(
            &format!("replication from {pz} resumes on {b}"),
            PROMOTION_TIMEOUT,
            || async {
                let r = peer_status(z, &b, &pz).await?;
                pulling(&r, 1)
                    .then(|| format!("{} {}, {} replicated", r.peer, r.state, r.replicated))
            },
        )
        .await;
    if resumed {
        c.replication.resumed_in_status_s = Some(ms((c.elapsed() - fault).as_secs_f64()));
        c.event(format!("{b} replicates from {pz}"));
    }
    let from = c.elapsed();
    c.hold(
        &format!("{b} alone serves while {pz} keeps producing"),
        KEEP_PRODUCING,
        || super::scenarios::only_on(&v, &b),
    )
    .await;
    let after = c.loads().acked_after(from);
    c.check(
        &format!("{pz} kept acknowledging appends after the failover"),
        after > 0,
        format!("{after} appends acknowledged in {KEEP_PRODUCING:?}"),
    );
    c.stop_load().await;
    c.event(format!("the producers at {pz} stopped"));
    // A status read right after the last acknowledgement may describe a
    // round from before it: let the replicator poll (25 ms idle) first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.wait_for(
        &format!("{b}'s replicator has everything {pz} stored: caught_up, backlog 0"),
        PROMOTION_TIMEOUT,
        || async { drained(&peer_status(z, &b, &pz).await?).ok() },
    )
    .await;
    c.replication.at_end = peer_status(z, &b, &pz).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: &[(&str, i64)]) -> BTreeMap<String, i64> {
        v.iter().map(|(k, t)| ((*k).to_owned(), *t)).collect()
    }

    #[test]
    fn stall_and_lag_per_phase() {
        // The peer stores a fact every 100 ms; the crash at 1_000 stops
        // replication until 2_500, when the backlog arrives at once.
        let peer = map(&[
            ("a", 0),
            ("b", 100),
            ("c", 900),
            ("d", 1_100),
            ("e", 2_000),
            ("f", 2_600),
        ]);
        let fwd = map(&[
            ("a", 30),
            ("b", 140),
            ("c", 950),
            ("d", 2_500),
            ("e", 2_510),
            ("f", 2_620),
        ]);
        let f = figures(&peer, &fwd, Some(1_000));
        assert_eq!(f.stall_s, Some(1.5));
        assert_eq!(f.longest_gap_s, Some(1.55));
        let before = f.before.unwrap();
        assert_eq!((before.facts, before.p50_s, before.max_s), (3, 0.04, 0.05));
        let during = f.during.unwrap();
        assert_eq!((during.facts, during.p50_s, during.max_s), (2, 0.51, 1.4));
        let after = f.after.unwrap();
        assert_eq!((after.facts, after.p99_s), (1, 0.02));
    }

    #[test]
    fn missing_facts_and_no_fault() {
        let peer = map(&[("a", 0), ("b", 100)]);
        let fwd = map(&[("a", 10)]);
        let f = figures(&peer, &fwd, None);
        assert_eq!(f.stall_s, None);
        assert_eq!(f.longest_gap_s, None, "one fact has no gap");
        assert_eq!(
            f.before.unwrap().facts,
            1,
            "b was never forwarded: left out"
        );
        assert!(f.during.is_none() && f.after.is_none());
        // A crash after which nothing was replicated: no stall figure, and
        // the facts stored after it count as after (nothing resumed).
        let f = figures(&peer, &map(&[("a", 10), ("b", 120)]), Some(50));
        assert_eq!(f.stall_s, Some(0.07), "b was forwarded at 120");
        assert_eq!(figures(&peer, &fwd, Some(50)).stall_s, None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }

    fn status(
        state: PeerState,
        replicated: u64,
        backlog: u64,
        err: Option<&str>,
    ) -> PeerReplication {
        PeerReplication {
            peer: "enterprise".into(),
            consumer: "to-plant-a".into(),
            state,
            last_error: err.map(str::to_owned),
            replicated,
            rejected: 0,
            confirmed_offset: 10,
            backlog,
            lag_seconds: 0.02,
        }
    }

    #[test]
    fn drained_means_caught_up_with_nothing_waiting_and_no_error() {
        assert!(drained(&status(PeerState::CaughtUp, 5, 0, None)).is_ok());
        assert!(drained(&status(PeerState::Replicating, 5, 0, None)).is_err());
        assert!(drained(&status(PeerState::CaughtUp, 5, 3, None)).is_err());
        let e = drained(&status(PeerState::CaughtUp, 5, 0, Some("Unavailable: x"))).unwrap_err();
        assert!(e.contains("Unavailable"), "{e}");
        assert!(pulling(&status(PeerState::CaughtUp, 50, 0, None), 50));
        assert!(!pulling(&status(PeerState::Backoff, 50, 0, None), 1));
        assert!(!pulling(&status(PeerState::Replicating, 0, 9, None), 1));
    }
}
