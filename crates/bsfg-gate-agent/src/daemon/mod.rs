//! The daemon (`bsfg-gate-agent run`): wires probes, the promotion machine,
//! the supervisor and keepalived together. This is the only place that
//! carries out the machine's decisions.
//!
//! One loop, one task: a timer tick (`evaluate_interval`) or a keepalived
//! notification wakes it; it polls the controller, runs every probe, feeds
//! the machine, executes its actions (stop before anything else), makes the
//! track file match the role, publishes status and metrics, and pings the
//! systemd watchdog. A stuck loop therefore stops the watchdog pings and
//! systemd restarts the agent.

pub mod management;

use crate::config::AgentConfig;
use crate::keepalived::{self, Notification};
use crate::probes::{Observed, Probes};
use crate::promotion::{Action, Observation, Promotion, Timing, Transition};
use crate::status::Metrics;
use crate::supervisor::{ControllerProcess, Supervisor};
use anyhow::Context;
use bsfg_core::clock::unix_ms;
use bsfg_mgmt::Role;
use bsfg_mgmt::agent::{
    AgentStatus, GateStatus, LeaseStatus, SupervisedController, TrackFileStatus, TransitionStatus,
    VrrpStatus,
};
use bsfg_store::monotonic_now;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// How many role changes `/status` keeps.
const TRANSITIONS_KEPT: usize = 20;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The management address could not be bound, or the FIFO/track file
    /// directory is unusable (EX_UNAVAILABLE, 69).
    #[error("{0:#}")]
    Unavailable(anyhow::Error),
}

struct Daemon<S: Supervisor> {
    config: Arc<AgentConfig>,
    supervisor: S,
    probes: Probes,
    machine: Promotion,
    status: Arc<RwLock<Option<AgentStatus>>>,
    metrics: Arc<Metrics>,
    /// Wall-clock time matching monotonic `mono_origin`, to date transitions.
    mono_origin: (Duration, i64),
    transitions: VecDeque<TransitionStatus>,
    instance: String,
    last_notification: Option<String>,
    last_exit: Option<String>,
    last_error: Option<String>,
    watchdog: bool,
    /// The last `STATUS=` sent to systemd (sent again only when it changes).
    unit_status: String,
}

/// Runs until SIGTERM or SIGINT.
pub async fn run<S: Supervisor>(config: AgentConfig, mut supervisor: S) -> Result<(), DaemonError> {
    let config = Arc::new(config);
    let unavailable = DaemonError::Unavailable;
    for path in [
        &config.keepalived.notify_fifo,
        &config.keepalived.track_file,
    ] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating {}", dir.display()))
                .map_err(unavailable)?;
        }
    }
    keepalived::ensure_fifo(&config.keepalived.notify_fifo)
        .with_context(|| format!("notify FIFO {}", config.keepalived.notify_fifo.display()))
        .map_err(unavailable)?;

    let (tx, mut notifications) = mpsc::channel::<Notification>(64);
    let status = Arc::new(RwLock::new(None));
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind(config.management.address)
        .await
        .with_context(|| format!("binding management.address {}", config.management.address))
        .map_err(unavailable)?;
    let app = management::router(management::Shared {
        config: config.clone(),
        status: status.clone(),
        metrics: metrics.clone(),
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "management endpoint stopped");
        }
    });
    tokio::spawn(keepalived::read_fifo(
        config.keepalived.notify_fifo.clone(),
        tx,
    ));

    // Start from what the host says: a set track file means a previous run
    // demoted this host; a running controller is adopted (systemd) or, if it
    // cannot be (an orphaned child process), stopped.
    supervisor.stop_leftover().await;
    let track_set = keepalived::read_track(&config.keepalived.track_file).is_some_and(|v| v != 0);
    let controller_running = matches!(supervisor.poll().await, ControllerProcess::Running);
    let now = monotonic_now();
    let (machine, actions) = Promotion::start(
        Timing {
            ready_timeout: config.controller.ready_timeout,
            hold_down: config.promotion.hold_down,
            stall_grace: config.promotion.stall_grace,
            probe_grace: config.promotion.probe_grace,
        },
        now,
        track_set,
        controller_running,
    );
    tracing::info!(
        zone = %config.zone,
        host = %config.host,
        role = %machine.role(),
        track_set,
        controller_running,
        supervisor = %supervisor.describe(),
        "gate agent starting"
    );
    let mut daemon = Daemon {
        instance: config.vrrp_instance(),
        probes: Probes::new(config.clone()),
        config: config.clone(),
        supervisor,
        machine,
        status,
        metrics,
        mono_origin: (now, unix_ms()),
        transitions: VecDeque::new(),
        last_notification: None,
        last_exit: None,
        last_error: None,
        watchdog: sd_notify::watchdog_enabled().is_some(),
        unit_status: String::new(),
    };
    daemon.execute(actions).await;
    daemon.sync_track_file();
    daemon.evaluate().await;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    let mut sigterm = signal(SignalKind::terminate())
        .context("SIGTERM handler")
        .map_err(unavailable)?;
    let mut sigint = signal(SignalKind::interrupt())
        .context("SIGINT handler")
        .map_err(unavailable)?;
    let mut tick = tokio::time::interval(config.evaluate_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => daemon.evaluate().await,
            Some(n) = notifications.recv() => daemon.on_notification(n).await,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    daemon.shutdown().await;
    Ok(())
}

impl<S: Supervisor> Daemon<S> {
    async fn on_notification(&mut self, n: Notification) {
        // Only keepalived can write the FIFO, but a second keepalived
        // instance on the host (or a stray notify script) must not move
        // this zone's controller.
        if n.name != self.instance {
            tracing::warn!(line = %n.to_line(), expected = %self.instance, "ignoring a notification for a foreign VRRP instance");
            return;
        }
        tracing::info!(line = %n.to_line(), "keepalived notification");
        self.last_notification = Some(n.to_line());
        if let (true, Some(state)) = (n.is_instance(), n.state) {
            let actions = self.machine.on_vrrp(monotonic_now(), state);
            // The fast path: a stop goes out before any probe runs.
            self.execute(actions).await;
            self.sync_track_file();
        }
        self.evaluate().await;
    }

    async fn evaluate(&mut self) {
        let controller = self.supervisor.poll().await;
        if let ControllerProcess::Exited(report) = &controller {
            self.last_exit = Some(report.to_string());
        }
        let running = matches!(controller, ControllerProcess::Running);
        let observed = self.probes.observe(running).await;
        let actions = self.machine.evaluate(&Observation {
            now: monotonic_now(),
            gates: &observed.gates,
            controller: &controller,
        });
        self.execute(actions).await;
        self.sync_track_file();
        self.record_transitions();
        self.publish(&observed, &controller);
        if self.watchdog {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
    }

    /// Stops before starts: demotion must never wait behind anything.
    async fn execute(&mut self, mut actions: Vec<Action>) {
        actions.sort_by_key(|a| match a {
            Action::StopController => 0,
            Action::StartController => 1,
        });
        for action in actions {
            let result = match action {
                Action::StopController => {
                    tracing::warn!(reason = %self.machine.reason(), "stopping the controller");
                    self.supervisor.stop().await
                }
                Action::StartController => {
                    tracing::info!(reason = %self.machine.reason(), "starting the controller");
                    self.supervisor.start().await
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, ?action, "supervisor");
                self.last_error = Some(e.to_string());
            }
        }
    }

    /// Makes the track file hold the machine's value. Re-checked on every
    /// evaluation, so a failed write (or an outside edit) is repaired.
    fn sync_track_file(&mut self) {
        let path = &self.config.keepalived.track_file;
        let want = self.machine.track_value();
        if keepalived::read_track(path) == Some(i64::from(want)) {
            return;
        }
        match keepalived::write_track(path, want) {
            Ok(()) => {
                if want == 0 {
                    tracing::info!(path = %path.display(), "track file cleared: keepalived may bid for the VIP");
                } else {
                    tracing::warn!(path = %path.display(), "track file set: keepalived goes FAULT and releases the VIP");
                }
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot write the track file");
                self.last_error = Some(format!("track file {}: {e}", path.display()));
            }
        }
    }

    fn wall_ms(&self, mono: Duration) -> i64 {
        let (origin_mono, origin_wall) = self.mono_origin;
        if mono >= origin_mono {
            origin_wall + (mono - origin_mono).as_millis() as i64
        } else {
            origin_wall - (origin_mono - mono).as_millis() as i64
        }
    }

    fn record_transitions(&mut self) {
        for Transition {
            at,
            from,
            to,
            reason,
        } in self.machine.take_transitions()
        {
            match to {
                Role::Demoted => tracing::warn!(%from, %to, %reason, "role change"),
                _ => tracing::info!(%from, %to, %reason, "role change"),
            }
            self.transitions.push_back(TransitionStatus {
                at_unix_ms: self.wall_ms(at),
                from,
                to,
                reason,
            });
            while self.transitions.len() > TRANSITIONS_KEPT {
                self.transitions.pop_front();
            }
        }
    }

    fn publish(&mut self, observed: &Observed, controller: &ControllerProcess) {
        let c = &self.config;
        let (vrrp, vrrp_since) = self.machine.vrrp();
        let (holder, revision, remaining_ms) = match &observed.lease {
            Ok(v) => (v.holder.clone(), v.revision, v.remaining.as_millis() as u64),
            Err(_) => (None, None, 0),
        };
        let status = AgentStatus {
            zone: c.zone.clone(),
            host: c.host.clone(),
            role: self.machine.role(),
            role_reason: self.machine.reason().to_owned(),
            role_since_unix_ms: self.wall_ms(self.machine.role_since()),
            blocker: self.machine.blocker().map(str::to_owned),
            vrrp: VrrpStatus {
                state: vrrp,
                since_unix_ms: vrrp_since.map(|t| self.wall_ms(t)),
                last_notification: self.last_notification.clone(),
            },
            vip: c.vip.address.to_string(),
            gates: observed
                .gates
                .iter()
                .map(|(id, r)| GateStatus {
                    number: id.number(),
                    gate: id,
                    verdict: r.verdict,
                    reason: r.reason.clone(),
                })
                .collect(),
            controller: SupervisedController {
                supervisor: self.supervisor.describe(),
                process: controller.state(),
                ready: observed.gates.controller_ready.passes(),
                last_exit: self.last_exit.clone(),
                last_error: self.last_error.clone(),
            },
            lease: LeaseStatus {
                holder,
                revision,
                remaining_ms,
                permits: observed.gates.lease.passes(),
                reason: observed.gates.lease.reason.clone(),
            },
            track_file: TrackFileStatus {
                path: c.keepalived.track_file.display().to_string(),
                value: self.machine.track_value(),
            },
            transitions_total: self.machine.transitions_total(),
            transitions: self.transitions.iter().cloned().collect(),
            evaluated_at_unix_ms: unix_ms(),
            credentials: observed
                .credentials
                .iter()
                .map(|c| bsfg_mgmt::agent::CredentialStatus {
                    name: c.name.clone(),
                    path: c.path.display().to_string(),
                    present: c.present(),
                    problem: c.problem.clone(),
                })
                .collect(),
            host_facts: None,
            time_sync: observed
                .time_sync
                .as_ref()
                .map(|t| t.status(c.time_sync.policy)),
        };
        self.metrics.update(&status);
        self.metrics
            .set_nats_server_version(observed.nats_server_version.as_deref());
        // What `systemctl status` shows under the unit: role, failing gates
        // and why (a no-op outside systemd).
        let line = status.unit_status();
        if line != self.unit_status {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&line)]);
            self.unit_status = line;
        }
        *self.status.write().expect("not poisoned") = Some(status);
    }

    /// The agent stopping means nothing on this host can run the controller:
    /// stop it and give the VIP away (track file set). The next start clears
    /// the track file after the hold-down, once the gates pass.
    async fn shutdown(&mut self) {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        tracing::info!("gate agent stopping: stopping the controller and releasing the VIP");
        if let Err(e) = self.supervisor.stop().await {
            tracing::error!(error = %e, "stopping the controller");
        }
        if let Err(e) = keepalived::write_track(&self.config.keepalived.track_file, 1) {
            tracing::error!(error = %e, "cannot write the track file");
        }
        let deadline = tokio::time::Instant::now()
            + self.config.controller.stop_timeout
            + Duration::from_secs(2);
        loop {
            match self.supervisor.poll().await {
                ControllerProcess::Stopped | ControllerProcess::Exited(_) => break,
                _ if tokio::time::Instant::now() > deadline => {
                    tracing::error!("the controller did not stop in time");
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}
