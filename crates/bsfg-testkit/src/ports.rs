//! Free loopback ports. The kernel picks them; a small race remains between
//! picking and the server binding, which launchers handle by retrying.

use std::net::{Ipv4Addr, TcpListener};

/// `n` distinct free TCP ports on 127.0.0.1.
pub fn free_ports(n: usize) -> Vec<u16> {
    // Hold all listeners until every port is chosen so they are distinct.
    let listeners: Vec<_> = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}
