//! The zone: its description from the zone library ([`spec`]), the files
//! and certificates the library names ([`files`], [`credentials`]), who the
//! simulator appends and reads as ([`workload`]), and a running instance
//! ([`instance`]).

pub mod credentials;
pub mod files;
pub mod instance;
pub mod spec;
pub mod workload;

pub use instance::{Options, Progress, Zone};
