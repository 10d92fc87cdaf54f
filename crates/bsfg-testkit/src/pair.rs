//! Two zones on one machine for cross-zone replay: `plant-a` (the sender)
//! exposes consumer `to-enterprise` over its class `operational`; `enterprise`
//! (the receiver) pulls it into `fwd_plant-a` and offers it to `erp-reader`
//! through consumer `from-plant-a`. Each zone has its own CA; the sender
//! trusts the receiver's CA for the receiver's client certificate, the
//! receiver verifies the sender against the sender's CA and identity.

use crate::controller::{RunningController, test_config};
use crate::nats::NatsCluster;
use crate::pki::{TestPki, Usage};
use bsfg_core::config::{Consumer, ControllerConfig, Peer, TlsFiles};
use bsfg_core::cursor::StartPosition;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct ZonePair {
    pub sender_nats: NatsCluster,
    pub receiver_nats: NatsCluster,
    pub sender_pki: TestPki,
    pub receiver_pki: TestPki,
    pub dir: tempfile::TempDir,
    /// Running from the start.
    pub sender: RunningController,
    /// Started by the caller (`RunningController::start(pair.receiver_config.clone(), pair.dir.path())`).
    pub receiver_config: ControllerConfig,
    /// `mes-producer` of the sender's CA.
    pub producer: TlsFiles,
    /// `erp-reader` of the receiver's CA.
    pub reader: TlsFiles,
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// A trust bundle: several CA files concatenated.
fn bundle(dir: &Path, name: &str, cas: &[&Path]) -> PathBuf {
    let text: String = cas
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read CA"))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write bundle");
    path
}

impl ZonePair {
    /// Starts both JetStream clusters (the receiver's with `receiver_nodes`
    /// servers, R = nodes) and the sender's controller, whose certificate says
    /// `sender_identity` (the receiver expects `plant-a-bsfg`).
    pub async fn start(receiver_nodes: usize, sender_identity: &str) -> ZonePair {
        let sender_nats = NatsCluster::start1().await;
        let receiver_nats = if receiver_nodes == 3 {
            NatsCluster::start3().await
        } else {
            NatsCluster::start1().await
        };
        let sender_pki = TestPki::new("plant-a");
        let receiver_pki = TestPki::new("enterprise");
        let dir = tempfile::tempdir().expect("tempdir");
        let lo: [IpAddr; 1] = ["127.0.0.1".parse().expect("ip")];
        let sender_cert = sender_pki.issue(sender_identity, Usage::ServerAndClient, &lo, 365);
        let receiver_cert = receiver_pki.issue("enterprise-bsfg", Usage::ServerAndClient, &lo, 365);

        let mut s = test_config(
            "plant-a",
            "alpha",
            &sender_nats.client_url(0),
            1,
            &sender_cert,
            dir.path(),
        );
        s.tls.ca = bundle(
            dir.path(),
            "sender-trust.pem",
            &[sender_pki.ca_path(), receiver_pki.ca_path()],
        );
        s.consumers.insert(
            "to-enterprise".into(),
            Consumer {
                source: "store:operational".into(),
                start: StartPosition::Earliest,
                allowed: set(&["enterprise-bsfg"]),
            },
        );
        s.buckets
            .get_mut("drawings")
            .expect("test bucket")
            .read
            .insert("enterprise-bsfg".into());
        s.peers.insert(
            "enterprise".into(),
            Peer {
                identity: "enterprise-bsfg".into(),
                endpoint: None,
                consumer: None,
                ca: None,
            },
        );
        let sender = RunningController::start(s, dir.path()).await;

        let mut r = test_config(
            "enterprise",
            "alpha",
            &receiver_nats.client_url(0),
            receiver_nodes,
            &receiver_cert,
            dir.path(),
        );
        r.store.artifact_dir = dir.path().join("artifacts-receiver");
        r.peers.insert(
            "plant-a".into(),
            Peer {
                identity: "plant-a-bsfg".into(),
                endpoint: Some(sender.endpoint()),
                consumer: Some("to-enterprise".into()),
                ca: Some(sender_pki.ca_path().clone()),
            },
        );
        r.consumers.insert(
            "from-plant-a".into(),
            Consumer {
                source: "forward:plant-a".into(),
                start: StartPosition::Earliest,
                allowed: set(&["erp-reader"]),
            },
        );
        r.replication.idle_poll = Duration::from_millis(10);
        r.replication.backoff_min = Duration::from_millis(50);
        r.replication.backoff_max = Duration::from_millis(500);
        r.replication.rehydrate_retry = Duration::from_millis(300);
        let producer = sender_pki.client("mes-producer").tls_files();
        let reader = receiver_pki.client("erp-reader").tls_files();
        ZonePair {
            sender_nats,
            receiver_nats,
            sender_pki,
            receiver_pki,
            dir,
            sender,
            receiver_config: r,
            producer,
            reader,
        }
    }
}
