//! Running the controller: one trait, two implementations.
//!
//! - [`systemd::SystemdSupervisor`] (production): `systemctl start|stop|kill`
//!   of `bsfg-controller.service`, a unit that is never enabled for boot. The
//!   agent runs unprivileged; a polkit rule lets its user manage that one unit.
//! - [`process::ChildSupervisor`] (zone simulator, containers): the agent
//!   spawns `controller.command` itself and owns the child.
//!
//! Both report what the process is doing through [`Supervisor::poll`], called
//! on every evaluation, which is also where a stop that outlived
//! `stop_timeout` is escalated to SIGKILL.

pub mod process;
pub mod systemd;

use bsfg_mgmt::{ControllerExit, ProcessState};
use std::fmt;
use std::future::Future;

/// The controller process as the supervisor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerProcess {
    /// Not running (never started, or its exit was already reported).
    Stopped,
    Running,
    /// Asked to stop, not gone yet.
    Stopping,
    /// Exited since the last poll (reported once, then `Stopped`).
    Exited(ExitReport),
}

impl ControllerProcess {
    pub fn state(&self) -> ProcessState {
        match self {
            ControllerProcess::Stopped => ProcessState::Stopped,
            ControllerProcess::Running => ProcessState::Running,
            ControllerProcess::Stopping => ProcessState::Stopping,
            ControllerProcess::Exited(_) => ProcessState::Exited,
        }
    }
}

/// How the controller ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitReport {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl fmt::Display for ExitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(0), _) => f.write_str("exited with code 0 (clean stop)"),
            (Some(code), _) => match ControllerExit::from_code(code) {
                Some(exit) => write!(f, "exited with code {exit}"),
                None => write!(f, "exited with code {code}"),
            },
            (None, Some(sig)) => write!(f, "killed by signal {sig}"),
            (None, None) => f.write_str("ended (status unknown)"),
        }
    }
}

/// A failure to ask for a start or stop (the process's own failures are
/// reported by [`Supervisor::poll`] as an exit).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SupervisorError(pub String);

pub trait Supervisor: Send {
    /// What is supervised ("process bsfg-controller", "systemd unit bsfg-controller.service").
    fn describe(&self) -> String;

    /// Starts the controller; returns once the start was requested.
    fn start(&mut self) -> impl Future<Output = Result<(), SupervisorError>> + Send;

    /// Asks the controller to stop (SIGTERM) now; [`poll`](Self::poll) sends
    /// SIGKILL once `stop_timeout` has passed.
    fn stop(&mut self) -> impl Future<Output = Result<(), SupervisorError>> + Send;

    /// The controller's state now.
    fn poll(&mut self) -> impl Future<Output = ControllerProcess> + Send;

    /// At agent start: stop a controller that a crashed predecessor left
    /// running and that this supervisor cannot adopt. Default: nothing to do.
    fn stop_leftover(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
