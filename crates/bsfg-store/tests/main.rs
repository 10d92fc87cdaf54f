//! The integration tests of `bsfg-store`, one binary (one link of the
//! dependencies instead of one per file): JetStream adapter against real nats-
//! server clusters.

mod group_commit;
mod jetstream;
mod meta_placement;
