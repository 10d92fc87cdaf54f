//! The gate agent's `GET /status` (and `bsfg-gate-agent status --json`):
//! role, VRRP state, the seven gates, the supervised controller, the lease,
//! recent role changes and what only the host can see. Documented in
//! `docs/gate-agent.md`.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub zone: String,
    pub host: String,
    pub role: Role,
    /// Why the current role was entered.
    pub role_reason: String,
    pub role_since_unix_ms: i64,
    /// What keeps the role from changing right now, if anything
    /// ("promotion refused: lease held by alpha (640 ms left)").
    pub blocker: Option<String>,
    pub vrrp: VrrpStatus,
    pub vip: String,
    /// All seven, in the contract's order.
    pub gates: Vec<GateStatus>,
    pub controller: SupervisedController,
    pub lease: LeaseStatus,
    pub track_file: TrackFileStatus,
    pub transitions_total: u64,
    /// The most recent role changes, oldest first.
    #[serde(default)]
    pub transitions: Vec<TransitionStatus>,
    pub evaluated_at_unix_ms: i64,
    /// The files the controller needs (`controller.credentials`): each
    /// present, or what is wrong with it (gate 5 fails while one is
    /// missing). Empty from older agents.
    #[serde(default)]
    pub credentials: Vec<CredentialStatus>,
    /// What only the host can see, read when `/status` is requested; absent
    /// in the evaluation loop's copy and from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_facts: Option<HostFacts>,
    /// The host's clock as chronyd tracks it (`time_sync` of the agent's
    /// configuration); absent when its policy is `off` and from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_sync: Option<TimeSyncStatus>,
}

impl AgentStatus {
    pub fn gate(&self, id: GateId) -> Option<&GateStatus> {
        self.gates.iter().find(|g| g.gate == id)
    }

    /// Gate 1 passes: the VIP is on one of this host's interfaces.
    pub fn holds_vip(&self) -> bool {
        self.gate(GateId::Vip).is_some_and(|g| g.verdict.passes())
    }

    /// Gates whose verdict is `fail`.
    pub fn failing_gates(&self) -> impl Iterator<Item = &GateStatus> {
        self.gates.iter().filter(|g| !g.verdict.passes())
    }

    /// The controller credentials that are missing or unusable.
    pub fn missing_credentials(&self) -> impl Iterator<Item = &CredentialStatus> {
        self.credentials.iter().filter(|c| !c.present)
    }

    /// Gates that do not simply pass (`warn` or `fail`).
    pub fn gates_not_passing(&self) -> impl Iterator<Item = &GateStatus> {
        self.gates.iter().filter(|g| g.verdict != Verdict::Pass)
    }

    /// Everything the agent says about why it is where it is: role reason,
    /// blocker, lease reason and every gate that does not pass.
    pub fn reasons(&self) -> String {
        let mut parts = vec![self.role_reason.clone()];
        parts.extend(self.blocker.clone());
        parts.push(self.lease.reason.clone());
        parts.extend(
            self.gates_not_passing()
                .map(|g| format!("{} {}: {}", g.gate, g.verdict, g.reason)),
        );
        parts.join("; ")
    }
}

/// The agent's role: whether this host runs the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// No controller here; promotes when every gate passes.
    Standby,
    /// Controller started, waiting for it to report ready.
    Promoting,
    /// Controller ready and serving.
    Active,
    /// A gate was lost (or the controller failed) while this host held the
    /// VIP: controller stopped, track file set so keepalived releases the VIP.
    Demoted,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Standby, Role::Promoting, Role::Active, Role::Demoted];

    /// Stable name used in JSON, metrics labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            Role::Standby => "standby",
            Role::Promoting => "promoting",
            Role::Active => "active",
            Role::Demoted => "demoted",
        }
    }

    /// The roles in which the agent keeps a controller running.
    pub fn runs_controller(self) -> bool {
        matches!(self, Role::Promoting | Role::Active)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Keepalived's view of the VRRP instance, as last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VrrpState {
    /// Nothing reported since the agent started.
    Unknown,
    Master,
    Backup,
    Fault,
    Stop,
}

impl VrrpState {
    pub const ALL: [VrrpState; 5] = [
        VrrpState::Unknown,
        VrrpState::Master,
        VrrpState::Backup,
        VrrpState::Fault,
        VrrpState::Stop,
    ];

    /// Keepalived's own spelling, used in JSON and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            VrrpState::Unknown => "UNKNOWN",
            VrrpState::Master => "MASTER",
            VrrpState::Backup => "BACKUP",
            VrrpState::Fault => "FAULT",
            VrrpState::Stop => "STOP",
        }
    }
}

impl fmt::Display for VrrpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpStatus {
    pub state: VrrpState,
    pub since_unix_ms: Option<i64>,
    /// The last keepalived line received (`INSTANCE "bsfg_plant-a" MASTER 100`).
    pub last_notification: Option<String>,
}

/// The seven promotion gates, in the contract's order (section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateId {
    Vip,
    Jetstream,
    Quorum,
    Artifacts,
    Certificate,
    ControllerReady,
    Lease,
}

impl GateId {
    pub const ALL: [GateId; 7] = [
        GateId::Vip,
        GateId::Jetstream,
        GateId::Quorum,
        GateId::Artifacts,
        GateId::Certificate,
        GateId::ControllerReady,
        GateId::Lease,
    ];

    /// The host's health gates (2–5): whether it could serve at all. Gates
    /// 1 and 7 say whether it is *the* host that should; gate 6 is the
    /// outcome of a promotion.
    pub const HEALTH: [GateId; 4] = [
        GateId::Jetstream,
        GateId::Quorum,
        GateId::Artifacts,
        GateId::Certificate,
    ];

    /// The contract's number (1–7).
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    /// Stable name used in JSON, metrics labels and logs.
    pub fn name(self) -> &'static str {
        match self {
            GateId::Vip => "vip",
            GateId::Jetstream => "jetstream",
            GateId::Quorum => "quorum",
            GateId::Artifacts => "artifacts",
            GateId::Certificate => "certificate",
            GateId::ControllerReady => "controller_ready",
            GateId::Lease => "lease",
        }
    }

    pub fn is_health(self) -> bool {
        Self::HEALTH.contains(&self)
    }

    /// The gate of a [`GateId::name`].
    pub fn from_name(name: &str) -> Option<GateId> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }
}

impl fmt::Display for GateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The agent's one-line status for its service manager (systemd's
/// `STATUS=`, shown by `systemctl status` and as the unit's `StatusText`):
/// `<role>; failing gates: <names, or none>; <role reason>`. The first two
/// fields are stable ([`Role::name`], [`GateId::name`]);
/// [`failing_gates_of_unit_status`] reads them back.
impl AgentStatus {
    pub fn unit_status(&self) -> String {
        let failing: Vec<&str> = self
            .gates
            .iter()
            .filter(|g| g.verdict == Verdict::Fail)
            .map(|g| g.gate.name())
            .collect();
        let failing = if failing.is_empty() {
            "none".to_owned()
        } else {
            failing.join(", ")
        };
        // One line: systemd shows STATUS= as it is.
        let reason = self.role_reason.replace('\n', " ");
        format!("{}; failing gates: {failing}; {reason}", self.role)
    }
}

/// The failing gates named by an [`AgentStatus::unit_status`] line (None:
/// not such a line).
pub fn failing_gates_of_unit_status(line: &str) -> Option<Vec<GateId>> {
    let list = line.split("; ").nth(1)?.strip_prefix("failing gates: ")?;
    if list == "none" {
        return Some(Vec::new());
    }
    list.split(", ").map(GateId::from_name).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Passes, with something an operator must look at (certificate policy `warn`).
    Warn,
    Fail,
}

impl Verdict {
    /// Pass or warn.
    pub fn passes(self) -> bool {
        self != Verdict::Fail
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateStatus {
    pub number: u8,
    pub gate: GateId,
    pub verdict: Verdict,
    /// Filled for passes too ("10.0.0.100 on eth0"): what was checked.
    pub reason: String,
}

/// What the supervisor sees of the controller process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessState {
    /// Not running (never started, or its exit was already reported).
    Stopped,
    Running,
    /// Asked to stop, not gone yet.
    Stopping,
    /// Exited since the last evaluation.
    Exited,
}

impl ProcessState {
    pub fn name(self) -> &'static str {
        match self {
            ProcessState::Stopped => "stopped",
            ProcessState::Running => "running",
            ProcessState::Stopping => "stopping",
            ProcessState::Exited => "exited",
        }
    }

    /// A process exists (running, or still stopping).
    pub fn is_up(self) -> bool {
        matches!(self, ProcessState::Running | ProcessState::Stopping)
    }
}

impl fmt::Display for ProcessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The controller as the agent supervises it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisedController {
    /// `systemd unit bsfg-controller.service`, `process bsfg-controller (pid 42)`.
    pub supervisor: String,
    pub process: ProcessState,
    /// Gate 6: the controller's `/readyz` answered 200.
    pub ready: bool,
    /// How the controller last ended (`exited with code 75 (...)`).
    pub last_exit: Option<String>,
    /// The last failure to start or stop it.
    pub last_error: Option<String>,
}

/// Whether the host's clock is synchronised, from `chronyc -c tracking`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeSyncStatus {
    /// `warn` (status, metrics and log only) or `deny` (gate 5 fails while
    /// the clock is not synchronised: certificate validity needs true time).
    pub policy: String,
    pub synchronised: bool,
    /// Why (synchronised or not), in words.
    pub reason: String,
    /// What chronyd tracks; absent when it could not be asked.
    pub reference: Option<String>,
    pub stratum: Option<u32>,
    pub leap_status: Option<String>,
    /// The clock's offset from true time (positive: the clock is fast).
    pub offset_seconds: Option<f64>,
    /// When chronyd was last asked (Unix ms).
    pub checked_unix_ms: i64,
}

/// One file the controller needs, as the agent last found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialStatus {
    /// Its name in `controller.credentials` (`tls_private_key`).
    pub name: String,
    pub path: String,
    pub present: bool,
    /// What is wrong when not present ("no such file", "empty", ...).
    pub problem: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseStatus {
    pub holder: Option<String>,
    pub revision: Option<u64>,
    /// Time until another host may take the lease, as measured on this host.
    pub remaining_ms: u64,
    /// Gate 7's verdict for this host.
    pub permits: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackFileStatus {
    pub path: String,
    /// 0: may bid for the VIP; 1: demoted (keepalived FAULT).
    pub value: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionStatus {
    pub at_unix_ms: i64,
    pub from: Role,
    pub to: Role,
    pub reason: String,
}

/// What only the host can see: the running NixOS system, the controller
/// executable, real mounts, the local keepalived's unicast settings, the
/// controller certificate, this host's clock. Every field defaults, so a
/// reader tolerates facts an older agent does not gather.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostFacts {
    /// This host's clock when the facts were read (Unix ms).
    pub now_unix_ms: i64,
    /// `/run/current-system`, resolved (a Nix store path); null off NixOS.
    pub system: Option<String>,
    /// The controller executable this host runs or would run, resolved:
    /// systemd `ExecStart` path of the unit, or `controller.command[0]`.
    pub controller_executable: Option<String>,
    /// Real file systems mounted here (pseudo file systems left out).
    pub mounts: Vec<Mount>,
    /// The keepalived running in this host's network namespace.
    pub keepalived: Option<Keepalived>,
    /// The controller certificate (`certificate.path`).
    pub certificate: Option<Certificate>,
    /// What could not be read.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mount {
    pub mount_point: String,
    pub source: String,
    pub fs_type: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Keepalived {
    pub pid: u32,
    /// The configuration file it was started with.
    pub config: String,
    pub interface: Option<String>,
    pub unicast_src_ip: Option<String>,
    pub unicast_peers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Certificate {
    pub path: String,
    pub subject: String,
    pub not_after_unix_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of docs/gate-agent.md.
    const DOCUMENTED: &str = r#"{
      "zone": "plant-a", "host": "beta", "role": "standby", "role_reason": "agent started",
      "role_since_unix_ms": 1763776000000,
      "blocker": "promotion refused: lease held by alpha (640 ms left)",
      "vrrp": {"state": "MASTER", "since_unix_ms": 1763776050000,
               "last_notification": "INSTANCE \"bsfg_plant-a\" MASTER 100"},
      "vip": "10.0.0.100",
      "gates": [
        {"number": 1, "gate": "vip", "verdict": "pass", "reason": "10.0.0.100 on eth0"},
        {"number": 5, "gate": "certificate", "verdict": "warn", "reason": "expires in 10d"},
        {"number": 7, "gate": "lease", "verdict": "fail", "reason": "lease held by alpha (640 ms left)"}
      ],
      "controller": {"supervisor": "systemd unit bsfg-controller.service", "process": "stopped",
                     "ready": false, "last_exit": null, "last_error": null},
      "lease": {"holder": "alpha", "revision": 41, "remaining_ms": 640, "permits": false,
                "reason": "lease held by alpha (640 ms left)"},
      "track_file": {"path": "/run/bsfg-gate-agent/vrrp-track", "value": 0},
      "transitions_total": 3,
      "transitions": [{"at_unix_ms": 1763776040000, "from": "promoting", "to": "standby",
                       "reason": "controller exited 75: the zone lease is held by another host"}],
      "evaluated_at_unix_ms": 1763776060000,
      "credentials": [
        {"name": "tls_certificate", "path": "/var/lib/bsfg/tls/controller.pem", "present": true, "problem": null},
        {"name": "nats_system_password", "path": "/var/lib/bsfg/secrets/nats-system-password",
         "present": false, "problem": "no such file"}
      ],
      "a_field_of_a_newer_agent": true
    }"#;

    #[test]
    fn the_documented_example_parses_into_typed_fields() {
        let s: AgentStatus = serde_json::from_str(DOCUMENTED).unwrap();
        assert_eq!(s.role, Role::Standby);
        assert_eq!(s.vrrp.state, VrrpState::Master);
        assert_eq!(s.controller.process, ProcessState::Stopped);
        assert!(s.holds_vip());
        assert_eq!(
            s.failing_gates().map(|g| g.gate).collect::<Vec<_>>(),
            [GateId::Lease]
        );
        assert_eq!(s.gates_not_passing().count(), 2);
        assert!(
            s.reasons()
                .contains("lease fail: lease held by alpha (640 ms left)"),
            "{}",
            s.reasons()
        );
        assert_eq!(s.transitions[0].from, Role::Promoting);
        assert_eq!(s.host_facts, None, "absent from the evaluation loop's copy");
        assert_eq!(
            s.missing_credentials()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["nats_system_password"]
        );
    }

    #[test]
    fn credentials_of_an_older_agent_default_to_none_listed() {
        let mut v: serde_json::Value = serde_json::from_str(DOCUMENTED).unwrap();
        v.as_object_mut().unwrap().remove("credentials");
        let s: AgentStatus = serde_json::from_value(v).unwrap();
        assert!(s.credentials.is_empty());
    }

    #[test]
    fn names_are_stable_and_round_trip() {
        let mut s: AgentStatus = serde_json::from_str(DOCUMENTED).unwrap();
        s.host_facts = Some(HostFacts {
            system: Some("/nix/store/x-nixos-system".into()),
            ..HostFacts::default()
        });
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(r#""role":"standby""#), "{text}");
        assert!(text.contains(r#""state":"MASTER""#));
        assert!(text.contains(r#""gate":"lease","verdict":"fail""#));
        assert!(text.contains(r#""process":"stopped""#));
        let back: AgentStatus = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        for id in GateId::ALL {
            assert_eq!(serde_json::to_value(id).unwrap(), id.name());
            assert_eq!(
                usize::from(id.number()),
                GateId::ALL.iter().position(|g| *g == id).unwrap() + 1
            );
        }
        for r in Role::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.name());
        }
        for v in VrrpState::ALL {
            assert_eq!(serde_json::to_value(v).unwrap(), v.name());
        }
    }

    #[test]
    fn the_unit_status_names_the_failing_gates() {
        let mut s: AgentStatus = serde_json::from_str(DOCUMENTED).unwrap();
        s.role_reason = "promotion denied: certificate; expires\nin 9 days".into();
        for g in &mut s.gates {
            g.verdict = match g.gate {
                GateId::Certificate | GateId::Lease => Verdict::Fail,
                _ => Verdict::Pass,
            };
        }
        let line = s.unit_status();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("standby; failing gates: certificate, lease; promotion denied"),
            "{line}"
        );
        assert_eq!(
            failing_gates_of_unit_status(&line),
            Some(vec![GateId::Certificate, GateId::Lease])
        );
        for g in &mut s.gates {
            g.verdict = Verdict::Pass;
        }
        assert_eq!(failing_gates_of_unit_status(&s.unit_status()), Some(vec![]));
        assert_eq!(failing_gates_of_unit_status("active"), None);
        assert_eq!(
            failing_gates_of_unit_status("standby; failing gates: bogus; x"),
            None
        );
    }

    #[test]
    fn host_facts_of_an_older_agent_default() {
        let f: HostFacts = serde_json::from_str(r#"{"system": "/nix/store/x"}"#).unwrap();
        assert_eq!(f.system.as_deref(), Some("/nix/store/x"));
        assert!(f.mounts.is_empty() && f.certificate.is_none());
    }
}
