//! Promotion decisions against the gate table (contract section 7), for
//! arbitrary sequences of gate verdicts, keepalived transitions, controller
//! exits and time. The table, as rules every step must obey:
//!
//! - the controller is started only while gates 1–5 and 7 pass (warn
//!   counts as pass), no controller runs, and the hold-down since the last
//!   stop is over;
//! - a running controller is stopped in the same step that sees BACKUP,
//!   FAULT or STOP, the VIP lost, or the lease held elsewhere;
//! - Active is entered only when gate 6 (controller ready) passes;
//! - the track file is set exactly while Demoted.

use bsfg_gate_agent::gates::{GateReport, GateResult};
use bsfg_gate_agent::promotion::{Action, Observation, Promotion, Timing};
use bsfg_gate_agent::supervisor::{ControllerProcess, ExitReport};
use bsfg_mgmt::{GateId, Role, Verdict, VrrpState};
use proptest::prelude::*;
use std::time::Duration;

const T: Timing = Timing {
    ready_timeout: Duration::from_secs(15),
    hold_down: Duration::from_secs(10),
    stall_grace: Duration::from_secs(12),
    probe_grace: Duration::from_secs(5),
};

#[derive(Debug, Clone)]
enum Event {
    /// Time passes, then the probes see these verdicts (gates in contract order).
    Evaluate {
        after_ms: u64,
        verdicts: [Verdict; 7],
        lease_held_elsewhere: bool,
        /// A failing gate 4 failed only because its write probe went unanswered.
        artifacts_unanswered: bool,
    },
    Vrrp(VrrpState),
    /// The controller exits on its own with this code.
    Exit(i32),
    /// A stop asked for has completed.
    Stopped,
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![6 => Just(Verdict::Pass), 1 => Just(Verdict::Warn), 2 => Just(Verdict::Fail)]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        8 => (0u64..8000, prop::array::uniform7(verdict()), any::<bool>(), any::<bool>()).prop_map(
            |(after_ms, verdicts, lease_held_elsewhere, artifacts_unanswered)| Event::Evaluate { after_ms, verdicts, lease_held_elsewhere, artifacts_unanswered }
        ),
        2 => prop::sample::select(VrrpState::ALL.to_vec()).prop_map(Event::Vrrp),
        1 => prop::sample::select(vec![0, 1, 69, 75, 78, 79]).prop_map(Event::Exit),
        2 => Just(Event::Stopped),
    ]
}

fn report(
    verdicts: [Verdict; 7],
    lease_held_elsewhere: bool,
    artifacts_unanswered: bool,
) -> GateReport {
    let mut g = GateReport::all_passing();
    for (id, v) in GateId::ALL.into_iter().zip(verdicts) {
        let r = GateResult {
            verdict: v,
            reason: format!("{id} {v:?}"),
        };
        match id {
            GateId::Vip => g.vip = r,
            GateId::Jetstream => g.jetstream = r,
            GateId::Quorum => g.quorum = r,
            GateId::Artifacts => g.artifacts = r,
            GateId::Certificate => g.certificate = r,
            GateId::ControllerReady => g.controller_ready = r,
            GateId::Lease => g.lease = r,
        }
    }
    // Held elsewhere implies the lease gate fails.
    g.lease_held_elsewhere = lease_held_elsewhere && !g.lease.passes();
    g.artifacts_unanswered = artifacts_unanswered && !g.artifacts.passes();
    g
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn decisions_follow_the_gate_table(
        track_set in any::<bool>(),
        events in prop::collection::vec(event(), 1..80),
    ) {
        let mut now = Duration::from_secs(100);
        let (mut m, actions) = Promotion::start(T, now, track_set, false);
        prop_assert!(actions.is_empty());
        let mut controller = ControllerProcess::Stopped;
        let mut last_stop: Option<Duration> = None;
        for e in events {
            let role_before = m.role();
            let running_before = matches!(controller, ControllerProcess::Running);
            let (actions, gates) = match e {
                Event::Evaluate { after_ms, verdicts, lease_held_elsewhere, artifacts_unanswered } => {
                    now += Duration::from_millis(after_ms);
                    let g = report(verdicts, lease_held_elsewhere, artifacts_unanswered);
                    let seen = controller.clone();
                    let actions = m.evaluate(&Observation { now, gates: &g, controller: &seen });
                    if matches!(controller, ControllerProcess::Exited(_)) {
                        controller = ControllerProcess::Stopped;
                    }
                    (actions, Some(g))
                }
                Event::Vrrp(state) => {
                    let actions = m.on_vrrp(now, state);
                    if running_before && matches!(state, VrrpState::Backup | VrrpState::Fault | VrrpState::Stop) {
                        prop_assert_eq!(&actions, &vec![Action::StopController], "{} did not stop the controller", state);
                    }
                    (actions, None)
                }
                Event::Exit(code) => {
                    if running_before {
                        controller = ControllerProcess::Exited(ExitReport { code: Some(code), signal: None });
                        last_stop = Some(now);
                    }
                    (Vec::new(), None)
                }
                Event::Stopped => {
                    if matches!(controller, ControllerProcess::Stopping) {
                        controller = ControllerProcess::Stopped;
                    }
                    (Vec::new(), None)
                }
            };
            for a in &actions {
                match a {
                    Action::StartController => {
                        let g = gates.as_ref().expect("starts only on an evaluation");
                        for id in [GateId::Vip, GateId::Jetstream, GateId::Quorum, GateId::Artifacts, GateId::Certificate, GateId::Lease] {
                            prop_assert!(g.get(id).passes(), "started with gate {} failing", id);
                        }
                        prop_assert!(matches!(controller, ControllerProcess::Stopped), "started over a {} controller", controller.state());
                        if let Some(stop) = last_stop {
                            prop_assert!(now.saturating_sub(stop) >= T.hold_down, "started within the hold-down");
                        }
                        prop_assert_eq!(m.role(), Role::Promoting);
                        controller = ControllerProcess::Running;
                    }
                    Action::StopController => {
                        prop_assert!(!matches!(controller, ControllerProcess::Stopped), "stopped a stopped controller");
                        controller = ControllerProcess::Stopping;
                        last_stop = Some(now);
                    }
                }
            }
            if let Some(g) = &gates && running_before {
                // A definite storage failure is never waited out (an unanswered probe may be).
                let storage_failed = !g.artifacts.passes() && !g.artifacts_unanswered;
                let must_stop = !g.vip.passes() || g.lease_held_elsewhere || storage_failed;
                if must_stop {
                    prop_assert!(actions.contains(&Action::StopController) || !matches!(role_before, Role::Promoting | Role::Active),
                        "running with the VIP lost, the lease elsewhere or the storage failed, not stopped (role {})", role_before);
                }
            }
            if m.role() == Role::Active && role_before != Role::Active {
                let g = gates.as_ref().expect("Active is entered on an evaluation");
                prop_assert!(g.controller_ready.passes(), "active without readiness");
            }
            prop_assert_eq!(m.track_value() == 1, m.role() == Role::Demoted);
        }
    }
}
