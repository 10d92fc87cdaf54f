//! Keepalived integration, both directions:
//!
//! - **In**: VRRP transitions. Keepalived writes one line per transition to
//!   its `notify_fifo` (`INSTANCE "bsfg_plant-a" MASTER 100`), in order. The
//!   agent creates the FIFO (mode 0600) if it is missing, holds it open for
//!   reading and writing (so it never sees end-of-file while keepalived
//!   restarts), and reopens it when keepalived replaced it (it recreates the
//!   FIFO on reload). The `notify` subcommand writes the same line into the
//!   FIFO from a classic notify script. The FIFO is the only control input:
//!   no network endpoint accepts notifications. Lines naming another VRRP
//!   instance are logged and ignored; any line is only a hint, the daemon
//!   re-reads the truth after it.
//! - **Out**: demotion. The agent writes a non-zero value into keepalived's
//!   `track_file`, which is configured with weight 0, so keepalived puts the
//!   VRRP instance into FAULT and releases the VIP with a priority-0 advert.
//!   (With `nopreempt`, merely lowering the priority would not move the VIP.)
//!   Writing 0 lets it bid again; failback is still never automatic.

use bsfg_mgmt::VrrpState;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// One notification line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `INSTANCE` or `GROUP`.
    pub kind: String,
    pub name: String,
    /// `None` for states the agent does not act on (`DELETED`, ...): still a
    /// reason to re-evaluate.
    pub state: Option<VrrpState>,
    pub raw_state: String,
    pub priority: Option<u32>,
}

impl Notification {
    /// True for the lines that report the VRRP instance's own state.
    pub fn is_instance(&self) -> bool {
        self.kind == "INSTANCE"
    }

    /// The line keepalived would write (`INSTANCE "VI_1" MASTER 100`).
    pub fn to_line(&self) -> String {
        match self.priority {
            Some(p) => format!("{} \"{}\" {} {p}", self.kind, self.name, self.raw_state),
            None => format!("{} \"{}\" {}", self.kind, self.name, self.raw_state),
        }
    }
}

/// Parses a notify line (`INSTANCE "VI_1" MASTER 100`, `GROUP "G" BACKUP 0`),
/// or the arguments keepalived passes a notify script (same words, the name
/// unquoted).
pub fn parse_line(line: &str) -> Result<Notification, String> {
    let line = line.trim();
    let (kind, rest) = line
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("not a keepalived notification: {line:?}"))?;
    let kind = kind.to_ascii_uppercase();
    if kind != "INSTANCE" && kind != "GROUP" {
        return Err(format!("not a VRRP notification (type {kind:?}): {line:?}"));
    }
    let rest = rest.trim_start();
    let (name, rest) = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted
            .find('"')
            .ok_or_else(|| format!("unterminated name in {line:?}"))?;
        (&quoted[..end], &quoted[end + 1..])
    } else {
        rest.split_once(char::is_whitespace)
            .ok_or_else(|| format!("no state in {line:?}"))?
    };
    let mut words = rest.split_whitespace();
    let raw_state = words
        .next()
        .ok_or_else(|| format!("no state in {line:?}"))?
        .to_ascii_uppercase();
    let priority = match words.next() {
        None => None,
        Some(p) => Some(
            p.parse::<u32>()
                .map_err(|_| format!("priority {p:?} is not a number in {line:?}"))?,
        ),
    };
    if name.is_empty() {
        return Err(format!("empty instance name in {line:?}"));
    }
    // A quote or a control character would not survive `to_line` (the agent
    // logs and reports the line), and keepalived never writes one.
    if name.contains('"') || name.chars().any(char::is_control) {
        return Err(format!(
            "instance name {name:?} has a quote or a control character"
        ));
    }
    if !raw_state
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "state {raw_state:?} is not a keepalived state word"
        ));
    }
    let state = match raw_state.as_str() {
        "MASTER" => Some(VrrpState::Master),
        "BACKUP" => Some(VrrpState::Backup),
        "FAULT" => Some(VrrpState::Fault),
        "STOP" => Some(VrrpState::Stop),
        _ => None,
    };
    Ok(Notification {
        kind,
        name: name.to_owned(),
        state,
        raw_state,
        priority,
    })
}

// ------------------------------------------------------------------ FIFO

/// Creates the FIFO (mode 0600) if nothing is at `path`; refuses anything else there.
pub fn ensure_fifo(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_fifo() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a FIFO", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            rustix::fs::mkfifoat(
                rustix::fs::CWD,
                path,
                rustix::fs::Mode::from_raw_mode(0o600),
            )
            .map_err(io::Error::from)?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Writes one notification line into the daemon's FIFO. Refuses anything
/// that is not a FIFO at `path`, and fails at once (ENXIO) when no daemon
/// holds it open for reading instead of blocking. One write of less than
/// PIPE_BUF bytes: never interleaved with keepalived's own lines.
pub fn write_fifo(path: &Path, line: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_fifo() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a FIFO (is keepalived.notify_fifo right?)",
        ));
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) {
                io::Error::new(io::ErrorKind::NotConnected, "no gate agent is reading it")
            } else {
                e
            }
        })?;
    f.write_all(format!("{line}\n").as_bytes())
}

/// Reads notifications from the FIFO forever, sending each to `tx`.
/// Survives keepalived restarts and FIFO replacement; ends when `tx` closes.
pub async fn read_fifo(path: PathBuf, tx: mpsc::Sender<Notification>) {
    let mut warned = false;
    loop {
        if tx.is_closed() {
            return;
        }
        if let Err(e) = ensure_fifo(&path) {
            if !warned {
                tracing::error!(path = %path.display(), error = %e, "notify FIFO unusable; retrying");
                warned = true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Read-write: the FIFO then always has a writer (us), so a keepalived
        // restart does not produce end-of-file, and opening never blocks.
        let receiver = match tokio::net::unix::pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(&path)
        {
            Ok(r) => r,
            Err(e) => {
                if !warned {
                    tracing::error!(path = %path.display(), error = %e, "cannot open the notify FIFO; retrying");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        warned = false;
        let inode = std::fs::metadata(&path).map(|m| (m.dev(), m.ino())).ok();
        tracing::info!(path = %path.display(), "reading keepalived notifications");
        let mut lines = BufReader::new(receiver).lines();
        let mut replaced = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) if line.trim().is_empty() => {}
                    Ok(Some(line)) => match parse_line(&line) {
                        Ok(n) => {
                            if tx.send(n).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "ignoring a notify FIFO line"),
                    },
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "notify FIFO read failed; reopening");
                        break;
                    }
                },
                _ = replaced.tick() => {
                    // keepalived removes and recreates the FIFO on reload.
                    let now = std::fs::metadata(&path).map(|m| (m.dev(), m.ino())).ok();
                    if now != inode {
                        tracing::info!(path = %path.display(), "notify FIFO was replaced; reopening");
                        break;
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------ track file

/// The track file's value: `None` if missing or unreadable, else the number in it.
pub fn read_track(path: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Writes `value` atomically (temporary file in the same directory + rename),
/// so keepalived never reads a half-written number.
pub fn write_track(path: &Path, value: u8) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".bsfg-track-")
        .tempfile_in(dir)?;
    use std::io::Write;
    writeln!(tmp, "{value}")?;
    tmp.as_file().sync_all()?;
    // keepalived reads it as root; 0644 so operators can too.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fifo_lines_and_script_arguments() {
        let n = parse_line("INSTANCE \"VI_1\" MASTER 100").unwrap();
        assert_eq!(n.kind, "INSTANCE");
        assert_eq!(n.name, "VI_1");
        assert_eq!(n.state, Some(VrrpState::Master));
        assert_eq!(n.priority, Some(100));
        assert_eq!(n.to_line(), "INSTANCE \"VI_1\" MASTER 100");

        let n = parse_line("GROUP \"bsfg group\" BACKUP 0\n").unwrap();
        assert_eq!(n.name, "bsfg group");
        assert!(!n.is_instance());

        let n = parse_line("INSTANCE bsfg_plant-a FAULT").unwrap();
        assert_eq!(n.state, Some(VrrpState::Fault));
        assert_eq!(n.priority, None);

        let n = parse_line("INSTANCE \"VI_1\" DELETED 0").unwrap();
        assert_eq!(n.state, None);
        assert_eq!(n.raw_state, "DELETED");
    }

    #[test]
    fn rejects_other_lines() {
        assert!(parse_line("VS [192.168.201.15]:tcp:80 UP").is_err());
        assert!(parse_line("INSTANCE").is_err());
        assert!(parse_line("INSTANCE \"VI_1").is_err());
        assert!(parse_line("INSTANCE \"VI_1\" MASTER lots").is_err());
    }

    #[test]
    fn names_and_states_that_would_not_round_trip_are_refused() {
        // Found by the keepalived fuzz target: each parsed, but its to_line did not read back.
        for line in [
            "INSTANCE DEL2\"\"VI_ETED\" 0",
            "INSTANCE *YK[1\" DELETED 0",
            "INSTANCE \"VI\u{8}1\" MASTER 100",
            "INSTANCE \"VI_1\" MA\0STER 100",
            "INSTANCE \"VI_1\" \"MASTER\" 100",
        ] {
            assert!(parse_line(line).is_err(), "{line:?} accepted");
        }
        let n = parse_line("INSTANCE \"bsfg zone\" MASTER 100").unwrap();
        assert_eq!(parse_line(&n.to_line()), Ok(n));
    }

    #[test]
    fn track_file_round_trip_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vrrp-track");
        assert_eq!(read_track(&path), None);
        write_track(&path, 1).unwrap();
        assert_eq!(read_track(&path), Some(1));
        write_track(&path, 0).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n");
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn fifo_is_created_private_and_survives_writers_coming_and_going() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.fifo");
        let (tx, mut rx) = mpsc::channel(16);
        let reader = tokio::spawn(read_fifo(path.clone(), tx));
        for _ in 0..200 {
            if path.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_fifo());
        assert_eq!(meta.mode() & 0o777, 0o600);
        // Two writers one after the other, as keepalived restarting would.
        for state in ["BACKUP", "MASTER"] {
            let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            use std::io::Write;
            writeln!(w, "INSTANCE \"VI_1\" {state} 100").unwrap();
            drop(w);
            let n = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(n.raw_state, state);
        }
        // Replaced FIFO (keepalived reload): the reader follows it.
        std::fs::remove_file(&path).unwrap();
        ensure_fifo(&path).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            // Non-blocking open: fails with ENXIO until the reader has reopened.
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(&path);
            if let Ok(mut w) = opened {
                use std::io::Write;
                writeln!(w, "INSTANCE \"VI_1\" FAULT 100").unwrap();
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "reader never reopened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n.state, Some(VrrpState::Fault));
        reader.abort();
    }

    use std::os::unix::fs::OpenOptionsExt;
}
