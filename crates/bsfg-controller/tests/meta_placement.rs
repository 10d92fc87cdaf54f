//! The controller moves the JetStream meta leader off the server it is
//! connected to, as the NATS system account's user
//! (`nats.system_user_password_file`), on a real 3-node cluster with the
//! zone's accounts; clients without credentials keep working.

use crate::common::*;
use bsfg_core::config::NatsConnection;
use bsfg_store::SystemConnection;
use bsfg_testkit::nats::{NatsCluster, NatsOptions, SystemUser};
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_controller_moves_the_meta_leader_off_its_server() {
    let user = SystemUser::generate();
    let nats = NatsCluster::start(NatsOptions {
        system_user: Some(user.clone()),
        ..Default::default()
    })
    .await;
    let password = nats.dir().join("nats-system-password");
    user.write_password(&password).unwrap();

    // The controller connects to n0: put the meta leader there first.
    let conn = NatsConnection {
        url: nats.client_url(0),
        system_user_password_file: Some(password.clone()),
        ..Default::default()
    };
    let sys = SystemConnection::connect(&conn, "test")
        .await
        .unwrap()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while nats.meta_leader(0).await.as_deref() != Some("n0") {
        assert!(Instant::now() < deadline, "meta leader never came to n0");
        let _ = sys
            .client()
            .request(
                "$JS.API.META.LEADER.STEPDOWN",
                r#"{"placement":{"preferred":"n0"}}"#.into(),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let zone = Zone::start(nats, 3, |c| {
        c.nats.system_user_password_file = Some(password.clone());
    })
    .await;
    // Its own connection presents no credentials (the no_auth_user of $G):
    // streams were created and appends work.
    let mut producer = zone.grpc(&zone.producer);
    producer
        .append_fact(append_req(
            "operational",
            fact("meta-1", "order:1", r#"{"qty":1}"#),
        ))
        .await
        .expect("append through a controller on the accounts configuration");

    // The first placement round runs 5 s after start.
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let l = zone.nats.meta_leader(0).await;
        if let Some(l) = l.filter(|l| l != "n0") {
            break l;
        }
        assert!(
            Instant::now() < deadline,
            "the meta leader stayed on n0:\n{}",
            zone.controller.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The controller logs once it has seen the new leader itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !zone
        .controller
        .log_tail(200)
        .contains("moved the JetStream meta leader off this host")
    {
        assert!(
            Instant::now() < deadline,
            "{}",
            zone.controller.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It stays off n0 across the next round (10 s later).
    tokio::time::sleep(Duration::from_secs(11)).await;
    let now = zone.nats.meta_leader(0).await;
    assert!(
        now.as_deref().is_some_and(|l| l != "n0"),
        "{now:?} (was {leader})"
    );
}
