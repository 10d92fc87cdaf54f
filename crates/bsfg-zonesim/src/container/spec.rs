//! What the zone library (`modules/lib/container.nix`) puts into each
//! host's container: files and links under the bound `/etc` directories,
//! state, credential directories and programs bound in, the units to
//! report on; and the certificate plan with the appliance's paths.

use crate::zone::spec::{Binaries, NatsUsers, nix_string, users_arguments};
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostContainer {
    pub files: BTreeMap<PathBuf, File>,
    pub links: BTreeMap<PathBuf, PathBuf>,
    pub etc_dirs: Vec<PathBuf>,
    pub binds: Vec<Bind>,
    pub password_files: PasswordFiles,
    pub units: Vec<String>,
}

/// Where on this machine each NATS password a host's units load lives
/// (inside a bound credential directory); `None`: not on this host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordFiles {
    pub system: Option<PathBuf>,
    pub controller: Option<PathBuf>,
    pub gate_agent: Option<PathBuf>,
    pub backup: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct File {
    pub text: String,
    pub mode: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bind {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// Every host's container, and the credentials they load.
#[derive(Debug, Clone, Deserialize)]
pub struct ContainerSpec {
    /// By host name.
    pub hosts: BTreeMap<String, HostContainer>,
    /// The zone's certificate plan with the appliance's install paths.
    pub pki: bsfg_pki::Plan,
    /// Where the plan is issued: `<staging>/<host>/<path>`, the tree the
    /// containers' credential directories are bound from.
    pub staging: PathBuf,
}

pub fn evaluate(
    repo: &Path,
    zone_file: &Path,
    run_dir: &Path,
    bins: &Binaries,
    bsfgctl: &Path,
    users: Option<&NatsUsers>,
) -> Result<ContainerSpec> {
    let users = users_arguments(users);
    let expr = format!(
        "let c = import {} {{ zoneFile = {}; runDir = {};{users} \
         hostBinaries = {{ controller = {}; gateAgent = {}; natsServer = {}; bsfgctl = {}; }}; }}; \
         in {{ inherit (c) hosts pki staging; }}",
        nix_string(&repo.join("modules/lib/container.nix").display().to_string()),
        nix_string(&zone_file.display().to_string()),
        nix_string(&run_dir.display().to_string()),
        nix_string(&bins.controller.display().to_string()),
        nix_string(&bins.gate_agent.display().to_string()),
        nix_string(&bins.nats_server.display().to_string()),
        nix_string(&bsfgctl.display().to_string()),
    );
    let json = crate::zone::spec::eval_json(
        &expr,
        &format!("modules/lib/container.nix rejected {}", zone_file.display()),
    )?;
    serde_json::from_slice(&json)
        .context("modules/lib/container.nix's output does not have the documented shape")
}

impl HostContainer {
    /// The bound `/etc` directory `path` lies in.
    fn etc_dir_of(&self, path: &Path) -> Result<&Path> {
        self.etc_dirs
            .iter()
            .find(|d| path.starts_with(d))
            .map(PathBuf::as_path)
            .with_context(|| {
                format!(
                    "{} lies in none of the bound /etc directories",
                    path.display()
                )
            })
    }

    /// Writes the files and links under `root` (`<root>/etc/bsfg/...`),
    /// every bound directory created even when empty.
    pub fn write(&self, root: &Path) -> Result<()> {
        let under = |p: &Path| root.join(p.strip_prefix("/").unwrap_or(p));
        for d in &self.etc_dirs {
            std::fs::create_dir_all(under(d))?;
        }
        for (path, f) in &self.files {
            self.etc_dir_of(path)?;
            let dest = under(path);
            std::fs::create_dir_all(dest.parent().context("a file at /")?)?;
            std::fs::write(&dest, &f.text)
                .with_context(|| format!("writing {}", dest.display()))?;
            let mode = u32::from_str_radix(&f.mode, 8)
                .with_context(|| format!("mode {:?} of {}", f.mode, path.display()))?;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))?;
        }
        for (path, target) in &self.links {
            self.etc_dir_of(path)?;
            let dest = under(path);
            std::fs::create_dir_all(dest.parent().context("a link at /")?)?;
            let _ = std::fs::remove_file(&dest);
            std::os::unix::fs::symlink(target, &dest)
                .with_context(|| format!("linking {}", dest.display()))?;
        }
        Ok(())
    }
}
