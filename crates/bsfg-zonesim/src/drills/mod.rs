//! The drills: each brings up a fresh zone instance, runs the load generator
//! and the checker, injects its fault, waits for the contract's outcome,
//! reads every fact back and reports ([`crate::report::DrillReport`]).
//!
//! Expected outcomes are contract section 8; the NixOS VM tests
//! (tests/*.nix) have one twin each here (docs/testing.md).

pub mod checker;
pub mod logs;
pub mod metrics;
pub mod outcome;
pub mod replication;
mod scenarios;
pub mod supervision;

use crate::load::{self, Load, LoadConfig, LoadLog};
use crate::observe::jsz::Placement;
use crate::report::{DrillReport, Event, ZoneFacts};
use crate::zone::peer::{AUDIT_CONSUMER, PEER, PeerNode};
use crate::zone::{Options, Zone};
use anyhow::{Context, Result, bail};
use checker::{Checker, Sample};
use outcome::{Check, Outcome, Safety};
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
    OrphanedController,
    AgentCrashLoop,
    FirstBootWithoutSecrets,
}

impl Drill {
    pub const ALL: [Drill; 18] = [
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
        Drill::OrphanedController,
        Drill::AgentCrashLoop,
        Drill::FirstBootWithoutSecrets,
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
            Drill::OrphanedController => "orphaned-controller",
            Drill::AgentCrashLoop => "agent-crash-loop",
            Drill::FirstBootWithoutSecrets => "first-boot-without-secrets",
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
                "issue 7: alpha dies while the zone pulls facts from a peer zone node: beta resumes replication, every fact once"
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
        }
    }

    /// Drills that run with a peer zone node ([`crate::zone::peer`]): the
    /// load appends at the peer, the read-back reads the forward buffer.
    pub fn needs_peer(self) -> bool {
        matches!(self, Drill::ReplicationAlphaCrash)
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
}

/// What a running drill has at hand.
pub struct Ctx {
    pub epoch: Instant,
    pub events: Vec<Event>,
    pub checks: Vec<Check>,
    pub fault_at: Option<Duration>,
    pub fault_unix_ms: Option<i64>,
    /// When the (last) fault ended: the recovery time counts from here.
    pub fault_end: Option<Duration>,
    /// From when no sample may show the lease held by a host without the VIP.
    pub lease_watch_from: Option<Duration>,
    /// Where the VIP and the controller should go (for the timing metrics).
    pub target: Option<String>,
    pub expected: Outcome,
    /// Ids acknowledged outside the load generator (the drill's own appends).
    pub extra_acked: Vec<String>,
    pub placement_before: Option<Placement>,
    /// The peer zone node of a replication drill.
    pub peer: Option<PeerNode>,
    /// What a replication drill saw in the controllers' `/status`.
    pub replication: replication::Observed,
    checker: Option<Checker>,
    load: Option<Load>,
    /// The load's log once a drill stopped it itself ([`Ctx::stop_load`]).
    load_log: Option<LoadLog>,
}

impl Ctx {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub fn event(&mut self, what: impl Into<String>) {
        self.events.push(Event {
            at_s: metrics::ms(self.now().as_secs_f64()),
            what: what.into(),
        });
    }

    /// Marks the fault (the first one counts for the timing metrics).
    pub fn fault(&mut self, what: impl Into<String>) {
        if self.fault_at.is_none() {
            self.fault_at = Some(self.now());
            self.fault_unix_ms = Some(bsfg_core::clock::unix_ms());
        }
        self.event(what);
    }

    /// Marks the end of the fault (the latest call counts): the report's
    /// recovery time runs from here to the first acknowledgement after it.
    pub fn fault_ended(&mut self, what: impl Into<String>) {
        self.fault_end = Some(self.now());
        self.event(what);
    }

    pub fn check(&mut self, name: &str, passed: bool, detail: impl Into<String>) -> bool {
        self.checks.push(Check {
            name: name.to_owned(),
            passed,
            detail: detail.into(),
        });
        passed
    }

    /// The checker's latest sample.
    pub fn sample(&self) -> Option<Sample> {
        self.checker.as_ref().and_then(Checker::last)
    }

    /// The checker's samples, for conditions.
    pub fn samples(&self) -> checker::SampleView {
        self.checker.as_ref().expect("the checker runs").view()
    }

    /// The load's log, for conditions.
    pub fn loads(&self) -> load::LoadView {
        self.load.as_ref().expect("the load runs").view()
    }

    pub fn elapsed(&self) -> Duration {
        self.now()
    }

    /// Stops the producers before the drill ends (in-flight facts get 30 s
    /// to be acknowledged, as at the end of any drill); the report uses
    /// this log. The checker keeps running.
    pub async fn stop_load(&mut self) {
        if let Some(load) = self.load.take() {
            self.load_log = Some(load.stop(Duration::from_secs(30)).await);
        }
    }

    pub fn acked(&self) -> usize {
        self.load.as_ref().map_or(0, Load::acked)
    }

    /// Acknowledgements whose attempt was sent after `t`.
    pub fn acked_after(&self, t: Duration) -> usize {
        self.load.as_ref().map_or(0, |l| {
            l.snapshot().acks.iter().filter(|a| a.last_try >= t).count()
        })
    }

    /// Polls `cond` (every 100 ms) until it yields a detail; records a check.
    pub async fn wait_for<F, Fut>(&mut self, name: &str, timeout: Duration, mut cond: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<String>>,
    {
        let start = self.now();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(detail) = cond().await {
                let took = (self.now() - start).as_secs_f64();
                return self.check(name, true, format!("{detail} (after {took:.1} s)"));
            }
            if Instant::now() > deadline {
                return self.check(name, false, format!("not within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `cond` must hold at every poll (every 200 ms) for `duration`; it
    /// returns `Err(what is wrong)` to break. Records a check.
    pub async fn hold<F, Fut>(&mut self, name: &str, duration: Duration, mut cond: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let deadline = Instant::now() + duration;
        let mut polls = 0;
        while Instant::now() < deadline {
            if let Err(why) = cond().await {
                return self.check(name, false, why);
            }
            polls += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.check(name, true, format!("held for {duration:?} ({polls} polls)"))
    }

    /// Waits until `n` appends sent after now are acknowledged.
    pub async fn wait_acks(&mut self, name: &str, n: usize, timeout: Duration) -> bool {
        let from = self.now();
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.acked_after(from);
            if got >= n {
                return self.check(name, true, format!("{got} appends acknowledged"));
            }
            if Instant::now() > deadline {
                return self.check(
                    name,
                    false,
                    format!("only {got} of {n} appends acknowledged within {timeout:?}"),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn contract(row: &str) -> String {
    format!("contract section 8: {row}")
}

fn hosts(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

/// Runs one drill on a fresh instance and reports. Errors are failures to
/// build the instance; a drill whose expectations fail returns a report
/// with `passed == false`.
pub async fn run(drill: Drill, opts: &DrillOptions) -> Result<DrillReport> {
    let mut zone_opts = opts.zone.clone();
    zone_opts.zone_file = zone_file_for(drill, &opts.zone)?;
    let started = Instant::now();
    let zone = tokio::task::block_in_place(|| Zone::create(&zone_opts))?;
    zone.progress
        .say(format!("drill {}: {}", drill.name(), drill.about()));
    let mut ctx = Ctx {
        epoch: Instant::now(),
        events: Vec::new(),
        checks: Vec::new(),
        fault_at: None,
        fault_unix_ms: None,
        fault_end: None,
        lease_watch_from: None,
        target: None,
        expected: Outcome::default(),
        extra_acked: Vec::new(),
        placement_before: None,
        peer: None,
        replication: Default::default(),
        checker: None,
        load: None,
        load_log: None,
    };
    let mut error = None;
    // The peer node first: it needs nothing of the zone, and the zone's
    // replicator finds it serving instead of backing off while it boots.
    if drill.needs_peer() {
        ctx.peer = Some(tokio::task::block_in_place(|| zone.start_peer())?);
    }
    // Every drill starts from a zone that formed once (the boot drill, like
    // its VM twin, then power-cycles it).
    if let Err(e) = zone.boot(BOOT_TIMEOUT).await {
        bail!("the zone did not come up: {e:#}");
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
        Some(
            crate::observe::lease::LeaseWatch::connect(
                zone.runtime(&via)?,
                zone.spec.ports.nats_client,
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
    let report = finish(drill, &zone, ctx, error, started).await;
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

/// The zone description a drill runs on: the one given, or for drills that
/// need other settings, a zone of this crate.
fn zone_file_for(_drill: Drill, opts: &Options) -> Result<PathBuf> {
    Ok(opts.zone_file.clone())
}

async fn finish(
    drill: Drill,
    zone: &Zone,
    mut ctx: Ctx,
    error: Option<String>,
    started: Instant,
) -> Result<DrillReport> {
    let placement_after = zone.any_placement().await.ok();
    let mut vip = zone.vip_holders().await.unwrap_or_default();
    vip.sort_by_key(|h| role_order(zone, h));
    let mut serving = Vec::new();
    for h in zone.spec.service_hosts() {
        if matches!(
            zone.readiness(h).await,
            Ok(crate::observe::Readiness::Serving)
        ) {
            serving.push(h.to_owned());
        }
    }
    let log = match ctx.load.take() {
        Some(load) => load.stop(Duration::from_secs(30)).await,
        None => ctx.load_log.take().context("no load")?,
    };
    let samples = ctx.checker.take().context("no checker")?.stop().await;
    let end = ctx.now();
    // The read-back: the zone's store buffer, or what it replicated from
    // the peer (its forward buffer), through the VIP either way.
    let (reader, consumer) = match &ctx.peer {
        Some(p) => (p.forward_reader.clone(), p.plan.forward_consumer.clone()),
        None => (zone.client_tls().1, zone.workload.consumer.clone()),
    };
    let endpoint = zone.spec.endpoint();
    let expected: std::collections::BTreeSet<String> = log
        .acks
        .iter()
        .map(|a| a.id.clone())
        .chain(ctx.extra_acked.iter().cloned())
        .collect();
    let expected_at_peer = expected.clone();
    let read = zone
        .in_ns(crate::netns::CLIENT, move || async move {
            load::read_back(
                &endpoint,
                &reader,
                &consumer,
                &expected,
                READ_BACK_QUIET,
                Duration::from_secs(120),
            )
            .await
        })
        .await
        .and_then(|r| r);
    // Replication drills also read the peer's own store back (its audit
    // consumer): what the peer stored and when, for the lag figures.
    let at_peer = match &ctx.peer {
        Some(p) => {
            let (endpoint, tls) = (p.plan.endpoint.clone(), p.producer.clone());
            let r = zone
                .in_ns(PEER, move || async move {
                    load::read_back(
                        &endpoint,
                        &tls,
                        AUDIT_CONSUMER,
                        &expected_at_peer,
                        READ_BACK_QUIET,
                        Duration::from_secs(120),
                    )
                    .await
                })
                .await
                .and_then(|r| r);
            Some(r)
        }
        None => None,
    };
    let mut failures = Vec::new();
    if let Some(e) = error {
        failures.push(format!("drill aborted: {e}"));
    }
    let read = match read {
        Ok(r) => r,
        Err(e) => {
            failures.push(format!("read-back failed: {e:#}"));
            Default::default()
        }
    };
    let counts = metrics::counts(read.ids());
    let acked_ids: Vec<&str> = log
        .acks
        .iter()
        .map(|a| a.id.as_str())
        .chain(ctx.extra_acked.iter().map(String::as_str))
        .collect();
    let lost = metrics::lost(acked_ids.iter().copied(), &counts);
    let replication = match (&ctx.peer, at_peer) {
        (Some(p), Some(at_peer)) => {
            let at_peer = match at_peer {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("reading the peer's store back failed: {e:#}"));
                    Default::default()
                }
            };
            let at_peer_counts = metrics::counts(at_peer.ids());
            let missing = metrics::lost(acked_ids.iter().copied(), &at_peer_counts);
            // (pushed to the field: `acked_ids` borrows another field of ctx)
            ctx.checks.push(Check {
                name: format!("the peer {} stored every fact it acknowledged", p.plan.zone),
                passed: missing.is_empty(),
                detail: format!(
                    "{} of {} in its store buffer{}",
                    acked_ids.len() - missing.len(),
                    acked_ids.len(),
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!("; missing {:?}", &missing[..missing.len().min(5)])
                    }
                ),
            });
            let f =
                replication::figures(&at_peer.stored_at_ms, &read.stored_at_ms, ctx.fault_unix_ms);
            Some(replication::ReplicationReport {
                peer: p.plan.zone.clone(),
                endpoint: p.plan.endpoint.clone(),
                consumer: p.plan.consumer.clone(),
                forward_consumer: p.plan.forward_consumer.clone(),
                peer_stored: acked_ids.len() - missing.len(),
                forwarded: read.stored_at_ms.len(),
                stall_s: f.stall_s,
                resumed_in_status_s: ctx.replication.resumed_in_status_s,
                longest_gap_s: f.longest_gap_s,
                lag_before_fault: f.before,
                lag_during_stall: f.during,
                lag_after_resume: f.after,
                status_before_fault: ctx.replication.before_fault.clone(),
                status_at_end: ctx.replication.at_end.clone(),
            })
        }
        _ => None,
    };
    let duplicates = metrics::duplicates(&counts);
    let dual = metrics::dual_active_samples(&samples);
    let observed = Outcome {
        summary: format!(
            "VIP on {}, serving on {}",
            outcome::list(&vip),
            outcome::list(&serving)
        ),
        vip: Some(vip),
        serving: Some(serving),
    };
    let acked = acked_ids
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    failures.extend(outcome::evaluate(
        &ctx.expected,
        &observed,
        &Safety {
            acked,
            lost: lost.len(),
            duplicates: duplicates.len(),
            dual_active_samples: dual,
            samples: samples.len(),
        },
        &ctx.checks,
    ));
    let load_from = log.acks.first().map(|a| a.first_try).unwrap_or_default();
    let fault = ctx.fault_at;
    let target = ctx.target.clone();
    let (vip_move_s, controller_ready_s, promotion) = match (fault, &target) {
        (Some(f), Some(t)) => {
            let text = std::fs::read_to_string(zone.host_dirs(t).log("bsfg-gate-agent"))
                .unwrap_or_default();
            (
                metrics::vip_move_s(&samples, f, t).map(metrics::ms),
                metrics::ready_s(&samples, f, t).map(metrics::ms),
                ctx.fault_unix_ms
                    .map(|since| logs::promotion(&text, t, since)),
            )
        }
        _ => (None, None, None),
    };
    Ok(DrillReport {
        drill: drill.name().to_owned(),
        passed: failures.is_empty(),
        failures,
        zone: ZoneFacts {
            zone: zone.spec.zone.clone(),
            zone_file: zone.state().zone_file.display().to_string(),
            vrrp_version: zone.spec.vrrp.version,
            advert_interval_ms: zone.spec.vrrp.advert_interval_ms,
            lease_ttl: zone.spec.lease.ttl.clone(),
        },
        acked,
        lost: lost.len(),
        duplicates: duplicates.len(),
        dual_active_samples: dual,
        samples: samples.len(),
        unknown_samples: metrics::unknown_samples(&samples),
        dual_vip_samples: metrics::dual_vip_samples(&samples),
        vip_move_s,
        controller_ready_s,
        first_ack_s: fault
            .and_then(|f| metrics::first_ack_s(&log.acks, f))
            .map(metrics::ms),
        longest_stall_s: metrics::ms(metrics::longest_stall_s(&log.acks, load_from, end)),
        fault_ended_s: ctx.fault_end.map(|e| metrics::ms(e.as_secs_f64())),
        recovery_s: ctx
            .fault_end
            .and_then(|e| metrics::first_ack_s(&log.acks, e))
            .map(metrics::ms),
        lease_without_vip_samples: ctx
            .lease_watch_from
            .map(|from| metrics::lease_without_vip_samples(&samples, from)),
        promotion,
        expected: ctx.expected.clone(),
        observed,
        checks: ctx.checks.clone(),
        retried_acks: log.acks.iter().filter(|a| a.attempts > 1).count(),
        duplicate_acks: log.acks.iter().filter(|a| a.duplicate).count(),
        failed_attempts: log.failures.clone(),
        abandoned: log.abandoned.len(),
        serving_changes: metrics::serving_changes(&samples),
        placement_before: ctx.placement_before.clone(),
        placement_after,
        events: ctx.events.clone(),
        duration_s: metrics::ms(started.elapsed().as_secs_f64()),
        lost_ids: lost.into_iter().take(20).collect(),
        run_dir: zone.run_dir.display().to_string(),
        read_back_stale_s: metrics::ms(read.stale_s),
        replication,
    })
}

fn role_order(zone: &Zone, host: &str) -> usize {
    zone.spec
        .host_names()
        .iter()
        .position(|h| *h == host)
        .unwrap_or(usize::MAX)
}

/// Copies `<run dir>/<host>/logs/` of every host (and of the peer node,
/// if any) to `dest/<host>/`.
pub fn copy_logs(zone: &Zone, dest: &Path) -> Result<()> {
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
