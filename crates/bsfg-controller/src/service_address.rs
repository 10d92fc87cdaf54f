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
//! [`ServiceAddress::new`] detects by binding a documentation address that no
//! host holds; the controller then refuses to start, because it could not
//! tell whether it holds the VIP (its readiness would lie as well).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAddress {
    ip: IpAddr,
}

/// Addresses no host is given (RFC 5737 TEST-NET-1, RFC 3849).
const NOBODYS_V4: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
const NOBODYS_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
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
        let probe = match ip {
            IpAddr::V4(_) => NOBODYS_V4.map(IpAddr::V4),
            IpAddr::V6(_) => NOBODYS_V6.map(IpAddr::V6),
        }
        .into_iter()
        .find(|p| *p != ip)
        .expect("two candidates, at most one equals ip");
        match bindable(probe) {
            Ok(false) => Ok(ServiceAddress { ip }),
            Ok(true) => Err(format!(
                "this host lets processes bind addresses it does not hold ({probe} was \
                 bindable; net.ipv4.ip_nonlocal_bind or net.ipv6.ip_nonlocal_bind is set): the \
                 controller could not tell whether it holds the VIP {ip}; unset it"
            )),
            Err(e) => Err(format!(
                "cannot test whether {ip} is local (binding {probe}: {e})"
            )),
        }
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
        let elsewhere = ServiceAddress::new("192.0.2.1".parse().unwrap()).unwrap();
        assert!(!elsewhere.is_local());
        let elsewhere = ServiceAddress::new("203.0.113.7".parse().unwrap()).unwrap();
        assert!(!elsewhere.is_local());
    }
}
