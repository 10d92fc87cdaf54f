//! One module per target; each `run` takes the fuzzer's bytes.

pub mod config;
pub mod connect;
pub mod fact;
pub mod keepalived;
pub mod peer_page;
pub mod zone;

use bsfg_core::{BsfgError, Reason};

/// A rejection must say what and why: one of the expected reasons, a
/// detail, and the status message that starts with the reason token.
pub(crate) fn assert_rejection(e: &BsfgError, allowed: &[Reason]) {
    assert!(
        allowed.contains(&e.reason),
        "rejected with {:?}, expected one of {allowed:?}: {e}",
        e.reason
    );
    assert!(
        !e.detail.trim().is_empty(),
        "{:?} without a detail",
        e.reason
    );
    assert!(
        e.status_message()
            .starts_with(&format!("{}: ", e.reason.token())),
        "status message {:?} does not start with its reason",
        e.status_message()
    );
}

/// Splits the first byte off as the target's mode (0 for empty input).
pub(crate) fn mode(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((m, rest)) => (*m, rest),
        None => (0, data),
    }
}
