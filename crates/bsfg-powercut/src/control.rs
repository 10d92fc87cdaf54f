//! The control socket of a running `bsfg-powercut serve`: one JSON request
//! per line, one JSON answer per line, over a Unix socket only root can open.
//!
//! ```text
//! {"command":"status"}
//! {"command":"cut","volumes":["alpha-jetstream","beta-jetstream"]}   empty: all
//! {"command":"boot","volumes":[]}
//! ```

use crate::domain::{CutReport, PowerDomain, VolumeStatus};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    Status,
    Cut {
        #[serde(default)]
        volumes: Vec<String>,
    },
    Boot {
        #[serde(default)]
        volumes: Vec<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    Status(Vec<VolumeStatus>),
    Cut(CutReport),
    Booted(Vec<String>),
    Error(String),
}

fn handle(domain: &PowerDomain, req: Request) -> Answer {
    let r = match req {
        Request::Status => Ok(Answer::Status(domain.status())),
        Request::Cut { volumes } => domain.cut(&volumes).map(Answer::Cut),
        Request::Boot { volumes } => domain.boot(&volumes).map(Answer::Booted),
    };
    r.unwrap_or_else(|e| Answer::Error(format!("{e:#}")))
}

/// Listens on `socket` (mode 0600) and answers requests, one thread per connection.
pub fn serve(domain: Arc<PowerDomain>, socket: &Path) -> Result<std::thread::JoinHandle<()>> {
    if socket.exists() {
        std::fs::remove_file(socket)
            .with_context(|| format!("removing the old socket {}", socket.display()))?;
    }
    let listener =
        UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(std::thread::Builder::new()
        .name("powercut-control".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let domain = domain.clone();
                let _ = std::thread::Builder::new()
                    .name("powercut-conn".into())
                    .spawn(move || answer(&domain, conn));
            }
        })?)
}

fn answer(domain: &PowerDomain, conn: UnixStream) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    for line in BufReader::new(conn).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(req) => handle(domain, req),
            Err(e) => Answer::Error(format!("bad request {line:?}: {e}")),
        };
        let mut text = serde_json::to_string(&answer).expect("answers serialise");
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

/// A client of the control socket (blocking; a request takes milliseconds,
/// a boot the time to remount).
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn request(&self, req: &Request) -> Result<Answer> {
        let mut conn = UnixStream::connect(&self.socket).with_context(|| {
            format!(
                "connecting to the power-cut control socket {} (is `bsfg-powercut serve` running?)",
                self.socket.display()
            )
        })?;
        conn.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut line = serde_json::to_string(req)?;
        line.push('\n');
        conn.write_all(line.as_bytes())?;
        let mut reply = String::new();
        BufReader::new(conn).read_line(&mut reply)?;
        if reply.is_empty() {
            bail!("the control socket closed without an answer");
        }
        match serde_json::from_str(&reply)? {
            Answer::Error(e) => bail!("{e}"),
            a => Ok(a),
        }
    }

    pub fn status(&self) -> Result<Vec<VolumeStatus>> {
        match self.request(&Request::Status)? {
            Answer::Status(s) => Ok(s),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// Cuts the power of the named volumes (all when empty) at one instant.
    pub fn cut(&self, volumes: &[String]) -> Result<CutReport> {
        match self.request(&Request::Cut {
            volumes: volumes.to_vec(),
        })? {
            Answer::Cut(r) => Ok(r),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// Restores power: remounts the named volumes (all when empty) with their durable state.
    pub fn boot(&self, volumes: &[String]) -> Result<Vec<String>> {
        match self.request(&Request::Boot {
            volumes: volumes.to_vec(),
        })? {
            Answer::Booted(b) => Ok(b),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// Waits until the server answers (it binds the socket only after every volume is mounted).
    pub fn wait_ready(&self, timeout: Duration) -> Result<Vec<VolumeStatus>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.status() {
                Ok(s) => return Ok(s),
                Err(e) if std::time::Instant::now() > deadline => {
                    return Err(e.context(format!("bsfg-powercut not ready after {timeout:?}")));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}
