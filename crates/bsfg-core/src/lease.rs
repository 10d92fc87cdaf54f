//! The zone controller lease: one writer per zone, decided by the JetStream quorum.
//!
//! Keepalived can elect two masters (a one-way loss of VRRP adverts); both
//! hosts then hold the VIP and see quorum. The lease closes that hole: one key
//! in a replicated KV bucket, written only by compare-and-swap on its revision.
//!
//! ## Timing argument
//!
//! No wall clocks are compared across hosts. Each side measures on its own
//! monotonic clock:
//!
//! - The **holder** counts its validity from the moment it *sent* its last
//!   successful write (acquire or renew). It stops serving (fences) once
//!   `ttl - safety_margin` has passed since then without another success.
//! - A **contender** counts from the moment it *first observed* the current
//!   revision. It may take the lease (CAS on that revision) only after the
//!   revision has stayed unchanged for a full `ttl`.
//!
//! A revision is observed only after it was written, and written only after it
//! was sent, so the contender's start is never earlier than the holder's. The
//! holder therefore fences at least `safety_margin` (on the holder's clock)
//! before the contender can act, provided the two clocks' rates differ by less
//! than `safety_margin / (2 * ttl)` (12 % with the defaults, 1 s and 250 ms;
//! the zone library keeps that ratio when it picks 500 ms and 125 ms for
//! zones with sub-second VRRP adverts, so the TTL ends before the VIP has
//! moved). Renewals every `renew_interval` (200 ms; 100 ms with the 500 ms
//! TTL) give several attempts per TTL, so a single lost or slow renewal does
//! not fence a healthy holder.
//!
//! If JetStream itself stalls (no quorum, leader election), renewals fail and
//! the holder fences after `ttl - safety_margin`: a zone whose substrate cannot
//! commit writes cannot serve appends anyway, and no contender can take the
//! lease either, because taking it is a write too. When JetStream returns, the
//! lease is taken by whoever is promoted.
//!
//! Demotion releases the lease at once (delete with the expected revision), so
//! a planned switchover does not wait for the TTL.
//!
//! This module is the pure state machine; `bsfg_store::lease` does the KV I/O.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What is stored under the lease key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// Host holding the lease (`alpha`, `beta`).
    pub host: String,
    /// The holding controller process's instance id (random per start).
    pub instance: String,
    /// The TTL the holder works with, in milliseconds.
    pub ttl_ms: u64,
    /// Wall-clock time of the write, for operators only (never used for decisions).
    pub written_at_unix_ms: i64,
}

/// A read of the lease key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// No holder. `revision` is the delete marker's, if the key existed before.
    Vacant { revision: Option<u64> },
    /// Somebody holds (or held) the lease at this revision.
    Held { record: LeaseRecord, revision: u64 },
}

/// Lease timing, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    pub ttl: Duration,
    pub renew_interval: Duration,
    pub safety_margin: Duration,
}

/// What the I/O side should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// Write our record: `create` if `expected_revision` is `None`, else CAS on it.
    Acquire { expected_revision: Option<u64> },
    /// CAS our record on our own revision.
    Renew { revision: u64 },
    /// Someone else holds a live lease; try again later.
    Wait { holder: String, remaining: Duration },
    /// We hold the lease and nothing needs doing yet.
    Hold,
}

/// The holder's or contender's view of the lease.
#[derive(Debug, Clone)]
pub struct LeaseState {
    host: String,
    instance: String,
    timing: LeaseTiming,
    /// Last revision observed, with the local time it was first seen.
    seen: Option<(Option<u64>, Option<LeaseRecord>, Duration)>,
    /// Our own hold: revision and the send time of the write that produced it.
    held: Option<(u64, Duration)>,
    /// Send time of the oldest write whose outcome we do not know.
    unacknowledged_since: Option<Duration>,
    /// The highest revision a write of ours was based on: a write lands as a
    /// newer revision, so our own record at or below it is an old hold, not
    /// the answer to a write in flight.
    based_on: u64,
}

impl LeaseState {
    pub fn new(
        host: impl Into<String>,
        instance: impl Into<String>,
        timing: LeaseTiming,
    ) -> LeaseState {
        LeaseState {
            host: host.into(),
            instance: instance.into(),
            timing,
            seen: None,
            held: None,
            unacknowledged_since: None,
            based_on: 0,
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The record we write.
    pub fn record(&self, written_at_unix_ms: i64) -> LeaseRecord {
        LeaseRecord {
            host: self.host.clone(),
            instance: self.instance.clone(),
            ttl_ms: self.timing.ttl.as_millis() as u64,
            written_at_unix_ms,
        }
    }

    fn is_mine(&self, record: &LeaseRecord) -> bool {
        record.instance == self.instance && record.host == self.host
    }

    /// Feeds a read of the key, taken at local monotonic time `now`.
    pub fn observe(&mut self, now: Duration, obs: Observation) {
        let (revision, record) = match obs {
            Observation::Vacant { revision } => (revision, None),
            Observation::Held { record, revision } => (Some(revision), Some(record)),
        };
        let changed = self.seen.as_ref().is_none_or(|(r, _, _)| *r != revision);
        if changed {
            self.seen = Some((revision, record.clone(), now));
        }
        match (&record, revision) {
            // Our own write (perhaps one whose acknowledgement was lost): adopt its revision,
            // dated conservatively from the oldest write we have not had confirmed.
            (Some(rec), Some(rev)) if self.is_mine(rec) => {
                if self.held.is_none_or(|(r, _)| r != rev)
                    && rev > self.based_on
                    && let Some(since) = self.unacknowledged_since.or(self.held.map(|(_, t)| t))
                {
                    self.held = Some((rev, since));
                }
            }
            // Someone else's record, or vacant: we do not hold it, whatever we thought.
            // Our writes are creates or CAS on revisions up to `based_on`: once the
            // key is past that, none of them can land. Before that, a write may
            // still land after this read, and its send time must date the hold.
            _ => {
                self.held = None;
                if revision.unwrap_or(0) > self.based_on {
                    self.unacknowledged_since = None;
                }
            }
        }
    }

    /// Next step at local time `now`.
    pub fn next_action(&mut self, now: Duration) -> LeaseAction {
        if let Some((revision, sent_at)) = self.held {
            if now.saturating_sub(sent_at) >= self.fence_after() {
                // Too late to renew safely: give it up; a contender may be taking it.
                self.held = None;
            } else if now.saturating_sub(sent_at) >= self.timing.renew_interval {
                self.based_on = self.based_on.max(revision);
                return LeaseAction::Renew { revision };
            } else {
                return LeaseAction::Hold;
            }
        }
        let action = match &self.seen {
            None => LeaseAction::Acquire {
                expected_revision: None,
            },
            Some((revision, None, _)) => LeaseAction::Acquire {
                expected_revision: *revision,
            },
            Some((revision, Some(record), since)) => {
                let age = now.saturating_sub(*since);
                if age >= self.timing.ttl {
                    LeaseAction::Acquire {
                        expected_revision: *revision,
                    }
                } else {
                    LeaseAction::Wait {
                        holder: record.host.clone(),
                        remaining: self.timing.ttl - age,
                    }
                }
            }
        };
        if let LeaseAction::Acquire {
            expected_revision: Some(r),
        } = action
        {
            self.based_on = self.based_on.max(r);
        }
        action
    }

    /// A write is about to be sent at `sent_at`.
    pub fn write_sent(&mut self, sent_at: Duration) {
        self.unacknowledged_since.get_or_insert(sent_at);
    }

    /// The write sent at `sent_at` succeeded with `revision`.
    pub fn write_succeeded(&mut self, sent_at: Duration, revision: u64) {
        self.held = Some((revision, sent_at));
        self.unacknowledged_since = None;
        self.seen = Some((Some(revision), Some(self.record(0)), sent_at));
    }

    /// The write was refused (revision moved). Re-read before deciding: the
    /// revision may have moved because an earlier write of ours landed after
    /// its acknowledgement was lost, which the next `observe` adopts.
    pub fn write_conflicted(&mut self) {
        self.held = None;
        self.seen = None;
    }

    /// The write's outcome is unknown (timeout, connection loss): keep what we
    /// had; `unacknowledged_since` keeps the conservative start.
    pub fn write_failed(&mut self) {}

    /// True while requests may be served: we hold the lease and are inside `ttl - safety_margin`.
    pub fn is_serving(&self, now: Duration) -> bool {
        self.held
            .is_some_and(|(_, sent_at)| now.saturating_sub(sent_at) < self.fence_after())
    }

    /// Local monotonic deadline after which we must stop serving, if we hold the lease.
    pub fn fence_deadline(&self) -> Option<Duration> {
        self.held.map(|(_, sent_at)| sent_at + self.fence_after())
    }

    /// The host of the last record observed, if it is another controller's
    /// (another host, or another instance on this host): the lease went to
    /// someone else. A holder that sees this has lost the lease for good and
    /// stops (it exits; only its agent may start a controller again).
    pub fn taken_by_other(&self) -> Option<&str> {
        match &self.seen {
            Some((_, Some(record), _)) if !self.is_mine(record) => Some(&record.host),
            _ => None,
        }
    }

    /// Revision to delete on release, if we hold the lease.
    pub fn release(&mut self) -> Option<u64> {
        self.held.take().map(|(rev, _)| rev)
    }

    fn fence_after(&self) -> Duration {
        self.timing.ttl - self.timing.safety_margin
    }

    /// What an observer (the gate agent) reports: holder and remaining time.
    pub fn view(&self, now: Duration) -> LeaseView {
        match &self.seen {
            None => LeaseView {
                holder: None,
                revision: None,
                remaining: Duration::ZERO,
            },
            Some((revision, record, since)) => LeaseView {
                holder: record.as_ref().map(|r| r.host.clone()),
                revision: *revision,
                remaining: if record.is_some() {
                    self.timing.ttl.saturating_sub(now.saturating_sub(*since))
                } else {
                    Duration::ZERO
                },
            },
        }
    }
}

/// An observer's summary of the lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseView {
    /// Host holding the lease, if any.
    pub holder: Option<String>,
    pub revision: Option<u64>,
    /// Time until a contender may take the lease, measured locally.
    #[serde(with = "humantime_serde")]
    pub remaining: Duration,
}

impl LeaseView {
    /// Gate 7 for `host`: the lease is free, expired, or already ours.
    pub fn permits(&self, host: &str) -> Result<(), String> {
        match &self.holder {
            Some(h) if h != host && !self.remaining.is_zero() => Err(format!(
                "lease held by {h} ({} ms left)",
                self.remaining.as_millis()
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: LeaseTiming = LeaseTiming {
        ttl: Duration::from_millis(1000),
        renew_interval: Duration::from_millis(200),
        safety_margin: Duration::from_millis(250),
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn held_by(state: &LeaseState, revision: u64) -> Observation {
        Observation::Held {
            record: state.record(0),
            revision,
        }
    }

    #[test]
    fn acquire_on_empty_then_renew_on_schedule() {
        let mut a = LeaseState::new("alpha", "a1", T);
        a.observe(ms(0), Observation::Vacant { revision: None });
        assert_eq!(
            a.next_action(ms(0)),
            LeaseAction::Acquire {
                expected_revision: None
            }
        );
        a.write_sent(ms(0));
        a.write_succeeded(ms(0), 1);
        assert!(a.is_serving(ms(10)));
        assert_eq!(a.next_action(ms(100)), LeaseAction::Hold);
        assert_eq!(a.next_action(ms(200)), LeaseAction::Renew { revision: 1 });
        a.write_sent(ms(200));
        a.write_succeeded(ms(200), 2);
        assert_eq!(a.fence_deadline(), Some(ms(950)));
    }

    #[test]
    fn acquire_after_delete_uses_the_delete_marker_revision() {
        let mut a = LeaseState::new("alpha", "a1", T);
        a.observe(ms(0), Observation::Vacant { revision: Some(9) });
        assert_eq!(
            a.next_action(ms(0)),
            LeaseAction::Acquire {
                expected_revision: Some(9)
            }
        );
    }

    #[test]
    fn contender_waits_a_full_ttl_from_its_own_observation() {
        let alpha = LeaseState::new("alpha", "a1", T);
        let mut beta = LeaseState::new("beta", "b1", T);
        beta.observe(ms(5000), held_by(&alpha, 7));
        assert_eq!(
            beta.next_action(ms(5999)),
            LeaseAction::Wait {
                holder: "alpha".into(),
                remaining: ms(1)
            }
        );
        // Same revision observed again: the clock does not restart.
        beta.observe(ms(5500), held_by(&alpha, 7));
        assert_eq!(
            beta.next_action(ms(6000)),
            LeaseAction::Acquire {
                expected_revision: Some(7)
            }
        );
        // A renewal (new revision) restarts the wait.
        beta.observe(ms(6000), held_by(&alpha, 8));
        assert!(matches!(
            beta.next_action(ms(6500)),
            LeaseAction::Wait { .. }
        ));
        assert_eq!(
            beta.view(ms(6500)).permits("beta").unwrap_err(),
            "lease held by alpha (500 ms left)"
        );
    }

    #[test]
    fn holder_fences_strictly_before_a_contender_can_acquire() {
        // Alpha renews at t=1000 (sent), the write lands and beta observes it at t=1003.
        let mut alpha = LeaseState::new("alpha", "a1", T);
        alpha.write_sent(ms(1000));
        alpha.write_succeeded(ms(1000), 3);
        let mut beta = LeaseState::new("beta", "b1", T);
        beta.observe(ms(1003), held_by(&alpha, 3));
        // Alpha freezes (SIGSTOP): no more renewals. Find the first instants each side acts.
        let fence = (1000..3000)
            .map(ms)
            .find(|t| !alpha.is_serving(*t))
            .unwrap();
        let take = (1000..3000)
            .map(ms)
            .find(|t| matches!(beta.clone().next_action(*t), LeaseAction::Acquire { .. }))
            .unwrap();
        assert_eq!(fence, ms(1750));
        assert_eq!(take, ms(2003));
        assert!(fence + T.safety_margin <= take);
    }

    #[test]
    fn resumed_holder_is_fenced_and_loses_on_cas_conflict() {
        let mut alpha = LeaseState::new("alpha", "a1", T);
        alpha.write_sent(ms(0));
        alpha.write_succeeded(ms(0), 3);
        // Frozen for 5 s; on resume it must not serve, and the renew it tries conflicts.
        assert!(!alpha.is_serving(ms(5000)));
        let action = alpha.next_action(ms(5000));
        assert_eq!(
            action,
            LeaseAction::Acquire {
                expected_revision: Some(3)
            }
        );
        alpha.write_sent(ms(5000));
        alpha.write_conflicted();
        assert!(!alpha.is_serving(ms(5001)));
        let beta = LeaseState::new("beta", "b1", T);
        alpha.observe(ms(5002), held_by(&beta, 4));
        assert!(matches!(
            alpha.next_action(ms(5003)),
            LeaseAction::Wait { .. }
        ));
    }

    #[test]
    fn a_resumed_holder_reading_its_own_old_record_does_not_serve() {
        // Found by the lease timeline model (tests/lease_model.rs): after a
        // freeze the holder re-acquires on its old revision and, before the
        // answer, reads the key. Its own record there is the lapsed hold, not
        // the write in flight; adopting it would serve next to the contender
        // that takes the lease on that same revision.
        let mut alpha = LeaseState::new("alpha", "a1", T);
        alpha.write_sent(ms(0));
        alpha.write_succeeded(ms(0), 3);
        assert_eq!(
            alpha.next_action(ms(1002)),
            LeaseAction::Acquire {
                expected_revision: Some(3)
            }
        );
        alpha.write_sent(ms(1002));
        let own = held_by(&alpha, 3);
        alpha.observe(ms(1002), own);
        assert!(!alpha.is_serving(ms(1003)));
        // Its write landing as revision 4 (acknowledgement lost) is adopted.
        let own = held_by(&alpha, 4);
        alpha.observe(ms(1010), own);
        assert!(alpha.is_serving(ms(1011)));
        assert_eq!(
            alpha.fence_deadline(),
            Some(ms(1002) + T.ttl - T.safety_margin)
        );
    }

    #[test]
    fn a_write_in_flight_during_a_vacant_read_still_dates_the_hold() {
        // Found by the lease timeline model: the create is read as vacant
        // before it lands (acknowledgement lost). A later conflicting create
        // must not date the landed one: the hold counts from the first send.
        let mut a = LeaseState::new("alpha", "a1", T);
        assert_eq!(
            a.next_action(ms(0)),
            LeaseAction::Acquire {
                expected_revision: None
            }
        );
        a.write_sent(ms(0));
        a.observe(ms(0), Observation::Vacant { revision: None });
        a.write_failed();
        a.write_sent(ms(1001));
        a.write_conflicted();
        let own = held_by(&a, 1);
        a.observe(ms(1001), own);
        assert!(!a.is_serving(ms(1001)), "a hold from t=0 lapsed at 750 ms");
    }

    #[test]
    fn lost_acknowledgement_then_conflict_adopts_our_own_landed_write() {
        let mut a = LeaseState::new("alpha", "a1", T);
        a.write_sent(ms(0));
        a.write_succeeded(ms(0), 1);
        // Renewal sent at 200 times out; the retry at 400 (still on revision 1)
        // conflicts because the 200 one landed as revision 2.
        a.write_sent(ms(200));
        a.write_failed();
        a.write_sent(ms(400));
        a.write_conflicted();
        assert!(
            !a.is_serving(ms(401)),
            "not serving until the re-read settles it"
        );
        let own = a.record(0);
        a.observe(
            ms(410),
            Observation::Held {
                record: own,
                revision: 2,
            },
        );
        // Adopted, dated from the oldest unacknowledged send (200), not the read.
        assert!(a.is_serving(ms(410)));
        assert_eq!(a.fence_deadline(), Some(ms(950)));
        assert_eq!(a.next_action(ms(420)), LeaseAction::Renew { revision: 2 });
    }

    #[test]
    fn conflict_with_a_competitor_clears_everything() {
        let mut a = LeaseState::new("alpha", "a1", T);
        a.write_sent(ms(0));
        a.write_succeeded(ms(0), 1);
        a.write_sent(ms(200));
        a.write_conflicted();
        let b = LeaseState::new("beta", "b1", T);
        a.observe(ms(210), held_by(&b, 2));
        assert!(!a.is_serving(ms(210)));
        // Our own record showing up later (impossible after beta's write, but
        // defensive) is not adopted: nothing of ours is outstanding any more.
        let own = a.record(0);
        a.observe(
            ms(220),
            Observation::Held {
                record: own,
                revision: 3,
            },
        );
        assert!(!a.is_serving(ms(220)));
    }

    #[test]
    fn own_record_with_unknown_outcome_is_adopted_from_the_oldest_send() {
        let mut a = LeaseState::new("alpha", "a1", T);
        a.write_sent(ms(0));
        a.write_succeeded(ms(0), 1);
        a.write_sent(ms(200));
        a.write_failed();
        let own = a.record(0);
        a.observe(
            ms(300),
            Observation::Held {
                record: own,
                revision: 2,
            },
        );
        assert_eq!(a.fence_deadline(), Some(ms(200) + ms(750)));
        assert_eq!(a.next_action(ms(400)), LeaseAction::Renew { revision: 2 });
    }

    #[test]
    fn release_hands_back_the_revision_once() {
        let mut a = LeaseState::new("alpha", "a1", T);
        a.write_sent(ms(0));
        a.write_succeeded(ms(0), 5);
        assert_eq!(a.release(), Some(5));
        assert_eq!(a.release(), None);
        assert!(!a.is_serving(ms(1)));
    }

    #[test]
    fn someone_elses_record_drops_our_hold() {
        let mut a = LeaseState::new("alpha", "a1", T);
        a.write_sent(ms(0));
        a.write_succeeded(ms(0), 5);
        let b = LeaseState::new("beta", "b1", T);
        a.observe(ms(10), held_by(&b, 6));
        assert!(!a.is_serving(ms(11)));
    }

    #[test]
    fn a_record_of_another_controller_says_who_took_the_lease() {
        let mut a = LeaseState::new("alpha", "a1", T);
        assert_eq!(a.taken_by_other(), None);
        a.write_sent(ms(0));
        a.write_succeeded(ms(0), 1);
        assert_eq!(a.taken_by_other(), None, "our own write");
        a.observe(ms(10), Observation::Vacant { revision: Some(2) });
        assert_eq!(a.taken_by_other(), None, "released, not taken");
        let restarted = LeaseState::new("alpha", "a2", T);
        a.observe(ms(20), held_by(&restarted, 3));
        assert_eq!(
            a.taken_by_other(),
            Some("alpha"),
            "another instance on this host"
        );
        let b = LeaseState::new("beta", "b1", T);
        a.observe(ms(30), held_by(&b, 4));
        assert_eq!(a.taken_by_other(), Some("beta"));
    }

    #[test]
    fn vacant_lease_permits_everyone() {
        let mut obs = LeaseState::new("beta", "agent", T);
        obs.observe(ms(0), Observation::Vacant { revision: Some(3) });
        obs.view(ms(0)).permits("beta").unwrap();
    }
}
