//! Child-process supervision: the agent spawns `controller.command`, owns the
//! child, signals it (SIGTERM, SIGKILL after `stop_timeout`) and reaps it.
//! Used where there is no systemd (the zone simulator, containers).
//!
//! The child inherits the agent's stdout and stderr, so its logs land wherever
//! the agent's go. It is killed if the agent drops it (agent panic, shutdown).
//! An agent killed outright (SIGKILL) cannot do that, and an orphaned
//! controller would keep renewing the zone lease with nobody supervising it;
//! so the child's pid and start time are recorded in a pid file, and the next
//! agent stops that exact process ([`Supervisor::stop_leftover`]).

use super::{ControllerProcess, ExitReport, Supervisor, SupervisorError};
use rustix::process::{Pid, Signal, kill_process};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

#[derive(Debug)]
pub struct ChildSupervisor {
    argv: Vec<String>,
    stop_timeout: Duration,
    child: Option<Child>,
    stopping_since: Option<Instant>,
    killed: bool,
    pid_file: Option<PathBuf>,
}

/// A process's start time (clock ticks since boot, `/proc/<pid>/stat` field
/// 22): with the pid, it names one process even after pids are reused.
/// `None` for a process that is gone or a zombie (it has exited).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields resume after ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Parses a pid file written by [`ChildSupervisor`]: `<pid> <start time>`.
pub fn parse_pid_file(text: &str) -> Option<(u32, u64)> {
    let mut words = text.split_whitespace();
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

impl ChildSupervisor {
    pub fn new(argv: Vec<String>, stop_timeout: Duration) -> ChildSupervisor {
        assert!(!argv.is_empty(), "controller.command is checked non-empty");
        ChildSupervisor {
            argv,
            stop_timeout,
            child: None,
            stopping_since: None,
            killed: false,
            pid_file: None,
        }
    }

    /// Records the child's identity in `path` (see the module documentation).
    pub fn with_pid_file(mut self, path: PathBuf) -> ChildSupervisor {
        self.pid_file = Some(path);
        self
    }

    fn record_pid(&self, pid: Option<u32>) {
        let Some(path) = &self.pid_file else { return };
        let result = match pid.and_then(|p| Some((p, start_time(p)?))) {
            Some((pid, start)) => std::fs::write(path, format!("{pid} {start}\n")),
            None => match std::fs::remove_file(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
        };
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "controller pid file");
        }
    }

    fn signal(&self, sig: Signal) -> Result<(), SupervisorError> {
        let Some(pid) = self
            .child
            .as_ref()
            .and_then(Child::id)
            .and_then(|p| Pid::from_raw(p as i32))
        else {
            return Ok(());
        };
        kill_process(pid, sig)
            .map_err(|e| SupervisorError(format!("signal {sig:?} to {pid:?}: {e}")))
    }
}

impl Supervisor for ChildSupervisor {
    fn describe(&self) -> String {
        match self.child.as_ref().and_then(Child::id) {
            Some(pid) => format!("process {} (pid {pid})", self.argv[0]),
            None => format!("process {}", self.argv[0]),
        }
    }

    async fn start(&mut self) -> Result<(), SupervisorError> {
        if self.child.is_some() {
            return Ok(());
        }
        let child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| SupervisorError(format!("spawning {}: {e}", self.argv[0])))?;
        tracing::info!(pid = child.id(), command = ?self.argv, "controller process started");
        self.record_pid(child.id());
        self.child = Some(child);
        self.stopping_since = None;
        self.killed = false;
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), SupervisorError> {
        if self.child.is_none() || self.stopping_since.is_some() {
            return Ok(());
        }
        self.stopping_since = Some(Instant::now());
        self.signal(Signal::TERM)
    }

    async fn poll(&mut self) -> ControllerProcess {
        let Some(child) = self.child.as_mut() else {
            return ControllerProcess::Stopped;
        };
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                self.stopping_since = None;
                self.record_pid(None);
                let report = ExitReport {
                    code: status.code(),
                    signal: status.signal(),
                };
                tracing::info!(%report, "controller process ended");
                ControllerProcess::Exited(report)
            }
            Ok(None) => match self.stopping_since {
                None => ControllerProcess::Running,
                Some(since) => {
                    if since.elapsed() >= self.stop_timeout && !self.killed {
                        tracing::warn!(
                            timeout = ?self.stop_timeout,
                            "controller did not stop after SIGTERM; sending SIGKILL"
                        );
                        self.killed = true;
                        if let Err(e) = child.start_kill() {
                            tracing::error!(error = %e, "SIGKILL to the controller failed");
                        }
                    }
                    ControllerProcess::Stopping
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot wait for the controller process");
                ControllerProcess::Running
            }
        }
    }

    async fn stop_leftover(&mut self) {
        let Some(path) = &self.pid_file else { return };
        let Some((pid, start)) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| parse_pid_file(&t))
        else {
            return;
        };
        if start_time(pid) != Some(start) {
            self.record_pid(None); // that process is gone; the pid may be reused
            return;
        }
        let Some(target) = Pid::from_raw(pid as i32) else {
            return;
        };
        tracing::warn!(
            pid,
            "stopping a controller left running by a previous agent"
        );
        let _ = kill_process(target, Signal::TERM);
        let deadline = Instant::now() + self.stop_timeout;
        while start_time(pid) == Some(start) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if start_time(pid) == Some(start) {
            let _ = kill_process(target, Signal::KILL);
        }
        self.record_pid(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn until_exit(s: &mut ChildSupervisor) -> ExitReport {
        for _ in 0..500 {
            if let ControllerProcess::Exited(r) = s.poll().await {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("child did not exit");
    }

    #[tokio::test]
    async fn reports_the_exit_code_once() {
        let mut s = ChildSupervisor::new(
            vec!["sh".into(), "-c".into(), "exit 75".into()],
            Duration::from_secs(5),
        );
        assert_eq!(s.poll().await, ControllerProcess::Stopped);
        s.start().await.unwrap();
        let r = until_exit(&mut s).await;
        assert_eq!(r.code, Some(75));
        assert_eq!(s.poll().await, ControllerProcess::Stopped);
    }

    #[tokio::test]
    async fn sigterm_stops_a_cooperative_child() {
        let mut s =
            ChildSupervisor::new(vec!["sleep".into(), "60".into()], Duration::from_secs(30));
        s.start().await.unwrap();
        assert_eq!(s.poll().await, ControllerProcess::Running);
        s.stop().await.unwrap();
        let r = until_exit(&mut s).await;
        assert_eq!(r.signal, Some(15));
    }

    #[tokio::test]
    async fn sigkill_follows_when_sigterm_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let trapped = dir.path().join("trapped");
        let script = format!(
            "trap '' TERM; touch {}; while :; do sleep 0.05; done",
            trapped.display()
        );
        let mut s = ChildSupervisor::new(
            vec!["sh".into(), "-c".into(), script],
            Duration::from_millis(300),
        );
        s.start().await.unwrap();
        // SIGTERM only once the shell ignores it, or it would simply die of it.
        for _ in 0..500 {
            if trapped.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        s.stop().await.unwrap();
        assert_eq!(s.poll().await, ControllerProcess::Stopping);
        let r = until_exit(&mut s).await;
        assert_eq!(r.signal, Some(9));
    }

    #[tokio::test]
    async fn a_controller_left_by_a_killed_agent_is_stopped_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("controller.pid");
        let mut first =
            ChildSupervisor::new(vec!["sleep".into(), "60".into()], Duration::from_secs(5))
                .with_pid_file(pid_file.clone());
        first.start().await.unwrap();
        let (pid, start) = parse_pid_file(&std::fs::read_to_string(&pid_file).unwrap()).unwrap();
        assert_eq!(start_time(pid), Some(start));
        // The agent dies without cleaning up: its child lives on.
        std::mem::forget(first);
        let mut next =
            ChildSupervisor::new(vec!["sleep".into(), "60".into()], Duration::from_secs(5))
                .with_pid_file(pid_file.clone());
        next.stop_leftover().await;
        // Gone (a zombie of this test process at most, until reaped below).
        assert_eq!(start_time(pid), None);
        let _ = rustix::process::waitpid(
            Pid::from_raw(pid as i32),
            rustix::process::WaitOptions::NOHANG,
        );
        assert!(!pid_file.exists());
        // A stale file naming another process is ignored and removed.
        std::fs::write(&pid_file, format!("{} 1\n", std::process::id())).unwrap();
        next.stop_leftover().await;
        assert!(!pid_file.exists());
    }

    #[tokio::test]
    async fn an_unstartable_command_is_an_error() {
        let mut s = ChildSupervisor::new(
            vec!["/nonexistent/bsfg-controller".into()],
            Duration::from_secs(1),
        );
        assert!(s.start().await.is_err());
        assert_eq!(s.poll().await, ControllerProcess::Stopped);
    }
}
