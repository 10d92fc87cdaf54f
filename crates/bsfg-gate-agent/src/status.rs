//! The agent's status document (`GET /status`, `bsfg-gate-agent status`;
//! its shape is [`bsfg_mgmt::agent`]), its human rendering, and the
//! Prometheus metrics derived from it ([`bsfg_mgmt::metrics::agent`]).

use crate::gates::certificate::{ChainCertificate, ChainRole};
use bsfg_mgmt::AgentStatus;
use bsfg_mgmt::metrics::{MetricFamily, agent as contract};
use bsfg_mgmt::{GateId, Role, Verdict, VrrpState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};
use std::fmt::Write;
use std::sync::atomic::AtomicU64;

fn ago(now_ms: i64, then_ms: i64) -> String {
    let secs = (now_ms - then_ms).max(0) / 1000;
    if secs < 120 {
        format!("{secs}s ago")
    } else if secs < 7200 {
        format!("{}m ago", secs / 60)
    } else {
        format!("{}h ago", secs / 3600)
    }
}

/// The human table printed by `bsfg-gate-agent status`.
pub fn render(s: &AgentStatus) -> String {
    let now = s.evaluated_at_unix_ms;
    let mut out = String::new();
    let _ = writeln!(out, "zone {}  host {}  VIP {}", s.zone, s.host, s.vip);
    let _ = writeln!(
        out,
        "role        {} (since {}): {}",
        s.role,
        ago(now, s.role_since_unix_ms),
        s.role_reason
    );
    if let Some(b) = &s.blocker {
        let _ = writeln!(out, "blocked     {b}");
    }
    let _ = writeln!(
        out,
        "vrrp        {}{}",
        s.vrrp.state,
        s.vrrp
            .since_unix_ms
            .map(|t| format!(" (since {})", ago(now, t)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "controller  {}, {}{}",
        s.controller.process,
        if s.controller.ready {
            "ready"
        } else {
            "not ready"
        },
        format_args!(" — {}", s.controller.supervisor)
    );
    if let Some(e) = &s.controller.last_exit {
        let _ = writeln!(out, "            last exit: {e}");
    }
    if let Some(e) = &s.controller.last_error {
        let _ = writeln!(out, "            last error: {e}");
    }
    let _ = writeln!(
        out,
        "lease       holder {}  revision {}  remaining {} ms",
        s.lease.holder.as_deref().unwrap_or("-"),
        s.lease
            .revision
            .map(|r| r.to_string())
            .unwrap_or_else(|| "-".into()),
        s.lease.remaining_ms
    );
    let _ = writeln!(
        out,
        "track file  {} = {}",
        s.track_file.path, s.track_file.value
    );
    if let Some(t) = &s.time_sync {
        let _ = writeln!(
            out,
            "time        {} (policy {}): {}",
            if t.synchronised {
                "synchronised"
            } else {
                "NOT SYNCHRONISED"
            },
            t.policy,
            t.reason
        );
    }
    for c in s.credentials.iter().filter(|c| !c.present) {
        let _ = writeln!(
            out,
            "missing     {} {}: {}",
            c.name,
            c.path,
            c.problem.as_deref().unwrap_or("missing")
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  #  gate              state  reason");
    for g in &s.gates {
        let verdict = match g.verdict {
            Verdict::Pass => "pass",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        let _ = writeln!(
            out,
            "  {}  {:<16}  {:<5}  {}",
            g.number,
            g.gate.name(),
            verdict,
            g.reason
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "transitions {} total{}",
        s.transitions_total,
        if s.transitions.is_empty() {
            ""
        } else {
            "; recent:"
        }
    );
    for t in s.transitions.iter().rev().take(5) {
        let _ = writeln!(
            out,
            "  {:>9}  {} -> {}: {}",
            ago(now, t.at_unix_ms),
            t.from,
            t.to,
            t.reason
        );
    }
    if let Some(f) = &s.host_facts {
        let _ = writeln!(out);
        let _ = writeln!(out, "system      {}", f.system.as_deref().unwrap_or("-"));
        let _ = writeln!(
            out,
            "controller  {}",
            f.controller_executable.as_deref().unwrap_or("-")
        );
        if let Some(k) = &f.keepalived {
            let _ = writeln!(
                out,
                "keepalived  pid {} {}: unicast {} -> {}",
                k.pid,
                k.config,
                k.unicast_src_ip.as_deref().unwrap_or("-"),
                k.unicast_peers.join(", ")
            );
        }
        for e in &f.errors {
            let _ = writeln!(out, "unreadable  {e}");
        }
    }
    out
}

// ------------------------------------------------------------------ metrics

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GateLabel {
    gate: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabel {
    host: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CredentialLabel {
    credential: String,
    path: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CaLabel {
    role: String,
    path: String,
    subject: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabel {
    daemon: &'static str,
    version: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

/// The agent's Prometheus metrics (contract section 9: gate states, VRRP
/// state, transition counts for churn alerts, plus the lease).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    gate_state: Family<GateLabel, Gauge>,
    vrrp_state: Family<StateLabel, Gauge>,
    role: Family<StateLabel, Gauge>,
    controller_active: Gauge,
    transitions: Counter,
    lease_remaining: Gauge<f64, AtomicU64>,
    lease_holder: Family<HostLabel, Gauge>,
    certificate_expiry: Gauge,
    ca_certificate_expiry: Family<CaLabel, Gauge>,
    credential_present: Family<CredentialLabel, Gauge>,
    nats_server: Family<VersionLabel, Gauge>,
    time_synchronised: Gauge,
    time_offset: Gauge<f64, AtomicU64>,
    counted_transitions: std::sync::atomic::AtomicU64,
}

/// Registers `metric` under its family in the management contract.
fn register(r: &mut Registry, family: &MetricFamily, metric: impl Metric) {
    r.register(family.name, family.help, metric);
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let gate_state = Family::<GateLabel, Gauge>::default();
        register(&mut registry, &contract::GATE_STATE, gate_state.clone());
        let vrrp_state = Family::<StateLabel, Gauge>::default();
        register(&mut registry, &contract::VRRP_STATE, vrrp_state.clone());
        let role = Family::<StateLabel, Gauge>::default();
        register(&mut registry, &contract::ROLE, role.clone());
        let controller_active = Gauge::default();
        register(
            &mut registry,
            &contract::CONTROLLER_ACTIVE,
            controller_active.clone(),
        );
        let transitions = Counter::default();
        register(
            &mut registry,
            &contract::ROLE_TRANSITIONS,
            transitions.clone(),
        );
        let lease_remaining = Gauge::<f64, AtomicU64>::default();
        register(
            &mut registry,
            &contract::LEASE_REMAINING_SECONDS,
            lease_remaining.clone(),
        );
        let lease_holder = Family::<HostLabel, Gauge>::default();
        register(&mut registry, &contract::LEASE_HOLDER, lease_holder.clone());
        let certificate_expiry = Gauge::default();
        register(
            &mut registry,
            &contract::CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS,
            certificate_expiry.clone(),
        );
        let ca_certificate_expiry = Family::<CaLabel, Gauge>::default();
        register(
            &mut registry,
            &contract::CA_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS,
            ca_certificate_expiry.clone(),
        );
        let credential_present = Family::<CredentialLabel, Gauge>::default();
        register(
            &mut registry,
            &contract::CONTROLLER_CREDENTIAL_PRESENT,
            credential_present.clone(),
        );
        let build = Family::<BuildLabel, Gauge>::default();
        build
            .get_or_create(&BuildLabel {
                daemon: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        register(&mut registry, &contract::BUILD_INFO, build);
        let nats_server = Family::<VersionLabel, Gauge>::default();
        register(
            &mut registry,
            &contract::NATS_SERVER_INFO,
            nats_server.clone(),
        );
        let time_synchronised = Gauge::default();
        register(
            &mut registry,
            &contract::TIME_SYNCHRONISED,
            time_synchronised.clone(),
        );
        let time_offset = Gauge::<f64, AtomicU64>::default();
        register(
            &mut registry,
            &contract::TIME_OFFSET_SECONDS,
            time_offset.clone(),
        );
        for id in GateId::ALL {
            let _ = gate_state.get_or_create(&GateLabel {
                gate: id.name().into(),
            });
        }
        Metrics {
            registry,
            gate_state,
            vrrp_state,
            role,
            controller_active,
            transitions,
            lease_remaining,
            lease_holder,
            certificate_expiry,
            ca_certificate_expiry,
            credential_present,
            nats_server,
            time_synchronised,
            time_offset,
            counted_transitions: Default::default(),
        }
    }

    /// The version the local nats-server announced (`INFO`), or `None`
    /// while the agent is not connected: a restarted server under a new
    /// version replaces the old series.
    pub fn set_nats_server_version(&self, version: Option<&str>) {
        if let Some(v) = version
            && self
                .nats_server
                .get(&VersionLabel {
                    version: v.to_owned(),
                })
                .is_some()
        {
            return;
        }
        self.nats_server.clear();
        if let Some(v) = version {
            self.nats_server
                .get_or_create(&VersionLabel {
                    version: v.to_owned(),
                })
                .set(1);
        }
    }

    /// The certificate's `notAfter` (Unix seconds), read at scrape time.
    pub fn set_certificate_expiry(&self, not_after_unix_s: i64) {
        self.certificate_expiry.set(not_after_unix_s);
    }

    /// The leaf's and every CA's `notAfter`, read at scrape time from the
    /// chain as observed (a rotated CA's old series disappears).
    pub fn set_chain_expiry(&self, chain: &[ChainCertificate]) {
        let leaf = chain
            .iter()
            .find(|c| c.role == ChainRole::Leaf)
            .and_then(|c| c.facts.as_ref().ok())
            .map_or(0, |f| f.not_after);
        self.set_certificate_expiry(leaf);
        self.ca_certificate_expiry.clear();
        for c in chain.iter().filter(|c| c.role != ChainRole::Leaf) {
            if let Ok(f) = &c.facts {
                self.ca_certificate_expiry
                    .get_or_create(&CaLabel {
                        role: c.role.name().into(),
                        path: c.path.display().to_string(),
                        subject: f.subject.clone(),
                    })
                    .set(f.not_after);
            }
        }
    }

    pub fn update(&self, s: &AgentStatus) {
        for g in &s.gates {
            self.gate_state
                .get_or_create(&GateLabel {
                    gate: g.gate.name().into(),
                })
                .set(i64::from(g.verdict != Verdict::Fail));
        }
        for state in VrrpState::ALL {
            self.vrrp_state
                .get_or_create(&StateLabel {
                    state: state.name().into(),
                })
                .set(i64::from(state == s.vrrp.state));
        }
        for role in Role::ALL {
            self.role
                .get_or_create(&StateLabel {
                    state: role.name().into(),
                })
                .set(i64::from(role == s.role));
        }
        self.controller_active
            .set(i64::from(s.role == Role::Active && s.controller.ready));
        use std::sync::atomic::Ordering;
        let before = self
            .counted_transitions
            .swap(s.transitions_total, Ordering::AcqRel);
        if s.transitions_total > before {
            self.transitions.inc_by(s.transitions_total - before);
        }
        self.lease_remaining
            .set(s.lease.remaining_ms as f64 / 1000.0);
        for c in &s.credentials {
            self.credential_present
                .get_or_create(&CredentialLabel {
                    credential: c.name.clone(),
                    path: c.path.clone(),
                })
                .set(i64::from(c.present));
        }
        let time = s.time_sync.as_ref();
        self.time_synchronised
            .set(i64::from(time.is_some_and(|t| t.synchronised)));
        self.time_offset
            .set(time.and_then(|t| t.offset_seconds).unwrap_or(0.0));
        self.lease_holder.clear();
        if let Some(h) = &s.lease.holder {
            self.lease_holder
                .get_or_create(&HostLabel { host: h.clone() })
                .set(1);
        }
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use bsfg_mgmt::agent::{
        CredentialStatus, GateStatus, LeaseStatus, ProcessState, SupervisedController,
        TrackFileStatus, TransitionStatus, VrrpStatus,
    };

    pub(crate) fn example() -> AgentStatus {
        AgentStatus {
            zone: "plant-a".into(),
            host: "beta".into(),
            role: Role::Standby,
            role_reason: "agent started".into(),
            role_since_unix_ms: 1_000_000,
            blocker: Some("promotion refused: lease held by alpha (640 ms left)".into()),
            vrrp: VrrpStatus {
                state: VrrpState::Master,
                since_unix_ms: Some(1_050_000),
                last_notification: Some("INSTANCE \"bsfg_plant-a\" MASTER 100".into()),
            },
            vip: "10.0.0.100".into(),
            gates: vec![
                GateStatus {
                    number: 1,
                    gate: GateId::Vip,
                    verdict: Verdict::Pass,
                    reason: "10.0.0.100 on eth0".into(),
                },
                GateStatus {
                    number: 5,
                    gate: GateId::Certificate,
                    verdict: Verdict::Warn,
                    reason: "expires in 10d 0h (policy warn)".into(),
                },
                GateStatus {
                    number: 7,
                    gate: GateId::Lease,
                    verdict: Verdict::Fail,
                    reason: "lease held by alpha (640 ms left)".into(),
                },
            ],
            controller: SupervisedController {
                supervisor: "process bsfg-controller".into(),
                process: ProcessState::Stopped,
                ready: false,
                last_exit: None,
                last_error: None,
            },
            lease: LeaseStatus {
                holder: Some("alpha".into()),
                revision: Some(41),
                remaining_ms: 640,
                permits: false,
                reason: "lease held by alpha (640 ms left)".into(),
            },
            track_file: TrackFileStatus {
                path: "/run/bsfg-gate-agent/vrrp-track".into(),
                value: 0,
            },
            transitions_total: 1,
            transitions: vec![TransitionStatus {
                at_unix_ms: 1_040_000,
                from: Role::Promoting,
                to: Role::Standby,
                reason: "controller exited 75: the zone lease is held by another host".into(),
            }],
            evaluated_at_unix_ms: 1_060_000,
            credentials: vec![
                CredentialStatus {
                    name: "tls_certificate".into(),
                    path: "/var/lib/bsfg/tls/controller.pem".into(),
                    present: true,
                    problem: None,
                },
                CredentialStatus {
                    name: "nats_system_password".into(),
                    path: "/var/lib/bsfg/secrets/nats-system-password".into(),
                    present: false,
                    problem: Some("no such file".into()),
                },
            ],
            host_facts: None,
            time_sync: None,
        }
    }

    #[test]
    fn the_table_shows_role_gates_lease_and_transitions() {
        let t = render(&example());
        assert!(
            t.contains("role        standby (since 60s ago): agent started"),
            "{t}"
        );
        assert!(t.contains("blocked     promotion refused: lease held by alpha"));
        assert!(t.contains("  7  lease             FAIL   lease held by alpha (640 ms left)"));
        assert!(t.contains("  5  certificate       WARN"));
        assert!(t.contains("holder alpha  revision 41  remaining 640 ms"));
        assert!(t.contains("20s ago  promoting -> standby"));
        assert!(
            t.contains(
                "missing     nats_system_password /var/lib/bsfg/secrets/nats-system-password: no such file"
            ),
            "{t}"
        );
        assert!(!t.contains("missing     tls_certificate"));
    }

    #[test]
    fn metrics_follow_the_status() {
        let m = Metrics::new();
        let mut s = example();
        m.update(&s);
        m.set_nats_server_version(Some("2.10.22"));
        let cert = |role, subject: &str, not_after| ChainCertificate {
            role,
            path: "/var/lib/bsfg/tls/ca.pem".into(),
            facts: Ok(crate::gates::certificate::CertificateFacts {
                subject: subject.into(),
                issuer: "CN=zone CA".into(),
                not_before: 0,
                not_after,
            }),
        };
        m.set_chain_expiry(&[
            cert(ChainRole::Leaf, "CN=alpha", 1_795_312_800),
            cert(ChainRole::Ca, "CN=old CA", 1_790_000_000),
        ]);
        m.set_chain_expiry(&[
            cert(ChainRole::Leaf, "CN=alpha", 1_795_312_800),
            cert(ChainRole::Ca, "CN=zone CA", 2_000_000_000),
        ]);
        let text = m.encode();
        assert!(text.contains(
            r#"bsfg_ca_certificate_expiry_timestamp_seconds{role="CA",path="/var/lib/bsfg/tls/ca.pem",subject="CN=zone CA"} 2000000000"#
        ), "{text}");
        assert!(
            !text.contains("CN=old CA"),
            "a rotated CA's series is dropped: {text}"
        );
        assert!(
            text.contains(r#"bsfg_gate_state{gate="lease"} 0"#),
            "{text}"
        );
        assert!(text.contains(r#"bsfg_gate_state{gate="certificate"} 1"#));
        assert!(text.contains(r#"bsfg_vrrp_state{state="MASTER"} 1"#));
        assert!(text.contains(r#"bsfg_vrrp_state{state="BACKUP"} 0"#));
        assert!(text.contains("bsfg_role_transitions_total 1"));
        assert!(text.contains(r#"bsfg_lease_holder{host="alpha"} 1"#));
        assert!(text.contains("bsfg_lease_remaining_seconds 0.64"));
        assert!(text.contains("bsfg_controller_active 0"));
        assert!(text.contains(&format!(
            r#"bsfg_build_info{{daemon="bsfg-gate-agent",version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        )));
        assert!(text.contains(r#"bsfg_nats_server_info{version="2.10.22"} 1"#));
        bsfg_mgmt::metrics::check(&text, contract::ALL).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(text.contains(
            r#"bsfg_controller_credential_present{credential="nats_system_password",path="/var/lib/bsfg/secrets/nats-system-password"} 0"#
        ), "{text}");
        assert!(text.contains(
            r#"bsfg_controller_credential_present{credential="tls_certificate",path="/var/lib/bsfg/tls/controller.pem"} 1"#
        ));
        s.transitions_total = 3;
        s.lease.holder = Some("beta".into());
        m.update(&s);
        m.update(&s);
        let text = m.encode();
        assert!(text.contains("bsfg_role_transitions_total 3"), "{text}");
        assert!(!text.contains(r#"host="alpha""#));
        m.set_certificate_expiry(1_795_312_800);
        assert!(
            m.encode()
                .contains("bsfg_certificate_expiry_timestamp_seconds 1795312800")
        );
        // A restarted server under a new version replaces the old series.
        m.set_nats_server_version(Some("2.11.0"));
        let text = m.encode();
        assert!(text.contains(r#"bsfg_nats_server_info{version="2.11.0"} 1"#));
        assert!(!text.contains("2.10.22"), "{text}");
        m.set_nats_server_version(None);
        assert!(!m.encode().contains("bsfg_nats_server_info{"));
    }

    #[test]
    fn time_sync_shows_in_the_table_and_the_metrics() {
        let m = Metrics::new();
        let mut s = example();
        m.update(&s);
        let text = m.encode();
        assert!(text.contains("bsfg_time_synchronised 0"), "{text}");
        assert!(!render(&s).contains("time        "));
        s.time_sync = Some(bsfg_mgmt::agent::TimeSyncStatus {
            policy: "warn".into(),
            synchronised: true,
            reason: "synchronised to 10.0.0.1 (stratum 3), offset -0.000250 s".into(),
            reference: Some("10.0.0.1".into()),
            stratum: Some(3),
            leap_status: Some("Normal".into()),
            offset_seconds: Some(-0.00025),
            checked_unix_ms: s.evaluated_at_unix_ms,
        });
        m.update(&s);
        let text = m.encode();
        assert!(text.contains("bsfg_time_synchronised 1"), "{text}");
        assert!(text.contains("bsfg_time_offset_seconds -0.00025"), "{text}");
        let t = render(&s);
        assert!(
            t.contains("time        synchronised (policy warn): synchronised to 10.0.0.1"),
            "{t}"
        );
        s.time_sync.as_mut().unwrap().synchronised = false;
        assert!(render(&s).contains("time        NOT SYNCHRONISED (policy warn)"));
        m.update(&s);
        assert!(m.encode().contains("bsfg_time_synchronised 0"));
    }
}
