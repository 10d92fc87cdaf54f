//! The parts of the gate agent's and the controller's `/status` documents
//! the simulator reads (docs/gate-agent.md and the controller's mgmt.rs
//! define them; unknown fields are ignored, so both may grow).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub host: String,
    /// `standby`, `promoting`, `active`, `demoted`.
    pub role: String,
    #[serde(default)]
    pub role_reason: String,
    #[serde(default)]
    pub blocker: Option<String>,
    pub vrrp: AgentVrrp,
    #[serde(default)]
    pub gates: Vec<AgentGate>,
    pub controller: AgentController,
    pub lease: AgentLease,
    #[serde(default)]
    pub transitions_total: u64,
    /// The controller's credential files (absent from older agents).
    #[serde(default)]
    pub credentials: Vec<AgentCredential>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCredential {
    pub name: String,
    pub path: String,
    pub present: bool,
    #[serde(default)]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentVrrp {
    /// `MASTER`, `BACKUP`, `FAULT`, `STOP`, `UNKNOWN`.
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentGate {
    pub number: u8,
    pub gate: String,
    /// `pass`, `warn`, `fail`.
    pub verdict: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentController {
    pub process: String,
    pub ready: bool,
    #[serde(default)]
    pub last_exit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentLease {
    pub holder: Option<String>,
    pub revision: Option<u64>,
    pub remaining_ms: u64,
    pub permits: bool,
    pub reason: String,
}

impl AgentStatus {
    /// Gates that do not pass, as `name: reason`.
    pub fn failing_gates(&self) -> Vec<String> {
        self.gates
            .iter()
            .filter(|g| g.verdict != "pass")
            .map(|g| format!("{} {}: {}", g.gate, g.verdict, g.reason))
            .collect()
    }

    /// Everything the agent says about why it is where it is: role reason,
    /// blocker, lease reason and failing gates (the refusal reasons drills
    /// look for).
    pub fn reasons(&self) -> String {
        let mut parts = vec![self.role_reason.clone()];
        parts.extend(self.blocker.clone());
        parts.push(self.lease.reason.clone());
        parts.extend(self.failing_gates());
        parts.join("; ")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerStatus {
    pub node: String,
    /// `starting`, `serving`, `fenced`, `draining`.
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub listen: String,
    #[serde(default)]
    pub lease: Option<ControllerLease>,
    /// One entry per peer zone this controller pulls from (docs/replication.md).
    #[serde(default)]
    pub replication: Vec<PeerReplication>,
}

/// A replicator's state in the controller's `/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerReplication {
    pub peer: String,
    #[serde(default)]
    pub consumer: String,
    /// `starting`, `replicating`, `caught_up`, `backoff`, `paused`.
    pub state: String,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Facts stored by this controller process (it starts at 0 on every start).
    #[serde(default)]
    pub replicated: u64,
    #[serde(default)]
    pub rejected: u64,
    #[serde(default)]
    pub confirmed_offset: u64,
    /// Facts waiting at the peer after the last page.
    #[serde(default)]
    pub backlog: u64,
    /// Age of the newest fact of the last page when it was stored here.
    #[serde(default)]
    pub lag_seconds: f64,
}

impl ControllerStatus {
    /// The replicator of `peer`, if this controller has one.
    pub fn peer(&self, peer: &str) -> Option<&PeerReplication> {
        self.replication.iter().find(|r| r.peer == peer)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerLease {
    pub held: bool,
    #[serde(default)]
    pub holder: Option<String>,
    #[serde(default)]
    pub revision: Option<u64>,
    #[serde(default)]
    pub fence_in_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_refusing_on_the_lease_says_who_holds_it() {
        let body = r#"{
          "zone": "plant-a", "host": "beta", "role": "standby", "role_reason": "agent started",
          "role_since_unix_ms": 1, "blocker": "promotion refused: lease held by alpha (640 ms left)",
          "vrrp": {"state": "MASTER", "since_unix_ms": 1, "last_notification": null},
          "vip": "10.20.0.100",
          "gates": [
            {"number": 1, "gate": "vip", "verdict": "pass", "reason": "10.20.0.100 on eno1"},
            {"number": 7, "gate": "lease", "verdict": "fail", "reason": "lease held by alpha (640 ms left)"}
          ],
          "controller": {"supervisor": "process", "process": "stopped", "ready": false, "last_exit": null, "last_error": null},
          "lease": {"holder": "alpha", "revision": 42, "remaining_ms": 640, "permits": false, "reason": "lease held by alpha (640 ms left)"},
          "track_file": {"path": "/x", "value": 0}, "transitions_total": 0, "transitions": [], "evaluated_at_unix_ms": 2
        }"#;
        let s: AgentStatus = serde_json::from_str(body).unwrap();
        assert_eq!(s.vrrp.state, "MASTER");
        assert_eq!(
            s.failing_gates(),
            vec!["lease fail: lease held by alpha (640 ms left)"]
        );
        assert!(s.reasons().contains("lease held by alpha"));
    }

    #[test]
    fn controller_status_with_and_without_lease() {
        let s: ControllerStatus = serde_json::from_str(
            r#"{"zone":"z","node":"alpha","state":"serving","reason":null,"listen":"10.20.0.100:9443",
                "lease":{"held":true,"instance":"alpha-1","holder":"alpha","revision":9,"fence_in_ms":700},
                "classes":[],"consumers":[]}"#,
        )
        .unwrap();
        assert_eq!(s.lease.unwrap().fence_in_ms, Some(700));
        let s: ControllerStatus =
            serde_json::from_str(r#"{"node":"beta","state":"starting"}"#).unwrap();
        assert!(s.lease.is_none());
        assert!(s.replication.is_empty());
    }

    #[test]
    fn controller_status_lists_each_peer_replicator() {
        let s: ControllerStatus = serde_json::from_str(
            r#"{"node":"beta","state":"serving","replication":[{"peer":"enterprise",
                "consumer":"to-plant-a","state":"caught_up","last_error":null,"replicated":812,
                "rejected":0,"confirmed_offset":1900,"backlog":0,"lag_seconds":0.031}]}"#,
        )
        .unwrap();
        let r = s.peer("enterprise").unwrap();
        assert_eq!(
            (r.state.as_str(), r.replicated, r.backlog),
            ("caught_up", 812, 0)
        );
        assert!(s.peer("plant-b").is_none());
    }
}
