//! Failover timing: repeated Alpha-crash drills in the zone simulator,
//! reporting VIP move time and time to the first acknowledged append.

use std::process::Command;

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
        let out = Command::new(&zonesim)
            .args([
                "drill",
                drill,
                "--json",
                "--repeat",
                &args.repeat.to_string(),
            ])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "{drill}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let runs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let summary = summarise(drill, &runs);
        println!("{}", serde_json::to_string_pretty(&summary)?);
        results.push(summary);
    }
    if let Some(path) = &args.output.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)?;
    }
    Ok(())
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
}
