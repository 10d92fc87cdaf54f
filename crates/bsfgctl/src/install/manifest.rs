//! `/etc/bsfg/install.json` on a host's installer image: what the image
//! installs, written by modules/installer.nix from modules/lib/install.nix
//! (the host's zone settings) and the image's store paths.

use serde::Deserialize;

/// Where the installer image puts the manifest.
pub const DEFAULT_PATH: &str = "/etc/bsfg/install.json";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub host: String,
    pub role: String,
    pub zone: String,
    /// The host's `system.build.toplevel`, in the image's store.
    pub system: String,
    /// disko's destroy-format-mount script for the role's layout; null when
    /// the zone description declares no disks for the host.
    pub disko: Option<String>,
    /// Where disko mounts the new system and nixos-install installs it.
    pub mount_point: String,
    /// The declared disks (hosts.<name>.disks), in the layout's order.
    pub disks: Vec<DiskUse>,
    /// Every device disko's script names (`disko.devices.disk.*.device`).
    pub layout: Vec<String>,
    /// Files to place on the host before its first boot.
    pub files: Vec<FileToPlace>,
}

/// One declared disk and what the layout makes of it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiskUse {
    pub device: String,
    #[serde(rename = "use")]
    pub use_: String,
    /// The RAID1 (or single disk) it belongs to: `system`, `jetstream`, `artifacts`.
    pub group: String,
    pub min_bytes: u64,
}

/// A file the host's units load (LoadCredential=) that the image cannot
/// carry: keys and passwords never enter the Nix store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileToPlace {
    pub path: String,
    pub secret: bool,
    /// The zone-description setting naming it (secrets only).
    pub option: Option<String>,
    pub mode: String,
    pub created_by: String,
}

/// The manifest could not be read.
#[derive(Debug, thiserror::Error)]
#[error("install manifest: {0}")]
pub struct ManifestError(#[from] serde_json::Error);

pub fn parse(json: &str) -> Result<Manifest, ManifestError> {
    Ok(serde_json::from_str(json)?)
}
