//! The zone's daemons: started inside a host namespace (`ip netns exec`),
//! detached from the simulator (own process group, so `up` can exit and a
//! Ctrl-C of the simulator does not reach them), with a clean environment
//! and their output in a log file per daemon.
//!
//! A daemon is named by its pid *and* its start time (`/proc/<pid>/stat`
//! field 22), so a record in the state file never kills a stranger that
//! reused the pid after a reboot or a crash of the simulator.

use anyhow::{Context, Result};
use rustix::process::{Pid, Signal, kill_process};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What runs on a simulated host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Nats,
    GateAgent,
    Keepalived,
    /// A controller the simulator starts itself (the peer node of a
    /// replication drill); the zone's controllers are the agents' children.
    Controller,
    /// The power feed: `bsfg-powercut` serving the hosts' disks (power-loss drills).
    PowerFeed,
    /// `systemd-nspawn` booting a host (the systemd mode).
    Container,
    /// gamma's service probe: Debian's blackbox exporter.
    Probe,
    /// Host metrics: Debian's node exporter.
    NodeExporter,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nats => "nats-server",
            Kind::GateAgent => "bsfg-gate-agent",
            Kind::Keepalived => "keepalived",
            Kind::Controller => "bsfg-controller",
            Kind::PowerFeed => "bsfg-powercut",
            Kind::Container => "systemd-nspawn",
            Kind::Probe => "blackbox-exporter",
            Kind::NodeExporter => "node-exporter",
        }
    }
}

/// One started daemon, as recorded in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonRecord {
    pub host: String,
    pub kind: Kind,
    pub pid: u32,
    pub start_time: u64,
    pub log: PathBuf,
}

/// A process's start time (clock ticks since boot), `None` if it is gone or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_start_time(&stat)
}

/// Field 22 of `/proc/<pid>/stat`; `None` for a zombie. The command name
/// (field 2) may contain spaces and parentheses, so fields are counted after
/// the last `)`.
pub fn parse_stat_start_time(stat: &str) -> Option<u64> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// The parent pid (field 4 of `/proc/<pid>/stat`).
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The program name of a process (`/proc/<pid>/comm`, at most 15 bytes).
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

impl DaemonRecord {
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }

    /// Sends `signal` if the recorded process still runs.
    pub fn signal(&self, signal: Signal) {
        if self.alive()
            && let Some(pid) = Pid::from_raw(self.pid as i32)
        {
            let _ = kill_process(pid, signal);
        }
    }
}

/// Starts `argv` inside namespace `ns`, output appended to `log`.
pub fn spawn(
    ns: &str,
    host: &str,
    kind: Kind,
    argv: &[String],
    log: &Path,
) -> Result<DaemonRecord> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).args(argv);
    start(cmd, host, kind, log)
}

/// Starts `argv` in the simulator's own namespaces (network and mount: a
/// FUSE mount made here is seen by every host's daemons started after it,
/// whereas `ip netns exec` gives each daemon a mount namespace of its own).
pub fn spawn_outside_hosts(
    label: &str,
    kind: Kind,
    argv: &[String],
    log: &Path,
) -> Result<DaemonRecord> {
    let (program, args) = argv.split_first().context("an empty command line")?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    start(cmd, label, kind, log)
}

fn start(mut cmd: Command, host: &str, kind: Kind, log: &Path) -> Result<DaemonRecord> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {} on {host}", kind.name()))?;
    let pid = child.id();
    // `ip netns exec` execs the daemon in place: same pid. Its start time is
    // readable at once (the process exists from fork on).
    let start = start_time(pid).with_context(|| {
        format!(
            "{} on {host} exited at once; see {}",
            kind.name(),
            log.display()
        )
    })?;
    // Reap it when it ends, so a killed daemon does not linger as a zombie
    // while a drill keeps running (after `up` exits, init reaps instead).
    std::thread::Builder::new()
        .name(format!("reap-{pid}"))
        .spawn(move || {
            let _ = child.wait();
        })
        .context("spawning a reaper thread")?;
    Ok(DaemonRecord {
        host: host.to_owned(),
        kind,
        pid,
        start_time: start,
        log: log.to_owned(),
    })
}

/// SIGKILLs every pid in `pids` and waits (up to 5 s) until all are gone.
pub fn kill_all(pids: &[i32]) {
    for &p in pids {
        if let Some(pid) = Pid::from_raw(p) {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline
        && pids
            .iter()
            .any(|&p| p > 0 && start_time(p as u32).is_some())
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits up to `timeout` for the recorded process to end.
pub fn wait_gone(record: &DaemonRecord, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while record.alive() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (bsfg (gate) agent) S 1 4242 4242 0 -1 4194560 2093 0 0 0 3 1 0 0 20 0 \
                        9 0 123456 1000000 500 18446744073709551615";

    #[test]
    fn start_time_is_field_22_even_with_parentheses_in_the_name() {
        assert_eq!(parse_stat_start_time(STAT), Some(123456));
    }

    #[test]
    fn zombies_have_no_start_time() {
        let zombie = STAT.replace(") S ", ") Z ");
        assert_eq!(parse_stat_start_time(&zombie), None);
        assert_eq!(parse_stat_start_time("garbage"), None);
    }

    #[test]
    fn our_own_process_has_a_start_time_and_a_parent() {
        let me = std::process::id();
        assert!(start_time(me).is_some());
        assert!(parent_pid(me).is_some());
        assert!(comm(me).is_some());
    }
}
