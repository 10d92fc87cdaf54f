//! Everything observed of a zone at one moment: the input of `zone status`
//! and of the commissioning checklist, both pure functions of it. Tests
//! build snapshots by hand to exercise every verdict.

use super::file::ZoneFile;
use bsfg_mgmt::nats::{Jsz, Varz};
use bsfg_mgmt::{AgentStatus, ControllerStatus};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub zone: ZoneFile,
    /// Local clock when collection started.
    pub taken_at_unix_ms: i64,
    /// Role order: alpha, beta, gamma.
    pub hosts: Vec<HostObservation>,
    /// The certificate the VIP serves (needs an identity; `None`: not checked).
    pub vip_certificate: Option<Result<CertificateSeen, String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostObservation {
    pub name: String,
    pub role: String,
    pub varz: Result<Varz, String>,
    /// Local clock just before the `/varz` request and just after its answer.
    pub varz_window: Option<(i64, i64)>,
    pub jsz: Result<Jsz, String>,
    /// `/healthz?js-enabled-only=true`.
    pub jetstream_health: Result<(), String>,
    /// `None`: this host runs no gate agent (gamma).
    pub agent: Option<Result<AgentStatus, String>>,
    /// `None`: this host runs no controller. `Err`: its management address
    /// did not answer (normal on a standby: the controller is not running).
    pub controller: Option<Result<ControllerSeen, String>>,
    /// Mount points reported by the node exporter, if the zone has one.
    pub node_exporter_mounts: Option<Result<Vec<String>, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControllerSeen {
    /// `/readyz` answered 200.
    pub ready: bool,
    /// Its `/status`.
    pub status: ControllerStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertificateSeen {
    pub subject: String,
    pub not_after_unix_ms: i64,
}

impl HostObservation {
    pub fn agent_ok(&self) -> Option<&AgentStatus> {
        self.agent.as_ref().and_then(|a| a.as_ref().ok())
    }

    pub fn controller_ok(&self) -> Option<&ControllerSeen> {
        self.controller.as_ref().and_then(|c| c.as_ref().ok())
    }

    /// Reachable: NATS monitoring answered, and the agent too where there is one.
    pub fn reachable(&self) -> bool {
        self.varz.is_ok() && self.agent.as_ref().is_none_or(|a| a.is_ok())
    }

    /// A controller process is running here, by the agent's or the
    /// controller's own account.
    pub fn controller_running(&self) -> bool {
        self.agent_ok()
            .is_some_and(|a| a.controller.process.is_up())
            || self.controller_ok().is_some()
    }

    /// Serving: ready by `/readyz`.
    pub fn controller_serving(&self) -> bool {
        self.controller_ok().is_some_and(|c| c.ready)
    }
}

impl Snapshot {
    pub fn host(&self, name: &str) -> Option<&HostObservation> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Service hosts whose agent reports the VIP on a local interface.
    pub fn vip_holders(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|h| h.agent_ok().is_some_and(|a| a.holds_vip()))
            .map(|h| h.name.as_str())
            .collect()
    }

    /// The hosts whose controller answers `/readyz` with 200.
    pub fn serving_hosts(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|h| h.controller_serving())
            .map(|h| h.name.as_str())
            .collect()
    }

    /// The meta leader every reachable server agrees on; `Err` lists the views.
    pub fn meta_leader(&self) -> Result<String, String> {
        let views: Vec<(String, Option<String>)> = self
            .hosts
            .iter()
            .filter_map(|h| {
                h.jsz
                    .as_ref()
                    .ok()
                    .map(|j| (h.name.clone(), j.meta_leader().map(str::to_owned)))
            })
            .collect();
        let leaders: std::collections::BTreeSet<&Option<String>> =
            views.iter().map(|(_, l)| l).collect();
        match (views.is_empty(), leaders.len(), leaders.iter().next()) {
            (false, 1, Some(Some(l))) => Ok(l.clone()),
            _ => Err(views
                .iter()
                .map(|(h, l)| format!("{h}: {}", l.as_deref().unwrap_or("no leader")))
                .collect::<Vec<_>>()
                .join(", ")),
        }
    }

    /// The clock offset of every host whose `/varz` answered: the server's
    /// `now` minus the midpoint of the local request window, with half the
    /// window as uncertainty. (name, offset ms, ± ms)
    pub fn clock_offsets(&self) -> Vec<(String, i64, i64)> {
        self.hosts
            .iter()
            .filter_map(|h| {
                let v = h.varz.as_ref().ok()?;
                let now = v.now_unix_ms()?;
                let (a, b) = h.varz_window?;
                Some((h.name.clone(), now - (a + b) / 2, (b - a + 1) / 2))
            })
            .collect()
    }
}
