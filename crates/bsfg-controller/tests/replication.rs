//! Cross-zone replay between two zones on one machine: facts and artifacts
//! cross exactly once through partitions, crashes and bad peers.
//!
//! Zone `plant-a` (the sender) exposes consumer `to-enterprise`; zone
//! `enterprise` (the receiver) pulls it into `fwd_plant-a` and offers it to its
//! own reader through consumer `from-plant-a`. Each zone has its own CA; the
//! sender trusts the receiver's CA for the receiver's client certificate.

use crate::common::{append_req, fact, reason};
use bsfg_client::pb::*;
use bsfg_core::config::TlsFiles;
use bsfg_mgmt::PeerState;
use bsfg_testkit::controller::RunningController;
use bsfg_testkit::pair::ZonePair;
use std::collections::HashMap;
use std::time::Duration;
use tokio_stream::StreamExt;

struct TwoZones {
    pair: ZonePair,
    receiver: Option<RunningController>,
}

impl std::ops::Deref for TwoZones {
    type Target = ZonePair;
    fn deref(&self) -> &ZonePair {
        &self.pair
    }
}

impl std::ops::DerefMut for TwoZones {
    fn deref_mut(&mut self) -> &mut ZonePair {
        &mut self.pair
    }
}

impl TwoZones {
    async fn start(receiver_nodes: usize, sender_identity: &str) -> TwoZones {
        TwoZones {
            pair: ZonePair::start(receiver_nodes, sender_identity).await,
            receiver: None,
        }
    }

    async fn start_receiver(&mut self) {
        self.receiver =
            Some(RunningController::start(self.receiver_config.clone(), self.dir.path()).await);
    }

    fn receiver(&self) -> &RunningController {
        self.receiver.as_ref().expect("receiver running")
    }

    async fn append_many(&self, prefix: &str, n: usize) -> Vec<String> {
        let client = bsfg_client::connect_grpc(&self.sender.endpoint(), &self.producer).unwrap();
        let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
        let mut tasks = Vec::new();
        for chunk in ids.chunks(n.div_ceil(16).max(1)) {
            let (mut c, chunk) = (client.clone(), chunk.to_vec());
            tasks.push(tokio::spawn(async move {
                for id in chunk {
                    let f = fact_from("plant-a", &id);
                    c.append_fact(append_req("operational", f))
                        .await
                        .expect("sender append");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        ids
    }

    /// Everything in the receiver's forward buffer, by message id → count.
    async fn forwarded(&self) -> HashMap<String, usize> {
        let mut client =
            bsfg_client::connect_grpc(&self.receiver().endpoint(), &self.reader).unwrap();
        crate::common::drain(&mut client, "from-plant-a").await
    }

    async fn replicated_so_far(&self) -> u64 {
        self.receiver()
            .status()
            .await
            .and_then(|s| s.replication.first().map(|r| r.replicated))
            .unwrap_or(0)
    }

    /// Waits until this receiver process has pulled at least `n` facts.
    async fn wait_replicated(&self, n: u64) {
        bsfg_testkit::eventually(
            &format!("{n} facts replicated"),
            Duration::from_secs(120),
            || async move { (self.replicated_so_far().await >= n).then_some(()) },
        )
        .await;
    }

    /// Waits until the receiver has nothing left to pull.
    async fn wait_caught_up(&self) {
        bsfg_testkit::eventually(
            "replication caught up",
            Duration::from_secs(120),
            || async move {
                let s = self.receiver().status().await?;
                let r = s.replication.first()?;
                (r.state == PeerState::CaughtUp && r.backlog == 0).then_some(())
            },
        )
        .await;
    }
}

fn fact_from(zone: &str, id: &str) -> Fact {
    let mut f = fact(id, "order:o1", &format!("{{\"id\":\"{id}\"}}"));
    f.envelope.as_mut().unwrap().from_zone = zone.into();
    f
}

fn assert_exactly_once(counts: &HashMap<String, usize>, ids: &[String]) {
    let missing: Vec<_> = ids.iter().filter(|id| !counts.contains_key(*id)).collect();
    let duplicated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "{} facts missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(duplicated.is_empty(), "duplicates: {duplicated:?}");
    assert_eq!(counts.len(), ids.len(), "unexpected extra facts");
}

async fn put_and_reference(zone: &TwoZones, key: &str, data: &[u8]) -> ArtifactRef {
    use put_object_request::Part;
    let mut c = bsfg_client::connect_grpc(&zone.sender.endpoint(), &zone.producer).unwrap();
    let msgs = vec![
        PutObjectRequest {
            part: Some(Part::Header(ObjectHeader {
                bucket: "drawings".into(),
                key: key.into(),
                media_type: "application/octet-stream".into(),
                size: data.len() as u64,
            })),
        },
        PutObjectRequest {
            part: Some(Part::Chunk(data.to_vec())),
        },
    ];
    let put = c
        .put_object(tokio_stream::iter(msgs))
        .await
        .unwrap()
        .into_inner();
    let reference = ArtifactRef {
        bucket: "drawings".into(),
        key: key.into(),
        digest: put.digest,
        size: put.size,
        media_type: "application/octet-stream".into(),
    };
    let mut f = fact_from("plant-a", &format!("with-{key}"));
    f.envelope.as_mut().unwrap().artifact = Some(reference.clone());
    c.append_fact(append_req("operational", f)).await.unwrap();
    reference
}

async fn get_object(endpoint: &str, who: &TlsFiles, key: &str) -> Result<Vec<u8>, tonic::Status> {
    let mut c = bsfg_client::connect_grpc(endpoint, who).unwrap();
    let mut s = c
        .get_object(GetObjectRequest {
            bucket: "drawings".into(),
            key: key.into(),
        })
        .await?
        .into_inner();
    let mut data = Vec::new();
    while let Some(m) = s.next().await {
        if let Some(get_object_response::Part::Chunk(c)) = m?.part {
            data.extend(c);
        }
    }
    Ok(data)
}

#[tokio::test]
async fn facts_and_artifacts_cross_into_a_three_node_zone_exactly_once() {
    let mut z = TwoZones::start(3, "plant-a-bsfg").await;
    let ids = z.append_many("x", 500).await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let reference = put_and_reference(&z, "part-1.bin", &data).await;
    z.start_receiver().await;
    z.wait_replicated(501).await;
    let mut all = ids.clone();
    all.push("with-part-1.bin".into());
    assert_exactly_once(&z.forwarded().await, &all);
    // The artifact crossed with its fact, byte for byte.
    let got = get_object(&z.receiver().endpoint(), &z.reader, "part-1.bin")
        .await
        .unwrap();
    assert_eq!(bsfg_core::identity::content_digest(&got), reference.digest);
    let status = z.receiver().status().await.unwrap();
    assert_eq!(status.replication[0].peer, "plant-a");
    let metrics = z.receiver().metrics().await.unwrap();
    assert!(
        metrics.contains(r#"bsfg_replicated_facts_total{peer="plant-a"} 501"#),
        "{metrics}"
    );
    assert!(metrics.contains("bsfg_replication_lag_seconds{peer=\"plant-a\"}"));
}

#[tokio::test]
async fn a_partition_drains_completely_without_gaps_or_duplicates() {
    let mut z = TwoZones::start(1, "plant-a-bsfg").await;
    z.start_receiver().await;
    let first = z.append_many("before", 200).await;
    z.wait_replicated(200).await;

    // The receiving side goes away; the sender keeps accepting (producers never block).
    let mut receiver = z.receiver.take().unwrap();
    receiver.kill();
    let during = z.append_many("during", 3000).await;

    // The sender goes away; the receiver's own appends keep succeeding meanwhile.
    z.start_receiver().await;
    z.sender.kill();
    let receiver_producer = z.receiver_pki.client("mes-producer").tls_files();
    let mut local =
        bsfg_client::connect_grpc(&z.receiver().endpoint(), &receiver_producer).unwrap();
    let mut local_fact = fact("local-1", "order:1", "{}");
    local_fact.envelope.as_mut().unwrap().from_zone = "enterprise".into();
    local
        .append_fact(append_req("operational", local_fact))
        .await
        .expect("local appends do not depend on the peer");
    bsfg_testkit::eventually(
        "replicator backing off",
        Duration::from_secs(20),
        || async {
            let s = z.receiver().status().await?;
            let r = s.replication.first()?;
            (r.state == PeerState::Backoff && r.last_error.is_some()).then_some(())
        },
    )
    .await;

    // Reconnect: the whole backlog drains.
    let config = z.sender.config.clone();
    z.sender = RunningController::start(config, z.dir.path()).await;
    // This receiver process missed the first 200 (its predecessor pulled them).
    z.wait_replicated(3000).await;
    z.wait_caught_up().await;
    let mut all = first;
    all.extend(during);
    assert_exactly_once(&z.forwarded().await, &all);
}

#[tokio::test]
async fn killing_the_receiver_mid_page_yields_no_gaps_and_no_duplicates() {
    let mut z = TwoZones::start(1, "plant-a-bsfg").await;
    z.receiver_config.replication.page_facts = 500;
    let ids = z.append_many("k", 5000).await;
    z.start_receiver().await;
    bsfg_testkit::eventually("replication under way", Duration::from_secs(60), || async {
        let n = z.replicated_so_far().await;
        (n > 0 && n < 5000).then_some(())
    })
    .await;
    let mut receiver = z.receiver.take().unwrap();
    receiver.kill();
    z.start_receiver().await;
    z.wait_replicated(1).await;
    z.wait_caught_up().await;
    assert_exactly_once(&z.forwarded().await, &ids);
}

#[tokio::test]
async fn a_peer_presenting_the_wrong_zone_identity_is_refused() {
    let mut z = TwoZones::start(1, "rogue-bsfg").await;
    z.append_many("r", 10).await;
    z.start_receiver().await;
    let s = bsfg_testkit::eventually(
        "replicator refuses the peer",
        Duration::from_secs(20),
        || async {
            let s = z.receiver().status().await?;
            s.replication
                .first()?
                .last_error
                .clone()
                .filter(|e| e.contains("rogue-bsfg"))
        },
    )
    .await;
    assert!(s.contains("expected \"plant-a-bsfg\""), "{s}");
    assert_eq!(z.replicated_so_far().await, 0);
    assert!(z.forwarded().await.is_empty());
}

#[tokio::test]
async fn a_corrupted_artifact_transfer_is_detected_and_retried() {
    let mut z = TwoZones::start(1, "plant-a-bsfg").await;
    let data = vec![7u8; 50_000];
    let reference = put_and_reference(&z, "part-2.bin", &data).await;
    // Flip bytes of the sender's blob in place: same size, other content.
    let blob = z
        .sender
        .config
        .store
        .artifact_dir
        .join("blobs/sha256")
        .join(reference.digest.trim_start_matches("sha256:"));
    let mut corrupted = data.clone();
    corrupted[100] = 8;
    std::fs::write(&blob, &corrupted).unwrap();

    z.start_receiver().await;
    bsfg_testkit::eventually(
        "digest mismatch detected",
        Duration::from_secs(20),
        || async {
            let m = z.receiver().metrics().await?;
            m.contains(r#"bsfg_artifact_transfer_failures_total{peer="plant-a"}"#)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        z.replicated_so_far().await,
        0,
        "the fact is not confirmed without its artifact"
    );
    let err = get_object(&z.receiver().endpoint(), &z.reader, "part-2.bin")
        .await
        .unwrap_err();
    assert_eq!(
        reason(&err),
        "unknown_object",
        "nothing of the corrupt transfer was indexed"
    );

    // Repaired at the source: the retry succeeds, with the right bytes.
    std::fs::write(&blob, &data).unwrap();
    z.wait_replicated(1).await;
    let got = get_object(&z.receiver().endpoint(), &z.reader, "part-2.bin")
        .await
        .unwrap();
    assert_eq!(got, data);
}

#[tokio::test]
async fn missing_blobs_are_rehydrated_from_a_peer_after_a_failover() {
    let mut z = TwoZones::start(1, "plant-a-bsfg").await;
    let data = vec![42u8; 10_000];
    let reference = put_and_reference(&z, "part-3.bin", &data).await;
    z.start_receiver().await;
    z.wait_replicated(1).await;

    // The receiver's controller moves to a host without the blob: same JetStream
    // (the index), an empty artifact directory.
    let mut receiver = z.receiver.take().unwrap();
    receiver.stop().await;
    z.receiver_config.store.artifact_dir = z.dir.path().join("artifacts-receiver-beta");
    z.receiver_config.node = "beta".into();
    z.receiver_config.replication.rehydrate_retry = Duration::from_secs(3600);
    z.start_receiver().await;
    // Either it is already back (rehydrated at start) or the request says so and nudges.
    let got = bsfg_testkit::eventually("artifact rehydrated", Duration::from_secs(20), || async {
        match get_object(&z.receiver().endpoint(), &z.reader, "part-3.bin").await {
            Ok(d) => Some(d),
            Err(e) => {
                assert_eq!(
                    (e.code(), reason(&e).as_str()),
                    (tonic::Code::Unavailable, "artifact_rehydrating")
                );
                None
            }
        }
    })
    .await;
    assert_eq!(bsfg_core::identity::content_digest(&got), reference.digest);
    // The rehydrator publishes its counts when the scan ends, which can be
    // after the blob it fetched is already readable.
    bsfg_testkit::eventually(
        "rehydration counted in /status",
        Duration::from_secs(10),
        || async {
            let status = z.receiver().status().await?;
            status
                .rehydration
                .is_some_and(|r| r.fetched >= 1)
                .then_some(())
        },
    )
    .await;
}
