//! Failover timing: repeated Alpha-crash drills in the zone simulator,
//! reporting VIP move time and time to the first acknowledged append.

use std::process::{Command, Stdio};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Repetitions per drill.
    #[arg(long, default_value_t = 10)]
    repeat: u32,
    /// Drills to time (single-host crashes).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "alpha-crash,beta-crash,gamma-crash"
    )]
    drills: Vec<String>,
    #[command(flatten)]
    output: crate::Output,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let zonesim = std::env::current_exe()?.with_file_name("bsfg-zonesim");
    anyhow::ensure!(
        zonesim.is_file(),
        "{} not found: build it with cargo build --release -p bsfg-zonesim",
        zonesim.display()
    );
    let mut results = Vec::new();
    for drill in &args.drills {
        println!("==> {drill} × {}", args.repeat);
        // stderr (the drill's per-run progress) goes straight to the terminal.
        let out = Command::new(&zonesim)
            .args([
                "drill",
                drill,
                "--json",
                "--repeat",
                &args.repeat.to_string(),
            ])
            .stderr(Stdio::inherit())
            .output()?;
        let runs = parse_reports(&out.stdout)
            .map_err(|e| anyhow::anyhow!("{drill}: bsfg-zonesim printed no drill reports ({e})"))?;
        if !out.status.success() {
            // A failed run is reported (passed < runs), not hidden.
            eprintln!("warning: {drill}: not every run passed; see the table");
        }
        let summary = summarise(drill, &runs);
        println!("{}", serde_json::to_string_pretty(&summary)?);
        results.push(summary);
    }
    if let Some(path) = &args.output.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)?;
    }
    if let Some(path) = &args.output.markdown {
        std::fs::write(path, render_markdown(&results))?;
    }
    Ok(())
}

/// The summaries as the Markdown table docs/benchmarks.md keeps.
pub fn render_markdown(summaries: &[serde_json::Value]) -> String {
    let seconds = |s: &serde_json::Value, field: &str| {
        let f = |k: &str| {
            s[field][k]
                .as_f64()
                .map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
        };
        format!("{} / {}", f("median"), f("worst"))
    };
    let mut out = String::from(
        "| drill | passed / runs | VIP move s (median / worst) | first ack s (median / worst) | \
         longest stall s (median / worst) | lost | duplicates | dual-active samples |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for s in summaries {
        out.push_str(&format!(
            "| {} | {} / {} | {} | {} | {} | {} | {} | {} |\n",
            s["drill"].as_str().unwrap_or("?"),
            s["passed"],
            s["runs"],
            seconds(s, "vip_move_s"),
            seconds(s, "first_ack_s"),
            seconds(s, "longest_stall_s"),
            s["lost"],
            s["duplicates"],
            s["dual_active_samples"],
        ));
    }
    out
}

/// `drill --json` prints one report object, or an array of them with `--repeat` > 1.
pub fn parse_reports(stdout: &[u8]) -> serde_json::Result<Vec<serde_json::Value>> {
    Ok(match serde_json::from_slice(stdout)? {
        serde_json::Value::Array(runs) => runs,
        one => vec![one],
    })
}

/// Median and worst of each timing field over the repetitions.
pub fn summarise(drill: &str, runs: &[serde_json::Value]) -> serde_json::Value {
    let stat = |field: &str| {
        let mut v: Vec<f64> = runs.iter().filter_map(|r| r[field].as_f64()).collect();
        v.sort_by(f64::total_cmp);
        let median = v.get(v.len() / 2).copied();
        serde_json::json!({ "median": median, "worst": v.last(), "n": v.len() })
    };
    serde_json::json!({
        "drill": drill,
        "runs": runs.len(),
        "passed": runs.iter().filter(|r| r["passed"].as_bool() == Some(true)).count(),
        "vip_move_s": stat("vip_move_s"),
        "first_ack_s": stat("first_ack_s"),
        "longest_stall_s": stat("longest_stall_s"),
        "lost": runs.iter().filter_map(|r| r["lost"].as_u64()).sum::<u64>(),
        "duplicates": runs.iter().filter_map(|r| r["duplicates"].as_u64()).sum::<u64>(),
        "dual_active_samples": runs.iter().filter_map(|r| r["dual_active_samples"].as_u64()).sum::<u64>(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_takes_median_and_worst() {
        let runs: Vec<serde_json::Value> = [0.9, 0.5, 2.0]
            .iter()
            .map(|s| serde_json::json!({ "vip_move_s": s, "first_ack_s": s, "longest_stall_s": s, "lost": 0 }))
            .collect();
        let s = super::summarise("alpha-crash", &runs);
        assert_eq!(s["vip_move_s"]["median"], 0.9);
        assert_eq!(s["vip_move_s"]["worst"], 2.0);
        assert_eq!(s["lost"], 0);
    }

    #[test]
    fn markdown_row_shows_median_and_worst_and_dashes_for_missing_fields() {
        let runs = vec![serde_json::json!({ "passed": true, "longest_stall_s": 0.25, "lost": 0 })];
        let md = super::render_markdown(&[super::summarise("beta-crash", &runs)]);
        let row = md.lines().nth(2).expect("one data row");
        assert_eq!(
            row,
            "| beta-crash | 1 / 1 | - / - | - / - | 0.25 / 0.25 | 0 | 0 | 0 |"
        );
    }

    #[test]
    fn reports_parse_from_the_pretty_printed_array_and_from_one_object() {
        let many = b"[\n  {\n    \"drill\": \"alpha-crash\",\n    \"vip_move_s\": 0.6\n  },\n  {\n    \"drill\": \"alpha-crash\"\n  }\n]\n";
        let runs = super::parse_reports(many).expect("array");
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0]["vip_move_s"], 0.6);
        let one = super::parse_reports(b"{\n  \"drill\": \"beta-crash\"\n}\n").expect("object");
        assert_eq!(one.len(), 1);
        assert!(super::parse_reports(b"=== not json").is_err());
    }
}
