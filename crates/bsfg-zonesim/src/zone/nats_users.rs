//! The NATS users of a simulated zone: the system user, one user per
//! daemon and the backup user (`bsfgctl backup`/`restore`), each with a fresh random password. Their bcrypt hashes go to the
//! zone library (which renders them, with each user's permissions, into
//! nats-server's configuration); the passwords are written where each
//! daemon's configuration reads them, mode 0600, as LoadCredential= would.

use super::spec::{NatsSystemUser, NatsUsers, ZoneSpec};
use crate::container::spec::PasswordFiles;
use anyhow::{Context, Result};
use bsfg_testkit::nats::SystemUser;
use std::path::{Path, PathBuf};

pub struct ZoneNatsUsers {
    system: SystemUser,
    controller: SystemUser,
    gate_agent: SystemUser,
    backup: SystemUser,
    pub arg: NatsUsers,
}

impl ZoneNatsUsers {
    /// Fresh users; the zone-wide copies of the passwords go under `dir`.
    pub fn generate(dir: &Path) -> ZoneNatsUsers {
        let (system, controller, gate_agent, backup) = (
            SystemUser::generate(),
            SystemUser::generate(),
            SystemUser::generate(),
            SystemUser::generate(),
        );
        let arg = |u: &SystemUser, name: &str| NatsSystemUser {
            password_file: dir.join(format!("nats-{name}-password")),
            password_hash: u.password_hash.clone(),
        };
        ZoneNatsUsers {
            arg: NatsUsers {
                system: arg(&system, "system"),
                controller: arg(&controller, "controller"),
                gate_agent: arg(&gate_agent, "gate-agent"),
                backup: arg(&backup, "backup"),
            },
            system,
            controller,
            gate_agent,
            backup,
        }
    }

    /// Writes every password where the rendered configurations read it.
    pub fn write(&self, spec: &ZoneSpec) -> Result<()> {
        let mut files: Vec<(&SystemUser, PathBuf)> = vec![
            (&self.system, self.arg.system.password_file.clone()),
            (&self.controller, self.arg.controller.password_file.clone()),
            (&self.gate_agent, self.arg.gate_agent.password_file.clone()),
            (&self.backup, self.arg.backup.password_file.clone()),
        ];
        for h in spec.host_names() {
            let f = spec.password_files(h);
            files.extend(f.system.map(|p| (&self.system, p)));
            files.extend(f.controller.map(|p| (&self.controller, p)));
            files.extend(f.gate_agent.map(|p| (&self.gate_agent, p)));
        }
        write_all(files)
    }

    /// Writes each password one container's units load (`files`: on this
    /// machine, in the tree its credential directories are bound from).
    pub fn write_to(&self, files: &PasswordFiles) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let at = |user, path: &Option<PathBuf>| path.clone().map(|p| (user, p));
        // As the deployment runbook installs the secrets directory: 0711.
        for dir in [
            &files.system,
            &files.controller,
            &files.gate_agent,
            &files.backup,
        ]
        .into_iter()
        .flatten()
        .filter_map(|p| p.parent())
        {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
        }
        write_all(
            [
                at(&self.system, &files.system),
                at(&self.controller, &files.controller),
                at(&self.gate_agent, &files.gate_agent),
                at(&self.backup, &files.backup),
            ]
            .into_iter()
            .flatten()
            .collect(),
        )
    }
}

fn write_all(files: Vec<(&SystemUser, PathBuf)>) -> Result<()> {
    for (user, path) in files {
        user.write_password(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
