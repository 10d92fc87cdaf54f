//! Store buffers and forward buffers: append-only fact streams with a
//! put-if-absent keyed by `message_id` that costs no extra round trip.

use crate::answer::{Answer, Meaning, classify};
use crate::errors::{internal, unavailable};
use crate::group_commit::{GroupCommitStats, GroupCommitter};
use crate::page::{Page, batch_direct_get};
use crate::substrate::Substrate;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use bsfg_core::config::GroupCommit;
use bsfg_core::identity::message_token;
use bsfg_core::retry::Backoff;
use bsfg_core::source::{Buffer, subject_matches};
use bsfg_core::{BsfgError, Reason};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A fact as stored: its offset (the stream sequence), time and encoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub stored_at_unix_ms: i64,
    pub subject: String,
    pub payload: Bytes,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Written now, at this offset.
    Appended { offset: u64 },
    /// The same fact was already stored at this offset; nothing was written.
    Duplicate { offset: u64 },
}

impl AppendOutcome {
    pub fn offset(self) -> u64 {
        match self {
            AppendOutcome::Appended { offset } | AppendOutcome::Duplicate { offset } => offset,
        }
    }
}

/// Why a put-if-absent publish did not write.
#[derive(Debug)]
pub(crate) enum PublishRefusal {
    /// The subject already holds a fact (10071): this `message_id` is taken.
    IdTaken,
    /// Another write to the subject is in flight (10164): retry shortly.
    SubjectBusy,
    /// Not carried out (no server took it, no stream leader yet, JetStream
    /// not available): nothing was written, so a retry is safe.
    NotDone,
    /// The stream's store refused the write (10077): full, or failing.
    StoreRefused,
    Failed(BsfgError),
}

/// The only header of a fact's publish: it makes the write a put-if-absent on its subject.
pub(crate) fn if_absent_headers() -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Expected-Last-Subject-Sequence", "0");
    headers
}

/// A fact's own put-if-absent publish to `subject` of `stream`, its
/// acknowledgement awaited.
pub(crate) async fn publish_if_absent(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    body: Bytes,
) -> Result<u64, PublishRefusal> {
    let ack = send_if_absent(js, stream, subject, body).await?;
    acknowledged(ack, stream).await
}

/// Sends a fact's own put-if-absent publish; its acknowledgement is awaited
/// separately ([`acknowledged`]), so that sends keep their order.
pub(crate) async fn send_if_absent(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    body: Bytes,
) -> Result<PublishAckFuture, PublishRefusal> {
    js.publish_with_headers(subject.to_owned(), if_absent_headers(), body)
        .await
        .map_err(|e| refusal_of(&e, stream))
}

/// The offset a sent fact was stored at, or why it was not.
pub(crate) async fn acknowledged(
    ack: PublishAckFuture,
    stream: &str,
) -> Result<u64, PublishRefusal> {
    ack.await
        .map(|a| a.sequence)
        .map_err(|e| refusal_of(&e, stream))
}

/// What a refused or unanswered publish to `stream` means, by its typed code.
pub(crate) fn refusal_of(e: &(dyn std::error::Error + 'static), stream: &str) -> PublishRefusal {
    let answer = Answer::of(e);
    match classify(answer) {
        Meaning::SequenceMismatch => PublishRefusal::IdTaken,
        Meaning::ExpectationPending => PublishRefusal::SubjectBusy,
        Meaning::NotDone => PublishRefusal::NotDone,
        Meaning::StoreRefused => PublishRefusal::StoreRefused,
        Meaning::NoRoom => PublishRefusal::Failed(Reason::StoreBufferFull.err(format!(
            "JetStream has no room for stream {stream} ({answer:?}: a server or account storage limit)"
        ))),
        Meaning::Unsettled => PublishRefusal::Failed(unavailable(
            "publishing a fact",
            format!("no acknowledgement from JetStream ({e})"),
        )),
        Meaning::Refused => PublishRefusal::Failed(internal("publishing a fact", e)),
    }
}

/// How full a buffer is, estimated without a round trip per append: the last
/// polled byte count plus what this process appended since.
#[derive(Debug, Default)]
pub struct BufferFill {
    polled_bytes: AtomicU64,
    appended_since_poll: AtomicU64,
    max_bytes: u64,
}

impl BufferFill {
    pub fn percent(&self) -> f64 {
        if self.max_bytes == 0 {
            return 0.0;
        }
        let bytes = self.polled_bytes.load(Ordering::Relaxed)
            + self.appended_since_poll.load(Ordering::Relaxed);
        bytes as f64 * 100.0 / self.max_bytes as f64
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

/// One fact stream (`facts_<class>` or `fwd_<peer>`).
#[derive(Clone)]
pub struct FactBuffer {
    buffer: Buffer,
    substrate: Substrate,
    stream: stream::Stream,
    fill: Arc<BufferFill>,
    /// Batches concurrent appends (absent when group commit is off).
    committer: Option<GroupCommitter>,
}

impl std::fmt::Debug for FactBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactBuffer")
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

/// Rough per-message overhead JetStream stores beside the body (subject, headers, index).
const STORED_OVERHEAD: u64 = 160;

impl FactBuffer {
    /// Creates the stream, or reconciles its configuration with the wanted one.
    pub async fn ensure(
        substrate: &Substrate,
        buffer: Buffer,
        max_age: Duration,
        max_bytes: u64,
        group_commit: GroupCommit,
    ) -> Result<FactBuffer, BsfgError> {
        let name = buffer.stream_name();
        let wanted = stream::Config {
            name: name.clone(),
            description: Some(match &buffer {
                Buffer::Store(c) => format!("BSFG store buffer, class {c}"),
                Buffer::Forward(p) => format!("BSFG forward buffer, facts pulled from zone {p}"),
            }),
            subjects: vec![buffer.stream_subjects()],
            max_age,
            max_bytes: max_bytes as i64,
            storage: StorageType::File,
            num_replicas: substrate.replicas(),
            // Never drop old facts to make room: refuse new ones (the controller refuses
            // earlier, at the configured fill threshold, with store_buffer_full).
            discard: DiscardPolicy::New,
            duplicate_window: max_age.min(Duration::from_secs(120)),
            allow_direct: true,
            deny_delete: true,
            // Group commit writes atomic batches; harmless when it is off.
            allow_atomic_publish: true,
            ..Default::default()
        };
        let js = substrate.jetstream();
        let stream = match js.get_stream(&name).await {
            Ok(mut existing) => {
                let info = existing
                    .info()
                    .await
                    .map_err(|e| unavailable("reading stream info", e))?;
                let c = &info.config;
                let differs = c.subjects != wanted.subjects
                    || c.max_age != wanted.max_age
                    || c.max_bytes != wanted.max_bytes
                    || c.num_replicas != wanted.num_replicas
                    || c.discard != wanted.discard
                    || c.allow_direct != wanted.allow_direct
                    || c.deny_delete != wanted.deny_delete
                    || c.allow_atomic_publish != wanted.allow_atomic_publish;
                if differs {
                    tracing::info!(stream = %name, "reconciling stream configuration");
                    js.update_stream(&wanted)
                        .await
                        .map_err(|e| unavailable(&format!("updating stream {name}"), e))?;
                    js.get_stream(&name)
                        .await
                        .map_err(|e| unavailable("reading stream", e))?
                } else {
                    existing
                }
            }
            Err(e) if crate::kv::is_stream_not_found(&e) => {
                tracing::info!(stream = %name, replicas = substrate.replicas(), "creating stream");
                js.create_stream(wanted)
                    .await
                    .map_err(|e| unavailable(&format!("creating stream {name}"), e))?
            }
            Err(e) => return Err(unavailable(&format!("looking up stream {name}"), e)),
        };
        crate::kv::wait_for_leader(substrate, &name).await?;
        let fill = Arc::new(BufferFill {
            max_bytes,
            ..Default::default()
        });
        let committer = group_commit.enabled.then(|| {
            GroupCommitter::spawn(substrate.jetstream().clone(), name.clone(), &group_commit)
        });
        let me = FactBuffer {
            buffer,
            substrate: substrate.clone(),
            stream,
            fill,
            committer,
        };
        me.refresh_fill().await?;
        Ok(me)
    }

    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    pub fn stream_name(&self) -> &str {
        &self.stream.cached_info().config.name
    }

    pub fn fill(&self) -> &BufferFill {
        &self.fill
    }

    /// Re-reads the stream's byte count (called on a timer, not per append).
    pub async fn refresh_fill(&self) -> Result<(), BsfgError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| unavailable("reading stream state", e))?;
        self.fill.appended_since_poll.store(0, Ordering::Relaxed);
        self.fill
            .polled_bytes
            .store(info.state.bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Appends `body` (an encoded fact) under `kind` unless a fact with the same
    /// `message_id` is already stored: one JetStream write. Only when the id is
    /// taken is the stored body read back and handed to `same_payload`, which
    /// tells a duplicate (the original offset is returned) from a conflict.
    pub async fn append(
        &self,
        kind: &str,
        message_id: &str,
        body: Bytes,
        same_payload: impl FnOnce(&[u8]) -> bool,
    ) -> Result<AppendOutcome, BsfgError> {
        let subject = self.buffer.fact_subject(kind, &message_token(message_id));
        let len = body.len() as u64;
        // A concurrent write to the same subject still in the RAFT pipeline makes the
        // server answer 10164 rather than guess; it settles in milliseconds.
        let mut backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(250));
        let give_up = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            match self.publish_if_absent(&subject, body.clone()).await {
                Ok(offset) => {
                    self.fill
                        .appended_since_poll
                        .fetch_add(len + STORED_OVERHEAD, Ordering::Relaxed);
                    return Ok(AppendOutcome::Appended { offset });
                }
                Err(PublishRefusal::IdTaken) => {
                    return self
                        .resolve_existing(&subject, message_id, same_payload)
                        .await;
                }
                Err(PublishRefusal::SubjectBusy | PublishRefusal::NotDone)
                    if tokio::time::Instant::now() < give_up =>
                {
                    tokio::time::sleep(backoff.next_delay(rand::random())).await;
                }
                Err(PublishRefusal::SubjectBusy) => {
                    return Err(unavailable(
                        "publishing a fact",
                        "another write of this message_id did not settle",
                    ));
                }
                Err(PublishRefusal::NotDone) => {
                    return Err(unavailable(
                        "publishing a fact",
                        "no JetStream server accepts the stream's subjects",
                    ));
                }
                Err(PublishRefusal::StoreRefused) => return Err(self.store_refused(len).await),
                Err(PublishRefusal::Failed(e)) => return Err(e),
            }
        }
    }

    /// One put-if-absent write: through the group committer when it runs,
    /// else a publish of its own.
    async fn publish_if_absent(&self, subject: &str, body: Bytes) -> Result<u64, PublishRefusal> {
        match &self.committer {
            Some(c) => c.commit(subject.to_owned(), body).await,
            None => {
                publish_if_absent(
                    self.substrate.jetstream(),
                    self.stream_name(),
                    subject,
                    body,
                )
                .await
            }
        }
    }

    /// What group commit has done on this buffer so far.
    pub fn group_commit_stats(&self) -> Option<&GroupCommitStats> {
        self.committer.as_ref().map(|c| c.stats())
    }

    /// The store refused a write of `len` bytes: the stream is at its
    /// `max_bytes` (store_buffer_full), or its storage fails.
    async fn store_refused(&self, len: u64) -> BsfgError {
        match self.stream.get_info().await {
            Ok(info) if info.state.bytes + len + STORED_OVERHEAD > self.fill.max_bytes => {
                Reason::StoreBufferFull.err(format!(
                    "stream {} is at its max_bytes ({} of {} bytes)",
                    self.stream_name(),
                    info.state.bytes,
                    self.fill.max_bytes
                ))
            }
            Ok(_) => unavailable(
                "publishing a fact",
                "JetStream's store refused the write (error 10077) though the stream has room",
            ),
            Err(e) => unavailable("reading stream state after a refused write", e),
        }
    }

    /// The id is taken: the same payload → duplicate, else conflict.
    async fn resolve_existing(
        &self,
        subject: &str,
        message_id: &str,
        same_payload: impl FnOnce(&[u8]) -> bool,
    ) -> Result<AppendOutcome, BsfgError> {
        let existing = self
            .stream
            .get_last_raw_message_by_subject(subject)
            .await
            .map_err(|e| unavailable("reading the existing fact", e))?;
        if same_payload(&existing.payload) {
            Ok(AppendOutcome::Duplicate {
                offset: existing.sequence,
            })
        } else {
            Err(Reason::ConflictingDuplicate.err(format!(
                "message_id {message_id:?} is already stored at offset {} with a different payload",
                existing.sequence
            )))
        }
    }

    /// Up to `limit` facts matching `filter` with offsets greater than `after`, in order.
    pub async fn page(&self, filter: &str, after: u64, limit: u32) -> Result<Page, BsfgError> {
        if limit == 0 {
            return Ok(Page::default());
        }
        batch_direct_get(
            self.substrate.client(),
            self.stream_name(),
            after + 1,
            filter,
            limit,
            self.substrate.request_timeout(),
        )
        .await
    }

    /// Whether a fact matching `filter` is stored at exactly `offset` (read from the leader).
    pub async fn holds(&self, filter: &str, offset: u64) -> Result<bool, BsfgError> {
        match self.stream.get_raw_message(offset).await {
            Ok(msg) => Ok(subject_matches(filter, msg.subject.as_str())),
            Err(e)
                if e.kind()
                    == async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable("reading a fact", e)),
        }
    }

    /// The highest offset in the stream (0 when empty).
    pub async fn last_offset(&self) -> Result<u64, BsfgError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| unavailable("reading stream state", e))?;
        Ok(info.state.last_sequence)
    }

    /// Number of facts stored.
    pub async fn count(&self) -> Result<u64, BsfgError> {
        let info = self
            .stream
            .get_info()
            .await
            .map_err(|e| internal("reading stream state", e))?;
        Ok(info.state.messages)
    }
}
