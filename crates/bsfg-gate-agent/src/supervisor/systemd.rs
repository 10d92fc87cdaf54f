//! systemd supervision: the controller is `bsfg-controller.service`, never
//! enabled for boot; the agent starts and stops it with `systemctl`.
//!
//! Least privilege: the agent runs as its own user. A polkit rule allows that
//! user `org.freedesktop.systemd1.manage-units` for this one unit and the
//! verbs used here (`start`, `stop`, `kill`, `reset-failed`), nothing else.
//! `systemctl` is called with `--no-block` so a slow start or a draining stop
//! never blocks the agent's evaluation loop; progress is read back with
//! `systemctl show` on every poll.

use super::{ControllerProcess, ExitReport, Supervisor, SupervisorError};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// How long one `systemctl` call may take.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct SystemdSupervisor {
    unit: String,
    stop_timeout: Duration,
    /// The unit was seen running since the last exit report.
    seen_running: bool,
    start: PendingStart,
    stopping_since: Option<Instant>,
    killed: bool,
    /// `systemctl show` failing on every evaluation is logged once a second.
    unreadable: bsfg_core::retry::RepeatedWarning,
}

/// Whether our last `start --no-block` may still be queued: the unit's
/// `ExecMainStartTimestampMonotonic` read just before it, while unchanged,
/// means the start job has not run yet (the unit is merely still inactive,
/// it did not exit). A stop supersedes it: systemd cancels a queued start
/// when a stop is enqueued, so the timestamp may never change, and a start
/// still counted as pending would read as a running controller for ever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingStart {
    marker: Option<u64>,
}

impl PendingStart {
    pub fn requested(&mut self, marker: Option<u64>) {
        self.marker = marker;
    }

    pub fn stop_requested(&mut self) {
        self.marker = None;
    }

    /// Still pending given the unit's current state; forgotten once the
    /// main process has started since the request.
    pub fn pending(&mut self, unit: &UnitState) -> bool {
        let pending = self.marker.is_some() && unit.main_started == self.marker;
        if !pending {
            self.marker = None;
        }
        pending
    }
}

/// The unit properties `poll` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub active_state: String,
    pub exec_main_code: Option<i32>,
    pub exec_main_status: Option<i32>,
    pub main_started: Option<u64>,
}

/// Parses `systemctl show -p ActiveState -p ExecMainCode -p ExecMainStatus
/// -p ExecMainStartTimestampMonotonic` output.
pub fn parse_show(text: &str) -> Result<UnitState, String> {
    let props: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let active_state = props
        .get("ActiveState")
        .ok_or_else(|| format!("no ActiveState in {text:?}"))?
        .to_string();
    let num = |k: &str| props.get(k).and_then(|v| v.trim().parse::<i32>().ok());
    Ok(UnitState {
        active_state,
        exec_main_code: num("ExecMainCode"),
        exec_main_status: num("ExecMainStatus"),
        main_started: props
            .get("ExecMainStartTimestampMonotonic")
            .and_then(|v| v.trim().parse().ok()),
    })
}

/// The controller's state from the unit's. `ExecMainCode` is the kernel's
/// `si_code`: 1 exited (status = exit code), 2 killed, 3 dumped (status = signal).
/// `start_pending`: we asked for a start whose job has not run yet.
pub fn interpret(
    unit: &UnitState,
    seen_running: bool,
    stopping: bool,
    start_pending: bool,
) -> ControllerProcess {
    match unit.active_state.as_str() {
        _ if start_pending && !stopping => ControllerProcess::Running,
        "active" | "activating" | "reloading" if stopping => ControllerProcess::Stopping,
        "active" | "activating" | "reloading" => ControllerProcess::Running,
        "deactivating" => ControllerProcess::Stopping,
        _ if seen_running => {
            let status = unit.exec_main_status;
            ControllerProcess::Exited(match unit.exec_main_code {
                Some(1) => ExitReport {
                    code: status,
                    signal: None,
                },
                Some(2) | Some(3) => ExitReport {
                    code: None,
                    signal: status,
                },
                _ => ExitReport {
                    code: None,
                    signal: None,
                },
            })
        }
        _ => ControllerProcess::Stopped,
    }
}

impl SystemdSupervisor {
    pub fn new(unit: String, stop_timeout: Duration) -> SystemdSupervisor {
        SystemdSupervisor {
            unit,
            stop_timeout,
            seen_running: false,
            start: PendingStart::default(),
            stopping_since: None,
            killed: false,
            unreadable: bsfg_core::retry::RepeatedWarning::new(Duration::from_secs(1)),
        }
    }

    async fn systemctl(&self, args: &[&str]) -> Result<String, SupervisorError> {
        let mut cmd = Command::new("systemctl");
        cmd.args(args).arg(&self.unit).kill_on_drop(true);
        let out = tokio::time::timeout(SYSTEMCTL_TIMEOUT, cmd.output())
            .await
            .map_err(|_| SupervisorError(format!("systemctl {} timed out", args.join(" "))))?
            .map_err(|e| SupervisorError(format!("running systemctl: {e}")))?;
        if !out.status.success() {
            return Err(SupervisorError(format!(
                "systemctl {} {}: {}",
                args.join(" "),
                self.unit,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Supervisor for SystemdSupervisor {
    fn describe(&self) -> String {
        format!("systemd unit {}", self.unit)
    }

    async fn start(&mut self) -> Result<(), SupervisorError> {
        // A unit that failed before refuses nothing, but its failed state
        // would linger in `systemctl --failed` and monitoring.
        let _ = self.systemctl(&["reset-failed"]).await;
        let marker = self
            .systemctl(&["show", "-p", "ExecMainStartTimestampMonotonic"])
            .await
            .ok()
            .and_then(|t| {
                t.trim()
                    .strip_prefix("ExecMainStartTimestampMonotonic=")
                    .and_then(|v| v.parse().ok())
            });
        self.start.requested(marker);
        self.systemctl(&["start", "--no-block"]).await?;
        tracing::info!(unit = %self.unit, "controller unit start requested");
        self.seen_running = true;
        self.stopping_since = None;
        self.killed = false;
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), SupervisorError> {
        if self.stopping_since.is_some() {
            return Ok(());
        }
        self.stopping_since = Some(Instant::now());
        self.start.stop_requested();
        self.systemctl(&["stop", "--no-block"]).await.map(|_| ())
    }

    async fn poll(&mut self) -> ControllerProcess {
        let text = match self
            .systemctl(&[
                "show",
                "-p",
                "ActiveState",
                "-p",
                "ExecMainCode",
                "-p",
                "ExecMainStatus",
                "-p",
                "ExecMainStartTimestampMonotonic",
            ])
            .await
        {
            Ok(t) => t,
            Err(e) => {
                if let Some(n) = self.unreadable.occurred(bsfg_store::monotonic_now()) {
                    tracing::error!(error = %e, failures_since_last_report = n, "cannot read the controller unit's state");
                }
                // Unknown: claim the worst that forces no start (a running controller).
                return if self.seen_running {
                    ControllerProcess::Running
                } else {
                    ControllerProcess::Stopped
                };
            }
        };
        let unit = match parse_show(&text) {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "unexpected systemctl show output");
                return ControllerProcess::Running;
            }
        };
        let start_pending = self.start.pending(&unit);
        let state = interpret(
            &unit,
            self.seen_running,
            self.stopping_since.is_some(),
            start_pending,
        );
        match &state {
            ControllerProcess::Running => self.seen_running = true,
            ControllerProcess::Stopping => {
                self.seen_running = true;
                if let Some(since) = self.stopping_since
                    && since.elapsed() >= self.stop_timeout
                    && !self.killed
                {
                    tracing::warn!(unit = %self.unit, "controller unit did not stop; SIGKILL");
                    self.killed = true;
                    if let Err(e) = self.systemctl(&["kill", "--signal=SIGKILL"]).await {
                        tracing::error!(error = %e, "SIGKILL to the controller unit failed");
                    }
                }
            }
            ControllerProcess::Exited(_) | ControllerProcess::Stopped => {
                self.seen_running = false;
                self.stopping_since = None;
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_show_output() {
        let u = parse_show(
            "ActiveState=failed\nExecMainCode=1\nExecMainStatus=75\nExecMainStartTimestampMonotonic=123\n",
        )
        .unwrap();
        assert_eq!(
            u,
            UnitState {
                active_state: "failed".into(),
                exec_main_code: Some(1),
                exec_main_status: Some(75),
                main_started: Some(123),
            }
        );
        assert!(parse_show("SubState=dead\n").is_err());
    }

    #[test]
    fn a_stop_supersedes_a_start_that_never_ran() {
        let never_started = UnitState {
            active_state: "inactive".into(),
            exec_main_code: None,
            exec_main_status: None,
            main_started: Some(0),
        };
        let mut start = PendingStart::default();
        start.requested(Some(0));
        assert!(start.pending(&never_started));
        // keepalived reported BACKUP before the job ran: systemd cancels the
        // start, the timestamp stays 0, and the unit must read as stopped.
        start.stop_requested();
        assert!(!start.pending(&never_started));
        assert_eq!(
            interpret(&never_started, false, false, start.pending(&never_started)),
            ControllerProcess::Stopped
        );
        // A start whose process ran is forgotten once seen.
        start.requested(Some(0));
        let ran = UnitState {
            main_started: Some(42),
            ..never_started.clone()
        };
        assert!(!start.pending(&ran));
        assert!(!start.pending(&never_started));
    }

    #[test]
    fn interprets_unit_states() {
        let u = |s: &str, code, status| UnitState {
            active_state: s.into(),
            exec_main_code: code,
            exec_main_status: status,
            main_started: None,
        };
        assert_eq!(
            interpret(&u("activating", Some(0), Some(0)), true, false, false),
            ControllerProcess::Running
        );
        assert_eq!(
            interpret(&u("active", None, None), true, true, false),
            ControllerProcess::Stopping
        );
        assert_eq!(
            interpret(&u("deactivating", None, None), true, false, false),
            ControllerProcess::Stopping
        );
        assert_eq!(
            interpret(&u("failed", Some(1), Some(75)), true, false, false),
            ControllerProcess::Exited(ExitReport {
                code: Some(75),
                signal: None
            })
        );
        assert_eq!(
            interpret(&u("failed", Some(2), Some(9)), true, true, false),
            ControllerProcess::Exited(ExitReport {
                code: None,
                signal: Some(9)
            })
        );
        // Right after `start --no-block` the job may not have run: not an exit.
        assert_eq!(
            interpret(&u("failed", Some(1), Some(75)), true, false, true),
            ControllerProcess::Running
        );
        // Inactive and never started by us: nothing to report.
        assert_eq!(
            interpret(&u("inactive", Some(1), Some(0)), false, false, false),
            ControllerProcess::Stopped
        );
    }
}
