//! End to end: `bsfg-gate-agent run` supervising the real `bsfg-controller`
//! (process supervisor) inside a namespace zone with a real 3-node
//! JetStream cluster. The VIP is added and removed by hand here (keepalived
//! is in `keepalived.rs`), which also lets a test give both hosts the VIP at
//! once, as a one-way VRRP loss would.
//!
//! Needs root (namespaces, tmpfs) and the workspace binaries
//! (`cargo build --workspace --bins`); fails, never skips, without them.

use crate::support::{Agent, AgentSetup, Zone, wait_for};
use bsfg_mgmt::{AgentStatus, GateId, ProcessState, Role, Verdict, VrrpState};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn role_is(agent: &Agent, role: Role) -> Option<AgentStatus> {
    agent.status().filter(|s| s.role == role)
}

#[test]
fn agent_promotes_when_the_vip_appears_and_demotes_when_it_goes() {
    let zone = Zone::start();
    let mut alpha = Agent::prepare(&zone, "alpha", &AgentSetup::default());
    alpha.artifacts.mount();
    alpha.start(&zone);

    // No VIP: standby, every other gate evaluated all the same.
    let s = wait_for(
        "alpha standby with its health gates passing",
        LONG,
        || {
            alpha.status().filter(|s| {
                s.role == Role::Standby && s.gate(GateId::Quorum).unwrap().verdict == Verdict::Pass
            })
        },
        || alpha.logs(),
    );
    assert_eq!(s.gate(GateId::Vip).unwrap().verdict, Verdict::Fail);
    assert!(
        s.blocker
            .as_deref()
            .unwrap_or("")
            .starts_with("waiting for the VIP"),
        "{s:?}"
    );
    assert!(!alpha.controller_running(), "no controller without the VIP");
    assert_eq!(alpha.track_value().as_deref(), Some("0"));

    zone.host("alpha").add_vip();
    let s = wait_for(
        "alpha active",
        LONG,
        || role_is(&alpha, Role::Active),
        || alpha.logs(),
    );
    assert!(alpha.controller_ready());
    assert_eq!(s.lease.holder.as_deref(), Some("alpha"));
    assert!(s.controller.ready);
    for gate in &s.gates {
        assert_ne!(gate.verdict, Verdict::Fail, "{gate:?}");
    }
    let table = alpha.status_table();
    assert!(table.contains("role        active"), "{table}");
    assert!(table.contains("lease       holder alpha"), "{table}");

    zone.host("alpha").del_vip();
    let s = wait_for(
        "alpha back to standby with the controller stopped",
        LONG,
        || {
            alpha.status().filter(|s| {
                s.role == Role::Standby && s.controller.process == ProcessState::Stopped
            })
        },
        || alpha.logs(),
    );
    assert!(!alpha.controller_running());
    // Losing the VIP is keepalived's decision, not a health problem: no FAULT.
    assert_eq!(alpha.track_value().as_deref(), Some("0"));
    // Whoever noticed first: the agent stopped the controller, or the
    // controller (which follows the VIP) fenced itself and exited 79; both
    // at once is the agent's reason with the controller's 79 (it saw the VIP
    // go before the agent's SIGTERM arrived). Never a crash, never a FAULT.
    let exit = s.controller.last_exit.as_deref().unwrap_or("");
    let fenced = exit.starts_with("exited with code 79");
    assert!(
        (s.role_reason.starts_with("VIP lost")
            && (exit == "exited with code 0 (clean stop)" || fenced))
            || (s.role_reason.contains("exited 79") && fenced),
        "{} / {exit}",
        s.role_reason
    );
    assert!(s.transitions_total >= 3);

    // The agent stopping releases the VIP through the track file.
    assert_eq!(alpha.stop(), Some(0));
    assert_eq!(alpha.track_value().as_deref(), Some("1"));
}

#[test]
fn promotion_is_denied_without_the_artifact_mount_and_follows_the_certificate_policy() {
    let zone = Zone::start();
    let mut alpha = Agent::prepare(
        &zone,
        "alpha",
        &AgentSetup {
            certificate_days: 10,
            policy: "deny",
            ..Default::default()
        },
    );
    let mut beta = Agent::prepare(
        &zone,
        "beta",
        &AgentSetup {
            certificate_days: 10,
            policy: "warn",
            ..Default::default()
        },
    );
    // Alpha holds the VIP, but its artifact storage is not mounted.
    zone.host("alpha").add_vip();
    alpha.start(&zone);
    let s = wait_for(
        "alpha's promotion denied",
        LONG,
        || role_is(&alpha, Role::Demoted),
        || alpha.logs(),
    );
    assert!(
        s.role_reason.starts_with("promotion denied: ")
            && s.role_reason.contains("is not a mount point"),
        "{}",
        s.role_reason
    );
    assert_eq!(
        alpha.track_value().as_deref(),
        Some("1"),
        "denied and VIP given away"
    );
    assert!(!alpha.controller_running());

    // Mounted now: the artifact gate passes, but the certificate (10 days
    // left, policy deny) still denies promotion.
    alpha.artifacts.mount();
    let s = wait_for(
        "alpha's artifact gate to pass",
        LONG,
        || {
            alpha
                .status()
                .filter(|s| s.gate(GateId::Artifacts).unwrap().verdict == Verdict::Pass)
        },
        || alpha.logs(),
    );
    assert_eq!(s.role, Role::Demoted);
    let cert = s.gate(GateId::Certificate).unwrap();
    assert_eq!(cert.verdict, Verdict::Fail);
    assert!(cert.reason.contains("below the 30d"), "{}", cert.reason);
    assert!(!alpha.controller_running());

    // Beta has the same short certificate under policy warn: it promotes,
    // with the warning visible.
    beta.artifacts.mount();
    zone.host("alpha").del_vip();
    zone.host("beta").add_vip();
    beta.start(&zone);
    let s = wait_for(
        "beta active despite the short certificate",
        LONG,
        || role_is(&beta, Role::Active),
        || beta.logs(),
    );
    assert_eq!(s.gate(GateId::Certificate).unwrap().verdict, Verdict::Warn);
    assert!(
        s.role_reason.contains("warning: certificate"),
        "{}",
        s.role_reason
    );
    assert!(beta.controller_ready());
    assert!(!alpha.controller_running());
}

#[test]
fn two_agents_holding_the_vip_leave_exactly_one_controller_serving() {
    let zone = Zone::start();
    let mut alpha = Agent::prepare(&zone, "alpha", &AgentSetup::default());
    let mut beta = Agent::prepare(&zone, "beta", &AgentSetup::default());
    alpha.artifacts.mount();
    beta.artifacts.mount();
    alpha.start(&zone);
    beta.start(&zone);
    // Both hosts hold the VIP, as after a one-way loss of VRRP adverts.
    zone.host("alpha").add_vip();
    zone.host("beta").add_vip();

    let (active, standby) = wait_for(
        "one agent active",
        LONG,
        || {
            let a = alpha.status()?;
            let b = beta.status()?;
            match (a.role, b.role) {
                (Role::Active, _) => Some((&alpha, &beta)),
                (_, Role::Active) => Some((&beta, &alpha)),
                _ => None,
            }
        },
        || format!("{}\n{}", alpha.logs(), beta.logs()),
    );
    // The other refuses and says why, naming the holder.
    let refused = wait_for(
        "the other agent to report the lease holder",
        LONG,
        || {
            standby.status().filter(|s| {
                s.role != Role::Active
                    && s.gate(GateId::Lease)
                        .unwrap()
                        .reason
                        .starts_with(&format!("lease held by {}", active.host))
            })
        },
        || standby.logs(),
    );
    assert_eq!(refused.lease.holder.as_deref(), Some(active.host.as_str()));
    // Sample for a while: never two controllers ready.
    for _ in 0..30 {
        let serving = [&alpha, &beta]
            .iter()
            .filter(|a| a.controller_ready())
            .count();
        assert!(serving <= 1, "two controllers serving");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(active.controller_ready());

    // The active host loses the VIP: its controller stops and releases the
    // lease, and the other host (still holding the VIP) takes over.
    zone.host(&active.host).del_vip();
    wait_for(
        "the other agent active",
        LONG,
        || role_is(standby, Role::Active),
        || format!("{}\n{}", active.logs(), standby.logs()),
    );
    assert!(standby.controller_ready());
    assert!(!active.controller_ready());
}

#[test]
fn a_stale_backup_notification_stops_the_controller_and_the_vip_brings_it_back() {
    let zone = Zone::start();
    let mut alpha = Agent::prepare(&zone, "alpha", &AgentSetup::default());
    alpha.artifacts.mount();
    alpha.start(&zone);
    zone.host("alpha").add_vip();
    wait_for(
        "alpha active",
        LONG,
        || role_is(&alpha, Role::Active),
        || alpha.logs(),
    );
    let metrics = crate::support::get_in(&alpha.ns, crate::support::AGENT_MGMT, "/metrics")
        .expect("metrics")
        .1;
    assert!(
        metrics.contains(r#"bsfg_gate_state{gate="quorum"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("bsfg_controller_active 1"), "{metrics}");
    assert!(
        metrics.contains(r#"bsfg_lease_holder{host="alpha"} 1"#),
        "{metrics}"
    );

    // A classic notify script delivers BACKUP late, after the MASTER that
    // really came last: the VIP is still here.
    let out = alpha.notify(&["INSTANCE", "bsfg_agentzone", "BACKUP", "100"]);
    assert!(out.status.success(), "{out:?}");
    let s = wait_for(
        "the controller stopped on BACKUP",
        LONG,
        || {
            alpha
                .status()
                .filter(|s| s.role_reason == "keepalived reported BACKUP")
        },
        || alpha.logs(),
    );
    assert_ne!(s.role, Role::Active);
    assert_eq!(
        alpha.track_value().as_deref(),
        Some("0"),
        "BACKUP is not a demotion"
    );
    // The truth (the VIP on eth0) wins after the hold-down.
    let s = wait_for(
        "alpha active again",
        LONG,
        || {
            alpha
                .status()
                .filter(|s| s.role == Role::Active && s.transitions_total >= 4)
        },
        || alpha.logs(),
    );
    assert!(alpha.controller_ready());
    assert_eq!(s.vrrp.state, VrrpState::Backup);

    // Garbage is refused, and says why.
    let out = alpha.notify(&["INSTANCE", "bsfg_agentzone", "MASTER", "lots"]);
    assert!(!out.status.success());

    // Another VRRP instance's BACKUP (a second keepalived on the host, a
    // stray script) reaches the FIFO but is logged and ignored: the
    // controller keeps serving.
    let before = alpha.status().expect("status").transitions_total;
    let out = alpha.notify(&["INSTANCE", "bsfg_otherzone", "BACKUP", "100"]);
    assert!(out.status.success(), "{out:?}");
    wait_for(
        "the foreign notification logged",
        LONG,
        || {
            alpha
                .logs()
                .contains("ignoring a notification for a foreign VRRP instance")
                .then_some(())
        },
        || alpha.logs(),
    );
    std::thread::sleep(Duration::from_secs(1));
    let s = alpha.status().expect("status");
    assert_eq!(s.role, Role::Active, "{}", alpha.logs());
    assert_eq!(s.transitions_total, before);
    assert!(alpha.controller_ready());

    // Nothing on the network changes the agent's state: the management
    // endpoint has no /notify (and answers no POST at all).
    for path in ["/notify", "/status", "/metrics"] {
        let (code, _) = crate::support::post_in(
            &alpha.ns,
            crate::support::AGENT_MGMT,
            path,
            "INSTANCE \"bsfg_agentzone\" BACKUP 100",
        )
        .expect("the management endpoint answers");
        assert!(code == 404 || code == 405, "POST {path}: {code}");
    }
    assert_eq!(alpha.status().expect("status").role, Role::Active);
}

/// Alpha with its storage and the VIP, its agent started and active;
/// returns the pid of the controller it runs.
fn promote_alpha(zone: &Zone, alpha: &mut Agent) -> u32 {
    alpha.artifacts.mount();
    zone.host("alpha").add_vip();
    alpha.start(zone);
    wait_for(
        "alpha active",
        LONG,
        || role_is(alpha, Role::Active),
        || alpha.logs(),
    );
    alpha.controller_pid().expect("alpha's controller pid")
}

#[test]
fn a_controller_left_by_a_killed_agent_exits_when_the_vip_goes_and_never_takes_the_lease() {
    let zone = Zone::start();
    let mut alpha = Agent::prepare(&zone, "alpha", &AgentSetup::default());
    let mut beta = Agent::prepare(&zone, "beta", &AgentSetup::default());
    beta.artifacts.mount();
    beta.start(&zone);
    let orphan = promote_alpha(&zone, &mut alpha);

    // The agent dies; its controller lives on and keeps the zone served
    // while the VIP is there.
    alpha.kill();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(alpha.controller_pid(), Some(orphan));
    assert!(alpha.controller_ready(), "the VIP holder still serves");

    // The VIP leaves alpha (keepalived's check fails without the agent):
    // the orphan releases the lease and exits 79, saying why.
    zone.host("alpha").del_vip();
    wait_for(
        "the orphaned controller to exit",
        LONG,
        || alpha.controller_pid().is_none().then_some(()),
        || alpha.logs(),
    );
    let log = std::fs::read_to_string(&alpha.controller_log).unwrap_or_default();
    assert!(
        log.contains("fenced: the service address 10.77.0.100 is not on this host"),
        "{log}"
    );

    // Beta takes the VIP and promotes without waiting for a lease to expire;
    // nothing on alpha ever holds the lease again.
    zone.host("beta").add_vip();
    let s = wait_for(
        "beta active",
        LONG,
        || role_is(&beta, Role::Active),
        || format!("{}\n{}", alpha.logs(), beta.logs()),
    );
    assert_eq!(s.lease.holder.as_deref(), Some("beta"));
    assert!(!alpha.controller_running());
}

#[test]
fn a_restarted_agent_stops_the_controller_its_killed_predecessor_left_and_promotes_again() {
    let zone = Zone::start();
    let mut alpha = Agent::prepare(&zone, "alpha", &AgentSetup::default());
    let orphan = promote_alpha(&zone, &mut alpha);
    alpha.kill();
    assert_eq!(
        alpha.controller_pid(),
        Some(orphan),
        "orphaned, still running"
    );

    // systemd's Restart= brings the agent back: it cannot adopt a child it
    // did not spawn, so it stops that one and promotes a controller of its own.
    alpha.start(&zone);
    let s = wait_for(
        "alpha active again with a new controller",
        LONG,
        || {
            role_is(&alpha, Role::Active)
                .filter(|_| alpha.controller_pid().is_some_and(|p| p != orphan))
        },
        || alpha.logs(),
    );
    assert!(
        bsfg_gate_agent::supervisor::process::start_time(orphan).is_none(),
        "the predecessor's controller is gone"
    );
    assert_eq!(s.lease.holder.as_deref(), Some("alpha"));
    assert!(alpha.controller_ready());
}

#[test]
fn a_host_booted_before_its_secrets_names_the_missing_file_and_promotes_once_it_appears() {
    let zone = Zone::start();
    let mut alpha = Agent::prepare(
        &zone,
        "alpha",
        &AgentSetup {
            withhold_password: true,
            ..Default::default()
        },
    );
    alpha.artifacts.mount();
    zone.host("alpha").add_vip();
    alpha.start(&zone);
    let path = alpha.password_file.display().to_string();
    let s = wait_for(
        "gate 5 naming the missing password file",
        LONG,
        || {
            alpha.status().filter(|s| {
                s.gate(GateId::Certificate)
                    .is_some_and(|g| g.verdict == Verdict::Fail && g.reason.contains(&path))
            })
        },
        || alpha.logs(),
    );
    assert_eq!(
        s.gate(GateId::Certificate).unwrap().reason,
        format!("missing controller credential: nats_system_password {path} (no such file)")
    );
    let missing: Vec<_> = s.credentials.iter().filter(|c| !c.present).collect();
    assert_eq!(missing.len(), 1, "{:?}", s.credentials);
    assert_eq!(
        (missing[0].name.as_str(), missing[0].path.as_str()),
        ("nats_system_password", path.as_str())
    );
    assert!(
        alpha
            .status_table()
            .contains(&format!("missing     nats_system_password {path}"))
    );
    let (code, metrics) =
        crate::support::get_in(&alpha.ns, crate::support::AGENT_MGMT, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains(&format!(
            "bsfg_controller_credential_present{{credential=\"nats_system_password\",path=\"{path}\"}} 0"
        )),
        "{metrics}"
    );
    // It keeps evaluating and does not start the controller.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!alpha.controller_running());
    assert!(alpha.status().is_some(), "the agent keeps running");

    std::fs::write(&alpha.password_file, "installed\n").unwrap();
    let s = wait_for(
        "alpha active once the file is there",
        LONG,
        || role_is(&alpha, Role::Active),
        || alpha.logs(),
    );
    assert!(
        s.credentials.iter().all(|c| c.present),
        "{:?}",
        s.credentials
    );
    assert!(alpha.controller_ready());
}
