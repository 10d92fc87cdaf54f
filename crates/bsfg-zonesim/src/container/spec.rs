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
    /// Unit file name -> whether a `nixos-rebuild switch` that changes it
    /// restarts it (`restartIfChanged`).
    pub restart_if_changed: BTreeMap<String, bool>,
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
#[serde(rename_all = "camelCase")]
pub struct ContainerSpec {
    /// By host name.
    pub hosts: BTreeMap<String, HostContainer>,
    /// The zone's certificate plan with the appliance's install paths.
    pub pki: bsfg_pki::Plan,
    /// Where the plan is issued: `<staging>/<host>/<path>`, the tree the
    /// containers' credential directories are bound from.
    pub staging: PathBuf,
    /// Where each container has the programs bound in (`controller`,
    /// `gateAgent`, `natsServer`, `bsfgctl`).
    pub container_binaries: BTreeMap<String, PathBuf>,
    /// Debian's keepalived in the containers' root.
    pub keepalived_program: PathBuf,
}

/// The Debian program gamma's probe unit runs (bound into its container).
pub const BLACKBOX_EXPORTER: (&str, &str) = (
    "prometheus-blackbox-exporter",
    "prometheus-blackbox-exporter",
);

/// The Debian program every host's node exporter runs (the process mode
/// starts it; every container's prometheus-node-exporter.service binds it).
pub const NODE_EXPORTER: (&str, &str) = ("prometheus-node-exporter", "prometheus-node-exporter");

pub fn evaluate(
    repo: &Path,
    zone_file: &Path,
    run_dir: &Path,
    bins: &Binaries,
    bsfgctl: &Path,
    users: Option<&NatsUsers>,
) -> Result<ContainerSpec> {
    let users = users_arguments(users);
    // Found here, each required only if a container binds it (checked below).
    let found = |(name, package): (&str, &str), fallback: &str| {
        let p = bsfg_testkit::bins::find_system_program(name, package);
        let path = p
            .as_ref()
            .map_or_else(|_| PathBuf::from(fallback), Clone::clone);
        (p, path)
    };
    let (blackbox, blackbox_path) =
        found(BLACKBOX_EXPORTER, "/usr/bin/prometheus-blackbox-exporter");
    let (node, node_path) = found(NODE_EXPORTER, "/usr/bin/prometheus-node-exporter");
    let expr = format!(
        "let c = import {} {{ zoneFile = {}; runDir = {};{users} \
         hostBinaries = {{ controller = {}; gateAgent = {}; natsServer = {}; bsfgctl = {}; blackboxExporter = {}; nodeExporter = {}; }}; }}; \
         in {{ inherit (c) hosts pki staging containerBinaries keepalivedProgram; }}",
        nix_string(&repo.join("modules/lib/container.nix").display().to_string()),
        nix_string(&zone_file.display().to_string()),
        nix_string(&run_dir.display().to_string()),
        nix_string(&bins.controller.display().to_string()),
        nix_string(&bins.gate_agent.display().to_string()),
        nix_string(&bins.nats_server.display().to_string()),
        nix_string(&bsfgctl.display().to_string()),
        nix_string(&blackbox_path.display().to_string()),
        nix_string(&node_path.display().to_string()),
    );
    let json = crate::zone::spec::eval_json(
        &expr,
        &format!("modules/lib/container.nix rejected {}", zone_file.display()),
    )?;
    let spec: ContainerSpec = serde_json::from_slice(&json)
        .context("modules/lib/container.nix's output does not have the documented shape")?;
    for (found, path, why) in [
        (
            blackbox,
            &blackbox_path,
            "the zone has a service probe, which gamma's container runs",
        ),
        (
            node,
            &node_path,
            "every host's container runs the node exporter",
        ),
    ] {
        if let Err(e) = found {
            let needs = spec
                .hosts
                .values()
                .any(|h| h.binds.iter().any(|b| &b.source == path));
            if needs {
                return Err(anyhow::anyhow!("{e}").context(why));
            }
        }
    }
    Ok(spec)
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

/// What a `nixos-rebuild switch` from one generation of a host's container
/// to the next does to its units (switch-to-configuration's rules for
/// units whose file changed): `restart` those with `restartIfChanged`
/// (stopped before the new files are in place, started after the
/// reload), `left` the others (the next start runs the new file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Switch {
    pub restart: Vec<String>,
    pub left: Vec<String>,
}

/// Where the units' files live in every container.
pub const UNIT_DIR: &str = "/etc/systemd/system";

impl HostContainer {
    /// Pure: the next generation, every file's text through `edit`.
    pub fn next_generation(&self, edit: &dyn Fn(&str) -> String) -> HostContainer {
        let mut next = self.clone();
        for f in next.files.values_mut() {
            f.text = edit(&f.text);
        }
        next
    }

    /// Pure: the files of `next` that differ from this generation's (new
    /// ones included), and no links (a switch of the same zone keeps them).
    pub fn changed_in(&self, next: &HostContainer) -> HostContainer {
        let mut changed = next.clone();
        changed
            .files
            .retain(|p, f| self.files.get(p).is_none_or(|old| old.text != f.text));
        changed.links.clear();
        changed
    }

    /// Pure: what switching to `next` does to the units whose file
    /// changes, in the order of `units` (boot order), then by name.
    pub fn switch_to(&self, next: &HostContainer) -> Result<Switch> {
        let changed = self.changed_in(next);
        let mut names: Vec<String> = changed
            .files
            .keys()
            .filter(|p| p.parent() == Some(Path::new(UNIT_DIR)))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        let rank = |u: &String| self.units.iter().position(|x| x == u).unwrap_or(usize::MAX);
        names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
        let mut s = Switch::default();
        for u in names {
            let restart = *self.restart_if_changed.get(&u).with_context(|| {
                format!("modules/lib/container.nix gives no restartIfChanged for {u}")
            })?;
            if restart {
                s.restart.push(u);
            } else {
                s.left.push(u);
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostContainer {
        let unit = |exec: &str| File {
            text: format!("[Service]\nExecStart={exec}\n"),
            mode: "0644".into(),
        };
        HostContainer {
            files: BTreeMap::from([
                (
                    PathBuf::from("/etc/systemd/system/nats.service"),
                    unit("/usr/local/bin/nats-server"),
                ),
                (
                    PathBuf::from("/etc/systemd/system/bsfg-controller.service"),
                    unit("/usr/local/bin/bsfg-controller"),
                ),
                (
                    PathBuf::from("/etc/systemd/system/keepalived.service"),
                    unit("/usr/sbin/keepalived"),
                ),
                (
                    PathBuf::from("/etc/keepalived/keepalived.conf"),
                    File {
                        text: "script \"/usr/local/bin/bsfg-gate-agent check\"\n".into(),
                        mode: "0644".into(),
                    },
                ),
            ]),
            links: BTreeMap::from([(
                PathBuf::from("/etc/systemd/system/multi-user.target.wants/nats.service"),
                PathBuf::from("../nats.service"),
            )]),
            etc_dirs: vec![],
            binds: vec![],
            password_files: PasswordFiles::default(),
            units: vec![
                "nats.service".into(),
                "bsfg-controller.service".into(),
                "keepalived.service".into(),
            ],
            restart_if_changed: BTreeMap::from([
                ("nats.service".into(), true),
                ("bsfg-controller.service".into(), false),
                ("keepalived.service".into(), true),
            ]),
        }
    }

    #[test]
    fn a_switch_restarts_changed_units_that_restart_if_changed() {
        let old = host();
        let next = old.next_generation(&|t| t.replace("/usr/local/bin/", "/new/"));
        let changed = old.changed_in(&next);
        // keepalived.service itself did not change (Debian's binary).
        assert_eq!(
            changed.files.keys().collect::<Vec<_>>(),
            [
                Path::new("/etc/keepalived/keepalived.conf"),
                Path::new("/etc/systemd/system/bsfg-controller.service"),
                Path::new("/etc/systemd/system/nats.service"),
            ]
        );
        assert!(changed.links.is_empty());
        assert_eq!(
            old.switch_to(&next).unwrap(),
            Switch {
                restart: vec!["nats.service".into()],
                left: vec!["bsfg-controller.service".into()],
            }
        );
        // In boot order, whatever the files' names.
        let all = old.next_generation(&|t| t.replace("/usr/", "/new/"));
        assert_eq!(
            old.switch_to(&all).unwrap().restart,
            ["nats.service", "keepalived.service"]
        );
        assert_eq!(old.switch_to(&old).unwrap(), Switch::default());
    }

    #[test]
    fn a_unit_without_restart_data_is_an_error() {
        let mut old = host();
        old.restart_if_changed.remove("nats.service");
        let next = old.next_generation(&|t| t.replace("nats-server", "nats-server-2"));
        let e = old.switch_to(&next).unwrap_err();
        assert!(format!("{e}").contains("nats.service"), "{e}");
    }
}
