//! Every drill as an integration test, on a fresh zone instance of its own:
//! real nats-server, keepalived, gate agents and controllers in network
//! namespaces. Tests named `drill_*` run one at a time (.config/nextest.toml).
//!
//! They assert outcomes only — nothing lost, nothing stored twice, never two
//! controllers serving, the contract's final placement and each drill's
//! checks — never timings (those are measured and reported:
//! docs/zone-simulator.md). They need root and fail, never skip, without it.
//! A failed drill leaves every host's logs under
//! `$TMPDIR/bsfg-zonesim-logs/<instance>-<drill>/`.

use bsfg_zonesim::drills::{self, Drill, DrillOptions};
use bsfg_zonesim::load::LoadConfig;
use bsfg_zonesim::zone::Options;
use std::sync::atomic::{AtomicU32, Ordering};

fn instance() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn drill(d: Drill) -> bsfg_zonesim::report::DrillReport {
    drill_on(d, None)
}

/// Runs a drill (on `tier`, or the zone file's own) and prints its summary.
fn run(d: Drill, tier: Option<&str>) -> bsfg_zonesim::report::DrillReport {
    assert!(
        rustix::process::geteuid().is_root(),
        "the drills need root (network namespaces, keepalived); run the suite as root, \
         as CI does: sudo env PATH=\"$PATH\" ./scripts/test"
    );
    let opts = DrillOptions {
        zone: Options::new(&instance()),
        load: LoadConfig::new("drill"),
        keep_logs: Some(std::env::temp_dir().join("bsfg-zonesim-logs")),
        keep_logs_on_failure_only: true,
        tier: tier.map(str::to_owned),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = rt
        .block_on(drills::run(d, &opts))
        .unwrap_or_else(|e| panic!("drill {}: {e:#}", d.name()));
    println!("{}", report.summary());
    report
}

fn drill_on(d: Drill, tier: Option<&str>) -> bsfg_zonesim::report::DrillReport {
    let report = run(d, tier);
    assert!(report.acked > 0, "no append acknowledged");
    assert_eq!(
        report.lost, 0,
        "acknowledged appends lost: {:?}",
        report.lost_ids
    );
    assert_eq!(report.duplicates, 0, "message ids stored twice");
    assert_eq!(
        report.dual_active_samples, 0,
        "two controllers served at once"
    );
    assert!(report.samples > 0, "the checker took no samples");
    assert!(report.passed, "{}", report.summary());
    report
}

#[test]
fn drill_bring_up() {
    drill(Drill::BringUp);
}

#[test]
fn drill_boot() {
    drill(Drill::Boot);
}

#[test]
fn drill_alpha_crash() {
    drill(Drill::AlphaCrash);
}

#[test]
fn drill_beta_crash() {
    drill(Drill::BetaCrash);
}

#[test]
fn drill_gamma_crash() {
    drill(Drill::GammaCrash);
}

#[test]
fn drill_alpha_beta_crash() {
    drill(Drill::AlphaBetaCrash);
}

#[test]
fn drill_alpha_isolated() {
    drill(Drill::AlphaIsolated);
}

#[test]
fn drill_gamma_isolated() {
    drill(Drill::GammaIsolated);
}

#[test]
fn drill_jetstream_killed() {
    drill(Drill::JetstreamKilled);
}

#[test]
fn drill_keepalived_killed() {
    drill(Drill::KeepalivedKilled);
}

#[test]
fn drill_artifact_mount_missing() {
    drill(Drill::ArtifactMountMissing);
}

#[test]
fn drill_cert_below_threshold() {
    drill(Drill::CertBelowThreshold);
}

#[test]
fn drill_flapping() {
    drill(Drill::Flapping);
}

#[test]
fn drill_vrrp_one_way() {
    drill(Drill::VrrpOneWay);
}

/// The receiving zone's alpha crashes while it pulls from a peer
/// zone node; every fact the peer acknowledged is in the forward buffer once.
#[test]
fn drill_replication_alpha_crash() {
    let report = drill(Drill::ReplicationAlphaCrash);
    let r = report
        .replication
        .as_ref()
        .expect("a replication drill reports the replication");
    // Every acknowledged fact (lost == 0 above), and nothing but the facts
    // the producers sent (an abandoned one may have been stored).
    assert!(
        (report.acked..=report.acked + report.abandoned).contains(&r.forwarded),
        "{} facts in the forward buffer, {} acknowledged, {} abandoned",
        r.forwarded,
        report.acked,
        report.abandoned
    );
    assert_eq!(
        r.peer_stored, report.acked,
        "the peer stored what it acknowledged"
    );
    let end = r.status_at_end.as_ref().expect("beta's replicator status");
    assert_eq!(
        (end.state, end.backlog),
        (bsfg_mgmt::PeerState::CaughtUp, 0)
    );
    assert!(
        r.lag_before_fault.is_some() && r.lag_after_resume.is_some(),
        "facts replicated both before the crash and after it: {r:?}"
    );
}

#[test]
fn drill_cert_rotation() {
    drill(Drill::CertRotation);
}

#[test]
fn drill_ca_rollover() {
    drill(Drill::CaRollover);
}

/// Every drill has its test above (a new drill without one fails here;
/// the systemd mode's own drills are in systemd_drills.rs).
#[test]
fn every_drill_has_a_test() {
    let source = include_str!("drills.rs");
    for d in Drill::ALL.into_iter().filter(|d| !d.needs_systemd()) {
        // `drill_<name>`, or one per tier: `drill_<name>_<tier>`.
        let test = format!("fn drill_{}", d.name().replace('-', "_"));
        assert!(
            source.contains(&format!("{test}()")) || source.contains(&format!("{test}_")),
            "no test {test} for drill {}",
            d.name()
        );
    }
}

/// One power-loss run: every acknowledged fact and artifact survives, the
/// zone recovers by itself.
fn power_loss_keeps_everything(d: Drill, tier: &str) {
    let r = drill_on(d, Some(tier));
    let p = r.power.as_ref().expect("a power report");
    assert_eq!(p.tier, tier);
    assert!(p.recovered, "the zone did not recover by itself");
    assert!(p.artifacts_acked > 0, "no artifact acknowledged");
    assert_eq!(
        p.artifacts_lost, 0,
        "acknowledged artifacts lost: {:?}",
        p.artifacts_lost_keys
    );
}

/// The critical tier keeps every acknowledged write through a power loss
/// of all three hosts at one instant, over the runs CI can afford.
#[test]
fn drill_power_loss_all_critical() {
    for _ in 0..2 {
        power_loss_keeps_everything(Drill::PowerLossAll, "critical");
    }
}

#[test]
fn drill_power_loss_one_critical() {
    power_loss_keeps_everything(Drill::PowerLossOne, "critical");
}

#[test]
fn drill_power_loss_one_standard() {
    power_loss_keeps_everything(Drill::PowerLossOne, "standard");
}

/// The standard tier may lose what it acknowledged since the last sync
/// when every host loses power: the figure is reported, not asserted.
#[test]
fn drill_power_loss_all_standard() {
    let r = run(Drill::PowerLossAll, Some("standard"));
    let p = r.power.as_ref().expect("a power report");
    println!(
        "standard tier, power loss of every host: {} acknowledged, {} lost, {} duplicates; \
         artifacts {} acknowledged, {} lost; recovered by itself: {} ({:?} s)",
        r.acked,
        r.lost,
        r.duplicates,
        p.artifacts_acked,
        p.artifacts_lost,
        p.recovered,
        p.recovery_s
    );
    assert!(r.acked > 0, "no append acknowledged");
    assert_eq!(r.dual_active_samples, 0, "two controllers served at once");
}

#[test]
fn drill_orphaned_controller() {
    let r = drill(Drill::OrphanedController);
    assert_eq!(
        r.lease_without_vip_samples,
        Some(0),
        "a host without the VIP held the lease"
    );
    assert!(r.recovery_s.is_some(), "the zone never served again");
}

#[test]
fn drill_agent_crash_loop() {
    drill(Drill::AgentCrashLoop);
}

#[test]
fn drill_first_boot_without_secrets() {
    let r = drill(Drill::FirstBootWithoutSecrets);
    assert!(
        r.recovery_s.is_some(),
        "beta never served once its secrets appeared"
    );
}

#[test]
fn drill_zone_restore() {
    // Facts acknowledged after the snapshot are not expected back (the
    // drill reports them); everything else is asserted as for any drill.
    drill(Drill::ZoneRestore);
}

/// Every daemon replaced by a new build under load, in the planned order;
/// the longest stall is reported (docs/runbooks/upgrade.md).
#[test]
fn drill_rolling_upgrade() {
    let r = drill(Drill::RollingUpgrade);
    println!(
        "rolling upgrade: longest stall {:.2} s, {} acknowledged, wall time {:.0} s",
        r.longest_stall_s, r.acked, r.duration_s
    );
}
