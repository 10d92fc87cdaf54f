//! The programs a zone runs, and where they are found.

use super::options::default_repo;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The programs a zone runs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub nats_server: PathBuf,
    pub keepalived: PathBuf,
    pub controller: PathBuf,
    pub gate_agent: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Where bsfg-controller and bsfg-gate-agent are: `--bin-dir`, then
/// `$BSFG_BIN_DIR`, then next to this executable (or one level up, for a
/// test binary in `target/<profile>/deps/`).
pub fn bin_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = explicit {
        return Ok(d.to_owned());
    }
    if let Some(d) = std::env::var_os("BSFG_BIN_DIR") {
        return Ok(d.into());
    }
    let exe = std::env::current_exe().context("locating this executable")?;
    let dir = exe.parent().context("executable directory")?;
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        if d.join("bsfg-controller").is_file() && d.join("bsfg-gate-agent").is_file() {
            return Ok(d.to_owned());
        }
    }
    bail!(
        "bsfg-controller and bsfg-gate-agent not found next to {} (build them: \
         cargo build -p bsfg-controller -p bsfg-gate-agent), or set BSFG_BIN_DIR / --bin-dir",
        exe.display()
    )
}

impl Tools {
    pub fn find(bin_dir_opt: Option<&Path>) -> Result<Tools> {
        let dir = bin_dir(bin_dir_opt)?;
        let ours = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if !p.is_file() {
                bail!("{} not found (cargo build -p {name})", p.display());
            }
            Ok(p)
        };
        let nats_server = match std::env::var_os("NATS_SERVER_BIN") {
            Some(p) => PathBuf::from(p),
            None => on_path("nats-server")
                .or_else(|| {
                    let venv = default_repo().join(".venv/bin/nats-server");
                    venv.is_file().then_some(venv)
                })
                .context(
                    "nats-server not found ($NATS_SERVER_BIN, PATH, .venv/bin); \
                     scripts/zone installs it",
                )?,
        };
        for (tool, package) in [
            ("ip", "iproute2"),
            ("nft", "nftables"),
            ("nix-instantiate", "nix-bin"),
        ] {
            on_path(tool).with_context(|| {
                format!("{tool} not found; install the Debian package {package}")
            })?;
        }
        Ok(Tools {
            nats_server,
            keepalived: on_path("keepalived")
                .context("keepalived not found; install the Debian package keepalived")?,
            controller: ours("bsfg-controller")?,
            gate_agent: ours("bsfg-gate-agent")?,
        })
    }
}
