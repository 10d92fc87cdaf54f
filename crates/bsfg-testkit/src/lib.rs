//! Shared fixtures for integration tests, all of them real:
//!
//! - [`nats::NatsCluster`]: a JetStream cluster of real `nats-server`
//!   processes on loopback ports, with kill / restart / freeze of one node;
//! - [`pki::TestPki`]: a certificate authority and leaf certificates made
//!   with bsfg-pki, the zone PKI library (server, client, expired, short-lived, from a foreign CA);
//! - [`process::Daemon`]: a child process with its log captured to a file,
//!   killed when dropped;
//! - [`netns`]: network namespaces, bridges and veth pairs with names unique
//!   to the test and removal on drop (and of leftovers of crashed runs);
//! - [`controller::RunningController`]: the real `bsfg-controller` binary
//!   with a complete test configuration ([`controller::test_config`]);
//! - [`pair::ZonePair`]: two zones with separate CAs for cross-zone replay;
//! - [`bins`]: where `nats-server` and this workspace's binaries are.
//!
//! Nothing is skipped: a missing prerequisite is a test failure that says how
//! to install it.

pub mod bins;
pub mod controller;
pub mod nats;
pub mod netns;
pub mod pair;
pub mod pki;
pub mod ports;
pub mod process;

use std::time::{Duration, Instant};

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A name unique to this test process and call, safe as an interface or
/// namespace name (at most 15 bytes): `<prefix><pid base36><counter>`.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}{}{}", base36(std::process::id()), base36(n));
    assert!(
        name.len() <= 15,
        "name {name:?} too long for a Linux interface; use a shorter prefix"
    );
    name
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// Panics unless running as root, with a message saying why the test needs it.
pub fn require_root(why: &str) {
    if !rustix::process::geteuid().is_root() {
        panic!(
            "this test needs root ({why}); run the suite as root, as CI does \
             (sudo -E cargo nextest run ...), it is not skipped"
        );
    }
}
