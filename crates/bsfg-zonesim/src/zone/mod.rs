//! The zone: its description from the zone library ([`spec`]), the files
//! and certificates the library names ([`files`], [`credentials`]), who the
//! simulator appends and reads as ([`workload`]), a running instance
//! ([`instance`]: its daemons, faults and observation), the peer zone node
//! of replication drills ([`peer`]) and the power feed of the power-loss
//! drills ([`power`]). An instance is named by [`options`], runs the
//! programs of [`tools`], satisfies keepalived's script security
//! ([`keepalived_script`]), reports [`progress`] and leaves `bsfgctl` files
//! for its users ([`cli_files`]).

pub mod cli_files;
pub mod credentials;
pub mod files;
pub mod instance;
pub mod keepalived_script;
pub mod nats_users;
pub mod options;
pub mod peer;
pub mod power;
pub mod progress;
pub mod spec;
pub mod tools;
pub mod workload;

pub use instance::Zone;
pub use options::Options;
pub use progress::Progress;
