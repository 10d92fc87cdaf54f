//! Time synchronisation, judged from chronyd's tracking report. Not one of
//! the seven gates: with `time_sync.policy = "warn"` (the default) it is
//! reported (status, metrics, a log line when it changes); with `deny`, an
//! unsynchronised clock fails gate 5, because a certificate's validity can
//! only be judged against true time (and peers judge ours against theirs).

use super::GateResult;
use crate::config::{TimeSync as Config, TimeSyncPolicy};
use crate::probes::time_sync::{Leap, TimeSyncError, Tracking};

/// The verdict on the host's clock and why.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSync {
    pub synchronised: bool,
    pub reason: String,
    pub tracking: Option<Tracking>,
    /// When chronyd was asked (Unix ms).
    pub checked_unix_ms: i64,
}

/// chronyd's reference ID for its own clock (`local stratum N`, 127.127.1.1).
const LOCAL_CLOCK: &str = "7F7F0101";

/// Synchronised: chronyd has a reference (leap status not `Not
/// synchronised`) and the offset is within `max_offset`. `checked_unix_ms`:
/// when chronyd answered (or did not).
pub fn assess(
    c: &Config,
    report: &Result<Tracking, TimeSyncError>,
    checked_unix_ms: i64,
) -> TimeSync {
    let t = match report {
        Ok(t) => t,
        Err(e) => {
            return TimeSync {
                synchronised: false,
                reason: format!("chronyd could not be asked: {e}"),
                tracking: None,
                checked_unix_ms,
            };
        }
    };
    // (+ 0.0: a zero correction prints as +0.000000, not -0.000000.)
    let offset = t.offset_seconds() + 0.0;
    let max = c.max_offset.as_secs_f64();
    let source = if t.reference_id == LOCAL_CLOCK {
        "chronyd's local clock (local stratum: the zone keeps its own time)".to_owned()
    } else if t.reference.is_empty() {
        format!("reference {}", t.reference_id)
    } else {
        t.reference.clone()
    };
    let (synchronised, reason) = if t.leap == Leap::NotSynchronised {
        (
            false,
            "chronyd: not synchronised (no usable time source)".to_owned(),
        )
    } else if offset.abs() > max {
        (
            false,
            format!(
                "clock off by {offset:+.6} s from {source} (stratum {}), more than time_sync.max_offset {max} s",
                t.stratum
            ),
        )
    } else {
        (
            true,
            format!(
                "synchronised to {source} (stratum {}), offset {offset:+.6} s",
                t.stratum
            ),
        )
    };
    TimeSync {
        synchronised,
        reason,
        tracking: Some(t.clone()),
        checked_unix_ms,
    }
}

impl TimeSync {
    /// As the management contract reports it.
    pub fn status(&self, policy: TimeSyncPolicy) -> bsfg_mgmt::agent::TimeSyncStatus {
        let t = self.tracking.as_ref();
        bsfg_mgmt::agent::TimeSyncStatus {
            policy: policy.name().to_owned(),
            synchronised: self.synchronised,
            reason: self.reason.clone(),
            reference: t.map(|t| {
                if t.reference.is_empty() {
                    t.reference_id.clone()
                } else {
                    t.reference.clone()
                }
            }),
            stratum: t.map(|t| t.stratum),
            leap_status: t.map(|t| t.leap.name().to_owned()),
            offset_seconds: t.map(Tracking::offset_seconds),
            checked_unix_ms: self.checked_unix_ms,
        }
    }
}

/// Gate 5 under the time-sync policy: `deny` fails it while the clock is
/// not synchronised; `warn` and `off` leave it as it is.
pub fn apply(
    policy: TimeSyncPolicy,
    time: Option<&TimeSync>,
    certificate: GateResult,
) -> GateResult {
    match (policy, time) {
        (TimeSyncPolicy::Deny, Some(t)) if !t.synchronised && certificate.passes() => {
            GateResult::fail(format!(
                "clock not synchronised, certificate validity cannot be judged (time_sync.policy = deny): {}; {}",
                t.reason, certificate.reason
            ))
        }
        _ => certificate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::time_sync::parse_tracking;
    use bsfg_mgmt::Verdict;
    use std::time::Duration;

    const SYNCED: &str = "7F000001,127.0.0.1,9,1796161738.306455629,-0.000001722,-0.000000004,0.000000015,0.011,-0.000,0.118,0.000005505,0.000000253,0.1,Normal";
    const UNSYNCED: &str = "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised";

    fn config(policy: TimeSyncPolicy) -> Config {
        Config {
            policy,
            ..Config::default()
        }
    }

    #[test]
    fn a_synchronised_clock_passes_and_says_to_what() {
        let t = assess(
            &config(TimeSyncPolicy::Warn),
            &parse_tracking(SYNCED).map_err(Into::into),
            0,
        );
        assert!(t.synchronised, "{}", t.reason);
        assert!(
            t.reason.contains("127.0.0.1") && t.reason.contains("stratum 9"),
            "{}",
            t.reason
        );
    }

    #[test]
    fn no_source_too_far_off_or_no_answer_is_not_synchronised() {
        let c = config(TimeSyncPolicy::Warn);
        let t = assess(&c, &parse_tracking(UNSYNCED).map_err(Into::into), 0);
        assert!(!t.synchronised);
        assert!(t.reason.contains("not synchronised"), "{}", t.reason);
        // -2.5 s of correction: the clock is 2.5 s fast.
        let far = SYNCED.replace("-0.000001722", "-2.5");
        let t = assess(&c, &parse_tracking(&far).map_err(Into::into), 0);
        assert!(!t.synchronised);
        assert!(t.reason.contains("+2.5"), "{}", t.reason);
        let tight = Config {
            max_offset: Duration::from_micros(1),
            ..c.clone()
        };
        assert!(!assess(&tight, &parse_tracking(SYNCED).map_err(Into::into), 0).synchronised);
        let t = assess(&c, &Err(TimeSyncError::NotInstalled("chronyc".into())), 0);
        assert!(!t.synchronised && t.tracking.is_none());
        assert!(t.reason.contains("install chrony"), "{}", t.reason);
    }

    #[test]
    fn deny_fails_a_passing_certificate_gate_warn_does_not() {
        let unsynced = assess(
            &config(TimeSyncPolicy::Deny),
            &parse_tracking(UNSYNCED).map_err(Into::into),
            0,
        );
        let synced = assess(
            &config(TimeSyncPolicy::Deny),
            &parse_tracking(SYNCED).map_err(Into::into),
            0,
        );
        let pass = || GateResult::pass("valid for 364 days");
        let denied = apply(TimeSyncPolicy::Deny, Some(&unsynced), pass());
        assert_eq!(denied.verdict, Verdict::Fail);
        assert!(
            denied.reason.contains("time_sync.policy = deny"),
            "{}",
            denied.reason
        );
        assert!(
            denied.reason.contains("valid for 364 days"),
            "{}",
            denied.reason
        );
        assert_eq!(apply(TimeSyncPolicy::Deny, Some(&synced), pass()), pass());
        assert_eq!(apply(TimeSyncPolicy::Warn, Some(&unsynced), pass()), pass());
        assert_eq!(apply(TimeSyncPolicy::Off, None, pass()), pass());
        // A failing gate keeps its own reason.
        let expired = GateResult::fail("expired");
        assert_eq!(
            apply(TimeSyncPolicy::Deny, Some(&unsynced), expired.clone()),
            expired
        );
    }
}
