//! The commissioning round trip: append one fresh fact to the commissioning
//! class, read it back through the commissioning consumer (confirming that
//! consumer up to it, so the next run starts clean), and check that a
//! retry of the same append is answered as a duplicate with the same offset.

use super::checklist::{Item, Verdict};
use crate::identity::Client;
use bsfg_client::pb;
use bsfg_core::clock::unix_ms;
use std::time::{Duration, Instant};

pub const ID: &str = "round-trip";
pub const TITLE: &str =
    "append/fetch round trip through the VIP (commissioning class and consumer)";

/// How long the fact may take to become visible to the consumer.
const VISIBLE_WITHIN: Duration = Duration::from_secs(15);

pub fn fact(zone: &str, run: &str, now_ms: i64) -> pb::Fact {
    pb::Fact {
        envelope: Some(pb::Envelope {
            message_id: format!("bsfgctl-commission-{run}"),
            from_zone: zone.to_owned(),
            to_zone: zone.to_owned(),
            produced_at_unix_ms: now_ms,
            ..Default::default()
        }),
        subject: format!("commissioning:bsfgctl/{run}"),
        predicate: "roundTrip".into(),
        object_json: serde_json::json!({ "run": run }).to_string(),
    }
}

/// A fact this tool appended in some commissioning run.
pub fn is_commissioning(sf: &pb::StoredFact) -> bool {
    sf.fact.as_ref().is_some_and(|f| {
        f.subject.starts_with("commissioning:bsfgctl/")
            && f.envelope
                .as_ref()
                .is_some_and(|e| e.message_id.starts_with("bsfgctl-commission-"))
    })
}

/// The whole round trip may take this long (a black-holed VIP must not hang the checklist).
const DEADLINE: Duration = Duration::from_secs(30);

pub async fn run(client: &Client, zone: &str, class: &str, consumer: &str) -> Item {
    let result = tokio::time::timeout(DEADLINE, attempt(client, zone, class, consumer))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {DEADLINE:?}")));
    match result {
        Ok(ev) => Item {
            id: ID,
            title: TITLE,
            verdict: Verdict::Pass,
            evidence: ev,
        },
        Err(e) => Item {
            id: ID,
            title: TITLE,
            verdict: Verdict::Fail,
            evidence: vec![e],
        },
    }
}

async fn attempt(
    client: &Client,
    zone: &str,
    class: &str,
    consumer: &str,
) -> Result<Vec<String>, String> {
    let mut c =
        bsfg_client::connect_grpc(&client.endpoint, &client.tls).map_err(|e| e.to_string())?;
    let run = format!("{}-{:08x}", unix_ms(), rand::random::<u32>());
    let f = fact(zone, &run, unix_ms());
    let id = f
        .envelope
        .as_ref()
        .map(|e| e.message_id.clone())
        .unwrap_or_default();
    let req = pb::AppendFactRequest {
        stream_class: class.to_owned(),
        fact: Some(f),
    };
    let t0 = Instant::now();
    let first = c
        .append_fact(req.clone())
        .await
        .map_err(|s| {
            format!(
                "AppendFact to class {class}: {:?}: {}",
                s.code(),
                s.message()
            )
        })?
        .into_inner();
    let append_ms = t0.elapsed().as_millis();
    let again = c
        .append_fact(req)
        .await
        .map_err(|s| format!("AppendFact retry: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    if !again.duplicate || again.offset != first.offset {
        return Err(format!(
            "a retry of {id} answered offset {} duplicate={} (expected offset {} duplicate=true)",
            again.offset, again.duplicate, first.offset
        ));
    }
    let deadline = Instant::now() + VISIBLE_WITHIN;
    let mut confirmed_older = 0usize;
    loop {
        let page = c
            .fetch_facts(pb::FetchFactsRequest {
                consumer_name: consumer.to_owned(),
                limit: 0,
            })
            .await
            .map_err(|s| {
                format!(
                    "FetchFacts from consumer {consumer}: {:?}: {}",
                    s.code(),
                    s.message()
                )
            })?
            .into_inner()
            .facts;
        // Never confirm anything but commissioning facts: a consumer that
        // delivers others is not a dedicated commissioning consumer.
        if let Some(other) = page.iter().find(|sf| !is_commissioning(sf)) {
            return Err(format!(
                "consumer {consumer} delivered a fact that is not a commissioning fact (offset {}, subject {:?}); refusing to confirm it: declare a dedicated consumer (source store:<commissioning class>)",
                other.offset,
                other
                    .fact
                    .as_ref()
                    .map(|f| f.subject.as_str())
                    .unwrap_or_default()
            ));
        }
        if let Some(found) = page.iter().find(|sf| {
            sf.fact
                .as_ref()
                .and_then(|f| f.envelope.as_ref())
                .map(|e| e.message_id.as_str())
                == Some(id.as_str())
        }) {
            let offset = found.offset;
            confirmed_older += page.iter().filter(|f| f.offset < offset).count();
            c.confirm_receipt(pb::ConfirmReceiptRequest {
                consumer_name: consumer.to_owned(),
                offset,
            })
            .await
            .map_err(|s| {
                format!(
                    "ConfirmReceipt on {consumer}: {:?}: {}",
                    s.code(),
                    s.message()
                )
            })?;
            return Ok(vec![
                format!(
                    "appended {id} to class {class} at offset {} in {append_ms} ms; retry answered duplicate, same offset",
                    first.offset
                ),
                format!(
                    "fetched back from consumer {consumer} at offset {offset}; consumer confirmed through it ({confirmed_older} older commissioning facts confirmed too)"
                ),
            ]);
        }
        // Older commissioning facts fill the page: confirm them (this consumer only).
        if let Some(last) = page.last() {
            confirmed_older += page.len();
            c.confirm_receipt(pb::ConfirmReceiptRequest {
                consumer_name: consumer.to_owned(),
                offset: last.offset,
            })
            .await
            .map_err(|s| {
                format!(
                    "ConfirmReceipt on {consumer}: {:?}: {}",
                    s.code(),
                    s.message()
                )
            })?;
            continue;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "appended {id} at offset {} but consumer {consumer} did not deliver it within {VISIBLE_WITHIN:?} (does its source read class {class}?)",
                first.offset
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
