//! An acknowledged artifact survives a power cut: PutObject answers only
//! after the blob and its directory entry are durable, and only then is the
//! artifact indexed in JetStream. The artifact directory is a `bsfg-powercut`
//! volume with strict POSIX semantics (a name is durable only after fsync of
//! its directory); the JetStream store one with journaled semantics (what
//! nats-server needs, see docs/durability.md) and `sync_interval: always`.

use crate::common::Zone;
use bsfg_client::pb::*;
use bsfg_powercut::domain::PowerDomain;
use bsfg_powercut::model::{Config, Semantics};
use bsfg_testkit::controller::RunningController;
use bsfg_testkit::nats::{NatsCluster, NatsOptions};
use futures::StreamExt;
use std::time::Duration;

/// A PutObject stream: the header, then the bytes in 64 KiB chunks.
fn put_request(key: &str, data: &[u8]) -> Vec<PutObjectRequest> {
    use put_object_request::Part;
    let mut msgs = vec![PutObjectRequest {
        part: Some(Part::Header(ObjectHeader {
            bucket: "drawings".into(),
            key: key.into(),
            media_type: "application/pdf".into(),
            size: data.len() as u64,
        })),
    }];
    msgs.extend(data.chunks(64 * 1024).map(|c| PutObjectRequest {
        part: Some(Part::Chunk(c.to_vec())),
    }));
    msgs
}

async fn put(
    client: &mut bsfg_client::BoundaryServiceClient<tonic::transport::Channel>,
    key: &str,
    data: &[u8],
) -> PutObjectResponse {
    client
        .put_object(tokio_stream::iter(put_request(key, data)))
        .await
        .unwrap()
        .into_inner()
}

async fn get(
    client: &mut bsfg_client::BoundaryServiceClient<tonic::transport::Channel>,
    key: &str,
) -> Result<Vec<u8>, tonic::Status> {
    let mut stream = client
        .get_object(GetObjectRequest {
            bucket: "drawings".into(),
            key: key.into(),
        })
        .await?
        .into_inner();
    let mut data = Vec::new();
    while let Some(msg) = stream.next().await {
        if let Some(get_object_response::Part::Chunk(c)) = msg?.part {
            data.extend(c);
        }
    }
    Ok(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_artifact_survives_a_power_cut() {
    bsfg_testkit::require_root("FUSE mounts with mount(2)");
    let disks = tempfile::Builder::new()
        .prefix("powercut-ctl-")
        .tempdir()
        .unwrap();
    let host = PowerDomain::new();
    let artifacts = disks.path().join("artifacts");
    host.add_volume(
        "artifacts",
        &artifacts,
        &Config {
            semantics: Semantics::Posix,
            capacity_bytes: 256 << 20,
            ..Config::default()
        },
    )
    .unwrap();
    host.add_volume(
        "jetstream",
        &disks.path().join("jetstream"),
        &Config {
            semantics: Semantics::Journaled,
            capacity_bytes: 1 << 30,
            ..Config::default()
        },
    )
    .unwrap();
    let nats = NatsCluster::start(NatsOptions {
        nodes: 1,
        sync_always: true,
        store_dirs: vec![disks.path().join("jetstream/store")],
        ..NatsOptions::default()
    })
    .await;
    let artifact_dir = artifacts.clone();
    let mut zone = Zone::start(nats, 1, move |c| c.store.artifact_dir = artifact_dir).await;

    let mut producer = zone.grpc(&zone.producer);
    let mut acked = Vec::new();
    for i in 0..5u8 {
        let data: Vec<u8> = (0..100_000u32).map(|b| (b as u8) ^ i).collect();
        let key = format!("part/{i}.pdf");
        let r = put(&mut producer, &key, &data).await;
        assert_eq!(r.size, data.len() as u64);
        acked.push((key, data));
    }

    // Power goes: processes stop at this instant, then the disks lose what was volatile.
    zone.controller.daemon().freeze();
    zone.nats.freeze(0);
    let cut = host.cut(&[]).unwrap();
    zone.controller.kill();
    zone.nats.kill(0);
    host.boot(&[]).unwrap();
    eprintln!("cut discarded {:?}", cut.volumes);

    zone.nats.restart_all().await;
    let config = zone.controller.config.clone();
    zone.controller = RunningController::start(config, zone.dir.path()).await;
    let reader = zone.grpc(&zone.reader);
    for (key, data) in &acked {
        let got = bsfg_testkit::eventually(
            &format!("{key} readable after the cut"),
            Duration::from_secs(30),
            || {
                let mut reader = reader.clone();
                async move { get(&mut reader, key).await.ok() }
            },
        )
        .await;
        assert!(&got == data, "{key}: content differs after the cut");
    }
    drop(reader);
    drop(zone);
}

/// The index follows the blob: an upload the disk cannot hold (ENOSPC on a
/// 1 MiB volume) is refused and leaves no index entry behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_that_could_not_be_made_durable_is_not_indexed() {
    bsfg_testkit::require_root("FUSE mounts with mount(2)");
    let disks = tempfile::Builder::new()
        .prefix("powercut-full-")
        .tempdir()
        .unwrap();
    let host = PowerDomain::new();
    let artifacts = disks.path().join("artifacts");
    host.add_volume(
        "artifacts",
        &artifacts,
        &Config {
            capacity_bytes: 1 << 20,
            ..Config::default()
        },
    )
    .unwrap();
    let artifact_dir = artifacts.clone();
    let zone = Zone::start(NatsCluster::start1().await, 1, move |c| {
        c.store.artifact_dir = artifact_dir
    })
    .await;
    let mut producer = zone.grpc(&zone.producer);
    let e = producer
        .put_object(tokio_stream::iter(put_request(
            "too/big.pdf",
            &[1u8; 2 << 20],
        )))
        .await
        .unwrap_err();
    assert_eq!(crate::common::reason(&e), "internal", "{e:?}");
    let mut reader = zone.grpc(&zone.reader);
    let e = get(&mut reader, "too/big.pdf").await.unwrap_err();
    assert_eq!(crate::common::reason(&e), "unknown_object", "{e:?}");
    assert_eq!(
        std::fs::read_dir(artifacts.join("tmp")).unwrap().count(),
        0,
        "the partial upload is removed"
    );
    drop(zone);
}
