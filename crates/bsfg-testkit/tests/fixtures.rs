//! The fixtures themselves work against real processes.

use bsfg_testkit::nats::NatsCluster;
use std::time::Duration;

#[tokio::test]
async fn three_node_cluster_forms_and_survives_one_restart() {
    let mut cluster = NatsCluster::start3().await;
    let leader = cluster.meta_leader(0).await.expect("meta leader");
    assert!(["n0", "n1", "n2"].contains(&leader.as_str()), "{leader}");
    let victim = cluster.index_of(&leader).unwrap();
    cluster.kill(victim);
    let survivors = [(victim + 1) % 3, (victim + 2) % 3];
    // An election takes 4-9 s on a quiet machine; a loaded CI host needs
    // more. Either survivor's view counts (one may answer its monitoring
    // port late under load); on a timeout, their logs say why.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let new_leader = loop {
        let mut seen = None;
        for &i in &survivors {
            if let Some(l) = cluster.meta_leader(i).await.filter(|l| *l != leader) {
                seen = Some(l);
                break;
            }
        }
        if let Some(l) = seen {
            break l;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new meta leader within 60 s after {leader} was killed\n{}\n{}",
            cluster.log_tail(survivors[0], 30),
            cluster.log_tail(survivors[1], 30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(new_leader, cluster.node_name(victim));
    cluster.restart(victim).await;
}

#[test]
fn unique_names_fit_linux_interfaces_and_differ() {
    let a = bsfg_testkit::unique_name("bt");
    let b = bsfg_testkit::unique_name("bt");
    assert_ne!(a, b);
    assert!(a.len() <= 15);
}
