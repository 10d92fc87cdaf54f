//! `bsfg_stream_*` on a real 3-node cluster: one server killed, every
//! stream of the zone (store buffers, KV buckets) shows a replica not
//! current on the controller's `/metrics`; the server restarted, every
//! stream shows all three current again.

use crate::common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `stream → value` of one `bsfg_stream_*` gauge in an exposition.
fn per_stream(exposition: &str, family: &str) -> BTreeMap<String, i64> {
    let prefix = format!("{family}{{stream=\"");
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (stream, value) = rest.split_once("\"} ")?;
            Some((stream.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Polls `/metrics` until `cond` holds on (configured, current) per stream.
async fn until(
    zone: &Zone,
    what: &str,
    cond: impl Fn(&BTreeMap<String, i64>, &BTreeMap<String, i64>) -> bool,
) -> (Duration, BTreeMap<String, i64>) {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        if let Some(m) = zone.controller.metrics().await {
            let configured = per_stream(&m, "bsfg_stream_replicas");
            let current = per_stream(&m, "bsfg_stream_replicas_current");
            if cond(&configured, &current) {
                return (start.elapsed(), current);
            }
            last = m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not within 60 s: {what}\n{}",
            last.lines()
                .filter(|l| l.starts_with("bsfg_stream"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn all_current(configured: &BTreeMap<String, i64>, current: &BTreeMap<String, i64>) -> bool {
    ["facts_operational", "KV_bsfg_lease", "KV_bsfg_cursors"]
        .iter()
        .all(|s| configured.get(*s) == Some(&3))
        && configured.iter().all(|(s, n)| current.get(s) == Some(n))
}

#[tokio::test]
async fn a_killed_server_shows_as_a_replica_not_current_until_it_is_back() {
    let mut zone = Zone::start3().await;
    let (took, _) = until(&zone, "every stream with 3 of 3 current", all_current).await;
    println!(
        "every stream 3/3 current {:.1} s after start",
        took.as_secs_f64()
    );

    // The controller is connected to n0; n2 crashes.
    zone.nats.kill(2);
    let (took, current) = until(&zone, "every stream with 2 of 3 current", |c, cur| {
        !c.is_empty() && c.keys().all(|s| cur.get(s) == Some(&2))
    })
    .await;
    println!(
        "n2 killed: every stream 2/3 current after {:.1} s: {current:?}",
        took.as_secs_f64()
    );

    zone.nats.restart(2).await;
    let (took, _) = until(&zone, "every stream 3/3 current again", all_current).await;
    println!(
        "n2 restarted: every stream 3/3 current after {:.1} s",
        took.as_secs_f64()
    );
    let m = zone.controller.metrics().await.unwrap();
    let leaders = per_stream(&m, "bsfg_stream_leader");
    assert!(
        !leaders.is_empty() && leaders.values().all(|l| *l == 1),
        "{leaders:?}"
    );
}
