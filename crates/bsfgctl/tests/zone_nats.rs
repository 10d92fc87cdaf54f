//! `zone status` and `commission` against a real 3-node nats-server cluster
//! and the real controller on loopback, with gate agents absent (their
//! addresses closed): the JetStream items are decided from real `/varz` and
//! `/jsz` output and pass; everything that needs an agent fails and is named.
//! (The whole zone, agents and keepalived included, is exercised against
//! the zone simulator in tests/simulator.rs.)

use crate::support::verdict;
use bsfg_testkit::controller::{RunningController, loopback_server_identity, test_config};
use bsfg_testkit::nats::NatsCluster;
use bsfg_testkit::pki::TestPki;
use bsfgctl::commission::checklist::Verdict;
use std::process::Command;

fn zone_file(nats: &NatsCluster, c: &RunningController, closed: &[u16]) -> serde_json::Value {
    let host = |i: usize, role: &str| {
        let service = role != "gamma";
        serde_json::json!({
            "role": role, "address": "127.0.0.1", "managementAddress": "127.0.0.1",
            "natsMonitor": nats.monitor_addr(i),
            "agent": service.then(|| format!("127.0.0.1:{}", closed[i])),
            "controllerManagement": match role { "alpha" => Some(c.mgmt_addr()), "beta" => Some(format!("127.0.0.1:{}", closed[2])), _ => None },
            "mounts": [], "keepalived": null,
        })
    };
    serde_json::json!({
        "zone": "plant-a", "endpoint": c.endpoint(), "vip": "127.0.0.1",
        "coordinationNetwork": "127.0.0.0/8", "managementNetwork": "127.0.0.0/8",
        "certificatePolicy": {"minValidity": "30d", "policy": "deny"},
        "voters": 3, "replicas": 3,
        "hosts": {
            nats.node_name(0): host(0, "alpha"),
            nats.node_name(1): host(1, "beta"),
            nats.node_name(2): host(2, "gamma"),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_items_pass_on_a_real_cluster_and_missing_agents_are_named() {
    let nats = NatsCluster::start3().await;
    let pki = TestPki::new("plant-a");
    let dir = tempfile::tempdir().unwrap();
    let server = loopback_server_identity(&pki, "plant-a-bsfg");
    let config = test_config(
        "plant-a",
        nats.node_name(0),
        &nats.client_url(0),
        3,
        &server,
        dir.path(),
    );
    let controller = RunningController::start(config, dir.path()).await;
    let closed = bsfg_testkit::ports::free_ports(3);
    let zf = dir.path().join("zone.json");
    std::fs::write(&zf, zone_file(&nats, &controller, &closed).to_string()).unwrap();
    let producer = pki.client("mes-producer").tls_files();

    let bsfgctl = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bsfgctl"));
        c.env("HOME", dir.path()).env_remove("BSFG_CLI_CONFIG");
        c.args(args).arg("--zone-file").arg(&zf);
        c.arg("--cert")
            .arg(&producer.certificate)
            .arg("--key")
            .arg(&producer.private_key)
            .arg("--ca")
            .arg(&producer.ca);
        let out = c.output().unwrap();
        eprintln!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };

    // Streams are created by the controller at start; R3 means all replicas current soon after.
    let mut report = serde_json::Value::Null;
    for _ in 0..100 {
        let out = bsfgctl(&["commission", "--json", "--no-round-trip"]);
        assert_eq!(out.status.code(), Some(1), "agents are missing: a failure");
        report = serde_json::from_slice(&out.stdout).unwrap();
        if ["jetstream-voters", "jetstream-quorum", "streams-r3"]
            .iter()
            .all(|id| verdict(&report, id) == Verdict::Pass)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let item = |id: &str| {
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()
            .clone()
    };
    for id in [
        "jetstream-voters",
        "jetstream-quorum",
        "streams-r3",
        "clock-offset",
        "controller-bound-to-vip",
    ] {
        assert_eq!(verdict(&report, id), Verdict::Pass, "{id}: {}", item(id));
    }
    let streams = item("streams-r3")["evidence"].to_string();
    assert!(streams.contains("facts_operational: R3"), "{streams}");
    assert!(streams.contains("KV_bsfg_lease: R3"), "{streams}");
    // The certificate served on the VIP was checked with the identity given.
    assert!(
        item("certificates")["evidence"]
            .to_string()
            .contains("VIP serves CN=plant-a-bsfg"),
        "{}",
        item("certificates")
    );
    for id in ["hosts-reachable", "vip-single-holder", "keepalived-unicast"] {
        assert_eq!(verdict(&report, id), Verdict::Fail, "{id}: {}", item(id));
    }
    assert!(
        item("hosts-reachable")["evidence"][0]
            .as_str()
            .unwrap()
            .contains("gate agent"),
        "{}",
        item("hosts-reachable")
    );
    assert_eq!(verdict(&report, "round-trip"), Verdict::Skipped);

    // zone status: JetStream columns from the real servers; the missing agents are problems.
    let out = bsfgctl(&["zone", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("meta leader n"), "{text}");
    assert!(
        text.contains(&format!("{} unreachable: gate agent", nats.node_name(0))),
        "{text}"
    );
    let out = bsfgctl(&["zone", "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hosts"].as_array().unwrap().len(), 3);
    let leader = v["meta_leader"].as_str().unwrap();
    let row = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == leader)
        .unwrap();
    assert_eq!(row["current_voters"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(row["jetstream"], "leader");
    assert_eq!(v["hosts"][0]["controller"], "serving", "{}", v["hosts"][0]);
}
