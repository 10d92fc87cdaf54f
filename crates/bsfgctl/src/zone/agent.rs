//! The gate agent's `GET /status` (docs/gate-agent.md), the fields bsfgctl
//! reads. Lenient: every field has a default, so an older agent without
//! `host_facts` still parses.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentStatus {
    pub zone: String,
    pub host: String,
    pub role: String,
    pub role_reason: String,
    pub blocker: Option<String>,
    pub vrrp: Vrrp,
    pub vip: String,
    pub gates: Vec<Gate>,
    pub controller: Controller,
    pub lease: Lease,
    pub transitions_total: u64,
    pub evaluated_at_unix_ms: i64,
    pub host_facts: Option<HostFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vrrp {
    pub state: String,
    pub since_unix_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gate {
    pub number: u8,
    pub gate: String,
    pub verdict: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Controller {
    pub supervisor: String,
    pub process: String,
    pub ready: bool,
    pub last_exit: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lease {
    pub holder: Option<String>,
    pub revision: Option<u64>,
    pub remaining_ms: u64,
    pub permits: bool,
    pub reason: String,
}

/// What only the host can see: the agent's own wire types (lenient, every
/// field defaulted), so the two sides cannot drift.
pub use bsfg_gate_agent::host_facts::{Certificate, HostFacts, Keepalived, Mount};

impl AgentStatus {
    pub fn gate(&self, name: &str) -> Option<&Gate> {
        self.gates.iter().find(|g| g.gate == name)
    }

    /// Gate 1 passes: the VIP is on one of this host's interfaces.
    pub fn holds_vip(&self) -> bool {
        self.gate("vip").is_some_and(|g| g.verdict != "fail")
    }

    pub fn failing_gates(&self) -> Vec<&Gate> {
        self.gates.iter().filter(|g| g.verdict == "fail").collect()
    }

    /// The controller process is up (running or still stopping).
    pub fn controller_running(&self) -> bool {
        matches!(self.controller.process.as_str(), "running" | "stopping")
    }
}
