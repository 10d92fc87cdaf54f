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
    let survivor = (victim + 1) % 3;
    // An election takes 4-9 s on a quiet machine; a loaded CI host needs more.
    let new_leader = bsfg_testkit::eventually("a new meta leader", Duration::from_secs(60), || {
        let (c, old) = (&cluster, leader.clone());
        async move { c.meta_leader(survivor).await.filter(|l| *l != old) }
    })
    .await;
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
