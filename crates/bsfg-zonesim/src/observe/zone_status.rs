//! `bsfg-zonesim status`: one table (or JSON document) with who holds the
//! VIP, each host's VRRP state, gates, controller and lease, and JetStream's
//! meta leader and stream leaders.

use super::Readiness;
use super::jsz::Placement;
use crate::zone::Zone;
use bsfg_mgmt::{AgentStatus, ControllerStatus};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ZoneStatus {
    pub instance: String,
    pub zone: String,
    pub vip: String,
    pub endpoint: String,
    pub vip_holders: Vec<String>,
    pub hosts: Vec<HostStatus>,
    pub jetstream: Option<Placement>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostStatus {
    pub host: String,
    pub role: String,
    pub address: String,
    pub holds_vip: bool,
    /// Programs running in the host's namespace.
    pub processes: Vec<String>,
    /// `/readyz`: serving, or why not.
    pub controller_ready: Option<Readiness>,
    pub agent: Option<AgentStatus>,
    pub controller: Option<ControllerStatus>,
    /// Why the agent or controller status could not be read.
    pub errors: Vec<String>,
}

pub async fn collect(z: &Zone) -> ZoneStatus {
    let mut hosts = Vec::new();
    for h in z.spec.host_names() {
        let spec = z.spec.host(h);
        let mut errors = Vec::new();
        let (agent, controller, ready) = if spec.runs.gate_agent {
            let agent = z
                .agent_status(h)
                .await
                .map_err(|e| errors.push(format!("agent: {e:#}")))
                .ok();
            let ready = Some(
                z.readiness(h)
                    .await
                    .unwrap_or_else(|e| Readiness::Unknown(format!("{e:#}"))),
            );
            let controller = if z.controller_pids(h).is_empty() {
                None
            } else {
                z.controller_status(h)
                    .await
                    .map_err(|e| errors.push(format!("controller: {e:#}")))
                    .ok()
            };
            (agent, controller, ready)
        } else {
            (None, None, None)
        };
        hosts.push(HostStatus {
            host: h.to_owned(),
            role: spec.role.clone(),
            address: spec.address.to_string(),
            holds_vip: z.holds_vip(h).await.unwrap_or(false),
            processes: z.process_names(h),
            controller_ready: ready,
            agent,
            controller,
            errors,
        });
    }
    ZoneStatus {
        instance: z.instance.clone(),
        zone: z.spec.zone.clone(),
        vip: z.spec.vip.address.to_string(),
        endpoint: z.spec.endpoint(),
        vip_holders: hosts
            .iter()
            .filter(|h| h.holds_vip)
            .map(|h| h.host.clone())
            .collect(),
        hosts,
        jetstream: z.any_placement().await.ok(),
    }
}

fn cell(s: Option<&str>) -> String {
    s.unwrap_or("-").to_owned()
}

pub fn render(s: &ZoneStatus) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "zone {} (instance {})  VIP {} on {}  endpoint {}",
        s.zone,
        s.instance,
        s.vip,
        if s.vip_holders.is_empty() {
            "NO HOST".to_owned()
        } else {
            s.vip_holders.join(" AND ")
        },
        s.endpoint
    );
    let _ = writeln!(
        o,
        "\n{:<7} {:<4} {:<7} {:<10} {:<10} {:<34} gates",
        "host", "VIP", "VRRP", "role", "controller", "lease (holder rev remaining)"
    );
    for h in &s.hosts {
        let a = h.agent.as_ref();
        let lease = a.map(|a| {
            format!(
                "{} r{} {} ms",
                a.lease.holder.as_deref().unwrap_or("-"),
                a.lease
                    .revision
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "-".into()),
                a.lease.remaining_ms
            )
        });
        let gates = a.map(|a| {
            let failing: Vec<String> = a
                .gates_not_passing()
                .map(|g| format!("{} {}: {}", g.gate, g.verdict, g.reason))
                .collect();
            if failing.is_empty() {
                "all pass".to_owned()
            } else {
                failing.join("; ")
            }
        });
        let controller = match (&h.controller_ready, &h.controller) {
            (Some(Readiness::Serving), _) => "serving".to_owned(),
            (_, Some(c)) => c.state.to_string(),
            (Some(_), None) => "stopped".to_owned(),
            (None, _) => "-".to_owned(),
        };
        let _ = writeln!(
            o,
            "{:<7} {:<4} {:<7} {:<10} {:<10} {:<34} {}",
            h.host,
            if h.holds_vip { "yes" } else { "no" },
            cell(a.map(|a| a.vrrp.state.name())),
            cell(a.map(|a| a.role.name())),
            controller,
            cell(lease.as_deref()),
            cell(gates.as_deref()),
        );
        if let Some(b) = a.and_then(|a| a.blocker.as_deref()) {
            let _ = writeln!(o, "{:<7} blocked: {b}", "");
        }
        for e in &h.errors {
            let _ = writeln!(o, "{:<7} {e}", "");
        }
    }
    let _ = writeln!(o);
    for h in &s.hosts {
        let _ = writeln!(o, "{:<7} runs {}", h.host, h.processes.join(", "));
    }
    match &s.jetstream {
        Some(p) => {
            let _ = writeln!(
                o,
                "\nJetStream: meta leader {}, {} voters (as {} sees it)",
                p.meta_leader.as_deref().unwrap_or("NONE"),
                p.cluster_size,
                p.server
            );
            for st in &p.streams {
                let _ = writeln!(
                    o,
                    "  {:<28} leader {}",
                    st.stream,
                    st.leader.as_deref().unwrap_or("NONE")
                );
            }
        }
        None => {
            let _ = writeln!(o, "\nJetStream: no server answered");
        }
    }
    o
}
