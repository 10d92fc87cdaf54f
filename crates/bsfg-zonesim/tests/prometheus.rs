//! The shipped alert rules (ops/prometheus/bsfg-alerts.yaml) and dashboard
//! (ops/grafana/bsfg-zone.json) against a real Prometheus (Debian's
//! `prometheus`) scraping a simulator zone through the management network,
//! as the deployment runbook configures it, with 1 s scrape and evaluation
//! intervals (the rules' own `for:` durations unchanged):
//!
//! - alpha crashes: `BsfgScrapeTargetDown` for alpha's gate agent goes
//!   pending, and resolves once alpha is back;
//! - gamma crashes: the new meta leader's agent counts 2 of 3 voters
//!   current and `BsfgJetStreamVotersMissing` goes pending, and resolves
//!   once gamma is back and current;
//! - no other alert fires at any point (the simulator runs no node or NATS
//!   exporter, so `BsfgScrapeTargetMissing` is pending from the start);
//! - the dashboard's queries return series, but for the exporters the
//!   simulator does not run and a peer zone this test has none of.
//!
//! Needs root (network namespaces); fails without it.

use bsfg_mgmt::http;
use bsfg_zonesim::load::{Load, LoadConfig};
use bsfg_zonesim::netns;
use bsfg_zonesim::zone::{Options, Zone};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 19090;
/// Longer than a failover, a boot and a rejoin take in the simulator.
pub(crate) const SETTLE: Duration = Duration::from_secs(90);
/// Pending from the start: the rule wants node and NATS exporter targets,
/// which the simulator does not run.
pub(crate) const WITHOUT_EXPORTERS: &str = "BsfgScrapeTargetMissing";

fn repo() -> PathBuf {
    std::fs::canonicalize(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap()
}

/// Prometheus in the management namespace; killed when dropped.
pub(crate) struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_config(z: &Zone) -> String {
    let zone = &z.spec.zone;
    let targets = |port: u16| {
        z.spec
            .service_hosts()
            .into_iter()
            .map(|h| {
                format!(
                    "      - {{targets: [\"{}:{port}\"], labels: {{zone: {zone}, host: {h}}}}}\n",
                    z.spec.host(h).management_address
                )
            })
            .collect::<String>()
    };
    format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}}\n\
         rule_files: [{}]\n\
         scrape_configs:\n\
         \x20 - job_name: bsfg-gate-agent\n    static_configs:\n{}\
         \x20 - job_name: bsfg-controller\n    static_configs:\n{}",
        repo().join("ops/prometheus/bsfg-alerts.yaml").display(),
        targets(z.spec.ports.agent_management),
        targets(z.spec.ports.controller_management),
    )
}

pub(crate) fn start_prometheus(z: &Zone) -> Prometheus {
    let dir = z.run_dir.join("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, prometheus_config(z)).unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &z.ns(netns::MGMT), "prometheus"])
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{PORT}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus (Debian's prometheus package; scripts/lib/prerequisites.sh)");
    Prometheus(child)
}

/// One active alert: its name, labels and state (pending or firing).
#[derive(Debug, Clone)]
pub(crate) struct Alert {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) state: String,
}

async fn api(z: &Zone, path: String) -> Result<serde_json::Value, String> {
    z.in_ns(netns::MGMT, move || async move {
        http::get_json::<serde_json::Value>(
            &format!("127.0.0.1:{PORT}"),
            &path,
            Duration::from_secs(5),
        )
        .await
        .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("{e:#}"))?
}

async fn alerts(z: &Zone) -> Result<Vec<Alert>, String> {
    let v = api(z, "/api/v1/alerts".into()).await?;
    let list = v["data"]["alerts"]
        .as_array()
        .ok_or_else(|| format!("no alerts in {v}"))?;
    Ok(list
        .iter()
        .map(|a| {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(a["labels"].clone()).unwrap_or_default();
            Alert {
                name: labels.get("alertname").cloned().unwrap_or_default(),
                state: a["state"].as_str().unwrap_or_default().to_owned(),
                labels,
            }
        })
        .collect())
}

/// Watches the alerts through the phases: every firing alert must be one
/// the phase allows; every pending one is noted.
#[derive(Default)]
pub(crate) struct Watch {
    pub(crate) unexpected_firing: BTreeSet<String>,
    pub(crate) firing_seen: BTreeSet<String>,
    pub(crate) pending_seen: BTreeSet<String>,
    pub(crate) timeline: Vec<String>,
    pub(crate) started: Option<Instant>,
}

impl Watch {
    pub(crate) fn at(&self) -> f64 {
        self.started.map_or(0.0, |s| s.elapsed().as_secs_f64())
    }

    /// One look at the active alerts: a firing one the phase does not
    /// allow is noted, and so is every new pending one.
    pub(crate) async fn observe(&mut self, z: &Zone, allowed: &[&str]) -> Option<Vec<Alert>> {
        let active = alerts(z).await.ok()?;
        for a in &active {
            let tag = format!("{} {:?}", a.name, a.labels.get("host"));
            if a.state == "firing" && self.firing_seen.insert(tag.clone()) {
                self.timeline
                    .push(format!("{:6.1} s  {tag} firing", self.at()));
            }
            if a.state == "firing" && !allowed.contains(&a.name.as_str()) {
                self.unexpected_firing.insert(tag.clone());
            }
            if a.state == "pending" && self.pending_seen.insert(tag.clone()) {
                self.timeline
                    .push(format!("{:6.1} s  {tag} pending", self.at()));
            }
        }
        Some(active)
    }

    /// Polls until `cond` holds on the active alerts (or `SETTLE` passes).
    pub(crate) async fn until(
        &mut self,
        z: &Zone,
        what: &str,
        allowed: &[&str],
        cond: impl Fn(&[Alert]) -> bool,
    ) -> f64 {
        let start = Instant::now();
        let mut last = Vec::new();
        loop {
            if let Some(active) = self.observe(z, allowed).await {
                last = active.clone();
                if cond(&active) {
                    let took = start.elapsed().as_secs_f64();
                    self.timeline
                        .push(format!("{:6.1} s  {what} (after {took:.1} s)", self.at()));
                    return took;
                }
            }
            if start.elapsed() > SETTLE {
                let gates = futures_status(z).await;
                panic!(
                    "not within {SETTLE:?}: {what}\nactive: {last:#?}\n{gates}\n{}",
                    self.timeline.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Every service host's failing gates, for a failure message.
async fn futures_status(z: &Zone) -> String {
    let mut out = String::new();
    for h in z.spec.service_hosts() {
        match z.agent_status(h).await {
            Ok(s) => out.push_str(&format!("{h}: {} {:?}\n", s.role, s.gates)),
            Err(e) => out.push_str(&format!("{h}: {e:#}\n")),
        }
    }
    out
}

pub(crate) fn has(active: &[Alert], name: &str, host: &str) -> bool {
    active.iter().any(|a| {
        a.name == name
            && a.labels.get("host").map(String::as_str) == Some(host)
            && (a.state == "pending" || a.state == "firing")
    })
}

/// Warnings over a 5 minute window that alpha's failover trips (the
/// alpha phase's consequences, still firing in the phases after it).
pub(crate) const FAILOVER_WINDOW: [&str; 2] =
    ["BsfgLeaseWriteFailures", "BsfgTlsHandshakeFailures"];

/// Nothing active but the baseline and `lingering` (firing since an earlier fault).
pub(crate) fn settled(active: &[Alert], lingering: &[&str]) -> bool {
    active
        .iter()
        .all(|a| a.name == WITHOUT_EXPORTERS || lingering.contains(&a.name.as_str()))
}

pub(crate) fn only_baseline(active: &[Alert]) -> bool {
    active.iter().all(|a| a.name == WITHOUT_EXPORTERS)
}

/// Every panel query of the dashboard, with `$zone` set.
fn dashboard_queries(zone: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("ops/grafana/bsfg-zone.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(e)) = m.get("expr") {
                    out.push(e.clone());
                }
                m.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&d["panels"], &mut out);
    out.into_iter().map(|e| e.replace("$zone", zone)).collect()
}

/// Series this test cannot have: the node and NATS exporters (not run by
/// the simulator) and replication from a peer zone (none here).
fn needs_what_the_simulator_lacks(expr: &str) -> bool {
    expr.contains("node_")
        || expr.contains("gnatsd_")
        || expr.contains("replicat")
        || expr.contains("artifact_transfer")
        || expr.contains("artifacts_rehydrat")
}

pub(crate) async fn series_count(z: &Zone, expr: &str) -> Result<usize, String> {
    let q = percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC);
    let v = api(z, format!("/api/v1/query?query={q}")).await?;
    if v["status"] != "success" {
        return Err(format!("{v}"));
    }
    Ok(v["data"]["result"].as_array().map_or(0, Vec::len))
}

#[test]
fn prometheus_alerts_follow_the_faults_and_the_dashboard_has_series() {
    bsfg_testkit::require_root("network namespaces of the zone simulator");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let instance = format!("pm{}", std::process::id() % 100_000);
    let mut opts = Options::new(&instance);
    opts.repo = repo();
    opts.quiet = true;
    let zone = tokio::task::block_in_place(|| Zone::create(&opts)).expect("create the zone");
    zone.boot(Duration::from_secs(120))
        .await
        .expect("boot the zone");
    let z = &zone;
    // Declared after the zone: stopped before the zone's namespaces go.
    let _prometheus = start_prometheus(z);
    let [a, b, g] = z.spec.host_names().map(str::to_owned);
    let epoch = Instant::now();
    let load = Load::start(
        &z.runtime(netns::CLIENT).unwrap(),
        &z.spec.endpoint(),
        &z.client_tls().0,
        &z.workload,
        epoch,
        &LoadConfig {
            producers: 2,
            ..LoadConfig::new(&format!("prom-{instance}"))
        },
    )
    .unwrap();
    let mut w = Watch {
        started: Some(Instant::now()),
        ..Default::default()
    };

    // Baseline: every agent target up, no alert but the exporters' absence.
    w.until(
        z,
        "rules evaluated: no alert active but the exporters' absence",
        &[],
        |act| only_baseline(act) && act.iter().any(|x| x.name == WITHOUT_EXPORTERS),
    )
    .await;
    let ready = Instant::now();
    loop {
        let n = series_count(z, "up{job=\"bsfg-gate-agent\"} == 1").await;
        if n == Ok(2) {
            break;
        }
        assert!(ready.elapsed() < SETTLE, "gate agents not scraped: {n:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The dashboard, on a zone that serves under load.
    let tls = z.client_tls().1;
    let (endpoint, consumer) = (z.spec.endpoint(), z.workload.consumer.clone());
    let expected = load.view().acked_ids();
    let _ = z
        .in_ns(netns::CLIENT, move || async move {
            bsfg_zonesim::load::read_back(
                &endpoint,
                &tls,
                &consumer,
                &expected,
                Duration::from_secs(2),
                Duration::from_secs(20),
            )
            .await
        })
        .await;
    // One append refused (no fact): the failure panel's series exists
    // from the first failure on.
    let (producer, endpoint) = (z.client_tls().0, z.spec.endpoint());
    let mut bad = bsfg_zonesim::load::fact_request(&z.workload, "prom", "no-fact", 0, 0);
    bad.fact = None;
    let refused = z
        .in_ns(netns::CLIENT, move || async move {
            bsfg_zonesim::load::append_one(&endpoint, &producer, bad, Duration::from_secs(10)).await
        })
        .await
        .unwrap();
    assert!(refused.is_err(), "an append without a fact was accepted");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut empty = Vec::new();
    let mut skipped = 0;
    let queries = dashboard_queries(&z.spec.zone);
    for q in &queries {
        if needs_what_the_simulator_lacks(q) {
            skipped += 1;
            continue;
        }
        match series_count(z, q).await {
            Ok(0) => empty.push(q.clone()),
            Ok(_) => {}
            Err(e) => empty.push(format!("{q}: {e}")),
        }
    }
    println!(
        "dashboard: {} queries, {} return series, {skipped} need exporters or a peer zone the simulator lacks",
        queries.len(),
        queries.len() - skipped - empty.len()
    );
    assert!(
        empty.is_empty(),
        "dashboard queries without series: {empty:#?}"
    );

    // alpha crashes: its agent's target goes down. A failover also counts
    // lease write failures (beta's writes refused until alpha's lease
    // expires) and TLS handshakes the producers abandoned mid-way; those
    // two warnings look at a 5 minute window and so outlast the test.
    let allowed_alpha = [
        WITHOUT_EXPORTERS,
        "BsfgScrapeTargetDown",
        "BsfgJetStreamVotersMissing",
        "BsfgQuorumGateFailing",
        "BsfgStreamReplicaNotCurrent",
        FAILOVER_WINDOW[0],
        FAILOVER_WINDOW[1],
    ];
    z.crash(&a).unwrap();
    w.timeline.push(format!("{:6.1} s  {a} crashed", w.at()));
    let pending_alpha = w
        .until(
            z,
            "BsfgScrapeTargetDown for alpha pending or firing",
            &allowed_alpha,
            |act| has(act, "BsfgScrapeTargetDown", &a),
        )
        .await;
    // The zone fails over before alpha boots again.
    z.wait_serving(&b, SETTLE).await.unwrap();
    w.timeline.push(format!("{:6.1} s  {b} serves", w.at()));
    z.restore(&a).unwrap();
    w.timeline.push(format!("{:6.1} s  {a} restored", w.at()));
    z.wait_formed(&[&a, &b, &g], SETTLE).await.unwrap();
    let resolved_alpha = w
        .until(z, "alpha's alerts resolved", &allowed_alpha, |act| {
            settled(act, &FAILOVER_WINDOW)
        })
        .await;
    // Settled before the next fault, as `bsfgctl upgrade check` judges it:
    // every voter and replica current, alpha a ready standby.
    let settling = Instant::now();
    loop {
        let (safe, blockers) =
            tokio::task::block_in_place(|| bsfg_zonesim::drills::upgrade::upgrade_check(z))
                .unwrap();
        if safe {
            break;
        }
        assert!(
            settling.elapsed() < SETTLE,
            "the zone never settled: {blockers}"
        );
        w.observe(z, &allowed_alpha).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    w.timeline.push(format!(
        "{:6.1} s  settled: bsfgctl upgrade check passes",
        w.at()
    ));

    // gamma crashes: the meta leader (alpha or beta now) sees 2 of 3.
    let allowed_gamma = [
        WITHOUT_EXPORTERS,
        "BsfgJetStreamVotersMissing",
        "BsfgStreamReplicaNotCurrent",
        FAILOVER_WINDOW[0],
        FAILOVER_WINDOW[1],
    ];
    z.crash(&g).unwrap();
    w.timeline.push(format!("{:6.1} s  {g} crashed", w.at()));
    let pending_gamma = w
        .until(
            z,
            "BsfgJetStreamVotersMissing pending or firing",
            &allowed_gamma,
            |act| {
                act.iter().any(|x| {
                    x.name == "BsfgJetStreamVotersMissing"
                        && (x.state == "pending" || x.state == "firing")
                })
            },
        )
        .await;
    z.restore(&g).unwrap();
    w.timeline.push(format!("{:6.1} s  {g} restored", w.at()));
    let resolved_gamma = w
        .until(z, "gamma's alert resolved", &allowed_gamma, |act| {
            settled(act, &FAILOVER_WINDOW)
        })
        .await;
    load.stop(Duration::from_secs(5)).await;

    println!("{}", w.timeline.join("\n"));
    println!(
        "alpha crash: alert pending after {pending_alpha:.1} s, resolved {resolved_alpha:.1} s after the restore; \
         gamma crash: pending after {pending_gamma:.1} s, resolved {resolved_gamma:.1} s after the restore"
    );
    assert!(
        w.unexpected_firing.is_empty(),
        "alerts fired that the faults do not explain: {:?}\n{}",
        w.unexpected_firing,
        w.timeline.join("\n")
    );
}
