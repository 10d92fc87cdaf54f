//! `bsfgctl install`: installing a host from the ISO. Which disks the
//! role's layout may touch is [`disks`] (pure: the resolved declared paths
//! and lsblk's JSON in, the selection or every reason to refuse out);
//! [`command`] reads the zone file, resolves `/dev/disk/by-id/…` links and
//! runs lsblk.

pub mod disks;

use crate::exit::{self, CliError, Result};
use crate::identity::ConfigFile;
use crate::zone::file::ZoneFile;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum InstallCommand {
    /// Check that the host's declared disks (hosts.<name>.disks) are present, whole, writable and unused; exit 1 with every reason if not.
    CheckDisks(CheckDisksArgs),
}

#[derive(Debug, Args)]
pub struct CheckDisksArgs {
    /// The zone description (JSON from modules/lib/operator.nix).
    #[arg(long, env = "BSFG_CLI_ZONE_FILE", value_name = "FILE")]
    pub zone_file: Option<PathBuf>,
    /// The host being installed.
    #[arg(long, value_name = "HOST")]
    pub host: String,
    /// Read this `lsblk --json --bytes --output NAME,PATH,TYPE,SIZE,RM,RO,MOUNTPOINTS` output instead of running lsblk.
    #[arg(long, value_name = "FILE")]
    pub lsblk_json: Option<PathBuf>,
}

const LSBLK_ARGS: &[&str] = &[
    "--json",
    "--bytes",
    "--output",
    "NAME,PATH,TYPE,SIZE,RM,RO,MOUNTPOINTS",
];

pub fn command(c: &InstallCommand, file: &ConfigFile) -> Result<u8> {
    match c {
        InstallCommand::CheckDisks(a) => check_disks(a, file),
    }
}

fn check_disks(a: &CheckDisksArgs, file: &ConfigFile) -> Result<u8> {
    let zone = ZoneFile::load_required(a.zone_file.as_deref(), file)?;
    let host = zone.hosts.get(&a.host).ok_or_else(|| {
        CliError::Usage(format!(
            "no host {:?} in the zone file (hosts: {})",
            a.host,
            zone.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let json = match &a.lsblk_json {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| CliError::Usage(format!("{}: {e}", p.display())))?,
        None => {
            let out = std::process::Command::new("lsblk")
                .args(LSBLK_ARGS)
                .output()
                .map_err(|e| CliError::Usage(format!("running lsblk: {e}")))?;
            if !out.status.success() {
                return Err(CliError::Usage(format!(
                    "lsblk exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let present = disks::parse_lsblk(&json).map_err(|e| CliError::Usage(e.to_string()))?;
    let declared: Vec<disks::Declared> = host
        .install_disks
        .iter()
        .map(|p| disks::Declared {
            path: p.clone(),
            resolved: std::fs::canonicalize(p)
                .ok()
                .map(|r| r.display().to_string()),
        })
        .collect();
    // The layout partitions exactly the declared disks (modules/lib/disks.nix).
    match disks::select(&host.install_disks, &declared, &present) {
        Ok(selected) => {
            for s in &selected {
                println!(
                    "ok     {:<40} {} ({} GB)",
                    s.declared,
                    s.device,
                    s.size / 1_000_000_000
                );
            }
            println!(
                "{}: the layout may partition these {} disks",
                a.host,
                selected.len()
            );
            Ok(exit::OK)
        }
        Err(refusals) => {
            for r in &refusals {
                println!("refuse {r}");
            }
            println!("{}: nothing written", a.host);
            Ok(exit::FAILED)
        }
    }
}
