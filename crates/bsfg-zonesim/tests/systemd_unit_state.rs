//! The monitoring-table row "Unexpected controller on standby (Beta /
//! Gamma)" in its node-exporter forms, on a zone in the systemd mode
//! (`--init systemd`): every host's container runs nixpkgs'
//! prometheus-node-exporter.service on the appliance's collectors and
//! flags (modules/lib/container.nix), so `node_systemd_unit_state` is the
//! appliance's. A real Prometheus (the set-up and watch of `prometheus.rs`)
//! scrapes every node exporter and gate agent through the management
//! network; then:
//!
//! 1. the real controller started by hand on the standby (`systemctl
//!    start bsfg-controller.service`, behind its agent's back): it finds
//!    the VIP elsewhere and exits 79 (fenced) before taking the lease, the
//!    agent stays standby, nothing serves there, the node exporter reports
//!    the unit failed and no alert fires (it was active for less than a
//!    scrape);
//! 2. the fault the rules are for: on the standby the controller unit
//!    kept running (a runtime drop-in runs `sleep` in its place: a
//!    controller that neither serves nor exits, as its unit's state shows
//!    it), and on gamma a transient `bsfg-controller.service`
//!    (`systemd-run`; gamma has no such unit). `BsfgControllerOnGamma` (no
//!    `for:`) and `BsfgControllerRunningOnStandby` (`for: 1m`) must reach
//!    firing, for those hosts only;
//! 3. both units stopped: everything resolves.
//!
//! Nothing fires that the faults do not explain. Needs root (network
//! namespaces, containers); the first run on a machine builds the cached
//! Debian root (debootstrap, a few minutes).

use crate::prometheus::{
    AGENTS_UP, Alert, WITHOUT_EXPORTERS, Watch, clock_unsynchronised, only_baseline, repo,
    run_zone_test, start_peer, start_prometheus, until_series, wait_peer,
};
use bsfg_mgmt::Role;
use bsfg_zonesim::container::{Init, machine};
use bsfg_zonesim::zone::{Options, Zone};
use std::time::{Duration, Instant};

const ON_GAMMA: &str = "BsfgControllerOnGamma";
const ON_STANDBY: &str = "BsfgControllerRunningOnStandby";
const UNIT: &str = "bsfg-controller.service";
/// Where the standby's drop-in goes (runtime: gone at the next boot).
const DROP_IN: &str = "/run/systemd/system/bsfg-controller.service.d/50-kept-running.conf";
/// The controller unit with a program that neither serves nor exits: a
/// simple service (the controller's Type=notify would wait for READY=1) and
/// no watchdog (nothing pings it).
const KEPT_RUNNING: &str =
    "[Service]\nType=simple\nWatchdogSec=0\nExecStart=\nExecStart=/bin/sleep infinity\n";

#[test]
fn controller_units_on_standby_and_gamma_fire() {
    run_zone_test(run());
}

/// `name` firing for `host`, and no other host.
fn firing_on(active: &[Alert], name: &str, host: &str) -> bool {
    let hosts: Vec<&str> = active
        .iter()
        .filter(|a| a.name == name && a.state == "firing")
        .filter_map(|a| a.labels.get("host").map(String::as_str))
        .collect();
    hosts == [host]
}

/// `name` active (pending or firing) for a host other than `host`.
fn active_elsewhere(active: &[Alert], name: &str, host: &str) -> Vec<String> {
    active
        .iter()
        .filter(|a| a.name == name && a.labels.get("host").map(String::as_str) != Some(host))
        .map(|a| format!("{} {:?} {}", a.name, a.labels.get("host"), a.state))
        .collect()
}

/// `systemctl show` of the controller unit on `host`: (ActiveState, ExecMainStatus).
fn unit_state(z: &Zone, host: &str) -> (String, String) {
    let out = z
        .systemctl(
            host,
            &["show", "-p", "ActiveState", "-p", "ExecMainStatus", UNIT],
        )
        .unwrap();
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_owned()
    };
    (get("ActiveState"), get("ExecMainStatus"))
}

async fn run() {
    let instance = format!("su{}", std::process::id() % 100_000);
    let mut opts = Options::new(&instance);
    opts.repo = repo();
    opts.quiet = true;
    opts.init = Init::Systemd;
    let started = Instant::now();
    let zone = tokio::task::block_in_place(|| Zone::create(&opts)).expect("create the zone");
    let created = started.elapsed().as_secs_f64();
    // The zone's controllers pull from its peer: one that never answers is
    // replication lag (as in the other Prometheus tests). Declared after
    // the zone: stopped before it.
    let peer = start_peer(&zone);
    zone.boot(Duration::from_secs(120))
        .await
        .expect("boot the zone");
    wait_peer(&zone, &peer).await;
    let booted = started.elapsed().as_secs_f64() - created;
    let z = &zone;
    // Declared after the zone: stopped before the zone's namespaces go.
    let _prometheus = start_prometheus(z);
    let [a, b, g] = z.spec.host_names().map(str::to_owned);
    let mut w = Watch::starting_now();
    w.note(format!(
        "zone created in {created:.1} s, booted in {booted:.1} s"
    ));
    clock_unsynchronised(z, &mut w).await;

    // Every host's systemd collector reads its container's units (the
    // process mode's exporters cannot), the filesystem collector the
    // appliance's mount points (bound in; no mount-point flag of the
    // process mode), and both agents are scraped.
    until_series(
        z,
        &mut w,
        &[
            (
                "node_systemd_unit_state{name=\"nats.service\", state=\"active\"} == 1",
                3,
            ),
            (
                "node_filesystem_avail_bytes{mountpoint=\"/data/jetstream\"}",
                3,
            ),
            ("node_filesystem_avail_bytes{mountpoint=\"/artifacts\"}", 2),
            (AGENTS_UP, 2),
            ("bsfg_gate_agent_role{state=\"active\"} == 1", 1),
        ],
        &[],
    )
    .await;
    w.note("every host's unit states and appliance mount points scraped");
    let exposure = z.exposure(&g, "prometheus-node-exporter.service");
    w.note(format!(
        "`systemd-analyze security prometheus-node-exporter.service` on {g}: {exposure:?}"
    ));
    w.until(
        z,
        "rules evaluated: nothing active but the baseline",
        &[],
        only_baseline,
    )
    .await;

    // The standby (the agent's role, not the host name).
    let mut standby = None;
    for h in [&a, &b] {
        if z.agent_status(h).await.unwrap().role == Role::Standby {
            standby = Some(h.clone());
        }
    }
    let s = standby.expect("a standby service host");
    let active_host = if s == a { b.clone() } else { a.clone() };

    // 1. The real controller, by hand on the standby. `systemctl start`
    // waits for READY=1 or the end: the controller exits first.
    w.phase = "controller by hand".into();
    let t = Instant::now();
    let started_by_hand = z.systemctl(&s, &["start", UNIT]);
    let took = t.elapsed().as_secs_f64();
    let (state, status) = unit_state(z, &s);
    w.note(format!(
        "`systemctl start {UNIT}` on {s}: {} after {took:.1} s; unit {state}, exit status {status}",
        if started_by_hand.is_ok() {
            "started"
        } else {
            "failed"
        }
    ));
    assert!(
        started_by_hand.is_err() && state == "failed",
        "the controller started by hand on the standby {s} did not fail: {started_by_hand:?}, {state}"
    );
    assert_eq!(
        status,
        (bsfg_mgmt::exit::ControllerExit::Fenced as i32).to_string(),
        "the controller on the standby should exit fenced (the VIP is not there)"
    );
    let st = z.agent_status(&s).await.unwrap();
    w.note(format!(
        "{s}'s agent: {} ({:?}), controller {:?}, last exit {:?}",
        st.role, st.blocker, st.controller.process, st.controller.last_exit
    ));
    assert_eq!(st.role, Role::Standby, "the standby's agent changed role");
    assert!(!z.serving(&s).await, "a controller serves on {s}");
    assert!(
        z.serving(&active_host).await,
        "{active_host} no longer serves"
    );
    // The exporter reports the failed unit (no rule reads that state).
    until_series(
        z,
        &mut w,
        &[(
            &format!(
                "node_systemd_unit_state{{host=\"{s}\", name=\"{UNIT}\", state=\"failed\"}} == 1"
            ),
            1,
        )],
        &[],
    )
    .await;
    let st = z.agent_status(&s).await.unwrap();
    w.note(format!(
        "{UNIT} failed on {s} as scraped; its agent: {}, controller {:?}, last exit {:?}",
        st.role, st.controller.process, st.controller.last_exit
    ));
    assert_eq!(st.role, Role::Standby, "the standby's agent changed role");
    z.systemctl(&s, &["reset-failed", UNIT]).unwrap();

    // 2. The units the rules are for: kept running on the standby, a
    // transient one on gamma.
    w.phase = "controller units running".into();
    let leader = z.leader(&s).unwrap();
    machine::exec_ok(
        leader,
        &[
            "sh",
            "-c",
            &format!("mkdir -p \"$(dirname {DROP_IN})\" && printf '%s' \"$0\" > {DROP_IN}",),
            KEPT_RUNNING,
        ],
    )
    .unwrap();
    z.systemctl(&s, &["daemon-reload"]).unwrap();
    z.systemctl(&s, &["start", UNIT]).unwrap();
    let fault = Instant::now();
    w.note(format!("{UNIT} kept running on {s}"));
    machine::exec_ok(
        z.leader(&g).unwrap(),
        &[
            "systemd-run",
            &format!("--unit={UNIT}"),
            "/bin/sleep",
            "infinity",
        ],
    )
    .unwrap();
    w.note(format!("transient {UNIT} on {g}"));
    for (h, want) in [(&s, "active"), (&g, "active")] {
        let (state, _) = unit_state(z, h);
        assert_eq!(state, want, "{UNIT} on {h}");
    }
    let allowed = [WITHOUT_EXPORTERS, ON_GAMMA, ON_STANDBY];
    let fired_gamma = w
        .until(z, &format!("{ON_GAMMA} firing for {g}"), &allowed, |act| {
            firing_on(act, ON_GAMMA, &g)
        })
        .await;
    let fired_standby = w
        .until(
            z,
            &format!("{ON_STANDBY} firing for {s}"),
            &allowed,
            |act| firing_on(act, ON_STANDBY, &s),
        )
        .await;
    let standby_after = fault.elapsed().as_secs_f64();
    let st = z.agent_status(&s).await.unwrap();
    w.note(format!(
        "{s}'s agent meanwhile: {} ({:?}), controller {:?}",
        st.role, st.blocker, st.controller.process
    ));
    let act = crate::prometheus::alerts(z).await.unwrap();
    let elsewhere: Vec<String> = active_elsewhere(&act, ON_STANDBY, &s)
        .into_iter()
        .chain(active_elsewhere(&act, ON_GAMMA, &g))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "the rules fired for other hosts: {elsewhere:?}"
    );

    // 3. Both stopped: resolved.
    w.phase = "stopped".into();
    z.systemctl(&s, &["stop", UNIT]).unwrap();
    z.systemctl(&g, &["stop", UNIT]).unwrap();
    w.note(format!("{UNIT} stopped on {s} and {g}"));
    let resolved = w
        .until(z, "both rules resolved", &allowed, only_baseline)
        .await;

    println!("{}", w.timeline.join("\n"));
    println!(
        "systemd mode: zone created in {created:.1} s, booted in {booted:.1} s; the controller by hand on {s} failed after {took:.1} s (exit 79); \
         {ON_GAMMA} firing {fired_gamma:.1} s after gamma's unit started, \
         {ON_STANDBY} firing {standby_after:.1} s after {s}'s unit started ({fired_standby:.1} s after {ON_GAMMA}); \
         both resolved {resolved:.1} s after the stop; whole test {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        w.unexpected_firing.is_empty(),
        "alerts fired that the faults do not explain: {:?}\n{}",
        w.unexpected_firing,
        w.timeline.join("\n")
    );
}
