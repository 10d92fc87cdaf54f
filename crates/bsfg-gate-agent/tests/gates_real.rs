//! Probes and gates against the real thing: a 3-node nats-server cluster,
//! rcgen certificates, a tmpfs mount, an address on an interface in a
//! network namespace. No mocks.

use crate::support::{Tmpfs, in_netns, wait_for};
use bsfg_gate_agent::config::{CertificatePolicy, from_toml};
use bsfg_gate_agent::gates;
use bsfg_gate_agent::probes;
use bsfg_gate_agent::probes::nats::{NatsMonitor, jetstream_facts};
use bsfg_mgmt::Verdict;
use bsfg_store::Substrate;
use bsfg_testkit::nats::NatsCluster;
use bsfg_testkit::netns::Netns;
use bsfg_testkit::pki::{TestPki, Usage};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

async fn quorum_gate(monitor: &NatsMonitor) -> gates::GateResult {
    gates::quorum::evaluate(3, &monitor.quorum().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_gate_fails_with_two_nodes_killed_and_passes_after_restart() {
    let mut cluster = NatsCluster::start3().await;
    let monitor = NatsMonitor::new(cluster.monitor_addr(0), TIMEOUT);
    let client = Substrate::connect_url(&cluster.client_url(0), 3)
        .await
        .expect("connect to node 0");
    // Right after start a follower may still be catching up: 2 of 3 is quorum.
    let r = quorum_gate(&monitor).await;
    assert_eq!(r.verdict, Verdict::Pass, "{r:?}");

    cluster.kill(1);
    cluster.kill(2);
    let failed = bsfg_testkit::eventually(
        "the quorum gate to fail",
        Duration::from_secs(30),
        || async {
            let r = quorum_gate(&monitor).await;
            (!r.passes()).then_some(r)
        },
    )
    .await;
    assert!(
        failed.reason.contains("voters current") || failed.reason.contains("no meta leader"),
        "the reason says what is missing: {}",
        failed.reason
    );

    // Gate 2 (and so keepalived's check) stays local: node 0's JetStream
    // still answers, quorum or not.
    let js = gates::jetstream::evaluate(
        &jetstream_facts(&monitor, Some(client.client()), TIMEOUT).await,
    );
    assert!(js.passes(), "{js:?}");
    let mut config = from_toml(&agent_config(
        &cluster.client_url(0),
        &cluster.monitor_addr(0),
    ))
    .unwrap();
    let _agent = serve_agent_endpoint(&mut config).await;
    let checked = bsfg_gate_agent::check::run(&config).await;
    assert!(checked.is_ok(), "{checked:?}");

    cluster.restart(1).await;
    cluster.restart(2).await;
    let passed = bsfg_testkit::eventually(
        "the quorum gate to pass again",
        Duration::from_secs(60),
        || async {
            let r = quorum_gate(&monitor).await;
            r.passes().then_some(r)
        },
    )
    .await;
    assert!(passed.reason.starts_with("leader "), "{}", passed.reason);
}

/// The daemon's real management endpoint, served on a free loopback port
/// that becomes `management.address`: what keepalived's check asks.
async fn serve_agent_endpoint(
    config: &mut bsfg_gate_agent::config::AgentConfig,
) -> tokio::task::JoinHandle<()> {
    use bsfg_gate_agent::daemon::management;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    config.management.address = listener.local_addr().unwrap();
    let app = management::router(management::Shared {
        config: std::sync::Arc::new(config.clone()),
        status: Default::default(),
        metrics: Default::default(),
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

#[tokio::test]
async fn check_fails_when_the_local_server_is_gone() {
    let mut cluster = NatsCluster::start1().await;
    let mut config = from_toml(&agent_config(
        &cluster.client_url(0),
        &cluster.monitor_addr(0),
    ))
    .unwrap();
    let _agent = serve_agent_endpoint(&mut config).await;
    assert!(bsfg_gate_agent::check::run(&config).await.is_ok());
    cluster.kill(0);
    let reason = bsfg_gate_agent::check::run(&config).await.unwrap_err();
    assert!(
        reason.contains("monitoring endpoint unreachable"),
        "{reason}"
    );
}

/// Without a live agent daemon the host must not bid for (or keep) the VIP.
#[tokio::test]
async fn check_fails_while_the_agent_daemon_does_not_answer() {
    let cluster = NatsCluster::start1().await;
    let mut config = from_toml(&agent_config(
        &cluster.client_url(0),
        &cluster.monitor_addr(0),
    ))
    .unwrap();
    let agent = serve_agent_endpoint(&mut config).await;
    assert!(bsfg_gate_agent::check::run(&config).await.is_ok());
    agent.abort();
    let _ = agent.await;
    let reason = bsfg_gate_agent::check::run(&config).await.unwrap_err();
    assert!(
        reason.contains("gate agent daemon does not answer")
            && reason.contains(&config.management.address.to_string()),
        "{reason}"
    );
}

fn agent_config(nats_url: &str, monitor: &str) -> String {
    format!(
        r#"zone = "z"
host = "alpha"
[vip]
address = "10.77.0.100"
[nats]
url = "{nats_url}"
monitor_url = "http://{monitor}"
[artifacts]
dir = "/artifacts"
[certificate]
path = "/nonexistent/cert.pem"
[controller]
supervisor = "systemd"
"#
    )
}

#[test]
fn certificate_below_threshold_is_denied_under_deny_and_warned_under_warn() {
    let pki = TestPki::new("agent");
    let now = time::OffsetDateTime::now_utc();
    let short = pki.issue_window(
        "alpha-controller",
        Usage::Both,
        &[],
        now - time::Duration::days(1),
        now + time::Duration::days(10),
    );
    let long = pki.issue("alpha-controller", Usage::Both, &[], 400);
    let thirty_days = Duration::from_secs(30 * 86400);
    let gate = |path: &std::path::Path, policy| {
        gates::certificate::evaluate(
            bsfg_core::clock::unix_seconds(),
            thirty_days,
            policy,
            &probes::certificate::observe(path),
        )
    };

    let denied = gate(&short.certificate, CertificatePolicy::Deny);
    assert_eq!(denied.verdict, Verdict::Fail);
    assert!(
        denied.reason.contains("CN=alpha-controller expires in ")
            && denied.reason.contains("below the 30d"),
        "{}",
        denied.reason
    );
    let warned = gate(&short.certificate, CertificatePolicy::Warn);
    assert_eq!(warned.verdict, Verdict::Warn, "{}", warned.reason);
    assert!(warned.passes());

    let fine = gate(&long.certificate, CertificatePolicy::Deny);
    assert_eq!(fine.verdict, Verdict::Pass, "{}", fine.reason);

    let expired = pki.expired_client("alpha-controller");
    assert_eq!(
        gate(&expired.certificate, CertificatePolicy::Warn).verdict,
        Verdict::Fail
    );
    // A key is not a certificate.
    let wrong = gate(&long.private_key, CertificatePolicy::Deny);
    assert_eq!(wrong.verdict, Verdict::Fail);
}

#[test]
fn artifact_gate_follows_a_real_tmpfs_mount() {
    bsfg_testkit::require_root("mounting a tmpfs");
    let dir = tempfile::Builder::new()
        .prefix("bsfg-agent-artifacts-")
        .tempdir()
        .unwrap();
    let mut mount = Tmpfs::at(&dir.path().join("artifacts"));
    let gate = |m: &Tmpfs| gates::artifacts::evaluate(true, &probes::artifacts::observe(m.path()));

    let r = gate(&mount);
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(r.reason.ends_with("is not a mount point"), "{}", r.reason);

    mount.mount();
    let r = gate(&mount);
    assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
    assert!(r.reason.ends_with("mounted and writable"));
    // The write probe leaves nothing behind.
    assert_eq!(std::fs::read_dir(mount.path()).unwrap().count(), 0);

    mount.remount_read_only();
    let r = gate(&mount);
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(r.reason.contains("not writable"), "{}", r.reason);

    mount.unmount();
    assert!(!gate(&mount).passes());
}

#[test]
fn vip_gate_sees_an_address_added_and_removed_in_a_namespace() {
    let ns = Netns::new("gv");
    // A veth pair inside the namespace: works where the dummy module is absent.
    ns.ip(&[
        "link", "add", "vip0", "type", "veth", "peer", "name", "vip1",
    ]);
    ns.ip(&["link", "set", "vip0", "up"]);
    ns.ip(&["link", "set", "vip1", "up"]);
    let vip: std::net::IpAddr = "10.77.0.100".parse().unwrap();
    let gate = |ns: &str| {
        in_netns(ns, move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let mut probe = probes::vip::VipProbe::default();
                    // This test is about netlink; keepalived is covered in tests/keepalived.rs.
                    let keepalived =
                        gates::vip::KeepalivedFacts::Unknown("no keepalived here".into());
                    gates::vip::evaluate(vip, &probe.addresses().await, &keepalived)
                })
        })
    };

    let r = gate(ns.name());
    assert_eq!(r.verdict, Verdict::Fail);
    assert_eq!(r.reason, "10.77.0.100 is not on any local interface");

    ns.ip(&["addr", "add", "10.77.0.100/32", "dev", "vip0"]);
    let r = wait_for(
        "the VIP gate to pass",
        Duration::from_secs(10),
        || Some(gate(ns.name())).filter(|r| r.passes()),
        String::new,
    );
    assert_eq!(r.reason, "10.77.0.100 on vip0");

    ns.ip(&["addr", "del", "10.77.0.100/32", "dev", "vip0"]);
    assert!(!gate(ns.name()).passes());
}
