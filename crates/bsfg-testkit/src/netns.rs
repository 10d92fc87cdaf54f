//! Network namespaces, bridges and veth pairs for tests that cross a network.
//!
//! Names are unique to the test process ([`crate::unique_name`]) so tests
//! can run in parallel. Everything is removed on drop; what a killed test
//! process leaves behind is recorded under `$TMPDIR/bsfg-testkit/netns/<pid>/`
//! and removed by the next test that creates a namespace.

use crate::bins;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;

fn registry() -> PathBuf {
    std::env::temp_dir().join("bsfg-testkit/netns")
}

fn ip() -> PathBuf {
    bins::system_program("ip", "iproute2")
}

/// Runs `ip <args>`, panicking with its stderr on failure.
pub fn ip_cmd(args: &[&str]) {
    let out = Command::new(ip()).args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_quiet(args: &[&str]) -> bool {
    Command::new(ip())
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn record(kind: &str, name: &str) -> PathBuf {
    let dir = registry().join(std::process::id().to_string());
    fs::create_dir_all(&dir).expect("netns registry");
    let path = dir.join(format!("{kind}-{name}"));
    fs::write(&path, "").expect("netns registry entry");
    path
}

/// Removes namespaces and links of test processes that died without cleaning up.
pub fn sweep_leftovers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(owners) = fs::read_dir(registry()) else {
            return;
        };
        for owner in owners.flatten() {
            let pid = owner.file_name().to_string_lossy().into_owned();
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            for entry in fs::read_dir(owner.path()).into_iter().flatten().flatten() {
                let entry = entry.file_name().to_string_lossy().into_owned();
                if let Some(ns) = entry.strip_prefix("ns-") {
                    ip_quiet(&["netns", "del", ns]);
                } else if let Some(link) = entry.strip_prefix("link-") {
                    ip_quiet(&["link", "del", link]);
                }
            }
            let _ = fs::remove_dir_all(owner.path());
        }
    });
}

/// A network namespace with loopback up.
pub struct Netns {
    name: String,
    marker: PathBuf,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        crate::require_root("network namespaces");
        sweep_leftovers();
        let name = crate::unique_name(prefix);
        let marker = record("ns", &name);
        ip_cmd(&["netns", "add", &name]);
        ip_cmd(&["-n", &name, "link", "set", "lo", "up"]);
        Netns { name, marker }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["-n", &self.name];
        full.extend_from_slice(args);
        ip_cmd(&full);
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(ip());
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs a command inside the namespace, panicking on failure; returns stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .command(program)
            .args(args)
            .output()
            .expect("run in netns");
        assert!(
            out.status.success(),
            "{program} {} in {}: {}",
            args.join(" "),
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip_quiet(&["netns", "del", &self.name]);
        let _ = fs::remove_file(&self.marker);
    }
}

/// A link in the root namespace (bridge, or the host end of a veth), deleted on drop.
pub struct Link {
    name: String,
    marker: PathBuf,
}

impl Link {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        ip_quiet(&["link", "del", &self.name]);
        let _ = fs::remove_file(&self.marker);
    }
}

/// A bridge in the root namespace, up.
pub fn bridge(prefix: &str) -> Link {
    crate::require_root("bridges");
    sweep_leftovers();
    let name = crate::unique_name(prefix);
    let marker = record("link", &name);
    ip_cmd(&["link", "add", &name, "type", "bridge"]);
    ip_cmd(&["link", "set", &name, "up"]);
    Link { name, marker }
}

/// A veth pair: one end enslaved to `bridge`, the other moved into `ns` as
/// `inner_name` with `cidr` (e.g. `10.71.0.11/24`) and brought up.
pub fn attach(ns: &Netns, bridge: &Link, inner_name: &str, cidr: &str) -> Link {
    let outer = crate::unique_name("vb");
    let marker = record("link", &outer);
    let tmp_inner = crate::unique_name("vi");
    ip_cmd(&[
        "link", "add", &outer, "type", "veth", "peer", "name", &tmp_inner,
    ]);
    ip_cmd(&["link", "set", &outer, "master", bridge.name(), "up"]);
    ip_cmd(&["link", "set", &tmp_inner, "netns", ns.name()]);
    ns.ip(&["link", "set", &tmp_inner, "name", inner_name]);
    ns.ip(&["addr", "add", cidr, "dev", inner_name]);
    ns.ip(&["link", "set", inner_name, "up"]);
    Link {
        name: outer,
        marker,
    }
}
