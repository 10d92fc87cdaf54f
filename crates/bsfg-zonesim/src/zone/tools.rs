//! The programs a zone runs, found the way the tests find them
//! ([`bsfg_testkit::bins`]).

use anyhow::Result;
use bsfg_testkit::bins;
use std::path::{Path, PathBuf};

/// The programs a zone runs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub nats_server: PathBuf,
    pub keepalived: PathBuf,
    pub controller: PathBuf,
    pub gate_agent: PathBuf,
}

impl Tools {
    /// `bin_dir` (`--bin-dir`): where bsfg-controller and bsfg-gate-agent
    /// are; by default `$BSFG_BIN_DIR`, else next to this executable.
    pub fn find(bin_dir: Option<&Path>) -> Result<Tools> {
        // Used by the simulator itself rather than started as a zone's daemon.
        for (tool, package) in [
            ("ip", "iproute2"),
            ("nft", "nftables"),
            ("nix-instantiate", "nix-bin"),
        ] {
            bins::find_system_program(tool, package)?;
        }
        Ok(Tools {
            nats_server: bins::find_nats_server()?,
            keepalived: bins::find_system_program("keepalived", "keepalived")?,
            controller: bins::find_workspace_binary("bsfg-controller", bin_dir)?,
            gate_agent: bins::find_workspace_binary("bsfg-gate-agent", bin_dir)?,
        })
    }
}
