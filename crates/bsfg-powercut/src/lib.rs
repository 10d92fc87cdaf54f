//! `bsfg-powercut`: a test file system that models a power cut.
//!
//! Data written but not made durable is volatile: a file's bytes become
//! durable with `fsync`/`fdatasync` (or an `O_SYNC`/`O_DSYNC` write), a new
//! name, a rename or a removal with `fsync` of its directory. A *cut*
//! discards everything volatile on a set of volumes at one instant, as a
//! power failure of several hosts on one feed would; what was made durable
//! survives. The model is pure ([`model`]); [`domain`] holds the volumes of
//! one power feed behind one lock (so a cut of several mounts is atomic) and
//! mounts them with FUSE ([`fuse`]); [`control`] is the socket a test or the
//! zone simulator uses to cut and boot them.
//!
//! See docs/durability.md for the semantics and why they are the ones modelled.

pub mod control;
pub mod domain;
pub mod fuse;
pub mod model;
