//! The strongest proof: real keepalived 2.2 (Debian) in alpha's and beta's
//! namespaces, unicast VRRP over the test bridge, `nopreempt`, the agent's
//! `check` as vrrp_script, its FIFO as `notify_fifo`, its track file as a
//! weight-0 `track_file`; gate agents supervising real controllers; a real
//! 3-node JetStream cluster. Alpha loses its artifact storage while active:
//! its agent stops the controller and sets the track file, keepalived goes
//! FAULT and the VIP moves to beta, whose agent promotes. When alpha is
//! healthy again it clears the track file and stays BACKUP: no failback.
//!
//! Needs root and keepalived; fails, never skips, without them.

use crate::support::{Agent, AgentSetup, PREFIX, VIP, Zone, wait_for};
use bsfg_mgmt::{GateId, Role, Verdict, VrrpState};
use bsfg_testkit::bins;
use bsfg_testkit::process::Daemon;
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(90);

/// keepalived for one host, configured as the zone library renders it.
fn keepalived(zone: &Zone, agent: &Agent, priority: u8, peer: &str) -> Daemon {
    let bin = bins::system_program("keepalived", "keepalived");
    let h = zone.host(&agent.host);
    let dir = h.dir.join("keepalived");
    std::fs::create_dir_all(&dir).expect("keepalived dir");
    let check = format!(
        "{} check --config {}",
        bins::workspace_binary("bsfg-gate-agent").display(),
        agent.config_path.display()
    );
    let conf = format!(
        r#"global_defs {{
  router_id bsfg_{host}
  enable_script_security
  script_user root
  vrrp_version 3
  notify_fifo {fifo}
}}

vrrp_script bsfg_jetstream_ok {{
  script "{check}"
  interval 1
  timeout 2
  fall 2
  rise 2
  weight 0
}}

track_file bsfg_gate {{
  file "{track}"
  weight 0
}}

vrrp_instance bsfg_agentzone {{
  interface eth0
  state BACKUP
  nopreempt
  virtual_router_id 77
  priority {priority}
  advert_int 1
  unicast_src_ip {src}
  unicast_peer {{
    {peer}
  }}
  virtual_ipaddress {{
    {VIP}/{PREFIX} dev eth0
  }}
  track_script {{
    bsfg_jetstream_ok
  }}
  track_file {{
    bsfg_gate weight 0
  }}
}}
"#,
        host = agent.host,
        fifo = agent.fifo.display(),
        track = agent.track_file.display(),
        src = h.address,
    );
    let path = dir.join("keepalived.conf");
    std::fs::write(&path, conf).expect("keepalived.conf");
    let pid = |name: &str| dir.join(name).display().to_string();
    let mut cmd = h.ns.command(bin);
    cmd.args(["--dont-fork", "--log-console", "--log-detail", "--vrrp"])
        .arg("--use-file")
        .arg(&path)
        .args(["--pid", &pid("keepalived.pid")])
        .args(["--vrrp_pid", &pid("vrrp.pid")])
        .args(["--checkers_pid", &pid("checkers.pid")]);
    Daemon::spawn(
        &format!("keepalived-{}", agent.host),
        cmd,
        &dir.join("keepalived.log"),
    )
    .expect("spawn keepalived")
}

fn log_of(d: &Daemon) -> String {
    format!("--- {}\n{}", d.name(), d.log_tail(30))
}

fn diagnose(alpha: &Agent, beta: &Agent, ka_alpha: &Daemon, ka_beta: &Daemon) -> String {
    format!(
        "{}\n{}\n{}\n{}",
        alpha.logs(),
        beta.logs(),
        log_of(ka_alpha),
        log_of(ka_beta)
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn keepalived_moves_the_vip_when_the_agent_demotes_and_never_fails_back() {
    bins::system_program("keepalived", "keepalived");
    let zone = Zone::start();
    let setup = AgentSetup {
        hold_down: "3s",
        keepalived_manages_vip: true,
        ..Default::default()
    };
    let mut alpha = Agent::prepare(&zone, "alpha", &setup);
    let mut beta = Agent::prepare(&zone, "beta", &setup);
    alpha.artifacts.mount();
    beta.artifacts.mount();
    // Agents first: they create the FIFOs and track files keepalived uses.
    alpha.start(&zone);
    beta.start(&zone);
    let ka_alpha = keepalived(&zone, &alpha, 150, "10.77.0.12");
    let ka_beta = keepalived(&zone, &beta, 100, "10.77.0.11");
    let (a, b) = (zone.host("alpha"), zone.host("beta"));

    // Alpha (higher priority) wins the first election and promotes.
    let s = wait_for(
        "alpha active with the VIP",
        LONG,
        || {
            alpha
                .status()
                .filter(|s| s.role == Role::Active && a.has_vip() && !b.has_vip())
        },
        || diagnose(&alpha, &beta, &ka_alpha, &ka_beta),
    );
    assert_eq!(
        s.vrrp.state,
        VrrpState::Master,
        "alpha's agent heard MASTER on the FIFO"
    );
    assert!(
        s.vrrp
            .last_notification
            .as_deref()
            .is_some_and(|l| l.starts_with("INSTANCE \"bsfg_agentzone\" MASTER")),
        "{s:?}"
    );
    let bs = wait_for(
        "beta standby, BACKUP",
        LONG,
        || beta.status().filter(|s| s.vrrp.state == VrrpState::Backup),
        || diagnose(&alpha, &beta, &ka_alpha, &ka_beta),
    );
    assert_eq!(bs.role, Role::Standby);
    assert!(alpha.controller_ready() && !beta.controller_running());

    // Alpha's artifact storage disappears while it is active.
    alpha.artifacts.unmount();
    let s = wait_for(
        "the VIP on beta and beta active",
        LONG,
        || {
            let serving = [&alpha, &beta]
                .iter()
                .filter(|x| x.controller_ready())
                .count();
            assert!(serving <= 1, "two controllers serving");
            beta.status()
                .filter(|s| s.role == Role::Active && b.has_vip() && !a.has_vip())
        },
        || diagnose(&alpha, &beta, &ka_alpha, &ka_beta),
    );
    assert_eq!(s.vrrp.state, VrrpState::Master);
    assert_eq!(s.lease.holder.as_deref(), Some("beta"));
    assert!(beta.controller_ready());
    let s = alpha.status().expect("alpha status");
    assert_eq!(s.role, Role::Demoted, "{s:?}");
    assert!(s.role_reason.contains("artifacts"), "{}", s.role_reason);
    assert_eq!(
        s.vrrp.state,
        VrrpState::Fault,
        "keepalived went FAULT on alpha"
    );
    assert_eq!(alpha.track_value().as_deref(), Some("1"));
    assert!(!alpha.controller_running());
    assert!(
        read(ka_alpha.log_path()).contains("bsfg_gate"),
        "keepalived logged the track file: {}",
        log_of(&ka_alpha)
    );

    // Alpha's storage comes back: after the hold-down its track file is
    // cleared and keepalived returns to BACKUP — nopreempt, no failback.
    alpha.artifacts.mount();
    let s = wait_for(
        "alpha standby and BACKUP again",
        LONG,
        || {
            alpha.status().filter(|s| {
                s.role == Role::Standby
                    && s.vrrp.state == VrrpState::Backup
                    && s.gate(GateId::Artifacts).unwrap().verdict == Verdict::Pass
            })
        },
        || diagnose(&alpha, &beta, &ka_alpha, &ka_beta),
    );
    assert_eq!(s.track_file.value, 0);
    assert_eq!(alpha.track_value().as_deref(), Some("0"));
    assert!(b.has_vip() && !a.has_vip(), "the VIP stayed on beta");
    let bs = beta.status().expect("beta status");
    assert_eq!(bs.role, Role::Active);
    assert!(beta.controller_ready() && !alpha.controller_running());

    // host_facts (for bsfgctl): each agent finds the keepalived of its own
    // network namespace (both run on this machine) and reads its unicast
    // settings; the mount table shows the artifact tmpfs; the controller
    // executable is the one its command names; the certificate's expiry.
    for (agent, own, peer) in [
        (&alpha, "10.77.0.11", "10.77.0.12"),
        (&beta, "10.77.0.12", "10.77.0.11"),
    ] {
        let f = agent
            .status()
            .and_then(|s| s.host_facts)
            .expect("host_facts in /status");
        let k = f
            .keepalived
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no keepalived found: {f:?}", agent.host));
        assert_eq!(
            k.unicast_src_ip.as_deref(),
            Some(own),
            "{}: {k:?}",
            agent.host
        );
        assert_eq!(
            k.unicast_peers,
            vec![peer.to_owned()],
            "{}: {k:?}",
            agent.host
        );
        assert_eq!(k.interface.as_deref(), Some("eth0"));
        assert!(k.config.ends_with("keepalived/keepalived.conf"), "{k:?}");
        let artifacts = agent.artifacts.path().display().to_string();
        let m = f
            .mounts
            .iter()
            .find(|m| m.mount_point == artifacts)
            .unwrap_or_else(|| panic!("{artifacts} not in {:?}", f.mounts));
        assert_eq!(m.fs_type, "tmpfs");
        // The test agents run the controller through a wrapper script (its command[0]).
        let exe = f
            .controller_executable
            .as_deref()
            .expect("controller executable");
        assert!(
            exe.ends_with(&format!("/{}/controller.sh", agent.host)),
            "{exe}"
        );
        let c = f.certificate.as_ref().expect("certificate");
        assert!(
            c.not_after_unix_ms > f.now_unix_ms + 300 * 86_400_000,
            "{c:?}"
        );
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert!(f.mounts.iter().all(|m| m.fs_type != "proc"));
    }

    // Keepalived dies on the active host (SIGKILL: no cleanup, the VIP stays
    // on beta's interface). Alpha stops hearing adverts and takes the VIP as
    // well; beta's agent must not keep serving on a stale VIP, or its
    // controller would keep the lease and nobody would serve where the VIP
    // now answers.
    kill_all_keepalived_of(&beta_keepalived_conf(&zone));
    let s = wait_for(
        "alpha active after beta's keepalived died",
        LONG,
        || {
            let serving = [&alpha, &beta]
                .iter()
                .filter(|x| x.controller_ready())
                .count();
            assert!(serving <= 1, "two controllers serving");
            alpha.status().filter(|s| s.role == Role::Active)
        },
        || diagnose(&alpha, &beta, &ka_alpha, &ka_beta),
    );
    assert_eq!(s.lease.holder.as_deref(), Some("alpha"));
    assert!(alpha.controller_ready() && !beta.controller_running());
    let bs = beta.status().expect("beta status");
    assert_ne!(bs.role, Role::Active);
    let vip_gate = bs.gate(GateId::Vip).expect("gate 1");
    assert_eq!(vip_gate.verdict, Verdict::Fail);
    assert!(
        vip_gate.reason.contains("keepalived is not running"),
        "{}",
        vip_gate.reason
    );
    assert!(b.has_vip(), "the stale VIP is still on beta's interface");
    drop(ka_beta);
}

fn beta_keepalived_conf(zone: &Zone) -> String {
    zone.host("beta")
        .dir
        .join("keepalived/keepalived.conf")
        .display()
        .to_string()
}

/// SIGKILL every process of one keepalived instance at once (parent and
/// VRRP child), as a crash or the OOM killer would: nothing removes the VIP.
fn kill_all_keepalived_of(config: &str) {
    let pids: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (comm.trim() == "keepalived" && String::from_utf8_lossy(&cmdline).contains(config))
                .then(|| pid.to_string())
        })
        .collect();
    assert!(!pids.is_empty(), "no keepalived runs with {config}");
    // Stopped first: keepalived's VRRP child gets SIGTERM when its parent
    // dies and would remove the VIP cleanly if it ran before its own SIGKILL.
    for signal in ["-STOP", "-KILL"] {
        let status = std::process::Command::new("kill")
            .arg(signal)
            .args(&pids)
            .status()
            .expect("kill");
        assert!(status.success());
    }
}
