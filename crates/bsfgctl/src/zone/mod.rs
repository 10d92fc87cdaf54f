//! The zone: its description ([`file`]), what is observed of it
//! ([`snapshot`], collected by [`collect`] from NATS monitoring, the gate
//! agents and the controllers: the documents of [`bsfg_mgmt`]), and
//! `zone status` ([`status`], pure).

pub mod collect;
pub mod file;
pub mod snapshot;
pub mod status;

pub use file::ZoneFile;

use crate::cli::ZoneArgs;
use crate::exit::{self, Result};
use crate::identity::ConfigFile;

/// Loads the zone file and collects a snapshot (identity optional).
pub async fn observe(a: &ZoneArgs, file: &ConfigFile) -> Result<snapshot::Snapshot> {
    let zone = ZoneFile::load_required(a.zone_file.as_deref(), file)?;
    let tls = if a.client.has_identity(file) {
        Some(a.client.tls(file)?)
    } else {
        None
    };
    Ok(collect::snapshot(&zone, tls.as_ref(), a.timeout).await)
}

pub async fn status_command(a: &ZoneArgs, file: &ConfigFile, json: bool) -> Result<u8> {
    let snap = observe(a, file).await?;
    let view = status::evaluate(&snap, bsfg_core::clock::unix_ms());
    if json {
        crate::commands::print_json(&view);
    } else {
        print!("{}", status::render(&view));
    }
    Ok(if view.hosts.iter().all(|h| !h.reachable) {
        exit::UNREACHABLE
    } else if view.problems.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}
