//! Group commit: the appends that arrive together for one fact stream are
//! written as one JetStream atomic batch (ADR-50), so the RAFT proposal, the
//! replication and the fsync are paid once per batch instead of once per fact.
//!
//! Every fact of a batch keeps its own put-if-absent condition
//! (`Nats-Expected-Last-Subject-Sequence: 0`). nats-server rejects a whole
//! atomic batch when one condition fails, and cannot check a condition on a
//! subject an earlier message of the same batch writes. So:
//! - a fact whose subject is already in the batch (the same `message_id`
//!   appended twice at once) waits for the batch and is then written on its
//!   own: it finds the first one stored and gets its own answer (duplicate or
//!   conflict);
//! - a batch that is refused, or whose outcome is unknown (its stream leader
//!   lost mid-commit, no acknowledgement in time), is resolved fact by fact
//!   with each fact's own put-if-absent write, which reads a stored fact back
//!   rather than guessing: nothing is acknowledged twice, nothing is lost,
//!   and the common case (no duplicate in the batch) costs no extra round trip.
//!
//! The committer is one task per stream. A fact that arrives while nothing is
//! in flight goes at once, alone; facts that arrive while batches await their
//! acknowledgement form the next batch (bounded by `max_facts`, `max_bytes`
//! and `max_in_flight`). Answers are delivered in the order the batches were
//! sent, so acknowledgements of one stream follow its offsets.

use crate::fact_buffer::{
    PublishRefusal, acknowledged, if_absent_headers, publish_if_absent, send_if_absent,
};
use async_nats::jetstream;
use bsfg_core::config::GroupCommit;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// One fact waiting to be written.
struct Submission {
    subject: String,
    body: Bytes,
    answer: oneshot::Sender<Result<u64, PublishRefusal>>,
}

/// What the committer has written so far (read by the controller's metrics
/// and the benchmark).
#[derive(Debug, Default)]
pub struct GroupCommitStats {
    /// Atomic batches committed.
    pub batches: AtomicU64,
    /// Facts written in those batches.
    pub batched_facts: AtomicU64,
    /// Facts written alone (nothing else waiting, or a subject already in
    /// the batch).
    pub lone_facts: AtomicU64,
    /// Batches refused or unanswered, then resolved fact by fact.
    pub resolved_fact_by_fact: AtomicU64,
}

/// The handle the fact buffer appends through; the task ends when the last
/// handle is dropped.
#[derive(Clone)]
pub(crate) struct GroupCommitter {
    submit: mpsc::Sender<Submission>,
    stats: Arc<GroupCommitStats>,
}

impl GroupCommitter {
    pub(crate) fn spawn(js: jetstream::Context, stream: String, config: &GroupCommit) -> Self {
        let bounds = Bounds::of(config);
        // Room for what the in-flight batches and the next ones hold: beyond
        // that a request waits here, before any work is done for it.
        let (submit, queue) = mpsc::channel(bounds.max_facts * (bounds.max_in_flight + 1));
        let stats = Arc::new(GroupCommitStats::default());
        let task = Committer {
            js,
            stream,
            bounds,
            stats: stats.clone(),
        };
        tokio::spawn(task.run(queue));
        GroupCommitter { submit, stats }
    }

    pub(crate) fn stats(&self) -> &GroupCommitStats {
        &self.stats
    }

    /// Writes `body` to `subject` if the subject is empty, with whatever
    /// else is waiting; the fact's own outcome.
    pub(crate) async fn commit(&self, subject: String, body: Bytes) -> Result<u64, PublishRefusal> {
        let (answer, outcome) = oneshot::channel();
        let submission = Submission {
            subject,
            body,
            answer,
        };
        if self.submit.send(submission).await.is_err() {
            return Err(PublishRefusal::NotDone);
        }
        // The committer answers every submission it takes; a dropped answer
        // means it stopped (runtime shutdown): nothing is known to be written.
        outcome.await.unwrap_or(Err(PublishRefusal::NotDone))
    }
}

/// The configured bounds, as the committer uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bounds {
    max_facts: usize,
    max_bytes: u64,
    max_in_flight: usize,
    max_delay: std::time::Duration,
}

impl Bounds {
    fn of(c: &GroupCommit) -> Bounds {
        Bounds {
            max_facts: c.max_facts.max(1),
            max_bytes: c.max_bytes.as_u64().max(1),
            max_in_flight: c.max_in_flight.max(1),
            max_delay: c.max_delay,
        }
    }
}

/// Whether the waiting facts should be sent now (pure: tested).
/// `oldest_waited`: how long the first waiting fact has waited.
fn send_now(
    b: Bounds,
    waiting: usize,
    in_flight: usize,
    oldest_waited: std::time::Duration,
) -> bool {
    waiting > 0
        && in_flight < b.max_in_flight
        && (in_flight == 0 || waiting >= b.max_facts || oldest_waited >= b.max_delay)
}

/// How many of the waiting facts (their encoded sizes, oldest first) the
/// next batch takes: at least one, at most `max_facts`, and no more bytes than
/// `max_bytes` unless the first fact alone exceeds it (pure: tested).
fn batch_len(b: Bounds, sizes: impl IntoIterator<Item = usize>) -> usize {
    let mut n = 0;
    let mut bytes = 0u64;
    for size in sizes.into_iter().take(b.max_facts) {
        bytes += size as u64;
        if n > 0 && bytes > b.max_bytes {
            break;
        }
        n += 1;
    }
    n
}

/// Splits a batch's subjects into those written in the atomic batch (the
/// first of each subject) and those written alone after it (a subject an
/// earlier fact of the batch writes), as indices (pure: tested).
fn split_repeated<'a>(subjects: impl IntoIterator<Item = &'a str>) -> (Vec<usize>, Vec<usize>) {
    let mut seen = HashSet::new();
    let (mut first, mut repeated) = (Vec::new(), Vec::new());
    for (i, s) in subjects.into_iter().enumerate() {
        if seen.insert(s) {
            first.push(i);
        } else {
            repeated.push(i);
        }
    }
    (first, repeated)
}

/// The offsets of a committed batch of `count` facts whose last fact is at
/// `last`, or `None` when the acknowledgement does not describe `count`
/// facts (pure: tested).
fn batch_offsets(last: u64, acked_count: Option<u64>, count: usize) -> Option<Vec<u64>> {
    let count = count as u64;
    if acked_count != Some(count) || last < count {
        return None;
    }
    Some((last + 1 - count..=last).collect())
}

type Outcomes = Vec<(
    oneshot::Sender<Result<u64, PublishRefusal>>,
    Result<u64, PublishRefusal>,
)>;
type InFlight = Pin<Box<dyn Future<Output = Outcomes> + Send>>;

struct Committer {
    js: jetstream::Context,
    stream: String,
    bounds: Bounds,
    stats: Arc<GroupCommitStats>,
}

impl Committer {
    async fn run(self, mut queue: mpsc::Receiver<Submission>) {
        let this = Arc::new(self);
        let mut waiting: VecDeque<(Instant, Submission)> = VecDeque::new();
        let mut in_flight: FuturesOrdered<InFlight> = FuturesOrdered::new();
        let mut open = true;
        loop {
            while waiting.len() < this.bounds.max_facts {
                match queue.try_recv() {
                    Ok(s) => waiting.push_back((Instant::now(), s)),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            let oldest = waiting
                .front()
                .map(|(t, _)| t.elapsed())
                .unwrap_or_default();
            if send_now(this.bounds, waiting.len(), in_flight.len(), oldest) {
                let sizes = waiting.iter().map(|(_, s)| s.body.len());
                let n = batch_len(this.bounds, sizes);
                let batch: Vec<Submission> = waiting.drain(..n).map(|(_, s)| s).collect();
                in_flight.push_back(this.clone().send(batch).await);
                continue;
            }
            if !open && waiting.is_empty() && in_flight.is_empty() {
                return;
            }
            // Wait for an acknowledgement, a new fact, or the end of the
            // oldest fact's delay, whichever comes first.
            let delay_ends = waiting
                .front()
                .map(|(t, _)| *t + this.bounds.max_delay)
                .filter(|_| in_flight.len() < this.bounds.max_in_flight);
            tokio::select! {
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    for (answer, outcome) in done {
                        // The requester may have gone (its RPC was cancelled).
                        let _ = answer.send(outcome);
                    }
                }
                s = queue.recv(), if open && waiting.len() < this.bounds.max_facts => match s {
                    Some(s) => waiting.push_back((Instant::now(), s)),
                    None => open = false,
                },
                _ = tokio::time::sleep_until(delay_ends.unwrap_or_else(Instant::now)),
                    if delay_ends.is_some() => {}
            }
        }
    }

    /// Sends `batch` (in order, on the one connection, so batches reach the
    /// stream leader in the order they are sent) and returns the future of
    /// its outcomes.
    async fn send(self: Arc<Self>, batch: Vec<Submission>) -> InFlight {
        if batch.len() == 1 {
            self.stats.lone_facts.fetch_add(1, Ordering::Relaxed);
            let s = batch.into_iter().next().expect("one");
            let sent = send_if_absent(&self.js, &self.stream, &s.subject, s.body.clone()).await;
            return Box::pin(async move {
                let outcome = match sent {
                    Ok(ack) => acknowledged(ack, &self.stream).await,
                    Err(refused) => Err(refused),
                };
                vec![(s.answer, outcome)]
            });
        }
        let (first, repeated) = split_repeated(batch.iter().map(|s| s.subject.as_str()));
        let mut batch: Vec<Option<Submission>> = batch.into_iter().map(Some).collect();
        let in_batch: Vec<Submission> = first
            .iter()
            .map(|&i| batch[i].take().expect("once"))
            .collect();
        let alone: Vec<Submission> = repeated
            .iter()
            .map(|&i| batch[i].take().expect("once"))
            .collect();
        let acked = self.send_atomic(&in_batch).await;
        Box::pin(async move {
            let offsets = match acked {
                Some(ack) => match ack.await {
                    Ok(a) => batch_offsets(a.sequence, a.batch_size, in_batch.len()),
                    Err(e) => {
                        tracing::debug!(stream = %self.stream, facts = in_batch.len(), error = %e,
                            "atomic batch refused or unanswered: resolving fact by fact");
                        None
                    }
                },
                None => None,
            };
            let mut outcomes: Outcomes = match offsets {
                Some(offsets) => {
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .batched_facts
                        .fetch_add(in_batch.len() as u64, Ordering::Relaxed);
                    in_batch
                        .into_iter()
                        .zip(offsets)
                        .map(|(s, o)| (s.answer, Ok(o)))
                        .collect()
                }
                None => {
                    self.stats
                        .resolved_fact_by_fact
                        .fetch_add(1, Ordering::Relaxed);
                    self.one_by_one(in_batch).await
                }
            };
            // After the batch: each finds its subject's first fact (or writes).
            self.stats
                .lone_facts
                .fetch_add(alone.len() as u64, Ordering::Relaxed);
            outcomes.extend(self.one_by_one(alone).await);
            outcomes
        })
    }

    /// Publishes the atomic batch; the last fact carries the commit and its
    /// acknowledgement (`None` when sending failed: nothing to await).
    async fn send_atomic(
        &self,
        batch: &[Submission],
    ) -> Option<jetstream::context::PublishAckFuture> {
        let id = format!("{:032x}", rand::random::<u128>());
        let client = self.js.client();
        let last = batch.len() - 1;
        for (i, s) in batch.iter().enumerate() {
            let mut headers = if_absent_headers();
            headers.insert("Nats-Batch-Id", id.as_str());
            headers.insert("Nats-Batch-Sequence", (i + 1).to_string());
            if i < last {
                // Staged without a reply: the commit's acknowledgement says
                // whether the whole batch was stored.
                if let Err(e) = client
                    .publish_with_headers(s.subject.clone(), headers, s.body.clone())
                    .await
                {
                    tracing::debug!(stream = %self.stream, error = %e, "sending a batched fact failed");
                    return None;
                }
            } else {
                headers.insert("Nats-Batch-Commit", "1");
                return match self
                    .js
                    .publish_with_headers(s.subject.clone(), headers, s.body.clone())
                    .await
                {
                    Ok(ack) => Some(ack),
                    Err(e) => {
                        tracing::debug!(stream = %self.stream, error = %e, "sending a batch commit failed");
                        None
                    }
                };
            }
        }
        None
    }

    /// Each fact's own put-if-absent write, concurrently.
    async fn one_by_one(&self, facts: Vec<Submission>) -> Outcomes {
        let writes = facts
            .iter()
            .map(|s| publish_if_absent(&self.js, &self.stream, &s.subject, s.body.clone()));
        let results = futures::future::join_all(writes).await;
        facts.into_iter().map(|s| s.answer).zip(results).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn bounds() -> Bounds {
        Bounds {
            max_facts: 4,
            max_bytes: 1000,
            max_in_flight: 2,
            max_delay: Duration::from_millis(2),
        }
    }

    #[test]
    fn an_idle_stream_sends_a_lone_fact_at_once() {
        assert!(send_now(bounds(), 1, 0, Duration::ZERO));
        assert!(!send_now(bounds(), 0, 0, Duration::ZERO));
    }

    #[test]
    fn while_a_batch_is_in_flight_facts_gather_until_full_or_their_delay_ends() {
        let b = bounds();
        assert!(
            !send_now(b, 1, 1, Duration::ZERO),
            "one waiting, one in flight: gather"
        );
        assert!(send_now(b, 4, 1, Duration::ZERO), "full");
        assert!(send_now(b, 1, 1, Duration::from_millis(2)), "delay over");
        assert!(
            !send_now(b, 4, 2, Duration::from_secs(1)),
            "every slot in flight"
        );
        let no_delay = Bounds {
            max_delay: Duration::ZERO,
            ..b
        };
        assert!(
            send_now(no_delay, 1, 1, Duration::ZERO),
            "zero delay: a free slot sends"
        );
    }

    #[test]
    fn a_batch_is_bounded_by_facts_and_bytes_but_never_empty() {
        let b = bounds();
        assert_eq!(batch_len(b, [10; 9]), 4);
        assert_eq!(batch_len(b, [400, 400, 400]), 2);
        assert_eq!(batch_len(b, [5000, 1]), 1, "an oversized fact goes alone");
        assert_eq!(batch_len(b, [1000]), 1);
        assert_eq!(batch_len(b, []), 0);
    }

    #[test]
    fn a_repeated_subject_is_written_after_the_batch() {
        let (first, repeated) = split_repeated(["a", "b", "a", "c", "b", "a"]);
        assert_eq!(first, [0, 1, 3]);
        assert_eq!(repeated, [2, 4, 5]);
    }

    #[test]
    fn offsets_come_from_an_acknowledgement_that_counts_the_batch() {
        assert_eq!(batch_offsets(12, Some(3), 3), Some(vec![10, 11, 12]));
        assert_eq!(batch_offsets(1, Some(1), 1), Some(vec![1]));
        assert_eq!(
            batch_offsets(12, Some(2), 3),
            None,
            "a count that differs is not guessed at"
        );
        assert_eq!(
            batch_offsets(12, None, 3),
            None,
            "no count: not a batch acknowledgement"
        );
        assert_eq!(batch_offsets(2, Some(3), 3), None);
    }
}
