//! The JetStream meta leader moved off the local server by the system
//! account's user, on a real 3-node cluster configured with the zone's
//! accounts (`$SYS` with the user's bcrypt hash, `$G` with the
//! password-less `no_auth_user`), as modules/lib/zone.nix renders them.

use bsfg_core::config::NatsConnection;
use bsfg_core::source::Buffer;
use bsfg_store::{FactBuffer, MetaMover, MetaOutcome, Substrate, SystemConnection};
use bsfg_testkit::nats::{NatsCluster, NatsOptions, SystemUser};
use std::path::Path;
use std::time::{Duration, Instant};

fn system_conn(cluster: &NatsCluster, i: usize, user: &SystemUser, file: &Path) -> NatsConnection {
    NatsConnection {
        url: cluster.client_url(i),
        system_user: user.user.clone(),
        system_user_password_file: Some(file.to_owned()),
        ..Default::default()
    }
}

/// Hands the meta leadership to `name` (preferred step-down, 2.11+; plain
/// step-downs until it lands there on older servers).
async fn put_meta_leader_on(cluster: &NatsCluster, sys: &SystemConnection, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.meta_leader(0).await.as_deref() != Some(name) {
        assert!(
            Instant::now() < deadline,
            "the meta leader never came to {name}"
        );
        let body = format!(r#"{{"placement":{{"preferred":"{name}"}}}}"#);
        let refused = match sys
            .client()
            .request("$JS.API.META.LEADER.STEPDOWN", body.into())
            .await
        {
            Ok(m) => String::from_utf8_lossy(&m.payload).contains("\"error\""),
            Err(_) => true,
        };
        if refused {
            let _ = sys
                .client()
                .request("$JS.API.META.LEADER.STEPDOWN", "".into())
                .await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// nats-server 2.11 and later take a preferred meta leader.
fn takes_preferred(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 11)
}

#[tokio::test]
async fn the_meta_leader_moves_off_the_local_server_to_the_preferred_peer() {
    let user = SystemUser::generate();
    let cluster = NatsCluster::start(NatsOptions {
        system_user: Some(user.clone()),
        ..Default::default()
    })
    .await;
    let password = cluster.dir().join("nats-system-password");
    user.write_password(&password).unwrap();

    // Clients without credentials land in $G, with JetStream, as before.
    let app = Substrate::connect_url(&cluster.client_url(0), 3)
        .await
        .unwrap();
    bsfg_store::retry_while_unavailable("test set-up", Duration::from_secs(30), || {
        FactBuffer::ensure(
            &app,
            Buffer::Store("operational".into()),
            Duration::from_secs(3600),
            1 << 20,
            Default::default(),
        )
    })
    .await
    .expect("JetStream in the global account");
    // ... and cannot move the meta leader: only the system account may.
    assert!(
        app.client()
            .request("$JS.API.META.LEADER.STEPDOWN", "".into())
            .await
            .is_err(),
        "the global account has no meta step-down"
    );

    // No password file configured: no system connection, nothing tried.
    let unset = NatsConnection {
        url: cluster.client_url(0),
        ..Default::default()
    };
    assert!(
        SystemConnection::connect(&unset, "t")
            .await
            .unwrap()
            .is_none()
    );
    // A wrong password is refused at once.
    let wrong = cluster.dir().join("wrong-password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let e = SystemConnection::connect(&system_conn(&cluster, 0, &user, &wrong), "t")
        .await
        .expect_err("wrong password");
    assert!(e.to_string().contains("system user"), "{e}");

    let sys = SystemConnection::connect(&system_conn(&cluster, 0, &user, &password), "t")
        .await
        .unwrap()
        .expect("configured");
    assert_eq!(sys.server_name(), "n0");
    let version = sys.client().server_info().version;
    put_meta_leader_on(&cluster, &sys, "n0").await;

    let mover = MetaMover::new(sys);
    let deadline = Instant::now() + Duration::from_secs(20);
    let outcome = loop {
        match mover.round(Some("n2")).await.unwrap() {
            // Right after the leader changed, a peer may not be current yet.
            MetaOutcome::Deferred if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => break other,
        }
    };
    let MetaOutcome::Moved { to, preferred } = outcome else {
        panic!("expected a step-down, got {outcome:?}");
    };
    let to = to.expect("a new meta leader within 5 s");
    assert_ne!(to, "n0");
    if takes_preferred(&version) {
        assert_eq!(preferred.as_deref(), Some("n2"), "nats-server {version}");
        assert_eq!(to, "n2", "the preferred peer took over");
    } else {
        assert_eq!(preferred, None, "plain step-down on nats-server {version}");
    }
    // Every server agrees, and the next round leaves it there.
    for i in 0..3 {
        assert_eq!(cluster.meta_leader(i).await.as_deref(), Some(to.as_str()));
    }
    assert_eq!(
        mover.round(Some("n2")).await.unwrap(),
        MetaOutcome::Elsewhere(Some(to.clone()))
    );

    // The meta group as a follower sees it: not ours, nothing to do.
    let follower = SystemConnection::connect(&system_conn(&cluster, 1, &user, &password), "t")
        .await
        .unwrap()
        .unwrap();
    if to != "n1" {
        assert_eq!(
            MetaMover::new(follower).round(None).await.unwrap(),
            MetaOutcome::Elsewhere(Some(to))
        );
    }
}
