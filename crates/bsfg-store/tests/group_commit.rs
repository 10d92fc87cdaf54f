//! Group commit against a real 3-node JetStream cluster (R3, file storage):
//! the facts of one atomic batch each get their own answer.

use bsfg_core::Reason;
use bsfg_core::config::GroupCommit;
use bsfg_core::source::Buffer;
use bsfg_store::{AppendOutcome, FactBuffer, Substrate, retry_while_unavailable};
use bsfg_testkit::nats::NatsCluster;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// Room for a whole burst in one batch, one batch in flight at a time: the
/// burst that arrives while the first fact is in flight is one batch.
fn one_batch_at_a_time() -> GroupCommit {
    GroupCommit {
        max_facts: 1000,
        max_in_flight: 1,
        ..GroupCommit::default()
    }
}

async fn buffer(cluster: &NatsCluster, url: usize, config: GroupCommit) -> FactBuffer {
    let s = Substrate::connect_url(&cluster.client_url(url), 3)
        .await
        .expect("connect");
    retry_while_unavailable("test set-up", Duration::from_secs(30), || {
        FactBuffer::ensure(
            &s,
            Buffer::Store("operational".into()),
            WEEK,
            64 << 20,
            config.clone(),
        )
    })
    .await
    .expect("set-up")
}

type Answer = (String, Result<AppendOutcome, Reason>);

/// Appends every (id, payload) concurrently; each answer with its id.
async fn burst(buf: &FactBuffer, facts: &[(String, String)]) -> Vec<Answer> {
    let appends = facts.iter().map(|(id, payload)| {
        let buf = buf.clone();
        let body = Bytes::from(payload.clone());
        async move {
            let b = body.clone();
            let outcome = buf
                .append("order", id, body, move |stored| stored == &b[..])
                .await
                .map_err(|e| e.reason);
            (id.clone(), outcome)
        }
    });
    futures::future::join_all(appends).await
}

#[tokio::test]
async fn identical_and_conflicting_appends_in_one_batch_each_get_their_own_answer() {
    let cluster = NatsCluster::start3().await;
    let buf = buffer(&cluster, 0, one_batch_at_a_time()).await;
    let mut facts: Vec<(String, String)> = (0..20)
        .map(|i| (format!("new-{i}"), format!("payload {i}")))
        .collect();
    for _ in 0..3 {
        facts.push(("twice".into(), "same payload".into()));
    }
    facts.push(("clash".into(), "first payload".into()));
    facts.push(("clash".into(), "other payload".into()));
    let stats = buf.group_commit_stats().expect("group commit is on");
    let answers = burst(&buf, &facts).await;
    assert!(
        stats.batches.load(Ordering::Relaxed) >= 1,
        "no atomic batch was written: {stats:?}"
    );

    let mut offsets = BTreeSet::new();
    let mut by_id: BTreeMap<&str, Vec<&Result<AppendOutcome, Reason>>> = BTreeMap::new();
    for (id, outcome) in &answers {
        by_id.entry(id.as_str()).or_default().push(outcome);
    }
    for i in 0..20 {
        match by_id[format!("new-{i}").as_str()][..] {
            [Ok(AppendOutcome::Appended { offset })] => assert!(offsets.insert(*offset)),
            ref other => panic!("new-{i}: {other:?}"),
        }
    }
    let twice = &by_id["twice"];
    let appended: Vec<u64> = twice
        .iter()
        .filter_map(|o| match o {
            Ok(AppendOutcome::Appended { offset }) => Some(*offset),
            _ => None,
        })
        .collect();
    assert_eq!(
        appended.len(),
        1,
        "one of three identical appends writes: {twice:?}"
    );
    assert!(offsets.insert(appended[0]));
    for o in twice {
        assert_eq!(
            o.as_ref().map(|o| o.offset()),
            Ok(appended[0]),
            "the others are duplicates at its offset: {twice:?}"
        );
    }
    let clash = &by_id["clash"];
    assert_eq!(
        clash.iter().filter(|o| o.is_ok()).count(),
        1,
        "one of two conflicting appends writes: {clash:?}"
    );
    assert!(
        clash
            .iter()
            .any(|o| matches!(o, Err(Reason::ConflictingDuplicate))),
        "the other is a conflicting duplicate: {clash:?}"
    );
    assert_eq!(
        buf.count().await.unwrap(),
        22,
        "20 new facts, one 'twice', one 'clash'"
    );
}

#[tokio::test]
async fn a_batch_holding_a_stored_fact_is_resolved_fact_by_fact() {
    let cluster = NatsCluster::start3().await;
    let buf = buffer(&cluster, 0, one_batch_at_a_time()).await;
    let stored = burst(&buf, &[("old".into(), "old payload".into())]).await;
    let Ok(AppendOutcome::Appended { offset: old }) = stored[0].1 else {
        panic!("first append: {stored:?}")
    };
    // The stored fact's retry fails the atomic batch's condition; the batch is
    // then written fact by fact, and nobody else pays for it.
    let mut facts: Vec<(String, String)> = (0..10)
        .map(|i| (format!("new-{i}"), format!("payload {i}")))
        .collect();
    facts.insert(5, ("old".into(), "old payload".into()));
    let answers = burst(&buf, &facts).await;
    let stats = buf.group_commit_stats().expect("group commit is on");
    assert!(
        stats.resolved_fact_by_fact.load(Ordering::Relaxed) >= 1,
        "the batch was not refused: {stats:?}"
    );
    for (id, outcome) in &answers {
        match (id.as_str(), outcome) {
            ("old", Ok(AppendOutcome::Duplicate { offset })) => assert_eq!(*offset, old),
            ("old", other) => panic!("old: {other:?}"),
            (_, Ok(AppendOutcome::Appended { offset })) => assert!(*offset > old),
            (id, other) => panic!("{id}: {other:?}"),
        }
    }
    assert_eq!(buf.count().await.unwrap(), 11);
}

#[tokio::test]
async fn killing_the_stream_leader_mid_batch_loses_nothing_and_writes_nothing_twice() {
    const FACTS: usize = 3000;
    let mut cluster = NatsCluster::start3().await;
    // The stream's leader is killed while batches are in flight; the
    // producers are connected to another node.
    buffer(&cluster, 0, GroupCommit::default()).await;
    let facts: Vec<(String, String)> = (0..FACTS)
        .map(|i| (format!("m-{i}"), format!("payload {i}")))
        .collect();
    let leader = loop {
        match cluster.stream_leader(0, "facts_operational").await {
            Some(name) => break name,
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let victim = cluster.index_of(&leader).expect("leader is a node");
    let buf = buffer(&cluster, (victim + 1) % 3, GroupCommit::default()).await;
    let appends = {
        let buf = buf.clone();
        let facts = facts.clone();
        tokio::spawn(async move {
            // Producers retry what was not acknowledged, as a client does.
            let mut acked: BTreeMap<String, u64> = BTreeMap::new();
            let mut todo = facts;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while !todo.is_empty() && tokio::time::Instant::now() < deadline {
                let answers = burst(&buf, &todo).await;
                let mut again = Vec::new();
                for ((id, outcome), fact) in answers.into_iter().zip(todo) {
                    match outcome {
                        Ok(o) => {
                            if let Some(prev) = acked.insert(id.clone(), o.offset()) {
                                panic!("{id} acknowledged twice: {prev} and {}", o.offset());
                            }
                        }
                        Err(_) => again.push(fact),
                    }
                }
                todo = again;
                if !todo.is_empty() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            (acked, todo.len())
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    cluster.kill(victim);
    let (acked, unacked) = appends.await.expect("producers");
    let stats = buf.group_commit_stats().expect("group commit is on");
    assert!(
        stats.batches.load(Ordering::Relaxed) >= 1,
        "no batch: {stats:?}"
    );
    eprintln!("{stats:?}");
    assert_eq!(unacked, 0, "every fact is acknowledged after retries");
    assert_eq!(acked.len(), FACTS);
    let distinct: BTreeSet<u64> = acked.values().copied().collect();
    assert_eq!(distinct.len(), FACTS, "every fact has its own offset");
    assert_eq!(
        buf.count().await.unwrap() as usize,
        FACTS,
        "every acknowledged fact is stored exactly once"
    );
    for (id, offset) in acked.iter().step_by(97) {
        let i: usize = id[2..].parse().unwrap();
        // Pages are read from the nearest replica, which may lag a moment.
        let mut page = buf
            .page("facts.operational.>", offset - 1, 1)
            .await
            .unwrap();
        for _ in 0..20 {
            if !page.records.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            page = buf
                .page("facts.operational.>", offset - 1, 1)
                .await
                .unwrap();
        }
        assert_eq!(page.records[0].offset, *offset, "{id}");
        assert_eq!(
            page.records[0].payload,
            Bytes::from(facts[i].1.clone()),
            "{id} at offset {offset}"
        );
    }
}
