//! Network namespaces, veth pairs and the zone's switch, through `ip`.
//!
//! Layout of one simulator instance `<i>` (nothing in the root namespace):
//!
//! ```text
//!   <i>-alpha   eno1 ──┐
//!   <i>-beta    eno1 ──┤        <i>-switch: bridge br0 with ports
//!   <i>-gamma   eno1 ──┼─────►  named after the hosts (alpha, beta,
//!   <i>-client  eth0 ──┘        gamma, client)
//! ```
//!
//! Interface names inside a host namespace are the zone description's
//! (`interface`), so keepalived.conf from the zone library applies as is.
//! Because every link lives inside a namespace of the instance, deleting the
//! namespaces removes every link: instances never collide with each other,
//! with the tests, or with the machine's own interfaces.

pub mod nft;
pub mod runtime;

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};

/// The switch namespace's bridge (the service network).
pub const BRIDGE: &str = "br0";
/// The switch namespace's bridge of a separate management network.
pub const MGMT_BRIDGE: &str = "br1";
/// Suffix of the management-network namespace (operators, Prometheus).
pub const MGMT: &str = "mgmt";
/// The management namespace's interface on the management network.
pub const MGMT_IF: &str = "eth0";
/// The management namespace's interface on the service network.
pub const MGMT_SERVICE_IF: &str = "eth1";
/// The client namespace's interface.
pub const CLIENT_IF: &str = "eth0";
/// Suffix of the client/management namespace.
pub const CLIENT: &str = "client";
/// Suffix of the namespace holding the bridge.
pub const SWITCH: &str = "switch";

/// Instance names: short, lowercase, no dashes (so `<instance>-` is an
/// unambiguous prefix of exactly one instance's namespaces).
pub fn check_instance_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 24
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
    {
        bail!(
            "instance name {name:?}: use 1-24 characters a-z, 0-9, starting with a letter \
             (it prefixes the namespaces and names the run directory)"
        );
    }
    Ok(())
}

/// The namespace of `what` (a host name, `client` or `switch`) in `instance`.
pub fn ns_name(instance: &str, what: &str) -> String {
    format!("{instance}-{what}")
}

/// Runs `ip <args>`; the error carries ip's stderr.
pub fn ip(args: &[&str]) -> Result<String> {
    run("ip", args, None)
}

/// `ip -n <ns> <args>`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip(&full)
}

/// Runs `program args` inside `ns` (`ip netns exec`), with `stdin` if given.
pub fn exec_in(ns: &str, program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    run("ip", &full, stdin)
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd
        .spawn()
        .with_context(|| format!("running {program} (is iproute2/nftables installed?)"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .with_context(|| format!("writing to {program}"))?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every network namespace on the machine (`ip netns list`).
pub fn list() -> Result<Vec<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

pub fn exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// Creates `ns` with loopback up.
pub fn create(ns: &str) -> Result<()> {
    if exists(ns) {
        bail!(
            "network namespace {ns} already exists (a zone of this instance is up? `down` removes it)"
        );
    }
    ip(&["netns", "add", ns])?;
    ip_in(ns, &["link", "set", "lo", "up"])?;
    Ok(())
}

/// Deletes `ns` (its links go with it). Missing is fine.
pub fn delete(ns: &str) -> Result<()> {
    if exists(ns) {
        ip(&["netns", "del", ns])?;
    }
    Ok(())
}

/// Pids of every process whose network namespace is `ns`.
pub fn pids(ns: &str) -> Vec<i32> {
    if !exists(ns) {
        return Vec::new();
    }
    ip(&["netns", "pids", ns])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The switch: a bridge in its own namespace.
pub fn create_switch(ns: &str) -> Result<()> {
    create(ns)?;
    add_bridge(ns, BRIDGE)
}

/// A second bridge in the switch namespace (a separate management network).
pub fn add_bridge(ns: &str, bridge: &str) -> Result<()> {
    ip_in(ns, &["link", "add", bridge, "type", "bridge"])?;
    // No STP and no forwarding delay: ports forward as soon as they are up.
    ip_in(
        ns,
        &[
            "link",
            "set",
            bridge,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ],
    )?;
    ip_in(ns, &["link", "set", bridge, "up"])?;
    Ok(())
}

/// A veth pair from `ns` (as `inner`, with `cidr`, up) to the switch (as
/// port `port`, enslaved to the bridge, up).
pub fn plug(ns: &str, inner: &str, cidr: &str, switch: &str, port: &str) -> Result<()> {
    plug_into(ns, inner, cidr, switch, port, BRIDGE)
}

/// [`plug`] into `bridge` of the switch.
pub fn plug_into(
    ns: &str,
    inner: &str,
    cidr: &str,
    switch: &str,
    port: &str,
    bridge: &str,
) -> Result<()> {
    ip(&[
        "link", "add", "name", inner, "netns", ns, "type", "veth", "peer", "name", port, "netns",
        switch,
    ])
    .with_context(|| format!("veth {ns}/{inner} <-> {switch}/{port}"))?;
    ip_in(switch, &["link", "set", port, "master", bridge, "up"])?;
    ip_in(ns, &["addr", "add", cidr, "dev", inner])?;
    ip_in(ns, &["link", "set", inner, "up"])?;
    Ok(())
}

/// Sets the switch port of a host up or down: the host's cable, pulled or
/// plugged. The host's own interface stays administratively up (it sees
/// NO-CARRIER while the port is down, as with a real cable).
pub fn set_port(switch: &str, port: &str, up: bool) -> Result<()> {
    ip_in(
        switch,
        &["link", "set", port, if up { "up" } else { "down" }],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_unambiguous_prefixes() {
        assert!(check_instance_name("triad").is_ok());
        assert!(check_instance_name("t1k3a0").is_ok());
        assert!(check_instance_name("").is_err());
        assert!(
            check_instance_name("a-b").is_err(),
            "dashes would make prefixes ambiguous"
        );
        assert!(check_instance_name("Triad").is_err());
        assert!(check_instance_name("1abc").is_err());
        assert!(check_instance_name(&"a".repeat(25)).is_err());
        assert_eq!(ns_name("triad", "alpha"), "triad-alpha");
    }
}
