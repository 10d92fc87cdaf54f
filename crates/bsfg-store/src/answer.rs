//! What a JetStream answer means, decided by its typed code.
//!
//! Every failure the store gets from async-nats is reduced to an [`Answer`]
//! (the client library's typed kind, or the server's `err_code`) by
//! [`Answer::of`], and [`classify`] says what that answer means here. Nothing
//! in the store reads an error's text: a refusal's text carries data — a
//! put-if-absent refused with 10071 reads "wrong last sequence: 10164", the
//! subject's stored sequence, whose digits may spell any other code.

use async_nats::jetstream::context::{
    GetStreamError, GetStreamErrorKind, PublishError, PublishErrorKind, RequestError,
    RequestErrorKind,
};
use async_nats::jetstream::kv::{
    CreateError, CreateErrorKind, DeleteError, DeleteErrorKind, EntryError, EntryErrorKind,
    UpdateError, UpdateErrorKind,
};
use async_nats::jetstream::{self, ErrorCode};

/// A JetStream answer, as typed facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The server answered with a JetStream API error.
    Api(ErrorCode),
    /// No server took the request (status 503, "no responders"): no stream
    /// listens on the subject (yet), or none of its servers is reachable.
    NoResponders,
    /// No answer in time.
    TimedOut,
    /// The connection broke before the answer.
    Disconnected,
    /// A KV create found the key present (async-nats reads the key after the
    /// server refused the create with 10071, and reports this kind).
    KeyExists,
    /// Nothing typed: the client failed otherwise (sending, decoding).
    Untyped,
}

/// What an answer means to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// The subject's last sequence is not the expected one: a put-if-absent
    /// found its `message_id` taken, a compare-and-swap lost.
    SequenceMismatch,
    /// Another write with an expected sequence on the same subject is still
    /// being replicated; it settles in milliseconds, then a retry gets its
    /// real outcome.
    ExpectationPending,
    /// Not carried out, and a retry may succeed: nobody took the request, the
    /// stream has no leader, JetStream is not (yet) available.
    NotDone,
    /// Refused for lack of room on the server or in the account.
    NoRoom,
    /// The stream's store refused the write. On a discard-new stream this is
    /// its `max_bytes`; the server names the cause only in the text, so the
    /// caller tells a full stream from a failing store by the stream's size.
    StoreRefused,
    /// The outcome is unknown (no answer in time, connection lost): the
    /// write may have landed.
    Unsettled,
    /// Refused for a reason a retry cannot change: a request this crate
    /// should not have sent (logged as an internal error by the caller).
    Refused,
}

impl Answer {
    /// The answer behind an async-nats error, wherever in its source chain
    /// the typed facts are: a server code anywhere wins; otherwise the first
    /// specific kind.
    pub fn of(error: &(dyn std::error::Error + 'static)) -> Answer {
        let mut kind = Answer::Untyped;
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(api) = e.downcast_ref::<jetstream::Error>() {
                return Answer::Api(api.error_code());
            }
            if let Some(GetStreamErrorKind::JetStream(api)) =
                e.downcast_ref::<GetStreamError>().map(|g| g.kind())
            {
                return Answer::Api(api.error_code());
            }
            if kind == Answer::Untyped {
                kind = kind_of(e);
            }
            next = e.source();
        }
        kind
    }
}

/// The typed kind of one level of an async-nats error, if it says more than "other".
fn kind_of(e: &(dyn std::error::Error + 'static)) -> Answer {
    if let Some(p) = e.downcast_ref::<PublishError>() {
        return match p.kind() {
            // async-nats names the 503 status of a publish "stream not found".
            PublishErrorKind::StreamNotFound => Answer::NoResponders,
            PublishErrorKind::TimedOut => Answer::TimedOut,
            PublishErrorKind::BrokenPipe => Answer::Disconnected,
            _ => Answer::Untyped,
        };
    }
    if let Some(r) = e.downcast_ref::<RequestError>() {
        return match r.kind() {
            RequestErrorKind::NoResponders => Answer::NoResponders,
            RequestErrorKind::TimedOut => Answer::TimedOut,
            _ => Answer::Untyped,
        };
    }
    if let Some(c) = e.downcast_ref::<CreateError>() {
        return match c.kind() {
            CreateErrorKind::AlreadyExists => Answer::KeyExists,
            _ => Answer::Untyped,
        };
    }
    let timed_out = e
        .downcast_ref::<UpdateError>()
        .is_some_and(|u| u.kind() == UpdateErrorKind::TimedOut)
        || e.downcast_ref::<DeleteError>()
            .is_some_and(|d| d.kind() == DeleteErrorKind::TimedOut)
        || e.downcast_ref::<EntryError>()
            .is_some_and(|d| d.kind() == EntryErrorKind::TimedOut);
    if timed_out {
        Answer::TimedOut
    } else {
        Answer::Untyped
    }
}

/// What `answer` means. Every server code the store handles is named here;
/// any other code is a refusal a retry cannot change.
pub fn classify(answer: Answer) -> Meaning {
    match answer {
        Answer::Api(code) => match code {
            ErrorCode::STREAM_WRONG_LAST_SEQUENCE => Meaning::SequenceMismatch,
            // The clustered form of a refused expectation, sent (with a
            // constant text) while another write with an expectation on the
            // subject is in flight; and its "not ready" sibling.
            ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT
            | ErrorCode::STREAM_EXPECTED_LAST_SEQ_PER_SUBJECT_NOT_READY => {
                Meaning::ExpectationPending
            }
            ErrorCode::STREAM_NOT_FOUND
            | ErrorCode::STREAM_OFFLINE
            | ErrorCode::STREAM_OFFLINE_REASON
            | ErrorCode::CLUSTER_NOT_AVAILABLE
            | ErrorCode::CLUSTER_NOT_ACTIVE
            | ErrorCode::CLUSTER_NOT_LEADER
            | ErrorCode::CLUSTER_INCOMPLETE
            | ErrorCode::JETSTREAM_NOT_ENABLED
            | ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT
            | ErrorCode::STREAM_TOO_MANY_REQUESTS => Meaning::NotDone,
            ErrorCode::STORAGE_RESOURCES_EXCEEDED
            | ErrorCode::MEMORY_RESOURCES_EXCEEDED
            | ErrorCode::INSUFFICIENT_RESOURCES
            | ErrorCode::ACCOUNT_RESOURCES_EXCEEDED => Meaning::NoRoom,
            ErrorCode::STREAM_STORE_FAILED => Meaning::StoreRefused,
            _ => Meaning::Refused,
        },
        Answer::NoResponders => Meaning::NotDone,
        Answer::KeyExists => Meaning::SequenceMismatch,
        Answer::TimedOut | Answer::Disconnected | Answer::Untyped => Meaning::Unsettled,
    }
}

/// [`classify`] of [`Answer::of`].
pub fn meaning(error: &(dyn std::error::Error + 'static)) -> Meaning {
    classify(Answer::of(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's error object as it arrives on the wire.
    fn api(err_code: u64, description: &str) -> jetstream::Error {
        serde_json::from_value(serde_json::json!({
            "code": 400, "err_code": err_code, "description": description
        }))
        .unwrap()
    }

    /// A publish acknowledgement carrying `api`, wrapped as async-nats wraps it.
    fn publish_refused(api: jetstream::Error) -> PublishError {
        let kind = if api.error_code() == ErrorCode::STREAM_WRONG_LAST_SEQUENCE {
            PublishErrorKind::WrongLastSequence
        } else {
            PublishErrorKind::Other
        };
        PublishError::with_source(kind, api)
    }

    #[test]
    fn every_code_the_store_handles() {
        use Meaning::*;
        let cases = [
            (10071, SequenceMismatch),
            (10164, ExpectationPending),
            (10163, ExpectationPending),
            (10059, NotDone),
            (10118, NotDone),
            (10194, NotDone),
            (10008, NotDone),
            (10006, NotDone),
            (10009, NotDone),
            (10004, NotDone),
            (10076, NotDone),
            (10039, NotDone),
            (10167, NotDone),
            (10047, NoRoom),
            (10028, NoRoom),
            (10023, NoRoom),
            (10002, NoRoom),
            (10077, StoreRefused),
            (10054, Refused),
            (10003, Refused),
        ];
        for (code, want) in cases {
            let e = publish_refused(api(code, "anything"));
            assert_eq!(meaning(&e), want, "code {code} on a publish");
            // A KV write: the publish error inside an update, inside a create.
            let update = UpdateError::from(publish_refused(api(code, "anything")));
            assert_eq!(meaning(&update), want, "code {code} on a KV update");
            let create = CreateError::from(UpdateError::from(publish_refused(api(code, "x"))));
            assert_eq!(meaning(&create), want, "code {code} on a KV create");
            let delete = DeleteError::from(publish_refused(api(code, "x")));
            assert_eq!(meaning(&delete), want, "code {code} on a KV delete");
        }
    }

    #[test]
    fn the_text_never_decides() {
        // 10071 whose text names a stored sequence that spells another code.
        for seq in ["10164", "10163", "10059", "10047", "10077", "10008"] {
            let e = publish_refused(api(10071, &format!("wrong last sequence: {seq}")));
            assert_eq!(meaning(&e), Meaning::SequenceMismatch, "sequence {seq}");
        }
        // A code the store does not know, whatever its text says.
        let e = publish_refused(api(10999, "wrong last sequence: maximum bytes exceeded"));
        assert_eq!(meaning(&e), Meaning::Refused);
    }

    #[test]
    fn client_kinds_without_a_server_code() {
        assert_eq!(
            meaning(&PublishError::new(PublishErrorKind::StreamNotFound)),
            Meaning::NotDone
        );
        assert_eq!(
            meaning(&PublishError::new(PublishErrorKind::TimedOut)),
            Meaning::Unsettled
        );
        assert_eq!(
            meaning(&PublishError::new(PublishErrorKind::BrokenPipe)),
            Meaning::Unsettled
        );
        assert_eq!(
            meaning(&UpdateError::from(PublishError::new(
                PublishErrorKind::StreamNotFound
            ))),
            Meaning::NotDone
        );
        assert_eq!(
            meaning(&UpdateError::from(PublishError::new(
                PublishErrorKind::TimedOut
            ))),
            Meaning::Unsettled
        );
        assert_eq!(
            meaning(&CreateError::new(CreateErrorKind::AlreadyExists)),
            Meaning::SequenceMismatch
        );
        assert_eq!(
            meaning(&RequestError::new(RequestErrorKind::NoResponders)),
            Meaning::NotDone
        );
        assert_eq!(
            meaning(&EntryError::new(EntryErrorKind::TimedOut)),
            Meaning::Unsettled
        );
        assert_eq!(
            meaning(&PublishError::new(PublishErrorKind::Other)),
            Meaning::Unsettled
        );
    }

    #[test]
    fn a_stream_lookup_carries_its_code_in_the_kind() {
        let e = GetStreamError::new(GetStreamErrorKind::JetStream(api(
            10059,
            "stream not found",
        )));
        assert_eq!(Answer::of(&e), Answer::Api(ErrorCode::STREAM_NOT_FOUND));
        assert_eq!(meaning(&e), Meaning::NotDone);
    }
}
