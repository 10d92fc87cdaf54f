//! Keeping RAFT leaders off the active controller host.
//!
//! A JetStream stream whose leader dies stalls writes until a new leader is
//! elected (seconds); a stream that only loses a follower does not stall at
//! all. So after every promotion the active host asks each stream it leads to
//! step down, and the leadership moves to a host that is not on the failover
//! path. If the active host then crashes, appends through the new active host
//! continue without an election in the way.

use crate::errors::unavailable;
use crate::substrate::Substrate;
use bsfg_core::BsfgError;
use futures::TryStreamExt;
use serde::Deserialize;

/// Where a stream's leader is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPlacement {
    pub stream: String,
    pub leader: Option<String>,
    pub replicas: Vec<String>,
}

#[derive(Deserialize)]
struct StepDownResponse {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Placement of every stream of the account.
pub async fn placements(substrate: &Substrate) -> Result<Vec<StreamPlacement>, BsfgError> {
    let infos: Vec<_> = substrate
        .jetstream()
        .streams()
        .try_collect()
        .await
        .map_err(|e| unavailable("listing streams", e))?;
    Ok(infos
        .into_iter()
        .map(|info| StreamPlacement {
            stream: info.config.name.clone(),
            leader: info.cluster.as_ref().and_then(|c| c.leader.clone()),
            replicas: info
                .cluster
                .map(|c| c.replicas.into_iter().map(|r| r.name).collect())
                .unwrap_or_default(),
        })
        .collect())
}

/// Asks every replicated stream led by `server` to elect another leader.
/// Returns the streams asked. Best effort: a failed step-down is logged.
pub async fn step_down_leaders_on(
    substrate: &Substrate,
    server: &str,
) -> Result<Vec<String>, BsfgError> {
    let mut moved = Vec::new();
    for p in placements(substrate).await? {
        if p.leader.as_deref() != Some(server) || p.replicas.is_empty() {
            continue;
        }
        let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{}", p.stream);
        match substrate.client().request(subject, "".into()).await {
            Ok(msg) => match serde_json::from_slice::<StepDownResponse>(&msg.payload) {
                Ok(r) if r.success => moved.push(p.stream),
                Ok(r) => {
                    tracing::warn!(stream = %p.stream, error = ?r.error, "leader step-down refused")
                }
                Err(e) => {
                    tracing::warn!(stream = %p.stream, error = %e, "leader step-down: bad answer")
                }
            },
            Err(e) => tracing::warn!(stream = %p.stream, error = %e, "leader step-down failed"),
        }
    }
    Ok(moved)
}
