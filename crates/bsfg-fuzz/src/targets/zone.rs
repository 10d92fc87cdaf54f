//! The zone library's output as its Rust consumers read it: `zone.json`
//! (bsfgctl, `/etc/bsfg/zone.json` on the appliance) and the simulator's
//! zone (bsfg-zonesim), whose rendered daemon configurations (TOML) are loaded
//! by the controller and the gate agent.
//!
//! Mode byte: bit 0 selects the simulator's zone.

use super::{config, mode};
use crate::Outcome;
use bsfg_zonesim::zone::spec::ZoneSpec;
use bsfgctl::zone::file::ZoneFile;

pub fn run(data: &[u8]) -> Outcome {
    let (m, bytes) = mode(data);
    if m & 1 == 0 {
        zone_file(bytes)
    } else {
        simulator_zone(bytes)
    }
}

fn zone_file(bytes: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Outcome::Rejected;
    };
    match ZoneFile::parse(text) {
        Err(e) => {
            assert!(!e.trim().is_empty(), "a rejection without a reason");
            Outcome::Rejected
        }
        Ok(z) => {
            let json = serde_json::to_string(&z).expect("zone files serialise");
            assert_eq!(ZoneFile::parse(&json).as_ref(), Ok(&z), "JSON round trip");
            let names = z.host_names();
            assert_eq!(names.len(), z.hosts.len());
            for (name, role) in names.iter().zip(["alpha", "beta", "gamma"]) {
                assert_eq!(z.hosts[name].role, role);
                assert_eq!(z.by_role(role).map(|(n, _)| n), Some(name));
            }
            assert_eq!(z.service_hosts(), names[..2]);
            z.min_validity();
            Outcome::Accepted
        }
    }
}

fn simulator_zone(bytes: &[u8]) -> Outcome {
    match ZoneSpec::from_json(bytes) {
        Err(e) => {
            assert!(!format!("{e:#}").trim().is_empty());
            Outcome::Rejected
        }
        Ok(spec) => {
            for name in spec.host_names() {
                let h = spec.host(name);
                assert_eq!(h.runs.controller, h.controller.is_some());
                assert_eq!(h.runs.gate_agent, h.gate_agent.is_some());
                spec.system_password_file(name);
                // What the simulator writes (the library's TOML) is what the daemons load.
                if let Some(c) = &h.controller {
                    config::controller(&c.config_text);
                }
                if let Some(a) = &h.gate_agent {
                    config::agent(&a.config_text);
                }
            }
            let _ = (spec.alpha(), spec.beta(), spec.gamma(), spec.endpoint());
            let _ = spec.client_address();
            Outcome::Accepted
        }
    }
}
