//! The drills: each brings up a fresh zone instance, runs the load generator
//! and the checker, injects its fault (`scenarios`), waits for the
//! contract's outcome, reads every fact back ([`read_back`]) and reports
//! ([`assess`], pure: [`crate::report::DrillReport`]).
//!
//! Expected outcomes are contract section 8; the NixOS VM tests
//! (tests/*.nix) have one twin each here (docs/testing.md).

pub mod assess;
pub mod checker;
mod ctx;
pub mod logs;
pub mod metrics;
pub mod outcome;
pub mod power;
pub mod read_back;
pub mod replication;
pub mod restore;
mod scenarios;
pub mod service_probe;
pub mod upgrade;

pub use ctx::Ctx;

use crate::load::{Load, LoadConfig};
use crate::report::DrillReport;
use crate::zone::peer::PEER;
use crate::zone::{Options, Zone};
use anyhow::{Context, Result, bail};
use checker::Checker;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Time allowed for a promotion or a recovery before a drill gives up.
pub const PROMOTION_TIMEOUT: Duration = Duration::from_secs(60);
/// The read-back gives up on missing ids after this long without new facts.
pub const READ_BACK_QUIET: Duration = Duration::from_secs(20);

/// Time allowed for a zone to boot.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// Every drill, in the order `drill all` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Drill {
    BringUp,
    Boot,
    AlphaCrash,
    BetaCrash,
    GammaCrash,
    AlphaBetaCrash,
    AlphaIsolated,
    GammaIsolated,
    JetstreamKilled,
    KeepalivedKilled,
    ArtifactMountMissing,
    CertBelowThreshold,
    Flapping,
    VrrpOneWay,
    ReplicationAlphaCrash,
    PowerLossAll,
    PowerLossOne,
    AgentKilled,
    AgentStopped,
    OrphanedController,
    AgentCrashLoop,
    FirstBootWithoutSecrets,
    ZoneRestore,
    RollingUpgrade,
    CertRotation,
    CaRollover,
}

impl Drill {
    pub const ALL: [Drill; 26] = [
        Drill::BringUp,
        Drill::Boot,
        Drill::AlphaCrash,
        Drill::BetaCrash,
        Drill::GammaCrash,
        Drill::AlphaBetaCrash,
        Drill::AlphaIsolated,
        Drill::GammaIsolated,
        Drill::JetstreamKilled,
        Drill::KeepalivedKilled,
        Drill::ArtifactMountMissing,
        Drill::CertBelowThreshold,
        Drill::Flapping,
        Drill::VrrpOneWay,
        Drill::ReplicationAlphaCrash,
        Drill::PowerLossAll,
        Drill::PowerLossOne,
        Drill::AgentKilled,
        Drill::AgentStopped,
        Drill::OrphanedController,
        Drill::AgentCrashLoop,
        Drill::FirstBootWithoutSecrets,
        Drill::ZoneRestore,
        Drill::RollingUpgrade,
        Drill::CertRotation,
        Drill::CaRollover,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Drill::BringUp => "bring-up",
            Drill::Boot => "boot",
            Drill::AlphaCrash => "alpha-crash",
            Drill::BetaCrash => "beta-crash",
            Drill::GammaCrash => "gamma-crash",
            Drill::AlphaBetaCrash => "alpha-beta-crash",
            Drill::AlphaIsolated => "alpha-isolated",
            Drill::GammaIsolated => "gamma-isolated",
            Drill::JetstreamKilled => "jetstream-killed",
            Drill::KeepalivedKilled => "keepalived-killed",
            Drill::ArtifactMountMissing => "artifact-mount-missing",
            Drill::CertBelowThreshold => "cert-below-threshold",
            Drill::Flapping => "flapping",
            Drill::VrrpOneWay => "vrrp-one-way",
            Drill::ReplicationAlphaCrash => "replication-alpha-crash",
            Drill::PowerLossAll => "power-loss-all",
            Drill::PowerLossOne => "power-loss-one",
            Drill::AgentKilled => "agent-killed",
            Drill::AgentStopped => "agent-stopped",
            Drill::OrphanedController => "orphaned-controller",
            Drill::AgentCrashLoop => "agent-crash-loop",
            Drill::FirstBootWithoutSecrets => "first-boot-without-secrets",
            Drill::ZoneRestore => "zone-restore",
            Drill::RollingUpgrade => "rolling-upgrade",
            Drill::CertRotation => "cert-rotation",
            Drill::CaRollover => "ca-rollover",
        }
    }

    /// What the drill does, one line (for `--help` and `drill --list`).
    pub fn about(self) -> &'static str {
        match self {
            Drill::BringUp => {
                "VM twin bring-up: 3 voters, VIP and controller on alpha only, controller on the VIP only, idempotent appends"
            }
            Drill::Boot => {
                "VM twin boot-semantics: beta alone, then gamma, then alpha; then all at once: the controller only ever through the agent"
            }
            Drill::AlphaCrash => {
                "alpha dies (processes killed, cable pulled): VIP and controller move to beta"
            }
            Drill::BetaCrash => "beta dies: no role change",
            Drill::GammaCrash => "gamma dies: quorum of two, no role change; gamma rejoins",
            Drill::AlphaBetaCrash => {
                "alpha and beta die: zone unavailable; beta returns and serves, alpha rejoins as standby"
            }
            Drill::AlphaIsolated => {
                "alpha partitioned from beta and gamma: alpha demotes, beta promotes, no failback after healing"
            }
            Drill::GammaIsolated => "gamma partitioned from alpha and beta: no change",
            Drill::JetstreamKilled => {
                "nats-server killed on the active host: it demotes, beta promotes"
            }
            Drill::KeepalivedKilled => {
                "keepalived killed (SIGKILL) on the active host: its VIP is stale, the agent steps down, beta serves"
            }
            Drill::ArtifactMountMissing => {
                "beta's artifact storage missing when alpha dies: promotion denied with the reason, then granted"
            }
            Drill::CertBelowThreshold => {
                "beta's certificate below the 30-day policy when alpha dies: promotion denied, then granted"
            }
            Drill::Flapping => {
                "the active host's cable flaps four times: one controller at a time, hold-down, no ping-pong"
            }
            Drill::VrrpOneWay => {
                "beta stops hearing alpha's VRRP adverts: both hold the VIP, only the lease holder serves"
            }
            Drill::ReplicationAlphaCrash => {
                "alpha dies while the zone pulls facts from a peer zone node: beta resumes replication, every fact once"
            }
            Drill::PowerLossAll => {
                "all three hosts lose power at one instant under load (disks keep only what was synced), then boot: what is lost per tier"
            }
            Drill::PowerLossOne => {
                "the active host loses power under load (its disks keep only what was synced): beta serves, nothing acknowledged lost"
            }
            Drill::AgentKilled => {
                "--init systemd: the active host's gate agent SIGKILLed; systemd restarts it, it adopts or stops the running controller; never two serving"
            }
            Drill::AgentStopped => {
                "--init systemd: the active host's gate agent SIGSTOPped; systemd's watchdog (WatchdogSec) kills and restarts it; never two serving"
            }
            Drill::OrphanedController => {
                "alpha's agent killed, alpha's cable out 8 s, then beta's controller frozen past its lease: no controller without the VIP ever holds the lease; the zone serves again"
            }
            Drill::AgentCrashLoop => {
                "the active host's agent crashes again and again (restarted with backoff, as systemd does): never two serving, a live agent on every service host at the end"
            }
            Drill::FirstBootWithoutSecrets => {
                "beta boots without its certificate and NATS password file: its agent names each missing path, refuses, and promotes once they appear"
            }
            Drill::ZoneRestore => {
                "under load, bsfgctl backup on gamma; more load; every host's JetStream store destroyed; bsfgctl restore; the zone resumes: every fact before the snapshot back once at its offset"
            }
            Drill::RollingUpgrade => {
                "under load, every daemon of every host replaced by a new build in bsfgctl upgrade plan's order (gamma, standby, handover, old active), each step when bsfgctl upgrade check calls it safe; then rolled back to the previous build in the same order"
            }
            Drill::CertRotation => {
                "under load, bsfgctl pki renew (overlap), then a rolling restart (gamma, standby, planned handover, old active) and a handover back: every daemon serves its new certificate, nothing lost"
            }
            Drill::CaRollover => {
                "under load, the zone CA replaced by bsfgctl pki rollover (begin, reissue, finish) with a rolling restart after each step: nothing lost, every daemon serves a certificate of the new CA, one of the old CA is refused"
            }
        }
    }

    /// Drills that run with a peer zone node ([`crate::zone::peer`]): the
    /// load appends at the peer, the read-back reads the forward buffer.
    pub fn needs_peer(self) -> bool {
        matches!(self, Drill::ReplicationAlphaCrash)
    }

    /// Drills whose hosts' disks are on a modelled power feed ([`crate::zone::power`]).
    pub fn needs_power_feed(self) -> bool {
        matches!(self, Drill::PowerLossAll | Drill::PowerLossOne)
    }

    /// Drills of the systemd mode only (`--init systemd`): they exercise
    /// what systemd does (Restart=, WatchdogSec=).
    pub fn needs_systemd(self) -> bool {
        matches!(self, Drill::AgentKilled | Drill::AgentStopped)
    }

    /// Whether the drill runs under `init` (`drill all` runs those that do).
    pub fn runs_under(self, init: crate::container::Init) -> bool {
        match init {
            crate::container::Init::Process => !self.needs_systemd(),
            // The power feed serves the hosts' disks over FUSE into the
            // simulator's own mount namespace; the containers do not see it.
            // jetstream-killed assumes nats-server stays dead; under systemd
            // nats.service's Restart=on-failure brings it back within
            // 100 ms, before the JetStream gate fails (docs/testing.md).
            // The process mode's stand-ins for what systemd does to the agent
            // (its restarts and backoff, secrets appearing later) drive the
            // agent themselves; under systemd, agent-killed and agent-stopped
            // are their counterparts. cert-rotation's and ca-rollover's
            // rolling restarts drive the process mode's daemons
            // (rolling-upgrade switches the containers' units instead).
            crate::container::Init::Systemd => {
                !self.needs_power_feed()
                    && !matches!(
                        self,
                        Drill::JetstreamKilled
                            | Drill::OrphanedController
                            | Drill::AgentCrashLoop
                            | Drill::FirstBootWithoutSecrets
                            | Drill::CertRotation
                            | Drill::CaRollover
                    )
            }
        }
    }

    /// Drills whose checker also reads the lease key at every sample.
    pub fn watches_lease(self) -> bool {
        matches!(self, Drill::OrphanedController | Drill::AgentCrashLoop)
    }

    pub fn parse(name: &str) -> Result<Drill> {
        Drill::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .with_context(|| {
                format!(
                    "unknown drill {name:?}; drills: {}",
                    Drill::ALL.map(Drill::name).join(", ")
                )
            })
    }
}

/// How drills run.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// The instance (namespaces, run directory); one drill at a time uses it.
    pub zone: Options,
    pub load: LoadConfig,
    /// Copy every host's logs here (a subdirectory per run) before teardown.
    pub keep_logs: Option<PathBuf>,
    /// Only when the drill failed.
    pub keep_logs_on_failure_only: bool,
    /// Run on the zone file with this durability tier (`standard`,
    /// `critical`) instead of its own.
    pub tier: Option<String>,
}

/// Runs one drill on a fresh instance and reports. Errors are failures to
/// build the instance; a drill whose expectations fail returns a report
/// with `passed == false`.
pub async fn run(drill: Drill, opts: &DrillOptions) -> Result<DrillReport> {
    if !drill.runs_under(opts.zone.init) {
        anyhow::bail!(
            "drill {} does not run with --init {} (`drill --list` says which mode each needs)",
            drill.name(),
            opts.zone.init.name()
        );
    }
    let mut zone_opts = opts.zone.clone();
    zone_opts.zone_file = zone_file_for(opts)?;
    // A `--tier` variant of the zone file goes with the run, however it ends.
    let _variant = (zone_opts.zone_file != opts.zone.zone_file)
        .then(|| RemoveOnDrop(zone_opts.zone_file.clone()));
    let started = Instant::now();
    let zone = tokio::task::block_in_place(|| Zone::create(&zone_opts))?;
    zone.progress
        .say(format!("drill {}: {}", drill.name(), drill.about()));
    let mut ctx = Ctx::new(Instant::now());
    let mut error = None;
    // The peer node first: it needs nothing of the zone, and the zone's
    // replicator finds it serving instead of backing off while it boots.
    if drill.needs_peer() {
        ctx.peer = Some(tokio::task::block_in_place(|| {
            zone.start_peer(&opts.zone.repo)
        })?);
    }
    if drill.needs_power_feed() {
        tokio::task::block_in_place(|| {
            zone.start_power_feed(bsfg_powercut::model::Semantics::Journaled)
        })?;
    }
    // Every drill starts from a zone that formed once (the boot drill, like
    // its VM twin, then power-cycles it).
    if let Err(e) = zone.boot(BOOT_TIMEOUT).await {
        // The logs of a zone that never came up are the ones most needed.
        let kept = opts.keep_logs.as_ref().map(|dir| {
            let dest = dir.join(format!("{}-{}", zone.instance, drill.name()));
            match copy_logs(&zone, &dest) {
                Ok(()) => format!(" (logs kept in {})", dest.display()),
                Err(e) => format!(" (could not keep the logs: {e:#})"),
            }
        });
        bail!(
            "the zone did not come up: {e:#}{}",
            kept.unwrap_or_default()
        );
    }
    ctx.event("zone up");
    if let Some(p) = &ctx.peer {
        if let Err(e) = zone.wait_peer_serving(p, BOOT_TIMEOUT).await {
            bail!("the peer node did not come up: {e:#}");
        }
        ctx.event(format!("peer node {} serving", p.plan.zone));
    }
    let lease_watch = if drill.watches_lease() {
        let via = zone.spec.by_role.gamma.clone();
        // As the gate agent's NATS user (it may read the lease, nothing else);
        // the users are the zone's, so gamma's server knows it too.
        let agent = zone.spec.host(&zone.spec.by_role.alpha.clone());
        let agent_nats = agent
            .gate_agent
            .as_ref()
            .and_then(|a| a.config.pointer("/nats"))
            .context("alpha's gate agent configuration has no [nats]")?;
        let text = |key: &str| {
            agent_nats
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let conn = bsfg_core::config::NatsConnection {
            url: format!("nats://127.0.0.1:{}", zone.spec.ports.nats_client),
            user: text("user"),
            password_file: text("password_file").map(std::path::PathBuf::from),
            ..Default::default()
        };
        Some(
            crate::observe::lease::LeaseWatch::connect(
                zone.runtime(&via)?,
                conn,
                &zone.spec.lease.bucket,
            )
            .await
            .with_context(|| format!("reading the lease through {via}"))?,
        )
    } else {
        None
    };
    ctx.checker = Some(Checker::start(&zone, ctx.epoch, lease_watch)?);
    let prefix = format!("{}-{}", drill.name(), zone.instance);
    let load_config = LoadConfig {
        prefix,
        ..opts.load.clone()
    };
    // Where the producers append: through the VIP from the client
    // namespace, or (replication drills) at the peer, from the peer node.
    let (load_ns, endpoint, producer, workload) = match &ctx.peer {
        Some(p) => (
            PEER,
            p.plan.endpoint.clone(),
            p.producer.clone(),
            p.workload.clone(),
        ),
        None => (
            crate::netns::CLIENT,
            zone.spec.endpoint(),
            zone.client_tls().0,
            zone.workload.clone(),
        ),
    };
    ctx.load = Some(Load::start(
        &*zone.runtime(load_ns)?,
        &endpoint,
        &producer,
        &workload,
        ctx.epoch,
        &load_config,
    )?);
    ctx.event("load and checker started");
    ctx.wait_acks("appends flow before the fault", 30, PROMOTION_TIMEOUT)
        .await;
    // Steady state: the active controller has moved the stream leaders off
    // its host and gathered them on one peer (bsfg_store::step_down_leaders_on),
    // and the meta leader off its host (bsfg_store::MetaMover, with the NATS
    // system user the simulator configures).
    let active = zone.spec.by_role.alpha.clone();
    let z = &zone;
    ctx.wait_for(
        "stream leaders gathered on one host other than the active one, meta leader off it, before the fault",
        Duration::from_secs(40),
        || async {
            let p = z.any_placement().await.ok()?;
            let on = p.gathered_on()?;
            let meta_off = p.meta_leader.as_deref().is_some_and(|m| m != active);
            (on != active && meta_off).then(|| {
                format!(
                    "every stream led by {on}; meta leader {}",
                    p.meta_leader.as_deref().unwrap_or("-")
                )
            })
        },
    )
    .await;
    ctx.wait_acks("appends flow after the leader moves", 10, PROMOTION_TIMEOUT)
        .await;
    ctx.placement_before = zone.any_placement().await.ok();
    zone.progress
        .say(format!("drill {}: injecting the fault", drill.name()));
    if let Err(e) = scenarios::run(drill, &zone, &mut ctx).await {
        error = Some(format!("{e:#}"));
    }
    zone.progress
        .say(format!("drill {}: collecting results", drill.name()));
    let report = read_back::collect(&zone, &mut ctx)
        .await
        .map(|end| assess::assess(drill, &ctx, end, error, started.elapsed().as_secs_f64()));
    let failed = report.as_ref().map_or(true, |r| !r.passed);
    if let Some(dir) = opts
        .keep_logs
        .as_ref()
        .filter(|_| failed || !opts.keep_logs_on_failure_only)
    {
        let dest = dir.join(format!("{}-{}", zone.instance, drill.name()));
        match copy_logs(&zone, &dest) {
            Ok(()) => zone
                .progress
                .say(format!("logs kept in {}", dest.display())),
            Err(e) => zone.progress.say(format!("could not keep the logs: {e:#}")),
        }
    }
    drop(zone);
    report
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The zone description a drill runs on: the one given, or (`--tier`) that
/// one with another durability tier, written next to the run directory.
fn zone_file_for(opts: &DrillOptions) -> Result<PathBuf> {
    let given = opts.zone.zone_file.clone();
    let Some(tier) = &opts.tier else {
        return Ok(given);
    };
    if !["standard", "critical"].contains(&tier.as_str()) {
        bail!("tier {tier:?} is not a durability tier: use standard or critical");
    }
    let given = std::path::absolute(&given)?;
    std::fs::create_dir_all(&opts.zone.run_root)?;
    let file = opts
        .zone
        .run_root
        .join(format!("{}.zone-{tier}.nix", opts.zone.instance));
    let text = format!(
        "# {} with tier = {tier:?} (bsfg-zonesim drill --tier)\n(import {}) // {{ tier = {tier:?}; }}\n",
        given.display(),
        given.display()
    );
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

/// Copies `<run dir>/<host>/logs/` of every host (and of the peer node,
/// if any) to `dest/<host>/`.
pub fn copy_logs(zone: &Zone, dest: &Path) -> Result<()> {
    // The systemd mode's units log to each host's journal.
    zone.export_journals()?;
    let peer = zone.run_dir.join(PEER).is_dir().then_some(PEER);
    for h in zone.spec.host_names().into_iter().chain(peer) {
        let from = zone.host_dirs(h).logs;
        let to = dest.join(h);
        std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
        for entry in std::fs::read_dir(&from).into_iter().flatten().flatten() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drill_has_a_unique_name_that_parses_back() {
        let mut names: Vec<&str> = Drill::ALL.iter().map(|d| d.name()).collect();
        for d in Drill::ALL {
            assert_eq!(Drill::parse(d.name()).unwrap(), d);
            assert!(!d.about().is_empty());
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Drill::ALL.len());
        let e = Drill::parse("alpha-explodes").unwrap_err().to_string();
        assert!(e.contains("vrrp-one-way"), "{e}");
    }
}
