//! Whether the service address — the zone VIP — is on this host right now.
//!
//! The lease follows the VIP: the controller takes and renews the zone lease
//! only while its service address is local, and stops (exits) the moment it
//! is not. Without that, a controller left running on a host that lost the
//! VIP (its agent killed, its cable pulled and plugged back) could take the
//! lease when the real active controller paused, and keep the zone down: the
//! VIP's holder refuses to serve while another host holds the lease.
//!
//! The test is the kernel's own: binding a UDP socket to the address succeeds
//! only if the address is configured on a local interface. It needs no
//! netlink (the controller's unit allows only AF_INET, AF_INET6, AF_UNIX).
//! It is exact unless the host allows binding non-local addresses
//! (`net.ipv4.ip_nonlocal_bind`, `net.ipv6.ip_nonlocal_bind`), which
//! [`ServiceAddress::new`] detects by binding documentation addresses of
//! three different ranges (a lab may use one of them; no host holds all
//! three); the controller then refuses to start, because it could not tell
//! whether it holds the VIP (its readiness would lie as well). `/proc/sys`
//! is not read: the controller's unit hides it (`ProcSubset=pid`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAddress {
    ip: IpAddr,
}

/// Documentation addresses (RFC 5737 TEST-NET-1, -2, -3; RFC 3849), one of
/// three ranges each.
const DOCUMENTATION_V4: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 77),
    Ipv4Addr::new(198, 51, 100, 77),
    Ipv4Addr::new(203, 0, 113, 77),
];
const DOCUMENTATION_V6: [Ipv6Addr; 3] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x77),
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x77),
    Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x77),
];

/// Binds a UDP socket to `ip`: `Ok(true)` if the kernel calls it local.
fn bindable(ip: IpAddr) -> io::Result<bool> {
    match UdpSocket::bind(SocketAddr::new(ip, 0)) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => Ok(false),
        Err(e) => Err(e),
    }
}

impl ServiceAddress {
    /// The service address `ip`, once the host is known to refuse binds to
    /// addresses it does not hold.
    pub fn new(ip: IpAddr) -> Result<ServiceAddress, String> {
        let probes: Vec<IpAddr> = match ip {
            IpAddr::V4(_) => DOCUMENTATION_V4.map(IpAddr::V4).to_vec(),
            IpAddr::V6(_) => DOCUMENTATION_V6.map(IpAddr::V6).to_vec(),
        };
        let mut bindable_all = true;
        for probe in &probes {
            match bindable(*probe) {
                Ok(true) => {}
                Ok(false) => bindable_all = false,
                Err(e) => {
                    return Err(format!(
                        "cannot test whether {ip} is local (binding {probe}: {e})"
                    ));
                }
            }
        }
        if bindable_all {
            return Err(format!(
                "this host lets processes bind addresses it does not hold ({} were all \
                 bindable; net.ipv4.ip_nonlocal_bind or net.ipv6.ip_nonlocal_bind is set): the \
                 controller could not tell whether it holds the VIP {ip}; unset it",
                probes
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(ServiceAddress { ip })
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Whether the address is on a local interface now. An error (no socket
    /// could be made at all) counts as not local: the safe answer.
    pub fn is_local(&self) -> bool {
        self.ip.is_unspecified() || bindable(self.ip).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_local_and_a_documentation_address_is_not() {
        let here = ServiceAddress::new("127.0.0.1".parse().unwrap()).unwrap();
        assert!(here.is_local());
        // A documentation address this machine does not hold (a lab may use one range).
        let elsewhere = ["203.0.113.7", "198.51.100.7", "192.0.2.7"]
            .into_iter()
            .map(|a| ServiceAddress::new(a.parse().unwrap()).unwrap())
            .find(|a| !a.is_local());
        assert!(
            elsewhere.is_some(),
            "every documentation address is local here"
        );
    }
}
