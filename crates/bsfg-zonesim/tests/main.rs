//! The integration tests of `bsfg-zonesim`, one binary (one link of the
//! dependencies instead of one per file): the simulator as a user runs it, and
//! every drill.

mod drills;
mod lifecycle;
