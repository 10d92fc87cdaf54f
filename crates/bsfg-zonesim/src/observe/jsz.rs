//! JetStream placement from nats-server's monitoring endpoint
//! (`/jsz?accounts=true&streams=true`): the meta leader, how many voters the
//! meta group has, and the leader of every stream (the KV buckets
//! `KV_bsfg_lease`, `KV_bsfg_cursors`, `KV_bsfg_artifacts` are streams too).

use serde::{Deserialize, Serialize};

pub const PATH: &str = "/jsz?accounts=true&streams=true";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The server that answered.
    pub server: String,
    pub meta_leader: Option<String>,
    /// Voters in the meta group (3 once every server has joined).
    pub cluster_size: usize,
    /// Peers other than the answering server that are current.
    pub current_peers: Vec<String>,
    pub streams: Vec<StreamLeader>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamLeader {
    pub stream: String,
    pub leader: Option<String>,
}

#[derive(Deserialize)]
struct Jsz {
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    meta_cluster: Option<Meta>,
    #[serde(default)]
    account_details: Vec<Account>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    leader: Option<String>,
    #[serde(default)]
    cluster_size: usize,
    #[serde(default)]
    replicas: Vec<Replica>,
}

#[derive(Deserialize)]
struct Replica {
    name: String,
    #[serde(default)]
    current: bool,
}

#[derive(Deserialize)]
struct Account {
    #[serde(default)]
    stream_detail: Vec<Stream>,
}

#[derive(Deserialize)]
struct Stream {
    name: String,
    #[serde(default)]
    cluster: Option<Cluster>,
}

#[derive(Deserialize)]
struct Cluster {
    #[serde(default)]
    leader: Option<String>,
}

pub fn parse(body: &str) -> Result<Placement, String> {
    let j: Jsz = serde_json::from_str(body).map_err(|e| format!("/jsz: {e}"))?;
    let meta = j.meta_cluster;
    let mut streams: Vec<StreamLeader> = j
        .account_details
        .into_iter()
        .flat_map(|a| a.stream_detail)
        .map(|s| StreamLeader {
            stream: s.name,
            leader: s.cluster.and_then(|c| c.leader).filter(|l| !l.is_empty()),
        })
        .collect();
    streams.sort_by(|a, b| a.stream.cmp(&b.stream));
    Ok(Placement {
        server: j.server_name.unwrap_or_default(),
        meta_leader: meta
            .as_ref()
            .and_then(|m| m.leader.clone())
            .filter(|l| !l.is_empty()),
        cluster_size: meta.as_ref().map_or(0, |m| m.cluster_size),
        current_peers: meta
            .map(|m| {
                m.replicas
                    .into_iter()
                    .filter(|r| r.current)
                    .map(|r| r.name)
                    .collect()
            })
            .unwrap_or_default(),
        streams,
    })
}

impl Placement {
    /// A formed cluster: a meta leader and all `voters` in the meta group.
    pub fn formed(&self, voters: usize) -> bool {
        self.meta_leader.is_some() && self.cluster_size >= voters
    }

    /// The one server leading every stream, if leadership is gathered.
    pub fn gathered_on(&self) -> Option<&str> {
        let first = self.streams.first()?.leader.as_deref()?;
        self.streams
            .iter()
            .all(|s| s.leader.as_deref() == Some(first))
            .then_some(first)
    }

    /// Streams led by `server`.
    pub fn led_by(&self, server: &str) -> Vec<&str> {
        self.streams
            .iter()
            .filter(|s| s.leader.as_deref() == Some(server))
            .map(|s| s.stream.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
      "server_id": "NA", "server_name": "beta", "now": "2026-01-01T00:00:00Z",
      "meta_cluster": {"name": "plant-a", "leader": "alpha", "peer": "x", "cluster_size": 3,
        "replicas": [{"name": "alpha", "current": true, "active": 1}, {"name": "gamma", "current": false, "active": 9}]},
      "account_details": [{"name": "$G", "id": "$G", "stream_detail": [
        {"name": "facts_operational", "cluster": {"name": "plant-a", "leader": "gamma", "replicas": []}},
        {"name": "KV_bsfg_lease", "cluster": {"name": "plant-a", "leader": "beta"}},
        {"name": "KV_bsfg_cursors", "cluster": {"name": "plant-a", "leader": ""}}
      ]}]
    }"#;

    #[test]
    fn leaders_meta_and_current_peers() {
        let p = parse(SAMPLE).unwrap();
        assert_eq!(p.server, "beta");
        assert_eq!(p.meta_leader.as_deref(), Some("alpha"));
        assert_eq!(p.cluster_size, 3);
        assert_eq!(p.current_peers, vec!["alpha".to_owned()]);
        assert!(p.formed(3));
        assert_eq!(p.led_by("gamma"), vec!["facts_operational"]);
        assert_eq!(p.led_by("beta"), vec!["KV_bsfg_lease"]);
        let cursors = p
            .streams
            .iter()
            .find(|s| s.stream == "KV_bsfg_cursors")
            .unwrap();
        assert_eq!(cursors.leader, None, "an empty leader is no leader");
        assert_eq!(p.gathered_on(), None);
        let gathered = Placement {
            streams: vec![
                StreamLeader {
                    stream: "a".into(),
                    leader: Some("gamma".into()),
                },
                StreamLeader {
                    stream: "b".into(),
                    leader: Some("gamma".into()),
                },
            ],
            ..p
        };
        assert_eq!(gathered.gathered_on(), Some("gamma"));
    }

    #[test]
    fn a_server_without_cluster_is_not_formed() {
        let p = parse(r#"{"server_name": "gamma"}"#).unwrap();
        assert!(!p.formed(3));
        assert!(parse("not json").is_err());
    }
}
