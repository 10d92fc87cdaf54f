//! `bsfg-zonesim`: a real Triad-HA zone on one Linux machine, and the
//! failure drills that prove contract section 8 with real daemons.
//!
//! | module | what |
//! |---|---|
//! | [`container`] | the systemd mode: hosts as containers booting systemd with the appliance's units |
//! | [`zone`] | the zone library's output, files, certificates, a running instance |
//! | [`netns`] | namespaces, the switch, veth pairs, nftables faults, runtimes inside a namespace |
//! | [`processes`] | daemons started in a namespace, named by pid and start time |
//! | [`state`] | the state file and teardown (also after a crash of the simulator) |
//! | [`observe`] | VIP, `/readyz`, agent and controller `/status`, JetStream placement |
//! | [`load`] | the producer (appends through the VIP, retries with the same id) and the read-back |
//! | [`drills`] | the drills, the checker, metrics and outcome evaluation |
//! | [`report`] | drill results as data, summaries and tables |
//!
//! See docs/zone-simulator.md.

pub mod container;
pub mod drills;
pub mod load;
pub mod netns;
pub mod observe;
pub mod processes;
pub mod report;
pub mod state;
pub mod zone;
