//! Gate 3: the JetStream meta cluster has quorum, as the local server sees
//! it: a meta leader is known and a majority of the voters is current.
//!
//! Read from the local server's `/jsz` (`meta_cluster`). Its `replicas` list
//! the *other* peers as this server sees them: on the leader, every follower
//! with `current`; on a follower, the leader (current while heard from) and
//! the other followers (never current, a follower does not track them). So
//! the count is: this server (it follows a known leader, or is the leader)
//! plus every other peer reported current. A leader that stopped answering
//! shows up as `current: false` before it disappears, so a stale leader name
//! does not count.

use super::GateResult;
use bsfg_mgmt::nats::{Jsz, MetaCluster};

#[derive(Debug, Clone, PartialEq)]
pub struct QuorumFacts {
    /// This server's name (`/varz` `server_name`).
    pub server_name: String,
    pub meta: MetaCluster,
}

/// The meta group of a `/jsz` document.
pub fn meta_cluster(jsz: Jsz) -> Result<MetaCluster, String> {
    jsz.meta_cluster
        .ok_or_else(|| "JetStream is not clustered (no meta_cluster in /jsz)".to_owned())
}

/// Voters current as this server sees them, and whether it is the meta
/// leader (only the leader tracks every follower: a follower's count is
/// itself and the leader at most). `None` while `/jsz` is unreadable; 0
/// while no meta leader is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VotersSeen {
    pub current: usize,
    pub is_leader: bool,
}

pub fn voters_seen(facts: &Result<QuorumFacts, String>) -> Option<VotersSeen> {
    let f = facts.as_ref().ok()?;
    Some(VotersSeen {
        current: f.meta.leader.as_ref().map_or(0, |_| current(f).len()),
        is_leader: f.meta.leader.as_deref() == Some(f.server_name.as_str()),
    })
}

/// This server (it follows a known leader, or is the leader) and every
/// other peer reported current, sorted.
fn current(facts: &QuorumFacts) -> Vec<&str> {
    let mut current: Vec<&str> = vec![facts.server_name.as_str()];
    for peer in &facts.meta.replicas {
        if peer.current && !peer.offline && !current.contains(&peer.name.as_str()) {
            current.push(&peer.name);
        }
    }
    current.sort_unstable();
    current
}

pub fn evaluate(voters: usize, facts: &Result<QuorumFacts, String>) -> GateResult {
    let facts = match facts {
        Ok(f) => f,
        Err(e) => return GateResult::fail(format!("cannot read the meta cluster: {e}")),
    };
    let needed = voters / 2 + 1;
    let Some(leader) = &facts.meta.leader else {
        return GateResult::fail(format!(
            "no meta leader known (election in progress or quorum lost; {needed} of {voters} voters needed)"
        ));
    };
    let current = current(facts);
    // 0: not reported.
    let size = facts.meta.cluster_size;
    if size != 0 && size != voters {
        return GateResult::fail(format!(
            "meta cluster has {size} peers, configuration says {voters} voters"
        ));
    }
    let leader_current = *leader == facts.server_name || current.contains(&leader.as_str());
    if !leader_current {
        return GateResult::fail(format!(
            "meta leader {leader} not current; {} of {voters} voters current ({})",
            current.len(),
            current.join(", ")
        ));
    }
    if current.len() < needed {
        return GateResult::fail(format!(
            "{} of {voters} voters current ({}), {needed} needed",
            current.len(),
            current.join(", ")
        ));
    }
    GateResult::pass(format!(
        "leader {leader}; {} of {voters} voters current ({})",
        current.len(),
        current.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(server: &str, jsz: serde_json::Value) -> Result<QuorumFacts, String> {
        Ok(QuorumFacts {
            server_name: server.into(),
            meta: meta_cluster(serde_json::from_value(jsz).map_err(|e| e.to_string())?)?,
        })
    }

    // Shapes below are what nats-server 2.15 answered in a real 3-node cluster.

    #[test]
    fn leader_sees_all_followers_current() {
        let f = facts(
            "n1",
            json!({"meta_cluster": {"name": "exp", "leader": "n1", "cluster_size": 3, "replicas": [
                {"name": "n0", "current": true, "active": 698429471},
                {"name": "n2", "current": true, "active": 698416672}]}}),
        );
        let r = evaluate(3, &f);
        assert!(r.passes(), "{r:?}");
        assert_eq!(r.reason, "leader n1; 3 of 3 voters current (n0, n1, n2)");
    }

    #[test]
    fn follower_counts_itself_and_the_current_leader() {
        let f = facts(
            "n0",
            json!({"meta_cluster": {"leader": "n1", "cluster_size": 3, "replicas": [
                {"name": "n1", "current": true}, {"name": "n2", "current": false}]}}),
        );
        assert!(evaluate(3, &f).passes());
        assert_eq!(
            voters_seen(&f),
            Some(VotersSeen {
                current: 2,
                is_leader: false
            })
        );
    }

    #[test]
    fn the_leader_counts_the_voters_it_sees_current() {
        let all = facts(
            "n1",
            json!({"meta_cluster": {"leader": "n1", "cluster_size": 3, "replicas": [
                {"name": "n0", "current": true}, {"name": "n2", "current": true}]}}),
        );
        let seen = |f| voters_seen(f).map(|v: VotersSeen| (v.current, v.is_leader));
        assert_eq!(seen(&all), Some((3, true)));
        // One voter gone: still quorum (the gate passes), one fewer current.
        let one_gone = facts(
            "n1",
            json!({"meta_cluster": {"leader": "n1", "cluster_size": 3, "replicas": [
                {"name": "n0", "current": true}, {"name": "n2", "current": false, "offline": true}]}}),
        );
        assert!(evaluate(3, &one_gone).passes());
        assert_eq!(seen(&one_gone), Some((2, true)));
        let no_leader = facts(
            "n1",
            json!({"meta_cluster": {"cluster_size": 3, "replicas": []}}),
        );
        assert_eq!(seen(&no_leader), Some((0, false)));
        assert_eq!(seen(&Err("connection refused".into())), None);
    }

    #[test]
    fn two_nodes_gone_fails_with_a_reason() {
        // Seconds after killing two nodes: the old leader is still named but not current.
        let f = facts(
            "n0",
            json!({"meta_cluster": {"leader": "n1", "cluster_size": 3, "replicas": [
                {"name": "n1", "current": false}, {"name": "n2", "current": false}]}}),
        );
        let r = evaluate(3, &f);
        assert!(!r.passes());
        assert_eq!(
            r.reason,
            "meta leader n1 not current; 1 of 3 voters current (n0)"
        );
        // Later: the leader is gone and this server lists itself while campaigning.
        let f = facts(
            "n0",
            json!({"meta_cluster": {"cluster_size": 3, "replicas": [
                {"name": "n0", "current": true}, {"name": "n1", "current": false},
                {"name": "n2", "current": false}]}}),
        );
        let r = evaluate(3, &f);
        assert!(!r.passes());
        assert!(r.reason.starts_with("no meta leader known"), "{}", r.reason);
    }

    #[test]
    fn offline_peers_and_self_listed_twice_do_not_count() {
        let f = facts(
            "n0",
            json!({"meta_cluster": {"leader": "n0", "cluster_size": 3, "replicas": [
                {"name": "n0", "current": true}, {"name": "n1", "current": true, "offline": true},
                {"name": "n2", "current": false}]}}),
        );
        let r = evaluate(3, &f);
        assert!(!r.passes());
        assert_eq!(r.reason, "1 of 3 voters current (n0), 2 needed");
    }

    #[test]
    fn unclustered_or_unreachable_fails() {
        assert!(facts("n0", json!({"streams": 0})).is_err());
        let r = evaluate(3, &Err("connection refused".into()));
        assert!(r.reason.contains("connection refused"));
        let f = facts(
            "n0",
            json!({"meta_cluster": {"leader": "", "replicas": []}}),
        );
        assert!(evaluate(3, &f).reason.starts_with("no meta leader"));
    }

    #[test]
    fn a_cluster_of_unexpected_size_fails() {
        let f = facts(
            "n0",
            json!({"meta_cluster": {"leader": "n0", "cluster_size": 5, "replicas": [
                {"name": "n1", "current": true}, {"name": "n2", "current": true}]}}),
        );
        assert!(evaluate(3, &f).reason.contains("5 peers"));
    }
}
