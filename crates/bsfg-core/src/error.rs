//! One error type for every operation, carrying a machine-readable reason.
//!
//! The reason decides the status code; the RPC layer renders both into a gRPC
//! status (with `google.rpc.ErrorInfo`, domain `bsfg.dev`) or a Connect error.
//! The status message always starts with the reason token, so a client that
//! only sees the message can still dispatch on it.

use std::fmt;

/// The error domain put into `google.rpc.ErrorInfo`.
pub const ERROR_DOMAIN: &str = "bsfg.dev";

/// gRPC status codes, as numbers and as Connect's snake_case names.
/// Kept here (not `tonic::Code`) so the domain has no transport dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcCode {
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl RpcCode {
    /// The Connect protocol's code name.
    pub fn connect_name(self) -> &'static str {
        match self {
            RpcCode::InvalidArgument => "invalid_argument",
            RpcCode::NotFound => "not_found",
            RpcCode::AlreadyExists => "already_exists",
            RpcCode::PermissionDenied => "permission_denied",
            RpcCode::ResourceExhausted => "resource_exhausted",
            RpcCode::FailedPrecondition => "failed_precondition",
            RpcCode::Unimplemented => "unimplemented",
            RpcCode::Internal => "internal",
            RpcCode::Unavailable => "unavailable",
            RpcCode::Unauthenticated => "unauthenticated",
        }
    }

    /// HTTP status for a Connect unary error (Connect protocol specification).
    pub fn http_status(self) -> u16 {
        match self {
            RpcCode::InvalidArgument | RpcCode::FailedPrecondition => 400,
            RpcCode::Unauthenticated => 401,
            RpcCode::PermissionDenied => 403,
            RpcCode::NotFound => 404,
            RpcCode::AlreadyExists => 409,
            RpcCode::ResourceExhausted => 429,
            RpcCode::Unimplemented => 501,
            RpcCode::Internal => 500,
            RpcCode::Unavailable => 503,
        }
    }
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident => ($token:literal, $code:ident), )*) => {
        /// Why an operation failed. The token is stable API: clients match on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason { $( $(#[$doc])* $variant, )* }

        impl Reason {
            /// Every reason, for documentation and exhaustive tests.
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            /// The machine-readable token, e.g. `conflicting_duplicate`.
            pub fn token(self) -> &'static str {
                match self { $( Reason::$variant => $token, )* }
            }

            /// The status code this reason is reported with.
            pub fn code(self) -> RpcCode {
                match self { $( Reason::$variant => RpcCode::$code, )* }
            }
        }
    };
}

reasons! {
    /// The fact breaks the grammar (subject, predicate, envelope fields, JSON).
    InvalidFact => ("invalid_fact", InvalidArgument),
    /// The encoded fact is larger than `limits.max_fact_bytes`.
    FactTooLarge => ("fact_too_large", InvalidArgument),
    /// A name (class, consumer, bucket, key, zone) breaks the grammar or the length limit.
    InvalidName => ("invalid_name", InvalidArgument),
    /// The request body could not be decoded, or a required part is missing.
    InvalidRequest => ("invalid_request", InvalidArgument),
    /// Same `message_id`, different payload: nothing was written.
    ConflictingDuplicate => ("conflicting_duplicate", AlreadyExists),
    /// Same bucket/key, different content: nothing was written.
    ObjectConflict => ("object_conflict", AlreadyExists),
    /// The consumer is not declared in this zone's configuration.
    UnknownConsumer => ("unknown_consumer", NotFound),
    /// The stream class is not declared in this zone's configuration.
    UnknownStreamClass => ("unknown_stream_class", NotFound),
    /// The bucket is not declared in this zone's configuration.
    UnknownBucket => ("unknown_bucket", NotFound),
    /// No artifact is stored under this bucket/key.
    UnknownObject => ("unknown_object", NotFound),
    /// The caller's identity may not do this.
    NotAuthorized => ("not_authorized", PermissionDenied),
    /// `from_zone` does not match the calling identity's zone.
    ZoneMismatch => ("zone_mismatch", PermissionDenied),
    /// The caller presented no usable identity.
    Unauthenticated => ("unauthenticated", Unauthenticated),
    /// The store buffer is filled above the configured threshold.
    StoreBufferFull => ("store_buffer_full", ResourceExhausted),
    /// The object exceeds `limits.max_object_bytes`.
    ObjectTooLarge => ("object_too_large", ResourceExhausted),
    /// The uploaded bytes do not match the declared size or digest.
    ObjectMismatch => ("object_mismatch", InvalidArgument),
    /// The fact references an artifact the zone's index does not know (upload it first).
    ArtifactMissing => ("artifact_missing", FailedPrecondition),
    /// Confirming an offset that was never delivered to this consumer.
    OffsetNotDelivered => ("offset_not_delivered", FailedPrecondition),
    /// The index knows the artifact but this host lacks the blob; it is being fetched back.
    ArtifactRehydrating => ("artifact_rehydrating", Unavailable),
    /// JetStream did not answer in time, or lost quorum.
    SubstrateUnavailable => ("substrate_unavailable", Unavailable),
    /// This controller is not serving (draining, fenced, or not yet ready).
    NotServing => ("not_serving", Unavailable),
    /// The operation is not offered over this protocol.
    Unimplemented => ("unimplemented", Unimplemented),
    /// A bug or an unexpected substrate answer; details are in the controller's log.
    Internal => ("internal", Internal),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// An operation's failure: a reason plus a human explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct BsfgError {
    pub reason: Reason,
    pub detail: String,
}

impl BsfgError {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        BsfgError {
            reason,
            detail: detail.into(),
        }
    }

    pub fn code(&self) -> RpcCode {
        self.reason.code()
    }

    /// The status message: the reason token first, then the detail.
    pub fn status_message(&self) -> String {
        self.to_string()
    }
}

/// Shorthand constructors, one per reason, used all over the domain.
impl Reason {
    pub fn err(self, detail: impl Into<String>) -> BsfgError {
        BsfgError::new(self, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for r in Reason::ALL {
            let t = r.token();
            assert!(seen.insert(t), "duplicate token {t}");
            assert!(t.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{t}");
        }
    }

    #[test]
    fn contract_reasons_have_contract_codes() {
        assert_eq!(Reason::ConflictingDuplicate.code(), RpcCode::AlreadyExists);
        assert_eq!(Reason::StoreBufferFull.code(), RpcCode::ResourceExhausted);
        assert_eq!(Reason::ArtifactRehydrating.code(), RpcCode::Unavailable);
        assert_eq!(Reason::NotAuthorized.code(), RpcCode::PermissionDenied);
        assert_eq!(
            Reason::OffsetNotDelivered.code(),
            RpcCode::FailedPrecondition
        );
    }

    #[test]
    fn message_starts_with_reason_token() {
        let e = Reason::FactTooLarge.err("70000 bytes > 65536");
        assert_eq!(e.status_message(), "fact_too_large: 70000 bytes > 65536");
    }
}
