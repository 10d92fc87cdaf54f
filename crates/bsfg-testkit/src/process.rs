//! Child processes of a test: log captured to a file, killed on drop.
//!
//! Each child is also recorded under `$TMPDIR/bsfg-testkit/owners/<test pid>/`
//! so that the children of a test process that was itself killed (a timeout,
//! SIGKILL: no destructor runs) are reaped by the next test that starts.

use rustix::process::{Pid, Signal, kill_process};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

fn owners_dir() -> PathBuf {
    std::env::temp_dir().join("bsfg-testkit/owners")
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills children left behind by test processes that no longer exist.
pub fn reap_orphans() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(owners) = fs::read_dir(owners_dir()) else {
            return;
        };
        for owner in owners.flatten() {
            let Some(owner_pid) = owner
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if alive(owner_pid) {
                continue;
            }
            for child in fs::read_dir(owner.path()).into_iter().flatten().flatten() {
                if let Some(pid) = child
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                    .and_then(Pid::from_raw)
                {
                    let _ = kill_process(pid, Signal::KILL);
                }
            }
            let _ = fs::remove_dir_all(owner.path());
        }
    });
}

/// A running child process.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    marker: PathBuf,
}

impl Daemon {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> std::io::Result<Daemon> {
        reap_orphans();
        let out = File::options().create(true).append(true).open(log)?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = cmd.spawn()?;
        let dir = owners_dir().join(std::process::id().to_string());
        fs::create_dir_all(&dir)?;
        let marker = dir.join(child.id().to_string());
        fs::write(&marker, name)?;
        Ok(Daemon {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
            marker,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<_> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Exit status if it has exited.
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
            .and_then(|s| s.code())
    }

    pub fn signal(&self, sig: Signal) {
        if let Some(pid) = self.pid().and_then(|p| Pid::from_raw(p as i32)) {
            let _ = kill_process(pid, sig);
        }
    }

    /// SIGSTOP: the process is frozen (its sockets stay open, nothing is answered).
    pub fn freeze(&self) {
        self.signal(Signal::STOP);
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        self.signal(Signal::CONT);
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = fs::remove_file(&self.marker);
    }

    /// SIGTERM, then wait up to `grace` for exit (SIGKILL after). Returns the exit code.
    pub async fn stop(&mut self, grace: Duration) -> Option<i32> {
        self.thaw();
        self.signal(Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(c) = &mut self.child
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                let _ = fs::remove_file(&self.marker);
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
    }
}
