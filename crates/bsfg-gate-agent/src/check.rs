//! `bsfg-gate-agent check`: keepalived's `vrrp_script`. Exits 0 only while
//! the local JetStream is healthy (gate 2), so a host with a broken
//! JetStream never bids for the VIP.
//!
//! Gate 2 alone, not quorum: during a meta-leader election (seconds after a
//! node crash) quorum is briefly unknown on *both* service hosts, and failing
//! the check there would put both into FAULT and drop the VIP. Quorum is the
//! daemon's business, with a grace period.

use crate::config::AgentConfig;
use crate::gates;
use crate::gates::jetstream::JetstreamFacts;
use crate::probes::nats::NatsMonitor;

/// Runs the check once; `Ok(reason)` when healthy, `Err(reason)` otherwise.
///
/// keepalived runs the check as its unprivileged script user, which holds no
/// NATS credential (the agent's password is for the agent alone). So the
/// check connects without one: a server that answers with an authorization
/// violation has spoken the client protocol, which is all gate 2 asks of
/// the connection; a server without authorization answers a ping.
pub async fn run(config: &AgentConfig) -> Result<String, String> {
    let timeout = config.nats.request_timeout;
    let monitor = NatsMonitor::new(
        config.nats.monitor_addr().map_err(|e| e.to_string())?,
        timeout,
    );
    let (healthz, ping) = tokio::join!(
        monitor.healthz(),
        client_protocol_answers(&config.nats.url, timeout)
    );
    let result = gates::jetstream::evaluate(&JetstreamFacts { healthz, ping });
    if result.passes() {
        Ok(result.reason)
    } else {
        Err(result.reason)
    }
}

async fn client_protocol_answers(url: &str, timeout: std::time::Duration) -> Result<(), String> {
    use async_nats::ConnectErrorKind;
    let connect = async_nats::ConnectOptions::new()
        .name("bsfg-gate-agent-check")
        .connection_timeout(timeout)
        .connect(url);
    match tokio::time::timeout(timeout, connect).await {
        Err(_) => Err(format!("no answer from {url} in {timeout:?}")),
        Ok(Err(e)) if e.kind() == ConnectErrorKind::AuthorizationViolation => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(client)) => tokio::time::timeout(timeout, client.flush())
            .await
            .map_err(|_| format!("no PONG within {timeout:?}"))?
            .map_err(|e| e.to_string()),
    }
}
