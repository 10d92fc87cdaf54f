//! Replica health of every stream of the zone (store buffers, forward
//! buffers, KV buckets), as each stream's RAFT leader reports it: the
//! controller exports it (`bsfg_stream_*`) for the alerts on a replica down,
//! a stream without a leader and a lagging replica.
//!
//! Why the controller and not nats-server's `/jsz` on each host: a stream's
//! replica view is exact only on its leader (a follower does not track the
//! other followers), and the active controller gathers leadership on the
//! witness, which runs no BSFG daemon. A stream-info request reaches the
//! leader wherever it is, so one reader sees every stream exactly.

use crate::errors::unavailable;
use crate::substrate::Substrate;
use async_nats::jetstream::stream::{ClusterInfo, Info};
use bsfg_core::BsfgError;
use futures::TryStreamExt;
use std::collections::BTreeMap;

/// One stream's replicas, as its leader reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReplicas {
    pub stream: String,
    /// The stream's configured replica count.
    pub configured: usize,
    /// The leader plus every follower reported current and online; 0
    /// without a leader.
    pub current: usize,
    /// Whether a RAFT leader answers for the stream.
    pub has_leader: bool,
    /// RAFT entries the furthest-behind *online* follower lags the leader
    /// (an offline one counts as not current instead).
    pub max_lag: u64,
}

impl StreamReplicas {
    /// From a stream-info answer.
    pub fn from_info(info: &Info) -> StreamReplicas {
        Self::from_cluster(
            &info.config.name,
            info.config.num_replicas,
            info.cluster.as_ref(),
        )
    }

    /// From a stream's name, configured replicas and cluster info (pure).
    pub fn from_cluster(
        stream: &str,
        num_replicas: usize,
        cluster: Option<&ClusterInfo>,
    ) -> StreamReplicas {
        let configured = num_replicas.max(1);
        let (has_leader, current, max_lag) = match cluster {
            // A single server: the stream is its own leader.
            None => (true, configured, 0),
            Some(c) if c.leader.as_deref().is_none_or(str::is_empty) => (false, 0, 0),
            Some(c) => {
                let online = c.replicas.iter().filter(|r| !r.offline);
                let current = 1 + online.clone().filter(|r| r.current).count();
                let lag = online.filter_map(|r| r.lag).max().unwrap_or(0);
                (true, current, lag)
            }
        };
        StreamReplicas {
            stream: stream.to_owned(),
            configured,
            current,
            has_leader,
            max_lag,
        }
    }

    /// A known stream that no leader answered for.
    pub fn leaderless(stream: &str, configured: usize) -> StreamReplicas {
        StreamReplicas {
            stream: stream.to_owned(),
            configured,
            current: 0,
            has_leader: false,
            max_lag: 0,
        }
    }
}

/// The streams a controller has seen, so that one whose leader does not
/// answer (the stream list leaves it out) is reported leaderless rather
/// than silently dropped.
#[derive(Debug, Default)]
pub struct KnownStreams {
    configured: BTreeMap<String, usize>,
}

impl KnownStreams {
    /// Streams known before the first listing (the controller's buffers);
    /// their replica count is learnt from the first answer.
    pub fn expect(&mut self, stream: &str, configured: usize) {
        self.configured
            .entry(stream.to_owned())
            .or_insert(configured);
    }

    /// Merges one listing (pure): every listed stream as reported, every
    /// known stream missing from it leaderless. `None` (the listing itself
    /// failed: no meta leader, no connection): every known stream leaderless.
    pub fn merge(&mut self, listed: Option<Vec<StreamReplicas>>) -> Vec<StreamReplicas> {
        let listed = listed.unwrap_or_default();
        for s in &listed {
            self.configured.insert(s.stream.clone(), s.configured);
        }
        self.configured
            .iter()
            .map(|(name, &configured)| {
                listed
                    .iter()
                    .find(|s| &s.stream == name)
                    .cloned()
                    .unwrap_or_else(|| StreamReplicas::leaderless(name, configured))
            })
            .collect()
    }
}

/// Every stream of the account the stream list answers for (a stream whose
/// leader does not answer in time is left out by the server).
pub async fn stream_replicas(substrate: &Substrate) -> Result<Vec<StreamReplicas>, BsfgError> {
    Ok(stream_infos(substrate)
        .await?
        .iter()
        .map(StreamReplicas::from_info)
        .collect())
}

/// Every stream's info from the stream list (answered by each leader).
pub(crate) async fn stream_infos(substrate: &Substrate) -> Result<Vec<Info>, BsfgError> {
    substrate
        .jetstream()
        .streams()
        .try_collect()
        .await
        .map_err(|e| unavailable("listing streams", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str, cluster: serde_json::Value) -> StreamReplicas {
        let c: ClusterInfo = serde_json::from_value(cluster).unwrap();
        StreamReplicas::from_cluster(name, 3, Some(&c))
    }

    #[test]
    fn leader_and_current_online_followers_count() {
        let s = stream(
            "facts_operational",
            serde_json::json!({"leader": "gamma", "replicas": [
                {"name": "alpha", "current": true, "active": 1000, "lag": 3},
                {"name": "beta", "current": false, "active": 9_000_000_000u64, "offline": true, "lag": 900}]}),
        );
        assert_eq!(
            s,
            StreamReplicas {
                stream: "facts_operational".into(),
                configured: 3,
                current: 2,
                has_leader: true,
                max_lag: 3,
            }
        );
    }

    #[test]
    fn no_leader_is_no_replica_current() {
        let s = stream(
            "KV_bsfg_lease",
            serde_json::json!({"leader": "", "replicas": [
                {"name": "alpha", "current": true, "active": 1000}]}),
        );
        assert_eq!((s.current, s.has_leader), (0, false));
    }

    #[test]
    fn a_single_server_leads_its_streams() {
        let s = StreamReplicas::from_cluster("facts_operational", 1, None);
        assert_eq!((s.current, s.has_leader), (1, true));
    }

    #[test]
    fn a_known_stream_left_out_of_the_listing_is_leaderless() {
        let mut known = KnownStreams::default();
        known.expect("facts_operational", 3);
        let all = stream(
            "KV_bsfg_lease",
            serde_json::json!({"leader": "gamma", "replicas": [
                {"name": "alpha", "current": true, "active": 1}, {"name": "beta", "current": true, "active": 1}]}),
        );
        let merged = known.merge(Some(vec![all.clone()]));
        assert_eq!(
            merged,
            vec![all, StreamReplicas::leaderless("facts_operational", 3)]
        );
        // The listing failing: every known stream leaderless, none forgotten.
        let failed = known.merge(None);
        assert_eq!(failed.len(), 2);
        assert!(failed.iter().all(|s| s.current == 0 && s.configured == 3));
    }
}
