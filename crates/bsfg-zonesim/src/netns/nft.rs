//! Faults made with nftables inside the instance's namespaces (never the
//! machine's own ruleset): each drill rule lives in its own table, which is
//! deleted to heal, and disappears with the namespace anyway.

use super::exec_in;
use anyhow::Result;
use std::net::Ipv4Addr;

/// The table drills put their rules in.
pub const TABLE: &str = "zonesim_drill";

/// Bridge rules for the switch namespace: frames between port `isolated` and
/// each of `from` are dropped in both directions (a link-level partition:
/// ARP, VRRP, NATS routes, everything). Other ports still reach `isolated`.
pub fn partition_ruleset(isolated: &str, from: &[&str]) -> String {
    let set = from
        .iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "table bridge {TABLE} {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    \
         iifname \"{isolated}\" oifname {{ {set} }} drop\n    \
         iifname {{ {set} }} oifname \"{isolated}\" drop\n  }}\n}}\n"
    )
}

/// Rules for a host namespace: VRRP (IP protocol 112) from `source` is
/// dropped on input, nothing else. The standby stops hearing the active
/// host's adverts while the active host still hears the standby's.
pub fn drop_vrrp_ruleset(source: Ipv4Addr) -> String {
    format!(
        "table inet {TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
         ip saddr {source} ip protocol vrrp drop\n  }}\n}}\n"
    )
}

/// Loads `ruleset` into namespace `ns`.
pub fn apply(ns: &str, ruleset: &str) -> Result<()> {
    exec_in(ns, "nft", &["-f", "-"], Some(ruleset))?;
    Ok(())
}

/// Removes every drill table of family `family` (`bridge`, `inet`) from `ns`.
pub fn clear(ns: &str, family: &str) -> Result<()> {
    let tables = exec_in(ns, "nft", &["list", "tables"], None)?;
    if tables
        .lines()
        .any(|l| l.trim() == format!("table {family} {TABLE}"))
    {
        exec_in(ns, "nft", &["delete", "table", family, TABLE], None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_drops_both_directions_between_the_named_ports_only() {
        let r = partition_ruleset("alpha", &["beta", "gamma"]);
        assert!(r.starts_with("table bridge zonesim_drill {"));
        assert!(r.contains("iifname \"alpha\" oifname { \"beta\", \"gamma\" } drop"));
        assert!(r.contains("iifname { \"beta\", \"gamma\" } oifname \"alpha\" drop"));
        assert!(!r.contains("client"));
    }

    #[test]
    fn one_way_vrrp_loss_drops_only_vrrp_from_the_source() {
        let r = drop_vrrp_ruleset("10.20.0.11".parse().unwrap());
        assert!(r.contains("hook input"));
        assert!(r.contains("ip saddr 10.20.0.11 ip protocol vrrp drop"));
        assert!(!r.contains("output"));
    }
}
