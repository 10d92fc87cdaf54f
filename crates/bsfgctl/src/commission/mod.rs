//! `bsfgctl commission`: the commissioning checklist against a live zone.
//!
//! Items decidable from one snapshot are pure ([`checklist`]); the round
//! trip ([`round_trip`]) and the failover drill ([`drill`]) act on the zone.
//!
//! The round trip is non-destructive: it appends one fact with a fresh
//! message id (`bsfgctl-commission-...`, subject `commissioning:bsfgctl/<run>`)
//! to the zone's dedicated commissioning class and reads it back through the
//! dedicated commissioning consumer, confirming that consumer only. No
//! other consumer sees it unless it reads the commissioning class.

pub mod checklist;
pub mod drill;
pub mod round_trip;
#[cfg(test)]
pub(crate) mod tests;

use crate::cli::CommissionArgs;
use crate::exit::Result;
use crate::identity::ConfigFile;
use crate::zone::snapshot::Snapshot;
use bsfg_core::clock::unix_ms;
use checklist::{Item, Thresholds, Verdict};
use serde::Serialize;
use std::time::{Duration, Instant};

/// How often a failing `streams-r3` is re-observed within `--stream-settle`:
/// after a failover or a restart a follower is briefly "not current" while
/// it catches up, which is the zone settling, not a fault.
const STREAM_SETTLE_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, Serialize)]
struct Report<'a> {
    zone: &'a str,
    passed: bool,
    items: &'a [Item],
}

/// Re-observes the zone (`observe`; None: it did not answer) while the
/// `streams-r3` item fails, for at most `within`, and keeps the last verdict.
pub(crate) async fn settle_streams<F, Fut>(items: &mut [Item], within: Duration, mut observe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Snapshot>>,
{
    let Some(item) = items.iter_mut().find(|i| i.id == checklist::STREAMS_R3) else {
        return;
    };
    let deadline = Instant::now() + within;
    while item.verdict == Verdict::Fail && Instant::now() < deadline {
        tokio::time::sleep(STREAM_SETTLE_INTERVAL).await;
        // A zone that stops answering keeps the verdict already reached.
        if let Some(snap) = observe().await {
            *item = checklist::streams_replicated(&snap);
        }
    }
}

pub async fn command(a: &CommissionArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let snap = crate::zone::observe(&a.zone, file).await?;
    let zone = snap.zone.clone();
    let thresholds = Thresholds {
        certificate_min_validity: a.cert_threshold.unwrap_or_else(|| zone.min_validity()),
        max_clock_offset: a.max_clock_offset,
    };
    let mut items = checklist::evaluate_all(&snap, &thresholds, unix_ms());
    settle_streams(&mut items, a.stream_settle, || async {
        crate::zone::observe(&a.zone, file).await.ok()
    })
    .await;

    let class = a
        .class
        .clone()
        .or_else(|| zone.commissioning.as_ref().map(|c| c.class.clone()));
    let consumer = a
        .consumer
        .clone()
        .or_else(|| zone.commissioning.as_ref().map(|c| c.consumer.clone()));
    let client = if a.zone.client.has_identity(file) {
        Some(a.zone.client.resolve(file, Some(&zone.endpoint))?)
    } else {
        None
    };
    let rt = if a.no_round_trip {
        Item {
            id: round_trip::ID,
            title: round_trip::TITLE,
            verdict: Verdict::Skipped,
            evidence: vec!["--no-round-trip".into()],
        }
    } else {
        match (&client, &class, &consumer) {
            (Some(c), Some(cl), Some(co)) => round_trip::run(c, &zone.zone, cl, co).await,
            _ => Item {
                id: round_trip::ID,
                title: round_trip::TITLE,
                verdict: Verdict::Fail,
                evidence: vec![format!(
                    "cannot run: needs {}{}{}",
                    if client.is_none() { "a client identity (--cert --key --ca) " } else { "" },
                    if class.is_none() { "a commissioning class (--class or the zone's commissioning.class) " } else { "" },
                    if consumer.is_none() { "a commissioning consumer (--consumer or the zone's commissioning.consumer)" } else { "" },
                )
                .trim_end()
                .to_owned()],
            },
        }
    };
    items.push(rt);

    if a.drill {
        let ready = items
            .iter()
            .filter(|i| drill::PRECONDITIONS.contains(&i.id))
            .all(|i| i.verdict == Verdict::Pass);
        if ready {
            items.extend(drill::run(a, file).await);
        } else {
            for (id, title) in [
                (drill::FAILOVER, drill::FAILOVER_TITLE),
                (drill::FAILBACK, drill::FAILBACK_TITLE),
            ] {
                items.push(Item {
                    id,
                    title,
                    verdict: Verdict::Fail,
                    evidence: vec![format!(
                        "not attempted: the zone must first pass {}",
                        drill::PRECONDITIONS.join(", ")
                    )],
                });
            }
        }
    }

    let code = checklist::exit_code(&items);
    if json {
        crate::commands::print_json(&Report {
            zone: &zone.zone,
            passed: code == crate::exit::OK,
            items: &items,
        });
    } else {
        println!("commissioning zone {} ({})\n", zone.zone, zone.endpoint);
        print!("{}", checklist::render(&items));
    }
    Ok(code)
}
