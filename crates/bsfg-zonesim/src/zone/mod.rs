//! The zone: its description from the zone library ([`spec`]), the files
//! and certificates the library names ([`files`], [`credentials`]), who the
//! simulator appends and reads as ([`workload`]), a running instance
//! ([`instance`]) and the peer zone node of replication drills ([`peer`]), the power feed of the power-loss drills ([`power`]).

pub mod credentials;
pub mod files;
pub mod instance;
pub mod peer;
pub mod power;
pub mod spec;
pub mod workload;

pub use instance::{Options, Progress, Zone};
