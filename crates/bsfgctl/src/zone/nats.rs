//! nats-server's monitoring endpoint, as far as bsfgctl reads it:
//! `/varz` (server name, version, the server's clock `now`, the JetStream
//! store directory) and `/jsz?accounts=true&streams=true&config=true` (the
//! meta group: leader, voters, currency and lag; every stream's replicas).

use serde::{Deserialize, Serialize};

pub const VARZ: &str = "/varz";
pub const JSZ: &str = "/jsz?accounts=true&streams=true&config=true";
pub const HEALTHZ: &str = "/healthz?js-enabled-only=true";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Varz {
    pub server_name: String,
    pub version: String,
    /// The server's wall clock, Unix ms (parsed from RFC 3339 `now`).
    pub now_unix_ms: Option<i64>,
    pub store_dir: Option<String>,
}

pub fn parse_varz(body: &str) -> Result<Varz, String> {
    #[derive(Deserialize)]
    struct V {
        #[serde(default)]
        server_name: String,
        #[serde(default)]
        version: String,
        #[serde(default)]
        now: Option<String>,
        #[serde(default)]
        jetstream: Option<Js>,
    }
    #[derive(Deserialize)]
    struct Js {
        #[serde(default)]
        config: Option<JsConfig>,
    }
    #[derive(Deserialize)]
    struct JsConfig {
        #[serde(default)]
        store_dir: Option<String>,
    }
    let v: V = serde_json::from_str(body).map_err(|e| format!("/varz: {e}"))?;
    Ok(Varz {
        server_name: v.server_name,
        version: v.version,
        now_unix_ms: v.now.as_deref().and_then(rfc3339_ms),
        store_dir: v.jetstream.and_then(|j| j.config).and_then(|c| c.store_dir),
    })
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
    // humantime accepts at most 9 fraction digits.
    let t = humantime::parse_rfc3339_weak(&base).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
    Some(ms - offset_min * 60_000)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Jsz {
    pub server_name: String,
    pub meta: Option<Meta>,
    pub streams: Vec<StreamInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Meta {
    pub leader: Option<String>,
    pub cluster_size: usize,
    /// Peers other than the answering server, as it sees them.
    pub peers: Vec<Peer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Peer {
    pub name: String,
    pub current: bool,
    pub offline: bool,
    /// Raft entries behind the leader.
    pub lag: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamInfo {
    pub name: String,
    pub replicas_configured: Option<usize>,
    pub leader: Option<String>,
    /// Followers (the leader is not listed).
    pub followers: Vec<Peer>,
    pub messages: u64,
}

impl Meta {
    /// Voters known to be current: the answering server when it is the
    /// leader or reports itself part of the group, plus current peers.
    pub fn current_voters(&self, answering: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .peers
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
        self.peers.iter().map(|p| p.lag).max().unwrap_or(0)
    }
}

pub fn parse_jsz(body: &str) -> Result<Jsz, String> {
    #[derive(Deserialize)]
    struct J {
        #[serde(default)]
        server_name: String,
        #[serde(default)]
        meta_cluster: Option<M>,
        #[serde(default)]
        account_details: Vec<A>,
    }
    #[derive(Deserialize)]
    struct M {
        #[serde(default)]
        leader: Option<String>,
        #[serde(default)]
        cluster_size: usize,
        #[serde(default)]
        replicas: Vec<R>,
    }
    #[derive(Deserialize)]
    struct R {
        name: String,
        #[serde(default)]
        current: bool,
        #[serde(default)]
        offline: bool,
        #[serde(default)]
        lag: u64,
    }
    #[derive(Deserialize)]
    struct A {
        #[serde(default)]
        stream_detail: Vec<S>,
    }
    #[derive(Deserialize)]
    struct S {
        name: String,
        #[serde(default)]
        config: Option<C>,
        #[serde(default)]
        cluster: Option<Cl>,
        #[serde(default)]
        state: Option<St>,
    }
    #[derive(Deserialize)]
    struct C {
        #[serde(default)]
        num_replicas: Option<usize>,
    }
    #[derive(Deserialize)]
    struct Cl {
        #[serde(default)]
        leader: Option<String>,
        #[serde(default)]
        replicas: Vec<R>,
    }
    #[derive(Deserialize)]
    struct St {
        #[serde(default)]
        messages: u64,
    }
    let peer = |r: R| Peer {
        name: r.name,
        current: r.current,
        offline: r.offline,
        lag: r.lag,
    };
    let j: J = serde_json::from_str(body).map_err(|e| format!("/jsz: {e}"))?;
    let nonempty = |s: Option<String>| s.filter(|l| !l.is_empty());
    let mut streams: Vec<StreamInfo> = j
        .account_details
        .into_iter()
        .flat_map(|a| a.stream_detail)
        .map(|s| {
            let (leader, followers) = match s.cluster {
                Some(c) => (
                    nonempty(c.leader),
                    c.replicas.into_iter().map(peer).collect(),
                ),
                None => (None, Vec::new()),
            };
            StreamInfo {
                name: s.name,
                replicas_configured: s.config.and_then(|c| c.num_replicas),
                leader,
                followers,
                messages: s.state.map_or(0, |s| s.messages),
            }
        })
        .collect();
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Jsz {
        server_name: j.server_name,
        meta: j.meta_cluster.map(|m| Meta {
            leader: nonempty(m.leader),
            cluster_size: m.cluster_size,
            peers: m.replicas.into_iter().map(peer).collect(),
        }),
        streams,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varz_clock_store_dir_and_name() {
        let v = parse_varz(
            r#"{"server_name":"alpha","version":"2.15.1","now":"2026-11-22T02:00:00.123456789Z",
                "jetstream":{"config":{"store_dir":"/data/jetstream/jetstream"}}}"#,
        )
        .unwrap();
        assert_eq!(v.server_name, "alpha");
        assert_eq!(v.now_unix_ms, Some(1_795_312_800_123));
        assert_eq!(v.store_dir.as_deref(), Some("/data/jetstream/jetstream"));
    }

    #[test]
    fn rfc3339_offsets_are_applied() {
        let z = rfc3339_ms("2026-11-22T02:00:00Z").unwrap();
        assert_eq!(rfc3339_ms("2026-11-22T03:00:00.000+01:00"), Some(z));
        assert_eq!(rfc3339_ms("2026-11-22T01:30:00-00:30"), Some(z));
        assert_eq!(rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn jsz_meta_voters_lag_and_stream_replicas() {
        let j = parse_jsz(
            r#"{"server_name":"beta","meta_cluster":{"leader":"alpha","cluster_size":3,
                "replicas":[{"name":"alpha","current":true,"lag":0},{"name":"gamma","current":false,"offline":true,"lag":12}]},
              "account_details":[{"stream_detail":[
                {"name":"facts_operational","config":{"num_replicas":3},"state":{"messages":7},
                 "cluster":{"leader":"gamma","replicas":[{"name":"alpha","current":true},{"name":"beta","current":true,"lag":2}]}},
                {"name":"KV_bsfg_lease","config":{"num_replicas":1},"cluster":{"leader":""}}]}]}"#,
        )
        .unwrap();
        let m = j.meta.as_ref().unwrap();
        assert_eq!(m.current_voters("beta"), vec!["alpha", "beta"]);
        assert_eq!(m.max_lag(), 12);
        assert_eq!(j.streams[0].name, "KV_bsfg_lease");
        assert_eq!(j.streams[0].leader, None);
        assert_eq!(j.streams[1].replicas_configured, Some(3));
        assert_eq!(j.streams[1].followers.len(), 2);
        assert_eq!(j.streams[1].messages, 7);
    }
}
