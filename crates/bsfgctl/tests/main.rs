//! The integration tests of `bsfgctl`, one binary (one link of the dependencies
//! instead of one per file): bsfgctl against a real controller, a real cluster
//! and a simulator zone.

mod support;

mod artifact_backup;
mod backup;
mod client;
mod install;
mod pki;
mod runbooks;
mod simulator;
mod zone_nats;
