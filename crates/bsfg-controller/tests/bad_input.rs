//! Every limit and grammar rule answers with a precise code and reason,
//! writes nothing, and leaves the controller serving.

use crate::common::*;
use bsfg_client::connect::Codec;
use bsfg_client::pb::*;
use bsfg_core::Limits;
use tokio_stream::StreamExt;

fn small_limits() -> Limits {
    Limits {
        max_fact_bytes: 2048,
        max_name_len: 16,
        max_subject_len: 64,
        max_object_key_len: 32,
        max_labels: 2,
        max_label_value_len: 8,
        max_page_facts: 5,
        default_page_facts: 3,
        max_object_bytes: 1000,
        store_buffer_reject_percent: 80,
        max_connect_body_bytes: 4096,
    }
}

#[tokio::test]
async fn every_limit_and_rule_has_its_reason_and_writes_nothing() {
    let zone = Zone::start1_with(|c| c.limits = small_limits()).await;
    let mut p = zone.grpc(&zone.producer);
    let mut r = zone.grpc(&zone.reader);
    let good = fact("ok-1", "order:1", "{}");
    p.append_fact(append_req("operational", good.clone()))
        .await
        .unwrap();

    let mut cases: Vec<(&str, AppendFactRequest, tonic::Code, &str)> = Vec::new();
    let with = |f: &dyn Fn(&mut Fact)| {
        let mut x = fact("bad", "order:1", "{}");
        f(&mut x);
        append_req("operational", x)
    };
    cases.push((
        "fact size",
        with(&|f| f.object_json = format!("\"{}\"", "x".repeat(3000))),
        tonic::Code::InvalidArgument,
        "fact_too_large",
    ));
    cases.push((
        "message id length",
        with(&|f| f.envelope.as_mut().unwrap().message_id = "m".repeat(17)),
        tonic::Code::InvalidArgument,
        "invalid_fact",
    ));
    cases.push((
        "subject length",
        with(&|f| f.subject = format!("order:{}", "9".repeat(60))),
        tonic::Code::InvalidArgument,
        "invalid_fact",
    ));
    cases.push((
        "subject grammar",
        with(&|f| f.subject = "order 1".into()),
        tonic::Code::InvalidArgument,
        "invalid_fact",
    ));
    cases.push((
        "kind with a dot",
        with(&|f| f.subject = "order.x:1".into()),
        tonic::Code::InvalidArgument,
        "invalid_fact",
    ));
    cases.push((
        "object_json",
        with(&|f| f.object_json = "{not json".into()),
        tonic::Code::InvalidArgument,
        "invalid_fact",
    ));
    cases.push((
        "label count",
        with(&|f| {
            for k in ["a", "b", "c"] {
                f.envelope
                    .as_mut()
                    .unwrap()
                    .labels
                    .insert(k.into(), "1".into());
            }
        }),
        tonic::Code::InvalidArgument,
        "invalid_fact",
    ));
    cases.push((
        "label value",
        with(&|f| {
            f.envelope
                .as_mut()
                .unwrap()
                .labels
                .insert("a".into(), "123456789".into());
        }),
        tonic::Code::InvalidArgument,
        "invalid_fact",
    ));
    cases.push((
        "missing fact",
        AppendFactRequest {
            stream_class: "operational".into(),
            fact: None,
        },
        tonic::Code::InvalidArgument,
        "invalid_fact",
    ));
    cases.push((
        "class grammar",
        append_req("opera.tional", good.clone()),
        tonic::Code::InvalidArgument,
        "invalid_name",
    ));
    cases.push((
        "class length",
        append_req(&"c".repeat(17), good.clone()),
        tonic::Code::InvalidArgument,
        "invalid_name",
    ));
    cases.push((
        "unknown class",
        append_req("telemetry", good.clone()),
        tonic::Code::NotFound,
        "unknown_stream_class",
    ));
    for (what, req, code, want) in cases {
        let err = p.append_fact(req).await.expect_err(what);
        assert_eq!(
            (err.code(), reason(&err).as_str()),
            (code, want),
            "{what}: {}",
            err.message()
        );
    }

    // Consumers: grammar, length, existence; page size capping.
    for (name, code, want) in [
        ("erp.orders", tonic::Code::InvalidArgument, "invalid_name"),
        (
            "a-very-long-consumer",
            tonic::Code::InvalidArgument,
            "invalid_name",
        ),
        ("nobody", tonic::Code::NotFound, "unknown_consumer"),
    ] {
        let err = r
            .fetch_facts(FetchFactsRequest {
                consumer_name: name.into(),
                limit: 1,
            })
            .await
            .unwrap_err();
        assert_eq!((err.code(), reason(&err).as_str()), (code, want), "{name}");
        let err = r
            .confirm_receipt(ConfirmReceiptRequest {
                consumer_name: name.into(),
                offset: 1,
            })
            .await
            .unwrap_err();
        assert_eq!(reason(&err), want, "{name}");
    }
    for i in 0..9 {
        p.append_fact(append_req(
            "operational",
            fact(&format!("pg-{i}"), "order:1", "{}"),
        ))
        .await
        .unwrap();
    }
    let fetch = |limit| FetchFactsRequest {
        consumer_name: "all-ops".into(),
        limit,
    };
    assert_eq!(
        r.fetch_facts(fetch(100))
            .await
            .unwrap()
            .into_inner()
            .facts
            .len(),
        5,
        "capped at max_page_facts"
    );
    assert_eq!(
        r.fetch_facts(fetch(0))
            .await
            .unwrap()
            .into_inner()
            .facts
            .len(),
        3,
        "default_page_facts"
    );

    // Objects: size limit, key length, unknown bucket.
    use put_object_request::Part;
    let put = |bucket: &str, key: &str, size: u64| {
        let header = PutObjectRequest {
            part: Some(Part::Header(ObjectHeader {
                bucket: bucket.into(),
                key: key.into(),
                media_type: String::new(),
                size,
            })),
        };
        let body = PutObjectRequest {
            part: Some(Part::Chunk(vec![0; size.min(10) as usize])),
        };
        tokio_stream::iter(vec![header, body])
    };
    for (bucket, key, size, code, want) in [
        (
            "drawings",
            "big.bin",
            2000,
            tonic::Code::ResourceExhausted,
            "object_too_large",
        ),
        (
            "drawings",
            &"k".repeat(33) as &str,
            10,
            tonic::Code::InvalidArgument,
            "invalid_name",
        ),
        (
            "drawings",
            "../escape",
            10,
            tonic::Code::InvalidArgument,
            "invalid_name",
        ),
        (
            "blueprints",
            "a.bin",
            10,
            tonic::Code::NotFound,
            "unknown_bucket",
        ),
    ] {
        let err = p.put_object(put(bucket, key, size)).await.unwrap_err();
        assert_eq!(
            (err.code(), reason(&err).as_str()),
            (code, want),
            "{bucket}/{key}"
        );
    }
    let err = p
        .put_object(tokio_stream::iter(vec![PutObjectRequest {
            part: Some(Part::Chunk(vec![1])),
        }]))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "invalid_request");
    let mut get = r
        .get_object(GetObjectRequest {
            bucket: "drawings".into(),
            key: "big.bin".into(),
        })
        .await;
    if let Ok(s) = &mut get {
        let first = s.get_mut().next().await.unwrap();
        assert_eq!(reason(&first.unwrap_err()), "unknown_object");
    } else {
        assert_eq!(reason(&get.unwrap_err()), "unknown_object");
    }

    // Only the good facts were stored, and the service still answers.
    p.append_fact(append_req("operational", fact("ok-2", "order:2", "{}")))
        .await
        .unwrap();
    let mut all = Vec::new();
    loop {
        let page = r.fetch_facts(fetch(5)).await.unwrap().into_inner().facts;
        let Some(last) = page.last().map(|f| f.offset) else {
            break;
        };
        all.extend(page);
        r.confirm_receipt(ConfirmReceiptRequest {
            consumer_name: "all-ops".into(),
            offset: last,
        })
        .await
        .unwrap();
    }
    let ids: Vec<_> = all
        .iter()
        .map(|f| {
            f.fact
                .as_ref()
                .unwrap()
                .envelope
                .as_ref()
                .unwrap()
                .message_id
                .clone()
        })
        .collect();
    assert_eq!(ids.len(), 11, "{ids:?}");
    assert!(!ids.contains(&"bad".to_string()));
}

#[tokio::test]
async fn malformed_connect_bodies_are_refused_precisely() {
    let zone = Zone::start1_with(|c| c.limits = small_limits()).await;
    let c = zone.connect(&zone.producer);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "AppendFact",
            "application/json",
            br#"{"streamClass": 5"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "AppendFact",
            "application/json",
            br#"{"streamClass": "operational", "fact": {"subject": 7}}"#.to_vec(),
            400,
            "invalid_request",
        ),
        (
            "AppendFact",
            "application/proto",
            vec![0xff, 0xff, 0xff, 0x0f],
            400,
            "invalid_request",
        ),
        (
            "AppendFact",
            "application/json",
            vec![b' '; 5000],
            400,
            "fact_too_large",
        ),
        (
            "FetchFacts",
            "application/json",
            br#"{"consumerName": "nobody"}"#.to_vec(),
            404,
            "unknown_consumer",
        ),
        (
            "AppendFact",
            "text/plain",
            b"hello".to_vec(),
            415,
            "invalid_request",
        ),
        (
            "PutObject",
            "application/json",
            b"{}".to_vec(),
            415,
            "invalid_request",
        ),
        (
            "Nope",
            "application/json",
            b"{}".to_vec(),
            501,
            "unimplemented",
        ),
    ];
    for (method, ct, body, status, want) in cases {
        let resp = c.call_raw(method, ct, body.into()).await.unwrap();
        assert_eq!(resp.status, status, "{method} {ct}: {:?}", resp.body);
        assert_eq!(resp.content_type, "application/json");
        let doc = resp.error().unwrap();
        assert_eq!(
            doc["details"][0]["debug"]["reason"], want,
            "{method} {ct}: {doc}"
        );
        assert!(doc["message"].as_str().unwrap().starts_with(want));
    }
    // Still serving, and nothing was written.
    let ok: AppendFactResponse = c
        .call(
            "AppendFact",
            Codec::Json,
            &append_req("operational", fact("ok", "order:1", "{}")),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ok.offset, 1, "the first and only stored fact");
}

#[tokio::test]
async fn a_store_buffer_above_its_threshold_refuses_appends() {
    let zone = Zone::start1_with(|c| {
        c.limits.store_buffer_reject_percent = 10;
        c.classes.get_mut("audit").unwrap().max_bytes = bytesize(1 << 20);
    })
    .await;
    let mut p = zone.grpc(&zone.producer);
    let payload = format!("\"{}\"", "x".repeat(8000));
    let mut refused = None;
    for i in 0..100 {
        match p
            .append_fact(append_req(
                "audit",
                fact(&format!("f{i}"), "event:1", &payload),
            ))
            .await
        {
            Ok(_) => {}
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (i, err) = refused.expect("10 % of 1 MiB is ~13 facts of 8 KB");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (tonic::Code::ResourceExhausted, "store_buffer_full")
    );
    assert!((10..=16).contains(&i), "refused at fact {i}");
    // Other classes are unaffected.
    p.append_fact(append_req("operational", fact("other", "order:1", "{}")))
        .await
        .unwrap();
    let metrics = zone.controller.metrics().await.unwrap();
    assert!(
        metrics
            .contains(r#"bsfg_append_failures_total{class="audit",reason="store_buffer_full"} 1"#),
        "{metrics}"
    );
}

fn bytesize(n: u64) -> bytesize::ByteSize {
    bytesize::ByteSize::b(n)
}

/// Requests above the gRPC layer's decoding limit (1 MiB here: the fact
/// limit plus framing, at least 1 MiB) are refused by tonic before a handler
/// runs; they still carry the contract's reason and ErrorInfo, over a real
/// mTLS gRPC client, and the controller keeps serving.
#[tokio::test]
async fn requests_above_the_grpc_decoding_limit_carry_their_reason() {
    let zone = Zone::start1_with(|c| c.limits = small_limits()).await;
    let mut p = zone.grpc(&zone.producer);
    let huge = fact("huge", "order:1", &format!("\"{}\"", "x".repeat(1_100_000)));
    let err = p
        .append_fact(append_req("operational", huge))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_eq!(reason(&err), "fact_too_large");
    assert!(err.message().contains("1048576"), "{}", err.message());

    // Between the fact limit and the decoding limit: the handler's answer, the same reason.
    let large = fact("large", "order:1", &format!("\"{}\"", "x".repeat(100_000)));
    let err = p
        .append_fact(append_req("operational", large))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(reason(&err), "fact_too_large");

    let mut r = zone.grpc(&zone.reader);
    let err = r
        .fetch_facts(FetchFactsRequest {
            consumer_name: "c".repeat(1_100_000),
            limit: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_eq!(reason(&err), "invalid_request");

    // Still serving on the same connection.
    p.append_fact(append_req("operational", fact("ok", "order:1", "{}")))
        .await
        .unwrap();
}

/// The Connect path refuses oversized bodies and envelopes with the contract's
/// error document: a unary body above `max_connect_body_bytes`, a streamed
/// envelope announcing more, and an unsupported protocol version.
#[tokio::test]
async fn oversized_connect_requests_carry_their_reason() {
    let zone = Zone::start1_with(|c| c.limits = small_limits()).await;
    let c = zone.connect(&zone.producer);
    let resp = c
        .call_raw("FetchFacts", "application/json", vec![b' '; 5000].into())
        .await
        .unwrap();
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.error().unwrap()["details"][0]["debug"]["reason"],
        "invalid_request"
    );

    // An envelope announcing 1 MiB is refused from its prefix.
    let mut body = vec![0u8];
    body.extend_from_slice(&(1u32 << 20).to_be_bytes());
    body.extend_from_slice(&[0; 100]);
    let resp = c
        .call_raw("PutObject", "application/connect+proto", body.into())
        .await
        .unwrap();
    assert_eq!(
        resp.status, 200,
        "streaming errors travel in the end-of-stream envelope"
    );
    let end = &resp.body[5..];
    let doc: serde_json::Value = serde_json::from_slice(end).unwrap();
    assert_eq!(resp.body[0], 2, "end-of-stream flag");
    assert_eq!(
        doc["error"]["details"][0]["debug"]["reason"], "invalid_request",
        "{doc}"
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeds 4096"),
        "{doc}"
    );
}
