//! The simulator writes the zone library's rendered texts byte for byte
//! (the files the appliance deploys, with the simulator's paths), and they
//! say what the library's data says. Needs nix-instantiate (nix-bin).

use bsfg_zonesim::zone::files::{HostDirs, write_host};
use bsfg_zonesim::zone::options::default_repo;
use bsfg_zonesim::zone::spec::{Binaries, ZoneSpec};
use std::path::Path;

/// The files are the library's texts, byte for byte, and the daemons
/// accept them: the TOML parses to the library's data.
#[test]
fn writes_the_library_texts_unchanged() {
    let repo = default_repo();
    let dir = tempfile::tempdir().unwrap();
    let spec = ZoneSpec::evaluate(
        &repo,
        &repo.join("hosts/zone.nix"),
        dir.path(),
        &Binaries {
            controller: "/bin/c".into(),
            gate_agent: "/bin/g".into(),
            nats_server: "/bin/n".into(),
        },
        None,
    )
    .unwrap();
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
