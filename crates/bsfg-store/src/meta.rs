//! Keeping the JetStream meta leader off the active controller host.
//!
//! The standby's gate agent promotes only while "a meta leader is known"
//! (gate 3). When the active host crashes while it leads the meta group, the
//! two survivors first elect a new meta leader: 2–5 s on the failover path
//! (measured with the zone simulator's alpha-crash drill). So the active
//! controller, like it does for stream leaders ([`crate::placement`]), asks
//! the meta group to step down whenever its own server leads it, preferring
//! the peer that leads the streams.
//!
//! Only a user of the system account may send
//! `$JS.API.META.LEADER.STEPDOWN`, so this runs on a connection of its own
//! ([`SystemConnection`]), as the user of `nats.system_user_password_file`.
//! The meta group's view comes from the same account
//! (`$SYS.REQ.SERVER.<id>.JSZ` of the local server).
//!
//! The same rules as for streams keep the step-down itself off the failover
//! path: only while **every** peer is current and online (a leader transfer
//! to a healthy peer, no election among two voters), and never in the first
//! seconds after a promotion (the controller's placement task waits).
//!
//! Versions: nats-server 2.11 and later honour
//! `{"placement":{"preferred":"<server>"}}` on the meta step-down (checked
//! with 2.11.9 and 2.15.1: the named server takes over). 2.10 refuses that
//! body ("no replacement peer connected", error 10005) and steps down
//! without one; after such a refusal the mover sends plain step-downs (the
//! leader hands over to a peer of its choosing), repeated each round while
//! this host leads.

use crate::errors::unavailable;
use bsfg_core::BsfgError;
use bsfg_core::config::NatsConnection;
use bsfg_mgmt::nats::SystemJszReply;
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a peer may have been silent and still count as current.
const ACTIVE_WITHIN: Duration = Duration::from_secs(2);
/// How long to wait for the new meta leader after a step-down.
const NEW_LEADER_WITHIN: Duration = Duration::from_secs(5);

/// A connection to the local nats-server as the system account's user.
#[derive(Clone)]
pub struct SystemConnection {
    client: async_nats::Client,
}

impl std::fmt::Debug for SystemConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemConnection").finish_non_exhaustive()
    }
}

impl SystemConnection {
    /// Connects as `conn.system_user` with the password in
    /// `conn.system_user_password_file` (one line). `Ok(None)`: no file
    /// configured. A refused login is an error (no retry loop behind it).
    pub async fn connect(
        conn: &NatsConnection,
        name: &str,
    ) -> Result<Option<SystemConnection>, BsfgError> {
        let Some(path) = &conn.system_user_password_file else {
            return Ok(None);
        };
        let password = std::fs::read_to_string(path)
            .map_err(|e| unavailable(&format!("reading {}", path.display()), e))?;
        let password = password.trim();
        if password.is_empty() {
            return Err(unavailable(
                "NATS system user",
                format!("{} is empty", path.display()),
            ));
        }
        let opts = async_nats::ConnectOptions::new()
            .name(name)
            .user_and_password(conn.system_user.clone(), password.to_owned())
            .connection_timeout(conn.connect_timeout)
            .request_timeout(Some(conn.request_timeout))
            .max_reconnects(None);
        let client = tokio::time::timeout(conn.connect_timeout, opts.connect(conn.url.as_str()))
            .await
            .map_err(|_| {
                unavailable(
                    "connecting to NATS as the system user",
                    format!("no answer from {} in {:?}", conn.url, conn.connect_timeout),
                )
            })?
            .map_err(|e| {
                unavailable(
                    &format!("connecting to NATS as system user {:?}", conn.system_user),
                    e,
                )
            })?;
        Ok(Some(SystemConnection { client }))
    }

    /// The name of the server this connection reaches (the local one).
    pub fn server_name(&self) -> String {
        self.client.server_info().server_name
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The meta group as the local server sees it.
    pub async fn meta_placement(&self) -> Result<MetaPlacement, BsfgError> {
        let id = self.client.server_info().server_id;
        let msg = self
            .client
            .request(format!("$SYS.REQ.SERVER.{id}.JSZ"), "{}".into())
            .await
            .map_err(|e| unavailable("asking the local server for /jsz", e))?;
        MetaPlacement::parse(&msg.payload)
    }
}

/// The JetStream meta group, as one server sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetaPlacement {
    /// The server that answered.
    pub server: String,
    pub leader: Option<String>,
    /// Voters in the meta group.
    pub cluster_size: usize,
    /// The peers the answering server lists (the leader lists every other).
    pub peers: Vec<MetaPeer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaPeer {
    pub name: String,
    pub current: bool,
    pub offline: bool,
    /// Time since the answering server last heard from it.
    pub active: Duration,
}

impl MetaPlacement {
    /// Parses a `$SYS.REQ.SERVER.<id>.JSZ` answer.
    pub fn parse(payload: &[u8]) -> Result<MetaPlacement, BsfgError> {
        let a: SystemJszReply = serde_json::from_slice(payload)
            .map_err(|e| unavailable("the local server's /jsz answer", e))?;
        if let Some(e) = a.error {
            return Err(unavailable("the local server's /jsz answer", e));
        }
        let meta = a
            .data
            .and_then(|d| d.meta_cluster)
            .ok_or_else(|| unavailable("the local server's /jsz answer", "no meta_cluster"))?;
        Ok(MetaPlacement {
            server: a.server.map(|s| s.name).unwrap_or_default(),
            leader: meta.leader,
            cluster_size: meta.cluster_size,
            peers: meta
                .replicas
                .into_iter()
                .map(|r| MetaPeer {
                    active: r.active(),
                    name: r.name,
                    current: r.current,
                    offline: r.offline,
                })
                .collect(),
        })
    }

    fn fresh(p: &MetaPeer) -> bool {
        p.current && !p.offline && p.active <= ACTIVE_WITHIN
    }

    /// Every other voter is listed, current and recently heard from: a
    /// step-down is a quick hand-over, not an election among survivors.
    pub fn whole(&self) -> bool {
        self.cluster_size > 1
            && self.peers.len() + 1 >= self.cluster_size
            && self.peers.iter().all(Self::fresh)
    }
}

/// What to do about the meta leader on `server` ([`plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaPlan {
    /// Another server leads (or none is known): nothing to do.
    NotLeader(Option<String>),
    /// This server leads, but a peer is not current: a step-down now would
    /// be an election among the survivors. Later.
    Wait,
    /// Hand the meta leadership to `preferred`.
    StepDown { preferred: String },
}

/// The meta step-down decision for `server`, the local server, from its own
/// view of the meta group. The preferred next leader is `gather_on` (the
/// peer leading the streams, [`crate::placement::gathering_peer`]) when it
/// is a current peer, else the most recently heard-from peer.
pub fn plan(meta: &MetaPlacement, server: &str, gather_on: Option<&str>) -> MetaPlan {
    if meta.leader.as_deref() != Some(server) {
        return MetaPlan::NotLeader(meta.leader.clone());
    }
    if !meta.whole() {
        return MetaPlan::Wait;
    }
    // `whole`: every peer is current; the most recently heard-from first.
    let mut peers: Vec<&MetaPeer> = meta.peers.iter().filter(|p| p.name != server).collect();
    peers.sort_by_key(|p| p.active);
    let preferred = gather_on
        .and_then(|g| peers.iter().find(|p| p.name == g))
        .or(peers.first())
        .map(|p| p.name.clone());
    match preferred {
        Some(preferred) => MetaPlan::StepDown { preferred },
        None => MetaPlan::Wait,
    }
}

/// The meta step-down request naming the preferred next leader (2.11+).
pub fn meta_stepdown_request(preferred: &str) -> String {
    crate::placement::stepdown_request(preferred)
}

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaOutcome {
    /// The meta leader is elsewhere (`None`: no leader known right now).
    Elsewhere(Option<String>),
    /// This server leads, a peer is not current: left for a later round.
    Deferred,
    /// Stepped down; `to` is the new leader seen within 5 s (`None`: not
    /// seen yet), `preferred` the peer asked for (`None`: plain step-down).
    Moved {
        to: Option<String>,
        preferred: Option<String>,
    },
    /// The server refused or did not answer; logged.
    Failed(String),
}

#[derive(Deserialize)]
struct StepDownResponse {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    error: Option<StepDownError>,
}

#[derive(Deserialize, Debug)]
struct StepDownError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

/// Moves the meta leader off the local server, one round at a time
/// ([`MetaMover::round`]); remembers whether the server takes a preferred
/// leader.
#[derive(Debug)]
pub struct MetaMover {
    sys: SystemConnection,
    preferred_supported: AtomicBool,
}

impl MetaMover {
    pub fn new(sys: SystemConnection) -> MetaMover {
        MetaMover {
            sys,
            preferred_supported: AtomicBool::new(true),
        }
    }

    pub fn connection(&self) -> &SystemConnection {
        &self.sys
    }

    /// If the local server leads the meta group and every peer is current,
    /// steps it down, preferring `gather_on`.
    pub async fn round(&self, gather_on: Option<&str>) -> Result<MetaOutcome, BsfgError> {
        let server = self.sys.server_name();
        let meta = self.sys.meta_placement().await?;
        let preferred = match plan(&meta, &server, gather_on) {
            MetaPlan::NotLeader(l) => return Ok(MetaOutcome::Elsewhere(l)),
            MetaPlan::Wait => {
                tracing::debug!(
                    ?meta,
                    "this server leads the meta group, but not every peer is current: not stepping down now"
                );
                return Ok(MetaOutcome::Deferred);
            }
            MetaPlan::StepDown { preferred } => preferred,
        };
        if self.preferred_supported.load(Ordering::Relaxed) {
            match self.step_down(&meta_stepdown_request(&preferred)).await {
                Ok(()) => {
                    let to = self.wait_for_new_leader(&server).await;
                    return Ok(MetaOutcome::Moved {
                        to,
                        preferred: Some(preferred),
                    });
                }
                Err(StepDownRefusal::Refused(e)) => {
                    // nats-server before 2.11 refuses a placement without a
                    // cluster or tags; the plain form always works.
                    tracing::info!(
                        preferred = %preferred,
                        error = ?e,
                        "nats-server refused the meta step-down naming a preferred leader; using plain step-downs from now on"
                    );
                    self.preferred_supported.store(false, Ordering::Relaxed);
                }
                Err(StepDownRefusal::NoAnswer(e)) => return Ok(MetaOutcome::Failed(e)),
            }
        }
        match self.step_down("").await {
            Ok(()) => {
                let to = self.wait_for_new_leader(&server).await;
                Ok(MetaOutcome::Moved {
                    to,
                    preferred: None,
                })
            }
            Err(StepDownRefusal::Refused(e)) => Ok(MetaOutcome::Failed(format!(
                "meta step-down refused: {} (error {})",
                e.description, e.err_code
            ))),
            Err(StepDownRefusal::NoAnswer(e)) => Ok(MetaOutcome::Failed(e)),
        }
    }

    async fn step_down(&self, body: &str) -> Result<(), StepDownRefusal> {
        let msg = self
            .sys
            .client
            .request("$JS.API.META.LEADER.STEPDOWN", body.to_owned().into())
            .await
            .map_err(|e| StepDownRefusal::NoAnswer(format!("meta step-down: {e}")))?;
        match serde_json::from_slice::<StepDownResponse>(&msg.payload) {
            Ok(r) if r.success => Ok(()),
            Ok(r) => Err(StepDownRefusal::Refused(r.error.unwrap_or(StepDownError {
                err_code: 0,
                description: "no success and no error".into(),
            }))),
            Err(e) => Err(StepDownRefusal::NoAnswer(format!(
                "meta step-down: bad answer: {e}"
            ))),
        }
    }

    /// Waits (bounded) until a leader other than `server` is known.
    async fn wait_for_new_leader(&self, server: &str) -> Option<String> {
        let deadline = tokio::time::Instant::now() + NEW_LEADER_WITHIN;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Ok(m) = self.sys.meta_placement().await
                && let Some(l) = m.leader.filter(|l| l != server)
            {
                return Some(l);
            }
        }
        None
    }
}

enum StepDownRefusal {
    Refused(StepDownError),
    NoAnswer(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, current: bool, active_ms: u64) -> MetaPeer {
        MetaPeer {
            name: name.into(),
            current,
            offline: false,
            active: Duration::from_millis(active_ms),
        }
    }

    fn meta(leader: &str, peers: Vec<MetaPeer>) -> MetaPlacement {
        MetaPlacement {
            server: leader.into(),
            leader: Some(leader.into()),
            cluster_size: 3,
            peers,
        }
    }

    #[test]
    fn a_leader_with_every_peer_current_hands_over_to_the_gathering_peer() {
        let m = meta(
            "alpha",
            vec![peer("beta", true, 100), peer("gamma", true, 300)],
        );
        assert_eq!(
            plan(&m, "alpha", Some("gamma")),
            MetaPlan::StepDown {
                preferred: "gamma".into()
            }
        );
        assert_eq!(
            plan(&m, "alpha", None),
            MetaPlan::StepDown {
                preferred: "beta".into()
            },
            "without a gathering peer: the most recently heard-from"
        );
        assert_eq!(
            plan(&m, "alpha", Some("delta")),
            MetaPlan::StepDown {
                preferred: "beta".into()
            },
            "a gathering peer that is not a voter is ignored"
        );
    }

    #[test]
    fn not_the_leader_or_a_peer_down_means_no_step_down() {
        let m = meta(
            "gamma",
            vec![peer("alpha", true, 100), peer("beta", true, 100)],
        );
        assert_eq!(
            plan(&m, "alpha", Some("gamma")),
            MetaPlan::NotLeader(Some("gamma".into()))
        );
        let down = meta(
            "alpha",
            vec![peer("beta", true, 100), peer("gamma", false, 0)],
        );
        assert_eq!(plan(&down, "alpha", Some("beta")), MetaPlan::Wait);
        let silent = meta(
            "alpha",
            vec![peer("beta", true, 100), peer("gamma", true, 3000)],
        );
        assert_eq!(plan(&silent, "alpha", None), MetaPlan::Wait);
        let missing = meta("alpha", vec![peer("beta", true, 100)]);
        assert_eq!(
            plan(&missing, "alpha", None),
            MetaPlan::Wait,
            "a voter not listed at all"
        );
        let mut offline = meta(
            "alpha",
            vec![peer("beta", true, 100), peer("gamma", true, 100)],
        );
        offline.peers[1].offline = true;
        assert_eq!(plan(&offline, "alpha", None), MetaPlan::Wait);
        let none = MetaPlacement::default();
        assert_eq!(plan(&none, "alpha", None), MetaPlan::NotLeader(None));
    }

    #[test]
    fn parses_the_system_accounts_jsz_answer() {
        // As nats-server 2.15.1 answers $SYS.REQ.SERVER.<id>.JSZ (trimmed).
        let body = br#"{"server":{"name":"n0","host":"127.0.0.1","id":"NCLI","ver":"2.15.1"},
          "data":{"streams":1,"meta_cluster":{"name":"t","leader":"n0","peer":"fjFy",
          "replicas":[{"name":"n1","current":true,"active":244802753,"peer":"a"},
                      {"name":"n2","current":false,"offline":true,"active":0,"peer":"b"}],
          "cluster_size":3,"quorum_needed":2}}}"#;
        let m = MetaPlacement::parse(body).unwrap();
        assert_eq!(m.server, "n0");
        assert_eq!(m.leader.as_deref(), Some("n0"));
        assert_eq!(m.cluster_size, 3);
        assert_eq!(
            (m.peers[0].name.as_str(), m.peers[0].active.as_millis()),
            ("n1", 244)
        );
        assert!(m.peers[1].offline && !m.peers[1].current);
        assert!(!m.whole());
        let no_leader =
            br#"{"server":{"name":"n0"},"data":{"meta_cluster":{"leader":"","cluster_size":3}}}"#;
        assert_eq!(MetaPlacement::parse(no_leader).unwrap().leader, None);
        assert!(MetaPlacement::parse(br#"{"error":{"code":500}}"#).is_err());
    }
}
