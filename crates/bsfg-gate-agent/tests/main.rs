//! The integration tests of `bsfg-gate-agent`, one binary (one link of the
//! dependencies instead of one per file): the real agent against real nats-
//! server, keepalived and controllers in namespaces, and the promotion
//! decisions as a property model.

mod support;

mod controller;
mod gates_real;
mod keepalived;
mod promotion_model;
mod time_sync;
