//! The systemd mode (`--init systemd`): each host is a container booting
//! systemd 252 (Debian bookworm, `systemd-nspawn`) in that host's network
//! namespace, running the appliance's own units, rendered by
//! `modules/lib/container.nix`.
//!
//! | module | what |
//! |---|---|
//! | [`root`] | the Debian root, made once with debootstrap and cached by recipe |
//! | [`spec`] | what the zone library puts into each host's container |
//! | [`machine`] | one container: boot, power off, kill, commands inside, journal |

pub mod machine;
pub mod root;
pub mod spec;

use serde::{Deserialize, Serialize};

/// What runs a simulated host's daemons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// The simulator starts every daemon itself (fast; the default).
    #[default]
    Process,
    /// Each host boots systemd in a container and runs the appliance's units.
    Systemd,
}

impl Init {
    pub fn name(self) -> &'static str {
        match self {
            Init::Process => "process",
            Init::Systemd => "systemd",
        }
    }
}
