//! gamma's service probe watched through a drill: the blackbox exporter
//! (the zone library's configuration, run by the process mode or by the
//! appliance's unit in gamma's container) asked once a second from the
//! management network, as Prometheus' `bsfg-service-probe` job asks it,
//! for each of its checks (gRPC and Connect health on the VIP).

use crate::netns;
use crate::zone::Zone;
use anyhow::Result;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the probe is asked (the drill's own scrape interval).
const INTERVAL: Duration = Duration::from_secs(1);
/// Longer than the exporter's module timeout (the zone's `probe.timeoutMs`).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(4);
/// The longest the probe may fail and the drill still call the service
/// continuous: far inside BsfgServiceProbeFailing's `for: 1m`, far above
/// a handover's stall.
pub const MAX_FAILING: Duration = Duration::from_secs(10);

/// One answer of `/probe` for one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `probe_success 1`: SERVING on the VIP.
    Serving,
    /// `probe_success 0`.
    Failed,
    /// The exporter did not answer (restarting with its host's switch).
    Unreachable,
}

/// Pure: `probe_success` of an exporter's `/probe` answer.
pub fn answer(body: &str) -> Answer {
    match body
        .lines()
        .find_map(|l| l.strip_prefix("probe_success "))
        .map(str::trim)
    {
        Some("1") => Answer::Serving,
        Some(_) => Answer::Failed,
        None => Answer::Unreachable,
    }
}

/// What one check of the probe saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub probes: usize,
    pub serving: usize,
    pub failed: usize,
    pub unreachable: usize,
    /// From a first failure to the next SERVING (or the last answer).
    pub longest_failing_s: f64,
    pub last: Option<Answer>,
}

impl Seen {
    /// SERVING at the end and never failing for [`MAX_FAILING`].
    pub fn continuous(&self) -> bool {
        self.serving > 0
            && self.last == Some(Answer::Serving)
            && self.longest_failing_s < MAX_FAILING.as_secs_f64()
    }
}

/// Pure: the answers of one check, `(seconds, answer)` in time order.
pub fn seen(answers: &[(f64, Answer)]) -> Seen {
    let mut s = Seen::default();
    let mut failing_since: Option<f64> = None;
    for &(t, a) in answers {
        s.probes += 1;
        match a {
            Answer::Serving => {
                s.serving += 1;
                if let Some(t0) = failing_since.take() {
                    s.longest_failing_s = s.longest_failing_s.max(t - t0);
                }
            }
            Answer::Failed => {
                s.failed += 1;
                failing_since.get_or_insert(t);
            }
            Answer::Unreachable => s.unreachable += 1,
        }
        s.last = Some(a);
    }
    if let (Some(t0), Some(&(t, _))) = (failing_since, answers.last()) {
        s.longest_failing_s = s.longest_failing_s.max(t - t0);
    }
    s
}

/// The probe's checks of this zone: (check, `/probe` path), or none
/// without a probe.
fn checks(z: &Zone) -> Vec<(String, String)> {
    let [_, _, gamma] = z.spec.host_names();
    let Some(p) = &z.spec.host(gamma).probe else {
        return Vec::new();
    };
    p.targets
        .iter()
        .filter_map(|(check, target)| {
            let module = p.modules.get(check)?;
            Some((
                check.clone(),
                format!("/probe?module={module}&target={target}"),
            ))
        })
        .collect()
}

/// Asks the probe until `stop` is set; every check's answers.
pub async fn watch(z: &Zone, stop: Arc<AtomicBool>) -> Result<Vec<(String, Seen)>> {
    let checks = checks(z);
    if checks.is_empty() {
        return Ok(Vec::new());
    }
    let [_, _, gamma] = z.spec.host_names();
    let p = z.spec.host(gamma).probe.as_ref().map(|p| p.listen.clone());
    let addr = p
        .map(|l| format!("{}:{}", l.address, l.port))
        .unwrap_or_default();
    let answers = z
        .in_ns(netns::MGMT, move || async move {
            let start = Instant::now();
            let mut answers: Vec<Vec<(f64, Answer)>> = vec![Vec::new(); checks.len()];
            while !stop.load(Ordering::Relaxed) {
                let tick = Instant::now();
                let asks = checks.iter().map(|(_, path)| {
                    let addr = addr.clone();
                    async move {
                        match bsfg_mgmt::http::get(&addr, path, SCRAPE_TIMEOUT).await {
                            Ok(r) if r.is_success() => answer(&r.body),
                            _ => Answer::Unreachable,
                        }
                    }
                });
                let got = futures::future::join_all(asks).await;
                let t = tick.duration_since(start).as_secs_f64();
                for (all, a) in answers.iter_mut().zip(got) {
                    all.push((t, a));
                }
                tokio::time::sleep(INTERVAL.saturating_sub(tick.elapsed())).await;
            }
            checks
                .into_iter()
                .zip(answers)
                .map(|((check, _), a)| (check, seen(&a)))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_probe_success() {
        let ok = "# HELP probe_success Displays whether or not the probe was a success\n\
                  # TYPE probe_success gauge\nprobe_success 1\nprobe_duration_seconds 0.01\n";
        assert_eq!(answer(ok), Answer::Serving);
        assert_eq!(answer("probe_success 0\n"), Answer::Failed);
        assert_eq!(answer("404 page not found"), Answer::Unreachable);
    }

    #[test]
    fn the_longest_failure_runs_to_the_next_serving_answer() {
        use Answer::*;
        let a = [
            (0.0, Serving),
            (1.0, Failed),
            (2.0, Unreachable),
            (3.0, Failed),
            (4.5, Serving),
            (5.0, Failed),
            (6.0, Serving),
        ];
        let s = seen(&a);
        assert_eq!((s.probes, s.serving, s.failed, s.unreachable), (7, 3, 3, 1));
        assert!((s.longest_failing_s - 3.5).abs() < 1e-9, "{s:?}");
        assert!(s.continuous());
        // Failing at the end: runs to the last answer, and not continuous.
        let s = seen(&[(0.0, Serving), (1.0, Failed), (30.0, Failed)]);
        assert!((s.longest_failing_s - 29.0).abs() < 1e-9);
        assert!(!s.continuous());
        // Never serving, or failing too long, is no continuous service.
        assert!(!seen(&[(0.0, Unreachable)]).continuous());
        assert!(!seen(&[(0.0, Serving), (1.0, Failed), (12.0, Serving)]).continuous());
        assert_eq!(seen(&[]), Seen::default());
    }
}
