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
/// check connects without one: a server that answers with an authorization
/// violation has spoken the client protocol, which is all gate 2 asks of
/// the connection; a server without authorization answers a ping.
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
        client_protocol_answers(&config.nats.url, timeout)
    );
    let result = gates::jetstream::evaluate(&JetstreamFacts { healthz, ping });
    if result.passes() {
        Ok(format!("gate agent answers; {}", result.reason))
    } else {
        Err(format!("local JetStream unhealthy: {}", result.reason))
    }
}

async fn client_protocol_answers(url: &str, timeout: Duration) -> Result<(), String> {
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
