//! The integration tests of `bsfg-controller`, one binary (one link of the
//! dependencies instead of one per file): the real controller binary against
//! real nats-server clusters, TLS and curl.

mod common;

mod bad_input;
mod boundary;
mod curl;
mod lifecycle;
mod meta_placement;
mod power_cut;
mod replication;
mod stream_replicas;
mod tls;
