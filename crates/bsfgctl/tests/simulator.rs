//! `bsfgctl zone status` and `bsfgctl commission` against a real zone from
//! the zone simulator (crates/bsfg-zonesim: nats-server, keepalived, gate
//! agents and controllers in network namespaces), run from the zone's
//! management namespace (an operator workstation on the management and
//! service networks) as an operator would:
//!
//! - the checklist passes on a healthy zone, the round trip included, and
//!   `--drill` fails over to beta and back;
//! - each fault the simulator's drills inject makes `commission` fail and
//!   name the item, and the zone passes again once the fault is repaired.
//!
//! Needs root (network namespaces); fails without it.

use bsfg_zonesim::processes::Kind;
use bsfg_zonesim::zone::{Options, Zone};
use bsfgctl::commission::checklist::Verdict;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BOOT: Duration = Duration::from_secs(180);
/// How long a fault may take to show (VRRP, quorum loss, elections) and a repair to heal.
const SETTLE: Duration = Duration::from_secs(90);
const COMMISSIONING: (&str, &str) = ("commissioning", "verify-commissioning");

fn repo() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap()
}

struct Sim {
    zone: Zone,
    zone_file: PathBuf,
}

async fn sim(prefix: &str) -> Sim {
    bsfg_testkit::require_root("network namespaces of the zone simulator");
    // Instance names: a-z0-9, short enough for "<instance>-alpha" as a namespace.
    let instance = format!("{prefix}{}", std::process::id() % 100_000);
    let mut opts = Options::new(&instance);
    opts.repo = repo();
    opts.zone_file = repo().join("crates/bsfgctl/tests/data/commission-zone.nix");
    opts.bin_dir = Some(
        bsfg_testkit::bins::workspace_binary("bsfg-controller")
            .parent()
            .unwrap()
            .to_owned(),
    );
    opts.quiet = true;
    let zone = Zone::create(&opts).expect("create the simulator zone");
    zone.boot(BOOT).await.expect("boot the simulator zone");
    // What bsfgctl expects: the same zone, through modules/lib/operator.nix.
    let expr = format!(
        "import {}/modules/lib/operator.nix {{ zone = import {}; runDir = \"{}\"; commissioning = {{ class = \"{}\"; consumer = \"{}\"; }}; }}",
        repo().display(),
        opts.zone_file.display(),
        opts.run_dir().display(),
        COMMISSIONING.0,
        COMMISSIONING.1
    );
    let json = crate::support::nix_eval_json(&expr);
    let zone_file = opts.run_dir().join("bsfgctl-zone.json");
    std::fs::write(&zone_file, &json).unwrap();
    Sim { zone, zone_file }
}

impl Sim {
    /// bsfgctl in the management namespace, with the producer's identity and the zone file.
    fn bsfgctl(&self, args: &[&str]) -> Output {
        let (producer, _) = self.zone.client_tls();
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.zone.ns("mgmt"),
            env!("CARGO_BIN_EXE_bsfgctl"),
        ])
        .args(args)
        .env("BSFG_CLI_ZONE_FILE", &self.zone_file)
        .env("BSFG_CLI_CERT", &producer.certificate)
        .env("BSFG_CLI_KEY", &producer.private_key)
        .env("BSFG_CLI_CA", &producer.ca)
        .env("HOME", "/nonexistent");
        c.output().unwrap()
    }

    /// `commission --json`: (exit code, failing item ids, report).
    fn commission(&self, extra: &[&str]) -> (Option<i32>, Vec<String>, serde_json::Value) {
        let mut args = vec!["commission", "--json"];
        args.extend_from_slice(extra);
        let out = self.bsfgctl(&args);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "commission printed no JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let failing = report["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .filter(|id| crate::support::verdict(&report, id) == Verdict::Fail)
            .collect();
        (out.status.code(), failing, report)
    }

    /// Polls until commission fails naming `item` (returns the failing ids and the item's evidence).
    async fn until_failing(&self, fault: &str, item: &str) -> (Vec<String>, String) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let (code, failing, report) = self.commission(&[]);
            if failing.iter().any(|f| f == item) {
                assert_eq!(code, Some(1), "{fault}: a failed item exits 1");
                let ev = report["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|i| i["id"] == item)
                    .unwrap()["evidence"]
                    .to_string();
                return (failing, ev);
            }
            assert!(
                Instant::now() < deadline,
                "{fault}: commission never failed {item}; last: {failing:?}\n{report:#}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Polls until every item passes again.
    async fn until_passing(&self, after: &str) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let (code, failing, report) = self.commission(&[]);
            if code == Some(0) {
                assert!(failing.is_empty());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "after {after}: still failing {failing:?}\n{report:#}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Hands the VIP over the way an operator would on the appliance, in the
/// simulator's terms: the active controller is stopped behind its agent's
/// back (its process supervisor's pid file), so the agent demotes the host.
fn handover_template(run_dir: &Path) -> String {
    format!(
        "kill -TERM $(cut -d' ' -f1 {}/{{host}}/run/controller.pid)",
        run_dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_zone_passes_commissioning_and_the_failover_drill() {
    let s = sim("bc").await;
    let out = s.bsfgctl(&["zone", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("VIP 10.20.0.100 on alpha"), "{text}");
    assert!(text.contains("no problems found"), "{text}");

    // A healthy zone: the first upgrade step may run, in the planned order.
    let out = s.bsfgctl(&["upgrade", "check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.ends_with("may run now\n"), "{text}");
    let out = s.bsfgctl(&["--json", "upgrade", "plan"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let order: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["action"].as_str().unwrap(),
                s["host"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            "rebuild gamma",
            "rebuild beta",
            "handover alpha",
            "rebuild alpha"
        ],
        "{plan:#}"
    );

    let run_dir = s.zone_file.parent().unwrap().to_owned();
    let template = handover_template(&run_dir);
    let (code, failing, report) = s.commission(&["--drill", "--handover-command", &template]);
    assert_eq!((code, failing.clone()), (Some(0), vec![]), "{report:#}");
    let items: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        items,
        vec![
            "hosts-reachable",
            "mounts",
            "vip-single-holder",
            "controller-placement",
            "controller-bound-to-vip",
            "jetstream-voters",
            "jetstream-quorum",
            "streams-r3",
            "certificates",
            "clock-offset",
            "keepalived-unicast",
            "controller-builds",
            "nats-versions",
            "round-trip",
            "failover",
            "failback"
        ]
    );
    let failover = report["items"][14]["evidence"].to_string();
    assert!(
        failover.contains("beta holds the VIP and serves"),
        "{failover}"
    );
    let failback = report["items"][15]["evidence"].to_string();
    assert!(
        failback.contains("alpha holds the VIP and serves"),
        "{failback}"
    );
    // Back where it started: alpha active, beta standby.
    assert_eq!(
        s.zone.vip_holders().await.unwrap(),
        vec!["alpha".to_owned()]
    );
    // A second run confirms the earlier commissioning facts and still finds its own.
    let (code, failing, report) = s.commission(&[]);
    assert_eq!((code, failing), (Some(0), vec![]), "{report:#}");

    // The runbooks' `sh simulator` blocks, as written, against this zone
    // (the handover command of the drill is the simulator's, see above).
    let mut ran = 0;
    for (file, info, lines) in crate::support::blocks(&repo().join("docs/runbooks")) {
        if info != "sh simulator" {
            continue;
        }
        for line in lines
            .iter()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        {
            let (producer, _) = s.zone.client_tls();
            let bin_dir = Path::new(env!("CARGO_BIN_EXE_bsfgctl"))
                .parent()
                .unwrap()
                .to_owned();
            let out = Command::new("ip")
                .args(["netns", "exec", &s.zone.ns("mgmt"), "sh", "-c", line])
                .env(
                    "PATH",
                    format!(
                        "{}:{}",
                        bin_dir.display(),
                        std::env::var("PATH").unwrap_or_default()
                    ),
                )
                .env("BSFG_CLI_ZONE_FILE", &s.zone_file)
                .env("BSFG_CLI_CERT", &producer.certificate)
                .env("BSFG_CLI_KEY", &producer.private_key)
                .env("BSFG_CLI_CA", &producer.ca)
                .env("BSFG_CLI_HANDOVER_COMMAND", &template)
                .env("HOME", "/nonexistent")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{file}: `{line}` exited {:?}:\n{}{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 8, "only {ran} runbook commands ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_drill_fault_fails_the_commissioning_item_that_names_it() {
    let s = sim("bf").await;
    let z = &s.zone;
    let (code, failing, report) = s.commission(&[]);
    assert_eq!((code, failing), (Some(0), vec![]), "{report:#}");

    // artifact-mount-missing (on the standby)
    z.remove_artifacts("beta").unwrap();
    let (_, ev) = s.until_failing("artifact-mount-missing", "mounts").await;
    assert!(ev.contains("beta: ") && ev.contains("artifacts"), "{ev}");
    z.restore_artifacts("beta").unwrap();
    s.until_passing("artifact-mount-missing").await;

    // cert-below-threshold (on the standby)
    z.install_short_certificate("beta").unwrap();
    let (_, ev) = s
        .until_failing("cert-below-threshold", "certificates")
        .await;
    assert!(ev.contains("beta: ") && ev.contains("below 30days"), "{ev}");
    z.install_valid_certificate("beta").unwrap();
    s.until_passing("cert-below-threshold").await;

    // keepalived-killed (on the standby): no keepalived, no unicast peers to see.
    z.signal("beta", Kind::Keepalived, rustix::process::Signal::KILL)
        .unwrap();
    let (_, ev) = s
        .until_failing("keepalived-killed", "keepalived-unicast")
        .await;
    assert!(ev.contains("beta: no running keepalived"), "{ev}");
    z.start_keepalived("beta").unwrap();
    s.until_passing("keepalived-killed").await;

    // vrrp-one-way: beta stops hearing alpha's adverts and takes the VIP too.
    z.drop_vrrp("beta", "alpha").unwrap();
    let (failing, _) = s.until_failing("vrrp-one-way", "vip-single-holder").await;
    assert!(
        !failing.contains(&"controller-bound-to-vip".to_owned()),
        "{failing:?}"
    );
    z.heal_vrrp("beta").unwrap();
    s.until_passing("vrrp-one-way").await;

    // jetstream-killed (gamma's nats-server), then gamma-crash.
    z.signal("gamma", Kind::Nats, rustix::process::Signal::KILL)
        .unwrap();
    let (failing, ev) = s.until_failing("jetstream-killed", "hosts-reachable").await;
    assert!(ev.contains("gamma: NATS monitoring"), "{ev}");
    assert!(
        failing.contains(&"jetstream-voters".to_owned()),
        "{failing:?}"
    );
    z.start_nats("gamma").unwrap();
    s.until_passing("jetstream-killed").await;
    z.crash("gamma").unwrap();
    s.until_failing("gamma-crash", "hosts-reachable").await;
    z.restore("gamma").unwrap();
    s.until_passing("gamma-crash").await;

    // alpha-isolated: alpha loses quorum and demotes, beta takes over.
    z.partition("alpha", &["beta", "gamma"]).unwrap();
    let (failing, _) = s.until_failing("alpha-isolated", "jetstream-quorum").await;
    assert!(
        failing.contains(&"jetstream-voters".to_owned()),
        "{failing:?}"
    );
    z.heal_partition().unwrap();
    s.until_passing("alpha-isolated").await;

    // alpha-crash: whoever is active now, crash alpha; beta serves, alpha is missing.
    z.crash("alpha").unwrap();
    let (failing, ev) = s.until_failing("alpha-crash", "hosts-reachable").await;
    assert!(ev.contains("alpha: "), "{ev}");
    assert!(
        failing.contains(&"jetstream-voters".to_owned()),
        "{failing:?}"
    );
    z.restore("alpha").unwrap();
    s.until_passing("alpha-crash").await;
}
