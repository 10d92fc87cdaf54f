//! The promotion state machine: pure, driven by events and observations,
//! answering with actions. The daemon ([`crate::daemon`]) feeds it and carries
//! the actions out; nothing here reads a clock or touches the system.
//!
//! ```text
//!            all gates pass, hold-down over            controller ready
//!   Standby ─────────────────────────────► Promoting ──────────────────► Active
//!      ▲  ▲                                   │  │                         │
//!      │  └── VIP lost, BACKUP/FAULT/STOP, ───┘  │                         │
//!      │      lease held elsewhere, exit 75/79   │ not ready in time,      │
//!      │      (stop the controller)              │ health gate lost,       │
//!      │                                         │ controller died         │
//!      │ health gates pass for hold_down         ▼                         │
//!      └──────────────────────────────────── Demoted ◄─────────────────────┘
//!                                          (stop the controller, then track file = 1:
//!                                           keepalived goes FAULT and releases the VIP)
//! ```
//!
//! Principles:
//! - **Events are hints, observations are truth.** Keepalived's notifications
//!   can be late or (through notify scripts) out of order. A BACKUP, FAULT or
//!   STOP stops a running controller at once, because that is the safe
//!   direction; everything else is decided from what the probes observed at
//!   that moment (is the VIP on a local interface, what do the gates say).
//! - **Demotion is the fastest path**: one evaluation, no waiting for the
//!   controller's exit before the track file is written (the lease, not the
//!   order of these steps, keeps a single writer).
//! - **No flapping**: after the controller was stopped for any reason it is
//!   not started again for `hold_down`; a demoted host's health gates must
//!   pass without a break for `hold_down` before it may bid for the VIP
//!   again. Failback is keepalived's business (nopreempt): never automatic.
//! - **JetStream stalls are waited out**: gates 2 and 3, and the readiness of
//!   an active controller (which self-fences when it cannot renew the lease),
//!   may fail for `stall_grace` before this host demotes. A leader election
//!   after a node crash takes seconds and no other host could serve meanwhile.

use crate::gates::GateReport;
use crate::supervisor::{ControllerProcess, ExitReport};
use bsfg_mgmt::{ControllerExit, GateId, Role, Verdict, VrrpState};
use std::collections::BTreeMap;
use std::time::Duration;

/// Timing of the machine, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub ready_timeout: Duration,
    pub hold_down: Duration,
    pub stall_grace: Duration,
    /// How long gate 4 may fail only because its write probe has not
    /// answered (see [`GateReport::artifacts_unanswered`]).
    pub probe_grace: Duration,
}

/// True for gates whose failure is usually a JetStream-wide stall (a
/// leader election), which no other host could do better during.
fn depends_on_jetstream(id: GateId) -> bool {
    matches!(id, GateId::Jetstream | GateId::Quorum)
}

/// What the daemon must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    StartController,
    /// SIGTERM now; the supervisor escalates to SIGKILL after `stop_timeout`.
    StopController,
}

/// One role change, for status, logs and the churn metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Monotonic time of the change.
    pub at: Duration,
    pub from: Role,
    pub to: Role,
    pub reason: String,
}

/// What the probes saw at `now`.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    pub now: Duration,
    pub gates: &'a GateReport,
    pub controller: &'a ControllerProcess,
}

#[derive(Debug, Clone)]
pub struct Promotion {
    timing: Timing,
    role: Role,
    role_since: Duration,
    /// Why the current role was entered.
    reason: String,
    /// What currently keeps the machine where it is ("promotion refused: lease held by alpha").
    blocker: Option<String>,
    vrrp: VrrpState,
    vrrp_since: Option<Duration>,
    /// Health gates failing now, with the time each started failing.
    failing_since: BTreeMap<GateId, Duration>,
    /// Since when every health gate has passed without a break.
    healthy_since: Option<Duration>,
    /// An active controller has reported not-ready since then.
    not_ready_since: Option<Duration>,
    /// When the controller was last stopped by a decision of this machine.
    stopped_at: Option<Duration>,
    transitions_total: u64,
    pending: Vec<Transition>,
}

impl Promotion {
    /// The machine at agent start. `track_set`: the track file held a
    /// non-zero value (a previous run demoted this host). `controller_running`:
    /// the controller is already running (a systemd unit left over from an
    /// agent that crashed); it is adopted and must prove readiness in time.
    pub fn start(
        timing: Timing,
        now: Duration,
        track_set: bool,
        controller_running: bool,
    ) -> (Promotion, Vec<Action>) {
        let (role, reason) = if track_set {
            (
                Role::Demoted,
                "the track file was set when the agent started".to_owned(),
            )
        } else if controller_running {
            (
                Role::Promoting,
                "adopted a controller that was already running".to_owned(),
            )
        } else {
            (Role::Standby, "agent started".to_owned())
        };
        let machine = Promotion {
            timing,
            role,
            role_since: now,
            reason,
            blocker: None,
            vrrp: VrrpState::Unknown,
            vrrp_since: None,
            failing_since: BTreeMap::new(),
            healthy_since: None,
            not_ready_since: None,
            stopped_at: None,
            transitions_total: 0,
            pending: Vec::new(),
        };
        let actions = if track_set && controller_running {
            vec![Action::StopController]
        } else {
            Vec::new()
        };
        (machine, actions)
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn role_since(&self) -> Duration {
        self.role_since
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    pub fn blocker(&self) -> Option<&str> {
        self.blocker.as_deref()
    }

    pub fn vrrp(&self) -> (VrrpState, Option<Duration>) {
        (self.vrrp, self.vrrp_since)
    }

    /// The value the keepalived track file must hold: non-zero puts the VRRP
    /// instance into FAULT (track_file weight 0).
    pub fn track_value(&self) -> u8 {
        u8::from(self.role == Role::Demoted)
    }

    pub fn transitions_total(&self) -> u64 {
        self.transitions_total
    }

    /// Role changes since the last call (for logs and status).
    pub fn take_transitions(&mut self) -> Vec<Transition> {
        std::mem::take(&mut self.pending)
    }

    /// A keepalived notification. Stopping is the safe direction, so BACKUP,
    /// FAULT and STOP stop a running controller without waiting for the
    /// probes; everything else waits for the evaluation that follows.
    pub fn on_vrrp(&mut self, now: Duration, state: VrrpState) -> Vec<Action> {
        self.vrrp = state;
        self.vrrp_since = Some(now);
        match state {
            VrrpState::Backup | VrrpState::Fault | VrrpState::Stop
                if self.role.runs_controller() =>
            {
                self.stopped_at = Some(now);
                self.enter(now, Role::Standby, format!("keepalived reported {state}"));
                vec![Action::StopController]
            }
            _ => Vec::new(),
        }
    }

    /// Converges on what was observed.
    pub fn evaluate(&mut self, obs: &Observation<'_>) -> Vec<Action> {
        self.track_health(obs.now, obs.gates);
        self.blocker = None;
        match self.role {
            Role::Standby => self.standby(obs),
            Role::Promoting | Role::Active => self.serving(obs),
            Role::Demoted => self.demoted(obs),
        }
    }

    fn track_health(&mut self, now: Duration, gates: &GateReport) {
        for id in GateId::HEALTH {
            if gates.get(id).passes() {
                self.failing_since.remove(&id);
            } else {
                self.failing_since.entry(id).or_insert(now);
            }
        }
        if self.failing_since.is_empty() {
            self.healthy_since.get_or_insert(now);
        } else {
            self.healthy_since = None;
        }
    }

    /// Health gates that have failed for longer than their grace.
    fn lost_health(&self, now: Duration, gates: &GateReport) -> Vec<GateId> {
        self.failing_since
            .iter()
            .filter(|(id, since)| {
                let grace = if depends_on_jetstream(**id) {
                    self.timing.stall_grace
                } else if **id == GateId::Artifacts && gates.artifacts_unanswered {
                    self.timing.probe_grace
                } else {
                    Duration::ZERO
                };
                now.saturating_sub(**since) >= grace
            })
            .map(|(id, _)| *id)
            .collect()
    }

    fn standby(&mut self, obs: &Observation<'_>) -> Vec<Action> {
        let (now, g) = (obs.now, obs.gates);
        let controller_busy = matches!(
            obs.controller,
            ControllerProcess::Running | ControllerProcess::Stopping
        );
        if !g.vip.passes() {
            self.blocker = Some(format!("waiting for the VIP: {}", g.vip.reason));
            return Vec::new();
        }
        let lost = self.lost_health(now, g);
        if !lost.is_empty() {
            // Holding the VIP without being able to serve: give it away, so a
            // healthy peer can take it (keepalived would not move it otherwise).
            let actions = if controller_busy {
                vec![Action::StopController]
            } else {
                Vec::new()
            };
            self.enter(
                now,
                Role::Demoted,
                format!("promotion denied: {}", g.describe(&lost)),
            );
            return actions;
        }
        let failing = g.failing_health();
        if !failing.is_empty() {
            self.blocker = Some(format!(
                "promotion waits (within the grace of a stall): {}",
                g.describe(&failing)
            ));
            return Vec::new();
        }
        if !g.lease.passes() {
            self.blocker = Some(format!("promotion refused: {}", g.lease.reason));
            return Vec::new();
        }
        if controller_busy {
            self.blocker = Some("waiting for the previous controller to stop".into());
            return Vec::new();
        }
        if let Some(stopped) = self.stopped_at {
            let since = now.saturating_sub(stopped);
            if since < self.timing.hold_down {
                self.blocker = Some(format!(
                    "hold-down after the last stop: {} ms left",
                    (self.timing.hold_down - since).as_millis()
                ));
                return Vec::new();
            }
        }
        let mut reason = "all gates pass; starting the controller".to_owned();
        append_warnings(&mut reason, g);
        self.enter(now, Role::Promoting, reason);
        vec![Action::StartController]
    }

    fn serving(&mut self, obs: &Observation<'_>) -> Vec<Action> {
        let (now, g) = (obs.now, obs.gates);
        match obs.controller {
            ControllerProcess::Exited(exit) => return self.controller_exited(now, exit),
            ControllerProcess::Stopped => {
                return self.demote(now, "the controller stopped outside the agent".into());
            }
            ControllerProcess::Stopping => {
                return self.demote(
                    now,
                    "the controller is being stopped outside the agent".into(),
                );
            }
            ControllerProcess::Running => {}
        }
        if !g.vip.passes() {
            return self.step_down(now, format!("VIP lost: {}", g.vip.reason));
        }
        if g.lease_held_elsewhere {
            return self.step_down(now, format!("stepping down: {}", g.lease.reason));
        }
        let lost = self.lost_health(now, g);
        if !lost.is_empty() {
            return self.demote(now, format!("gate lost: {}", g.describe(&lost)));
        }
        let failing = g.failing_health();
        if !failing.is_empty() {
            self.blocker = Some(format!(
                "within the grace of a stall: {}",
                g.describe(&failing)
            ));
        }
        let ready = g.controller_ready.passes();
        match self.role {
            Role::Promoting if ready => {
                self.not_ready_since = None;
                let mut reason = "controller ready".to_owned();
                append_warnings(&mut reason, g);
                self.enter(now, Role::Active, reason);
            }
            Role::Promoting => {
                let waited = now.saturating_sub(self.role_since);
                if waited >= self.timing.ready_timeout {
                    return self.demote(
                        now,
                        format!(
                            "controller not ready within {}: {}",
                            humantime::format_duration(self.timing.ready_timeout),
                            g.controller_ready.reason
                        ),
                    );
                }
                self.blocker.get_or_insert(format!(
                    "waiting for readiness: {}",
                    g.controller_ready.reason
                ));
            }
            _ if ready => self.not_ready_since = None,
            _ => {
                let since = *self.not_ready_since.get_or_insert(now);
                if now.saturating_sub(since) >= self.timing.stall_grace {
                    return self.demote(
                        now,
                        format!(
                            "controller not ready for {}: {}",
                            humantime::format_duration(self.timing.stall_grace),
                            g.controller_ready.reason
                        ),
                    );
                }
                self.blocker = Some(format!(
                    "controller not ready (stall grace): {}",
                    g.controller_ready.reason
                ));
            }
        }
        Vec::new()
    }

    fn demoted(&mut self, obs: &Observation<'_>) -> Vec<Action> {
        let now = obs.now;
        if matches!(
            obs.controller,
            ControllerProcess::Running | ControllerProcess::Stopping
        ) {
            self.blocker = Some("waiting for the controller to stop".into());
            return Vec::new();
        }
        let Some(healthy) = self.healthy_since else {
            self.blocker = Some(format!(
                "health gates failing: {}",
                obs.gates.describe(&obs.gates.failing_health())
            ));
            return Vec::new();
        };
        let clean_for = now.saturating_sub(healthy.max(self.role_since));
        if clean_for >= self.timing.hold_down {
            self.enter(
                now,
                Role::Standby,
                format!(
                    "health gates passed for {}; keepalived may bid for the VIP again",
                    humantime::format_duration(self.timing.hold_down)
                ),
            );
        } else {
            self.blocker = Some(format!(
                "hold-down: health gates must pass {} ms more",
                (self.timing.hold_down - clean_for).as_millis()
            ));
        }
        Vec::new()
    }

    fn controller_exited(&mut self, now: Duration, exit: &ExitReport) -> Vec<Action> {
        self.stopped_at = Some(now);
        // Not this host's fault: for 75 the lease decides and the VIP may
        // stay; for 79 (fenced) the VIP or the lease went elsewhere,
        // keepalived's or the lease's decision, not a health problem here.
        if let Some(e @ (ControllerExit::LeaseHeld | ControllerExit::Fenced)) =
            exit.code.and_then(ControllerExit::from_code)
        {
            self.enter(
                now,
                Role::Standby,
                format!("controller exited {}: {}", e.code(), e.meaning()),
            );
            return Vec::new();
        }
        self.enter(now, Role::Demoted, format!("controller {exit}"));
        Vec::new()
    }

    /// Stop the controller, keep bidding (the VIP or the lease is elsewhere).
    fn step_down(&mut self, now: Duration, reason: String) -> Vec<Action> {
        self.stopped_at = Some(now);
        self.enter(now, Role::Standby, reason);
        vec![Action::StopController]
    }

    /// Stop the controller and give the VIP away.
    fn demote(&mut self, now: Duration, reason: String) -> Vec<Action> {
        self.stopped_at = Some(now);
        self.enter(now, Role::Demoted, reason);
        vec![Action::StopController]
    }

    fn enter(&mut self, now: Duration, to: Role, reason: String) {
        if to != self.role {
            self.transitions_total += 1;
            self.pending.push(Transition {
                at: now,
                from: self.role,
                to,
                reason: reason.clone(),
            });
            self.role = to;
            self.role_since = now;
            self.not_ready_since = None;
        }
        self.reason = reason;
    }
}

fn append_warnings(reason: &mut String, g: &GateReport) {
    for (id, r) in g.iter() {
        if r.verdict == Verdict::Warn {
            reason.push_str(&format!("; warning: {id}: {}", r.reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::GateResult;

    const T: Timing = Timing {
        ready_timeout: Duration::from_secs(15),
        hold_down: Duration::from_secs(10),
        stall_grace: Duration::from_secs(12),
        probe_grace: Duration::from_secs(5),
    };

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A test bench: the machine plus what the "world" currently looks like.
    struct Bench {
        m: Promotion,
        gates: GateReport,
        controller: ControllerProcess,
        /// Track file contents as the daemon would write them.
        track_writes: Vec<u8>,
    }

    impl Bench {
        fn new() -> Bench {
            let (m, actions) = Promotion::start(T, s(0), false, false);
            assert!(actions.is_empty());
            let mut gates = GateReport::all_passing();
            gates.vip = GateResult::fail("10.0.0.100 is not on any local interface");
            gates.controller_ready = GateResult::fail("controller not running");
            Bench {
                m,
                gates,
                controller: ControllerProcess::Stopped,
                track_writes: Vec::new(),
            }
        }

        /// Applies actions the way the daemon does: stop first, then the track file.
        fn apply(&mut self, actions: Vec<Action>) -> Vec<Action> {
            for a in &actions {
                match a {
                    Action::StartController => self.controller = ControllerProcess::Running,
                    Action::StopController => self.controller = ControllerProcess::Stopping,
                }
            }
            let v = self.m.track_value();
            if self.track_writes.last() != Some(&v) {
                self.track_writes.push(v);
            }
            actions
        }

        fn tick(&mut self, now: Duration) -> Vec<Action> {
            let controller = self.controller.clone();
            let actions = self.m.evaluate(&Observation {
                now,
                gates: &self.gates,
                controller: &controller,
            });
            // An exit is reported once.
            if matches!(self.controller, ControllerProcess::Exited(_)) {
                self.controller = ControllerProcess::Stopped;
            }
            self.apply(actions)
        }

        fn vrrp(&mut self, now: Duration, state: VrrpState) -> Vec<Action> {
            let actions = self.m.on_vrrp(now, state);
            self.apply(actions)
        }

        fn vip(&mut self, held: bool) {
            self.gates.vip = if held {
                GateResult::pass("10.0.0.100 on eth0")
            } else {
                GateResult::fail("10.0.0.100 is not on any local interface")
            };
        }

        fn ready(&mut self, ready: bool) {
            self.gates.controller_ready = if ready {
                GateResult::pass("controller ready")
            } else {
                GateResult::fail("controller not ready (503): starting")
            };
        }

        /// Controller process finished stopping.
        fn stopped(&mut self) {
            if matches!(self.controller, ControllerProcess::Stopping) {
                self.controller = ControllerProcess::Exited(ExitReport {
                    code: Some(0),
                    signal: None,
                });
            }
            self.ready(false);
        }

        /// Promote to Active at `now` (VIP appears, controller gets ready).
        fn activate(&mut self, now: Duration) {
            self.vip(true);
            assert_eq!(self.tick(now), vec![Action::StartController]);
            self.ready(true);
            assert!(self.tick(now + ms(300)).is_empty());
            assert_eq!(self.m.role(), Role::Active);
        }
    }

    #[test]
    fn promotes_when_every_gate_passes_and_becomes_active_when_ready() {
        let mut b = Bench::new();
        assert!(b.tick(s(1)).is_empty());
        assert_eq!(b.m.role(), Role::Standby);
        assert!(b.m.blocker().unwrap().starts_with("waiting for the VIP"));
        b.vrrp(s(2), VrrpState::Master);
        b.vip(true);
        assert_eq!(b.tick(s(2)), vec![Action::StartController]);
        assert_eq!(b.m.role(), Role::Promoting);
        assert!(b.tick(s(3)).is_empty());
        b.ready(true);
        b.tick(s(4));
        assert_eq!(b.m.role(), Role::Active);
        assert_eq!(b.m.transitions_total(), 2);
        assert_eq!(b.track_writes, vec![0]);
    }

    #[test]
    fn backup_stops_at_once_without_demoting() {
        let mut b = Bench::new();
        b.activate(s(1));
        assert_eq!(
            b.vrrp(s(5), VrrpState::Backup),
            vec![Action::StopController]
        );
        assert_eq!(b.m.role(), Role::Standby);
        assert_eq!(b.m.reason(), "keepalived reported BACKUP");
        assert_eq!(
            b.m.track_value(),
            0,
            "BACKUP must not push the host into FAULT"
        );
    }

    #[test]
    fn out_of_order_master_after_backup_does_not_promote_without_the_vip() {
        // Real order: MASTER then BACKUP (VIP gone). Delivered: BACKUP then MASTER.
        let mut b = Bench::new();
        b.vrrp(s(1), VrrpState::Backup);
        b.vrrp(s(1), VrrpState::Master);
        b.vip(false);
        assert!(b.tick(s(1)).is_empty());
        assert!(b.tick(s(30)).is_empty());
        assert_eq!(b.m.role(), Role::Standby);
        assert_eq!(b.controller, ControllerProcess::Stopped);
    }

    #[test]
    fn out_of_order_backup_while_holding_the_vip_stops_then_reconverges_after_hold_down() {
        // Real order: BACKUP then MASTER (VIP held). Delivered: MASTER, then the stale BACKUP.
        let mut b = Bench::new();
        b.vrrp(s(1), VrrpState::Master);
        b.activate(s(1));
        assert_eq!(
            b.vrrp(s(2), VrrpState::Backup),
            vec![Action::StopController]
        );
        b.stopped();
        // The VIP is still here: the truth says this host is master. It comes
        // back, but not before the hold-down, so a burst of stale events cannot churn.
        assert!(b.tick(s(3)).is_empty());
        assert!(b.m.blocker().unwrap().starts_with("hold-down"));
        assert!(b.tick(s(11)).is_empty());
        assert_eq!(b.tick(s(12)), vec![Action::StartController]);
        assert_eq!(b.track_writes, vec![0], "never demoted");
    }

    #[test]
    fn a_health_gate_lost_while_active_demotes_stop_first() {
        let mut b = Bench::new();
        b.activate(s(1));
        b.gates.artifacts = GateResult::fail("/artifacts is not a mount point");
        assert_eq!(b.tick(s(5)), vec![Action::StopController]);
        assert_eq!(b.m.role(), Role::Demoted);
        assert_eq!(
            b.m.reason(),
            "gate lost: artifacts: /artifacts is not a mount point"
        );
        assert_eq!(b.track_writes, vec![0, 1]);
    }

    #[test]
    fn quorum_loss_is_waited_out_for_the_stall_grace_then_demotes() {
        let mut b = Bench::new();
        b.activate(s(1));
        b.gates.quorum = GateResult::fail("no meta leader known");
        b.ready(false); // the controller self-fences meanwhile
        assert!(b.tick(s(10)).is_empty());
        assert!(b.tick(s(21)).is_empty());
        assert_eq!(b.m.role(), Role::Active);
        // The election finished: nothing happened.
        b.gates.quorum = GateResult::pass("leader n1; 2 of 3 voters current");
        b.ready(true);
        assert!(b.tick(s(22)).is_empty());
        assert_eq!(b.m.role(), Role::Active);
        // Lost for good this time.
        b.gates.quorum = GateResult::fail("1 of 3 voters current (n0), 2 needed");
        assert!(b.tick(s(30)).is_empty());
        assert_eq!(b.tick(s(42)), vec![Action::StopController]);
        assert_eq!(b.m.role(), Role::Demoted);
        assert!(b.m.reason().contains("quorum"));
    }

    #[test]
    fn a_controller_that_never_becomes_ready_is_stopped_and_the_host_demoted() {
        let mut b = Bench::new();
        b.vip(true);
        assert_eq!(b.tick(s(1)), vec![Action::StartController]);
        for t in 2..16 {
            assert!(b.tick(s(t)).is_empty(), "t={t}");
        }
        assert_eq!(b.tick(s(16)), vec![Action::StopController]);
        assert_eq!(b.m.role(), Role::Demoted);
        assert!(b.m.reason().starts_with("controller not ready within 15s"));
        assert_eq!(b.m.track_value(), 1);
    }

    #[test]
    fn lease_held_elsewhere_refuses_promotion_and_says_why() {
        let mut b = Bench::new();
        b.vip(true);
        b.gates.lease = GateResult::fail("lease held by alpha (640 ms left)");
        b.gates.lease_held_elsewhere = true;
        assert!(b.tick(s(1)).is_empty());
        assert_eq!(b.m.role(), Role::Standby);
        assert_eq!(
            b.m.blocker(),
            Some("promotion refused: lease held by alpha (640 ms left)")
        );
        assert_eq!(b.m.track_value(), 0);
        // Alpha's lease expires: promotion goes ahead.
        b.gates.lease = GateResult::pass("lease of alpha expired");
        b.gates.lease_held_elsewhere = false;
        assert_eq!(b.tick(s(2)), vec![Action::StartController]);
    }

    #[test]
    fn controller_exit_75_returns_to_standby_without_demoting() {
        let mut b = Bench::new();
        b.vip(true);
        b.tick(s(1));
        b.controller = ControllerProcess::Exited(ExitReport {
            code: Some(75),
            signal: None,
        });
        assert!(b.tick(s(2)).is_empty());
        assert_eq!(b.m.role(), Role::Standby);
        assert!(b.m.reason().contains("held by another host"));
        assert_eq!(b.m.track_value(), 0);
    }

    #[test]
    fn a_fenced_controller_exit_79_returns_to_standby_without_demoting() {
        let mut b = Bench::new();
        b.activate(s(1));
        // The VIP left and the controller noticed first: it exits 79.
        b.vip(false);
        b.controller = ControllerProcess::Exited(ExitReport {
            code: Some(79),
            signal: None,
        });
        assert!(b.tick(s(5)).is_empty());
        assert_eq!(b.m.role(), Role::Standby);
        assert!(b.m.reason().contains("fenced"), "{}", b.m.reason());
        assert_eq!(b.m.track_value(), 0, "not a health problem: no FAULT");
        // The VIP comes back: promotion after the hold-down, as after any stop.
        b.vip(true);
        assert!(b.tick(s(6)).is_empty());
        assert_eq!(b.tick(s(16)), vec![Action::StartController]);
    }

    #[test]
    fn lease_taken_elsewhere_while_active_stops_the_controller() {
        let mut b = Bench::new();
        b.activate(s(1));
        b.gates.lease = GateResult::fail("lease held by beta (900 ms left)");
        b.gates.lease_held_elsewhere = true;
        assert_eq!(b.tick(s(5)), vec![Action::StopController]);
        assert_eq!(b.m.role(), Role::Standby);
    }

    #[test]
    fn a_crashing_controller_demotes() {
        let mut b = Bench::new();
        b.activate(s(1));
        b.controller = ControllerProcess::Exited(ExitReport {
            code: None,
            signal: Some(9),
        });
        b.tick(s(3));
        assert_eq!(b.m.role(), Role::Demoted);
        assert_eq!(b.m.reason(), "controller killed by signal 9");
    }

    #[test]
    fn vip_lost_while_active_stops_without_demoting() {
        let mut b = Bench::new();
        b.activate(s(1));
        b.vip(false);
        assert_eq!(b.tick(s(2)), vec![Action::StopController]);
        assert_eq!(b.m.role(), Role::Standby);
        assert_eq!(b.m.track_value(), 0);
    }

    #[test]
    fn a_flapping_gate_causes_one_demotion_and_no_role_flapping() {
        let mut b = Bench::new();
        b.activate(s(1));
        // The artifact gate flaps every 500 ms for a minute.
        for i in 0..120u64 {
            let now = s(5) + ms(500 * i);
            b.gates.artifacts = if i % 2 == 0 {
                GateResult::fail("/artifacts is not writable: Input/output error")
            } else {
                GateResult::pass("/artifacts mounted and writable")
            };
            b.tick(now);
            if b.controller == ControllerProcess::Stopping {
                b.stopped();
            }
        }
        assert_eq!(b.m.role(), Role::Demoted);
        assert_eq!(
            b.track_writes,
            vec![0, 1],
            "one demotion, held while flapping"
        );
        // Stable again: the track file clears after the hold-down, once.
        b.gates.artifacts = GateResult::pass("/artifacts mounted and writable");
        b.tick(s(70));
        b.tick(s(74));
        assert_eq!(b.m.role(), Role::Demoted);
        b.tick(s(75));
        assert_eq!(b.m.role(), Role::Standby);
        assert_eq!(b.track_writes, vec![0, 1, 0]);
        assert_eq!(b.m.transitions_total(), 4);
    }

    #[test]
    fn an_unanswered_write_probe_is_waited_out_for_the_probe_grace() {
        let mut b = Bench::new();
        b.activate(s(1));
        // A CPU-starved host: the write probe misses its timeout for 4 s.
        b.gates.artifacts = GateResult::fail("write probe did not return in time (hung storage?)");
        b.gates.artifacts_unanswered = true;
        for t in [5_000, 6_000, 8_000, 9_000] {
            assert!(b.tick(ms(t)).is_empty(), "stopped at {t} ms");
        }
        assert_eq!(b.m.role(), Role::Active);
        assert!(b.m.blocker().unwrap().contains("within the grace"));
        b.gates.artifacts = GateResult::pass("/artifacts mounted and writable");
        b.gates.artifacts_unanswered = false;
        b.tick(s(10));
        assert_eq!(b.m.role(), Role::Active);
        assert_eq!(b.track_writes, vec![0], "no demotion");
    }

    #[test]
    fn storage_that_stays_unanswered_past_the_grace_demotes() {
        let mut b = Bench::new();
        b.activate(s(1));
        b.gates.artifacts =
            GateResult::fail("the previous write probe has not returned (hung storage?)");
        b.gates.artifacts_unanswered = true;
        assert!(b.tick(s(5)).is_empty());
        assert!(b.tick(ms(9_900)).is_empty());
        assert_eq!(b.tick(s(10)), vec![Action::StopController]);
        assert_eq!(b.m.role(), Role::Demoted);
    }

    #[test]
    fn a_definite_storage_failure_after_an_unanswered_probe_demotes_at_once() {
        let mut b = Bench::new();
        b.activate(s(1));
        b.gates.artifacts = GateResult::fail("write probe did not return in time (hung storage?)");
        b.gates.artifacts_unanswered = true;
        assert!(b.tick(s(5)).is_empty());
        // The probe returns: the filesystem went read-only.
        b.gates.artifacts = GateResult::fail("/artifacts is not writable: Read-only file system");
        b.gates.artifacts_unanswered = false;
        assert_eq!(b.tick(ms(5_500)), vec![Action::StopController]);
        assert_eq!(b.m.role(), Role::Demoted);
    }

    #[test]
    fn a_standby_holding_the_vip_without_artifacts_is_denied_and_gives_the_vip_away() {
        let mut b = Bench::new();
        b.vip(true);
        b.gates.artifacts = GateResult::fail("/artifacts is not a mount point");
        assert!(b.tick(s(1)).is_empty());
        assert_eq!(b.m.role(), Role::Demoted);
        assert_eq!(
            b.m.reason(),
            "promotion denied: artifacts: /artifacts is not a mount point"
        );
        assert_eq!(b.m.track_value(), 1);
        assert_eq!(b.controller, ControllerProcess::Stopped);
    }

    #[test]
    fn a_standby_holding_the_vip_waits_out_a_jetstream_stall_before_promoting() {
        let mut b = Bench::new();
        b.vip(true);
        b.gates.quorum = GateResult::fail("no meta leader known");
        assert!(b.tick(s(1)).is_empty());
        assert_eq!(b.m.role(), Role::Standby);
        assert!(b.m.blocker().unwrap().contains("quorum"));
        b.gates.quorum = GateResult::pass("leader n2; 2 of 3 voters current");
        assert_eq!(b.tick(s(6)), vec![Action::StartController]);
    }

    #[test]
    fn certificate_warning_promotes_and_is_visible() {
        let mut b = Bench::new();
        b.vip(true);
        b.gates.certificate = GateResult::warn(
            "CN=alpha expires in 10d 0h, below the 30d 0h threshold (policy warn)",
        );
        assert_eq!(b.tick(s(1)), vec![Action::StartController]);
        assert!(
            b.m.reason().contains("warning: certificate"),
            "{}",
            b.m.reason()
        );
        b.ready(true);
        b.tick(s(2));
        assert_eq!(b.m.role(), Role::Active);
        assert!(b.m.reason().contains("warning: certificate"));
    }

    #[test]
    fn agent_restart_with_the_track_file_set_stays_demoted_until_healthy_for_the_hold_down() {
        let (mut m, actions) = Promotion::start(T, s(100), true, false);
        assert!(actions.is_empty());
        assert_eq!(m.role(), Role::Demoted);
        let gates = GateReport::all_passing();
        let stopped = ControllerProcess::Stopped;
        let obs = |now| Observation {
            now,
            gates: &gates,
            controller: &stopped,
        };
        m.evaluate(&obs(s(101)));
        assert_eq!(m.role(), Role::Demoted);
        m.evaluate(&obs(s(110)));
        assert_eq!(m.role(), Role::Demoted);
        m.evaluate(&obs(s(111)));
        assert_eq!(m.role(), Role::Standby);
    }

    #[test]
    fn a_running_controller_found_at_start_is_adopted_or_stopped() {
        let (m, actions) = Promotion::start(T, s(0), false, true);
        assert_eq!(m.role(), Role::Promoting);
        assert!(actions.is_empty());
        let (m, actions) = Promotion::start(T, s(0), true, true);
        assert_eq!(m.role(), Role::Demoted);
        assert_eq!(actions, vec![Action::StopController]);
    }

    #[test]
    fn an_active_controller_losing_readiness_briefly_is_kept() {
        let mut b = Bench::new();
        b.activate(s(1));
        b.ready(false);
        assert!(b.tick(s(5)).is_empty());
        b.ready(true);
        assert!(b.tick(s(8)).is_empty());
        b.ready(false);
        assert!(b.tick(s(10)).is_empty());
        assert!(b.tick(s(21)).is_empty());
        assert_eq!(b.tick(s(22)), vec![Action::StopController]);
        assert_eq!(b.m.role(), Role::Demoted);
    }

    #[test]
    fn a_controller_stopped_behind_the_agents_back_demotes() {
        let mut b = Bench::new();
        b.activate(s(1));
        b.controller = ControllerProcess::Stopped;
        b.tick(s(2));
        assert_eq!(b.m.role(), Role::Demoted);
    }
}
