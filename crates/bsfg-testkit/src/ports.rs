//! Free loopback ports for test servers.
//!
//! Ports the kernel hands out for `bind(0)` come from the ephemeral range,
//! the same range it takes client source ports from: between picking one and
//! the server binding it, any outgoing connection of a parallel test (a NATS
//! client, an HTTP probe) may take it, and the server fails with "address in
//! use". So ports are chosen below the ephemeral range, where the kernel
//! never allocates, and reserved across test processes with a marker file.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Lowest port handed out (well above the ports of system services).
const FIRST: u16 = 10_000;
/// A reservation older than this belongs to a finished run and may be reused.
const RESERVATION_TTL: Duration = Duration::from_secs(30 * 60);

/// `n` distinct free TCP ports on 127.0.0.1, none in the kernel's ephemeral
/// range, none handed to another test process in the last 30 minutes.
pub fn free_ports(n: usize) -> Vec<u16> {
    let last = ephemeral_start().saturating_sub(1);
    assert!(
        last > FIRST + 1000,
        "ephemeral port range starts at {last}: no room below it"
    );
    let dir = std::env::temp_dir().join("bsfg-testkit-ports");
    std::fs::create_dir_all(&dir).expect("port reservation directory");
    let mut chosen = Vec::with_capacity(n);
    // Hold a listener on each chosen port until all are chosen, so they are distinct and free.
    let mut held = Vec::with_capacity(n);
    for _ in 0..10_000 {
        if chosen.len() == n {
            return chosen;
        }
        let port = rand::random_range(FIRST..=last);
        if chosen.contains(&port) || !reserve(&dir, port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            held.push(l);
            chosen.push(port);
        }
    }
    panic!("no {n} free ports between {FIRST} and {last}");
}

/// Claims `port` for this process: creates its marker file, or takes over a
/// stale one.
fn reserve(dir: &std::path::Path, port: u16) -> bool {
    let marker: PathBuf = dir.join(port.to_string());
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok()
    };
    if create() {
        return true;
    }
    let stale = std::fs::metadata(&marker)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > RESERVATION_TTL);
    stale && std::fs::remove_file(&marker).is_ok() && create()
}

/// First port of the kernel's ephemeral range (Linux default 32768).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_below_the_ephemeral_range_and_never_handed_out_twice() {
        let a = free_ports(20);
        let b = free_ports(20);
        let mut all: Vec<u16> = a.iter().chain(&b).copied().collect();
        assert!(
            all.iter().all(|p| (FIRST..ephemeral_start()).contains(p)),
            "{all:?}"
        );
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 40, "a port was handed out twice");
        for p in a {
            TcpListener::bind((Ipv4Addr::LOCALHOST, p)).expect("chosen port is free once released");
        }
    }
}
