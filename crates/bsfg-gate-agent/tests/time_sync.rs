//! The time-sync probe against a real chronyd (Debian's chrony, as the
//! appliance runs it): one with its local clock as the reference
//! (synchronised), one with an unreachable server only (not synchronised),
//! and none at all. chronyd runs with `-x` (it never touches the clock) and
//! its command socket in a directory of the test's own; it needs root.

use bsfg_gate_agent::config::{TimeSync, TimeSyncPolicy};
use bsfg_gate_agent::gates::time_sync::assess;
use bsfg_gate_agent::probes::time_sync::{Leap, TimeSyncError, query};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A chronyd of this test: killed (by its pid) and waited for on drop.
struct Chronyd {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chronyd(extra: &str) -> Chronyd {
    assert!(
        rustix::process::geteuid().is_root(),
        "the time-sync tests start chronyd, which needs root; run the suite as root, as CI does"
    );
    let dir = tempfile::tempdir().unwrap();
    // chronyd refuses a command socket in a directory others can enter.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = dir.path().join("chronyd.sock");
    let conf = dir.path().join("chrony.conf");
    std::fs::write(
        &conf,
        format!(
            "{extra}\nport 0\ncmdport 0\nbindcmdaddress {}\npidfile {}\n",
            socket.display(),
            dir.path().join("chronyd.pid").display()
        ),
    )
    .unwrap();
    let child = Command::new("chronyd")
        .args(["-x", "-d", "-u", "root", "-f"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chronyd (Debian package chrony; scripts/lib/prerequisites.sh installs it)");
    let deadline = Instant::now() + TIMEOUT;
    while !socket.exists() {
        assert!(Instant::now() < deadline, "chronyd made no command socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    Chronyd {
        child,
        socket,
        _dir: dir,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn chronyc() -> &'static Path {
    Path::new("chronyc")
}

#[test]
fn a_chronyd_on_its_local_clock_is_synchronised() {
    let d = chronyd("local stratum 8\nserver 127.0.0.1 port 9 iburst");
    let rt = rt();
    // chronyd takes the local reference within its first second.
    let deadline = Instant::now() + TIMEOUT;
    let t = loop {
        let t = rt
            .block_on(query(chronyc(), Some(&d.socket), TIMEOUT))
            .unwrap();
        if t.leap != Leap::NotSynchronised || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(t.leap, Leap::Normal, "{t:?}");
    assert_eq!(t.stratum, 8, "{t:?}");
    let verdict = assess(&TimeSync::default(), &Ok(t), 0);
    assert!(verdict.synchronised, "{}", verdict.reason);
}

#[test]
fn a_chronyd_without_a_source_is_not_synchronised() {
    let d = chronyd("server 127.0.0.1 port 9 iburst");
    let t = rt()
        .block_on(query(chronyc(), Some(&d.socket), TIMEOUT))
        .unwrap();
    assert_eq!(t.leap, Leap::NotSynchronised, "{t:?}");
    let c = TimeSync {
        policy: TimeSyncPolicy::Deny,
        ..TimeSync::default()
    };
    let verdict = assess(&c, &Ok(t), 0);
    assert!(!verdict.synchronised);
    assert!(
        verdict.reason.contains("not synchronised"),
        "{}",
        verdict.reason
    );
}

#[test]
fn no_chronyd_and_no_chronyc_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let missing_socket = dir.path().join("none.sock");
    let e = rt
        .block_on(query(chronyc(), Some(&missing_socket), TIMEOUT))
        .unwrap_err();
    assert!(matches!(e, TimeSyncError::Failed { .. }), "{e}");
    let e = rt
        .block_on(query(&dir.path().join("chronyc"), None, TIMEOUT))
        .unwrap_err();
    assert!(matches!(e, TimeSyncError::NotInstalled(_)), "{e}");
}
