//! Failover timing: repeated Alpha-crash drills in the zone simulator,
//! reporting VIP move time and time to the first acknowledged append.

use bsfg_zonesim::report::{Aggregate, DrillReport, Spread, aggregate, aggregate_table};
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
        results.extend(aggregate(&runs));
    }
    println!("{}", aggregate_table(&results));
    if let Some(path) = &args.output.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)?;
    }
    if let Some(path) = &args.output.markdown {
        std::fs::write(path, render_markdown(&results))?;
    }
    Ok(())
}

/// `drill --json` prints one report object, or an array of them with `--repeat` > 1.
pub fn parse_reports(stdout: &[u8]) -> serde_json::Result<Vec<DrillReport>> {
    let value: serde_json::Value = serde_json::from_slice(stdout)?;
    if value.is_array() {
        serde_json::from_value(value)
    } else {
        Ok(vec![serde_json::from_value(value)?])
    }
}

/// The aggregates as the Markdown table docs/benchmarks.md keeps.
pub fn render_markdown(aggregates: &[Aggregate]) -> String {
    let spread = |s: &Spread| {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        format!("{} / {}", f(s.median), f(s.worst))
    };
    let mut out = String::from(
        "| drill | passed / runs | VIP move s (median / worst) | first ack s (median / worst) | \
         longest stall s (median / worst) | lost | duplicates | dual-active samples |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for a in aggregates {
        out.push_str(&format!(
            "| {} | {} / {} | {} | {} | {} | {} | {} | {} |\n",
            a.drill,
            a.passed,
            a.runs,
            spread(&a.vip_move_s),
            spread(&a.first_ack_s),
            spread(&a.longest_stall_s),
            a.lost,
            a.duplicates,
            a.dual_active_samples,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use bsfg_zonesim::report::DrillReport;

    #[test]
    fn markdown_row_shows_median_and_worst_and_dashes_for_missing_fields() {
        let runs = [0.25, 0.05].map(|stall| DrillReport {
            drill: "beta-crash".into(),
            passed: true,
            longest_stall_s: stall,
            ..Default::default()
        });
        let md = super::render_markdown(&super::aggregate(&runs));
        let row = md.lines().nth(2).expect("one data row");
        assert_eq!(
            row,
            "| beta-crash | 2 / 2 | - / - | - / - | 0.15 / 0.25 | 0 | 0 | 0 |"
        );
    }

    #[test]
    fn reports_parse_from_the_pretty_printed_array_and_from_one_object() {
        let one = DrillReport {
            drill: "alpha-crash".into(),
            vip_move_s: Some(0.6),
            ..Default::default()
        };
        let many = serde_json::to_string_pretty(&[one.clone(), one.clone()]).unwrap();
        let runs = super::parse_reports(many.as_bytes()).expect("array");
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].vip_move_s, Some(0.6));
        let single = serde_json::to_string_pretty(&one).unwrap();
        assert_eq!(
            super::parse_reports(single.as_bytes()).expect("object"),
            vec![one]
        );
        assert!(super::parse_reports(b"=== not json").is_err());
    }
}
