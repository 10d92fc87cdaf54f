//! Replication throughput and lag between two zones on this machine.
//!
//! Lag of a fact = time from its acknowledgement by the sending zone to the
//! moment a reader of the receiving zone's forward buffer sees it (both
//! clocks are this machine's). Two runs: a steady rate (the BSFG
//! documentation calls < 100 ms lag healthy), and a drain of a backlog
//! accumulated while the receiver was away (throughput).

use bsfg_client::pb::{
    AppendFactRequest, ConfirmReceiptRequest, Envelope, Fact, FetchFactsRequest,
};
use bsfg_testkit::controller::RunningController;
use bsfg_testkit::pair::ZonePair;
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Steady append rate at the sender, facts per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// How long the steady run lasts.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Backlog size for the drain run.
    #[arg(long, default_value_t = 20_000)]
    backlog: usize,
    /// Servers in the receiving zone (1 or 3).
    #[arg(long, default_value_t = 3)]
    receiver_nodes: usize,
    #[command(flatten)]
    output: crate::Output,
}

fn fact(id: &str) -> Fact {
    Fact {
        envelope: Some(Envelope {
            message_id: id.into(),
            from_zone: "plant-a".into(),
            to_zone: "enterprise".into(),
            produced_at_unix_ms: 1_780_000_000_000,
            ..Default::default()
        }),
        subject: "order:o1".into(),
        predicate: "has_status".into(),
        object_json: format!("{{\"id\":\"{id}\",\"pad\":\"{}\"}}", "x".repeat(200)),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    println!(
        "==> starting two zones (receiver: {} server(s))",
        args.receiver_nodes
    );
    let pair = ZonePair::start(args.receiver_nodes, "plant-a-bsfg").await;
    let mut receiver_config = pair.receiver_config.clone();
    receiver_config.logging.filter = "warn".into();
    receiver_config.replication.idle_poll = Duration::from_millis(10);
    let receiver = RunningController::start(receiver_config.clone(), pair.dir.path()).await;
    let sender = bsfg_client::connect_grpc(&pair.sender.endpoint(), &pair.producer)?;
    let reader = bsfg_client::connect_grpc(&receiver.endpoint(), &pair.reader)?;

    // Steady rate: one append every 1/rate, each on its own task so a slow one does not delay the schedule.
    println!(
        "==> steady run: {} facts/s for {:?}",
        args.rate, args.duration
    );
    let acked: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let total = (args.rate as f64 * args.duration.as_secs_f64()) as usize;
    let seen = tokio::spawn(read_until(reader.clone(), acked.clone(), total));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..total {
        ticker.tick().await;
        let (mut c, acked) = (sender.clone(), acked.clone());
        tokio::spawn(async move {
            let id = format!("steady-{i}");
            let req = AppendFactRequest {
                stream_class: "operational".into(),
                fact: Some(fact(&id)),
            };
            if c.append_fact(req).await.is_ok() {
                acked.lock().expect("lock").insert(id, Instant::now());
            }
        });
    }
    let (lag, steady_elapsed) = seen.await??;
    let steady = serde_json::json!({
        "rate": args.rate,
        "facts": lag.len(),
        "lag_p50_ms": lag.value_at_quantile(0.5) as f64 / 1000.0,
        "lag_p99_ms": lag.value_at_quantile(0.99) as f64 / 1000.0,
        "lag_max_ms": lag.max() as f64 / 1000.0,
        "seconds": steady_elapsed.as_secs_f64(),
    });
    println!("{}", serde_json::to_string_pretty(&steady)?);

    // Drain: the receiver is away while a backlog accumulates, then catches up.
    println!(
        "==> drain run: {} facts accumulated while the receiver is stopped",
        args.backlog
    );
    let mut receiver = receiver;
    receiver.stop().await;
    let mut tasks = Vec::new();
    for w in 0..32 {
        let mut c = sender.clone();
        let n = args.backlog / 32;
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let req = AppendFactRequest {
                    stream_class: "operational".into(),
                    fact: Some(fact(&format!("drain-{w}-{i}"))),
                };
                c.append_fact(req).await.expect("sender append");
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let expected = (args.backlog / 32) * 32;
    let started = Instant::now();
    let receiver = RunningController::start(receiver_config, pair.dir.path()).await;
    let reader = bsfg_client::connect_grpc(&receiver.endpoint(), &pair.reader)?;
    let drained = tokio::spawn(read_until(reader, Arc::default(), expected)).await??;
    let secs = started.elapsed().as_secs_f64();
    let drain = serde_json::json!({
        "facts": drained.0.len(),
        "seconds": secs,
        "facts_per_second": expected as f64 / secs,
    });
    println!("{}", serde_json::to_string_pretty(&drain)?);
    if let Some(path) = &args.output.json {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&serde_json::json!({ "steady": steady, "drain": drain }))?,
        )?;
    }
    if let Some(path) = &args.output.markdown {
        std::fs::write(path, render_markdown(&steady, &drain))?;
    }
    Ok(())
}

/// The two runs as the Markdown table docs/benchmarks.md keeps.
pub fn render_markdown(steady: &serde_json::Value, drain: &serde_json::Value) -> String {
    let ms = |v: &serde_json::Value| v.as_f64().map_or_else(|| "-".into(), |v| format!("{v:.1}"));
    format!(
        "| run | facts | rate facts/s | lag p50 ms | lag p99 ms | lag max ms |\n\
         |---|---|---|---|---|---|\n\
         | steady | {} | {} (offered) | {} | {} | {} |\n\
         | drain of a backlog | {} | {:.0} (achieved) | - | - | - |\n",
        steady["facts"],
        steady["rate"],
        ms(&steady["lag_p50_ms"]),
        ms(&steady["lag_p99_ms"]),
        ms(&steady["lag_max_ms"]),
        drain["facts"],
        drain["facts_per_second"].as_f64().unwrap_or(0.0),
    )
}

/// Reads the receiver's forward consumer until `n` facts were seen; returns
/// the lag histogram (µs, for facts with a known acknowledgement time).
async fn read_until(
    mut reader: bsfg_client::BoundaryServiceClient<tonic::transport::Channel>,
    acked: Arc<Mutex<HashMap<String, Instant>>>,
    n: usize,
) -> anyhow::Result<(Histogram<u64>, Duration)> {
    let started = Instant::now();
    let mut lag = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut seen = 0;
    while seen < n {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {seen} of {n} facts arrived in 10 minutes"
        );
        let page = reader
            .fetch_facts(FetchFactsRequest {
                consumer_name: "from-plant-a".into(),
                limit: 1000,
            })
            .await?
            .into_inner()
            .facts;
        let Some(last) = page.last().map(|f| f.offset) else {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        };
        let now = Instant::now();
        {
            let acked = acked.lock().expect("lock");
            for f in &page {
                let id = &f
                    .fact
                    .as_ref()
                    .and_then(|f| f.envelope.as_ref())
                    .map(|e| e.message_id.clone())
                    .unwrap_or_default();
                match acked.get(id) {
                    Some(t) => {
                        lag.record(now.saturating_duration_since(*t).as_micros().max(1) as u64)?
                    }
                    None => lag.record(1)?,
                }
            }
        }
        seen += page.len();
        reader
            .confirm_receipt(ConfirmReceiptRequest {
                consumer_name: "from-plant-a".into(),
                offset: last,
            })
            .await?;
    }
    Ok((lag, started.elapsed()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_has_one_row_per_run() {
        let steady = serde_json::json!({ "rate": 1000, "facts": 10000, "lag_p50_ms": 9.127, "lag_p99_ms": 21.6, "lag_max_ms": 39.3 });
        let drain = serde_json::json!({ "facts": 20000, "facts_per_second": 5213.4 });
        let md = super::render_markdown(&steady, &drain);
        let rows: Vec<&str> = md.lines().collect();
        assert_eq!(
            rows[2],
            "| steady | 10000 | 1000 (offered) | 9.1 | 21.6 | 39.3 |"
        );
        assert_eq!(
            rows[3],
            "| drain of a backlog | 20000 | 5213 (achieved) | - | - | - |"
        );
    }
}
