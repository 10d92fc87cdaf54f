//! The NATS users of a simulated zone: the system user, one user per
//! daemon and the backup user (`bsfgctl backup`/`restore`), each with a fresh random password. Their bcrypt hashes go to the
//! zone library (which renders them, with each user's permissions, into
//! nats-server's configuration); the passwords are written where each
//! daemon's configuration reads them, mode 0600, as LoadCredential= would.

use super::spec::{NatsSystemUser, NatsUsers, ZoneSpec};
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
        for (user, path) in files {
            user.write_password(&path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}
