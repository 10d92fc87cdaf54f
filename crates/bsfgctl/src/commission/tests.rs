//! Checklist verdicts on hand-built snapshots: a healthy zone passes every
//! item, and each fault the zone simulator's drills inject fails the item
//! that names it.

use super::checklist::*;
use crate::zone::file::ZoneFile;
use crate::zone::snapshot::*;
use bsfg_mgmt::agent::{
    AgentStatus, Certificate, GateId, GateStatus, HostFacts, Keepalived, LeaseStatus, Mount,
    ProcessState, Role, SupervisedController, TrackFileStatus, VrrpState, VrrpStatus,
};
use bsfg_mgmt::controller::{ControllerLease, ControllerStatus, ServingState};
use bsfg_mgmt::nats::{
    AccountDetail, Jsz, MetaCluster, PeerInfo, StreamCluster, StreamConfig, StreamDetail,
    StreamState, Varz, VarzJetStream, VarzJetStreamConfig,
};
use std::time::Duration;

pub(crate) const NOW: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;
const CTRL: &str =
    "/nix/store/9ryh3i2k0z2wmx1rzb1mfb7s1rd8q2a1-bsfg-controller-0.1.0/bin/bsfg-controller";

fn zone() -> ZoneFile {
    ZoneFile::parse(crate::zone::file::tests::EXAMPLE).unwrap()
}

/// `/varz` `now` for a Unix time in ms.
fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms as u64))
        .to_string()
}

fn gates(vip: bool) -> Vec<GateStatus> {
    let g = |gate: GateId, ok: bool, reason: &str| GateStatus {
        number: gate.number(),
        gate,
        verdict: if ok {
            bsfg_mgmt::Verdict::Pass
        } else {
            bsfg_mgmt::Verdict::Fail
        },
        reason: reason.into(),
    };
    vec![
        g(
            GateId::Vip,
            vip,
            if vip {
                "10.20.0.100 on eno1"
            } else {
                "10.20.0.100 is not on any local interface"
            },
        ),
        g(GateId::Jetstream, true, "healthy"),
        g(GateId::Quorum, true, "leader gamma, 3 of 3 current"),
        g(GateId::Artifacts, true, "/artifacts mounted and writable"),
        g(GateId::Certificate, true, "valid for 364 days"),
        g(GateId::ControllerReady, vip, "ready"),
        g(GateId::Lease, vip, "held by this host"),
    ]
}

fn peer(name: &str) -> PeerInfo {
    PeerInfo {
        name: name.into(),
        current: true,
        ..PeerInfo::default()
    }
}

fn jsz(server: &str) -> Jsz {
    let stream = |n: &str| StreamDetail {
        name: n.into(),
        config: Some(StreamConfig {
            num_replicas: Some(3),
        }),
        cluster: Some(StreamCluster {
            leader: Some("gamma".into()),
            replicas: vec![peer("alpha"), peer("beta")],
        }),
        state: Some(StreamState { messages: 5 }),
    };
    Jsz {
        server_name: server.into(),
        meta_cluster: Some(MetaCluster {
            leader: Some("gamma".into()),
            cluster_size: 3,
            replicas: ["alpha", "beta", "gamma"]
                .into_iter()
                .filter(|p| *p != server)
                .map(peer)
                .collect(),
        }),
        account_details: vec![AccountDetail {
            stream_detail: vec![stream("facts_operational"), stream("KV_bsfg_lease")],
        }],
    }
}

fn agent(name: &str, addr: &str, active: bool) -> AgentStatus {
    AgentStatus {
        zone: "plant-a".into(),
        host: name.into(),
        role: if active { Role::Active } else { Role::Standby },
        role_reason: "agent started".into(),
        role_since_unix_ms: NOW - DAY,
        blocker: None,
        vrrp: VrrpStatus {
            state: if active {
                VrrpState::Master
            } else {
                VrrpState::Backup
            },
            since_unix_ms: None,
            last_notification: None,
        },
        vip: "10.20.0.100".into(),
        gates: gates(active),
        controller: SupervisedController {
            supervisor: "systemd unit bsfg-controller.service".into(),
            process: if active {
                ProcessState::Running
            } else {
                ProcessState::Stopped
            },
            ready: active,
            last_exit: None,
            last_error: None,
        },
        lease: LeaseStatus {
            holder: Some("alpha".into()),
            revision: Some(1),
            remaining_ms: 0,
            permits: active,
            reason: String::new(),
        },
        track_file: TrackFileStatus {
            path: "/run/bsfg-gate-agent/vrrp-track".into(),
            value: 0,
        },
        transitions_total: 0,
        transitions: vec![],
        evaluated_at_unix_ms: NOW,
        credentials: Vec::new(),
        time_sync: None,
        host_facts: Some(HostFacts {
            now_unix_ms: NOW,
            system: Some("/nix/store/0c6a8q4pq0bqsb6l7hxp8g3yq3xx3lxk-nixos-system-x-25.05".into()),
            controller_executable: Some(CTRL.into()),
            mounts: ["/", "/data/jetstream", "/opt/bsfg", "/artifacts"]
                .iter()
                .map(|m| Mount {
                    mount_point: (*m).into(),
                    source: "/dev/x".into(),
                    fs_type: "ext4".into(),
                    read_only: false,
                })
                .collect(),
            keepalived: Some(Keepalived {
                pid: 4242,
                config: "/etc/keepalived/keepalived.conf".into(),
                interface: Some("eno1".into()),
                unicast_src_ip: Some(addr.into()),
                unicast_peers: vec![
                    if name == "alpha" {
                        "10.20.0.12"
                    } else {
                        "10.20.0.11"
                    }
                    .into(),
                ],
            }),
            certificate: Some(Certificate {
                path: "/run/c.pem".into(),
                subject: "CN=plant-a-bsfg".into(),
                not_after_unix_ms: NOW + 365 * DAY,
            }),
            errors: vec![],
        }),
    }
}

fn controller(name: &str) -> ControllerSeen {
    ControllerSeen {
        ready: true,
        status: ControllerStatus {
            zone: "plant-a".into(),
            node: name.into(),
            state: ServingState::Serving,
            reason: None,
            listen: "10.20.0.100:9443".into(),
            version: "0.1.0".into(),
            executable: Some(CTRL.into()),
            started_at_unix_ms: NOW - DAY,
            lease: Some(ControllerLease {
                held: true,
                instance: format!("{name}-1"),
                holder: Some(name.into()),
                revision: Some(1),
                fence_in_ms: Some(700),
            }),
            classes: vec![],
            consumers: vec![],
            replication: vec![],
            rehydration: None,
        },
    }
}

fn host(name: &str, role: &str, active: bool) -> HostObservation {
    let z = zone();
    let addr = z.hosts[name].address.clone();
    let service = role != "gamma";
    HostObservation {
        name: name.into(),
        role: role.into(),
        varz: Ok(Varz {
            server_name: name.into(),
            version: "2.15.1".into(),
            now: Some(rfc3339(NOW + 3)),
            jetstream: Some(VarzJetStream {
                config: Some(VarzJetStreamConfig {
                    store_dir: Some("/data/jetstream/jetstream".into()),
                }),
            }),
        }),
        varz_window: Some((NOW, NOW + 6)),
        jsz: Ok(jsz(name)),
        jetstream_health: Ok(()),
        agent: service.then(|| Ok(agent(name, &addr, active))),
        controller: service.then(|| {
            if active {
                Ok(controller(name))
            } else {
                Err("connection refused".into())
            }
        }),
        // gamma: mounts seen through the node exporter
        node_exporter_mounts: (!service).then(|| {
            Ok(vec![
                "/".into(),
                "/data/jetstream".into(),
                "/opt/bsfg".into(),
            ])
        }),
    }
}

pub(crate) fn healthy() -> Snapshot {
    Snapshot {
        zone: zone(),
        taken_at_unix_ms: NOW,
        hosts: vec![
            host("alpha", "alpha", true),
            host("beta", "beta", false),
            host("gamma", "gamma", false),
        ],
        vip_certificate: Some(Ok(CertificateSeen {
            subject: "CN=plant-a-bsfg".into(),
            not_after_unix_ms: NOW + 365 * DAY,
        })),
    }
}

const T: Thresholds = Thresholds {
    certificate_min_validity: Duration::from_secs(30 * 86_400),
    max_clock_offset: Duration::from_millis(100),
};

fn failing(s: &Snapshot) -> Vec<&'static str> {
    evaluate_all(s, &T, NOW)
        .into_iter()
        .filter(|i| i.verdict == Verdict::Fail)
        .map(|i| i.id)
        .collect()
}

pub(crate) fn agent_mut<'a>(s: &'a mut Snapshot, host: &str) -> &'a mut AgentStatus {
    s.hosts
        .iter_mut()
        .find(|h| h.name == host)
        .unwrap()
        .agent
        .as_mut()
        .unwrap()
        .as_mut()
        .unwrap()
}

/// `host` would start another controller build than the other service host.
pub(crate) fn with_another_controller_build(s: &mut Snapshot, host: &str) {
    agent_mut(s, host)
        .host_facts
        .as_mut()
        .unwrap()
        .controller_executable = Some(
        "/nix/store/1b7b1j6ii2rw2dyz2h9h7xlcg7vcd4h4-bsfg-controller-0.1.1/bin/bsfg-controller"
            .into(),
    );
}

pub(crate) fn host_mut<'a>(s: &'a mut Snapshot, host: &str) -> &'a mut HostObservation {
    s.hosts.iter_mut().find(|h| h.name == host).unwrap()
}

#[test]
fn a_healthy_zone_passes_every_item_with_evidence() {
    let items = evaluate_all(&healthy(), &T, NOW);
    assert_eq!(items.len(), 13);
    for i in &items {
        assert_eq!(i.verdict, Verdict::Pass, "{i:?}");
        assert!(!i.evidence.is_empty(), "{} has no evidence", i.id);
    }
    assert_eq!(exit_code(&items), crate::exit::OK);
    let text = render(&items);
    assert!(text.contains("PASS  vip-single-holder"), "{text}");
    assert!(text.contains("alpha holds the VIP 10.20.0.100"), "{text}");
    assert!(text.ends_with("13/13 items pass\n"), "{text}");
}

#[test]
fn a_crashed_host_fails_reachability_and_voters() {
    let mut s = healthy();
    let g = host_mut(&mut s, "gamma");
    g.varz = Err("connection refused".into());
    g.varz_window = None;
    g.jsz = Err("connection refused".into());
    g.jetstream_health = Err("connection refused".into());
    for h in ["alpha", "beta"] {
        let j = host_mut(&mut s, h).jsz.as_mut().unwrap();
        let m = j.meta_cluster.as_mut().unwrap();
        m.leader = Some("alpha".into());
        for p in m.replicas.iter_mut().filter(|p| p.name == "gamma") {
            p.current = false;
            p.offline = true;
        }
    }
    let f = failing(&s);
    assert!(
        f.contains(&"hosts-reachable") && f.contains(&"jetstream-voters"),
        "{f:?}"
    );
    let items = evaluate_all(&s, &T, NOW);
    let reach = items.iter().find(|i| i.id == "hosts-reachable").unwrap();
    assert!(
        reach.evidence[0].starts_with("gamma: NATS monitoring 10.20.0.13:8222"),
        "{reach:?}"
    );
    assert_eq!(exit_code(&items), crate::exit::FAILED);
}

#[test]
fn a_missing_artifact_mount_on_the_standby_fails_mounts() {
    let mut s = healthy();
    let a = agent_mut(&mut s, "beta");
    a.gates[3].verdict = bsfg_mgmt::Verdict::Fail;
    a.gates[3].reason = "/artifacts is not a mount point".into();
    a.host_facts
        .as_mut()
        .unwrap()
        .mounts
        .retain(|m| m.mount_point != "/artifacts");
    let f = failing(&s);
    assert_eq!(f, vec!["mounts"]);
    let item = evaluate_all(&s, &T, NOW)
        .into_iter()
        .find(|i| i.id == "mounts")
        .unwrap();
    assert!(
        item.evidence
            .iter()
            .any(|e| e == "beta: /artifacts (artifacts) is not mounted (gate agent mount table)"),
        "{item:?}"
    );
}

#[test]
fn artifacts_on_gamma_or_unobservable_mounts_fail() {
    let mut s = healthy();
    host_mut(&mut s, "gamma").node_exporter_mounts = Some(Ok(vec![
        "/data/jetstream".into(),
        "/opt/bsfg".into(),
        "/artifacts".into(),
    ]));
    assert_eq!(failing(&s), vec!["mounts"]);
    let mut s = healthy();
    host_mut(&mut s, "gamma").node_exporter_mounts = None;
    assert_eq!(
        failing(&s),
        vec!["mounts"],
        "a required mount nobody can see is not a pass"
    );
}

#[test]
fn a_certificate_below_threshold_fails_certificates() {
    let mut s = healthy();
    agent_mut(&mut s, "beta")
        .host_facts
        .as_mut()
        .unwrap()
        .certificate
        .as_mut()
        .unwrap()
        .not_after_unix_ms = NOW + 10 * DAY;
    assert_eq!(failing(&s), vec!["certificates"]);
    let item = evaluate_all(&s, &T, NOW)
        .into_iter()
        .find(|i| i.id == "certificates")
        .unwrap();
    assert!(
        item.evidence[0].starts_with("beta: CN=plant-a-bsfg valid for 10d, below 30days"),
        "{item:?}"
    );
}

#[test]
fn the_vip_on_both_hosts_fails_vip_and_placement() {
    // vrrp-one-way / keepalived killed on the active host: both hold the VIP.
    let mut s = healthy();
    agent_mut(&mut s, "beta").gates[0].verdict = bsfg_mgmt::Verdict::Pass;
    let f = failing(&s);
    assert!(f.contains(&"vip-single-holder"), "{f:?}");
    assert!(
        f.contains(&"controller-placement"),
        "beta holds the VIP without serving: {f:?}"
    );
    // ... and on neither.
    let mut s = healthy();
    agent_mut(&mut s, "alpha").gates[0].verdict = bsfg_mgmt::Verdict::Fail;
    let f = failing(&s);
    assert!(
        f.contains(&"vip-single-holder") && f.contains(&"controller-placement"),
        "{f:?}"
    );
}

#[test]
fn a_controller_without_the_vip_or_bound_elsewhere_fails() {
    let mut s = healthy();
    agent_mut(&mut s, "beta").controller.process = ProcessState::Running;
    assert_eq!(failing(&s), vec!["controller-placement"]);
    let mut s = healthy();
    if let Some(Ok(c)) = host_mut(&mut s, "alpha").controller.as_mut() {
        c.status.listen = "0.0.0.0:9443".into();
    }
    assert_eq!(failing(&s), vec!["controller-bound-to-vip"]);
}

#[test]
fn quorum_streams_clock_keepalived_and_builds_each_fail_alone() {
    // Disagreeing meta leaders.
    let mut s = healthy();
    host_mut(&mut s, "beta")
        .jsz
        .as_mut()
        .unwrap()
        .meta_cluster
        .as_mut()
        .unwrap()
        .leader = Some("beta".into());
    assert_eq!(
        failing(&s),
        vec!["jetstream-voters", "jetstream-quorum"],
        "voter currency is unknown without an agreed leader"
    );
    // A stream at R1.
    assert_eq!(failing(&with_a_stream_at_r1()), vec!["streams-r3"]);
    // Beta's clock 150 ms ahead.
    let mut s = healthy();
    host_mut(&mut s, "beta").varz.as_mut().unwrap().now = Some(rfc3339(NOW + 153));
    assert_eq!(failing(&s), vec!["clock-offset"]);
    // An offset within the limit but too uncertain to prove it is not a pass.
    let mut s = healthy();
    host_mut(&mut s, "beta").varz_window = Some((NOW - 200, NOW + 206));
    assert_eq!(failing(&s), vec!["clock-offset"]);
    // Multicast VRRP (no unicast peers), and a peer outside the segment.
    let mut s = healthy();
    agent_mut(&mut s, "alpha")
        .host_facts
        .as_mut()
        .unwrap()
        .keepalived
        .as_mut()
        .unwrap()
        .unicast_peers
        .clear();
    assert_eq!(failing(&s), vec!["keepalived-unicast"]);
    let mut s = healthy();
    agent_mut(&mut s, "beta")
        .host_facts
        .as_mut()
        .unwrap()
        .keepalived
        .as_mut()
        .unwrap()
        .unicast_peers = vec!["192.168.9.11".into()];
    assert_eq!(failing(&s), vec!["keepalived-unicast"]);
    // Keepalived not running on a service host.
    let mut s = healthy();
    agent_mut(&mut s, "beta")
        .host_facts
        .as_mut()
        .unwrap()
        .keepalived = None;
    assert_eq!(failing(&s), vec!["keepalived-unicast"]);
    // Beta would start another controller build.
    let mut s = healthy();
    with_another_controller_build(&mut s, "beta");
    assert_eq!(failing(&s), vec!["controller-builds"]);
    // Gamma was upgraded to another nats-server and the others not yet.
    let mut s = healthy();
    host_mut(&mut s, "gamma").varz.as_mut().unwrap().version = "2.16.0".into();
    assert_eq!(failing(&s), vec!["nats-versions"]);
    let i = nats_versions(&s);
    assert!(
        i.evidence[0].contains("different nats-server versions: 2.15.1, 2.16.0"),
        "{i:?}"
    );
}

#[test]
fn an_unanswering_agent_fails_every_item_that_needs_it() {
    let mut s = healthy();
    host_mut(&mut s, "beta").agent = Some(Err("connection refused".into()));
    let f = failing(&s);
    for id in [
        "hosts-reachable",
        "mounts",
        "vip-single-holder",
        "certificates",
        "keepalived-unicast",
        "controller-builds",
    ] {
        assert!(f.contains(&id), "{id} should fail: {f:?}");
    }
}

#[test]
fn in_network_matches_cidrs() {
    assert!(in_network("10.20.0.12", "10.20.0.0/24"));
    assert!(!in_network("10.20.1.12", "10.20.0.0/24"));
    assert!(in_network("10.20.1.12", "10.20.0.0/16"));
    assert!(in_network("1.2.3.4", "0.0.0.0/0"));
    assert!(!in_network("x", "10.0.0.0/8"));
}

#[test]
fn zone_status_flags_problems_and_renders_a_row_per_host() {
    use crate::zone::status::{evaluate, render};
    let v = evaluate(&healthy(), NOW);
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.vip_holders, vec!["alpha"]);
    let text = render(&v);
    assert!(
        text.contains("zone plant-a  VIP 10.20.0.100 on alpha  meta leader gamma  lease alpha"),
        "{text}"
    );
    let alpha = text.lines().find(|l| l.starts_with("alpha")).unwrap();
    for want in [
        "MASTER",
        "7/7",
        "serving",
        "follower",
        "365d",
        "nixos-system-x-25.05",
        "bsfg-controller-0.1.0",
    ] {
        assert!(alpha.contains(want), "{want} in {alpha}");
    }
    assert!(text.ends_with("no problems found\n"));

    let mut s = healthy();
    with_another_controller_build(&mut s, "beta");
    let a = agent_mut(&mut s, "beta");
    a.gates[4].verdict = bsfg_mgmt::Verdict::Fail;
    a.gates[4].reason = "valid for 10 days, below 30 days".into();
    let v = evaluate(&s, NOW);
    assert!(
        v.problems
            .iter()
            .any(|p| p.starts_with("alpha and beta run different controller builds")),
        "{:?}",
        v.problems
    );
    assert!(
        v.problems.iter().any(|p| p
            == "standby beta could not take over: certificate: valid for 10 days, below 30 days"),
        "{:?}",
        v.problems
    );
}

/// `healthy()` with one stream at R1: `streams-r3` fails on it.
fn with_a_stream_at_r1() -> Snapshot {
    let mut s = healthy();
    for h in &mut s.hosts {
        let j = h.jsz.as_mut().unwrap();
        for st in &mut j.account_details[0].stream_detail {
            if st.name == "facts_operational" {
                st.config = Some(StreamConfig {
                    num_replicas: Some(1),
                });
            }
        }
    }
    s
}

fn streams_item(s: &Snapshot) -> Vec<Item> {
    vec![streams_replicated(s)]
}

#[tokio::test]
async fn a_failing_streams_item_is_observed_again_until_it_passes_or_the_settle_ends() {
    // Passes on the second observation: the verdict is the pass.
    let mut items = streams_item(&with_a_stream_at_r1());
    let mut seen = vec![None, Some(healthy())];
    super::settle_streams(&mut items, Duration::from_secs(5), || {
        let next = seen.remove(0);
        async move { next }
    })
    .await;
    assert_eq!(items[0].verdict, Verdict::Pass, "{:?}", items[0].evidence);
    assert!(seen.is_empty(), "observed {} times too few", seen.len());

    // Never passes: still failing once the settle time is over.
    let mut items = streams_item(&with_a_stream_at_r1());
    let mut observed = 0;
    super::settle_streams(&mut items, Duration::from_millis(1_200), || {
        observed += 1;
        async { Some(with_a_stream_at_r1()) }
    })
    .await;
    assert_eq!(items[0].verdict, Verdict::Fail);
    assert!((2..=4).contains(&observed), "observed {observed} times");

    // 0 s (or a passing item): decided at once, nothing observed again.
    for (first, within) in [
        (with_a_stream_at_r1(), Duration::ZERO),
        (healthy(), Duration::from_secs(5)),
    ] {
        let mut items = streams_item(&first);
        let verdict = items[0].verdict;
        super::settle_streams(&mut items, within, || async { panic!("observed again") }).await;
        assert_eq!(items[0].verdict, verdict);
    }
}
