//! The boundary operations end to end: real controller binary, real R3
//! JetStream cluster, real mutual TLS, over gRPC and Connect.

use crate::common::*;
use bsfg_client::connect::Codec;
use bsfg_client::pb::*;
use std::collections::HashSet;
use std::time::Duration;
use tokio_stream::StreamExt;

#[tokio::test]
async fn append_duplicate_and_conflict_over_grpc_and_connect() {
    let zone = Zone::start3().await;
    let mut grpc = zone.grpc(&zone.producer);
    let f = fact("m-1", "order:line-3/4711", r#"{"status":"released"}"#);

    let first = grpc
        .append_fact(append_req("operational", f.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.duplicate);
    let again = grpc
        .append_fact(append_req("operational", f.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.offset, again.duplicate), (first.offset, true));

    let mut other = f.clone();
    other.object_json = r#"{"status":"held"}"#.into();
    let err = grpc
        .append_fact(append_req("operational", other.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    assert_eq!(reason(&err), "conflicting_duplicate");

    // The same over Connect, JSON and binary.
    let connect = zone.connect(&zone.producer);
    for codec in [Codec::Json, Codec::Proto] {
        let resp: AppendFactResponse = connect
            .call("AppendFact", codec, &append_req("operational", f.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (resp.offset, resp.duplicate),
            (first.offset, true),
            "{codec:?}"
        );
        let err = connect
            .call::<_, AppendFactResponse>(
                "AppendFact",
                codec,
                &append_req("operational", other.clone()),
            )
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.status, 409);
        let doc = err.error().unwrap();
        assert_eq!(doc["code"], "already_exists");
        assert_eq!(
            doc["details"][0]["debug"]["reason"],
            "conflicting_duplicate"
        );
    }
    let fresh: AppendFactResponse = connect
        .call(
            "AppendFact",
            Codec::Json,
            &append_req("operational", fact("m-2", "order:4712", "{}")),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(fresh.offset > first.offset && !fresh.duplicate);

    // Nothing of the conflicting payloads was written.
    let mut reader = zone.grpc(&zone.reader);
    let stored = fetch_all(&mut reader, "all-ops").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[0].fact.as_ref().unwrap().object_json,
        r#"{"status":"released"}"#
    );
}

#[tokio::test]
async fn fetch_and_confirm_page_deterministically_and_cursors_survive_a_restart() {
    let mut zone = Zone::start3().await;
    let mut producer = zone.grpc(&zone.producer);
    for i in 0..25 {
        let subject = if i % 5 == 4 {
            format!("machine:m{i}")
        } else {
            format!("order:o{i}")
        };
        producer
            .append_fact(append_req(
                "operational",
                fact(&format!("id-{i}"), &subject, &format!("{{\"i\":{i}}}")),
            ))
            .await
            .unwrap();
    }
    let mut reader = zone.grpc(&zone.reader);
    // Pages are read from the nearest replica; wait until it has all 20 orders.
    bsfg_testkit::eventually("20 orders visible", Duration::from_secs(10), || {
        let mut r = reader.clone();
        async move { (fetch_all(&mut r, "erp-orders").await.len() == 20).then_some(()) }
    })
    .await;

    let page = |limit| FetchFactsRequest {
        consumer_name: "erp-orders".into(),
        limit,
    };
    let p1 = reader
        .fetch_facts(page(7))
        .await
        .unwrap()
        .into_inner()
        .facts;
    assert_eq!(p1.len(), 7);
    assert!(p1.windows(2).all(|w| w[0].offset < w[1].offset));
    assert!(
        p1.iter()
            .all(|f| f.fact.as_ref().unwrap().subject.starts_with("order:"))
    );
    assert!(p1[0].stored_at_unix_ms > 0);
    assert_eq!(
        reader
            .fetch_facts(page(7))
            .await
            .unwrap()
            .into_inner()
            .facts,
        p1,
        "same page twice"
    );

    let confirm = |offset| ConfirmReceiptRequest {
        consumer_name: "erp-orders".into(),
        offset,
    };
    let last = p1.last().unwrap().offset;
    assert_eq!(
        reader
            .confirm_receipt(confirm(last))
            .await
            .unwrap()
            .into_inner()
            .cursor_advanced_to,
        last
    );
    // Repeated and lower confirmations leave the cursor alone.
    assert_eq!(
        reader
            .confirm_receipt(confirm(last))
            .await
            .unwrap()
            .into_inner()
            .cursor_advanced_to,
        last
    );
    assert_eq!(
        reader
            .confirm_receipt(confirm(1))
            .await
            .unwrap()
            .into_inner()
            .cursor_advanced_to,
        last
    );
    // Beyond what was delivered: refused, cursor unchanged.
    let err = reader
        .confirm_receipt(confirm(last + 100))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert_eq!(reason(&err), "offset_not_delivered");

    let p2 = reader
        .fetch_facts(page(7))
        .await
        .unwrap()
        .into_inner()
        .facts;
    assert!(p2[0].offset > last);
    let delivered_before_restart = p2.last().unwrap().offset;

    // A new controller process continues exactly at the durable cursor.
    zone.restart_controller().await;
    let mut reader = zone.grpc(&zone.reader);
    let p2_again = reader
        .fetch_facts(page(7))
        .await
        .unwrap()
        .into_inner()
        .facts;
    assert_eq!(p2_again, p2);
    // An offset delivered by the previous process is still confirmable (it exists in the source).
    let c = reader
        .confirm_receipt(confirm(delivered_before_restart))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(c.cursor_advanced_to, delivered_before_restart);
    let rest = fetch_all(&mut reader, "erp-orders").await;
    assert_eq!(p1.len() + p2.len() + rest.len(), 20);
    // The backlog gauge follows the cursor without anyone fetching (6 orders after it).
    let backlog = format!(
        r#"bsfg_consumer_backlog{{consumer="erp-orders"}} {}"#,
        20 - p1.len() - p2.len()
    );
    bsfg_testkit::eventually(
        "consumer backlog gauge",
        Duration::from_secs(10),
        || async {
            zone.controller
                .metrics()
                .await
                .filter(|m| m.contains(&backlog))
        },
    )
    .await;
    let metrics = zone.controller.metrics().await.unwrap();
    let listen = format!(
        r#"bsfg_listen{{address="{}"}} 1"#,
        zone.controller.config.listen.address
    );
    assert!(metrics.contains(&listen), "{listen} missing");
    let status = zone.controller.status().await.unwrap();
    assert!(
        status
            .consumers
            .iter()
            .any(|c| c.consumer == "erp-orders" && c.cursor == delivered_before_restart as u64),
        "{:?}",
        status.consumers
    );
}

async fn put_object(
    client: &mut bsfg_client::BoundaryServiceClient<tonic::transport::Channel>,
    bucket: &str,
    key: &str,
    data: &[u8],
    declared: u64,
) -> Result<PutObjectResponse, tonic::Status> {
    use put_object_request::Part;
    let mut msgs = vec![PutObjectRequest {
        part: Some(Part::Header(ObjectHeader {
            bucket: bucket.into(),
            key: key.into(),
            media_type: "application/pdf".into(),
            size: declared,
        })),
    }];
    msgs.extend(data.chunks(64 * 1024).map(|c| PutObjectRequest {
        part: Some(Part::Chunk(c.to_vec())),
    }));
    client
        .put_object(tokio_stream::iter(msgs))
        .await
        .map(|r| r.into_inner())
}

async fn get_object(
    client: &mut bsfg_client::BoundaryServiceClient<tonic::transport::Channel>,
    bucket: &str,
    key: &str,
) -> Result<(ArtifactRef, Vec<u8>), tonic::Status> {
    let mut stream = client
        .get_object(GetObjectRequest {
            bucket: bucket.into(),
            key: key.into(),
        })
        .await?
        .into_inner();
    let mut header = None;
    let mut data = Vec::new();
    while let Some(msg) = stream.next().await {
        match msg?.part {
            Some(get_object_response::Part::Header(h)) => header = Some(h),
            Some(get_object_response::Part::Chunk(c)) => data.extend(c),
            None => {}
        }
    }
    Ok((header.expect("header first"), data))
}

#[tokio::test]
async fn artifacts_round_trip_with_their_digest() {
    let zone = Zone::start3().await;
    let mut producer = zone.grpc(&zone.producer);
    let mut reader = zone.grpc(&zone.reader);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let digest = bsfg_core::identity::content_digest(&data);

    let put = put_object(
        &mut producer,
        "drawings",
        "part/17.pdf",
        &data,
        data.len() as u64,
    )
    .await
    .unwrap();
    assert_eq!(
        (put.digest.as_str(), put.size),
        (digest.as_str(), data.len() as u64)
    );
    // Idempotent re-upload; conflicting content refused.
    assert_eq!(
        put_object(
            &mut producer,
            "drawings",
            "part/17.pdf",
            &data,
            data.len() as u64
        )
        .await
        .unwrap()
        .digest,
        digest
    );
    let err = put_object(&mut producer, "drawings", "part/17.pdf", b"other", 5)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (tonic::Code::AlreadyExists, "object_conflict")
    );
    // Declared size must match.
    let err = put_object(&mut producer, "drawings", "short.bin", b"abc", 10)
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "object_mismatch");
    let err = put_object(&mut producer, "drawings", "long.bin", b"abcdef", 3)
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "object_mismatch");
    // Read permission is separate from write permission.
    let err = get_object(&mut producer, "drawings", "part/17.pdf")
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "not_authorized");

    let (header, got) = get_object(&mut reader, "drawings", "part/17.pdf")
        .await
        .unwrap();
    assert_eq!(header.digest, digest);
    assert_eq!(bsfg_core::identity::content_digest(&got), digest);
    assert_eq!(got, data);
    let err = get_object(&mut reader, "drawings", "nope.pdf")
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (tonic::Code::NotFound, "unknown_object")
    );

    // A fact may reference the artifact once it is stored, not before.
    let mut f = fact("with-artifact", "drawing:part-17", "{}");
    f.envelope.as_mut().unwrap().artifact = Some(header.clone());
    producer
        .append_fact(append_req("operational", f.clone()))
        .await
        .unwrap();
    let mut missing = f.clone();
    missing.envelope.as_mut().unwrap().message_id = "dangling".into();
    missing
        .envelope
        .as_mut()
        .unwrap()
        .artifact
        .as_mut()
        .unwrap()
        .key = "not-uploaded.pdf".into();
    let err = producer
        .append_fact(append_req("operational", missing))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (tonic::Code::FailedPrecondition, "artifact_missing")
    );

    // The blob is gone from this host (as after a failover): the index still knows it.
    let blob = zone
        .controller
        .config
        .store
        .artifact_dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::remove_file(&blob).unwrap();
    let err = get_object(&mut reader, "drawings", "part/17.pdf")
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (tonic::Code::Unavailable, "artifact_rehydrating")
    );
}

#[tokio::test]
async fn artifacts_over_connect_streaming() {
    use bytes::{BufMut, Bytes, BytesMut};
    let zone = Zone::start3().await;
    let frame = |flags: u8, msg: &[u8]| {
        let mut b = BytesMut::new();
        b.put_u8(flags);
        b.put_u32(msg.len() as u32);
        b.put_slice(msg);
        b
    };
    let data = b"connect streaming artifact".to_vec();
    let mut body = BytesMut::new();
    body.extend(frame(
        0,
        br#"{"header":{"bucket":"drawings","key":"c/1.txt","mediaType":"text/plain","size":"26"}}"#,
    ));
    use base64::Engine;
    let chunk =
        serde_json::json!({ "chunk": base64::engine::general_purpose::STANDARD.encode(&data) })
            .to_string();
    body.extend(frame(0, chunk.as_bytes()));
    let resp = zone
        .connect(&zone.producer)
        .call_raw("PutObject", "application/connect+json", body.freeze())
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.content_type, "application/connect+json");
    let frames = split_frames(&resp.body);
    let put: serde_json::Value = serde_json::from_slice(&frames[0].1).unwrap();
    assert_eq!(
        put["digest"],
        bsfg_core::identity::content_digest(&data),
        "{put}"
    );
    assert_eq!(frames.last().unwrap().0, 2, "ends with end-of-stream");

    let req = frame(0, br#"{"bucket":"drawings","key":"c/1.txt"}"#).freeze();
    let resp = zone
        .connect(&zone.reader)
        .call_raw("GetObject", "application/connect+json", req)
        .await
        .unwrap();
    let frames = split_frames(&resp.body);
    let header: serde_json::Value = serde_json::from_slice(&frames[0].1).unwrap();
    assert_eq!(header["header"]["size"], "26");
    let chunk: serde_json::Value = serde_json::from_slice(&frames[1].1).unwrap();
    let got = base64::engine::general_purpose::STANDARD
        .decode(chunk["chunk"].as_str().unwrap())
        .unwrap();
    assert_eq!(got, data);
    assert_eq!(frames.last().unwrap(), &(2u8, Bytes::from_static(b"{}")));

    // Errors arrive in the end-of-stream frame.
    let req = frame(0, br#"{"bucket":"drawings","key":"missing"}"#).freeze();
    let resp = zone
        .connect(&zone.reader)
        .call_raw("GetObject", "application/connect+json", req)
        .await
        .unwrap();
    let frames = split_frames(&resp.body);
    let end: serde_json::Value = serde_json::from_slice(&frames[0].1).unwrap();
    assert_eq!(end["error"]["code"], "not_found");
    assert_eq!(
        end["error"]["details"][0]["debug"]["reason"],
        "unknown_object"
    );
}

fn split_frames(mut body: &[u8]) -> Vec<(u8, bytes::Bytes)> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        out.push((body[0], bytes::Bytes::copy_from_slice(&body[5..5 + len])));
        body = &body[5 + len..];
    }
    out
}

#[tokio::test]
async fn appends_continue_through_a_killed_nats_node_and_none_is_lost() {
    let mut zone = Zone::start3().await;
    let producer = zone.grpc(&zone.producer);
    // Kill the stream's leader unless it is the controller's own server (n0).
    let leader = zone.nats.stream_leader(0, "facts_operational").await;
    let victim = match leader.as_deref() {
        Some("n1") => 1,
        Some("n2") => 2,
        _ => 1,
    };

    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, u64)>::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut workers = Vec::new();
    for w in 0..8 {
        let (mut client, acked, stop) = (producer.clone(), acked.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.is_cancelled() {
                let id = format!("w{w}-{n}");
                // A correct producer retries with the same id and payload until acknowledged.
                loop {
                    match client
                        .append_fact(append_req("operational", fact(&id, "order:o1", "{}")))
                        .await
                    {
                        Ok(r) => {
                            acked
                                .lock()
                                .unwrap()
                                .push((id.clone(), r.into_inner().offset));
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    zone.nats.kill(victim);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = acked.lock().unwrap().len();
    zone.nats.restart(victim).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > during,
        "appends continued after the node came back"
    );

    let mut reader = zone.grpc(&zone.reader);
    let counts = drain(&mut reader, "all-ops").await;
    let stored: HashSet<String> = counts.keys().cloned().collect();
    let dup = counts.values().filter(|n| **n > 1).count();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(id, _)| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged appends lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    assert_eq!(dup, 0, "duplicates in the store buffer");
    assert_eq!(stored.len(), acked.len());
}
