//! The BSFG substrate: everything the controller and the gate agent keep in
//! NATS JetStream, behind types named in the domain's words.
//!
//! | type | JetStream object |
//! |---|---|
//! | [`FactBuffer`] (store buffer) | stream `facts_<class>`, subjects `facts.<class>.<kind>.<token>` |
//! | [`FactBuffer`] (forward buffer) | stream `fwd_<peer>`, subjects `fwd.<peer>.<kind>.<token>` |
//! | [`CursorStore`] | KV bucket `bsfg_cursors`: consumer → confirmed offset |
//! | [`ArtifactIndex`] | KV bucket `bsfg_artifacts`: bucket/key → digest, size, media type |
//! | [`LeaseStore`] | KV bucket `bsfg_lease`: the zone controller lease |
//! | [`step_down_leaders_on`], [`MetaMover`] | stream and meta RAFT leaders, kept off the active host |
//! | [`stream_replicas`] | every stream's replicas current, leader and lag, as its leader reports them |
//!
//! The crate's public API is the substrate port: another substrate would
//! reimplement these types, and nothing outside this crate names JetStream.
//! (One implementation behind a trait would add indirection on the append
//! path without a second implementation to justify it.)
//!
//! Consistency choices, and why:
//! - Every JetStream failure is classified by its typed code ([`answer`]),
//!   never by its text.
//! - Every fact is published to its own subject with
//!   `Nats-Expected-Last-Subject-Sequence: 0`, so the stream itself is the
//!   put-if-absent index, for the whole retention. Concurrent appends to one
//!   stream are written as one atomic batch ([`group_commit`]), each fact
//!   keeping its own condition and its own answer.
//! - KV buckets are created with `allow_direct = false`: reads go to the RAFT
//!   leader, so a lease or cursor is never read stale from a lagging follower.
//! - Fact pages are read with batched direct gets, served by the nearest
//!   replica: a page may end a few facts early right after a write, never
//!   with a gap or a wrong fact.

pub mod answer;
mod artifact_index;
mod cursors;
mod errors;
mod fact_buffer;
pub mod group_commit;
mod kv;
mod lease;
mod meta;
pub mod page;
mod placement;
mod replicas;
mod substrate;

pub use artifact_index::{ArtifactIndex, ArtifactRecord, IndexOutcome};
pub use cursors::{CursorAdvance, CursorStore, StoredCursor};
pub use fact_buffer::{AppendOutcome, BufferFill, FactBuffer, StoredRecord};
pub use group_commit::GroupCommitStats;
pub use lease::{LeaseSighting, LeaseStore, LeaseWrite, monotonic_now};
pub use meta::{
    MetaMover, MetaOutcome, MetaPeer, MetaPlacement, MetaPlan, SystemConnection, plan as meta_plan,
};
pub use page::Page;
pub use placement::{StreamPlacement, gathering_peer, placements, step_down_leaders_on};
pub use replicas::{KnownStreams, StreamReplicas, stream_replicas};
pub use substrate::{Substrate, retry_while_unavailable};
