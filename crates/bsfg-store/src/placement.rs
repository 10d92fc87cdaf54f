//! Keeping RAFT leaders off the active controller host.
//!
//! A JetStream stream whose leader dies stalls writes until a new leader is
//! elected (seconds); a stream that only loses a follower does not stall at
//! all. So the active host asks each stream it leads to step down, and the
//! leadership moves to a host that is not on the failover path. If the active
//! host then crashes, appends through the new active host continue without an
//! election in the way.
//!
//! Leadership is gathered on one peer ([`plan`]). Two rules keep the
//! step-downs themselves off the failover path (measured
//! with the zone simulator's alpha-crash drill: stepping every stream down at
//! once right after a failover, while the old active host was still dead,
//! left the lease bucket leaderless long enough for the new controller to
//! fence itself, a 7 s outage):
//!
//! - a stream is asked to step down only while **every** replica is current
//!   and online: then the leader hands over to a healthy peer at once
//!   (leadership transfer). With a peer down the survivors would have to
//!   elect among two voters, and the stream would stall for seconds. Such a
//!   stream keeps its leader until its group is whole again (the next round);
//! - streams step down **one at a time**, each waiting for its new leader
//!   before the next, so at most one stream is between leaders at any moment.

use crate::substrate::Substrate;
use bsfg_core::BsfgError;
use serde::Deserialize;
use std::time::Duration;

/// Where a stream's leader is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPlacement {
    pub stream: String,
    pub leader: Option<String>,
    /// The other replicas (the leader is not listed).
    pub replicas: Vec<String>,
    /// Replicas that are current and online, most recently heard from first.
    pub current: Vec<String>,
}

impl StreamPlacement {
    /// Replicated, and every replica current: a step-down is a quick hand-over.
    pub fn whole(&self) -> bool {
        !self.replicas.is_empty() && self.current.len() == self.replicas.len()
    }
}

/// How long a replica may have been silent and still count as current.
const ACTIVE_WITHIN: Duration = Duration::from_secs(2);
/// How long to wait for a stream's new leader after a step-down.
const NEW_LEADER_WITHIN: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct StepDownResponse {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Placement of every stream of the account.
pub async fn placements(substrate: &Substrate) -> Result<Vec<StreamPlacement>, BsfgError> {
    let infos = crate::replicas::stream_infos(substrate).await?;
    Ok(infos
        .into_iter()
        .map(|info| {
            let (leader, replicas) = match info.cluster {
                Some(c) => (c.leader, c.replicas),
                None => (None, Vec::new()),
            };
            StreamPlacement {
                stream: info.config.name.clone(),
                leader,
                current: {
                    let mut fresh: Vec<_> = replicas
                        .iter()
                        .filter(|r| r.current && !r.offline && r.active <= ACTIVE_WITHIN)
                        .collect();
                    fresh.sort_by_key(|r| r.active);
                    fresh.into_iter().map(|r| r.name.clone()).collect()
                },
                replicas: replicas.into_iter().map(|r| r.name).collect(),
            }
        })
        .collect())
}

/// The peer to gather leadership on: `preferred` (the zone's witness) when
/// it is not `server` and is a current replica of some replicated stream;
/// else the one other than `server` that leads the most streams (ties: the
/// first by name); if no other peer leads anything yet, the most recently
/// heard-from current replica of the first stream `server` leads.
pub fn gathering_peer(
    placements: &[StreamPlacement],
    server: &str,
    preferred: Option<&str>,
) -> Option<String> {
    if let Some(w) = preferred.filter(|w| *w != server)
        && placements
            .iter()
            .any(|p| p.current.iter().any(|c| c == w) || p.leader.as_deref() == Some(w))
    {
        return Some(w.to_owned());
    }
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for p in placements.iter().filter(|p| !p.replicas.is_empty()) {
        if let Some(l) = p.leader.as_deref().filter(|l| *l != server) {
            *counts.entry(l).or_default() += 1;
        }
    }
    let best = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(name, _)| (*name).to_owned());
    best.or_else(|| {
        placements
            .iter()
            .find(|p| p.leader.as_deref() == Some(server) && p.whole())
            .and_then(|p| p.current.first().cloned())
    })
}

/// The streams to hand over now, each with its new leader, and the streams
/// this server leads that must wait (a replica is not current).
///
/// Leadership is gathered on one peer ([`gathering_peer`]), not merely moved
/// off `server`: the lease bucket and the fact streams then share one
/// leader, so of the two hosts that are not active, only the crash of that
/// one stalls anything (a new leader election), and the crash of the other
/// stalls nothing. Spread over both, either crash would stall some stream —
/// and a stalled lease bucket fences the active controller.
pub fn plan(
    placements: &[StreamPlacement],
    server: &str,
    preferred: Option<&str>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut now = Vec::new();
    let mut later = Vec::new();
    let Some(target) = gathering_peer(placements, server, preferred) else {
        return (now, later);
    };
    for p in placements {
        let Some(leader) = p.leader.as_deref() else {
            continue;
        };
        if p.replicas.is_empty() || leader == target {
            continue;
        }
        if p.whole() && p.current.contains(&target) {
            now.push((p.stream.clone(), target.clone()));
        } else if leader == server {
            later.push(p.stream.clone());
        }
    }
    (now, later)
}

/// The step-down request naming the preferred next leader (nats-server 2.11+).
pub fn stepdown_request(preferred: &str) -> String {
    serde_json::json!({ "placement": { "preferred": preferred } }).to_string()
}

/// Moves stream leadership off `server` and gathers it on one peer
/// ([`plan`]; `preferred`: the zone's witness), one stream at a time;
/// returns the streams moved.
/// Best effort: a refused or failed step-down is logged and the stream stays
/// where it is; a stream with a replica down is left for a later round.
pub async fn step_down_leaders_on(
    substrate: &Substrate,
    server: &str,
    preferred: Option<&str>,
) -> Result<Vec<String>, BsfgError> {
    let (now, deferred) = plan(&placements(substrate).await?, server, preferred);
    if !deferred.is_empty() {
        tracing::debug!(
            ?deferred,
            "not moving these leaders while a replica is not current (a step-down would stall them)"
        );
    }
    let mut moved = Vec::new();
    for (stream, to) in now {
        let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}");
        match substrate
            .client()
            .request(subject, stepdown_request(&to).into())
            .await
        {
            Ok(msg) => match serde_json::from_slice::<StepDownResponse>(&msg.payload) {
                Ok(r) if r.success => {
                    wait_for_leader(substrate, &stream, &to).await;
                    moved.push(stream);
                }
                Ok(r) => {
                    tracing::warn!(stream = %stream, error = ?r.error, "leader step-down refused")
                }
                Err(e) => {
                    tracing::warn!(stream = %stream, error = %e, "leader step-down: bad answer")
                }
            },
            Err(e) => tracing::warn!(stream = %stream, error = %e, "leader step-down failed"),
        }
    }
    Ok(moved)
}

/// Waits (bounded) until `stream` is led by `to`.
async fn wait_for_leader(substrate: &Substrate, stream: &str, to: &str) {
    let deadline = tokio::time::Instant::now() + NEW_LEADER_WITHIN;
    while tokio::time::Instant::now() < deadline {
        if let Ok(mut s) = substrate.jetstream().get_stream(stream).await
            && let Ok(info) = s.info().await
            && info.cluster.as_ref().and_then(|c| c.leader.as_deref()) == Some(to)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::warn!(
        stream,
        to,
        "the preferred leader did not take over within {NEW_LEADER_WITHIN:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(stream: &str, leader: &str, replicas: &[&str], current: &[&str]) -> StreamPlacement {
        StreamPlacement {
            stream: stream.into(),
            leader: Some(leader.into()),
            replicas: replicas.iter().map(|s| (*s).into()).collect(),
            current: current.iter().map(|s| (*s).into()).collect(),
        }
    }

    #[test]
    fn leadership_gathers_on_the_peer_leading_most() {
        let ps = vec![
            p(
                "facts_operational",
                "alpha",
                &["beta", "gamma"],
                &["gamma", "beta"],
            ),
            p(
                "KV_bsfg_lease",
                "beta",
                &["alpha", "gamma"],
                &["alpha", "gamma"],
            ),
            p(
                "KV_bsfg_cursors",
                "gamma",
                &["alpha", "beta"],
                &["alpha", "beta"],
            ),
            p(
                "facts_audit",
                "gamma",
                &["alpha", "beta"],
                &["alpha", "beta"],
            ),
            p("single", "alpha", &[], &[]),
        ];
        assert_eq!(gathering_peer(&ps, "alpha", None).as_deref(), Some("gamma"));
        let (now, later) = plan(&ps, "alpha", None);
        assert_eq!(
            now,
            vec![
                ("facts_operational".to_owned(), "gamma".to_owned()),
                ("KV_bsfg_lease".to_owned(), "gamma".to_owned())
            ],
            "ours and the third host's go to gamma"
        );
        assert!(later.is_empty());
    }

    #[test]
    fn the_witness_is_preferred_while_it_is_current() {
        // Beta (the standby) leads everything; the witness gamma is current.
        let ps = vec![
            p(
                "facts_operational",
                "beta",
                &["alpha", "gamma"],
                &["gamma", "alpha"],
            ),
            p(
                "KV_bsfg_lease",
                "beta",
                &["alpha", "gamma"],
                &["alpha", "gamma"],
            ),
        ];
        assert_eq!(
            gathering_peer(&ps, "alpha", Some("gamma")).as_deref(),
            Some("gamma")
        );
        let (now, later) = plan(&ps, "alpha", Some("gamma"));
        assert_eq!(
            now,
            vec![
                ("facts_operational".to_owned(), "gamma".to_owned()),
                ("KV_bsfg_lease".to_owned(), "gamma".to_owned())
            ],
            "the standby's leaderships move to the witness too"
        );
        assert!(later.is_empty());
        // Without the preference they would stay on beta, which leads most.
        assert_eq!(gathering_peer(&ps, "alpha", None).as_deref(), Some("beta"));
        assert!(plan(&ps, "alpha", None).0.is_empty());
    }

    #[test]
    fn a_witness_that_is_down_or_is_this_server_is_not_preferred() {
        let gamma_down = vec![p(
            "facts_operational",
            "beta",
            &["alpha", "gamma"],
            &["alpha"],
        )];
        assert_eq!(
            gathering_peer(&gamma_down, "alpha", Some("gamma")).as_deref(),
            Some("beta")
        );
        let ps = vec![p(
            "facts_operational",
            "gamma",
            &["alpha", "beta"],
            &["alpha", "beta"],
        )];
        assert_eq!(
            gathering_peer(&ps, "gamma", Some("gamma")).as_deref(),
            Some("alpha"),
            "never gather on the server asking"
        );
    }

    #[test]
    fn a_group_with_a_replica_down_keeps_its_leader() {
        let ps = vec![
            p("facts_operational", "beta", &["alpha", "gamma"], &["gamma"]),
            p("KV_bsfg_lease", "gamma", &["alpha", "beta"], &["beta"]),
        ];
        let (now, later) = plan(&ps, "beta", None);
        assert!(now.is_empty(), "alpha is not current: no hand-over now");
        assert_eq!(later, vec!["facts_operational".to_owned()]);
    }

    #[test]
    fn fresh_cluster_everything_led_here_goes_to_the_freshest_replica() {
        let ps = vec![
            p(
                "facts_operational",
                "alpha",
                &["beta", "gamma"],
                &["gamma", "beta"],
            ),
            p(
                "KV_bsfg_lease",
                "alpha",
                &["beta", "gamma"],
                &["beta", "gamma"],
            ),
        ];
        assert_eq!(gathering_peer(&ps, "alpha", None).as_deref(), Some("gamma"));
        let (now, _) = plan(&ps, "alpha", None);
        assert_eq!(now.len(), 2);
        assert!(now.iter().all(|(_, to)| to == "gamma"));
        assert_eq!(plan(&[], "alpha", None), (vec![], vec![]));
    }

    #[test]
    fn the_request_names_the_preferred_leader() {
        let v: serde_json::Value = serde_json::from_str(&stepdown_request("gamma")).unwrap();
        assert_eq!(v["placement"]["preferred"], "gamma");
    }

    #[test]
    fn whole_means_every_replica_current() {
        assert!(p("s", "a", &["b", "c"], &["b", "c"]).whole());
        assert!(!p("s", "a", &["b", "c"], &["c"]).whole());
        assert!(!p("s", "a", &[], &[]).whole());
    }
}
