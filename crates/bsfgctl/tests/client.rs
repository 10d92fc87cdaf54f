//! The client commands of the real `bsfgctl` binary against the real
//! controller on a real nats-server, with bsfg-pki certificates: exact flags
//! of the NixOS VM tests, identities from flags, `BSFG_CLI_*` and the config
//! file, and the exit codes scripts rely on.

use bsfg_core::config::TlsFiles;
use bsfg_testkit::controller::{RunningController, loopback_server_identity, test_config};
use bsfg_testkit::nats::NatsCluster;
use bsfg_testkit::pki::TestPki;
use std::path::Path;
use std::process::{Command, Output};

const ZONE: &str = "plant-a";

struct Zone {
    _nats: NatsCluster,
    _pki: TestPki,
    dir: tempfile::TempDir,
    controller: RunningController,
    producer: TlsFiles,
    reader: TlsFiles,
}

async fn zone() -> Zone {
    let nats = NatsCluster::start1().await;
    let pki = TestPki::new(ZONE);
    let dir = tempfile::tempdir().unwrap();
    let server = loopback_server_identity(&pki, "plant-a-bsfg");
    let config = test_config(ZONE, "alpha", &nats.client_url(0), 1, &server, dir.path());
    let controller = RunningController::start(config, dir.path()).await;
    Zone {
        producer: pki.client("mes-producer").tls_files(),
        reader: pki.client("erp-reader").tls_files(),
        _nats: nats,
        _pki: pki,
        dir,
        controller,
    }
}

/// `bsfgctl` with a clean environment: no BSFG_* leaks in from the test runner,
/// and no config file is found (HOME and XDG point into `home`).
fn bsfgctl(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bsfgctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("BSFG_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"));
    c
}

fn tls_args(t: &TlsFiles) -> Vec<String> {
    vec![
        "--cert".into(),
        t.certificate.display().to_string(),
        "--key".into(),
        t.private_key.display().to_string(),
        "--ca".into(),
        t.ca.display().to_string(),
    ]
}

fn run(mut c: Command) -> Output {
    let out = c.output().expect("run bsfgctl");
    eprintln!(
        "bsfgctl exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// The exact command line of tests/scripts/common.py (APPEND_CMD).
fn vm_test_append(z: &Zone, home: &Path, message_id: &str, n: &str) -> Command {
    let mut c = bsfgctl(home);
    c.args(["append", "--endpoint", &z.controller.endpoint()])
        .args(tls_args(&z.producer))
        .args(["--class", "operational", "--from-zone", ZONE])
        .args(["--message-id", message_id])
        .args(["--subject", &format!("order:line-1/{message_id}")])
        .args(["--predicate", "created"])
        .args(["--object-json", &format!("{{\"n\": \"{n}\"}}")]);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_is_idempotent_fetch_confirm_and_tail_follow_the_cursor() {
    let z = zone().await;
    let home = z.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let first = run(vm_test_append(&z, &home, "m-1", "m-1"));
    assert_eq!(first.status.code(), Some(0));
    let mut again = vm_test_append(&z, &home, "m-1", "m-1");
    again.arg("--json");
    let again = run(again);
    assert_eq!(again.status.code(), Some(0));
    let again = json(&again);
    assert_eq!(again["duplicate"], true);
    let offset = again["offset"].as_u64().unwrap();

    // Same id, other payload: the server refuses; exit 1 with its reason.
    let conflict = run(vm_test_append(&z, &home, "m-1", "other"));
    assert_eq!(conflict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&conflict.stderr).contains("conflicting_duplicate"));

    for i in 2..=4 {
        let id = format!("m-{i}");
        assert_eq!(
            run(vm_test_append(&z, &home, &id, &id)).status.code(),
            Some(0)
        );
    }

    // The reader fetches the page; fetching twice without confirming returns the same.
    let fetch = |limit: &str| {
        let mut c = bsfgctl(&home);
        c.args([
            "fetch",
            "--json",
            "--consumer",
            "erp-orders",
            "--limit",
            limit,
        ])
        .args(["--endpoint", &z.controller.endpoint()])
        .args(tls_args(&z.reader));
        json(&run(c))
    };
    let page = fetch("2");
    let facts = page["facts"].as_array().unwrap();
    assert_eq!(facts.len(), 2);
    assert_eq!(facts[0]["fact"]["envelope"]["messageId"], "m-1");
    assert_eq!(
        facts[0]["offset"].as_str().unwrap(),
        offset.to_string(),
        "proto3 JSON: uint64 as string"
    );
    assert_eq!(fetch("2"), page);

    // tail --confirm prints every fact once and moves the cursor past them.
    let mut tail = bsfgctl(&home);
    tail.args([
        "tail",
        "--json",
        "--confirm",
        "--consumer",
        "erp-orders",
        "--limit",
        "2",
    ])
    .args(["--endpoint", &z.controller.endpoint()])
    .args(tls_args(&z.reader));
    let out = run(tail);
    assert_eq!(out.status.code(), Some(0));
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["fact"]["envelope"]["messageId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, vec!["m-1", "m-2", "m-3", "m-4"]);
    assert_eq!(
        fetch("0")["facts"].as_array().unwrap().len(),
        0,
        "tail --confirm advanced the cursor"
    );

    // A tail without --confirm only reads: the cursor stays, the next tail sees the same.
    assert_eq!(
        run(vm_test_append(&z, &home, "m-5", "m-5")).status.code(),
        Some(0)
    );
    for _ in 0..2 {
        let mut tail = bsfgctl(&home);
        tail.args(["tail", "--consumer", "erp-orders", "--count", "1"])
            .args(["--endpoint", &z.controller.endpoint()])
            .args(tls_args(&z.reader));
        let out = run(tail);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("OFFSET"), "a table: {text}");
        assert!(
            text.contains("m-5") && text.contains("order:line-1/m-5"),
            "{text}"
        );
    }

    // confirm moves the cursor explicitly.
    let last = fetch("0")["facts"][0]["offset"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut confirm = bsfgctl(&home);
    confirm
        .args([
            "confirm",
            "--json",
            "--consumer",
            "erp-orders",
            "--offset",
            &last,
        ])
        .args(["--endpoint", &z.controller.endpoint()])
        .args(tls_args(&z.reader));
    let out = json(&run(confirm));
    assert_eq!(
        out["cursor_advanced_to"].as_u64().unwrap().to_string(),
        last
    );
    assert!(fetch("0")["facts"].as_array().unwrap().is_empty());

    // Confirming beyond what was delivered: the server refuses (exit 1).
    let mut beyond = bsfgctl(&home);
    beyond
        .args(["confirm", "--consumer", "erp-orders", "--offset", "999999"])
        .args(["--endpoint", &z.controller.endpoint()])
        .args(tls_args(&z.reader));
    let out = run(beyond);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("offset_not_delivered"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_verify_digests_and_reference_from_a_fact() {
    let z = zone().await;
    let home = z.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let src = z.dir.path().join("drawing.bin");
    // Several chunks and a partial last one.
    let data: Vec<u8> = (0..(700 * 1024u32)).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();

    let mut put = bsfgctl(&home);
    put.args([
        "put-object",
        "--json",
        "--bucket",
        "drawings",
        "--object-key",
        "line-1/a.bin",
    ])
    .args(["--endpoint", &z.controller.endpoint()])
    .args(tls_args(&z.producer))
    .arg(&src);
    let stored = json(&run(put));
    let digest = stored["digest"].as_str().unwrap().to_owned();
    assert_eq!(stored["size"], data.len() as u64);
    assert_eq!(stored["local_digest"], digest.as_str());

    // The printed reference is accepted by append --artifact.
    let mut append = vm_test_append(&z, &home, "with-artifact", "x");
    append.args(["--artifact", stored["artifact"].as_str().unwrap()]);
    assert_eq!(run(append).status.code(), Some(0));

    let dest = z.dir.path().join("out/copy.bin");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let mut get = bsfgctl(&home);
    get.args([
        "get-object",
        "--json",
        "--bucket",
        "drawings",
        "--object-key",
        "line-1/a.bin",
        "-o",
    ])
    .arg(&dest)
    .args(["--expect-digest", &digest])
    .args(["--endpoint", &z.controller.endpoint()])
    .args(tls_args(&z.reader));
    let got = json(&run(get));
    assert_eq!(got["verified"], true);
    assert_eq!(std::fs::read(&dest).unwrap(), data);

    // A digest that does not match: exit 1 and nothing written.
    let bad = z.dir.path().join("out/bad.bin");
    let mut get = bsfgctl(&home);
    get.args([
        "get-object",
        "--bucket",
        "drawings",
        "--object-key",
        "line-1/a.bin",
        "-o",
    ])
    .arg(&bad)
    .args(["--expect-digest", &format!("sha256:{}", "0".repeat(64))])
    .args(["--endpoint", &z.controller.endpoint()])
    .args(tls_args(&z.reader));
    let out = run(get);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not verify"));
    assert!(!bad.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dest.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");

    // To standard output.
    let mut get = bsfgctl(&home);
    get.args([
        "get-object",
        "--bucket",
        "drawings",
        "--object-key",
        "line-1/a.bin",
    ])
    .args(["--endpoint", &z.controller.endpoint()])
    .args(tls_args(&z.reader));
    let out = run(get);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_from_env_and_config_file_and_exit_codes() {
    let z = zone().await;
    let home = z.dir.path().join("home");
    let conf_dir = home.join(".config/bsfgctl");
    std::fs::create_dir_all(&conf_dir).unwrap();

    // BSFG_CLI_* variables.
    let mut c = bsfgctl(&home);
    c.args([
        "append",
        "--class",
        "operational",
        "--message-id",
        "env-1",
        "--subject",
        "order:x/1",
    ])
    .args(["--predicate", "created", "--object-json", "{}"])
    .env("BSFG_CLI_ENDPOINT", z.controller.endpoint())
    .env("BSFG_CLI_CERT", &z.producer.certificate)
    .env("BSFG_CLI_KEY", &z.producer.private_key)
    .env("BSFG_CLI_CA", &z.producer.ca)
    .env("BSFG_CLI_FROM_ZONE", ZONE);
    assert_eq!(run(c).status.code(), Some(0));

    // The default config file (~/.config/bsfgctl/config.toml), paths relative to it.
    std::fs::copy(&z.producer.certificate, conf_dir.join("me.pem")).unwrap();
    std::fs::copy(&z.producer.private_key, conf_dir.join("me.key")).unwrap();
    std::fs::write(
        conf_dir.join("config.toml"),
        format!(
            "endpoint = \"{}\"\ncert = \"me.pem\"\nkey = \"me.key\"\nca = \"{}\"\nfrom_zone = \"{ZONE}\"\n",
            z.controller.endpoint(),
            z.producer.ca.display()
        ),
    )
    .unwrap();
    let mut c = bsfgctl(&home);
    c.args([
        "append",
        "--class",
        "operational",
        "--message-id",
        "conf-1",
        "--subject",
        "order:x/2",
    ])
    .args(["--predicate", "created", "--object-json", "{}"]);
    assert_eq!(run(c).status.code(), Some(0));

    // The reader may not append: the server refuses, exit 1, reason named.
    let mut c = bsfgctl(&home);
    c.args([
        "append",
        "--class",
        "operational",
        "--message-id",
        "r-1",
        "--subject",
        "order:x/3",
    ])
    .args(["--predicate", "created", "--object-json", "{}"])
    .args(tls_args(&z.reader));
    let out = run(c);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_authorized"));

    // Nothing listens: exit 3.
    let closed = bsfg_testkit::ports::free_ports(1)[0];
    let mut c = bsfgctl(&home);
    c.args([
        "fetch",
        "--consumer",
        "erp-orders",
        "--endpoint",
        &format!("https://127.0.0.1:{closed}"),
    ]);
    assert_eq!(run(c).status.code(), Some(3));

    // Usage: missing identity file, bad JSON, unknown flag: exit 2.
    let mut c = bsfgctl(&home);
    c.args([
        "fetch",
        "--consumer",
        "erp-orders",
        "--cert",
        "/nonexistent.pem",
    ]);
    let out = run(c);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.pem"));
    let mut c = bsfgctl(&home);
    c.args([
        "append",
        "--class",
        "operational",
        "--message-id",
        "x",
        "--subject",
        "order:x/4",
    ])
    .args(["--predicate", "created", "--object-json", "{not json"]);
    assert_eq!(run(c).status.code(), Some(2));
    let mut c = bsfgctl(&home);
    c.args(["fetch", "--no-such-flag"]);
    assert_eq!(run(c).status.code(), Some(2));
}

#[test]
fn the_command_tree_is_consistent() {
    use clap::CommandFactory;
    bsfgctl::cli::Cli::command().debug_assert();
}

#[test]
fn completions_and_man_pages_are_generated_from_the_real_flags() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let mut c = bsfgctl(home.path());
        c.args(["completions", shell]);
        let out = run(c);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("--message-id") && text.contains("commission"),
            "{shell}"
        );
    }
    let mut c = bsfgctl(home.path());
    c.args(["man", "--out"]).arg(home.path().join("man"));
    assert_eq!(run(c).status.code(), Some(0));
    let page = std::fs::read_to_string(home.path().join("man/bsfgctl-append.1")).unwrap();
    assert!(page.contains("message\\-id"), "{page}");
    assert!(home.path().join("man/bsfgctl-zone-status.1").is_file());
    assert!(
        std::fs::read_to_string(home.path().join("man/bsfgctl.1"))
            .unwrap()
            .contains("Exit codes")
    );
}
