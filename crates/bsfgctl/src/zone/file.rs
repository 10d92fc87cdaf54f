//! The zone description bsfgctl reads: the JSON that
//! `modules/lib/operator.nix` computes from the same zone description the
//! NixOS modules and the simulator use (on the appliance:
//! `/etc/bsfg/zone.json`). It names every host's addresses, ports, expected
//! mounts and keepalived peers, so bsfgctl knows what *should* be.

use crate::exit::{CliError, Result};
use crate::identity::ConfigFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the appliance installs it.
pub const DEFAULT_ZONE_FILE: &str = "/etc/bsfg/zone.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneFile {
    pub zone: String,
    /// `https://<VIP>:<port>`
    pub endpoint: String,
    pub vip: String,
    /// The segment VRRP runs on (alpha's and beta's subnet), CIDR.
    pub coordination_network: String,
    pub management_network: String,
    pub certificate_policy: CertificatePolicy,
    /// JetStream meta-cluster voters (3).
    pub voters: usize,
    /// Replicas of every stream and bucket (3).
    pub replicas: usize,
    /// Class and consumer of the commissioning round trip, if the zone declares them.
    #[serde(default)]
    pub commissioning: Option<Commissioning>,
    pub hosts: BTreeMap<String, HostEntry>,
    /// Every certificate of the zone and where it is installed (`bsfgctl pki`).
    #[serde(default)]
    pub pki: Option<bsfg_pki::Plan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificatePolicy {
    /// humantime, e.g. `30d`
    pub min_validity: String,
    pub policy: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commissioning {
    pub class: String,
    pub consumer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    /// alpha | beta | gamma
    pub role: String,
    pub address: String,
    pub management_address: String,
    /// NATS monitoring, `host:port`.
    pub nats_monitor: String,
    /// Gate agent management, `host:port` (service hosts).
    pub agent: Option<String>,
    /// Controller management, `host:port` (service hosts).
    pub controller_management: Option<String>,
    /// Node exporter, `host:port`, when the appliance runs one.
    #[serde(default)]
    pub node_exporter: Option<String>,
    pub mounts: Vec<MountExpectation>,
    /// Paths that must *not* exist as mounts here (gamma: `/artifacts`).
    #[serde(default)]
    pub absent_mounts: Vec<String>,
    pub keepalived: Option<KeepalivedExpectation>,
    /// The disks the installer may partition (hosts.<name>.disks), empty
    /// when the host is partitioned by hand.
    #[serde(default)]
    pub install_disks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountExpectation {
    pub path: String,
    /// What it is for (`jetstream`, `artifacts`, `opt`).
    pub purpose: String,
    /// A mount point is required (the appliance); false: a directory suffices (the simulator).
    pub mount_point: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeepalivedExpectation {
    pub interface: String,
    pub unicast_src_ip: String,
    pub unicast_peers: Vec<String>,
}

impl ZoneFile {
    pub fn parse(text: &str) -> std::result::Result<ZoneFile, String> {
        let z: ZoneFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        z.check()?;
        Ok(z)
    }

    fn check(&self) -> std::result::Result<(), String> {
        for role in ["alpha", "beta", "gamma"] {
            let n = self.hosts.values().filter(|h| h.role == role).count();
            if n != 1 {
                return Err(format!(
                    "expected exactly one host with role {role}, found {n}"
                ));
            }
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<ZoneFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("zone file {}: {e}", path.display())))?;
        ZoneFile::parse(&text)
            .map_err(|e| CliError::Usage(format!("zone file {}: {e}", path.display())))
    }

    /// `--zone-file`, else the config file's `zone_file`, else
    /// `/etc/bsfg/zone.json` if it exists; `None` when none is given or found.
    pub fn load_optional(flag: Option<&Path>, file: &ConfigFile) -> Result<Option<ZoneFile>> {
        let path: Option<PathBuf> = flag
            .map(Path::to_owned)
            .or_else(|| file.zone_file.clone())
            .or_else(|| Some(PathBuf::from(DEFAULT_ZONE_FILE)).filter(|p| p.is_file()));
        path.map(|p| ZoneFile::load(&p)).transpose()
    }

    /// Like [`load_optional`](Self::load_optional) but required.
    pub fn load_required(flag: Option<&Path>, file: &ConfigFile) -> Result<ZoneFile> {
        Self::load_optional(flag, file)?.ok_or_else(|| {
            CliError::Usage(format!(
                "no zone file: pass --zone-file (or BSFG_CLI_ZONE_FILE, `zone_file` in the config file); the appliance installs {DEFAULT_ZONE_FILE}"
            ))
        })
    }

    /// Host names in role order (alpha, beta, gamma).
    pub fn host_names(&self) -> Vec<String> {
        let mut v: Vec<(&String, &HostEntry)> = self.hosts.iter().collect();
        v.sort_by_key(|(_, h)| match h.role.as_str() {
            "alpha" => 0,
            "beta" => 1,
            _ => 2,
        });
        v.into_iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn by_role(&self, role: &str) -> Option<(&String, &HostEntry)> {
        self.hosts.iter().find(|(_, h)| h.role == role)
    }

    pub fn service_hosts(&self) -> Vec<String> {
        self.host_names()
            .into_iter()
            .filter(|n| self.hosts[n].role != "gamma")
            .collect()
    }

    pub fn min_validity(&self) -> std::time::Duration {
        humantime::parse_duration(&self.certificate_policy.min_validity)
            .unwrap_or(std::time::Duration::from_secs(30 * 86_400))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The example zone (hosts/zone.nix) as modules/lib/operator.nix renders it for NixOS.
    pub(crate) const EXAMPLE: &str = include_str!("../../tests/data/zone-example.json");

    #[test]
    fn the_example_zone_file_parses_and_orders_hosts_by_role() {
        let z = ZoneFile::parse(EXAMPLE).unwrap();
        assert_eq!(z.zone, "plant-a");
        assert_eq!(z.host_names(), vec!["alpha", "beta", "gamma"]);
        assert_eq!(z.service_hosts(), vec!["alpha", "beta"]);
        assert_eq!(z.min_validity().as_secs(), 30 * 86_400);
        assert!(z.hosts["gamma"].agent.is_none());
        assert_eq!(
            z.hosts["alpha"].keepalived.as_ref().unwrap().unicast_peers,
            vec!["10.20.0.12"]
        );
    }

    #[test]
    fn a_zone_file_without_exactly_one_host_per_role_is_refused() {
        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        v["hosts"]["beta"]["role"] = "alpha".into();
        let err = ZoneFile::parse(&v.to_string()).unwrap_err();
        assert!(err.contains("role alpha"), "{err}");
    }
}
