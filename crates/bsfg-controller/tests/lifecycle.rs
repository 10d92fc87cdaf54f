//! Start-up gates, exit codes, the lease between two controllers, and shutdown.

use crate::common::*;
use bsfg_mgmt::ServingState;
use bsfg_testkit::controller::{RunningController, loopback_server_identity, test_config};
use bsfg_testkit::nats::NatsCluster;
use bsfg_testkit::pki::TestPki;
use std::process::Command;
use std::time::{Duration, Instant};

fn controller_bin() -> std::path::PathBuf {
    bsfg_testkit::bins::workspace_binary("bsfg-controller")
}

#[test]
fn configuration_errors_exit_78_and_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new("cfg");
    let server = loopback_server_identity(&pki, "x");
    let mut config = test_config(ZONE, "alpha", "nats://127.0.0.1:1", 1, &server, dir.path());
    config.listen.address = "0.0.0.0:9443".parse().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let out = Command::new(controller_bin())
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen.address") && err.contains("wildcard"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // The development flag allows it (checked without starting).
    let out = Command::new(controller_bin())
        .arg("--config")
        .arg(&path)
        .arg("--check-config")
        .env("BSFG_LISTEN__ALLOW_WILDCARD", "true")
        // Other BSFG tools' variables in the same shell are not keys.
        .env("BSFG_CLI_ENDPOINT", "https://10.20.0.100:9443")
        .env("BSFG_REPO", "/src/triad")
        .env("BSFG_ZONESIM_INIT", "systemd")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A misspelt override is still refused, by name.
    let out = Command::new(controller_bin())
        .arg("--config")
        .arg(&path)
        .arg("--check-config")
        .env("BSFG_LISTEN__ALLOW_WILDCARD", "true")
        .env("BSFG_LISTEN__ADRESS", "10.0.0.1:9443")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("adress"));

    // Unknown keys and wrong types name the key.
    let text = toml::to_string(&config)
        .unwrap()
        .replace("[store]", "[store]\nreplikas = 3");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(controller_bin())
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("replikas"));
    let out = Command::new(controller_bin())
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
}

#[tokio::test]
async fn a_host_without_the_service_address_does_not_take_the_lease() {
    let nats = NatsCluster::start1().await;
    let pki = TestPki::new("novip");
    let dir = tempfile::tempdir().unwrap();
    let server = loopback_server_identity(&pki, "x");
    let mut config = test_config(ZONE, "alpha", &nats.client_url(0), 1, &server, dir.path());
    // TEST-NET-2: a documentation address, not assigned to this host.
    config.listen.address = "198.51.100.10:9443".parse().unwrap();
    let mut c = RunningController::spawn(config, dir.path());
    assert_eq!(
        c.wait_exit(Duration::from_secs(30)).await,
        Some(79),
        "{}",
        c.log_tail(20)
    );
    assert!(
        c.log_tail(5)
            .contains("the service address 198.51.100.10 is not on this host"),
        "{}",
        c.log_tail(5)
    );
    // It never took the lease: another controller starts at once, even
    // with a lease TTL far longer than the test.
    let mut ok = test_config(ZONE, "beta", &nats.client_url(0), 1, &server, dir.path());
    ok.lease.ttl = Duration::from_secs(60);
    ok.lease.renew_interval = Duration::from_secs(5);
    ok.lease.safety_margin = Duration::from_secs(10);
    RunningController::start(ok, dir.path()).await;
}

#[tokio::test]
async fn unreachable_jetstream_exits_69() {
    let pki = TestPki::new("nojs");
    let dir = tempfile::tempdir().unwrap();
    let server = loopback_server_identity(&pki, "x");
    let port = bsfg_testkit::ports::free_ports(1)[0];
    let mut config = test_config(
        ZONE,
        "alpha",
        &format!("nats://127.0.0.1:{port}"),
        1,
        &server,
        dir.path(),
    );
    config.nats.connect_timeout = Duration::from_secs(1);
    let mut c = RunningController::spawn(config, dir.path());
    assert_eq!(
        c.wait_exit(Duration::from_secs(30)).await,
        Some(69),
        "{}",
        c.log_tail(20)
    );
}

#[tokio::test]
async fn only_one_controller_holds_the_lease_and_a_clean_stop_hands_it_over() {
    let nats = NatsCluster::start3().await;
    let pki = TestPki::new("lease");
    let dir = tempfile::tempdir().unwrap();
    let server = loopback_server_identity(&pki, "x");
    let alpha = test_config(ZONE, "alpha", &nats.client_url(0), 3, &server, dir.path());
    let beta = test_config(ZONE, "beta", &nats.client_url(1), 3, &server, dir.path());
    let mut a = RunningController::start(alpha, dir.path()).await;

    // Beta cannot take the lease while alpha renews it: it exits 75 and says who holds it.
    let started = Instant::now();
    let mut b = RunningController::spawn(beta.clone(), dir.path());
    assert_eq!(
        b.wait_exit(Duration::from_secs(30)).await,
        Some(75),
        "{}",
        b.log_tail(20)
    );
    assert!(
        b.log_tail(5).contains("lease is held by alpha"),
        "{}",
        b.log_tail(5)
    );
    assert!(
        started.elapsed() >= beta.lease.ttl,
        "it waited at least one TTL for the lease to expire"
    );
    let status = a.status().await.unwrap();
    assert_eq!(status.state, ServingState::Serving);
    assert_eq!(status.lease.unwrap().holder.as_deref(), Some("alpha"));

    // SIGTERM: alpha drains, releases the lease, exits 0; beta starts at once.
    assert_eq!(a.stop().await, Some(0));
    let started = Instant::now();
    let b = RunningController::start(beta.clone(), dir.path()).await;
    let took = started.elapsed();
    assert!(
        took < beta.lease.ttl * 2,
        "a released lease is taken without waiting for expiry ({took:?})"
    );
    let status = b.status().await.unwrap();
    assert_eq!(status.lease.unwrap().holder.as_deref(), Some("beta"));
}

#[tokio::test]
async fn a_frozen_holder_fences_itself_before_another_takes_over() {
    let nats = NatsCluster::start3().await;
    let pki = TestPki::new("freeze");
    let dir = tempfile::tempdir().unwrap();
    let server = loopback_server_identity(&pki, "x");
    let producer = pki.client("mes-producer").tls_files();
    let alpha = test_config(ZONE, "alpha", &nats.client_url(0), 3, &server, dir.path());
    let beta = test_config(ZONE, "beta", &nats.client_url(1), 3, &server, dir.path());
    let a = RunningController::start(alpha, dir.path()).await;

    a.daemon().freeze();
    let frozen_at = Instant::now();
    // Beta may take the lease only after alpha's TTL has run out unrenewed.
    let b = RunningController::start(beta.clone(), dir.path()).await;
    assert!(
        frozen_at.elapsed() >= beta.lease.ttl,
        "took over after {:?}",
        frozen_at.elapsed()
    );
    let mut to_b = bsfg_client::connect_grpc(&b.endpoint(), &producer).unwrap();
    to_b.append_fact(append_req("operational", fact("via-beta", "order:1", "{}")))
        .await
        .unwrap();

    // Alpha wakes up: it must not serve, and it exits 79 (fenced) naming
    // who took the lease, instead of waiting to take it back.
    a.daemon().thaw();
    let mut to_a = bsfg_client::connect_grpc(&a.endpoint(), &producer).unwrap();
    let err = to_a
        .append_fact(append_req(
            "operational",
            fact("via-alpha", "order:1", "{}"),
        ))
        .await
        .unwrap_err();
    // Refused by the fence (not_serving), or cut off by a process that is
    // already leaving (a transport error): either way never stored, which
    // beta proves by storing that id as new.
    {
        use tonic_types::StatusExt;
        match err.get_details_error_info() {
            Some(info) => assert_eq!(info.reason, "not_serving", "{err:?}"),
            None => assert!(
                std::error::Error::source(&err).is_some(),
                "neither the fence's refusal nor a transport error: {err:?}"
            ),
        }
    }
    let stored = to_b
        .append_fact(append_req(
            "operational",
            fact("via-alpha", "order:1", "{}"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!stored.duplicate, "alpha stored a fact while fenced");
    let mut a = a;
    assert_eq!(
        a.wait_exit(Duration::from_secs(30)).await,
        Some(79),
        "{}",
        a.log_tail(20)
    );
    assert!(
        a.log_tail(10)
            .contains("another controller (beta) took the zone lease"),
        "{}",
        a.log_tail(10)
    );
    assert_eq!(
        b.status()
            .await
            .and_then(|s| s.lease)
            .and_then(|l| l.holder)
            .as_deref(),
        Some("beta")
    );
    assert!(b.is_ready().await, "the new holder keeps serving");
}

#[tokio::test]
async fn sigterm_drains_in_flight_appends_without_half_writes() {
    let mut zone = Zone::start3().await;
    let client = zone.grpc(&zone.producer);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (mut c, acked) = (client.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..1000 {
                let id = format!("d{w}-{n}");
                match c
                    .append_fact(append_req("operational", fact(&id, "order:1", "{}")))
                    .await
                {
                    Ok(_) => acked.lock().unwrap().push(id),
                    Err(e) => return (n, e.code()),
                }
            }
            (1000, tonic::Code::Ok)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        zone.controller.stop().await,
        Some(0),
        "{}",
        zone.controller.log_tail(20)
    );
    for t in tasks {
        let (_, code) = t.await.unwrap();
        assert!(
            matches!(
                code,
                tonic::Code::Unavailable
                    | tonic::Code::Ok
                    | tonic::Code::Unknown
                    | tonic::Code::Cancelled
            ),
            "{code:?}"
        );
    }
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    // Every acknowledged append is stored; nothing else half-exists.
    let config = zone.controller.config.clone();
    zone.controller = RunningController::start(config, zone.dir.path()).await;
    let mut reader = zone.grpc(&zone.reader);
    let stored = drain(&mut reader, "all-ops").await;
    assert!(
        acked.iter().all(|id| stored.contains_key(id)),
        "an acknowledged append is missing"
    );
    // Unacknowledged ones may or may not have landed (the ack can be lost in flight); at most one per worker.
    assert!(
        stored.len() <= acked.len() + 16,
        "{} stored, {} acked",
        stored.len(),
        acked.len()
    );
}
