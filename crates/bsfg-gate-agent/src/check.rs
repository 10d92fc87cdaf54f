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
use crate::probes::nats::{NatsMonitor, jetstream_facts};
use bsfg_store::Substrate;

/// Runs the check once; `Ok(reason)` when healthy, `Err(reason)` otherwise.
pub async fn run(config: &AgentConfig) -> Result<String, String> {
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
        Ok(result.reason)
    } else {
        Err(result.reason)
    }
}
