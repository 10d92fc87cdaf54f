//! Pure measurements over a drill's timelines: the checker's samples and the
//! producers' acknowledgements. Times are seconds since the drill's epoch
//! unless said otherwise.

use super::checker::Sample;
use crate::load::Ack;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Samples in which more than one controller served.
pub fn dual_active_samples(samples: &[Sample]) -> usize {
    samples.iter().filter(|s| s.serving().len() > 1).count()
}

/// Samples in which some controller did not answer `/readyz` in time.
pub fn unknown_samples(samples: &[Sample]) -> usize {
    samples
        .iter()
        .filter(|s| s.hosts.values().any(|h| h.serving.is_none()))
        .count()
}

/// Samples from `from` on in which the lease key named a host without the VIP.
pub fn lease_without_vip_samples(samples: &[Sample], from: Duration) -> usize {
    samples
        .iter()
        .filter(|s| s.at >= from && s.lease_without_vip().is_some())
        .count()
}

/// Samples in which more than one host held the VIP.
pub fn dual_vip_samples(samples: &[Sample]) -> usize {
    samples.iter().filter(|s| s.vip_holders().len() > 1).count()
}

/// Seconds from `from` to the first sample at or after it satisfying `f`.
pub fn first_after(samples: &[Sample], from: Duration, f: impl Fn(&Sample) -> bool) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.at >= from && f(s))
        .map(|s| (s.at - from).as_secs_f64())
}

/// Seconds from `from` until `host` held the VIP.
pub fn vip_move_s(samples: &[Sample], from: Duration, host: &str) -> Option<f64> {
    first_after(samples, from, |s| s.host(host).vip)
}

/// Seconds from `from` until `host`'s controller served.
pub fn ready_s(samples: &[Sample], from: Duration, host: &str) -> Option<f64> {
    first_after(samples, from, |s| s.host(host).serving == Some(true))
}

/// Seconds from `from` to the first acknowledgement of an attempt sent at or
/// after `from` (an answer to a request made before the fault proves nothing
/// about the zone after it).
pub fn first_ack_s(acks: &[Ack], from: Duration) -> Option<f64> {
    acks.iter()
        .filter(|a| a.last_try >= from)
        .map(|a| a.acked)
        .min()
        .map(|t| (t - from).as_secs_f64())
}

/// The longest time without any acknowledgement between `from` and `to`
/// (the window's edges count as boundaries).
pub fn longest_stall_s(acks: &[Ack], from: Duration, to: Duration) -> f64 {
    let mut times: Vec<Duration> = acks
        .iter()
        .map(|a| a.acked)
        .filter(|t| *t >= from && *t <= to)
        .collect();
    times.sort();
    let mut prev = from;
    let mut longest = Duration::ZERO;
    for t in times.into_iter().chain([to]) {
        longest = longest.max(t.saturating_sub(prev));
        prev = t;
    }
    longest.as_secs_f64()
}

/// Acknowledged ids missing from what was read back.
pub fn lost<'a>(
    acked: impl IntoIterator<Item = &'a str>,
    read: &BTreeMap<&str, usize>,
) -> Vec<String> {
    let mut out: Vec<String> = acked
        .into_iter()
        .filter(|id| !read.contains_key(id))
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// How often each id was read back.
pub fn counts<'a>(ids: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id).or_insert(0) += 1;
    }
    m
}

/// Ids stored more than once (the store buffer must hold each id once,
/// however often it was retried).
pub fn duplicates(read: &BTreeMap<&str, usize>) -> Vec<String> {
    read.iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| (*id).to_owned())
        .collect()
}

/// Changes of the set of serving hosts over the samples (role churn).
pub fn serving_changes(samples: &[Sample]) -> usize {
    let mut prev: Option<BTreeSet<&str>> = None;
    let mut changes = 0;
    for s in samples {
        let now: BTreeSet<&str> = s.serving().into_iter().collect();
        if prev.as_ref().is_some_and(|p| *p != now) {
            changes += 1;
        }
        prev = Some(now);
    }
    changes
}

/// Rounds to milliseconds for reports.
pub fn ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The median of `xs` (None when empty).
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::super::checker::HostSample;
    use super::*;

    fn s(ms: u64, hosts: &[(&str, bool, Option<bool>)]) -> Sample {
        Sample {
            at: Duration::from_millis(ms),
            hosts: hosts
                .iter()
                .map(|(h, vip, serving)| {
                    (
                        (*h).to_owned(),
                        HostSample {
                            vip: *vip,
                            serving: *serving,
                        },
                    )
                })
                .collect(),
            lease: None,
        }
    }

    fn ack(id: &str, tried_ms: u64, acked_ms: u64) -> Ack {
        Ack {
            id: id.into(),
            first_try: Duration::from_millis(tried_ms),
            last_try: Duration::from_millis(tried_ms),
            acked: Duration::from_millis(acked_ms),
            attempts: 1,
            duplicate: false,
        }
    }

    #[test]
    fn failover_timeline() {
        let samples = vec![
            s(
                0,
                &[("alpha", true, Some(true)), ("beta", false, Some(false))],
            ),
            s(
                500,
                &[("alpha", false, Some(false)), ("beta", false, Some(false))],
            ),
            s(
                1200,
                &[("alpha", false, Some(false)), ("beta", true, Some(false))],
            ),
            s(
                1900,
                &[("alpha", false, Some(false)), ("beta", true, Some(true))],
            ),
        ];
        let fault = Duration::from_millis(400);
        assert_eq!(vip_move_s(&samples, fault, "beta"), Some(0.8));
        assert_eq!(ready_s(&samples, fault, "beta"), Some(1.5));
        assert_eq!(ready_s(&samples, fault, "gamma"), None);
        assert_eq!(dual_active_samples(&samples), 0);
        assert_eq!(unknown_samples(&samples), 0);
        assert_eq!(serving_changes(&samples), 2);
    }

    #[test]
    fn two_serving_in_one_sample_is_dual_active_and_unknown_is_counted_apart() {
        let samples = vec![
            s(
                0,
                &[("alpha", true, Some(true)), ("beta", true, Some(true))],
            ),
            s(50, &[("alpha", true, None), ("beta", true, Some(true))]),
        ];
        assert_eq!(dual_active_samples(&samples), 1);
        assert_eq!(unknown_samples(&samples), 1);
        assert_eq!(dual_vip_samples(&samples), 2);
    }

    #[test]
    fn first_ack_ignores_answers_to_requests_sent_before_the_fault() {
        let acks = vec![
            ack("a", 900, 1100),
            ack("b", 1500, 2300),
            ack("c", 1200, 2500),
        ];
        let fault = Duration::from_millis(1000);
        assert_eq!(first_ack_s(&acks, fault), Some(1.3));
        assert_eq!(first_ack_s(&acks, Duration::from_secs(5)), None);
    }

    #[test]
    fn stall_is_the_longest_gap_including_the_window_edges() {
        let acks = vec![ack("a", 0, 1000), ack("b", 0, 1200), ack("c", 0, 4200)];
        let w = |a, b| longest_stall_s(&acks, Duration::from_millis(a), Duration::from_millis(b));
        assert!((w(0, 5000) - 3.0).abs() < 1e-9);
        assert!(
            (w(0, 9000) - 4.8).abs() < 1e-9,
            "no ack after 4.2 s: the tail counts"
        );
        assert!((w(1100, 1300) - 0.1).abs() < 1e-9);
    }

    #[test]
    fn lost_and_duplicates_from_the_read_back() {
        let read = counts(["m1", "m2", "m2", "m4"]);
        assert_eq!(lost(["m1", "m2", "m3"], &read), vec!["m3".to_owned()]);
        assert_eq!(duplicates(&read), vec!["m2".to_owned()]);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(ms(1.23456), 1.235);
    }
}
