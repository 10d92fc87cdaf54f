//! The promotion gates of contract section 7: pure functions from observed
//! facts (gathered by [`crate::probes`]) to a [`GateResult`] with a reason an
//! operator can act on. No I/O here, so every gate is tested directly.
//!
//! | # | gate | module |
//! |---|---|---|
//! | 1 | this host holds the VIP | [`vip`] |
//! | 2 | local JetStream answers | [`jetstream`] |
//! | 3 | JetStream quorum (meta leader known, majority of voters current) | [`quorum`] |
//! | 4 | artifact storage mounted and writable | [`artifacts`] |
//! | 5 | controller credentials present; certificate, intermediates and the trusted CA it chains to valid for at least the threshold | [`certificate`] |
//! | 6 | the controller reports ready (it bound the VIP) | [`controller`] |
//! | 7 | the zone lease permits this host | [`lease`] |
//!
//! Gates 2–5 are the host's *health*: they say whether this host could serve
//! at all. Gates 1 and 7 say whether it is *the* host that should. Gate 6 is
//! the outcome of a promotion. The host's time synchronisation
//! ([`time_sync`]) is reported beside them, and can be made part of gate 5.

pub mod artifacts;
pub mod certificate;
pub mod controller;
pub mod jetstream;
pub mod lease;
pub mod quorum;
pub mod time_sync;
pub mod vip;

use bsfg_mgmt::{GateId, Verdict};
use serde::{Deserialize, Serialize};

/// A gate's verdict and why. The reason is filled for passes too
/// ("10.0.0.100 on eth0"), so status shows what was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateResult {
    pub verdict: Verdict,
    pub reason: String,
}

impl GateResult {
    pub fn pass(reason: impl Into<String>) -> GateResult {
        GateResult {
            verdict: Verdict::Pass,
            reason: reason.into(),
        }
    }

    pub fn warn(reason: impl Into<String>) -> GateResult {
        GateResult {
            verdict: Verdict::Warn,
            reason: reason.into(),
        }
    }

    pub fn fail(reason: impl Into<String>) -> GateResult {
        GateResult {
            verdict: Verdict::Fail,
            reason: reason.into(),
        }
    }

    /// Pass or warn.
    pub fn passes(&self) -> bool {
        self.verdict.passes()
    }
}

/// All seven results of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateReport {
    pub vip: GateResult,
    pub jetstream: GateResult,
    pub quorum: GateResult,
    pub artifacts: GateResult,
    pub certificate: GateResult,
    pub controller_ready: GateResult,
    pub lease: GateResult,
    /// Gate 7 failed because another host holds a live lease (not merely
    /// because the lease could not be read).
    pub lease_held_elsewhere: bool,
    /// Gate 4 failed only because its write probe has not answered in time:
    /// the host is slow or the storage hangs, not yet known which.
    pub artifacts_unanswered: bool,
}

impl GateReport {
    pub fn get(&self, id: GateId) -> &GateResult {
        match id {
            GateId::Vip => &self.vip,
            GateId::Jetstream => &self.jetstream,
            GateId::Quorum => &self.quorum,
            GateId::Artifacts => &self.artifacts,
            GateId::Certificate => &self.certificate,
            GateId::ControllerReady => &self.controller_ready,
            GateId::Lease => &self.lease,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (GateId, &GateResult)> {
        GateId::ALL.into_iter().map(|id| (id, self.get(id)))
    }

    /// Health gates (2–5) that fail, in order.
    pub fn failing_health(&self) -> Vec<GateId> {
        GateId::HEALTH
            .into_iter()
            .filter(|id| !self.get(*id).passes())
            .collect()
    }

    /// "quorum: 1 of 3 voters current; artifacts: /artifacts is not a mount point"
    pub fn describe(&self, ids: &[GateId]) -> String {
        ids.iter()
            .map(|id| format!("{id}: {}", self.get(*id).reason))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A report in which every gate passes (tests start from it).
    pub fn all_passing() -> GateReport {
        GateReport {
            vip: GateResult::pass("vip held"),
            jetstream: GateResult::pass("jetstream answers"),
            quorum: GateResult::pass("3 of 3 voters current"),
            artifacts: GateResult::pass("mounted and writable"),
            certificate: GateResult::pass("valid for 365 days"),
            controller_ready: GateResult::pass("ready"),
            lease: GateResult::pass("lease free"),
            lease_held_elsewhere: false,
            artifacts_unanswered: false,
        }
    }
}
