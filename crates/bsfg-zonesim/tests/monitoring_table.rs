//! Every row of the Triad-HA monitoring table the simulator can produce,
//! firing on its fault, with the shipped rules and a real Prometheus
//! (the set-up and the watch of `prometheus.rs`; alpha-crash and
//! gamma-crash voters are covered there). One zone, under load, faults in
//! turn, each resolved before the next:
//!
//! 1. the standby's controller certificate below the 30-day policy;
//! 2. VRRP split three times (beta stops hearing alpha): the VIP on both
//!    service hosts, then VRRP churn;
//! 3. the active host's artifact storage gone (it demotes, beta takes over);
//! 4. gamma crashes: every stream runs on 2 of 3 replicas and the meta
//!    group on 2 of 3 voters; then the standby crashes too (the majority
//!    lost): quorum gate failing, no VIP anywhere, no controller serving;
//! 5. the standby's nats-server killed: local JetStream unhealthy, as its
//!    gate agent's JetStream gate sees it; started again;
//! 6. the zone pulls from its peer node (started before the boot), which
//!    appends; its link to both service hosts is cut at the switch until
//!    `BsfgReplicationLag` fires for the peer, then healed: the drain
//!    arrives and the alert resolves;
//! 7. the standby's controller configured for a wildcard address (the
//!    development flag the zone library never renders) and made active by
//!    a planned handover: bound to something other than the VIP; handed
//!    back;
//! 8. all along, from before the boot: beta's artifact store is a 64 MiB
//!    tmpfs the test fills to 92 %, which every host's node exporter (the
//!    appliance's collectors and flags) reports; `BsfgDiskAlmostFull`
//!    (`for: 5m`) fires for beta's `/artifacts`, and resolves once the
//!    filler is deleted. Where this machine's kernel clock is
//!    unsynchronised, `BsfgClockOffset` fires on it too (beta's: the other
//!    hosts' exporters restart with their crash in phase 4). Phases 5
//!    to 7 run while its `for:` does.
//!
//! Every alert this file waits for must reach *firing*; no alert fires that
//! the phase's fault does not explain. The table row → alert → fault →
//! observed state is in docs/testing.md.
//!
//! Needs root (network namespaces); fails without it.

use crate::prometheus::{
    AGENTS_UP, Alert, CLOCK, FAILOVER_WINDOW, SETTLE, WITHOUT_EXPORTERS, Watch, api, boot,
    clock_unsynchronised, create_zone, in_baseline, run_zone_test, series_count, settled,
    start_load, start_peer, start_prometheus, until_series, wait_peer,
};
use bsfg_zonesim::load::{Load, LoadConfig};
use bsfg_zonesim::zone::Zone;
use bsfg_zonesim::zone::peer::PEER;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Warnings over a 15 min window: firing from phase 2 to the end.
const CHURN: [&str; 2] = ["BsfgVrrpTransitionChurn", "BsfgRoleTransitionChurn"];

/// Phase 6's alert (and the backlog's, which the cut may trip).
const LAG: &str = "BsfgReplicationLag";
const BACKLOG: &str = "BsfgReplicationBacklog";

/// Phase 8's alert: active from the start until the filler goes.
const DISK: &str = "BsfgDiskAlmostFull";
/// Its `for:` (5 min) from the first evaluation, and a margin.
const DISK_WITHIN: Duration = Duration::from_secs(7 * 60);

/// A small filesystem mounted on a host's directory (a tmpfs in the
/// machine's mount namespace; every daemon started after the mount sees
/// it), filled by `filler`. Unmounted when dropped.
struct SmallFilesystem {
    dir: PathBuf,
    filler: PathBuf,
}

impl SmallFilesystem {
    const SIZE_MIB: u64 = 64;
    /// 59 of 64 MiB: 7.8 % free, below the rule's 10 %.
    const FILL_MIB: u64 = 59;

    fn mount_filled(dir: &Path) -> SmallFilesystem {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={}m,mode=0770", Self::SIZE_MIB))
            .arg("bsfg-test-small")
            .arg(dir)
            .status()
            .expect("mount");
        assert!(ok.success(), "mounting a tmpfs on {}", dir.display());
        let fs = SmallFilesystem {
            dir: dir.to_owned(),
            filler: dir.join("filler"),
        };
        let chunk = vec![0xa5u8; 1 << 20];
        let mut data = Vec::with_capacity((Self::FILL_MIB << 20) as usize);
        for _ in 0..Self::FILL_MIB {
            data.extend_from_slice(&chunk);
        }
        std::fs::write(&fs.filler, data).unwrap();
        fs
    }

    fn empty(&self) {
        std::fs::remove_file(&self.filler).unwrap();
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        // Lazy: a daemon's namespace may still hold it.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// `name` firing, on `host` if given (zone-wide alerts carry no host).
fn firing(active: &[Alert], name: &str, host: Option<&str>) -> bool {
    active.iter().any(|a| {
        a.name == name
            && a.state == "firing"
            && host.is_none_or(|h| a.labels.get("host").map(String::as_str) == Some(h))
    })
}

/// The phase's allowed alerts: the baseline, what outlasts earlier faults,
/// and `own`.
fn allowed<'a>(own: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![WITHOUT_EXPORTERS, DISK];
    v.extend(FAILOVER_WINDOW);
    v.extend(CHURN);
    v.extend(own);
    v
}

fn lingering() -> Vec<&'static str> {
    let mut v: Vec<&str> = FAILOVER_WINDOW.to_vec();
    v.extend(CHURN);
    v.push(DISK);
    v
}

/// Polls until `name` fires (on `host` if given); the seconds it took.
async fn until_firing(z: &Zone, w: &mut Watch, ok: &[&str], name: &str, host: Option<&str>) -> f64 {
    w.until(z, &format!("{name} firing"), ok, |act| {
        firing(act, name, host)
    })
    .await
}

/// Polls until nothing is active but the baseline and what lingers.
async fn until_resolved(z: &Zone, w: &mut Watch, what: &str, ok: &[&str]) {
    w.until(z, what, ok, |act| settled(act, &lingering())).await;
}

/// One table row as observed.
struct Row {
    row: &'static str,
    alert: &'static str,
    fault: String,
    observed: String,
}

/// Settled as `bsfgctl upgrade check` judges it: every voter and replica
/// current, the standby ready.
async fn settle(z: &Zone, w: &mut Watch, allowed: &[&str]) {
    let start = Instant::now();
    loop {
        let (safe, blockers) =
            tokio::task::block_in_place(|| bsfg_zonesim::drills::upgrade::upgrade_check(z))
                .unwrap();
        if safe {
            w.note("settled: upgrade check passes");
            return;
        }
        assert!(
            start.elapsed() < SETTLE * 2,
            "the zone never settled: {blockers}\n{}",
            w.timeline.join("\n")
        );
        w.observe(z, allowed).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The value of a one-series PromQL expression.
async fn value(z: &Zone, expr: &str) -> Option<f64> {
    let q = percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC);
    let v = api(z, format!("/api/v1/query?query={q}")).await.ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// Pure: a controller configuration bound to every address, as the
/// development flag allows (`[listen] address = "0.0.0.0:<port>"`,
/// `allow_wildcard = true`).
fn wildcard_listen(config: &str) -> String {
    let mut t: toml::Table = config.parse().expect("the controller's TOML");
    let listen = t
        .get_mut("listen")
        .and_then(toml::Value::as_table_mut)
        .expect("a [listen] table");
    let address: std::net::SocketAddr = listen["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .expect("listen.address");
    listen.insert(
        "address".into(),
        format!("0.0.0.0:{}", address.port()).into(),
    );
    listen.insert("allow_wildcard".into(), true.into());
    toml::to_string(&t).expect("TOML")
}

async fn serving_host(z: &Zone) -> String {
    let start = Instant::now();
    loop {
        for h in z.spec.service_hosts() {
            if z.serving(h).await {
                return h.to_owned();
            }
        }
        assert!(start.elapsed() < SETTLE, "no service host serves");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[test]
fn prometheus_monitoring_table_rows_fire_on_their_faults() {
    run_zone_test(run());
}

async fn run() {
    let instance = format!("mt{}", std::process::id() % 100_000);
    let zone = create_zone(&instance);
    let z = &zone;
    let [a, b, g] = z.spec.host_names().map(str::to_owned);
    // 8. Before the boot, so every daemon's namespace sees the mount; beta
    // is neither the host whose artifacts phase 3 removes nor the standby
    // phase 4 crashes (both alpha: it is active from the boot).
    // Declared after the zone: unmounted before its run directory goes.
    let small = SmallFilesystem::mount_filled(&z.spec.host(&b).paths.artifacts);
    // 6. Before the boot, as the replication drills do: the controllers
    // find it serving (a configured peer that never answers is lag).
    let peer = start_peer(z);
    boot(z).await;
    wait_peer(z, &peer).await;
    let _prometheus = start_prometheus(z);
    let load = start_load(z, &format!("mt-{instance}"));
    let mut w = Watch::starting_now();
    w.note(format!(
        "{b}: artifact store on a {} MiB tmpfs, {} MiB filled",
        SmallFilesystem::SIZE_MIB,
        SmallFilesystem::FILL_MIB
    ));
    let mut rows = Vec::new();
    let unsynced_clock = clock_unsynchronised(z, &mut w).await;
    w.until(z, "baseline: only the exporters' absence", &[], |act| {
        act.iter().all(|x| in_baseline(x) || x.name == DISK)
            && act.iter().any(|x| x.name == WITHOUT_EXPORTERS)
    })
    .await;
    until_series(z, &mut w, &[(AGENTS_UP, 2)], &[DISK]).await;
    let disk_series = format!(
        "node_filesystem_avail_bytes{{host=\"{b}\", mountpoint=\"/artifacts\"}} / node_filesystem_size_bytes < 0.10"
    );
    until_series(z, &mut w, &[(&disk_series, 1)], &[DISK]).await;

    // 1. Certificate expiry: the standby's certificate valid 10 days.
    let ok = allowed(&["BsfgCertificateExpiresSoon", "BsfgCertificateUnreadable"]);
    z.install_short_certificate(&b).unwrap();
    z.restart_agent(&b).await.unwrap();
    w.note(format!("{b}: certificate valid 10 days"));
    let took = until_firing(z, &mut w, &ok, "BsfgCertificateExpiresSoon", Some(&b)).await;
    rows.push(Row {
        row: "Certificate expiry",
        alert: "BsfgCertificateExpiresSoon",
        fault: format!("{b}'s controller certificate replaced by one valid 10 days"),
        observed: format!("firing after {took:.0} s; resolved with a valid one"),
    });
    z.install_valid_certificate(&b).unwrap();
    z.restart_agent(&b).await.unwrap();
    until_resolved(z, &mut w, "certificate alerts resolved", &ok).await;

    // 2. VRRP split: beta stops hearing alpha's adverts and becomes MASTER
    // too. Three splits: VRRP churn (6 changes of beta's MASTER state in 15 min).
    let ok = allowed(&["BsfgVipOnBothServiceHosts", "BsfgVipOnInactiveHost"]);
    let master = |v: u8| format!("bsfg_vrrp_state{{host=\"{b}\", state=\"MASTER\"}} == {v}");
    let mut vip_both = 0.0;
    for split in 0..3 {
        z.drop_vrrp(&b, &a).unwrap();
        w.note(format!("{b} stops hearing {a}'s VRRP ({})", split + 1));
        if split == 0 {
            vip_both = until_firing(z, &mut w, &ok, "BsfgVipOnBothServiceHosts", None).await;
        } else {
            until_series(z, &mut w, &[(&master(1), 1)], &ok).await;
        }
        z.heal_vrrp(&b).unwrap();
        until_series(z, &mut w, &[(&master(0), 1)], &ok).await;
    }
    rows.push(Row {
        row: "VIP held by expected active node (present on an unexpected host)",
        alert: "BsfgVipOnBothServiceHosts",
        fault: format!("{b} drops {a}'s VRRP adverts (both MASTER)"),
        observed: format!("firing after {vip_both:.0} s; resolved when healed"),
    });
    let took = until_firing(z, &mut w, &ok, "BsfgVrrpTransitionChurn", Some(&b)).await;
    rows.push(Row {
        row: "Keepalived role transition churn",
        alert: "BsfgVrrpTransitionChurn",
        fault: format!("three VRRP splits of {b} in a row"),
        observed: format!(
            "firing {took:.0} s after the third heal (a 15 min window: outlasts the test)"
        ),
    });
    until_resolved(z, &mut w, "VIP alerts resolved", &ok).await;

    // 3. Artifact storage: gone on the active host, which demotes at once.
    let active = serving_host(z).await;
    assert_eq!(
        active, a,
        "{a} no longer active before phase 3: its artifact storage is the one to remove ({b}'s is phase 8's mount)"
    );
    let other = if active == a { b.clone() } else { a.clone() };
    let ok = allowed(&[
        "BsfgArtifactStorageUnavailable",
        "BsfgArtifactStorageUnavailableOnActive",
    ]);
    z.remove_artifacts(&active).unwrap();
    w.note(format!("{active}: artifact storage gone"));
    let took = until_firing(
        z,
        &mut w,
        &ok,
        "BsfgArtifactStorageUnavailable",
        Some(&active),
    )
    .await;
    z.wait_serving(&other, SETTLE).await.unwrap();
    let tag = format!("BsfgArtifactStorageUnavailableOnActive {:?}", Some(&active));
    let on_active = w.pending_seen.contains(&tag) || w.firing_seen.contains(&tag);
    rows.push(Row {
        row: "Artifact storage availability",
        alert: "BsfgArtifactStorageUnavailable",
        fault: format!("{active}'s artifact storage removed while it is active"),
        observed: format!(
            "firing after {took:.0} s; {other} serves; BsfgArtifactStorageUnavailableOnActive {}",
            if on_active {
                "seen"
            } else {
                "never seen (the agent demotes in the same evaluation)"
            }
        ),
    });
    z.restore_artifacts(&active).unwrap();
    until_resolved(z, &mut w, "artifact alerts resolved", &ok).await;
    settle(z, &mut w, &ok).await;

    // 4. gamma crashes: every stream on 2 of 3 replicas, 2 of 3 voters.
    let active = serving_host(z).await;
    let standby = if active == a { b.clone() } else { a.clone() };
    assert_eq!(
        standby, a,
        "{b} should be active after phase 3: crashing it would restart its node exporter (phase 8)"
    );
    let mut ok = allowed(&[
        "BsfgStreamReplicaNotCurrent",
        "BsfgJetStreamVotersMissing",
        // Pending while gamma's streams elect new leaders.
        "BsfgStreamWithoutLeader",
        // gamma runs the service probe: its target goes down with it.
        "BsfgScrapeTargetDown",
    ]);
    z.crash(&g).unwrap();
    w.note(format!("{g} crashed"));
    let took = w
        .until(
            z,
            "BsfgStreamReplicaNotCurrent and BsfgJetStreamVotersMissing firing",
            &ok,
            |act| {
                firing(act, "BsfgStreamReplicaNotCurrent", Some(&active))
                    && firing(act, "BsfgJetStreamVotersMissing", None)
            },
        )
        .await;
    let streams = series_count(
        z,
        "bsfg_stream_replicas_current == 2 and on (zone, host, stream) bsfg_stream_replicas == 3",
    )
    .await
    .unwrap();
    assert!(streams >= 3, "only {streams} streams on 2 of 3 replicas");
    rows.push(Row {
        row: "JetStream cluster membership (and every stream's replicas)",
        alert: "BsfgStreamReplicaNotCurrent, BsfgJetStreamVotersMissing",
        fault: format!("{g} crashes"),
        observed: format!("both firing after {took:.0} s, for all {streams} streams"),
    });
    // BsfgStreamWithoutLeader must not have fired (elections take seconds).
    assert!(
        !w.timeline
            .iter()
            .any(|t| t.contains("BsfgStreamWithoutLeader") && t.ends_with("firing")),
        "{}",
        w.timeline.join("\n")
    );

    // ... and the standby too: the majority is lost.
    ok.extend([
        "BsfgQuorumGateFailing",
        "BsfgVipOnNoServiceHost",
        "BsfgNoControllerServing",
        "BsfgScrapeTargetDown",
        "BsfgStreamWithoutLeader",
        "BsfgLeaseWriteFailures",
        // The zone serves nothing: a probe of the VIP from outside fails.
        "BsfgServiceProbeFailing",
    ]);
    z.crash(&standby).unwrap();
    w.note(format!("{standby} crashed too"));
    // The active controller lists no stream with a leader until its agent
    // stops it: pending at least; firing if it runs 15 s more.
    let without_leader = std::cell::Cell::new("");
    let took = w
        .until(z, "quorum, VIP and controller alerts firing", &ok, |act| {
            for x in act.iter().filter(|x| x.name == "BsfgStreamWithoutLeader") {
                if without_leader.get() != "firing" {
                    without_leader.set(if x.state == "firing" {
                        "firing"
                    } else {
                        "pending"
                    });
                }
            }
            firing(act, "BsfgQuorumGateFailing", Some(&active))
                && firing(act, "BsfgVipOnNoServiceHost", None)
                && firing(act, "BsfgNoControllerServing", None)
        })
        .await;
    for (row, alert) in [
        ("JetStream quorum availability", "BsfgQuorumGateFailing"),
        (
            "VIP held by expected active node (absent from both)",
            "BsfgVipOnNoServiceHost",
        ),
        ("BSFG controller health", "BsfgNoControllerServing"),
    ] {
        rows.push(Row {
            row,
            alert,
            fault: format!("{g} and {standby} crashed: {active} alone"),
            observed: format!("firing {took:.0} s after the second crash (all three)"),
        });
    }
    assert_ne!(
        without_leader.get(),
        "",
        "BsfgStreamWithoutLeader never active\n{}",
        w.timeline.join("\n")
    );
    rows.push(Row {
        row: "JetStream quorum availability (streams)",
        alert: "BsfgStreamWithoutLeader",
        fault: format!("{g} and {standby} crashed: {active} alone"),
        observed: format!(
            "{} (the controller reports every stream leaderless until its agent stops it)",
            without_leader.get()
        ),
    });
    z.restore(&g).unwrap();
    z.restore(&standby).unwrap();
    w.note(format!("{g} and {standby} restored"));
    z.wait_formed(&[&a, &b, &g], SETTLE).await.unwrap();
    until_resolved(z, &mut w, "every alert resolved", &ok).await;
    settle(z, &mut w, &ok).await;

    // 5. Local JetStream health: the standby's nats-server dies. Its gate
    // agent's JetStream gate (the local /healthz) fails; the agent, and so
    // the alert, stay up. Its streams and the meta group run on the others.
    let active = serving_host(z).await;
    let standby = if active == a { b.clone() } else { a.clone() };
    let ok = allowed(&[
        "BsfgJetStreamUnhealthy",
        // The agent's quorum and lease gates read the same local server.
        "BsfgQuorumGateFailing",
        "BsfgJetStreamVotersMissing",
        "BsfgStreamReplicaNotCurrent",
        "BsfgStreamWithoutLeader",
        "BsfgLeaseWriteFailures",
    ]);
    let killed = z.kill_all_named(&standby, "nats-server");
    assert_eq!(
        killed, 1,
        "{standby}: {killed} nats-server processes killed"
    );
    w.note(format!("{standby}: nats-server killed"));
    let took = until_firing(z, &mut w, &ok, "BsfgJetStreamUnhealthy", Some(&standby)).await;
    let elsewhere: Vec<&String> = w
        .firing_seen
        .iter()
        .filter(|t| t.starts_with("BsfgJetStreamUnhealthy") && !t.contains(&format!("{standby:?}")))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "BsfgJetStreamUnhealthy fired for a healthy host: {elsewhere:?}\n{}",
        w.timeline.join("\n")
    );
    z.start_nats(&standby).unwrap();
    w.note(format!("{standby}: nats-server started again"));
    z.wait_formed(&[&a, &b, &g], SETTLE).await.unwrap();
    until_resolved(z, &mut w, "JetStream alerts resolved", &ok).await;
    rows.push(Row {
        row: "Local JetStream health",
        alert: "BsfgJetStreamUnhealthy",
        fault: format!("{standby}'s nats-server killed (its gate agent's JetStream gate fails)"),
        observed: format!(
            "firing after {took:.0} s for {standby} only; resolved once it runs again"
        ),
    });
    settle(z, &mut w, &ok).await;
    load.stop(Duration::from_secs(5)).await;

    // 6. Replication: the peer appends (one producer); the zone pulls it.
    let pz = peer.plan.zone.clone();
    let ok = allowed(&[LAG, BACKLOG]);
    let peer_load = Load::start(
        &z.runtime(PEER).unwrap(),
        &peer.plan.endpoint,
        &peer.producer,
        &peer.workload,
        Instant::now(),
        &LoadConfig {
            producers: 1,
            ..LoadConfig::new(&format!("mt-peer-{instance}"))
        },
    )
    .unwrap();
    let replicated = format!("increase(bsfg_replicated_facts_total{{peer=\"{pz}\"}}[10s]) > 0");
    until_series(z, &mut w, &[(&replicated, 1)], &ok).await;
    w.note(format!("the zone pulls from {pz}, which appends"));
    // Frames between the peer's switch port and both service hosts dropped:
    // nothing arrives, while the peer keeps storing.
    z.partition(PEER, &[a.as_str(), b.as_str()]).unwrap();
    w.note(format!("{pz} cut off from {a} and {b}"));
    let lag_firing = |act: &[Alert]| {
        act.iter()
            .any(|x| x.name == LAG && x.state == "firing" && x.labels.get("peer") == Some(&pz))
    };
    let lag_took = w
        .until_within(
            z,
            "BsfgReplicationLag firing",
            &ok,
            SETTLE + Duration::from_secs(30),
            lag_firing,
        )
        .await;
    let lag_series = format!("bsfg_replication_lag_seconds{{peer=\"{pz}\"}}");
    let lag_at_firing = value(z, &format!("max({lag_series})"))
        .await
        .unwrap_or(-1.0);
    let total = format!("sum(bsfg_replicated_facts_total{{peer=\"{pz}\"}})");
    let before_heal = value(z, &total).await.unwrap_or(0.0);
    z.heal_partition().unwrap();
    w.note(format!("{pz} reachable again"));
    let lag_resolved = w
        .until(z, "BsfgReplicationLag resolved", &ok, |act| {
            !act.iter().any(|x| x.name == LAG)
        })
        .await;
    // Caught up: the drain of what the peer stored during the cut arrived.
    until_series(
        z,
        &mut w,
        &[(
            &format!("bsfg_replication_backlog{{peer=\"{pz}\"}} == 0 and {lag_series} < 1"),
            1,
        )],
        &ok,
    )
    .await;
    let backlog_peak = value(
        z,
        &format!("max(max_over_time(bsfg_replication_backlog{{peer=\"{pz}\"}}[3m]))"),
    )
    .await
    .unwrap_or(-1.0);
    let drained = value(z, &total).await.unwrap_or(0.0) - before_heal;
    assert!(
        drained > 0.0,
        "nothing replicated after the heal\n{}",
        w.timeline.join("\n")
    );
    peer_load.stop(Duration::from_secs(5)).await;
    let backlog_seen = w.firing_seen.iter().any(|t| t.starts_with(BACKLOG));
    rows.push(Row {
        row: "Cross-zone replication lag",
        alert: LAG,
        fault: format!(
            "{pz} (the peer node, appending) cut off from {a} and {b} at the switch, then healed"
        ),
        observed: format!(
            "firing {lag_took:.0} s after the cut (lag {lag_at_firing:.0} s then); resolved {lag_resolved:.0} s after the heal, \
             {drained:.0} facts replicated after the heal (backlog 0 again); the backlog gauge peaked at {backlog_peak:.0}{} \
             ({BACKLOG} {})",
            if backlog_peak == 0.0 {
                " (the drain took less than a scrape)"
            } else {
                ""
            },
            if backlog_seen { "fired" } else { "not firing: it wants 10,000" }
        ),
    });

    // 7. Controller bound to VIP only: the standby's controller configured
    // to bind a wildcard, with the development flag that allows it (the
    // zone library never renders the flag: on the appliance this takes a
    // hand-edited configuration); a planned handover makes it serve.
    settle(z, &mut w, &allowed(&[])).await;
    let active = serving_host(z).await;
    let standby = if active == a { b.clone() } else { a.clone() };
    let config = z.spec.host(&standby).paths.controller_config.clone();
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, wildcard_listen(&original)).unwrap();
    let ok = allowed(&["BsfgControllerBoundToWildcard"]);
    z.restart_agent(&active).await.unwrap();
    w.note(format!(
        "{standby}: controller configured for 0.0.0.0 (listen.allow_wildcard); {active}'s agent restarted (handover)"
    ));
    z.wait_serving(&standby, SETTLE).await.unwrap();
    let took = until_firing(
        z,
        &mut w,
        &ok,
        "BsfgControllerBoundToWildcard",
        Some(&standby),
    )
    .await;
    std::fs::write(&config, &original).unwrap();
    settle(z, &mut w, &ok).await;
    z.restart_agent(&standby).await.unwrap();
    w.note(format!(
        "{standby}: configuration restored; its agent restarted (handover back)"
    ));
    z.wait_serving(&active, SETTLE).await.unwrap();
    until_resolved(z, &mut w, "wildcard bind resolved", &ok).await;
    rows.push(Row {
        row: "Controller bound to VIP only",
        alert: "BsfgControllerBoundToWildcard",
        fault: format!(
            "{standby}'s controller configured for 0.0.0.0 with listen.allow_wildcard, then serving after a planned handover"
        ),
        observed: format!(
            "firing {took:.0} s after the handover began (no `for:`); resolved when {active} served again"
        ),
    });

    // 8. beta's artifact store 92 % full since before the boot.
    let disk_on = |act: &[Alert]| {
        act.iter().any(|x| {
            x.name == DISK
                && x.state == "firing"
                && x.labels.get("host") == Some(&b)
                && x.labels.get("mountpoint").map(String::as_str) == Some("/artifacts")
        })
    };
    let ok = allowed(&[]);
    w.until_within(
        z,
        "BsfgDiskAlmostFull firing for beta's /artifacts",
        &ok,
        DISK_WITHIN,
        disk_on,
    )
    .await;
    let disk_took = w.at();
    let clock_took = if unsynced_clock {
        w.until_within(
            z,
            "BsfgClockOffset firing on beta",
            &ok,
            DISK_WITHIN,
            |act| firing(act, CLOCK, Some(&b)),
        )
        .await;
        Some(w.at())
    } else {
        None
    };
    small.empty();
    w.note(format!("{b}: filler deleted"));
    let mut resolved_ok: Vec<&str> = lingering();
    resolved_ok.retain(|x| *x != DISK);
    let resolved = w
        .until(z, "BsfgDiskAlmostFull resolved", &ok, |act| {
            settled(act, &resolved_ok)
        })
        .await;
    let disk_hosts: Vec<&String> = w
        .firing_seen
        .iter()
        .filter(|t| t.starts_with(DISK))
        .collect();
    assert_eq!(
        disk_hosts,
        [&format!("{DISK} {:?}", Some(&b))],
        "{DISK} fired elsewhere than on {b}\n{}",
        w.timeline.join("\n")
    );
    rows.push(Row {
        row: "Disk usage (JetStream and artifact storage)",
        alert: DISK,
        fault: format!(
            "{b}'s artifact store a {} MiB tmpfs filled to {} MiB before the boot",
            SmallFilesystem::SIZE_MIB,
            SmallFilesystem::FILL_MIB
        ),
        observed: format!(
            "firing {disk_took:.0} s after Prometheus started (`for: 5m`); resolved {resolved:.0} s after the filler was deleted"
        ),
    });
    rows.push(Row {
        row: "Clock synchronisation",
        alert: CLOCK,
        fault: "this machine's kernel clock unsynchronised (node_timex_sync_status 0; nothing to inject: the hosts share the kernel clock)".into(),
        observed: match clock_took {
            Some(t) => format!("firing on {b} {t:.0} s after Prometheus started (`for: 5m`); pending again on the hosts restarted in phase 4"),
            None => "the kernel clock is synchronised here: not firing (promtool covers the offset)".into(),
        },
    });

    // Role churn follows from the failovers above (not asserted: how many
    // transitions a host makes depends on which host promotes).
    let role_churn: Vec<&String> = w
        .firing_seen
        .iter()
        .filter(|t| t.starts_with("BsfgRoleTransitionChurn"))
        .collect();
    rows.push(Row {
        row: "Keepalived role transition churn (agent roles)",
        alert: "BsfgRoleTransitionChurn",
        fault: "the failovers of phases 3 and 4".into(),
        observed: if role_churn.is_empty() {
            "not firing in this run".into()
        } else {
            format!("firing: {role_churn:?}")
        },
    });
    println!("{}", w.timeline.join("\n"));
    println!("| row | alert | fault | observed |\n|---|---|---|---|");
    for r in &rows {
        println!("| {} | {} | {} | {} |", r.row, r.alert, r.fault, r.observed);
    }
    assert!(
        w.unexpected_firing.is_empty(),
        "alerts fired that the faults do not explain: {:?}\n{}",
        w.unexpected_firing,
        w.timeline.join("\n")
    );
}
