//! The simulator writes the zone library's rendered texts byte for byte
//! (the files the appliance deploys, with the simulator's paths), and they
//! say what the library's data says. Needs nix-instantiate (nix-bin).

use bsfg_zonesim::zone::files::{HostDirs, write_host};
use bsfg_zonesim::zone::options::default_repo;
use bsfg_zonesim::zone::spec::{Binaries, ZoneSpec};
use std::path::Path;

/// The example zone (hosts/zone.nix) as the simulator sees it, under `dir`.
fn example_zone(dir: &Path) -> ZoneSpec {
    let repo = default_repo();
    ZoneSpec::evaluate(
        &repo,
        &repo.join("hosts/zone.nix"),
        dir,
        &Binaries {
            controller: "/bin/c".into(),
            gate_agent: "/bin/g".into(),
            nats_server: "/bin/n".into(),
        },
        None,
    )
    .unwrap()
}

/// The files are the library's texts, byte for byte, and the daemons
/// accept them: the TOML parses to the library's data.
#[test]
fn writes_the_library_texts_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let spec = example_zone(dir.path());
    let alpha = spec.alpha();
    let dirs = HostDirs::new(dir.path(), &alpha.name);
    write_host(alpha, &dirs).unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let k = alpha.keepalived.as_ref().unwrap();
    assert_eq!(read(&dirs.keepalived_config), k.config_text);
    assert_eq!(read(&dirs.nats_config), alpha.nats.config_text);
    let c = alpha.controller.as_ref().unwrap();
    assert_eq!(read(&alpha.paths.controller_config), c.config_text);
    let parsed: serde_json::Value = toml::from_str(&c.config_text).unwrap();
    assert_eq!(parsed, c.config);
    let a = alpha.gate_agent.as_ref().unwrap();
    assert_eq!(read(&alpha.paths.agent_config), a.config_text);
    let nats: serde_json::Value = serde_json::from_str(&alpha.nats.config_text).unwrap();
    assert_eq!(nats, alpha.nats.settings);
    // keepalived resolves the track file while parsing the instance.
    let t = &k.config_text;
    assert!(t.find("track_file bsfg_gate {").unwrap() < t.find("vrrp_instance").unwrap());
}

/// The VM tests install fixed NATS passwords (tests/nats-users.nix) and
/// their zone (tests/zone.nix) renders the hashes into nats-server's
/// configuration: each hash must be the bcrypt of its password, or every
/// daemon of every VM test is refused by NATS.
#[test]
fn the_vm_tests_nats_passwords_match_the_hashes_their_zone_renders() {
    let repo = default_repo();
    let expr = format!(
        "let r = {}; z = (import (r + \"/modules/lib/zone.nix\")).normalise (import (r + \"/tests/zone.nix\")); \
         in {{ pairs = import (r + \"/tests/nats-users.nix\"); rendered = z.nats.users; }}",
        repo.display()
    );
    let out = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .output()
        .expect("running nix-instantiate (Debian package nix-bin)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for daemon in ["controller", "gateAgent"] {
        let password = v["pairs"][daemon]["password"].as_str().unwrap();
        let hash = v["rendered"][daemon]["passwordHash"].as_str().unwrap();
        assert!(
            bcrypt::verify(password, hash).unwrap(),
            "{daemon}: tests/zone.nix renders {hash}, not the bcrypt of tests/nats-users.nix's password"
        );
        assert!(
            !bcrypt::verify("wrong", hash).unwrap(),
            "{daemon}: the check can fail"
        );
    }
}

/// gamma's service probe runs on the library's configuration text, byte for
/// byte, and the real blackbox exporter accepts it (as nixpkgs'
/// `enableConfigCheck` does at build time). Needs Debian's
/// prometheus-blackbox-exporter.
#[test]
fn gamma_runs_the_probe_on_the_library_text_and_the_exporter_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = example_zone(dir.path());
    let gamma = spec.host(&spec.by_role.gamma);
    let dirs = HostDirs::new(dir.path(), &gamma.name);
    write_host(gamma, &dirs).unwrap();
    let p = gamma.probe.as_ref().expect("hosts/zone.nix has a probe");
    assert_eq!(
        std::fs::read_to_string(&dirs.probe_config).unwrap(),
        p.config_text
    );
    assert!(spec.alpha().probe.is_none());
    let tls = gamma.paths.probe.as_ref().unwrap();
    assert!(p.config_text.contains(&*tls.private_key.to_string_lossy()));
    let accepted = |file: &Path| {
        let exporter = bsfg_testkit::bins::system_program(
            "prometheus-blackbox-exporter",
            "prometheus-blackbox-exporter",
        );
        let out = std::process::Command::new(exporter)
            .arg("--config.check")
            .arg(format!("--config.file={}", file.display()))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stderr) = accepted(&dirs.probe_config);
    assert!(ok, "{stderr}");
    // The check can fail: a prober the exporter does not know.
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, p.config_text.replace("\"grpc\"", "\"grpcx\"")).unwrap();
    assert!(!accepted(&bad).0, "a broken configuration passed");
}

/// The systemd mode writes into alpha's and beta's containers the
/// artifact-backup service and timer the appliance's module assigns (the
/// zone library's texts, only the store path of bsfgctl replaced by the
/// bound program), enables the timer, binds bsfgctl and the state
/// directory; gamma's container has neither.
#[test]
fn the_containers_get_the_appliance_artifact_backup_units() {
    use bsfg_zonesim::container::spec;
    use bsfg_zonesim::zone::spec::{eval_json, nix_string};
    let repo = default_repo();
    let dir = tempfile::tempdir().unwrap();
    let zone_file = repo.join("hosts/zone.nix");
    let bins = Binaries {
        controller: "/bin/c".into(),
        gate_agent: "/bin/g".into(),
        nats_server: "/bin/n".into(),
    };
    let bsfgctl = Path::new("/bin/ctl");
    let containers = spec::evaluate(&repo, &zone_file, dir.path(), &bins, bsfgctl, None).unwrap();
    // What the NixOS module gets for each host, in the container's paths.
    let expr = format!(
        "let c = import {} {{ zoneFile = {}; runDir = {}; }}; t = h: u: c.containerise c.appliance.${{h}}.units.${{u}}.text; \
         in {{ inherit (c.containerBinaries) bsfgctl; alpha = [(t \"alpha\" \"bsfg-artifact-backup\") (t \"alpha\" \"bsfg-artifact-backup-timer\")]; \
         beta = [(t \"beta\" \"bsfg-artifact-backup\") (t \"beta\" \"bsfg-artifact-backup-timer\")]; \
         gamma = c.appliance.gamma.units ? bsfg-artifact-backup; }}",
        nix_string(&repo.join("modules/lib/container.nix").display().to_string()),
        nix_string(&zone_file.display().to_string()),
        nix_string(&dir.path().display().to_string()),
    );
    let appliance: serde_json::Value =
        serde_json::from_slice(&eval_json(&expr, "the appliance's artifact-backup units").unwrap())
            .unwrap();
    assert_eq!(appliance["gamma"], false, "gamma has no artifact store");
    let bound_bsfgctl = appliance["bsfgctl"].as_str().unwrap();
    let units = Path::new("etc/systemd/system");
    for host in ["alpha", "beta"] {
        let c = &containers.hosts[host];
        let root = dir.path().join(format!("{host}-root"));
        c.write(&root).unwrap();
        let read = |f: &str| std::fs::read_to_string(root.join(units).join(f)).unwrap();
        let service = read("bsfg-artifact-backup.service");
        assert_eq!(service, appliance[host][0].as_str().unwrap(), "{host}");
        assert_eq!(
            read("bsfg-artifact-backup.timer"),
            appliance[host][1].as_str().unwrap(),
            "{host}"
        );
        assert!(
            service.contains(&format!(
                "\nExecStart={bound_bsfgctl} backup-artifacts --from /artifacts "
            )),
            "{service}"
        );
        assert_eq!(
            std::fs::read_link(
                root.join(units)
                    .join("timers.target.wants/bsfg-artifact-backup.timer")
            )
            .unwrap(),
            Path::new("../bsfg-artifact-backup.timer")
        );
        let bind = |target: &str| c.binds.iter().find(|b| b.target == Path::new(target));
        let program = bind(bound_bsfgctl).expect("bsfgctl bound");
        assert!(program.read_only && program.source == bsfgctl);
        let state = bind("/var/lib/bsfg-artifact-backup").expect("state directory bound");
        assert!(!state.read_only && state.source == dir.path().join(host).join("artifact-backup"));
        assert!(c.units.iter().any(|u| u == "bsfg-artifact-backup.service"));
    }
    let gamma = &containers.hosts["gamma"];
    assert!(!gamma.files.contains_key(Path::new(
        "/etc/systemd/system/bsfg-artifact-backup.service"
    )));
    assert!(
        !gamma
            .units
            .iter()
            .any(|u| u == "bsfg-artifact-backup.service")
    );
}

/// Every host's node exporter gets the arguments nixpkgs' unit composes
/// from the library's collectors and flags (tests/lib/module-smoke.nix
/// checks the module's side), on the management address, with the snapshot
/// metrics directories (gamma's streams, the service hosts' artifacts)
/// under the simulator's run directory.
#[test]
fn node_exporter_arguments_are_the_librarys() {
    let dir = tempfile::tempdir().unwrap();
    let spec = example_zone(dir.path());
    for h in spec.host_names() {
        let n = &spec.host(h).node_exporter;
        let mut want: Vec<String> = n
            .enabled_collectors
            .iter()
            .map(|c| format!("--collector.{c}"))
            .collect();
        want.push("--web.listen-address".into());
        want.push(format!("{}:{}", n.listen.address, n.listen.port));
        want.extend(n.extra_flags.iter().cloned());
        assert_eq!(n.args, want, "{h}");
        assert_eq!(n.listen.address, spec.host(h).management_address, "{h}");
        assert_eq!(n.listen.port, 9100, "{h}");
        assert!(n.enabled_collectors.iter().any(|c| c == "systemd"), "{h}");
        let textfile: Vec<&String> = n
            .extra_flags
            .iter()
            .filter(|f| f.starts_with("--collector.textfile.directory="))
            .collect();
        assert!(
            textfile.len() <= 1,
            "{h}: one directory per host: {textfile:?}"
        );
        for f in textfile {
            assert!(f.contains(&dir.path().display().to_string()), "{h}: {f}");
        }
    }
    assert!(
        spec.gamma()
            .node_exporter
            .extra_flags
            .iter()
            .any(|f| f.starts_with("--collector.textfile.directory=")),
        "gamma serves its snapshot metrics"
    );
}
