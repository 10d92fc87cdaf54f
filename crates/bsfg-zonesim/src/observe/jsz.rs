//! JetStream placement, the simulator's summary of nats-server's `/jsz`
//! ([`bsfg_mgmt::nats::Jsz`]): the meta leader, how many voters the meta
//! group has, and the leader of every stream (the KV buckets
//! `KV_bsfg_lease`, `KV_bsfg_cursors`, `KV_bsfg_artifacts` are streams too).

use bsfg_mgmt::nats::Jsz;
use serde::{Deserialize, Serialize};

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

impl From<&Jsz> for Placement {
    fn from(j: &Jsz) -> Placement {
        let meta = j.meta_cluster.as_ref();
        Placement {
            server: j.server_name.clone(),
            meta_leader: j.meta_leader().map(str::to_owned),
            cluster_size: meta.map_or(0, |m| m.cluster_size),
            current_peers: meta
                .into_iter()
                .flat_map(|m| &m.replicas)
                .filter(|r| r.current)
                .map(|r| r.name.clone())
                .collect(),
            streams: j
                .streams()
                .into_iter()
                .map(|s| StreamLeader {
                    stream: s.name.clone(),
                    leader: s.leader().map(str::to_owned),
                })
                .collect(),
        }
    }
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

    fn parse(body: &str) -> Result<Placement, String> {
        Jsz::parse(body).map(|j| Placement::from(&j))
    }

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
