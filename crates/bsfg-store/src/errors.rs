//! Mapping JetStream failures onto the domain's reasons.

use bsfg_core::{BsfgError, Reason};
use std::fmt::Display;

/// JetStream did not answer, or answered that it cannot commit now.
pub(crate) fn unavailable(what: &str, e: impl Display) -> BsfgError {
    Reason::SubstrateUnavailable.err(format!("{what}: {e}"))
}

/// An answer we did not expect; logged by the caller with this detail.
pub(crate) fn internal(what: &str, e: impl Display) -> BsfgError {
    Reason::Internal.err(format!("{what}: {e}"))
}
