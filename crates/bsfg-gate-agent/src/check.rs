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
use crate::probes::nats::{NatsMonitor, jetstream_facts};
use bsfg_store::Substrate;
use std::time::Duration;

/// How long the agent daemon may take to answer `/healthz`.
const AGENT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs the check once; `Ok(reason)` when healthy, `Err(reason)` otherwise.
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
    let substrate = Substrate::connect(
        &config.nats.connection(),
        config.nats.voters,
        "bsfg-gate-agent-check",
    )
    .await;
    let client = substrate.as_ref().ok().map(|s| s.client().clone());
    let mut facts = jetstream_facts(&monitor, client.as_ref(), timeout).await;
    if let Err(e) = &substrate {
        facts.ping = Err(e.to_string());
    }
    let result = gates::jetstream::evaluate(&facts);
    if result.passes() {
        Ok(format!("gate agent answers; {}", result.reason))
    } else {
        Err(format!("local JetStream unhealthy: {}", result.reason))
    }
}
