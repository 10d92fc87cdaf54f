//! The simulator as a user runs it: `up` (twice: idempotent), `status`,
//! `append`, `tail`, `down`; and `down` after the simulator itself was killed
//! in the middle of a drill (also one with a peer node), which must still
//! remove every process, namespace and file of that instance and nothing
//! else. Needs root; fails,
//! never skips, without it.

use bsfg_mgmt::Role;
use bsfg_zonesim::observe::Readiness;
use bsfg_zonesim::observe::zone_status::ZoneStatus;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUN_ROOT: &str = "/run/bsfg-zonesim";

fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the zone simulator needs root; run the suite as root (sudo env PATH=\"$PATH\" ./scripts/test)"
    );
}

fn zonesim(instance: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_bsfg-zonesim"))
        .args(["--instance", instance, "--quiet"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run bsfg-zonesim");
    eprintln!(
        "$ bsfg-zonesim --instance {instance} {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `down` for the instance when a test ends, also when it fails.
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_bsfg-zonesim"))
            .args(["--instance", &self.0, "--quiet", "down"])
            .output();
    }
}

fn namespaces_of(instance: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{instance}-")))
        .map(str::to_owned)
        .collect()
}

fn run_dir(instance: &str) -> PathBuf {
    Path::new(RUN_ROOT).join(instance)
}

/// Pids recorded in the instance's state file.
fn recorded_pids(instance: &str) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(run_dir(instance).join("state.json")) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).expect("state file is JSON");
    v["daemons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["pid"].as_u64())
                .map(|p| p as u32)
                .collect()
        })
        .unwrap_or_default()
}

fn alive(pid: u32) -> bool {
    // A zombie (reaped later by init) is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap_or(0)..].starts_with(") Z"))
        .unwrap_or(false)
}

fn assert_gone(instance: &str, pids: &[u32]) {
    assert!(
        namespaces_of(instance).is_empty(),
        "namespaces left: {:?}",
        namespaces_of(instance)
    );
    assert!(
        !run_dir(instance).exists(),
        "{} left",
        run_dir(instance).display()
    );
    let living: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(living.is_empty(), "processes left: {living:?}");
}

#[test]
fn zone_up_status_append_tail_down() {
    require_root();
    let inst = format!("l{}", std::process::id());
    let _down = Down(inst.clone());
    let up = ok(&zonesim(&inst, &["up"]));
    assert!(up.contains("endpoint   https://10.20.0.100:9443"), "{up}");
    assert!(up.contains("VIP 10.20.0.100 on alpha"), "{up}");
    let again = ok(&zonesim(&inst, &["up"]));
    assert!(again.contains("is already up"), "up is idempotent: {again}");

    let status: ZoneStatus =
        serde_json::from_str(&ok(&zonesim(&inst, &["status", "--json"]))).expect("status JSON");
    assert_eq!(status.vip_holders, ["alpha"]);
    let role = |i: usize| status.hosts[i].agent.as_ref().map(|a| a.role);
    let alpha = &status.hosts[0];
    assert_eq!(alpha.host, "alpha");
    assert_eq!(role(0), Some(Role::Active));
    assert_eq!(alpha.controller_ready, Some(Readiness::Serving));
    assert_eq!(role(1), Some(Role::Standby));
    // gamma: nats-server, its service probe and its node exporter (the
    // exporters' names as the kernel keeps them, 15 characters).
    assert_eq!(
        status.hosts[2].processes,
        ["nats-server", "prometheus-blac", "prometheus-node"]
    );
    assert_eq!(status.jetstream.as_ref().map(|p| p.cluster_size), Some(3));
    let table = ok(&zonesim(&inst, &["status"]));
    assert!(table.contains("JetStream: meta leader"), "{table}");

    let first = ok(&zonesim(
        &inst,
        &[
            "append",
            "--message-id",
            "lifecycle-1",
            "--object-json",
            "{\"n\":1}",
        ],
    ));
    assert!(
        first.starts_with("acknowledged: offset") && !first.contains("duplicate"),
        "{first}"
    );
    let repeat = ok(&zonesim(
        &inst,
        &[
            "append",
            "--message-id",
            "lifecycle-1",
            "--object-json",
            "{\"n\":1}",
        ],
    ));
    assert!(
        repeat.contains("duplicate"),
        "the same id again is a duplicate: {repeat}"
    );
    let tail = ok(&zonesim(&inst, &["tail"]));
    assert_eq!(
        tail.lines().filter(|l| l.contains(" lifecycle-1 ")).count(),
        1,
        "stored once: {tail}"
    );

    let pids = recorded_pids(&inst);
    assert!(
        pids.len() >= 7,
        "3 nats-server, 2 agents, 2 keepalived recorded: {pids:?}"
    );
    let down = ok(&zonesim(&inst, &["down"]));
    assert!(down.contains("removed"), "{down}");
    assert_gone(&inst, &pids);
    let again = ok(&zonesim(&inst, &["down"]));
    assert!(again.contains("nothing to remove"), "{again}");
}

#[test]
fn zone_down_cleans_up_after_the_simulator_was_killed_mid_drill() {
    require_root();
    killed_mid_drill(
        &format!("k{}", std::process::id()),
        "alpha-crash",
        7,
        &["alpha", "beta", "client", "gamma", "mgmt", "switch"],
    );
}

/// The same with a replication drill's peer node: its namespace and its
/// nats-server and controller (recorded before the zone boots) go too.
#[test]
fn zone_down_removes_the_peer_node_after_the_simulator_was_killed() {
    require_root();
    killed_mid_drill(
        &format!("p{}", std::process::id()),
        "replication-alpha-crash",
        9,
        &["alpha", "beta", "client", "gamma", "mgmt", "peer", "switch"],
    );
}

/// Starts `drill` on `inst`, waits until `daemons` daemons are recorded (the
/// zone runs), SIGKILLs the simulator, checks the instance outlived it with
/// exactly `namespaces`, and that `down` removes all of it.
fn killed_mid_drill(inst: &str, drill: &str, daemons: usize, namespaces: &[&str]) {
    let _down = Down(inst.to_owned());
    let mut child = Command::new(env!("CARGO_BIN_EXE_bsfg-zonesim"))
        .args(["--instance", inst, "--quiet", "drill", drill])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a drill");
    // Wait until the zone runs (every daemon recorded), then kill the simulator.
    let deadline = Instant::now() + Duration::from_secs(90);
    while recorded_pids(inst).len() < daemons {
        assert!(
            Instant::now() < deadline,
            "the drill's zone did not come up"
        );
        assert!(
            child.try_wait().expect("poll").is_none(),
            "the drill ended early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    child.kill().expect("SIGKILL the simulator");
    child.wait().expect("reap");
    let pids = recorded_pids(inst);
    assert!(
        pids.iter().any(|p| alive(*p)),
        "the zone's daemons outlive the simulator"
    );
    let mut left = namespaces_of(inst);
    left.sort();
    let want: Vec<String> = namespaces.iter().map(|n| format!("{inst}-{n}")).collect();
    assert_eq!(left, want);
    ok(&zonesim(inst, &["down"]));
    assert_gone(inst, &pids);
}
