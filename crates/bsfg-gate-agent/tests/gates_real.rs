//! Probes and gates against the real thing: a 3-node nats-server cluster,
//! bsfg-pki certificates, a tmpfs mount, an address on an interface in a
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

/// The voters current the agent exports (`bsfg_jetstream_voters_current`):
/// the meta leader sees all three, then two once a follower dies (the gate
/// still passes: quorum), while a follower sees itself and the leader only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_meta_leader_counts_a_dead_voter_out_and_the_gate_still_passes() {
    use gates::quorum::{VotersSeen, voters_seen};
    let mut cluster = NatsCluster::start3().await;
    let monitors: Vec<NatsMonitor> = (0..3)
        .map(|i| NatsMonitor::new(cluster.monitor_addr(i), TIMEOUT))
        .collect();
    let leader = bsfg_testkit::eventually(
        "the meta leader to see all three voters current",
        Duration::from_secs(30),
        || async {
            for (i, m) in monitors.iter().enumerate() {
                let seen = voters_seen(&m.quorum().await);
                if seen
                    == Some(VotersSeen {
                        current: 3,
                        is_leader: true,
                    })
                {
                    return Some(i);
                }
            }
            None
        },
    )
    .await;
    let follower = (leader + 1) % 3;
    let dead = (leader + 2) % 3;
    let seen = voters_seen(&monitors[follower].quorum().await).expect("the follower's /jsz");
    assert!(!seen.is_leader && seen.current <= 2, "{seen:?}");
    cluster.kill(dead);
    let seen = bsfg_testkit::eventually(
        "the leader to count the killed voter out",
        Duration::from_secs(30),
        || async {
            let q = monitors[leader].quorum().await;
            voters_seen(&q).filter(|v| v.current == 2).map(|v| (v, q))
        },
    )
    .await;
    assert!(seen.0.is_leader, "{seen:?}");
    let gate = gates::quorum::evaluate(3, &seen.1);
    assert!(gate.passes(), "2 of 3 is still quorum: {gate:?}");
    assert_eq!(voters_seen(&Err("connection refused".into())), None);
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

/// keepalived's check holds no NATS credential: it reads the client port's
/// greeting and hangs up, so a server that requires a login (every zone
/// host) logs nothing, where a login attempt without credentials is logged
/// as an error each time (once a second, as long as the zone runs).
#[tokio::test]
async fn check_never_logs_in_so_the_server_logs_no_authentication_error() {
    let user = bsfg_testkit::nats::SystemUser::generate();
    let cluster = NatsCluster::start(bsfg_testkit::nats::NatsOptions {
        nodes: 1,
        extra_config: format!(
            "authorization {{ users = [ {{ user: \"bsfg-gate-agent\", password: \"{}\" }} ] }}\n",
            user.password_hash
        ),
        ..Default::default()
    })
    .await;
    let mut config = from_toml(&agent_config(
        &cluster.client_url(0),
        &cluster.monitor_addr(0),
    ))
    .unwrap();
    let _agent = serve_agent_endpoint(&mut config).await;
    for _ in 0..3 {
        let checked = bsfg_gate_agent::check::run(&config).await;
        assert!(checked.is_ok(), "{checked:?}");
    }
    let errors = |log: String| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains("[ERR]"))
            .map(str::to_owned)
            .collect()
    };
    let quiet = errors(cluster.log_tail(0, 500));
    assert!(quiet.is_empty(), "the check made the server log: {quiet:?}");

    // The control: a client without credentials is refused and logged.
    let refused = async_nats::ConnectOptions::new()
        .connection_timeout(TIMEOUT)
        .connect(cluster.client_url(0))
        .await;
    assert!(refused.is_err());
    let logged = bsfg_testkit::eventually(
        "the refused login to be logged",
        Duration::from_secs(5),
        || async {
            let e = errors(cluster.log_tail(0, 500));
            e.iter()
                .any(|l| l.contains("authentication error"))
                .then_some(e)
        },
    )
    .await;
    assert!(!logged.is_empty());

    // Not a NATS server on the client URL (the monitoring port answers
    // HTTP): the check fails and says so.
    let mut wrong = config.clone();
    wrong.nats.url = format!("nats://{}", cluster.monitor_addr(0));
    let reason = bsfg_gate_agent::check::run(&wrong).await.unwrap_err();
    assert!(
        reason.contains("NATS client protocol not answering"),
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
        Usage::ServerAndClient,
        &[],
        now - time::Duration::days(1),
        now + time::Duration::days(10),
    );
    let long = pki.issue("alpha-controller", Usage::ServerAndClient, &[], 400);
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
fn a_ca_or_intermediate_below_the_threshold_closes_the_gate_while_the_leaf_is_fine() {
    let now = time::OffsetDateTime::now_utc();
    let thirty_days = Duration::from_secs(30 * 86400);
    let gate = |leaf: &std::path::Path, trust: &[std::path::PathBuf], policy| {
        gates::certificate::evaluate_chain(
            bsfg_core::clock::unix_seconds(),
            thirty_days,
            policy,
            &probes::certificate::observe_chain(leaf, trust),
        )
    };

    // The zone CA expires in 10 days; the leaf it signed is good for 400.
    let dying = TestPki::with_ca_expiring("dying", now + time::Duration::days(10));
    let leaf = dying.issue("alpha-controller", Usage::ServerAndClient, &[], 400);
    let alone = gate(&leaf.certificate, &[], CertificatePolicy::Deny);
    assert_eq!(
        alone.verdict,
        Verdict::Pass,
        "the leaf alone is fine: {}",
        alone.reason
    );
    let trust = [leaf.ca.clone()];
    let denied = gate(&leaf.certificate, &trust, CertificatePolicy::Deny);
    assert_eq!(denied.verdict, Verdict::Fail, "{}", denied.reason);
    // 9d 23h or 10d 0h: X.509 times have whole seconds.
    let prefix = format!("CA CN=dying test CA ({}) expires in ", leaf.ca.display());
    assert!(
        denied.reason.starts_with(&prefix)
            && denied.reason.ends_with(", below the 30d 0h threshold"),
        "{}",
        denied.reason
    );
    let warned = gate(&leaf.certificate, &trust, CertificatePolicy::Warn);
    assert_eq!(warned.verdict, Verdict::Warn, "{}", warned.reason);
    assert_eq!(warned.reason, format!("{} (policy warn)", denied.reason));

    // A long-lived root, an intermediate that expired yesterday in the
    // leaf's chain file: fails under either policy, naming it.
    let root = TestPki::new("root");
    let issuing = root.intermediate("site", now - time::Duration::days(1));
    let leaf = issuing.issue("alpha-controller", Usage::ServerAndClient, &[], 400);
    let trust = [leaf.ca.clone()];
    for policy in [CertificatePolicy::Deny, CertificatePolicy::Warn] {
        let r = gate(&leaf.certificate, &trust, policy);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
        assert!(
            r.reason.starts_with(&format!(
                "intermediate CN=site intermediate CA ({}) expired ",
                leaf.certificate.display()
            )),
            "{}",
            r.reason
        );
    }

    // Everything long-lived: passes, naming the shortest-lived CA.
    let issuing = root.intermediate("site", now + time::Duration::days(1000));
    let leaf = issuing.issue("alpha-controller", Usage::ServerAndClient, &[], 400);
    let fine = gate(
        &leaf.certificate,
        std::slice::from_ref(&leaf.ca),
        CertificatePolicy::Deny,
    );
    assert_eq!(fine.verdict, Verdict::Pass, "{}", fine.reason);
    assert!(
        fine.reason
            .contains("; intermediate CN=site intermediate CA valid for "),
        "{}",
        fine.reason
    );

    // A CA rollover in progress: the bundle holds the dying CA and the
    // root the leaf chains to. The dying one warns, it does not gate.
    let bundle = root.dir().join("rollover-ca.pem");
    let both = format!(
        "{}{}",
        std::fs::read_to_string(dying.ca_path()).unwrap(),
        std::fs::read_to_string(root.ca_path()).unwrap()
    );
    std::fs::write(&bundle, both).unwrap();
    let r = gate(
        &leaf.certificate,
        std::slice::from_ref(&bundle),
        CertificatePolicy::Deny,
    );
    assert_eq!(r.verdict, Verdict::Warn, "{}", r.reason);
    assert!(
        r.reason.starts_with(&format!(
            "CA CN=dying test CA ({}) expires in ",
            bundle.display()
        )) && r.reason.contains("does not gate"),
        "{}",
        r.reason
    );

    // The metrics carry every CA's expiry, labelled, next to the leaf's.
    let m = bsfg_gate_agent::status::Metrics::new();
    m.set_chain_expiry(&probes::certificate::observe_chain(
        &leaf.certificate,
        std::slice::from_ref(&leaf.ca),
    ));
    let text = m.encode();
    for (role, subject) in [
        ("intermediate", "CN=site intermediate CA"),
        ("CA", "CN=root test CA"),
    ] {
        assert!(
            text.lines().any(
                |l| l.starts_with("bsfg_ca_certificate_expiry_timestamp_seconds{")
                    && l.contains(&format!("role=\"{role}\""))
                    && l.contains(&format!("subject=\"{subject}\""))
            ),
            "{role} {subject} missing:\n{text}"
        );
    }
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
