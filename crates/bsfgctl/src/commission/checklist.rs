//! The commissioning checklist: pure functions of a [`Snapshot`]. Each item
//! has a stable id (scripts and tests match on it), a verdict and the
//! evidence it was decided on.

use crate::output::short_duration_ms;
use crate::zone::snapshot::{HostObservation, Snapshot};
use crate::zone::status::{differing_builds, evaluate};
use bsfg_mgmt::GateId;
use bsfg_mgmt::nats::{Jsz, StreamDetail};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not run (e.g. the round trip without an identity); never counts as a pass.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub id: &'static str,
    pub title: &'static str,
    pub verdict: Verdict,
    pub evidence: Vec<String>,
}

impl Item {
    pub fn new(
        id: &'static str,
        title: &'static str,
        failures: Vec<String>,
        mut evidence: Vec<String>,
    ) -> Item {
        let verdict = if failures.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        let mut all = failures;
        all.append(&mut evidence);
        Item {
            id,
            title,
            verdict,
            evidence: all,
        }
    }
}

/// Thresholds of the checklist.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub certificate_min_validity: Duration,
    pub max_clock_offset: Duration,
}

/// Every item decidable from the snapshot, in checklist order.
pub fn evaluate_all(s: &Snapshot, t: &Thresholds, now_ms: i64) -> Vec<Item> {
    vec![
        hosts_reachable(s),
        mounts(s),
        vip_single_holder(s),
        controller_placement(s),
        controller_bound_to_vip(s),
        jetstream_voters(s),
        jetstream_quorum(s),
        streams_replicated(s),
        certificates(s, t.certificate_min_validity, now_ms),
        clock_offset(s, t.max_clock_offset),
        keepalived_unicast(s),
        controller_builds(s, now_ms),
        nats_versions(s),
    ]
}

pub fn hosts_reachable(s: &Snapshot) -> Item {
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    for h in &s.hosts {
        match &h.varz {
            Ok(v) => ev.push(format!(
                "{}: nats-server {} ({}) answers",
                h.name, v.server_name, v.version
            )),
            Err(e) => fail.push(format!(
                "{}: NATS monitoring {}: {e}",
                h.name, s.zone.hosts[&h.name].nats_monitor
            )),
        }
        match &h.agent {
            Some(Ok(a)) => ev.push(format!("{}: gate agent answers (role {})", h.name, a.role)),
            Some(Err(e)) => fail.push(format!("{}: gate agent: {e}", h.name)),
            None => {}
        }
    }
    Item::new(
        "hosts-reachable",
        "every host answers (NATS monitoring, gate agents)",
        fail,
        ev,
    )
}

fn mount_table(h: &HostObservation) -> Option<(Vec<String>, &'static str)> {
    if let Some(f) = h.agent_ok().and_then(|a| a.host_facts.as_ref()) {
        return Some((
            f.mounts.iter().map(|m| m.mount_point.clone()).collect(),
            "gate agent",
        ));
    }
    match &h.node_exporter_mounts {
        Some(Ok(m)) => Some((m.clone(), "node exporter")),
        _ => None,
    }
}

pub fn mounts(s: &Snapshot) -> Item {
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    for h in &s.hosts {
        let expect = &s.zone.hosts[&h.name];
        let table = mount_table(h);
        for m in &expect.mounts {
            let mounted = table
                .as_ref()
                .map(|(t, src)| (t.iter().any(|p| p == &m.path), *src));
            if m.mount_point {
                match mounted {
                    Some((true, src)) => ev.push(format!("{}: {} is a mount point ({src})", h.name, m.path)),
                    Some((false, src)) => fail.push(format!("{}: {} ({}) is not mounted ({src} mount table)", h.name, m.path, m.purpose)),
                    None => fail.push(format!(
                        "{}: cannot see whether {} is mounted: no mount table (no gate agent host facts, no node exporter)",
                        h.name, m.path
                    )),
                }
            }
            // Whatever the mount table says, the services must be able to use it.
            match m.purpose.as_str() {
                "artifacts" => match h.agent_ok().and_then(|a| a.gate(GateId::Artifacts)) {
                    Some(g) if g.verdict.passes() => {
                        ev.push(format!("{}: artifacts gate: {}", h.name, g.reason))
                    }
                    Some(g) => fail.push(format!("{}: {} unusable: {}", h.name, m.path, g.reason)),
                    None => fail.push(format!(
                        "{}: no artifacts gate verdict (gate agent not answering)",
                        h.name
                    )),
                },
                "jetstream" => match h.varz.as_ref().ok().and_then(|v| v.store_dir()) {
                    Some(d) if d.starts_with(&m.path) => {
                        ev.push(format!("{}: nats-server stores in {d}", h.name))
                    }
                    Some(d) => fail.push(format!(
                        "{}: nats-server stores in {d}, not under {}",
                        h.name, m.path
                    )),
                    None => fail.push(format!(
                        "{}: nats-server reports no JetStream store directory",
                        h.name
                    )),
                },
                _ if !m.mount_point => ev.push(format!(
                    "{}: {} need not be a mount point here",
                    h.name, m.path
                )),
                _ => {}
            }
        }
        for p in &expect.absent_mounts {
            match &table {
                Some((t, src)) if t.iter().any(|x| x == p) => fail.push(format!(
                    "{}: {p} is mounted but must not exist on a {} host ({src})",
                    h.name, h.role
                )),
                Some((_, src)) => ev.push(format!("{}: no {p} ({src})", h.name)),
                None => {}
            }
        }
    }
    Item::new("mounts", "storage mounted on the right hosts", fail, ev)
}

pub fn vip_single_holder(s: &Snapshot) -> Item {
    let holders = s.vip_holders();
    let mut ev: Vec<String> = s
        .hosts
        .iter()
        .filter_map(|h| {
            h.agent_ok()
                .and_then(|a| a.gate(GateId::Vip))
                .map(|g| format!("{}: {} ({})", h.name, g.reason, g.verdict))
        })
        .collect();
    let unknown: Vec<&str> = s
        .hosts
        .iter()
        .filter(|h| h.agent.as_ref().is_some_and(|a| a.is_err()))
        .map(|h| h.name.as_str())
        .collect();
    let mut fail = Vec::new();
    if holders.len() != 1 {
        fail.push(format!(
            "the VIP {} is on {} service hosts{}",
            s.zone.vip,
            holders.len(),
            if holders.is_empty() {
                String::new()
            } else {
                format!(": {}", holders.join(", "))
            }
        ));
    }
    if !unknown.is_empty() {
        fail.push(format!(
            "cannot see the VIP on {} (gate agent not answering)",
            unknown.join(", ")
        ));
    }
    if holders.len() == 1 {
        ev.insert(0, format!("{} holds the VIP {}", holders[0], s.zone.vip));
    }
    Item::new(
        "vip-single-holder",
        "the VIP on exactly one service host",
        fail,
        ev,
    )
}

pub fn controller_placement(s: &Snapshot) -> Item {
    let holders = s.vip_holders();
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    for h in &s.hosts {
        let holds = holders.contains(&h.name.as_str());
        let running = h.controller_running();
        let serving = h.controller_serving();
        match (holds, running, serving) {
            (true, _, true) => ev.push(format!("{}: controller serving (VIP holder)", h.name)),
            (true, _, false) => fail.push(format!(
                "{}: holds the VIP but no controller serves there{}",
                h.name,
                h.agent_ok()
                    .and_then(|a| a.blocker.clone())
                    .map(|b| format!(" ({b})"))
                    .unwrap_or_default()
            )),
            (false, true, _) => fail.push(format!("{}: a controller runs without the VIP", h.name)),
            (false, false, _) => ev.push(format!("{}: no controller (as expected)", h.name)),
        }
    }
    Item::new(
        "controller-placement",
        "controller only on the VIP holder",
        fail,
        ev,
    )
}

pub fn controller_bound_to_vip(s: &Snapshot) -> Item {
    let expected = s
        .zone
        .endpoint
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned();
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    let mut seen = 0;
    for h in &s.hosts {
        if let Some(c) = h.controller_ok() {
            seen += 1;
            let listen = &c.status.listen;
            if *listen == expected {
                ev.push(format!(
                    "{}: controller listens on {listen} (the VIP only)",
                    h.name
                ));
            } else {
                fail.push(format!(
                    "{}: controller listens on {listen}, expected {expected}",
                    h.name
                ));
            }
        }
    }
    if seen == 0 {
        fail.push("no controller answered on its management address".into());
    }
    Item::new(
        "controller-bound-to-vip",
        "the controller bound to the VIP only",
        fail,
        ev,
    )
}

/// Voters and their currency: only the meta leader knows whether the others
/// are current (followers report their peers as not current), so the
/// leader's view decides; every server must count the same voters.
pub fn jetstream_voters(s: &Snapshot) -> Item {
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    let leader = s.meta_leader().ok();
    let mut leader_seen = false;
    for h in &s.hosts {
        match &h.jsz {
            Ok(j) => match &j.meta_cluster {
                Some(m) => {
                    if m.cluster_size != s.zone.voters {
                        fail.push(format!(
                            "{}: {} voters in the meta group, expected {}",
                            h.name, m.cluster_size, s.zone.voters
                        ));
                    }
                    if leader.as_deref() == Some(j.server_name.as_str()) {
                        leader_seen = true;
                        let cur = m.current_voters(&j.server_name);
                        let line = format!(
                            "{} (meta leader): {} voters, current: {}",
                            h.name,
                            m.cluster_size,
                            cur.join(", ")
                        );
                        if cur.len() == s.zone.voters {
                            ev.insert(0, line);
                        } else {
                            fail.push(format!("{line} (expected {} current)", s.zone.voters));
                        }
                    } else if m.cluster_size == s.zone.voters {
                        ev.push(format!(
                            "{}: {} voters in the meta group",
                            h.name, m.cluster_size
                        ));
                    }
                }
                None => fail.push(format!("{}: not in a JetStream cluster", h.name)),
            },
            Err(e) => fail.push(format!("{}: /jsz: {e}", h.name)),
        }
    }
    if !leader_seen {
        fail.push(match leader {
            Some(l) => format!("the meta leader {l} did not answer: voter currency unknown"),
            None => "no agreed meta leader: voter currency unknown".into(),
        });
    }
    Item::new(
        "jetstream-voters",
        "3 JetStream voters, all current",
        fail,
        ev,
    )
}

pub fn jetstream_quorum(s: &Snapshot) -> Item {
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    match s.meta_leader() {
        Ok(l) => ev.push(format!("every server agrees on meta leader {l}")),
        Err(v) => fail.push(format!("no agreed meta leader: {v}")),
    }
    for h in &s.hosts {
        match &h.jetstream_health {
            Ok(()) => ev.push(format!("{}: JetStream healthy", h.name)),
            Err(e) => fail.push(format!("{}: JetStream health: {e}", h.name)),
        }
    }
    Item::new(
        "jetstream-quorum",
        "JetStream quorum (agreed meta leader, every server healthy)",
        fail,
        ev,
    )
}

/// Every stream at the zone's replica count, with a leader whose own view
/// reports every follower current (only a stream's leader knows).
pub const STREAMS_R3: &str = "streams-r3";

pub fn streams_replicated(s: &Snapshot) -> Item {
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    let views: Vec<&Jsz> = s.hosts.iter().filter_map(|h| h.jsz.as_ref().ok()).collect();
    let mut names: Vec<&str> = views
        .iter()
        .flat_map(|j| j.streams().into_iter().map(|st| st.name.as_str()))
        .collect();
    names.sort();
    names.dedup();
    if views.is_empty() {
        fail.push("no server answered /jsz".into());
    } else if names.is_empty() {
        fail.push("no streams reported".into());
    }
    for name in names {
        let entries: Vec<(&str, &StreamDetail)> = views
            .iter()
            .flat_map(|j| {
                j.streams()
                    .into_iter()
                    .filter(|st| st.name == name)
                    .map(move |st| (j.server_name.as_str(), st))
            })
            .collect();
        let r = entries
            .iter()
            .filter_map(|(_, st)| st.config.as_ref()?.num_replicas)
            .max()
            .unwrap_or(0);
        let leader = entries
            .iter()
            .find_map(|(_, st)| st.leader().map(str::to_owned));
        let own = leader.as_deref().and_then(|l| {
            entries
                .iter()
                .find(|(server, _)| *server == l)
                .map(|(_, st)| *st)
        });
        if r != s.zone.replicas {
            fail.push(format!(
                "stream {name} has {r} replicas, expected {}",
                s.zone.replicas
            ));
            continue;
        }
        match (&leader, own) {
            (None, _) => fail.push(format!("stream {name} has no leader")),
            (Some(l), None) => fail.push(format!(
                "stream {name}: its leader {l} did not answer; replica currency unknown"
            )),
            (Some(l), Some(st)) => {
                let current = 1 + st
                    .cluster
                    .iter()
                    .flat_map(|c| &c.replicas)
                    .filter(|f| f.current && !f.offline)
                    .count();
                if current < r {
                    fail.push(format!(
                        "stream {name}: {current} of {r} replicas current (leader {l})"
                    ));
                } else {
                    ev.push(format!(
                        "stream {name}: R{r}, leader {l}, all replicas current"
                    ));
                }
            }
        }
    }
    Item::new(
        STREAMS_R3,
        "every stream and bucket at R3 with current replicas",
        fail,
        ev,
    )
}

pub fn certificates(s: &Snapshot, min: Duration, now_ms: i64) -> Item {
    let min_ms = min.as_millis() as i64;
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    for h in &s.hosts {
        let Some(a) = h.agent_ok() else {
            if h.agent.is_some() {
                fail.push(format!(
                    "{}: certificate not observable (gate agent not answering)",
                    h.name
                ));
            }
            continue;
        };
        match a.host_facts.as_ref().and_then(|f| f.certificate.as_ref()) {
            Some(c) => {
                let left = c.not_after_unix_ms - now_ms;
                let line = format!(
                    "{}: {} valid for {}",
                    h.name,
                    c.subject,
                    short_duration_ms(left)
                );
                if left >= min_ms {
                    ev.push(line);
                } else {
                    fail.push(format!("{line}, below {}", humantime::format_duration(min)));
                }
            }
            None => match a.gate(GateId::Certificate) {
                Some(g) if g.verdict == bsfg_mgmt::Verdict::Pass => {
                    ev.push(format!("{}: certificate gate: {}", h.name, g.reason))
                }
                Some(g) => fail.push(format!(
                    "{}: certificate gate {}: {}",
                    h.name, g.verdict, g.reason
                )),
                None => fail.push(format!("{}: no certificate information", h.name)),
            },
        }
    }
    match &s.vip_certificate {
        Some(Ok(c)) => {
            let left = c.not_after_unix_ms - now_ms;
            let line = format!(
                "VIP serves {} valid for {}",
                c.subject,
                short_duration_ms(left)
            );
            if left >= min_ms {
                ev.push(line);
            } else {
                fail.push(format!("{line}, below {}", humantime::format_duration(min)));
            }
        }
        Some(Err(e)) => fail.push(format!("VIP certificate: {e}")),
        None => ev.push("VIP certificate not checked (no client identity given)".into()),
    }
    Item::new(
        "certificates",
        "certificates valid above the policy threshold",
        fail,
        ev,
    )
}

pub fn clock_offset(s: &Snapshot, max: Duration) -> Item {
    let offsets = s.clock_offsets();
    let max_ms = max.as_millis() as i64;
    let mut ev: Vec<String> = offsets
        .iter()
        .map(|(h, o, u)| format!("{h}: {o:+} ms ± {u} ms against this machine"))
        .collect();
    let mut fail = Vec::new();
    if offsets.len() < 2 {
        fail.push(format!(
            "only {} host(s) reported a clock (/varz now)",
            offsets.len()
        ));
    } else {
        // The worst pair: the largest offset difference plus both uncertainties.
        let mut worst: Option<(i64, i64, &str, &str)> = None;
        for (i, a) in offsets.iter().enumerate() {
            for b in &offsets[i + 1..] {
                let (spread, unc) = ((a.1 - b.1).abs(), a.2 + b.2);
                if worst.is_none_or(|w| spread + unc > w.0 + w.1) {
                    worst = Some((spread, unc, &a.0, &b.0));
                }
            }
        }
        let (spread, uncertainty, x, y) = worst.expect("at least two hosts");
        let line = format!(
            "largest offset between hosts {spread} ms ({x} vs {y}) ± {uncertainty} ms; allowed < {max_ms} ms"
        );
        if spread + uncertainty < max_ms {
            ev.insert(0, line);
        } else {
            fail.push(line);
        }
    }
    Item::new("clock-offset", "clocks agree within the limit", fail, ev)
}

/// Whether `ip` is inside `cidr` (IPv4).
pub fn in_network(ip: &str, cidr: &str) -> bool {
    let parse = |s: &str| s.parse::<std::net::Ipv4Addr>().ok().map(u32::from);
    let Some((net, len)) = cidr.split_once('/') else {
        return false;
    };
    match (parse(ip), parse(net), len.parse::<u32>()) {
        (Some(a), Some(n), Ok(l)) if l <= 32 => {
            let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
            a & mask == n & mask
        }
        _ => false,
    }
}

pub fn keepalived_unicast(s: &Snapshot) -> Item {
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    let net = &s.zone.coordination_network;
    for h in &s.hosts {
        let Some(expect) = &s.zone.hosts[&h.name].keepalived else {
            continue;
        };
        let Some(a) = h.agent_ok() else {
            fail.push(format!(
                "{}: keepalived not observable (gate agent not answering)",
                h.name
            ));
            continue;
        };
        let Some(k) = a.host_facts.as_ref().and_then(|f| f.keepalived.as_ref()) else {
            fail.push(format!(
                "{}: no running keepalived found by the gate agent",
                h.name
            ));
            continue;
        };
        let mut bad = Vec::new();
        if k.unicast_peers.is_empty() {
            bad.push("no unicast_peer (multicast VRRP)".to_owned());
        }
        if k.unicast_src_ip.as_deref() != Some(expect.unicast_src_ip.as_str()) {
            bad.push(format!(
                "unicast_src_ip {} (expected {})",
                k.unicast_src_ip.as_deref().unwrap_or("unset"),
                expect.unicast_src_ip
            ));
        }
        let mut peers = k.unicast_peers.clone();
        peers.sort();
        let mut want = expect.unicast_peers.clone();
        want.sort();
        if peers != want {
            bad.push(format!(
                "unicast peers {} (expected {})",
                peers.join(", "),
                want.join(", ")
            ));
        }
        for p in k.unicast_peers.iter().chain(k.unicast_src_ip.iter()) {
            if !in_network(p, net) {
                bad.push(format!("{p} is outside the coordination segment {net}"));
            }
        }
        let line = format!(
            "{}: {} unicast {} -> {} on {}",
            h.name,
            k.config,
            k.unicast_src_ip.as_deref().unwrap_or("?"),
            k.unicast_peers.join(", "),
            k.interface.as_deref().unwrap_or("?")
        );
        if bad.is_empty() {
            ev.push(line);
        } else {
            fail.push(format!("{line}: {}", bad.join("; ")));
        }
    }
    if fail.is_empty() && ev.is_empty() {
        fail.push("the zone file names no keepalived peers for any service host".into());
    }
    Item::new(
        "keepalived-unicast",
        "keepalived peers unicast on the coordination segment",
        fail,
        ev,
    )
}

pub fn controller_builds(s: &Snapshot, now_ms: i64) -> Item {
    let view = evaluate(s, now_ms);
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    for h in view.hosts.iter().filter(|h| h.role != "gamma") {
        match &h.controller_executable {
            Some(e) => ev.push(format!(
                "{}: controller {}{}",
                h.name,
                e,
                h.system
                    .as_deref()
                    .map(|s| format!(", system {s}"))
                    .unwrap_or_default()
            )),
            None => fail.push(format!("{}: controller build not observable", h.name)),
        }
    }
    if let Some(p) = differing_builds(&view.hosts) {
        fail.push(p);
    }
    Item::new(
        "controller-builds",
        "alpha and beta run the same controller build",
        fail,
        ev,
    )
}

/// A zone is commissioned on one nats-server version; mixed versions are
/// a rolling upgrade's transient state, never a starting point.
pub fn nats_versions(s: &Snapshot) -> Item {
    let mut fail = Vec::new();
    let mut ev = Vec::new();
    let mut versions: Vec<&str> = Vec::new();
    for h in &s.hosts {
        match &h.varz {
            Ok(v) => {
                ev.push(format!("{}: nats-server {}", h.name, v.version));
                if !versions.contains(&v.version.as_str()) {
                    versions.push(&v.version);
                }
            }
            Err(e) => fail.push(format!(
                "{}: nats-server version not observable: {e}",
                h.name
            )),
        }
    }
    if versions.len() > 1 {
        fail.push(format!(
            "the hosts run different nats-server versions: {}",
            versions.join(", ")
        ));
    }
    Item::new(
        "nats-versions",
        "every host runs the same nats-server version",
        fail,
        ev,
    )
}

/// Exit code of a checklist: 0 all pass, 1 any fail (skipped items do not fail the run).
pub fn exit_code(items: &[Item]) -> u8 {
    if items.iter().any(|i| i.verdict == Verdict::Fail) {
        crate::exit::FAILED
    } else {
        crate::exit::OK
    }
}

/// `11/12 items pass; failing: clock-offset` (deliberately not the
/// "N passed, N failed" shape test runners print).
pub fn summary(items: &[Item]) -> String {
    let ids = |v: Verdict| -> Vec<&str> {
        items
            .iter()
            .filter(|i| i.verdict == v)
            .map(|i| i.id)
            .collect()
    };
    let mut s = format!("{}/{} items pass", ids(Verdict::Pass).len(), items.len());
    if !ids(Verdict::Fail).is_empty() {
        s.push_str(&format!("; failing: {}", ids(Verdict::Fail).join(", ")));
    }
    if !ids(Verdict::Skipped).is_empty() {
        s.push_str(&format!("; skipped: {}", ids(Verdict::Skipped).join(", ")));
    }
    s
}

pub fn render(items: &[Item]) -> String {
    let mut out = String::new();
    for i in items {
        let mark = match i.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "SKIP",
        };
        out.push_str(&format!("{mark}  {:<24} {}\n", i.id, i.title));
        for e in &i.evidence {
            out.push_str(&format!("      {e}\n"));
        }
    }
    out.push('\n');
    out.push_str(&summary(items));
    out.push('\n');
    out
}
