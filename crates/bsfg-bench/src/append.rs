//! The AppendFact benchmark: raw JetStream publish (the baseline), gRPC and
//! Connect JSON, each tier × payload × concurrency, in one run.

use crate::procstat;
use crate::report::{Cell, Mode, Report};
use crate::zone::{BenchZone, Tier};
use async_nats::jetstream;
use bsfg_client::connect::Codec;
use bsfg_client::pb::{AppendFactRequest, AppendFactResponse, Envelope, Fact};
use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use prost::Message;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Measured time per cell.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up per cell.
    #[arg(long, default_value = "1s", value_parser = crate::parse_duration)]
    warmup: Duration,
    /// `object_json` sizes, bytes.
    #[arg(long, value_delimiter = ',', default_value = "256,4096")]
    payloads: Vec<usize>,
    /// Concurrent producers.
    #[arg(long, value_delimiter = ',', default_value = "1,16,256")]
    concurrency: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "standard,critical")]
    tiers: Vec<Tier>,
    #[arg(long, value_delimiter = ',', default_value = "raw,grpc,connect")]
    modes: Vec<Mode>,
    /// HTTP/2 connections the gRPC producers share (round-robin), as a gRPC
    /// client pool does; one connection serialises all framing on one task.
    #[arg(long, default_value_t = 4)]
    grpc_connections: usize,
    #[command(flatten)]
    output: crate::Output,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cells = args.tiers.len() * args.payloads.len() * args.concurrency.len() * args.modes.len();
    let bar = ProgressBar::new(cells as u64).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    let mut report = Report::new(env!("CARGO_PKG_VERSION"));
    for &tier in &args.tiers {
        bar.set_message(format!(
            "starting a 3-node {tier:?} cluster and the controller"
        ));
        let zone = BenchZone::start(tier).await?;
        let idle = procstat::rss(zone.pid()).unwrap_or(0);
        report.idle_rss.push((tier, idle));
        let js = jetstream::new(async_nats::connect(zone.nats.client_url(0)).await?);
        js.get_or_create_stream(jetstream::stream::Config {
            name: "bench_raw".into(),
            subjects: vec!["bench.raw.>".into()],
            num_replicas: 3,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await?;
        for &payload in &args.payloads {
            for &concurrency in &args.concurrency {
                for &mode in &args.modes {
                    bar.set_message(format!("{tier:?} {payload} B × {concurrency} {mode:?}"));
                    let cell = measure(
                        &zone,
                        &js,
                        tier,
                        mode,
                        payload,
                        concurrency,
                        args.grpc_connections,
                        args.warmup,
                        args.duration,
                    )
                    .await?;
                    bar.inc(1);
                    report.cells.push(cell);
                    purge(&js).await;
                }
            }
        }
    }
    bar.finish_and_clear();
    println!("{}", report.render());
    if let Some(path) = &args.output.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        println!("JSON written to {}", path.display());
    }
    if let Some(path) = &args.output.markdown {
        std::fs::write(path, report.render_markdown())?;
        println!("Markdown written to {}", path.display());
    }
    Ok(())
}

async fn purge(js: &jetstream::Context) {
    for name in ["bench_raw", "facts_operational"] {
        if let Ok(s) = js.get_stream(name).await {
            let _ = s.purge().await;
        }
    }
}

/// The fact a producer sends: `object_json` of exactly `payload` bytes.
fn fact(id: &str, payload: usize) -> Fact {
    Fact {
        envelope: Some(Envelope {
            message_id: id.into(),
            from_zone: "bench".into(),
            to_zone: "enterprise".into(),
            produced_at_unix_ms: 1_780_000_000_000,
            ..Default::default()
        }),
        subject: "order:line-1/42".into(),
        predicate: "has_status".into(),
        object_json: format!("\"{}\"", "x".repeat(payload.saturating_sub(2))),
    }
}

enum Sender {
    Raw(jetstream::Context),
    Grpc(bsfg_client::BoundaryServiceClient<tonic::transport::Channel>),
    Connect(bsfg_client::connect::ConnectSession),
}

impl Sender {
    async fn send(&mut self, id: &str, payload: usize) -> bool {
        let f = fact(id, payload);
        match self {
            // The baseline publishes the same encoded fact the controller would store.
            Sender::Raw(js) => match js
                .publish(format!("bench.raw.{id}"), Bytes::from(f.encode_to_vec()))
                .await
            {
                Ok(ack) => ack.await.is_ok(),
                Err(_) => false,
            },
            Sender::Grpc(c) => c
                .append_fact(AppendFactRequest {
                    stream_class: "operational".into(),
                    fact: Some(f),
                })
                .await
                .is_ok(),
            Sender::Connect(s) => matches!(
                s.call::<_, AppendFactResponse>(
                    "AppendFact",
                    Codec::Json,
                    &AppendFactRequest {
                        stream_class: "operational".into(),
                        fact: Some(f)
                    }
                )
                .await,
                Ok(Ok(_))
            ),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn measure(
    zone: &BenchZone,
    js: &jetstream::Context,
    tier: Tier,
    mode: Mode,
    payload: usize,
    concurrency: usize,
    grpc_connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Cell> {
    let grpc: Vec<_> = (0..grpc_connections.clamp(1, concurrency))
        .map(|_| bsfg_client::connect_grpc(&zone.controller.endpoint(), &zone.producer))
        .collect::<Result<_, _>>()?;
    let connect =
        bsfg_client::connect::ConnectClient::new(&zone.controller.endpoint(), &zone.producer)?;
    let pid = zone.pid();
    let start_at = Instant::now() + Duration::from_millis(200);
    let measure_from = start_at + warmup;
    let stop_at = measure_from + duration;
    let run_id: u64 = rand_id();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let mut sender = match mode {
            Mode::Raw => Sender::Raw(js.clone()),
            Mode::Grpc => Sender::Grpc(grpc[w % grpc.len()].clone()),
            Mode::Connect => Sender::Connect(connect.session().await?),
        };
        workers.push(tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut ok, mut failed, mut n) = (0u64, 0u64, 0u64);
            tokio::time::sleep_until(start_at.into()).await;
            loop {
                let t0 = Instant::now();
                if t0 >= stop_at {
                    break;
                }
                let id = format!("{run_id:x}-{w}-{n}");
                n += 1;
                let success = sender.send(&id, payload).await;
                if t0 >= measure_from {
                    if success {
                        ok += 1;
                        let _ = hist.record(t0.elapsed().as_micros() as u64);
                    } else {
                        failed += 1;
                    }
                }
            }
            (hist, ok, failed)
        }));
    }
    // Controller resources over the measured window only.
    tokio::time::sleep_until(measure_from.into()).await;
    procstat::reset_peak(pid);
    let nats_pids: Vec<u32> = (0..zone.nats.len())
        .filter_map(|i| zone.nats.pid(i))
        .collect();
    let cpu_of =
        |pids: &[u32]| -> Duration { pids.iter().filter_map(|p| procstat::cpu_time(*p)).sum() };
    let me = std::process::id();
    let (cpu0, nats0, client0) = (
        procstat::cpu_time(pid).unwrap_or_default(),
        cpu_of(&nats_pids),
        cpu_of(&[me]),
    );
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (h, o, f) = w.await?;
        hist.add(h)?;
        ok += o;
        failed += f;
    }
    let cpu = procstat::cpu_time(pid)
        .unwrap_or_default()
        .saturating_sub(cpu0);
    let nats_cpu = cpu_of(&nats_pids).saturating_sub(nats0);
    let client_cpu = cpu_of(&[me]).saturating_sub(client0);
    let per_10k = |d: Duration| {
        if ok > 0 {
            d.as_secs_f64() * 10_000.0 / ok as f64
        } else {
            0.0
        }
    };
    let peak = procstat::peak_rss(pid).unwrap_or(0);
    let secs = duration.as_secs_f64();
    Ok(Cell {
        tier,
        mode,
        payload,
        concurrency,
        facts_per_second: ok as f64 / secs,
        failed,
        p50_ms: hist.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        p999_ms: hist.value_at_quantile(0.999) as f64 / 1000.0,
        controller_cpu_s_per_10k: (mode != Mode::Raw && ok > 0)
            .then(|| cpu.as_secs_f64() * 10_000.0 / ok as f64),
        controller_peak_rss: (mode != Mode::Raw).then_some(peak),
        nats_cpu_s_per_10k: per_10k(nats_cpu),
        client_cpu_s_per_10k: per_10k(client_cpu),
    })
}

fn rand_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
