//! ops/: the Prometheus alert rules and the Grafana dashboard.
//!
//! - `promtool check rules` and `promtool test rules` (Debian's `prometheus`
//!   package; scripts/lib/prerequisites.sh installs it): the rules load, and
//!   each tested rule fires on the series the binaries export;
//! - every `bsfg_*` series in a rule or a panel is one of the contract's
//!   families ([`bsfg_mgmt::metrics`], which the controller and the gate
//!   agent register, as their unit tests check), and every exporter series
//!   is from the documented node/NATS exporter names;
//! - every row of the seed's monitoring table and every threshold of
//!   contract section 9 has a rule.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rules_text() -> String {
    std::fs::read_to_string(repo().join("ops/prometheus/bsfg-alerts.yaml")).unwrap()
}

/// The series the controller and the gate agent serve: the management
/// contract's families (each daemon's unit test proves it registers exactly
/// these).
fn bsfg_series() -> BTreeSet<String> {
    bsfg_mgmt::metrics::controller::ALL
        .iter()
        .chain(bsfg_mgmt::metrics::agent::ALL)
        .chain(bsfg_mgmt::metrics::backup::ALL)
        .chain(bsfg_mgmt::metrics::artifact_backup::ALL)
        .flat_map(|f| f.series())
        .collect()
}

/// Exporter series the rules and dashboard may use: prometheus-node-exporter
/// and prometheus-nats-exporter (`-varz -healthz`) names, and the blackbox
/// exporter's probe results, as documented by those projects; `up` is
/// Prometheus' own.
const EXPORTER_SERIES: &[&str] = &[
    "up",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
    "node_timex_offset_seconds",
    "node_timex_sync_status",
    "node_cpu_seconds_total",
    "node_systemd_unit_state",
    "gnatsd_healthz_status",
    "gnatsd_varz_jetstream_meta_cluster_size",
    "gnatsd_varz_jetstream_meta_leader",
    // prometheus-blackbox-exporter's /probe (gamma's service probe).
    "probe_success",
    "probe_duration_seconds",
];

/// Identifiers in a PromQL expression that name series (not functions,
/// aggregations, keywords, grouping labels, label matchers or durations).
fn series_in(expr: &str) -> BTreeSet<String> {
    #[derive(PartialEq)]
    enum Tok {
        Ident(String),
        Open,
        Close,
        Other,
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            i += 1;
        } else if c == '{' || c == '[' {
            let close = if c == '{' { '}' } else { ']' };
            while i < chars.len() && chars[i] != close {
                if chars[i] == '"' {
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        i += 1;
                    }
                }
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            toks.push(Tok::Other);
        } else {
            toks.push(match c {
                '(' => Tok::Open,
                ')' => Tok::Close,
                _ => Tok::Other,
            });
            i += 1;
        }
    }
    let grouping = [
        "by",
        "on",
        "without",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let keywords = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    let mut out = BTreeSet::new();
    let mut k = 0;
    while k < toks.len() {
        if let Tok::Ident(w) = &toks[k] {
            let next_open = toks.get(k + 1) == Some(&Tok::Open);
            if grouping.contains(&w.as_str()) {
                if next_open {
                    while k < toks.len() && toks[k] != Tok::Close {
                        k += 1;
                    }
                }
            } else if !next_open && !keywords.contains(&w.as_str()) {
                out.insert(w.clone());
            }
        }
        k += 1;
    }
    out
}

fn rules() -> Vec<serde_yaml_ng::Value> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&rules_text()).unwrap();
    doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().clone())
        .collect()
}

#[test]
fn promtool_loads_the_rules_and_their_unit_tests_pass() {
    let promtool = bsfg_testkit::bins::system_program("promtool", "prometheus");
    let dir = repo().join("ops/prometheus");
    for args in [
        ["check", "rules", "bsfg-alerts.yaml"],
        ["test", "rules", "bsfg-alerts.test.yaml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_rule_is_complete_and_names_only_exported_series() {
    let known = bsfg_series();
    assert!(
        known.contains("bsfg_append_requests_total") && known.contains("bsfg_gate_state"),
        "{known:?}"
    );
    let mut names = BTreeSet::new();
    for r in rules() {
        let alert = r["alert"].as_str().expect("every rule is an alert");
        assert!(names.insert(alert.to_owned()), "duplicate alert {alert}");
        let expr = r["expr"].as_str().unwrap();
        let sev = r["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning"].contains(&sev),
            "{alert}: severity {sev:?}"
        );
        for k in ["summary", "description"] {
            assert!(
                r["annotations"][k].as_str().is_some_and(|s| !s.is_empty()),
                "{alert}: no {k}"
            );
        }
        let series = series_in(expr);
        assert!(!series.is_empty(), "{alert}: no series in {expr}");
        for s in series {
            assert!(
                known.contains(&s) || EXPORTER_SERIES.contains(&s.as_str()),
                "{alert}: {s} is exported by neither the controller, the agent nor the documented exporters"
            );
        }
    }
}

#[test]
fn the_seed_monitoring_table_and_contract_thresholds_are_covered() {
    let rules = rules();
    let expr_of = |alert: &str| -> String {
        rules
            .iter()
            .find(|r| r["alert"].as_str() == Some(alert))
            .unwrap_or_else(|| panic!("no alert {alert}"))["expr"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // (alert, a fragment its expression must contain): monitoring table rows, then section 9.
    for (alert, fragment) in [
        (
            "BsfgVipOnNoServiceHost",
            r#"bsfg_gate_state{gate="vip"}) == 0"#,
        ),
        (
            "BsfgVipOnBothServiceHosts",
            r#"bsfg_gate_state{gate="vip"}) > 1"#,
        ),
        ("BsfgVipOnInactiveHost", "bsfg_gate_agent_role"),
        ("BsfgRoleTransitionChurn", "bsfg_role_transitions_total"),
        ("BsfgVrrpTransitionChurn", "bsfg_vrrp_state"),
        ("BsfgNoControllerServing", "bsfg_controller_active"),
        (
            "BsfgControllerServingWithoutVip",
            "bsfg_controller_serving == 1 unless",
        ),
        (
            "BsfgControllerOnStandby",
            "bsfg_controller_serving == 1 and",
        ),
        ("BsfgControllerOnGamma", r#"host="gamma""#),
        ("BsfgJetStreamUnhealthy", "gnatsd_healthz_status"),
        (
            "BsfgJetStreamUnhealthy",
            r#"bsfg_gate_state{gate="jetstream"} == 0"#,
        ),
        (
            "BsfgJetStreamVotersMissing",
            r#"bsfg_jetstream_voters_current{view="leader"} < 3"#,
        ),
        (
            "BsfgJetStreamNoMetaLeader",
            "gnatsd_varz_jetstream_meta_leader",
        ),
        (
            "BsfgArtifactStorageUnavailableOnActive",
            r#"bsfg_gate_state{gate="artifacts"} == 0"#,
        ),
        ("BsfgCertificateExpiresSoon", "< 30 * 86400"),
        (
            "BsfgCaCertificateExpiresSoon",
            "bsfg_ca_certificate_expiry_timestamp_seconds - time() < 30 * 86400",
        ),
        ("BsfgReplicationLag", "bsfg_replication_lag_seconds > 1"),
        ("BsfgReplicationBacklog", "bsfg_replication_backlog > 10000"),
        (
            "BsfgStoreBufferFilling",
            "bsfg_store_buffer_fill_percent > 80",
        ),
        ("BsfgRpcLatencyHigh", "> 0.5"),
        ("BsfgNoConfirmations", "> 60"),
        (
            "BsfgTlsHandshakeFailures",
            "bsfg_tls_handshake_failures_total[5m]) > 0",
        ),
    ] {
        let e = expr_of(alert);
        assert!(e.contains(fragment), "{alert}: {e:?} lacks {fragment:?}");
    }
}

#[test]
fn the_dashboard_is_one_zone_and_queries_only_exported_series() {
    let text = std::fs::read_to_string(repo().join("ops/grafana/bsfg-zone.json")).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(d["uid"], "bsfg-zone");
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, vec!["datasource", "zone"]);
    let known = bsfg_series();
    let mut exprs = 0;
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap();
        assert!(ids.insert(title.to_owned()), "duplicate panel {title}");
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}");
        for t in targets {
            let e = t["expr"].as_str().unwrap();
            exprs += 1;
            assert!(
                e.contains("zone=\"$zone\""),
                "{title}: {e} is not restricted to the zone"
            );
            for s in series_in(e) {
                assert!(
                    known.contains(&s) || EXPORTER_SERIES.contains(&s.as_str()),
                    "{title}: {s} is not exported"
                );
            }
        }
    }
    assert!(exprs > 30, "{exprs}");
}

#[test]
fn series_extraction_ignores_labels_functions_and_groupings() {
    let s = series_in(
        r#"histogram_quantile(0.99, sum by (zone, method, le) (rate(bsfg_rpc_latency_seconds_bucket{x="up"}[5m]))) > 0.5 and on (zone, host) up"#,
    );
    assert_eq!(
        s.into_iter().collect::<Vec<_>>(),
        vec!["bsfg_rpc_latency_seconds_bucket", "up"]
    );
}
