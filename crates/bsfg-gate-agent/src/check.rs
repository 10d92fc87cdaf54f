//! `bsfg-gate-agent check`: keepalived's `vrrp_script`. Exits 0 only while
//! this host's gate agent daemon answers and the local JetStream is healthy
//! (gate 2), so a host never bids for (or keeps) the VIP with a broken
//! JetStream or without a live agent.
//!
//! The agent's liveness: without an agent nothing on this host may run the
//! controller, and a dead agent cannot demote its host, so its host must not
//! stay in charge. The daemon's management endpoint answering `/healthz` is
//! the test; with the script's `fall` of 2 at a 1 s interval, keepalived goes
//! FAULT about 2 s after the agent died (a restart within that passes). The
//! controller it left then sees the VIP go and exits (it follows the VIP).
//! keepalived's `track_process` would notice sooner, but it needs the
//! kernel's process-event connector, which exists only in the initial
//! network namespace: keepalived 2.2.7 run in a namespace (as the zone
//! simulator runs it) logs "Failed to set/clear process event listen" and
//! goes FAULT for good, so the simulator could never prove it.
//!
//! Gate 2 alone, not quorum: during a meta-leader election (seconds after a
//! node crash) quorum is briefly unknown on *both* service hosts, and failing
//! the check there would put both into FAULT and drop the VIP. Quorum is the
//! daemon's business, with a grace period.

use crate::config::AgentConfig;
use crate::gates;
use crate::gates::jetstream::JetstreamFacts;
use crate::probes::nats::NatsMonitor;
use std::time::Duration;

/// How long the agent daemon may take to answer `/healthz`.
const AGENT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the check once; `Ok(reason)` when healthy, `Err(reason)` otherwise.
///
/// keepalived runs the check as its unprivileged script user, which holds no
/// NATS credential (the agent's password is for the agent alone). So the
/// check never logs in: it reads the `INFO` greeting nats-server sends on
/// every accepted client connection and closes before `CONNECT`. A login
/// without credentials would be refused too, but nats-server logs each
/// refusal as an error, once a second for as long as the zone runs; a
/// connection closed before `CONNECT` is not logged at all.
pub async fn run(config: &AgentConfig) -> Result<String, String> {
    let agent = config.management.address.to_string();
    match bsfg_mgmt::http::get(&agent, "/healthz", AGENT_TIMEOUT).await {
        Ok(r) if r.status == 200 => {}
        Ok(r) => {
            return Err(format!(
                "the gate agent at {agent} answered {}: {}",
                r.status,
                r.body.trim()
            ));
        }
        Err(e) => {
            return Err(format!(
                "the gate agent daemon does not answer at {agent}: {e}"
            ));
        }
    }
    let timeout = config.nats.request_timeout;
    let monitor = NatsMonitor::new(
        config.nats.monitor_addr().map_err(|e| e.to_string())?,
        timeout,
    );
    let (healthz, ping) = tokio::join!(
        monitor.healthz(),
        client_port_greets(&config.nats.url, timeout)
    );
    let result = gates::jetstream::evaluate(&JetstreamFacts { healthz, ping });
    if result.passes() {
        Ok(format!("gate agent answers; {}", result.reason))
    } else {
        Err(format!("local JetStream unhealthy: {}", result.reason))
    }
}

/// The client port's greeting: nats-server's first line on an accepted
/// connection is `INFO {json}` naming the server. Read it and hang up.
async fn client_port_greets(url: &str, timeout: Duration) -> Result<(), String> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let addr = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches('/');
    let greet = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        let mut line = String::new();
        tokio::io::BufReader::new(stream)
            .take(64 * 1024)
            .read_line(&mut line)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        parse_greeting(&line).map_err(|e| format!("{addr}: {e}"))
    };
    tokio::time::timeout(timeout, greet)
        .await
        .map_err(|_| format!("no INFO from {addr} within {timeout:?}"))?
}

/// Why a greeting is not nats-server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadGreeting {
    /// The connection closed before a line arrived.
    Closed,
    /// The first line is not `INFO` (its start, for the reason).
    NotNats(String),
    /// `INFO` with a body that is not JSON.
    Malformed(String),
    NoServerId,
}

impl std::fmt::Display for BadGreeting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadGreeting::Closed => f.write_str("closed without a greeting"),
            BadGreeting::NotNats(start) => write!(f, "not a NATS server: {start:?}"),
            BadGreeting::Malformed(e) => write!(f, "malformed INFO: {e}"),
            BadGreeting::NoServerId => f.write_str("INFO without a server_id"),
        }
    }
}

/// `INFO {"server_id": ...}` as nats-server sends it, or what is wrong.
pub fn parse_greeting(line: &str) -> Result<(), BadGreeting> {
    let json = line
        .strip_prefix("INFO ")
        .ok_or_else(|| match line.trim() {
            "" => BadGreeting::Closed,
            other => BadGreeting::NotNats(other.chars().take(80).collect()),
        })?;
    let info: serde_json::Value =
        serde_json::from_str(json.trim()).map_err(|e| BadGreeting::Malformed(e.to_string()))?;
    match info["server_id"].as_str() {
        Some(id) if !id.is_empty() => Ok(()),
        _ => Err(BadGreeting::NoServerId),
    }
}

#[cfg(test)]
mod tests {
    use super::{BadGreeting, parse_greeting};

    #[test]
    fn only_a_nats_info_line_with_a_server_id_counts() {
        assert_eq!(
            parse_greeting("INFO {\"server_id\":\"NAB2\",\"version\":\"2.15.1\"}\r\n"),
            Ok(())
        );
        assert_eq!(parse_greeting(""), Err(BadGreeting::Closed));
        assert_eq!(
            parse_greeting("HTTP/1.1 400 Bad Request\r\n"),
            Err(BadGreeting::NotNats("HTTP/1.1 400 Bad Request".into()))
        );
        assert!(matches!(
            parse_greeting("INFO {\r\n"),
            Err(BadGreeting::Malformed(_))
        ));
        assert_eq!(
            parse_greeting("INFO {\"version\":\"2.15.1\"}\r\n"),
            Err(BadGreeting::NoServerId)
        );
    }
}
