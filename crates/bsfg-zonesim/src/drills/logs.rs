//! Reading a promotion's steps from the promoting host's agent log (the
//! agent's JSON lines with the controller's, which it supervises, mixed in):
//! when the controller was started, took the zone lease and began serving.
//! This is how a drill shows what the lease adds to a failover.

use crate::report::Promotion;
use std::time::UNIX_EPOCH;

/// The agent's line when it spawned the controller.
pub const STARTED: &str = "controller process started";
/// The same step under the agent's systemd supervisor.
pub const STARTED_UNIT: &str = "controller unit start requested";
/// The controller's line when it holds the lease.
pub const LEASE_TAKEN: &str = "zone lease taken";
/// The controller's line when it bound the VIP and serves.
pub const SERVING: &str = "serving";

/// (unix ms, message) of a JSON log line, if it has both.
pub fn parse_line(line: &str) -> Option<(i64, String)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let ts = v.get("timestamp")?.as_str()?;
    let t = humantime::parse_rfc3339_weak(ts).ok()?;
    let ms = t.duration_since(UNIX_EPOCH).ok()?.as_millis() as i64;
    let msg = v
        .get("message")
        .or_else(|| v.get("fields").and_then(|f| f.get("message")))?
        .as_str()?
        .to_owned();
    Some((ms, msg))
}

/// The first start → lease → serving sequence at or after `since_unix_ms`
/// (times relative to `since_unix_ms`, in seconds).
pub fn promotion(log: &str, host: &str, since_unix_ms: i64) -> Promotion {
    let rel = |ms: i64| (ms - since_unix_ms) as f64 / 1000.0;
    let mut p = Promotion {
        host: host.to_owned(),
        ..Default::default()
    };
    let (mut started, mut leased, mut serving) = (None, None, None);
    for (ms, msg) in log.lines().filter_map(parse_line) {
        if ms < since_unix_ms {
            continue;
        }
        match msg.as_str() {
            STARTED | STARTED_UNIT if started.is_none() => started = Some(ms),
            LEASE_TAKEN if started.is_some() && leased.is_none() => leased = Some(ms),
            SERVING if leased.is_some() && serving.is_none() => serving = Some(ms),
            _ => {}
        }
    }
    p.controller_started_s = started.map(rel);
    p.lease_taken_s = leased.map(rel);
    p.serving_s = serving.map(rel);
    p.lease_wait_s = match (started, leased) {
        (Some(s), Some(l)) => Some((l - s) as f64 / 1000.0),
        _ => None,
    };
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"timestamp":"2026-03-01T10:00:00.000000Z","level":"INFO","message":"gate agent starting"}
{"timestamp":"2026-03-01T10:00:05.100000Z","level":"INFO","message":"controller process started","pid":42}
not json at all
{"timestamp":"2026-03-01T10:00:06.350Z","level":"INFO","message":"zone lease taken","target":"bsfg_controller"}
{"timestamp":"2026-03-01T10:00:06.900Z","level":"INFO","message":"serving","listen":"10.20.0.100:9443"}
{"timestamp":"2026-03-01T10:00:09.000Z","level":"INFO","message":"zone lease taken"}
"#;

    #[test]
    fn the_steps_of_one_promotion() {
        let since = parse_line(LOG.lines().next().unwrap()).unwrap().0 + 5000;
        let p = promotion(LOG, "beta", since);
        assert_eq!(p.controller_started_s, Some(0.1));
        assert_eq!(p.lease_taken_s, Some(1.35));
        assert_eq!(p.lease_wait_s, Some(1.25));
        assert_eq!(p.serving_s, Some(1.9));
    }

    #[test]
    fn nothing_after_the_fault_gives_nothing() {
        let p = promotion(LOG, "beta", i64::MAX / 2);
        assert_eq!(p.controller_started_s, None);
        assert_eq!(p.lease_wait_s, None);
        assert_eq!(parse_line("{\"message\":\"no time\"}"), None);
    }
}
