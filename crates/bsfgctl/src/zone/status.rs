//! `zone status`: a pure view of a [`Snapshot`], one row per host and the
//! problems found, and its table rendering.

use super::snapshot::{HostObservation, Snapshot};
use crate::output::{self, short_duration_ms};
use crate::storepath;
use bsfg_mgmt::{GateId, Role, VrrpState};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ZoneView {
    pub zone: String,
    pub vip: String,
    pub vip_holders: Vec<String>,
    pub meta_leader: Option<String>,
    pub lease_holder: Option<String>,
    pub hosts: Vec<HostRow>,
    /// What is wrong, one sentence each; empty: healthy.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostRow {
    pub name: String,
    pub role: String,
    pub reachable: bool,
    /// What did not answer.
    pub unreachable: Vec<String>,
    pub vrrp: Option<VrrpState>,
    pub holds_vip: bool,
    pub agent_role: Option<Role>,
    pub gates_passing: Option<usize>,
    pub gates_total: Option<usize>,
    /// `gate: reason` of every failing gate.
    pub failing_gates: Vec<String>,
    /// Failing health gates (2–5): this host could not serve.
    #[serde(skip)]
    pub failing_health: Vec<GateId>,
    /// `serving`, `running (not ready)`, `stopped`, or none (gamma).
    pub controller: Option<String>,
    pub controller_listen: Option<String>,
    /// This server's view: `leader`, `current`, `behind (lag N)`, `no quorum`.
    pub jetstream: String,
    pub meta_leader: Option<String>,
    pub current_voters: Vec<String>,
    pub jetstream_lag: u64,
    /// Controller certificate, ms of validity left (from the agent).
    pub certificate_remaining_ms: Option<i64>,
    pub system: Option<String>,
    pub system_version: Option<storepath::StoreObject>,
    pub controller_executable: Option<String>,
    pub controller_build: Option<storepath::StoreObject>,
}

fn host_row(h: &HostObservation, now_ms: i64) -> HostRow {
    let mut unreachable = Vec::new();
    if let Err(e) = &h.varz {
        unreachable.push(format!("NATS monitoring: {e}"));
    }
    if let Some(Err(e)) = &h.agent {
        unreachable.push(format!("gate agent: {e}"));
    }
    let a = h.agent_ok();
    let facts = a.and_then(|a| a.host_facts.as_ref());
    let controller = match (&h.controller, a) {
        (None, None) => None,
        _ if h.controller_serving() => Some("serving".to_owned()),
        _ if h.controller_running() => Some(format!(
            "running ({})",
            h.controller_ok()
                .map(|c| c.status.state.to_string())
                .unwrap_or_else(|| "not ready".into())
        )),
        _ => Some("stopped".to_owned()),
    };
    let (jetstream, meta_leader, current_voters, lag) = match &h.jsz {
        Ok(j) => match &j.meta_cluster {
            Some(m) => {
                let me = &j.server_name;
                let state = match &m.leader {
                    None => "no meta leader".to_owned(),
                    Some(l) if l == me => "leader".to_owned(),
                    Some(_) => "follower".to_owned(),
                };
                (state, m.leader.clone(), m.current_voters(me), m.max_lag())
            }
            None => ("not clustered".to_owned(), None, Vec::new(), 0),
        },
        Err(_) => ("unreachable".to_owned(), None, Vec::new(), 0),
    };
    let jetstream = match &h.jetstream_health {
        Err(e) if h.varz.is_ok() => format!("unhealthy: {e}"),
        _ => jetstream,
    };
    let controller_executable = facts
        .and_then(|f| f.controller_executable.clone())
        .or_else(|| h.controller_ok().and_then(|c| c.status.executable.clone()));
    HostRow {
        name: h.name.clone(),
        role: h.role.clone(),
        reachable: h.reachable(),
        unreachable,
        vrrp: a.map(|a| a.vrrp.state),
        holds_vip: a.is_some_and(|a| a.holds_vip()),
        agent_role: a.map(|a| a.role),
        gates_passing: a.map(|a| a.gates.len() - a.failing_gates().count()),
        gates_total: a.map(|a| a.gates.len()),
        failing_gates: a
            .map(|a| {
                a.failing_gates()
                    .map(|g| format!("{}: {}", g.gate, g.reason))
                    .collect()
            })
            .unwrap_or_default(),
        failing_health: a
            .map(|a| {
                a.failing_gates()
                    .map(|g| g.gate)
                    .filter(|g| g.is_health())
                    .collect()
            })
            .unwrap_or_default(),
        controller,
        controller_listen: h.controller_ok().map(|c| c.status.listen.clone()),
        jetstream,
        meta_leader,
        current_voters,
        jetstream_lag: lag,
        certificate_remaining_ms: facts
            .and_then(|f| f.certificate.as_ref())
            .map(|c| c.not_after_unix_ms - now_ms),
        system: facts.and_then(|f| f.system.clone()),
        system_version: facts
            .and_then(|f| f.system.as_deref())
            .and_then(|s| storepath::parse(s).ok()),
        controller_build: controller_executable
            .as_deref()
            .and_then(|s| storepath::parse(s).ok()),
        controller_executable,
    }
}

/// The view and the problems of a snapshot at `now_ms`.
pub fn evaluate(s: &Snapshot, now_ms: i64) -> ZoneView {
    let hosts: Vec<HostRow> = s.hosts.iter().map(|h| host_row(h, now_ms)).collect();
    let mut problems = Vec::new();
    for h in &hosts {
        for u in &h.unreachable {
            problems.push(format!("{} unreachable: {u}", h.name));
        }
    }
    let holders: Vec<String> = s.vip_holders().into_iter().map(str::to_owned).collect();
    let agents_seen = s.hosts.iter().filter(|h| h.agent_ok().is_some()).count();
    match holders.len() {
        1 => {}
        0 if agents_seen > 0 => {
            problems.push(format!("the VIP {} is on neither service host", s.zone.vip))
        }
        0 => {}
        _ => problems.push(format!(
            "the VIP {} is on {} hosts at once: {}",
            s.zone.vip,
            holders.len(),
            holders.join(", ")
        )),
    }
    let serving = s.serving_hosts();
    if serving.len() > 1 {
        problems.push(format!(
            "{} controllers serving at once: {}",
            serving.len(),
            serving.join(", ")
        ));
    }
    for h in &s.hosts {
        if h.controller_running() && !holders.iter().any(|v| v == &h.name) {
            problems.push(format!(
                "a controller runs on {}, which does not hold the VIP",
                h.name
            ));
        }
    }
    if holders.len() == 1 && serving.is_empty() {
        problems.push(format!(
            "no controller serves on the VIP holder {}",
            holders[0]
        ));
    }
    let meta_leader = s.meta_leader();
    if let Err(views) = &meta_leader {
        problems.push(format!("no agreed JetStream meta leader ({views})"));
    }
    // Only the meta leader knows whether the other voters are current.
    if let Ok(l) = &meta_leader
        && let Some(h) = hosts.iter().find(|h| {
            s.host(&h.name)
                .and_then(|o| o.jsz.as_ref().ok())
                .is_some_and(|j| &j.server_name == l)
        })
        && h.current_voters.len() < s.zone.voters
    {
        problems.push(format!(
            "the meta leader {} sees {} of {} JetStream voters current ({})",
            h.name,
            h.current_voters.len(),
            s.zone.voters,
            h.current_voters.join(", ")
        ));
    }
    let threshold_ms = s.zone.min_validity().as_millis() as i64;
    for h in &hosts {
        if let Some(r) = h.certificate_remaining_ms
            && r < threshold_ms
        {
            problems.push(format!(
                "{}'s controller certificate expires in {} (policy: at least {})",
                h.name,
                short_duration_ms(r),
                s.zone.certificate_policy.min_validity
            ));
        }
    }
    if let Some(Ok(c)) = &s.vip_certificate
        && c.not_after_unix_ms - now_ms < threshold_ms
    {
        problems.push(format!(
            "the certificate served on the VIP expires in {}",
            short_duration_ms(c.not_after_unix_ms - now_ms)
        ));
    }
    // A standby that could not take over is a problem before it is needed.
    for h in &hosts {
        if h.role != "gamma" && !h.holds_vip && !h.failing_health.is_empty() {
            let agent = s.host(&h.name).and_then(|o| o.agent_ok());
            let health: Vec<String> = h
                .failing_health
                .iter()
                .filter_map(|id| agent.and_then(|a| a.gate(*id)))
                .map(|g| format!("{}: {}", g.gate, g.reason))
                .collect();
            problems.push(format!(
                "standby {} could not take over: {}",
                h.name,
                health.join("; ")
            ));
        }
    }
    if let Some(p) = differing_builds(&hosts) {
        problems.push(p);
    }
    let lease_holder = s
        .hosts
        .iter()
        .filter_map(|h| h.agent_ok().and_then(|a| a.lease.holder.clone()))
        .next();
    ZoneView {
        zone: s.zone.zone.clone(),
        vip: s.zone.vip.clone(),
        vip_holders: holders,
        meta_leader: meta_leader.ok(),
        lease_holder,
        hosts,
        problems,
    }
}

/// Alpha and Beta must run the same controller build (the same store path;
/// outside Nix, the same executable path).
pub fn differing_builds(hosts: &[HostRow]) -> Option<String> {
    let builds: Vec<(&str, String)> = hosts
        .iter()
        .filter(|h| h.role != "gamma")
        .filter_map(|h| {
            h.controller_executable
                .as_deref()
                .map(|e| (h.name.as_str(), storepath::build_identity(e)))
        })
        .collect();
    if builds.len() == 2 && builds[0].1 != builds[1].1 {
        Some(format!(
            "alpha and beta run different controller builds: {} has {}, {} has {}",
            builds[0].0, builds[0].1, builds[1].0, builds[1].1
        ))
    } else {
        None
    }
}

pub fn render(v: &ZoneView) -> String {
    let mut out = format!(
        "zone {}  VIP {} on {}  meta leader {}  lease {}\n\n",
        v.zone,
        v.vip,
        if v.vip_holders.is_empty() {
            "nobody".to_owned()
        } else {
            v.vip_holders.join(" + ")
        },
        v.meta_leader.as_deref().unwrap_or("none"),
        v.lease_holder.as_deref().unwrap_or("unknown"),
    );
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = v
        .hosts
        .iter()
        .map(|h| {
            vec![
                h.name.clone(),
                h.role.clone(),
                if h.reachable {
                    "yes".into()
                } else {
                    "NO".into()
                },
                h.vrrp.map(|v| v.to_string()).unwrap_or_else(dash),
                if h.holds_vip { "yes".into() } else { dash() },
                match (h.gates_passing, h.gates_total) {
                    (Some(p), Some(t)) => format!("{p}/{t}"),
                    _ => dash(),
                },
                h.controller.clone().unwrap_or_else(dash),
                format!(
                    "{}{}",
                    h.jetstream,
                    if h.jetstream_lag > 0 {
                        format!(" (lag {})", h.jetstream_lag)
                    } else {
                        String::new()
                    }
                ),
                h.certificate_remaining_ms
                    .map(short_duration_ms)
                    .unwrap_or_else(dash),
                h.system_version
                    .as_ref()
                    .map(|o| o.short())
                    .or(h.system.clone())
                    .unwrap_or_else(dash),
                h.controller_build
                    .as_ref()
                    .map(|o| o.short())
                    .or(h.controller_executable.clone())
                    .unwrap_or_else(dash),
            ]
        })
        .collect();
    out.push_str(&output::table(
        &[
            "HOST",
            "ROLE",
            "REACHABLE",
            "VRRP",
            "VIP",
            "GATES",
            "CONTROLLER",
            "JETSTREAM",
            "CERT",
            "SYSTEM",
            "CONTROLLER BUILD",
        ],
        &rows,
    ));
    for h in &v.hosts {
        for g in &h.failing_gates {
            out.push_str(&format!("  {} gate {g}\n", h.name));
        }
    }
    if v.problems.is_empty() {
        out.push_str("\nno problems found\n");
    } else {
        out.push_str(&format!("\n{} problem(s):\n", v.problems.len()));
        for p in &v.problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    out
}
