//! The drills in the systemd mode (`--init systemd`): every host a
//! container booting systemd 252 with the appliance's own units (rendered
//! by modules/lib/container.nix). The twins of the six NixOS VM tests
//! (tests/scripts/*.py; docs/testing.md maps them) plus what only systemd
//! does: restarting a crashed agent and the watchdog killing a hung one.
//! Same assertions as tests/drills.rs: nothing lost, nothing stored twice,
//! never two controllers serving, every check of the drill. The first run
//! on a machine builds the cached Debian root (debootstrap, a few minutes).
//!
//! CI (`scripts/test`) runs all ten (each boots its own containers; the
//! drills' per-test wall times are in docs/zone-simulator.md). The
//! snapshot recovery on containers is `#[ignore]`d (time budget) and runs
//! with `cargo nextest run -p bsfg-zonesim --run-ignored all -E 'test(/systemd_drill_/)'`.

use bsfg_zonesim::container::Init;
use bsfg_zonesim::drills::{self, Drill, DrillOptions};
use bsfg_zonesim::load::LoadConfig;
use bsfg_zonesim::report::DrillReport;
use bsfg_zonesim::zone::Options;
use std::sync::atomic::{AtomicU32, Ordering};

fn systemd_drill(d: Drill) -> DrillReport {
    static N: AtomicU32 = AtomicU32::new(0);
    assert!(
        rustix::process::geteuid().is_root(),
        "the drills need root (namespaces, containers); run the suite as root, as CI does"
    );
    let instance = format!(
        "s{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut zone = Options::new(&instance);
    zone.init = Init::Systemd;
    let opts = DrillOptions {
        zone,
        load: LoadConfig::new("drill"),
        keep_logs: Some(std::env::temp_dir().join("bsfg-zonesim-logs")),
        keep_logs_on_failure_only: true,
        tier: None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let r = rt
        .block_on(drills::run(d, &opts))
        .unwrap_or_else(|e| panic!("drill {} (systemd): {e:#}", d.name()));
    println!("{}", r.summary());
    assert!(r.acked > 0, "no append acknowledged");
    assert_eq!(r.lost, 0, "acknowledged appends lost: {:?}", r.lost_ids);
    assert_eq!(r.duplicates, 0, "message ids stored twice");
    assert_eq!(r.dual_active_samples, 0, "two controllers served at once");
    assert!(r.samples > 0, "the checker took no samples");
    assert!(r.passed, "{}", r.summary());
    r
}

/// VM test bring-up (tests/scripts/bring_up.py).
#[test]
fn systemd_drill_bring_up() {
    systemd_drill(Drill::BringUp);
}

/// VM test boot-semantics (tests/scripts/boot_semantics.py).
#[test]
fn systemd_drill_boot() {
    systemd_drill(Drill::Boot);
}

/// VM test alpha-crash (tests/scripts/alpha_crash.py).
#[test]
fn systemd_drill_alpha_crash() {
    systemd_drill(Drill::AlphaCrash);
}

/// VM test gamma-crash (tests/scripts/gamma_crash.py).
#[test]
fn systemd_drill_gamma_crash() {
    systemd_drill(Drill::GammaCrash);
}

/// VM test alpha-isolated (tests/scripts/alpha_isolated.py).
#[test]
fn systemd_drill_alpha_isolated() {
    systemd_drill(Drill::AlphaIsolated);
}

/// VM test gates (tests/scripts/gates.py): artifact storage unmounted.
#[test]
fn systemd_drill_artifact_mount_missing() {
    systemd_drill(Drill::ArtifactMountMissing);
}

/// VM test gates: certificate below the policy's threshold.
#[test]
fn systemd_drill_cert_below_threshold() {
    systemd_drill(Drill::CertBelowThreshold);
}

/// The agent SIGKILLed: `Restart=always` brings it back.
#[test]
fn systemd_drill_agent_killed() {
    systemd_drill(Drill::AgentKilled);
}

/// The agent SIGSTOPped: `WatchdogSec=` kills and restarts it.
#[test]
fn systemd_drill_agent_stopped() {
    systemd_drill(Drill::AgentStopped);
}

/// Every unit of every container switched onto a new build under load,
/// as `nixos-rebuild switch` restarts them (docs/runbooks/upgrade.md).
#[test]
fn systemd_drill_rolling_upgrade() {
    let r = systemd_drill(Drill::RollingUpgrade);
    for e in &r.events {
        println!("{:>7.1} s  {}", e.at_s, e.what);
    }
    println!(
        "rolling upgrade (systemd): longest stall {:.2} s, {} acknowledged, wall time {:.0} s",
        r.longest_stall_s, r.acked, r.duration_s
    );
}

/// The snapshot recovery runbook on containers: `systemctl stop` of the
/// agents and nats-server, every store emptied, `bsfgctl restore`.
#[test]
#[ignore = "not in CI (time budget: ~75 s); the process-mode zone-restore runs in CI"]
fn systemd_drill_zone_restore() {
    systemd_drill(Drill::ZoneRestore);
}
