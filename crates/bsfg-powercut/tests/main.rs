//! The integration tests of `bsfg-powercut`, one binary (one link of the
//! dependencies instead of one per file): the model through real FUSE
//! mounts, and a real nats-server on power-cut volumes.

mod mount;
mod nats;
