//! The management-plane contract: what the daemons serve to operators,
//! `bsfgctl`, the zone simulator and the benchmarks, declared once. The
//! daemons serialise these types; every reader deserialises the same ones.
//!
//! | module | what |
//! |---|---|
//! | [`agent`] | the gate agent's `/status`: role, VRRP state, gates and verdicts, lease, host facts |
//! | [`controller`] | the controller's `/readyz` and `/status`: serving state, lease, replicators |
//! | [`metrics`] | the `/metrics` families of both daemons (what `ops/` may query) |
//! | [`exit`] | the controller's exit statuses, as its supervisor reads them |
//! | [`nats`] | the parts of nats-server's `/jsz` and `/varz` that BSFG reads |
//! | [`http`] | the one HTTP client for all of these (typed refused / timeout errors) |
//!
//! Compatibility: documents grow, fields are never renamed. Unknown fields
//! are ignored; a field added later is an `Option` or `#[serde(default)]`,
//! so a newer reader still parses an older daemon's document.

pub mod agent;
pub mod controller;
pub mod exit;
pub mod http;
pub mod metrics;
pub mod nats;

pub use agent::{AgentStatus, GateId, ProcessState, Role, Verdict, VrrpState};
pub use controller::{ControllerStatus, PeerState, Readyz, ServingState};
pub use exit::ControllerExit;
