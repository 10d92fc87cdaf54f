//! `bsfg-bench`: what the boundary costs, measured against a baseline taken
//! in the same run on the same machine (shared machines are noisy: compare
//! the ratios, not the absolute figures).

mod append;
mod failover;
mod procstat;
mod replication;
mod report;
mod zone;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Benchmarks of the BSFG controller against raw JetStream on the same cluster.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// AppendFact (gRPC, Connect JSON) vs raw JetStream publish, per durability
    /// tier, payload size and concurrency, on a loopback 3-node R3 cluster.
    Append(append::Args),
    /// Replication throughput and lag between two zones at a steady rate.
    Replication(replication::Args),
    /// Alpha-crash failover timing over repeated drills (runs bsfg-zonesim).
    Failover(failover::Args),
}

/// Where results go (besides the table on stdout).
#[derive(clap::Args, Debug, Clone)]
pub struct Output {
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the results as a Markdown table to this file (docs/benchmarks.md includes it).
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Append(a) => append::run(a).await,
            Command::Replication(a) => replication::run(a).await,
            Command::Failover(a) => failover::run(a).await,
        }
    })
}

/// Parses `5s`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| e.to_string())
}
