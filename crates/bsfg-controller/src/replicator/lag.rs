//! How far behind a peer zone this zone may be, from what the replicator
//! last learned (no I/O: the caller passes the time, Unix ms by our clock).
//!
//! A page tells, once stored here, the age of its newest fact; a round that
//! finds nothing new, that nothing waits. Between rounds nothing is known:
//! while none completes (the link is down, the peer does not answer, a page
//! takes long to store), facts may wait at the peer unseen, so the lag is
//! at least the time since the last round completed. Without that, a
//! partition left the last value (0 when caught up) in place for as long as
//! it lasted, and `BsfgReplicationLag` could not fire on it.

use super::page::lag_seconds;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    /// When the last round completed (or the replicator started, or was
    /// paused).
    since_ms: i64,
    /// What that round measured, seconds.
    measured: f64,
}

impl Lag {
    /// A replicator starting at `now_ms`: nothing learned yet, so from now
    /// on the time without a completed round counts (a peer unreachable from
    /// the start lags too).
    pub fn start(now_ms: i64) -> Lag {
        Lag {
            since_ms: now_ms,
            measured: 0.0,
        }
    }

    /// A page stored here at `stored_ms` whose newest fact the peer stored at
    /// `newest_stored_at_ms` (the peer's clock).
    pub fn arrived(&mut self, stored_ms: i64, newest_stored_at_ms: i64) {
        self.since_ms = stored_ms;
        self.measured = lag_seconds(stored_ms, newest_stored_at_ms);
    }

    /// A round at `now_ms` found nothing waiting at the peer.
    pub fn caught_up(&mut self, now_ms: i64) {
        self.since_ms = now_ms;
        self.measured = 0.0;
    }

    /// Not serving at `now_ms`: another controller pulls, this one owes
    /// nothing, and counts afresh once it serves again.
    pub fn paused(&mut self, now_ms: i64) {
        self.caught_up(now_ms);
    }

    /// The lag at `now_ms`, seconds: what the last round measured, or the
    /// time since it completed if that is longer. Never negative.
    pub fn seconds(&self, now_ms: i64) -> f64 {
        self.measured.max(lag_seconds(now_ms, self.since_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_makes_the_lag_grow_until_a_round_completes() {
        let mut l = Lag::start(0);
        l.caught_up(1_000);
        assert_eq!(l.seconds(1_020), 0.02);
        // The link goes down: no round completes, the lag grows.
        assert_eq!(l.seconds(61_000), 60.0);
        // Healed: the drain's first page holds facts stored during the cut.
        l.arrived(62_000, 10_000);
        assert_eq!(l.seconds(62_000), 52.0);
        // Caught up again.
        l.caught_up(62_500);
        assert_eq!(l.seconds(62_510), 0.01);
    }

    #[test]
    fn a_late_page_reads_its_measured_lag_until_the_next_round() {
        let mut l = Lag::start(0);
        l.arrived(5_000, 2_000);
        assert_eq!(l.seconds(5_000), 3.0);
        assert_eq!(l.seconds(6_000), 3.0);
        assert_eq!(l.seconds(9_000), 4.0);
    }

    #[test]
    fn an_unreachable_peer_lags_from_the_start_and_a_pause_resets() {
        let mut l = Lag::start(1_000);
        assert_eq!(l.seconds(31_000), 30.0);
        l.paused(31_000);
        assert_eq!(l.seconds(31_000), 0.0);
    }

    #[test]
    fn clocks_that_disagree_never_make_it_negative() {
        let mut l = Lag::start(10_000);
        // The peer's clock ahead of ours; our clock stepped back.
        l.arrived(10_000, 99_000);
        assert_eq!(l.seconds(9_000), 0.0);
        l.arrived(10_000, i64::MIN);
        assert!(l.seconds(i64::MIN).is_finite());
    }
}
