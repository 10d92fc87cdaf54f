//! Results: one cell per tier × payload × concurrency × mode, with ratios to
//! the raw JetStream baseline of the same tier, payload and concurrency.

use crate::zone::Tier;
use comfy_table::{Cell as TableCell, Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// async-nats JetStream publish of the same encoded fact, ack awaited.
    Raw,
    /// AppendFact over gRPC (one HTTP/2 connection, mTLS).
    Grpc,
    /// AppendFact over Connect JSON (one HTTP/1.1 keep-alive connection per producer, mTLS).
    Connect,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub tier: Tier,
    pub mode: Mode,
    pub payload: usize,
    pub concurrency: usize,
    pub facts_per_second: f64,
    pub failed: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub controller_cpu_s_per_10k: Option<f64>,
    pub controller_peak_rss: Option<u64>,
    /// CPU of the three nats-servers together, per 10k facts.
    pub nats_cpu_s_per_10k: f64,
    /// CPU of the benchmark's own clients, per 10k facts (on a real zone the
    /// producers run elsewhere; here they share the two cores).
    pub client_cpu_s_per_10k: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub tier: Tier,
    pub mode: Mode,
    pub payload: usize,
    pub concurrency: usize,
    /// Throughput as a fraction of raw (1.0 = as fast as raw).
    pub throughput_x: f64,
    /// p99 latency as a multiple of raw's.
    pub p99_x: f64,
    /// p50 latency minus raw's, milliseconds.
    pub p50_extra_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: String,
    pub machine: String,
    pub idle_rss: Vec<(Tier, u64)>,
    pub cells: Vec<Cell>,
}

impl Report {
    pub fn new(version: &str) -> Report {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Report {
            version: version.into(),
            machine: format!("{cpus} CPUs"),
            idle_rss: Vec::new(),
            cells: Vec::new(),
        }
    }

    fn baseline(&self, c: &Cell) -> Option<&Cell> {
        self.cells.iter().find(|b| {
            b.mode == Mode::Raw
                && b.tier == c.tier
                && b.payload == c.payload
                && b.concurrency == c.concurrency
        })
    }

    /// Ratios of every non-raw cell to its baseline.
    pub fn ratios(&self) -> Vec<Ratio> {
        self.cells
            .iter()
            .filter(|c| c.mode != Mode::Raw)
            .filter_map(|c| {
                let b = self.baseline(c)?;
                Some(Ratio {
                    tier: c.tier,
                    mode: c.mode,
                    payload: c.payload,
                    concurrency: c.concurrency,
                    throughput_x: c.facts_per_second / b.facts_per_second.max(f64::MIN_POSITIVE),
                    p99_x: c.p99_ms / b.p99_ms.max(f64::MIN_POSITIVE),
                    p50_extra_ms: c.p50_ms - b.p50_ms,
                })
            })
            .collect()
    }

    /// The same table in Markdown, with the idle RSS and the machine.
    pub fn render_markdown(&self) -> String {
        let ratios = self.ratios();
        let mut out = format!(
            "Measured by bsfg-bench {} on {}.\n\n",
            self.version, self.machine
        );
        for (tier, rss) in &self.idle_rss {
            out.push_str(&format!(
                "- controller idle RSS ({} cluster): {:.1} MiB\n",
                format!("{tier:?}").to_lowercase(),
                *rss as f64 / 1048576.0
            ));
        }
        out.push_str(
            "\n| tier | payload | conc. | mode | facts/s | × raw | p50 ms | p99 ms | p999 ms | p99 × raw | \
             controller CPU s/10k | nats CPU s/10k | client CPU s/10k | controller peak RSS MiB |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for c in &self.cells {
            let r = ratios.iter().find(|r| {
                r.mode == c.mode
                    && r.tier == c.tier
                    && r.payload == c.payload
                    && r.concurrency == c.concurrency
            });
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "| {} | {} B | {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {:.2} | {:.2} | {} |\n",
                format!("{:?}", c.tier).to_lowercase(),
                c.payload,
                c.concurrency,
                format!("{:?}", c.mode).to_lowercase(),
                c.facts_per_second,
                r.map(|r| format!("{:.2}", r.throughput_x)).unwrap_or_else(|| "1".into()),
                c.p50_ms,
                c.p99_ms,
                c.p999_ms,
                r.map(|r| format!("{:.2}", r.p99_x)).unwrap_or_else(|| "1".into()),
                or_dash(c.controller_cpu_s_per_10k.map(|v| format!("{v:.2}"))),
                c.nats_cpu_s_per_10k,
                c.client_cpu_s_per_10k,
                or_dash(c.controller_peak_rss.map(|v| format!("{:.1}", v as f64 / 1048576.0))),
            ));
        }
        out
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (tier, rss) in &self.idle_rss {
            out.push_str(&format!(
                "controller idle RSS ({tier:?} cluster): {:.1} MiB\n",
                *rss as f64 / 1048576.0
            ));
        }
        let ratios = self.ratios();
        let mut table = Table::new();
        table.load_style(UTF8_BORDERS_ONLY).set_header(vec![
            "tier",
            "payload",
            "conc.",
            "mode",
            "facts/s",
            "× raw",
            "p50 ms",
            "p99 ms",
            "p999 ms",
            "p99 × raw",
            "ctl CPU s/10k",
            "nats CPU s/10k",
            "client CPU s/10k",
            "ctl peak RSS MiB",
            "failed",
        ]);
        for c in &self.cells {
            let r = ratios.iter().find(|r| {
                r.mode == c.mode
                    && r.tier == c.tier
                    && r.payload == c.payload
                    && r.concurrency == c.concurrency
            });
            table.add_row(vec![
                TableCell::new(format!("{:?}", c.tier).to_lowercase()),
                TableCell::new(format!("{} B", c.payload)),
                TableCell::new(c.concurrency),
                TableCell::new(format!("{:?}", c.mode).to_lowercase()),
                TableCell::new(format!("{:.0}", c.facts_per_second)),
                TableCell::new(
                    r.map(|r| format!("{:.2}", r.throughput_x))
                        .unwrap_or_else(|| "1".into()),
                ),
                TableCell::new(format!("{:.2}", c.p50_ms)),
                TableCell::new(format!("{:.2}", c.p99_ms)),
                TableCell::new(format!("{:.2}", c.p999_ms)),
                TableCell::new(
                    r.map(|r| format!("{:.2}", r.p99_x))
                        .unwrap_or_else(|| "1".into()),
                ),
                TableCell::new(
                    c.controller_cpu_s_per_10k
                        .map(|v| format!("{v:.2}"))
                        .unwrap_or_else(|| "-".into()),
                ),
                TableCell::new(format!("{:.2}", c.nats_cpu_s_per_10k)),
                TableCell::new(format!("{:.2}", c.client_cpu_s_per_10k)),
                TableCell::new(
                    c.controller_peak_rss
                        .map(|v| format!("{:.1}", v as f64 / 1048576.0))
                        .unwrap_or_else(|| "-".into()),
                ),
                TableCell::new(c.failed),
            ]);
        }
        out.push_str(&table.to_string());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(mode: Mode, fps: f64, p50: f64, p99: f64) -> Cell {
        Cell {
            tier: Tier::Standard,
            mode,
            payload: 256,
            concurrency: 16,
            facts_per_second: fps,
            failed: 0,
            p50_ms: p50,
            p99_ms: p99,
            p999_ms: p99,
            controller_cpu_s_per_10k: None,
            controller_peak_rss: None,
            nats_cpu_s_per_10k: 0.0,
            client_cpu_s_per_10k: 0.0,
        }
    }

    #[test]
    fn ratios_compare_with_the_matching_baseline() {
        let mut r = Report::new("x");
        r.cells.push(cell(Mode::Raw, 10_000.0, 1.0, 4.0));
        r.cells.push(cell(Mode::Grpc, 6_000.0, 1.25, 6.0));
        let other = Cell {
            concurrency: 1,
            ..cell(Mode::Raw, 1.0, 1.0, 1.0)
        };
        r.cells.push(other);
        let ratios = r.ratios();
        assert_eq!(ratios.len(), 1);
        assert!((ratios[0].throughput_x - 0.6).abs() < 1e-9);
        assert!((ratios[0].p99_x - 1.5).abs() < 1e-9);
        assert!((ratios[0].p50_extra_ms - 0.25).abs() < 1e-9);
        assert!(r.render().contains("0.60"));
        let md = r.render_markdown();
        assert!(
            md.contains(
                "| standard | 256 B | 16 | grpc | 6000 | 0.60 | 1.25 | 6.00 | 6.00 | 1.50 |"
            ),
            "{md}"
        );
    }
}
