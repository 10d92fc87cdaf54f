//! The certificate plan of a zone, as `modules/lib/pki.nix` computes it
//! from the zone description (in `zone.json` under `pki`; in the
//! simulator's zone under `pki` with the simulator's paths).

use crate::authority::{LeafRequest, Usage};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub zone: String,
    pub ca: CaPlan,
    pub certificates: Vec<Certificate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaPlan {
    /// The CN of a CA that `bsfgctl pki init` creates.
    pub common_name: String,
    /// Where every host (gamma too: NATS routes) finds the CA.
    pub installs: Vec<CaInstall>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaInstall {
    pub host: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// Unique in the plan: `controller`, `nats-route-<host>`, `client-<identity>`,
    /// `probe` (gamma's service probe).
    pub name: String,
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub usage: Usage,
    /// Where it goes on which host; empty for client identities (their
    /// owners, not the zone's hosts, hold them).
    pub installs: Vec<Install>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Install {
    pub host: String,
    pub certificate: String,
    pub private_key: String,
    pub ca: String,
}

impl Certificate {
    pub fn request(&self) -> LeafRequest {
        LeafRequest {
            common_name: self.common_name.clone(),
            dns_names: self.dns_names.clone(),
            ip_addresses: self.ip_addresses.clone(),
            usage: self.usage,
        }
    }
}

impl Plan {
    pub fn certificate(&self, name: &str) -> Option<&Certificate> {
        self.certificates.iter().find(|c| c.name == name)
    }

    /// Every host that receives a file.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self.ca.installs.iter().map(|i| i.host.clone()).collect();
        hosts.extend(
            self.certificates
                .iter()
                .flat_map(|c| c.installs.iter().map(|i| i.host.clone())),
        );
        hosts.sort();
        hosts.dedup();
        hosts
    }
}
