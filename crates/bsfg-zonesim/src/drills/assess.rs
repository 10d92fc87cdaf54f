//! The pure half of a drill's report: from what the drill recorded while it
//! ran ([`Ctx`]) and what it read back at the end ([`EndState`]), the
//! verdict and every figure. No I/O: tested on hand-built runs.

use super::ctx::Ctx;
use super::outcome::{self, Check, Outcome, Safety};
use super::read_back::EndState;
use super::{Drill, logs, metrics, replication};
use crate::report::DrillReport;
use std::collections::BTreeSet;

/// The report of one run. `error`: why the scenario stopped early, if it did.
pub fn assess(
    drill: Drill,
    ctx: &Ctx,
    state: EndState,
    error: Option<String>,
    duration_s: f64,
) -> DrillReport {
    let mut checks = ctx.checks.clone();
    let mut failures = Vec::new();
    if let Some(e) = error {
        failures.push(format!("drill aborted: {e}"));
    }
    let read = state.read.unwrap_or_else(|e| {
        failures.push(format!("read-back failed: {e}"));
        Default::default()
    });
    let counts = metrics::counts(read.ids());
    let log = &state.log;
    let samples = &state.samples;
    // zone-restore: what was acknowledged after the snapshot and before
    // the restore is not expected back (and is reported as such).
    let restored = ctx.restore.as_ref().map(|r| {
        let acks: Vec<(String, std::time::Duration)> =
            log.acks.iter().map(|a| (a.id.clone(), a.acked)).collect();
        super::restore::assess(r, &acks, &read.facts)
    });
    if let Some(r) = &restored {
        checks.extend(r.checks.iter().map(|(name, passed, detail)| Check {
            name: name.clone(),
            passed: *passed,
            detail: detail.clone(),
        }));
    }
    let acked_ids: Vec<&str> = log
        .acks
        .iter()
        .map(|a| a.id.as_str())
        .chain(ctx.extra_acked.iter().map(String::as_str))
        .filter(|id| {
            restored
                .as_ref()
                .is_none_or(|r| !r.not_recoverable.contains(*id))
        })
        .collect();
    let lost = metrics::lost(acked_ids.iter().copied(), &counts);
    let replication = match (&ctx.peer, state.at_peer) {
        (Some(p), Some(at_peer)) => {
            let at_peer = at_peer.unwrap_or_else(|e| {
                failures.push(format!("reading the peer's store back failed: {e}"));
                Default::default()
            });
            let at_peer_counts = metrics::counts(at_peer.ids());
            let missing = metrics::lost(acked_ids.iter().copied(), &at_peer_counts);
            checks.push(Check {
                name: format!("the peer {} stored every fact it acknowledged", p.plan.zone),
                passed: missing.is_empty(),
                detail: format!(
                    "{} of {} in its store buffer{}",
                    acked_ids.len() - missing.len(),
                    acked_ids.len(),
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!("; missing {:?}", &missing[..missing.len().min(5)])
                    }
                ),
            });
            let f =
                replication::figures(&at_peer.stored_at_ms, &read.stored_at_ms, ctx.fault_unix_ms);
            Some(replication::ReplicationReport {
                peer: p.plan.zone.clone(),
                endpoint: p.plan.endpoint.clone(),
                consumer: p.plan.consumer.clone(),
                forward_consumer: p.plan.forward_consumer.clone(),
                peer_stored: acked_ids.len() - missing.len(),
                forwarded: read.stored_at_ms.len(),
                stall_s: f.stall_s,
                resumed_in_status_s: ctx.replication.resumed_in_status_s,
                longest_gap_s: f.longest_gap_s,
                lag_before_fault: f.before,
                lag_during_stall: f.during,
                lag_after_resume: f.after,
                status_before_fault: ctx.replication.before_fault.clone(),
                status_at_end: ctx.replication.at_end.clone(),
            })
        }
        _ => None,
    };
    let duplicates = metrics::duplicates(&counts);
    let dual = metrics::dual_active_samples(samples);
    let observed = Outcome {
        summary: format!(
            "VIP on {}, serving on {}",
            outcome::list(&state.vip),
            outcome::list(&state.serving)
        ),
        vip: Some(state.vip),
        serving: Some(state.serving),
    };
    let acked = acked_ids.iter().collect::<BTreeSet<_>>().len();
    failures.extend(outcome::evaluate(
        &ctx.expected,
        &observed,
        &Safety {
            acked,
            lost: if ctx.loss_tolerated { 0 } else { lost.len() },
            duplicates: duplicates.len(),
            dual_active_samples: dual,
            samples: samples.len(),
        },
        &checks,
    ));
    let load_from = log.acks.first().map(|a| a.first_try).unwrap_or_default();
    let fault = ctx.fault_at;
    let (vip_move_s, controller_ready_s, promotion) = match (fault, &ctx.target) {
        (Some(f), Some(t)) => (
            metrics::vip_move_s(samples, f, t).map(metrics::ms),
            metrics::ready_s(samples, f, t).map(metrics::ms),
            ctx.fault_unix_ms.map(|since| {
                logs::promotion(
                    state.target_agent_log.as_deref().unwrap_or_default(),
                    t,
                    since,
                )
            }),
        ),
        _ => (None, None, None),
    };
    DrillReport {
        drill: drill.name().to_owned(),
        passed: failures.is_empty(),
        failures,
        zone: state.zone,
        acked,
        lost: lost.len(),
        duplicates: duplicates.len(),
        dual_active_samples: dual,
        samples: samples.len(),
        unknown_samples: metrics::unknown_samples(samples),
        dual_vip_samples: metrics::dual_vip_samples(samples),
        vip_move_s,
        controller_ready_s,
        first_ack_s: fault
            .and_then(|f| metrics::first_ack_s(&log.acks, f))
            .map(metrics::ms),
        longest_stall_s: metrics::ms(metrics::longest_stall_s(&log.acks, load_from, state.end)),
        fault_ended_s: ctx.fault_end.map(|e| metrics::ms(e.as_secs_f64())),
        recovery_s: ctx
            .fault_end
            .and_then(|e| metrics::first_ack_s(&log.acks, e))
            .map(metrics::ms),
        lease_without_vip_samples: ctx
            .lease_watch_from
            .map(|from| metrics::lease_without_vip_samples(samples, from)),
        promotion,
        expected: ctx.expected.clone(),
        observed,
        checks,
        retried_acks: log.acks.iter().filter(|a| a.attempts > 1).count(),
        duplicate_acks: log.acks.iter().filter(|a| a.duplicate).count(),
        failed_attempts: log.failures.clone(),
        abandoned: log.abandoned.len(),
        serving_changes: metrics::serving_changes(samples),
        placement_before: ctx.placement_before.clone(),
        placement_after: state.placement_after,
        events: ctx.events.clone(),
        duration_s: metrics::ms(duration_s),
        lost_ids: lost.into_iter().take(20).collect(),
        run_dir: state.run_dir,
        read_back_stale_s: metrics::ms(read.stale_s),
        replication,
        power: ctx.power.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drills::checker::{HostSample, Sample};
    use crate::load::{Ack, LoadLog, ReadBack};
    use std::time::{Duration, Instant};

    fn ack(id: &str, at_s: u64) -> Ack {
        Ack {
            id: id.into(),
            first_try: Duration::from_secs(at_s),
            last_try: Duration::from_secs(at_s),
            acked: Duration::from_secs(at_s),
            attempts: 1,
            duplicate: false,
        }
    }

    fn sample(at_s: u64, serving: &[&str]) -> Sample {
        Sample {
            at: Duration::from_secs(at_s),
            hosts: ["alpha", "beta"]
                .into_iter()
                .map(|h| {
                    let on = serving.contains(&h);
                    (
                        h.to_owned(),
                        HostSample {
                            vip: on,
                            serving: Some(on),
                        },
                    )
                })
                .collect(),
            lease: None,
        }
    }

    /// Alpha crashed at 2 s; beta took over; `stored` is what the read-back found.
    fn run(stored: &[&str], samples: Vec<Sample>) -> (Ctx, EndState) {
        let mut ctx = Ctx::new(Instant::now());
        ctx.expected = Outcome {
            summary: "VIP and controller move to beta".into(),
            vip: Some(vec!["beta".into()]),
            serving: Some(vec!["beta".into()]),
        };
        ctx.fault_at = Some(Duration::from_secs(2));
        ctx.target = Some("beta".into());
        ctx.check("beta promotes", true, "after 1.2 s");
        let end = EndState {
            zone: Default::default(),
            run_dir: "/run/zonesim/t".into(),
            placement_after: None,
            vip: vec!["beta".into()],
            serving: vec!["beta".into()],
            log: LoadLog {
                acks: vec![ack("f-1", 1), ack("f-2", 1), ack("f-3", 4)],
                ..Default::default()
            },
            samples,
            end: Duration::from_secs(6),
            read: Ok(ReadBack {
                facts: stored
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (i as u64 + 1, (*id).to_owned()))
                    .collect(),
                ..Default::default()
            }),
            at_peer: None,
            target_agent_log: Some(String::new()),
        };
        (ctx, end)
    }

    #[test]
    fn every_fact_once_and_one_controller_at_a_time_passes() {
        let samples = vec![sample(1, &["alpha"]), sample(3, &[]), sample(4, &["beta"])];
        let (ctx, end) = run(&["f-1", "f-2", "f-3"], samples);
        let r = assess(Drill::AlphaCrash, &ctx, end, None, 30.0);
        assert!(r.passed, "{:?}", r.failures);
        assert_eq!((r.acked, r.lost, r.duplicates), (3, 0, 0));
        assert_eq!(r.vip_move_s, Some(2.0));
        assert_eq!(r.first_ack_s, Some(2.0));
        assert_eq!(r.samples, 3);
    }

    #[test]
    fn a_lost_fact_a_duplicate_and_two_serving_each_fail() {
        let samples = vec![sample(1, &["alpha", "beta"]), sample(4, &["beta"])];
        let (ctx, end) = run(&["f-1", "f-1", "f-3"], samples);
        let r = assess(Drill::AlphaCrash, &ctx, end, Some("boom".into()), 30.0);
        assert!(!r.passed);
        assert_eq!((r.lost, r.duplicates, r.dual_active_samples), (1, 1, 1));
        assert_eq!(r.lost_ids, ["f-2"]);
        for want in [
            "drill aborted: boom",
            "1 acknowledged appends lost",
            "1 message ids stored more than once",
            "two controllers served at once in 1 samples",
        ] {
            assert!(
                r.failures.iter().any(|f| f == want),
                "{want}: {:?}",
                r.failures
            );
        }
    }

    #[test]
    fn a_failed_read_back_is_a_failure_not_a_pass_with_nothing_lost() {
        let (ctx, mut end) = run(&[], vec![sample(4, &["beta"])]);
        end.read = Err("no answer through the VIP".into());
        let r = assess(Drill::AlphaCrash, &ctx, end, None, 30.0);
        assert!(!r.passed);
        assert!(
            r.failures
                .iter()
                .any(|f| f == "read-back failed: no answer through the VIP"),
            "{:?}",
            r.failures
        );
    }
}
