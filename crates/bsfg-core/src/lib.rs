//! The BSFG domain, without I/O.
//!
//! Everything a controller decides before it touches JetStream or the network
//! lives here as plain functions and data, so it can be tested directly:
//!
//! - [`names`]: the grammar of every name that reaches a NATS subject or a file;
//! - [`fact`]: validation of a [`Fact`](bsfg_proto::v1::Fact) against the contract and the [`limits`];
//! - [`identity`]: the payload identity hash used for conflict detection, and the
//!   per-`message_id` subject token that makes put-if-absent atomic;
//! - [`cursor`]: consumer cursor arithmetic (highest contiguous confirmed offset);
//! - [`source`]: consumer sources (`store:<class>[/<kind>]`, `forward:<peer>`);
//! - [`policy`]: who may append, consume, read and write what;
//! - [`error`]: the one error type, each reason mapped to a status code;
//! - [`lease`]: the controller lease state machine (one writer per zone);
//! - [`retry`]: backoff with jitter, and repeated warnings logged once a second with a count;
//! - [`config`]: configuration types of the binaries (loaded with figment at the edges);
//! - [`clock`]: the wall clock in the contract's units (the one read of the outside world).

pub mod clock;
pub mod config;
pub mod cursor;
pub mod error;
pub mod fact;
pub mod identity;
pub mod lease;
pub mod limits;
pub mod names;
pub mod policy;
pub mod retry;
pub mod source;

pub use error::{BsfgError, Reason, RpcCode};
pub use limits::Limits;
