//! The substrate against a real 3-node JetStream cluster (R3, file storage).

use bsfg_core::Reason;
use bsfg_core::lease::{LeaseRecord, Observation};
use bsfg_core::source::Buffer;
use bsfg_store::{
    AppendOutcome, ArtifactIndex, ArtifactRecord, CursorAdvance, CursorStore, FactBuffer,
    IndexOutcome, LeaseStore, LeaseWrite, Substrate, retry_while_unavailable,
};
use bsfg_testkit::nats::NatsCluster;
use bytes::Bytes;
use std::time::Duration;

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// Set-up as the controller does it: retried while a freshly formed cluster
/// is not yet answering JetStream API requests.
async fn set_up<T, F, Fut>(step: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, bsfg_core::BsfgError>>,
{
    retry_while_unavailable("test set-up", Duration::from_secs(30), step)
        .await
        .expect("set-up")
}

/// Store buffer `class` (a week's retention, `max_bytes`, group commit as by default).
async fn store_buffer(s: &Substrate, class: &str, max_bytes: u64) -> FactBuffer {
    set_up(|| {
        FactBuffer::ensure(
            s,
            Buffer::Store(class.into()),
            WEEK,
            max_bytes,
            Default::default(),
        )
    })
    .await
}

async fn substrate(cluster: &NatsCluster) -> Substrate {
    Substrate::connect_url(&cluster.client_url(0), 3)
        .await
        .expect("connect")
}

#[tokio::test]
async fn put_if_absent_is_atomic_and_tells_duplicates_from_conflicts() {
    let cluster = NatsCluster::start3().await;
    let s = substrate(&cluster).await;
    let buf = store_buffer(&s, "operational", 64 << 20).await;

    let first = buf
        .append("order", "m-1", Bytes::from_static(b"one"), |s| s == b"one")
        .await
        .unwrap();
    let AppendOutcome::Appended { offset } = first else {
        panic!("{first:?}")
    };
    let again = buf
        .append("order", "m-1", Bytes::from_static(b"one"), |s| s == b"one")
        .await
        .unwrap();
    assert_eq!(again, AppendOutcome::Duplicate { offset });
    let err = buf
        .append("order", "m-1", Bytes::from_static(b"two"), |s| s == b"two")
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::ConflictingDuplicate);
    assert_eq!(buf.count().await.unwrap(), 1, "a conflict writes nothing");

    // Many concurrent first attempts of one id with different payloads: exactly one wins.
    let racers: Vec<_> = (0..32)
        .map(|i| {
            let buf = buf.clone();
            tokio::spawn(async move {
                let body = Bytes::from(format!("p{i}"));
                buf.append("order", "race", body.clone(), move |s| s == &body[..])
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(AppendOutcome::Appended { .. }) => won += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => assert_eq!(e.reason, Reason::ConflictingDuplicate, "{e}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(buf.count().await.unwrap(), 2);
}

#[tokio::test]
async fn pages_are_filtered_ordered_and_resume_after_an_offset() {
    let cluster = NatsCluster::start3().await;
    let s = substrate(&cluster).await;
    let buf = store_buffer(&s, "telemetry", 64 << 20).await;
    for i in 0..30u32 {
        let kind = if i % 3 == 0 { "machine" } else { "order" };
        buf.append(
            kind,
            &format!("id-{i}"),
            Bytes::from(format!("{i}")),
            |_| true,
        )
        .await
        .unwrap();
    }
    let all = "facts.telemetry.>";
    let orders = "facts.telemetry.order.*";
    // Pages are served by the nearest replica: wait until it has everything.
    let page = bsfg_testkit::eventually("all 30 facts readable", Duration::from_secs(10), || {
        let buf = buf.clone();
        async move {
            buf.page(all, 0, 100)
                .await
                .ok()
                .map(|p| p.records)
                .filter(|p| p.len() == 30)
        }
    })
    .await;
    assert!(page.windows(2).all(|w| w[0].offset < w[1].offset));
    let first_page = buf.page(orders, 0, 5).await.unwrap();
    assert_eq!(first_page.backlog, 15, "15 more orders after the first 5");
    let first = first_page.records;
    assert_eq!(first.len(), 5);
    assert!(
        first
            .iter()
            .all(|r| r.subject.starts_with("facts.telemetry.order."))
    );
    let again = buf.page(orders, 0, 5).await.unwrap().records;
    assert_eq!(first, again, "fetching twice returns the same page");
    let next_page = buf
        .page(orders, first.last().unwrap().offset, 100)
        .await
        .unwrap();
    assert_eq!(next_page.backlog, 0);
    let next = next_page.records;
    assert_eq!(first.len() + next.len(), 20);
    assert!(next[0].offset > first[4].offset);
    assert!(buf.holds(orders, first[0].offset).await.unwrap());
    let machine_offset = page
        .iter()
        .find(|r| r.subject.contains(".machine."))
        .unwrap()
        .offset;
    assert!(!buf.holds(orders, machine_offset).await.unwrap());
    assert!(!buf.holds(all, 10_000).await.unwrap());
    assert!(page[0].stored_at_unix_ms > 1_700_000_000_000);
}

#[tokio::test]
async fn cursors_advance_by_compare_and_swap() {
    let cluster = NatsCluster::start3().await;
    let s = substrate(&cluster).await;
    let cursors = set_up(|| CursorStore::open(&s)).await;
    assert_eq!(cursors.load("c1").await.unwrap(), None);
    let c = cursors.load_or_init("c1", 7).await.unwrap();
    assert_eq!(c.offset, 7);
    assert_eq!(
        cursors.load_or_init("c1", 99).await.unwrap(),
        c,
        "init does not overwrite"
    );
    let CursorAdvance::Advanced(next) = cursors.advance("c1", 12, c.revision).await.unwrap() else {
        panic!()
    };
    assert_eq!(next.offset, 12);
    assert_eq!(
        cursors.advance("c1", 20, c.revision).await.unwrap(),
        CursorAdvance::Conflict
    );
    // A second process (another controller) sees the same value.
    let other = CursorStore::open(
        &Substrate::connect_url(&cluster.client_url(2), 3)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(other.load("c1").await.unwrap(), Some(next));
}

#[tokio::test]
async fn artifact_index_records_once() {
    let cluster = NatsCluster::start3().await;
    let s = substrate(&cluster).await;
    let index = set_up(|| ArtifactIndex::open(&s)).await;
    let rec = ArtifactRecord {
        bucket: "drawings".into(),
        key: "part/17.pdf".into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
        size: 3,
        media_type: "application/pdf".into(),
        created_at_unix_ms: 1,
        stored_by: "alpha".into(),
        origin_zone: None,
    };
    assert_eq!(
        index.record_if_absent(&rec).await.unwrap(),
        IndexOutcome::Created
    );
    let other = ArtifactRecord {
        digest: format!("sha256:{}", "cd".repeat(32)),
        ..rec.clone()
    };
    assert_eq!(
        index.record_if_absent(&other).await.unwrap(),
        IndexOutcome::Existing(rec.clone())
    );
    assert_eq!(
        index.get("drawings", "part/17.pdf").await.unwrap(),
        Some(rec.clone())
    );
    assert_eq!(index.get("drawings", "nope").await.unwrap(), None);
    // Listing opens a consumer, which a freshly formed cluster under load may
    // refuse as unavailable for a while; the rehydrator retries it the same way.
    let listed = retry_while_unavailable("listing", Duration::from_secs(30), || index.list())
        .await
        .unwrap();
    assert_eq!(listed, vec![rec]);
}

#[tokio::test]
async fn lease_key_is_written_only_by_compare_and_swap() {
    let cluster = NatsCluster::start3().await;
    let s = substrate(&cluster).await;
    let lease = set_up(|| LeaseStore::open(&s, "bsfg_lease")).await;
    assert_eq!(
        lease.read().await.unwrap(),
        Observation::Vacant { revision: None }
    );
    let rec = |host: &str| LeaseRecord {
        host: host.into(),
        instance: format!("{host}-1"),
        ttl_ms: 1000,
        written_at_unix_ms: 0,
    };
    let LeaseWrite::Written { revision } = lease.write(&rec("alpha"), None).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        lease.write(&rec("beta"), None).await.unwrap(),
        LeaseWrite::Conflict
    );
    let LeaseWrite::Written { revision: r2 } =
        lease.write(&rec("alpha"), Some(revision)).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        lease.write(&rec("beta"), Some(revision)).await.unwrap(),
        LeaseWrite::Conflict
    );
    assert_eq!(
        lease.read().await.unwrap(),
        Observation::Held {
            record: rec("alpha"),
            revision: r2
        }
    );
    assert!(
        !lease.release(revision).await.unwrap(),
        "stale release is refused"
    );
    assert!(lease.release(r2).await.unwrap());
    let Observation::Vacant {
        revision: Some(deleted),
    } = lease.read().await.unwrap()
    else {
        panic!()
    };
    assert!(matches!(
        lease.write(&rec("beta"), Some(deleted)).await.unwrap(),
        LeaseWrite::Written { .. }
    ));
}

#[tokio::test]
async fn a_full_stream_refuses_with_store_buffer_full() {
    let cluster = NatsCluster::start1().await;
    let s = Substrate::connect_url(&cluster.client_url(0), 1)
        .await
        .unwrap();
    let buf = store_buffer(&s, "tiny", 64 * 1024).await;
    let body = Bytes::from(vec![b'x'; 4096]);
    let mut refused = None;
    for i in 0..64 {
        match buf
            .append("blob", &format!("b{i}"), body.clone(), |_| true)
            .await
        {
            Ok(_) => {}
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (i, e) = refused.expect("64 x 4 KiB must overflow a 64 KiB stream");
    assert_eq!(e.reason, Reason::StoreBufferFull, "{e}");
    assert!(i > 5, "refused too early at {i}");
    assert!(
        buf.fill().percent() > 80.0,
        "fill estimate {}",
        buf.fill().percent()
    );
    buf.refresh_fill().await.unwrap();
    assert!(buf.fill().percent() > 80.0);
}

/// A retry of a stored fact is a duplicate at its original offset, whatever
/// that offset is. The server's refusal of the put-if-absent names the
/// subject's existing sequence in its text ("wrong last sequence: 10164"),
/// and offsets past 10,000 spell JetStream error codes (10071 wrong last
/// sequence, 10164 its clustered constant form, 10047 storage exceeded, …):
/// only the typed code may decide what the answer means.
#[tokio::test]
async fn retries_past_offsets_that_spell_error_codes_are_duplicates_at_their_offsets() {
    use futures::StreamExt;
    const FACTS: u64 = 10_200;
    // Offsets whose digits are codes the store classifies.
    const CODE_OFFSETS: [u64; 12] = [
        10_002, 10_008, 10_023, 10_028, 10_039, 10_047, 10_059, 10_071, 10_076, 10_077, 10_163,
        10_164,
    ];
    let cluster = NatsCluster::start3().await;
    let s = substrate(&cluster).await;
    let buf = store_buffer(&s, "operational", 256 << 20).await;
    let body = |i: u64| Bytes::from(format!("fact {i}"));
    let append = |i: u64| {
        let buf = buf.clone();
        async move {
            let b = body(i);
            let outcome = buf
                .append("order", &format!("m-{i}"), b.clone(), move |s| s == &b[..])
                .await;
            (i, outcome)
        }
    };
    let mut offsets = std::collections::BTreeMap::new();
    let mut firsts = futures::stream::iter(0..FACTS)
        .map(append)
        .buffer_unordered(64);
    while let Some((i, outcome)) = firsts.next().await {
        match outcome {
            Ok(AppendOutcome::Appended { offset }) => offsets.insert(offset, i),
            other => panic!("first append of m-{i}: {other:?}"),
        };
    }
    assert_eq!(offsets.len() as u64, FACTS);
    for o in CODE_OFFSETS {
        assert!(offsets.contains_key(&o), "no fact at offset {o}");
    }
    // Every fact retried: each one is a duplicate at its original offset.
    let by_id: std::collections::BTreeMap<u64, u64> =
        offsets.iter().map(|(o, i)| (*i, *o)).collect();
    let mut retries = futures::stream::iter(0..FACTS)
        .map(append)
        .buffer_unordered(64);
    let mut wrong = Vec::new();
    while let Some((i, outcome)) = retries.next().await {
        let original = by_id[&i];
        match outcome {
            Ok(AppendOutcome::Duplicate { offset }) if offset == original => {}
            other => wrong.push(format!("m-{i} (offset {original}): {other:?}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{} retries were not duplicates at their offset, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(buf.count().await.unwrap(), FACTS, "a retry writes nothing");
}
