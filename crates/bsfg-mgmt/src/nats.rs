//! The parts of nats-server's monitoring documents that BSFG reads: `/jsz`
//! (the JetStream meta group and every stream's replicas; also the `data`
//! of a `$SYS.REQ.SERVER.<id>.JSZ` reply) and `/varz` (server name,
//! version, clock, store directory). Every field defaults: nats-server
//! leaves out what does not apply (no `meta_cluster` without clustering),
//! and an empty leader name means no leader, so it reads as `None`.

use serde::{Deserialize, Deserializer, Serialize};
use std::time::Duration;

/// The meta group and every stream with its configuration, replicas and
/// state.
pub const JSZ: &str = "/jsz?accounts=true&streams=true&config=true";
pub const VARZ: &str = "/varz";
/// 200 once JetStream is enabled and current on this server.
pub const HEALTHZ_JETSTREAM: &str = "/healthz?js-enabled-only=true";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Jsz {
    /// Absent from some versions' `/jsz`; `/varz` always has it.
    pub server_name: String,
    pub meta_cluster: Option<MetaCluster>,
    pub account_details: Vec<AccountDetail>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetaCluster {
    #[serde(deserialize_with = "leader")]
    pub leader: Option<String>,
    /// Voters in the meta group.
    pub cluster_size: usize,
    /// The *other* peers, as the answering server sees them: on the leader
    /// every follower; on a follower the leader (current while heard from)
    /// and the other followers (never current: a follower does not track them).
    pub replicas: Vec<PeerInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    pub name: String,
    pub current: bool,
    pub offline: bool,
    /// Nanoseconds since the answering server last heard from it.
    pub active: u64,
    /// Raft entries behind the leader.
    pub lag: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountDetail {
    pub stream_detail: Vec<StreamDetail>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamDetail {
    /// KV buckets are streams too (`KV_bsfg_lease`).
    pub name: String,
    pub config: Option<StreamConfig>,
    pub cluster: Option<StreamCluster>,
    pub state: Option<StreamState>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    pub num_replicas: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamCluster {
    #[serde(deserialize_with = "leader")]
    pub leader: Option<String>,
    /// Followers (the leader is not listed).
    pub replicas: Vec<PeerInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamState {
    pub messages: u64,
}

/// nats-server reports "no leader" as an empty string.
fn leader<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|l| !l.is_empty()))
}

impl Jsz {
    pub fn parse(body: &str) -> Result<Jsz, String> {
        serde_json::from_str(body).map_err(|e| format!("/jsz: {e}"))
    }

    /// Every stream of every account, by name.
    pub fn streams(&self) -> Vec<&StreamDetail> {
        let mut v: Vec<&StreamDetail> = self
            .account_details
            .iter()
            .flat_map(|a| &a.stream_detail)
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn meta_leader(&self) -> Option<&str> {
        self.meta_cluster.as_ref()?.leader.as_deref()
    }
}

impl MetaCluster {
    /// Voters known to be current: the answering server (it follows a
    /// known leader, or leads), plus every other peer reported current and
    /// online. Sorted.
    pub fn current_voters(&self, answering: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .replicas
            .iter()
            .filter(|p| p.current && !p.offline)
            .map(|p| p.name.clone())
            .collect();
        if !answering.is_empty() && !v.iter().any(|n| n == answering) {
            v.push(answering.to_owned());
        }
        v.sort();
        v
    }

    pub fn max_lag(&self) -> u64 {
        self.replicas.iter().map(|p| p.lag).max().unwrap_or(0)
    }
}

impl StreamDetail {
    pub fn leader(&self) -> Option<&str> {
        self.cluster.as_ref()?.leader.as_deref()
    }
}

impl PeerInfo {
    pub fn active(&self) -> Duration {
        Duration::from_nanos(self.active)
    }
}

/// The reply to `$SYS.REQ.SERVER.<id>.JSZ` (system account only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemJszReply {
    pub server: Option<ServerRef>,
    pub data: Option<Jsz>,
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerRef {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Varz {
    pub server_name: String,
    pub version: String,
    /// The server's wall clock, RFC 3339 ([`Varz::now_unix_ms`]).
    pub now: Option<String>,
    pub jetstream: Option<VarzJetStream>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VarzJetStream {
    pub config: Option<VarzJetStreamConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VarzJetStreamConfig {
    pub store_dir: Option<String>,
}

impl Varz {
    pub fn parse(body: &str) -> Result<Varz, String> {
        serde_json::from_str(body).map_err(|e| format!("/varz: {e}"))
    }

    pub fn now_unix_ms(&self) -> Option<i64> {
        self.now.as_deref().and_then(rfc3339_ms)
    }

    pub fn store_dir(&self) -> Option<&str> {
        self.jetstream
            .as_ref()?
            .config
            .as_ref()?
            .store_dir
            .as_deref()
    }
}

/// RFC 3339 with any fraction and a `Z` or `±hh:mm` offset → Unix ms.
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    // humantime handles `Z` only; normalise an explicit offset first.
    let s = s.trim();
    let (base, offset_min) = match s.len().checked_sub(6).map(|i| s.split_at(i)) {
        Some((b, off))
            if (off.starts_with('+') || off.starts_with('-')) && off.as_bytes()[3] == b':' =>
        {
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let h: i64 = off[1..3].parse().ok()?;
            let m: i64 = off[4..6].parse().ok()?;
            (format!("{b}Z"), sign * (h * 60 + m))
        }
        _ => (s.to_owned(), 0),
    };
    let t = humantime::parse_rfc3339_weak(&base).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
    Some(ms - offset_min * 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSZ_BODY: &str = r#"{
      "server_id": "NA", "server_name": "beta", "now": "2026-01-01T00:00:00Z",
      "meta_cluster": {"name": "plant-a", "leader": "alpha", "peer": "x", "cluster_size": 3,
        "replicas": [{"name": "alpha", "current": true, "active": 244802753, "lag": 0},
                     {"name": "gamma", "current": false, "offline": true, "active": 9, "lag": 12}]},
      "account_details": [{"name": "$G", "id": "$G", "stream_detail": [
        {"name": "facts_operational", "config": {"num_replicas": 3}, "state": {"messages": 7},
         "cluster": {"name": "plant-a", "leader": "gamma",
                     "replicas": [{"name": "alpha", "current": true}, {"name": "beta", "current": true, "lag": 2}]}},
        {"name": "KV_bsfg_lease", "config": {"num_replicas": 1}, "cluster": {"name": "plant-a", "leader": ""}}
      ]}]
    }"#;

    #[test]
    fn meta_group_voters_lag_and_stream_replicas() {
        let j = Jsz::parse(JSZ_BODY).unwrap();
        assert_eq!(j.server_name, "beta");
        assert_eq!(j.meta_leader(), Some("alpha"));
        let m = j.meta_cluster.as_ref().unwrap();
        assert_eq!(m.cluster_size, 3);
        assert_eq!(m.current_voters("beta"), vec!["alpha", "beta"]);
        assert_eq!(m.max_lag(), 12);
        assert_eq!(m.replicas[0].active(), Duration::from_nanos(244_802_753));
        let s = j.streams();
        assert_eq!(s[0].name, "KV_bsfg_lease");
        assert_eq!(s[0].leader(), None, "an empty leader is no leader");
        assert_eq!(s[1].leader(), Some("gamma"));
        assert_eq!(s[1].config.as_ref().unwrap().num_replicas, Some(3));
        assert_eq!(s[1].cluster.as_ref().unwrap().replicas.len(), 2);
        assert_eq!(s[1].state.as_ref().unwrap().messages, 7);
    }

    #[test]
    fn a_server_without_clustering_has_no_meta_group() {
        let j = Jsz::parse(r#"{"server_name": "gamma"}"#).unwrap();
        assert!(j.meta_cluster.is_none() && j.streams().is_empty());
        assert!(Jsz::parse("not json").is_err());
    }

    #[test]
    fn the_system_account_reply_wraps_jsz() {
        let r: SystemJszReply = serde_json::from_str(&format!(
            r#"{{"server": {{"name": "beta", "id": "NA"}}, "data": {JSZ_BODY}}}"#
        ))
        .unwrap();
        assert_eq!(r.server.unwrap().name, "beta");
        assert_eq!(r.data.unwrap().meta_leader(), Some("alpha"));
        let e: SystemJszReply =
            serde_json::from_str(r#"{"error": {"code": 503, "description": "x"}}"#).unwrap();
        assert!(e.error.is_some() && e.data.is_none());
    }

    #[test]
    fn varz_clock_store_dir_and_name() {
        let v = Varz::parse(
            r#"{"server_name":"alpha","version":"2.15.1","now":"2026-11-22T02:00:00.123456789Z",
                "jetstream":{"config":{"store_dir":"/data/jetstream/jetstream"}}}"#,
        )
        .unwrap();
        assert_eq!(v.server_name, "alpha");
        assert_eq!(v.now_unix_ms(), Some(1_795_312_800_123));
        assert_eq!(v.store_dir(), Some("/data/jetstream/jetstream"));
    }

    #[test]
    fn rfc3339_offsets_are_applied() {
        let z = rfc3339_ms("2026-11-22T02:00:00Z").unwrap();
        assert_eq!(rfc3339_ms("2026-11-22T03:00:00.000+01:00"), Some(z));
        assert_eq!(rfc3339_ms("2026-11-22T01:30:00-00:30"), Some(z));
        assert_eq!(rfc3339_ms("yesterday"), None);
    }
}
