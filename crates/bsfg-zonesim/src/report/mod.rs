//! Drill results as structured data (the `--json` object, also what the
//! failover benchmark, `bsfg-bench failover`, consumes), a readable summary, and the
//! table `drill all` prints.

use crate::drills::outcome::{Check, Outcome, list};
use crate::observe::jsz::Placement;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The result of one drill run. Times in seconds; `None` where the drill
/// has no such event (no VIP move in a Gamma crash).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub drill: String,
    pub passed: bool,
    /// Why it failed (empty when passed).
    pub failures: Vec<String>,
    /// The zone: name, VRRP version and advert interval, lease TTL.
    pub zone: ZoneFacts,
    /// Acknowledged appends (each message id once).
    pub acked: usize,
    /// Acknowledged but missing when everything was read back.
    pub lost: usize,
    /// Message ids stored more than once in the store buffer.
    pub duplicates: usize,
    /// Checker samples with two controllers serving.
    pub dual_active_samples: usize,
    pub samples: usize,
    /// Samples where a controller did not answer `/readyz` in time.
    pub unknown_samples: usize,
    /// Samples where two hosts held the VIP (expected in vrrp-one-way and keepalived-killed).
    pub dual_vip_samples: usize,
    /// Fault → the new holder holds the VIP.
    pub vip_move_s: Option<f64>,
    /// Fault → the new host's controller reports ready.
    pub controller_ready_s: Option<f64>,
    /// Fault → first acknowledged append sent after the fault.
    pub first_ack_s: Option<f64>,
    /// Longest time without an acknowledgement while the load ran.
    pub longest_stall_s: f64,
    /// When the fault ended (drills that end their fault), since the drill's epoch.
    pub fault_ended_s: Option<f64>,
    /// Fault ended → first acknowledged append sent after that: the time
    /// until the zone serves again, without operator action.
    pub recovery_s: Option<f64>,
    /// Drills watching the lease: samples in which the lease key named a
    /// host that did not hold the VIP (from the moment the drill says).
    pub lease_without_vip_samples: Option<usize>,
    /// The promotion on the new host, step by step (from its agent's log).
    pub promotion: Option<Promotion>,
    pub expected: Outcome,
    pub observed: Outcome,
    pub checks: Vec<Check>,
    /// Appends that needed more than one attempt, and how many of those the
    /// controller recognised as already stored.
    pub retried_acks: usize,
    pub duplicate_acks: usize,
    /// Failed attempts by reason.
    pub failed_attempts: BTreeMap<String, u64>,
    /// Facts given up at the end (never acknowledged: not lost).
    pub abandoned: usize,
    /// Role changes: how often the set of serving hosts changed.
    pub serving_changes: usize,
    /// JetStream placement just before the fault and at the end.
    pub placement_before: Option<Placement>,
    pub placement_after: Option<Placement>,
    pub events: Vec<Event>,
    pub duration_s: f64,
    /// The first lost ids (at most 20), for debugging.
    pub lost_ids: Vec<String>,
    /// Where the instance's logs were (removed with the instance unless kept).
    pub run_dir: String,
    /// During the read-back, time FetchFacts answered empty pages although
    /// acknowledged facts were still to come (a lagging replica answering).
    pub read_back_stale_s: f64,
    /// Replication drills: the peer, the replication stall and the lag.
    pub replication: Option<crate::drills::replication::ReplicationReport>,
    /// Power-loss drills: tier, what the cut discarded, recovery, artifacts.
    #[serde(default)]
    pub power: Option<crate::drills::power::PowerReport>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ZoneFacts {
    pub zone: String,
    pub zone_file: String,
    pub vrrp_version: u8,
    pub advert_interval_ms: u64,
    pub lease_ttl: String,
}

/// Where a promotion's time went, from the promoting host's agent log
/// (controller output included), each relative to the fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub host: String,
    /// The agent started the controller process.
    pub controller_started_s: Option<f64>,
    /// The controller took the zone lease.
    pub lease_taken_s: Option<f64>,
    /// Lease wait inside the controller: started → lease taken.
    pub lease_wait_s: Option<f64>,
    /// The controller logged "serving" (VIP bound).
    pub serving_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at_s: f64,
    pub what: String,
}

fn opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.2} s")).unwrap_or_else(|| "-".into())
}

fn opt_list(x: &Option<Vec<String>>) -> String {
    x.as_deref()
        .map(list)
        .unwrap_or_else(|| "(not fixed)".into())
}

impl DrillReport {
    /// The readable summary printed after a drill.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "drill {}: {}  ({:.0} s; zone {} VRRPv{} adverts {} ms, lease TTL {})",
            self.drill,
            if self.passed { "PASSED" } else { "FAILED" },
            self.duration_s,
            self.zone.zone,
            self.zone.vrrp_version,
            self.zone.advert_interval_ms,
            self.zone.lease_ttl
        );
        let _ = writeln!(o, "  contract:   {}", self.expected.summary);
        let _ = writeln!(
            o,
            "  expected:   VIP on {}, controller serving on {}",
            opt_list(&self.expected.vip),
            opt_list(&self.expected.serving)
        );
        let _ = writeln!(
            o,
            "  observed:   VIP on {}, controller serving on {}",
            opt_list(&self.observed.vip),
            opt_list(&self.observed.serving)
        );
        let _ = writeln!(
            o,
            "  appends:    {} acknowledged, {} lost, {} duplicates in the store; {} retried ({} recognised as stored); {} abandoned",
            self.acked,
            self.lost,
            self.duplicates,
            self.retried_acks,
            self.duplicate_acks,
            self.abandoned
        );
        if self.read_back_stale_s > 0.0 {
            let _ = writeln!(
                o,
                "  read-back:  empty pages for {:.2} s before the remaining facts appeared (a lagging replica answered)",
                self.read_back_stale_s
            );
        }
        let _ = writeln!(
            o,
            "  checker:    {} samples, {} with two controllers serving, {} with two VIP holders, {} unanswered",
            self.samples, self.dual_active_samples, self.dual_vip_samples, self.unknown_samples
        );
        let _ = writeln!(
            o,
            "  timing:     VIP move {}, controller ready {}, first ack {}, longest stall {:.2} s, recovery after the fault ended {}",
            opt(self.vip_move_s),
            opt(self.controller_ready_s),
            opt(self.first_ack_s),
            self.longest_stall_s,
            opt(self.recovery_s)
        );
        if let Some(n) = self.lease_without_vip_samples {
            let _ = writeln!(
                o,
                "  lease:      {n} samples with the lease held by a host without the VIP"
            );
        }
        if let Some(r) = &self.replication {
            let lag = |l: &Option<crate::drills::replication::Lag>| {
                l.as_ref().map_or("-".into(), |l| {
                    format!(
                        "p50 {:.3} / p99 {:.3} / max {:.3} s ({} facts)",
                        l.p50_s, l.p99_s, l.max_s, l.facts
                    )
                })
            };
            let _ = writeln!(
                o,
                "  replication: from {} ({} → {}): {} stored at the peer, {} in the forward buffer; stall {} (in /status {}), longest gap {}",
                r.peer,
                r.consumer,
                r.forward_consumer,
                r.peer_stored,
                r.forwarded,
                opt(r.stall_s),
                opt(r.resumed_in_status_s),
                opt(r.longest_gap_s)
            );
            let _ = writeln!(
                o,
                "  lag:        before the fault {}; during the stall {}; after {}",
                lag(&r.lag_before_fault),
                lag(&r.lag_during_stall),
                lag(&r.lag_after_resume)
            );
        }
        if let Some(p) = &self.power {
            let _ = writeln!(
                o,
                "  power:      {} tier, {} disks; {} lost power; recovered by itself: {}, first ack after {}; artifacts {} acknowledged, {} lost",
                p.tier,
                p.semantics,
                p.hosts_cut.join(", "),
                if p.recovered { "yes" } else { "NO" },
                opt(p.recovery_s),
                p.artifacts_acked,
                p.artifacts_lost
            );
        }
        if let Some(p) = &self.promotion {
            let _ = writeln!(
                o,
                "  promotion:  on {}: controller started {}, lease taken {} (waited {}), serving {}",
                p.host,
                opt(p.controller_started_s),
                opt(p.lease_taken_s),
                opt(p.lease_wait_s),
                opt(p.serving_s)
            );
        }
        if let Some(p) = &self.placement_before {
            let leaders: Vec<String> = p
                .streams
                .iter()
                .map(|s| format!("{}={}", s.stream, s.leader.as_deref().unwrap_or("-")))
                .collect();
            let _ = writeln!(
                o,
                "  placement:  before the fault: meta leader {}, {}",
                p.meta_leader.as_deref().unwrap_or("-"),
                leaders.join(" ")
            );
        }
        for c in &self.checks {
            let _ = writeln!(
                o,
                "  {} {}: {}",
                if c.passed { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        if !self.failed_attempts.is_empty() {
            let f: Vec<String> = self
                .failed_attempts
                .iter()
                .map(|(k, v)| format!("{v}× {k}"))
                .collect();
            let _ = writeln!(o, "  failed attempts: {}", f.join("; "));
        }
        for f in &self.failures {
            let _ = writeln!(o, "  failure: {f}");
        }
        o
    }
}

/// One line per drill run.
pub fn table(reports: &[DrillReport]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<26} {:<6} {:>6} {:>4} {:>4} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "drill",
        "result",
        "acked",
        "lost",
        "dup",
        "dual",
        "vip_move",
        "ready",
        "1st_ack",
        "stall",
        "recovery",
        "time"
    );
    for r in reports {
        let f = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "{:<26} {:<6} {:>6} {:>4} {:>4} {:>5} {:>8} {:>8} {:>8} {:>8.2} {:>8} {:>5.0}s",
            r.drill,
            if r.passed { "pass" } else { "FAIL" },
            r.acked,
            r.lost,
            r.duplicates,
            r.dual_active_samples,
            f(r.vip_move_s),
            f(r.controller_ready_s),
            f(r.first_ack_s),
            r.longest_stall_s,
            f(r.recovery_s),
            r.duration_s
        );
    }
    o
}

/// Median and worst of the timings over repeated runs of one drill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub drill: String,
    pub runs: usize,
    pub passed: usize,
    pub vip_move_s: Spread,
    pub controller_ready_s: Spread,
    pub first_ack_s: Spread,
    pub longest_stall_s: Spread,
    pub recovery_s: Spread,
    pub lease_wait_s: Spread,
    /// Sums over the runs (each must be 0 for a run to pass).
    pub lost: usize,
    pub duplicates: usize,
    pub dual_active_samples: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: Option<f64>,
    pub worst: Option<f64>,
}

impl Spread {
    fn of(xs: Vec<f64>) -> Spread {
        Spread {
            median: crate::drills::metrics::median(&xs),
            worst: xs.iter().copied().reduce(f64::max),
        }
    }
}

/// Aggregates reports per drill name (in first-seen order).
pub fn aggregate(reports: &[DrillReport]) -> Vec<Aggregate> {
    let mut names: Vec<&str> = Vec::new();
    for r in reports {
        if !names.contains(&r.drill.as_str()) {
            names.push(&r.drill);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let rs: Vec<&DrillReport> = reports.iter().filter(|r| r.drill == name).collect();
            let pick = |f: fn(&DrillReport) -> Option<f64>| {
                Spread::of(rs.iter().filter_map(|r| f(r)).collect())
            };
            Aggregate {
                drill: name.to_owned(),
                runs: rs.len(),
                passed: rs.iter().filter(|r| r.passed).count(),
                vip_move_s: pick(|r| r.vip_move_s),
                controller_ready_s: pick(|r| r.controller_ready_s),
                first_ack_s: pick(|r| r.first_ack_s),
                longest_stall_s: pick(|r| Some(r.longest_stall_s)),
                recovery_s: pick(|r| r.recovery_s),
                lease_wait_s: pick(|r| r.promotion.as_ref().and_then(|p| p.lease_wait_s)),
                lost: rs.iter().map(|r| r.lost).sum(),
                duplicates: rs.iter().map(|r| r.duplicates).sum(),
                dual_active_samples: rs.iter().map(|r| r.dual_active_samples).sum(),
            }
        })
        .collect()
}

/// The repeat table: median / worst per drill.
pub fn aggregate_table(aggs: &[Aggregate]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<26} {:>7} {:>15} {:>15} {:>15} {:>15} {:>15} {:>15}",
        "drill (median / worst)",
        "passed",
        "vip_move",
        "ready",
        "1st_ack",
        "stall",
        "recovery",
        "lease_wait"
    );
    let f = |s: &Spread| match (s.median, s.worst) {
        (Some(m), Some(w)) => format!("{m:.2} / {w:.2}"),
        _ => "-".into(),
    };
    for a in aggs {
        let _ = writeln!(
            o,
            "{:<26} {:>3}/{:<3} {:>15} {:>15} {:>15} {:>15} {:>15} {:>15}",
            a.drill,
            a.passed,
            a.runs,
            f(&a.vip_move_s),
            f(&a.controller_ready_s),
            f(&a.first_ack_s),
            f(&a.longest_stall_s),
            f(&a.recovery_s),
            f(&a.lease_wait_s)
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, first_ack: Option<f64>, passed: bool) -> DrillReport {
        DrillReport {
            drill: name.into(),
            passed,
            first_ack_s: first_ack,
            longest_stall_s: first_ack.unwrap_or(0.1),
            ..Default::default()
        }
    }

    #[test]
    fn aggregates_per_drill_in_order() {
        let rs = vec![
            report("alpha-crash", Some(1.0), true),
            report("gamma-crash", None, true),
            report("alpha-crash", Some(3.0), false),
            DrillReport {
                lost: 2,
                dual_active_samples: 1,
                ..report("alpha-crash", Some(2.0), true)
            },
        ];
        let a = aggregate(&rs);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].drill, "alpha-crash");
        assert_eq!((a[0].runs, a[0].passed), (3, 2));
        assert_eq!(a[0].first_ack_s.median, Some(2.0));
        assert_eq!(a[0].first_ack_s.worst, Some(3.0));
        assert_eq!(a[1].first_ack_s.median, None);
        assert_eq!(
            (a[0].lost, a[0].duplicates, a[0].dual_active_samples),
            (2, 0, 1)
        );
        assert_eq!(a[1].lost, 0);
        assert!(aggregate_table(&a).contains("2.00 / 3.00"));
    }

    #[test]
    fn the_json_carries_every_documented_field() {
        let v = serde_json::to_value(report("alpha-crash", Some(0.8), true)).unwrap();
        for key in [
            "acked",
            "lost",
            "duplicates",
            "dual_active_samples",
            "vip_move_s",
            "first_ack_s",
            "longest_stall_s",
            "recovery_s",
            "lease_without_vip_samples",
            "expected",
            "observed",
            "controller_ready_s",
            "promotion",
            "replication",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let t = table(&[report("x", None, false)]);
        assert!(t.contains("FAIL"));
    }
}
