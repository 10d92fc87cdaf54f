//! `bsfgctl pki` end to end: the CLI makes the zone CA and issues the
//! simulator zone's whole certificate plan (the zone.json that
//! modules/lib/operator.nix computes for the simulator's paths), the staged
//! host trees are copied onto the hosts' paths as the deployment runbook
//! copies them, and the real zone runs on them: nats-server forms its
//! cluster over the route certificates, each gate agent's certificate gate
//! passes and alpha's agent promotes its controller, the controller serves
//! the producer's append. Refused: a client certificate that expired and one
//! from a foreign CA; `pki check` names an expired controller certificate.
//!
//! Needs root (network namespaces); fails without it.

use bsfg_pki::{Authority, LeafRequest, Usage, Validity};
use bsfg_zonesim::zone::{Options, Zone};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn repo() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap()
}

fn bsfgctl(zone_file: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bsfgctl"))
        .args(args)
        .env("BSFG_CLI_ZONE_FILE", zone_file)
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    text
}

/// Copies a staged host tree onto `/`, keeping the modes (`cp -a`, as the
/// runbook's `tar -xp`).
fn copy_onto_root(tree: &Path) {
    let st = Command::new("cp")
        .args(["-a", "--", &format!("{}/.", tree.display()), "/"])
        .status()
        .unwrap();
    assert!(st.success());
}

/// `bsfgctl pki check --host <host>` on the host's staged tree in `pki`.
fn check_staged(zone_file: &Path, pki: &Path, host: &str, extra: &[&str]) -> Output {
    let root = pki.join("hosts").join(host);
    let mut args = vec![
        "pki",
        "check",
        "--host",
        host,
        "--root",
        root.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    bsfgctl(zone_file, &args)
}

/// zone.json of `zone_nix` as modules/lib/operator.nix computes it (with a
/// simulator's `run_dir`: its paths), written into `dir`.
fn operator_zone_file(zone_nix: &Path, run_dir: Option<&Path>, dir: &Path) -> PathBuf {
    let run = run_dir
        .map(|r| format!(" runDir = \"{}\";", r.display()))
        .unwrap_or_default();
    let expr = format!(
        "import {}/modules/lib/operator.nix {{ zone = import {};{run} }}",
        repo().display(),
        zone_nix.display(),
    );
    let json = crate::support::nix_eval_json(&expr);
    let path = dir.join("bsfgctl-zone.json");
    std::fs::write(&path, &json).unwrap();
    path
}

#[test]
fn init_from_an_intermediate_issue_renew_and_check_the_example_zone() {
    let tmp = tempfile::tempdir().unwrap();
    let zone_file = operator_zone_file(&repo().join("hosts/zone.nix"), None, tmp.path());
    let pki = tmp.path().join("pki");
    let dir = pki.to_str().unwrap();

    // An enterprise root and the intermediate it hands to the zone.
    let root = Authority::generate_root("enterprise root", Validity::days_from_now(3650)).unwrap();
    let root_cert = root
        .issue_intermediate("plant-a intermediate", Validity::days_from_now(1825))
        .unwrap();
    let (icert, ikey) = (
        tmp.path().join("intermediate.pem"),
        tmp.path().join("intermediate.key"),
    );
    std::fs::write(&icert, &root_cert.certificate_pem).unwrap();
    std::fs::write(&ikey, &root_cert.private_key_pem).unwrap();

    // A leaf is no CA: refused, nothing written.
    let leaf = root
        .issue(
            &LeafRequest {
                common_name: "x".into(),
                dns_names: vec![],
                ip_addresses: vec![],
                usage: Usage::Client,
            },
            Validity::days_from_now(10),
        )
        .unwrap();
    let (lcert, lkey) = (tmp.path().join("leaf.pem"), tmp.path().join("leaf.key"));
    std::fs::write(&lcert, &leaf.certificate_pem).unwrap();
    std::fs::write(&lkey, &leaf.private_key_pem).unwrap();
    let out = bsfgctl(
        &zone_file,
        &[
            "pki",
            "init",
            "--dir",
            dir,
            "--ca-cert",
            lcert.to_str().unwrap(),
            "--ca-key",
            lkey.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a CA"));
    assert!(!pki.join("ca.key").exists());

    let text = ok(&bsfgctl(
        &zone_file,
        &[
            "pki",
            "init",
            "--dir",
            dir,
            "--ca-cert",
            icert.to_str().unwrap(),
            "--ca-key",
            ikey.to_str().unwrap(),
        ],
    ));
    assert!(text.contains("plant-a intermediate (existing)"), "{text}");
    let again = bsfgctl(&zone_file, &["pki", "init", "--dir", dir]);
    assert_eq!(again.status.code(), Some(2), "init never replaces a CA");

    ok(&bsfgctl(
        &zone_file,
        &["pki", "issue", "--dir", dir, "--days", "40"],
    ));
    // The staged trees: where the example zone's description puts each file.
    let alpha = pki.join("hosts/alpha/var/lib/bsfg/tls");
    for f in [
        "controller.pem",
        "controller.key",
        "ca.pem",
        "nats-route.pem",
        "nats-route.key",
    ] {
        assert!(alpha.join(f).exists(), "{f}");
    }
    assert!(
        !pki.join("hosts/gamma/var/lib/bsfg/tls/controller.pem")
            .exists()
    );
    // gamma's service probe: its client certificate on gamma only.
    let gamma = pki.join("hosts/gamma/var/lib/bsfg/tls");
    assert!(gamma.join("probe.pem").exists() && gamma.join("probe.key").exists());
    assert!(!alpha.join("probe.key").exists());
    let probe =
        bsfg_pki::inspect::parse_pem(&std::fs::read(gamma.join("probe.pem")).unwrap()).unwrap();
    assert_eq!(probe.common_name.as_deref(), Some("plant-a-probe"));
    let facts = bsfg_pki::inspect::parse_pem(&std::fs::read(alpha.join("controller.pem")).unwrap())
        .unwrap();
    assert_eq!(facts.common_name.as_deref(), Some("plant-a-bsfg"));
    assert_eq!(
        facts.ip_addresses,
        ["10.20.0.100", "10.20.0.11", "10.20.0.12"].map(|a| a.parse::<std::net::IpAddr>().unwrap())
    );
    bsfg_pki::inspect::verify_signed_by(
        &std::fs::read_to_string(alpha.join("controller.pem")).unwrap(),
        &root_cert.certificate_pem,
    )
    .unwrap();

    // 40 days left: valid for the zone's 30-day policy, not for a 60-day one.
    ok(&bsfgctl(&zone_file, &["pki", "check", "--dir", dir]));
    let out = bsfgctl(
        &zone_file,
        &[
            "pki",
            "check",
            "--dir",
            dir,
            "--min-validity",
            "60d",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let below: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "below_minimum")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        below.contains(&"controller") && below.contains(&"client-bsfg-operator"),
        "{rows:#}"
    );

    let before = std::fs::read(alpha.join("controller.key")).unwrap();
    let kept = ok(&bsfgctl(
        &zone_file,
        &["pki", "renew", "--dir", dir, "--within", "10d"],
    ));
    assert!(!kept.contains("issued "), "{kept}");
    let renewed = ok(&bsfgctl(
        &zone_file,
        &["pki", "renew", "--dir", dir, "--within", "60d"],
    ));
    assert!(
        renewed.contains("issued controller") && renewed.contains("issued nats-route-gamma"),
        "{renewed}"
    );
    assert_ne!(
        std::fs::read(alpha.join("controller.key")).unwrap(),
        before,
        "renewal is a new key"
    );
    ok(&bsfgctl(
        &zone_file,
        &["pki", "check", "--dir", dir, "--min-validity", "60d"],
    ));
    ok(&check_staged(&zone_file, &pki, "alpha", &[]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bsfgctl_pki_output_runs_a_simulator_zone_and_bad_certificates_are_refused() {
    bsfg_testkit::require_root("network namespaces of the zone simulator");
    let instance = format!("pk{}", std::process::id() % 100_000);
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
    let run_dir = opts.run_dir();

    let zone_file = operator_zone_file(&opts.zone_file, Some(&run_dir), &run_dir);

    // Replace every certificate the simulator made with bsfgctl's.
    let pki = run_dir.join("pki");
    let dir = pki.to_str().unwrap();
    ok(&bsfgctl(&zone_file, &["pki", "init", "--dir", dir]));
    let issued = ok(&bsfgctl(&zone_file, &["pki", "issue", "--dir", dir]));
    for name in [
        "controller",
        "nats-route-alpha",
        "nats-route-beta",
        "nats-route-gamma",
        "client-mes-producer",
        "probe",
    ] {
        assert!(issued.contains(&format!("issued {name}")), "{issued}");
    }
    let again = ok(&bsfgctl(&zone_file, &["pki", "issue", "--dir", dir]));
    assert!(
        !again.contains("issued "),
        "a second issue keeps what exists: {again}"
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&pki.join("ca.key")), 0o600);
    assert_eq!(mode(&pki.join("certificates/controller.key")), 0o600);
    let hosts = zone.spec.host_names();
    for h in hosts {
        let tree = pki.join("hosts").join(h);
        ok(&bsfgctl(
            &zone_file,
            &[
                "pki",
                "check",
                "--host",
                h,
                "--root",
                tree.to_str().unwrap(),
            ],
        ));
        copy_onto_root(&tree);
        // The installed files, at the paths the daemons read.
        let text = ok(&bsfgctl(&zone_file, &["pki", "check", "--host", h]));
        assert!(text.contains("nats-route-"), "{text}");
    }
    let (producer, _) = zone.client_tls();
    let ca_pem = std::fs::read_to_string(pki.join("ca.pem")).unwrap();
    for (from, to) in [
        (
            pki.join("certificates/client-mes-producer.pem"),
            &producer.certificate,
        ),
        (
            pki.join("certificates/client-mes-producer.key"),
            &producer.private_key,
        ),
        (pki.join("ca.pem"), &producer.ca),
    ] {
        std::fs::copy(from, to).unwrap();
    }
    let report = ok(&bsfgctl(&zone_file, &["pki", "check", "--dir", dir]));
    assert!(report.contains("valid"), "{report}");

    // The zone runs on them: the cluster forms over the route certificates,
    // alpha's agent passes its certificate gate and promotes, the controller serves.
    zone.boot(Duration::from_secs(180))
        .await
        .expect("the zone boots on bsfgctl's certificates");

    let append = |cert: &Path, key: &Path, id: &str| {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &zone.ns("mgmt"),
                env!("CARGO_BIN_EXE_bsfgctl"),
            ])
            .args(["append", "--class", "commissioning", "--message-id", id])
            .args(["--from-zone", &zone.spec.zone])
            .args([
                "--subject",
                "test:pki",
                "--predicate",
                "issued",
                "--object-json",
                "{}",
            ])
            .args([
                "--endpoint",
                &format!(
                    "https://{}:{}",
                    zone.spec.vip.address, zone.spec.ports.controller
                ),
            ])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--ca")
            .arg(&producer.ca)
            .env("BSFG_CLI_ZONE_FILE", &zone_file)
            .env("HOME", "/nonexistent")
            .output()
            .unwrap()
    };
    let out = append(&producer.certificate, &producer.private_key, "pki-ok");
    ok(&out);

    // Refused: an expired certificate of the same identity from the zone CA,
    // and a current one from a foreign CA.
    let ca = Authority::load(
        &ca_pem,
        &std::fs::read_to_string(pki.join("ca.key")).unwrap(),
    )
    .unwrap();
    let request = LeafRequest {
        common_name: "mes-producer".into(),
        dns_names: vec!["mes-producer".into()],
        ip_addresses: vec![],
        usage: Usage::Client,
    };
    let now = time::OffsetDateTime::now_utc();
    let expired = ca
        .issue(
            &request,
            Validity {
                not_before: now - time::Duration::days(30),
                not_after: now - time::Duration::days(1),
            },
        )
        .unwrap();
    let foreign = Authority::generate("foreign CA", Validity::days_from_now(30))
        .unwrap()
        .issue(&request, Validity::days_from_now(30))
        .unwrap();
    for (what, issued) in [("expired", expired), ("foreign", foreign)] {
        let c = run_dir.join(format!("{what}.pem"));
        let k = run_dir.join(format!("{what}.key"));
        std::fs::write(&c, &issued.certificate_pem).unwrap();
        std::fs::write(&k, &issued.private_key_pem).unwrap();
        let out = append(&c, &k, &format!("pki-{what}"));
        assert_ne!(
            out.status.code(),
            Some(0),
            "the {what} client certificate was accepted: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // `pki check` names an expired controller certificate on a host.
    let alpha = hosts[0];
    let spec_alpha = zone.spec.host(alpha);
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&zone_file).unwrap()).unwrap();
    let controller: bsfg_pki::plan::Certificate =
        serde_json::from_value(plan["pki"]["certificates"][0].clone()).unwrap();
    assert_eq!(controller.name, "controller");
    let expired_controller = ca
        .issue(
            &controller.request(),
            Validity {
                not_before: now - time::Duration::days(30),
                not_after: now - time::Duration::days(1),
            },
        )
        .unwrap();
    let staged = pki.join("hosts").join(alpha);
    let at = |p: &Path| staged.join(p.strip_prefix("/").unwrap());
    std::fs::write(
        at(&spec_alpha.paths.tls.certificate),
        &expired_controller.certificate_pem,
    )
    .unwrap();
    std::fs::write(
        at(&spec_alpha.paths.tls.private_key),
        &expired_controller.private_key_pem,
    )
    .unwrap();
    let out = bsfgctl(
        &zone_file,
        &[
            "pki",
            "check",
            "--host",
            alpha,
            "--root",
            staged.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("expired"), "{text}");
}

/// `bsfgctl pki rollover` on the example zone's CA directory: each step
/// stages what it says (the trust bundle and the leaves on every host's
/// tree), `check` names the bundle's CAs and each leaf's issuer, and a
/// step out of order is refused with nothing written.
#[test]
fn a_ca_rollover_stages_the_bundle_step_by_step_and_refuses_a_step_out_of_order() {
    let tmp = tempfile::tempdir().unwrap();
    let zone_file = operator_zone_file(&repo().join("hosts/zone.nix"), None, tmp.path());
    let pki = tmp.path().join("pki");
    let dir = pki.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut full = vec!["pki"];
        full.extend_from_slice(args);
        full.extend(["--dir", dir]);
        bsfgctl(&zone_file, &full)
    };
    let json = |args: &[&str]| -> serde_json::Value {
        let mut full = args.to_vec();
        full.push("--json");
        serde_json::from_str(&ok(&run(&full))).unwrap()
    };
    ok(&run(&["init"]));
    ok(&run(&["issue"]));
    let staged = |host: &str, file: &str| {
        std::fs::read_to_string(
            pki.join("hosts")
                .join(host)
                .join("var/lib/bsfg/tls")
                .join(file),
        )
        .unwrap()
    };
    let cas_on = |host: &str| {
        bsfg_pki::inspect::split_pem(&staged(host, "ca.pem"))
            .unwrap()
            .len()
    };
    let issuers = |rows: &serde_json::Value| -> Vec<String> {
        rows.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] != "ca")
            .map(|r| r["issued_by"].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    let old_controller = staged("alpha", "controller.pem");

    for early in [["rollover", "reissue"], ["rollover", "finish"]] {
        let out = run(&early);
        assert_eq!(out.status.code(), Some(2), "{early:?} before begin");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the next step is `bsfgctl pki rollover begin`"),
            "{err}"
        );
    }
    assert!(!pki.join("rollover.json").exists() && !pki.join("rollover").exists());

    let begun = json(&["rollover", "begin"]);
    assert_eq!(begun["phase"], "trust-both", "{begun:#}");
    assert_eq!(begun["next"], "reissue");
    let (old_ca, new_ca) = (
        begun["trusted"][0]["subject"].as_str().unwrap().to_owned(),
        begun["trusted"][1]["subject"].as_str().unwrap().to_owned(),
    );
    assert_eq!(
        (old_ca.as_str(), new_ca.as_str()),
        ("CN=plant-a zone CA", "CN=plant-a zone CA G2")
    );
    for h in ["alpha", "beta", "gamma"] {
        assert_eq!(cas_on(h), 2, "{h} trusts both after begin");
    }
    assert_eq!(
        staged("alpha", "controller.pem"),
        old_controller,
        "begin issues nothing"
    );
    for again in [["rollover", "begin"], ["rollover", "finish"]] {
        let out = run(&again);
        assert_eq!(out.status.code(), Some(2), "{again:?} after begin");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the next step is `bsfgctl pki rollover reissue`"),
            "{err}"
        );
    }
    let rows = json(&["check"]);
    assert_eq!(
        rows.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == "ca")
            .count(),
        2
    );
    assert!(issuers(&rows).iter().all(|i| *i == old_ca), "{rows:#}");
    let text = ok(&run(&["check"]));
    assert!(
        text.contains("2 CAs (CN=plant-a zone CA, CN=plant-a zone CA G2)"),
        "{text}"
    );
    assert!(
        text.contains("phase trust-both, next step `bsfgctl pki rollover reissue`"),
        "{text}"
    );

    let reissued = json(&["rollover", "reissue"]);
    assert_eq!(reissued["phase"], "reissued");
    let certs = reissued["certificates"].as_array().unwrap();
    assert!(!certs.is_empty() && certs.iter().all(|c| c["issuer"] == new_ca.as_str()));
    assert_ne!(staged("alpha", "controller.pem"), old_controller);
    assert_eq!(cas_on("gamma"), 2, "both still trusted after reissue");
    let rows = json(&["check"]);
    assert!(issuers(&rows).iter().all(|i| *i == new_ca), "{rows:#}");
    let renewed = json(&["renew", "--within", "10d"]);
    assert!(
        renewed
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "kept" && r["issuer"] == new_ca.as_str()),
        "{renewed:#}"
    );
    let out = run(&["rollover", "reissue"]);
    assert_eq!(out.status.code(), Some(2), "reissue twice");

    let finished = json(&["rollover", "finish"]);
    assert!(
        finished["phase"].is_null() && finished["next"].is_null(),
        "{finished:#}"
    );
    let archived = Path::new(finished["archived"].as_str().unwrap()).to_owned();
    assert_eq!(
        std::fs::metadata(archived.join("ca.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        bsfg_pki::inspect::parse_pem(&std::fs::read(archived.join("ca.pem")).unwrap())
            .unwrap()
            .subject,
        old_ca
    );
    for h in ["alpha", "beta", "gamma"] {
        assert_eq!(cas_on(h), 1, "{h} trusts the new CA only after finish");
    }
    assert!(!pki.join("rollover.json").exists() && !pki.join("rollover").exists());
    ok(&run(&["check"]));
    ok(&check_staged(&zone_file, &pki, "alpha", &[]));
    // The old controller certificate is no longer trusted on the host.
    std::fs::write(
        pki.join("hosts/alpha/var/lib/bsfg/tls/controller.pem"),
        &old_controller,
    )
    .unwrap();
    let out = check_staged(&zone_file, &pki, "alpha", &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let controller = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "controller")
        .unwrap();
    assert!(controller["issued_by"].is_null(), "{controller:#}");
    assert!(
        controller["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "not_signed_by_ca"),
        "{controller:#}"
    );
    let status = json(&["rollover", "status"]);
    assert!(
        status["phase"].is_null() && status["next"] == "begin",
        "{status:#}"
    );
}
