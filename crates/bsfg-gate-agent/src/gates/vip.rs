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

/// `addresses`: every address of every local interface, or why they could not be read.
pub fn evaluate(vip: IpAddr, addresses: &Result<Vec<LocalAddress>, String>) -> GateResult {
    match addresses {
        Err(e) => GateResult::fail(format!("cannot list local addresses: {e}")),
        Ok(list) => match list.iter().find(|a| a.address == vip) {
            Some(a) => GateResult::pass(format!("{vip} on {}", a.interface)),
            None => GateResult::fail(format!("{vip} is not on any local interface")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        );
        assert!(r.passes());
        assert_eq!(r.reason, "10.0.0.100 on eth0");
    }

    #[test]
    fn fails_when_absent_or_unreadable() {
        let vip = "10.0.0.100".parse().unwrap();
        let r = evaluate(vip, &Ok(vec![addr("10.0.0.11", "eth0")]));
        assert_eq!(r.reason, "10.0.0.100 is not on any local interface");
        assert!(!r.passes());
        let r = evaluate(vip, &Err("permission denied".into()));
        assert!(!r.passes());
        assert!(r.reason.contains("permission denied"));
    }
}
