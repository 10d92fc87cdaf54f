//! `bsfgctl backup` and `bsfgctl restore` against real 3-node nats-server
//! clusters: a snapshot of one cluster restored into a second, empty one
//! (every store gone) brings back each message under its original sequence
//! number, the gaps of deleted messages, a durable consumer's cursor and a
//! KV bucket's keys and revisions.

use async_nats::jetstream::{self, consumer, kv, stream};
use bsfg_testkit::nats::NatsCluster;
use futures::StreamExt;
use std::process::Command;

fn bsfgctl(url: &str, args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bsfgctl"))
        .arg("--json")
        .args(args)
        .args(["--nats-url", url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

async fn js(url: &str) -> jetstream::Context {
    jetstream::new(async_nats::connect(url).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_restores_into_an_empty_cluster_with_offsets_cursors_and_kv() {
    let source = NatsCluster::start3().await;
    let url = source.client_url(0);
    let j = js(&url).await;
    let facts = j
        .create_stream(stream::Config {
            name: "facts_operational".into(),
            subjects: vec!["facts.operational.>".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    for i in 1..=300u32 {
        j.publish(
            format!("facts.operational.m{i}"),
            format!("fact {i}").into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    // A gap: restore must not renumber what follows.
    // (Retried: right after the publishes the stream's leader may still be
    // settling, and the API answers "stream not found" meanwhile.)
    let mut tries = 0;
    while let Err(e) = facts.delete_message(150).await {
        tries += 1;
        assert!(tries < 50, "deleting message 150: {e}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let reader = facts
        .create_consumer(consumer::pull::Config {
            durable_name: Some("reader".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    // A fresh consumer on a fresh R3 cluster may answer its first pulls with
    // 503 (no responders) until its leader is elected: pull again.
    let mut acked = 0;
    let mut tries = 0;
    while acked < 100 {
        tries += 1;
        assert!(tries < 100, "acknowledged only {acked} of 100 messages");
        let mut batch = match reader.fetch().max_messages(100 - acked).messages().await {
            Ok(b) => b,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => {
                    m.double_ack().await.unwrap();
                    acked += 1;
                }
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    break;
                }
            }
        }
    }
    // The snapshot takes the consumer's state from its leader's info; wait
    // until that has the acknowledgements (they replicate asynchronously).
    let mut reader = reader;
    let mut tries = 0;
    while reader.info().await.unwrap().ack_floor.stream_sequence < 100 {
        tries += 1;
        assert!(tries < 100, "the consumer's ack floor never reached 100");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cursors = j
        .create_key_value(kv::Config {
            bucket: "bsfg_cursors".into(),
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    cursors.put("reader", "41".into()).await.unwrap();
    cursors.put("reader", "42".into()).await.unwrap();
    let lease = j
        .create_key_value(kv::Config {
            bucket: "bsfg_lease".into(),
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    lease.put("holder", "alpha".into()).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("snapshots");
    let metrics = dir.path().join("bsfg-backup.prom");
    let (code, report, stderr) = bsfgctl(
        &url,
        &[
            "backup",
            "--into",
            into.to_str().unwrap(),
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("verified"), "progress output: {stderr}");
    let snapshot = report["snapshot"].as_str().unwrap().to_owned();
    let names: Vec<&str> = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["KV_bsfg_cursors", "KV_bsfg_lease", "facts_operational"]
    );
    let f = &report["streams"][2];
    assert_eq!(
        (f["messages"].as_u64(), f["last_seq"].as_u64()),
        (Some(299), Some(300))
    );
    assert_eq!(f["consumers"], serde_json::json!(["reader"]));
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(prom.contains("bsfg_backup_last_run_success 1"), "{prom}");
    assert!(
        prom.contains("bsfg_backup_last_success_timestamp_seconds "),
        "{prom}"
    );

    // Facts after the snapshot are not in it.
    j.publish("facts.operational.late", "late".into())
        .await
        .unwrap()
        .await
        .unwrap();

    // Restoring over the live streams refuses and changes nothing.
    let (code, _, stderr) = bsfgctl(&url, &["restore", "--from", &snapshot]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("these streams exist"), "{stderr}");
    assert_eq!(facts.clone().info().await.unwrap().state.last_sequence, 301);

    // A tampered copy does not verify, and nothing is restored from it.
    let tampered = dir.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    for e in std::fs::read_dir(&snapshot).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tampered.join(e.file_name())).unwrap();
    }
    let blob = tampered.join("facts_operational.tar.s2");
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&blob, bytes).unwrap();
    let (code, _, stderr) = bsfgctl(
        &url,
        &[
            "restore",
            "--verify-only",
            "--from",
            tampered.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("does not read back"), "{stderr}");

    // Every store gone: a second, empty cluster.
    let target = NatsCluster::start3().await;
    let turl = target.client_url(1);
    // A just-formed cluster can still answer the JetStream API with "no
    // responders" on the server the restore connects to: restore waits
    // for it (--wait) as an operator would, straight after the rebuild.
    let (code, report, stderr) = bsfgctl(&turl, &["restore", "--from", &snapshot]);
    assert_eq!(code, 0, "{stderr}");
    let restored: Vec<&str> = report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        restored,
        ["KV_bsfg_cursors", "facts_operational"],
        "the lease is left out"
    );

    let t = js(&turl).await;
    let mut rf = t.get_stream("facts_operational").await.unwrap();
    let info = rf.info().await.unwrap();
    assert_eq!(
        (
            info.state.first_sequence,
            info.state.last_sequence,
            info.state.messages
        ),
        (1, 300, 299)
    );
    assert_eq!(info.config.num_replicas, 3);
    for seq in [1u64, 149, 151, 300] {
        let m = rf.get_raw_message(seq).await.unwrap();
        assert_eq!(m.payload, format!("fact {seq}").as_bytes(), "seq {seq}");
    }
    assert!(
        rf.get_raw_message(150).await.is_err(),
        "the deleted message stays deleted"
    );
    let mut rc = rf
        .get_consumer::<consumer::pull::Config>("reader")
        .await
        .unwrap();
    let mut floors = Vec::new();
    for _ in 0..50 {
        let c = rc.info().await.unwrap().clone();
        floors.push((
            c.ack_floor.stream_sequence,
            c.delivered.stream_sequence,
            c.num_ack_pending,
        ));
        if c.ack_floor.stream_sequence == 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        floors.last().map(|f| f.0),
        Some(100),
        "the consumer's cursor: {floors:?}"
    );
    let kv = t.get_key_value("bsfg_cursors").await.unwrap();
    let e = kv.entry("reader").await.unwrap().unwrap();
    assert_eq!((e.value.as_ref(), e.revision), (&b"42"[..], 2));
    assert!(t.get_key_value("bsfg_lease").await.is_err());
    // The restored stream takes appends after its last offset.
    let ack = t
        .publish("facts.operational.next", "next".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 301);
}

/// A nats-server on `port` with JetStream (store under `dir`) or without.
fn server(port: u16, dir: &std::path::Path, jetstream: bool) -> bsfg_testkit::process::Daemon {
    let mut cmd = Command::new(bsfg_testkit::bins::nats_server());
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
    if jetstream {
        cmd.args(["-js", "-sd"]).arg(dir.join("js"));
    }
    bsfg_testkit::process::Daemon::spawn(
        &format!("nats-restore-wait-{port}"),
        cmd,
        &dir.join(format!("nats-{jetstream}.log")),
    )
    .unwrap()
}

/// Restore into a server whose JetStream API does not answer ("no
/// responders", as on a cluster just rebuilt): it waits, says so, and goes
/// on once the API answers; with a short `--wait` it gives up, exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_waits_while_the_jetstream_api_has_no_responders() {
    let source = NatsCluster::start1().await;
    let url = source.client_url(0);
    let j = js(&url).await;
    j.create_stream(stream::Config {
        name: "facts_operational".into(),
        subjects: vec!["facts.operational.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..5 {
        j.publish("facts.operational.x", format!("{i}").into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("snapshots");
    let (code, report, stderr) = bsfgctl(&url, &["backup", "--into", into.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let snapshot = report["snapshot"].as_str().unwrap().to_owned();

    // No JetStream on the target: the API never answers; --wait bounds it.
    let port = bsfg_testkit::ports::free_ports(1)[0];
    let turl = format!("nats://127.0.0.1:{port}");
    let mut plain = server(port, dir.path(), false);
    let mut tries = 0;
    while async_nats::connect(&turl).await.is_err() {
        tries += 1;
        assert!(tries < 50, "the plain server never listened");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let started = std::time::Instant::now();
    let (code, _, stderr) = bsfgctl(&turl, &["restore", "--from", &snapshot, "--wait", "2s"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("does not answer yet (no responders)")
            && stderr.contains("still answers \"no responders\" after 2s (--wait)"),
        "{stderr}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));

    // The default wait; the server comes back with JetStream meanwhile.
    let restore = Command::new(env!("CARGO_BIN_EXE_bsfgctl"))
        .args([
            "--json",
            "restore",
            "--from",
            &snapshot,
            "--nats-url",
            &turl,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    plain.kill();
    let _js = server(port, dir.path(), true);
    let out = tokio::task::spawn_blocking(move || restore.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("no responders"), "{stderr}");
    let restored = js(&turl)
        .await
        .get_stream("facts_operational")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .clone();
    assert_eq!((restored.messages, restored.last_sequence), (5, 5));
}
