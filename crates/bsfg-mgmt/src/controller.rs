//! The controller's management endpoint: `GET /readyz` ([`Readyz`], 200
//! exactly while [`ServingState::Serving`]) and `GET /status`
//! ([`ControllerStatus`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where the controller stands; `/readyz` answers 200 only while `Serving`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServingState {
    /// Not yet bound to the service address.
    Starting,
    /// Bound, holding the lease, answering requests.
    Serving,
    /// Holding no lease it may serve under (lost, expiring, or unknown):
    /// every request is refused until it is renewed.
    Fenced,
    /// Shutting down: in-flight requests finish, new ones are refused.
    Draining,
}

impl ServingState {
    pub fn name(self) -> &'static str {
        match self {
            ServingState::Starting => "starting",
            ServingState::Serving => "serving",
            ServingState::Fenced => "fenced",
            ServingState::Draining => "draining",
        }
    }
}

impl fmt::Display for ServingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The body of `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readyz {
    pub state: ServingState,
    /// Why it does not serve; null while serving.
    pub reason: Option<String>,
}

/// The body of `GET /status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerStatus {
    pub zone: String,
    pub node: String,
    pub state: ServingState,
    pub reason: Option<String>,
    /// The service address (the VIP and port).
    pub listen: String,
    pub version: String,
    /// The running executable, resolved (a Nix store path on the appliance).
    pub executable: Option<String>,
    pub started_at_unix_ms: i64,
    /// `None`: the controller runs without a lease (single-host set-ups).
    pub lease: Option<ControllerLease>,
    /// Store buffer fill, one entry per stream class, by name.
    #[serde(default)]
    pub classes: Vec<ClassFill>,
    /// Durable consumer cursors.
    #[serde(default)]
    pub consumers: Vec<ConsumerCursor>,
    /// One entry per peer zone this controller pulls from (docs/replication.md).
    #[serde(default)]
    pub replication: Vec<PeerReplication>,
    /// Artifacts fetched back from peer zones after a failover.
    #[serde(default)]
    pub rehydration: Option<Rehydration>,
}

impl ControllerStatus {
    /// The replicator of `peer`, if this controller has one.
    pub fn peer(&self, peer: &str) -> Option<&PeerReplication> {
        self.replication.iter().find(|r| r.peer == peer)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerLease {
    /// The lease is held by this controller and not yet due to fence.
    pub held: bool,
    /// This process's lease identity (host and start).
    pub instance: String,
    pub holder: Option<String>,
    pub revision: Option<u64>,
    /// Time until this controller fences itself unless it renews.
    pub fence_in_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassFill {
    pub class: String,
    pub fill_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerCursor {
    pub consumer: String,
    pub cursor: u64,
}

/// Where a replicator stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    Starting,
    Replicating,
    CaughtUp,
    Backoff,
    /// This controller does not serve (fenced or draining): nothing is pulled.
    Paused,
}

impl PeerState {
    pub fn name(self) -> &'static str {
        match self {
            PeerState::Starting => "starting",
            PeerState::Replicating => "replicating",
            PeerState::CaughtUp => "caught_up",
            PeerState::Backoff => "backoff",
            PeerState::Paused => "paused",
        }
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A replicator's state: one per peer zone pulled from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerReplication {
    pub peer: String,
    /// The consumer on the peer this zone pulls from.
    pub consumer: String,
    pub state: PeerState,
    pub last_error: Option<String>,
    /// Facts stored by this controller process (it starts at 0 on every start).
    pub replicated: u64,
    pub rejected: u64,
    pub confirmed_offset: u64,
    /// Facts waiting at the peer after the last page.
    pub backlog: u64,
    /// Age of the newest fact of the last page when it was stored here, or
    /// the time since a round last completed if longer (as the metric).
    pub lag_seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rehydration {
    /// Blobs the index knows and this host lacks, at the last scan.
    pub pending: usize,
    /// Blobs fetched back since start.
    pub fetched: u64,
    /// `bucket/key` of blobs no reachable peer could supply at the last scan.
    pub unavailable: Vec<String>,
    pub scans: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serving_controller_with_lease_and_replicator() {
        let s: ControllerStatus = serde_json::from_str(
            r#"{"zone":"plant-a","node":"beta","state":"serving","reason":null,
                "listen":"10.20.0.100:9443","version":"0.1.0","executable":"/nix/store/x/bin/bsfg-controller",
                "started_at_unix_ms":1,
                "lease":{"held":true,"instance":"beta-1","holder":"beta","revision":9,"fence_in_ms":700},
                "classes":[{"class":"operational","fill_percent":0.5}],
                "consumers":[{"consumer":"erp","cursor":4}],
                "replication":[{"peer":"enterprise","consumer":"to-plant-a","state":"caught_up",
                  "last_error":null,"replicated":812,"rejected":0,"confirmed_offset":1900,
                  "backlog":0,"lag_seconds":0.031}],
                "rehydration":null}"#,
        )
        .unwrap();
        assert_eq!(s.state, ServingState::Serving);
        assert_eq!(s.lease.as_ref().unwrap().fence_in_ms, Some(700));
        let r = s.peer("enterprise").unwrap();
        assert_eq!(
            (r.state, r.replicated, r.backlog),
            (PeerState::CaughtUp, 812, 0)
        );
        assert!(s.peer("plant-b").is_none());
        let back: ControllerStatus =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn readyz_names_the_state() {
        let r: Readyz =
            serde_json::from_str(r#"{"state":"fenced","reason":"lease expired"}"#).unwrap();
        assert_eq!(r.state, ServingState::Fenced);
        assert_eq!(
            serde_json::to_string(&Readyz {
                state: ServingState::Serving,
                reason: None
            })
            .unwrap(),
            r#"{"state":"serving","reason":null}"#
        );
    }
}
