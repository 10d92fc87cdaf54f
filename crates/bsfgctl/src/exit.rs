//! Exit codes (documented in `docs/bsfgctl.md`; scripts rely on them).

/// Success; for checks: every item passed.
pub const OK: u8 = 0;
/// A failure was found: a check or commissioning item failed, the server
/// refused the request (its reason is printed), a digest did not verify.
pub const FAILED: u8 = 1;
/// Usage or configuration error (bad flags, missing identity files, a bad
/// zone file). clap uses 2 for its own usage errors too.
pub const USAGE: u8 = 2;
/// The endpoint or zone could not be reached, or the zone is not serving
/// (gRPC `UNAVAILABLE`/`DEADLINE_EXCEEDED`): retrying later may succeed.
/// Appends are safe to retry with the same `--message-id`.
pub const UNREACHABLE: u8 = 3;

/// An error carrying the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Unreachable(String),
}

impl CliError {
    pub fn code(&self) -> u8 {
        match self {
            CliError::Usage(_) => USAGE,
            CliError::Failed(_) => FAILED,
            CliError::Unreachable(_) => UNREACHABLE,
        }
    }

    /// A gRPC status from the controller: `UNAVAILABLE` and
    /// `DEADLINE_EXCEEDED` (no connection, not serving, substrate
    /// unavailable) are "unreachable"; everything else is the server's
    /// answer and a failure. The message keeps the reason token first.
    pub fn from_status(what: &str, s: &tonic::Status) -> CliError {
        let msg = format!("{what}: {:?}: {}", s.code(), s.message());
        match s.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => CliError::Unreachable(msg),
            _ => CliError::Failed(msg),
        }
    }
}

pub type Result<T> = std::result::Result<T, CliError>;
