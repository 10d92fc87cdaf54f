//! Writes what the zone library names for every host (modules/lib/README.md,
//! "Per host the simulator must create"): the state directories, the
//! controller and gate-agent TOML, the nats-server JSON and keepalived.conf,
//! each the library's rendered text byte for byte: the files the appliance
//! deploys, with the simulator's paths.

use super::spec::HostSpec;
use anyhow::{Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where the simulator keeps one host's own files besides the library's.
#[derive(Debug, Clone)]
pub struct HostDirs {
    pub root: PathBuf,
    pub logs: PathBuf,
    pub nats_config: PathBuf,
    pub keepalived_dir: PathBuf,
    pub keepalived_config: PathBuf,
    pub credentials: PathBuf,
    /// gamma's blackbox exporter configuration (modules/lib/probe.nix).
    pub probe_config: PathBuf,
}

impl HostDirs {
    pub fn new(run_dir: &Path, host: &str) -> HostDirs {
        let root = run_dir.join(host);
        HostDirs {
            logs: root.join("logs"),
            nats_config: root.join("nats.json"),
            keepalived_dir: root.join("keepalived"),
            keepalived_config: root.join("keepalived").join("keepalived.conf"),
            credentials: root.join("credentials"),
            probe_config: root.join("blackbox.yml"),
            root,
        }
    }

    pub fn log(&self, daemon: &str) -> PathBuf {
        self.logs.join(format!("{daemon}.log"))
    }
}

/// `mkdir -p` with mode 0755: keepalived's script user must traverse the
/// run directory to read the agent's configuration.
pub fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(dir) = path.parent() {
        mkdir(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Creates the host's directories and configuration files.
pub fn write_host(host: &HostSpec, dirs: &HostDirs) -> Result<()> {
    for d in [
        &dirs.root,
        &dirs.logs,
        &host.paths.jetstream,
        &host.paths.opt,
        &host.paths.agent_runtime,
    ] {
        mkdir(d)?;
    }
    if host.runs.artifacts {
        mkdir(&host.paths.artifacts)?;
    }
    write(&dirs.nats_config, &host.nats.config_text, 0o644)?;
    if let Some(c) = &host.controller {
        write(&host.paths.controller_config, &c.config_text, 0o644)?;
    }
    if let Some(a) = &host.gate_agent {
        write(&host.paths.agent_config, &a.config_text, 0o644)?;
    }
    if let Some(k) = &host.keepalived {
        mkdir(&dirs.keepalived_dir)?;
        write(&dirs.keepalived_config, &k.config_text, 0o644)?;
    }
    if let Some(p) = &host.probe {
        write(&dirs.probe_config, &p.config_text, 0o644)?;
    }
    Ok(())
}
