//! Gate 1: this host holds the VIP, i.e. the address is configured on a
//! local interface right now (read through netlink by [`crate::probes::vip`]).

use super::GateResult;
use std::net::IpAddr;

/// One address of a local interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddress {
    pub address: IpAddr,
    pub interface: String,
}

/// Whether keepalived runs in this host's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepalivedFacts {
    Running {
        pid: u32,
    },
    NotRunning,
    /// Not checked (`keepalived.require_running = false`) or not determinable.
    Unknown(String),
}

/// `addresses`: every address of every local interface, or why they could not
/// be read. The VIP only counts as held while keepalived manages it: an
/// address a dead keepalived left behind is stale.
pub fn evaluate(
    vip: IpAddr,
    addresses: &Result<Vec<LocalAddress>, String>,
    keepalived: &KeepalivedFacts,
) -> GateResult {
    match addresses {
        Err(e) => GateResult::fail(format!("cannot list local addresses: {e}")),
        Ok(list) => match list.iter().find(|a| a.address == vip) {
            Some(a) if *keepalived == KeepalivedFacts::NotRunning => GateResult::fail(format!(
                "{vip} is on {} but keepalived is not running: the address is stale",
                a.interface
            )),
            Some(a) => GateResult::pass(format!("{vip} on {}", a.interface)),
            None => GateResult::fail(format!("{vip} is not on any local interface")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vip_left_by_a_dead_keepalived_is_not_held() {
        let vip = "10.0.0.100".parse().unwrap();
        let here = Ok(vec![addr("10.0.0.100", "eth0")]);
        let r = evaluate(vip, &here, &KeepalivedFacts::NotRunning);
        assert!(!r.passes());
        assert_eq!(
            r.reason,
            "10.0.0.100 is on eth0 but keepalived is not running: the address is stale"
        );
        // Not required (tests adding the VIP by hand) or not determinable: the address decides.
        assert!(evaluate(vip, &here, &KeepalivedFacts::Unknown("not checked".into())).passes());
        // No VIP and no keepalived: the usual reason.
        let r = evaluate(vip, &Ok(vec![]), &KeepalivedFacts::NotRunning);
        assert_eq!(r.reason, "10.0.0.100 is not on any local interface");
    }

    fn addr(a: &str, i: &str) -> LocalAddress {
        LocalAddress {
            address: a.parse().unwrap(),
            interface: i.into(),
        }
    }

    #[test]
    fn passes_when_the_vip_is_on_an_interface() {
        let vip = "10.0.0.100".parse().unwrap();
        let r = evaluate(
            vip,
            &Ok(vec![addr("127.0.0.1", "lo"), addr("10.0.0.100", "eth0")]),
            &KeepalivedFacts::Running { pid: 7 },
        );
        assert!(r.passes());
        assert_eq!(r.reason, "10.0.0.100 on eth0");
    }

    #[test]
    fn fails_when_absent_or_unreadable() {
        let vip = "10.0.0.100".parse().unwrap();
        let r = evaluate(
            vip,
            &Ok(vec![addr("10.0.0.11", "eth0")]),
            &KeepalivedFacts::Running { pid: 7 },
        );
        assert_eq!(r.reason, "10.0.0.100 is not on any local interface");
        assert!(!r.passes());
        let r = evaluate(
            vip,
            &Err("permission denied".into()),
            &KeepalivedFacts::Running { pid: 7 },
        );
        assert!(!r.passes());
        assert!(r.reason.contains("permission denied"));
    }
}
