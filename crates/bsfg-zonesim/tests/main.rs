//! The integration tests of `bsfg-zonesim`, one binary (one link of the
//! dependencies instead of one per file): the simulator as a user runs it,
//! every drill, and the files it writes from the zone library.

mod drills;
mod lifecycle;
mod monitoring_table;
mod prometheus;
mod rendered_files;
mod security;
mod systemd_drills;
mod systemd_unit_state;
mod time;
