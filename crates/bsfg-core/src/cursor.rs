//! Consumer cursor arithmetic.
//!
//! A cursor is the highest *contiguously* confirmed offset of a consumer:
//! everything at or below it has been processed by the consumer, and
//! `FetchFacts` continues at cursor + 1. Confirming offset `n` confirms every
//! delivered fact up to `n` (a cumulative acknowledgement), so the cursor only
//! moves forward and a repeated confirmation is harmless.
//!
//! A receiver that processes a page concurrently (the cross-zone replicator)
//! uses [`ContiguousFrontier`] to know which offset it may confirm: the highest
//! one below which nothing is still in flight.

use crate::error::{BsfgError, Reason};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Where a consumer starts the first time it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// From the oldest retained fact.
    #[default]
    Earliest,
    /// Only facts appended after the consumer was first set up.
    Latest,
    /// From this offset (inclusive).
    Offset(u64),
}

impl StartPosition {
    /// The cursor (last confirmed offset) a new consumer starts with.
    pub fn initial_cursor(self, last_offset_in_source: u64) -> u64 {
        match self {
            StartPosition::Earliest => 0,
            StartPosition::Latest => last_offset_in_source,
            StartPosition::Offset(n) => n.saturating_sub(1),
        }
    }
}

/// The outcome of a `ConfirmReceipt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The cursor moves to this offset.
    Advance(u64),
    /// Already confirmed; the cursor stays where it is.
    Unchanged(u64),
}

impl Confirmation {
    pub fn cursor(self) -> u64 {
        match self {
            Confirmation::Advance(c) | Confirmation::Unchanged(c) => c,
        }
    }
}

/// Decides a `ConfirmReceipt(offset)` against the current cursor and the
/// highest offset this controller has delivered to the consumer (if known).
///
/// `delivered` is `None` when this controller has not served the consumer yet
/// (it just took over); the caller must then check that `offset` exists in the
/// consumer's source before advancing.
pub fn decide_confirmation(
    cursor: u64,
    offset: u64,
    delivered: Option<u64>,
) -> Result<Confirmation, BsfgError> {
    if offset <= cursor {
        return Ok(Confirmation::Unchanged(cursor));
    }
    match delivered {
        Some(mark) if offset > mark => Err(Reason::OffsetNotDelivered.err(format!(
            "offset {offset} is beyond the last delivered offset {mark} (cursor {cursor}); fetch first"
        ))),
        _ => Ok(Confirmation::Advance(offset)),
    }
}

/// Tracks offsets in flight and yields the highest offset that may be confirmed.
#[derive(Debug, Default, Clone)]
pub struct ContiguousFrontier {
    confirmed: u64,
    in_flight: VecDeque<(u64, bool)>,
}

impl ContiguousFrontier {
    /// Starts above an already confirmed cursor.
    pub fn new(confirmed: u64) -> Self {
        ContiguousFrontier {
            confirmed,
            in_flight: VecDeque::new(),
        }
    }

    /// Registers an offset as in flight. Offsets must be registered in ascending order.
    pub fn begin(&mut self, offset: u64) {
        debug_assert!(
            self.in_flight.back().is_none_or(|(o, _)| *o < offset) && offset > self.confirmed
        );
        self.in_flight.push_back((offset, false));
    }

    /// Marks an offset as durably done; returns the new frontier if it moved.
    pub fn complete(&mut self, offset: u64) -> Option<u64> {
        if let Some(slot) = self.in_flight.iter_mut().find(|(o, _)| *o == offset) {
            slot.1 = true;
        }
        let before = self.confirmed;
        while let Some(&(o, true)) = self.in_flight.front() {
            self.confirmed = o;
            self.in_flight.pop_front();
        }
        (self.confirmed != before).then_some(self.confirmed)
    }

    /// The highest offset with nothing in flight at or below it.
    pub fn frontier(&self) -> u64 {
        self.confirmed
    }

    /// Offsets registered but not yet completed.
    pub fn pending(&self) -> usize {
        self.in_flight.iter().filter(|(_, done)| !done).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmation_is_monotonic_and_idempotent() {
        assert_eq!(
            decide_confirmation(10, 5, Some(20)).unwrap(),
            Confirmation::Unchanged(10)
        );
        assert_eq!(
            decide_confirmation(10, 10, Some(20)).unwrap(),
            Confirmation::Unchanged(10)
        );
        assert_eq!(
            decide_confirmation(10, 15, Some(20)).unwrap(),
            Confirmation::Advance(15)
        );
        assert_eq!(
            decide_confirmation(10, 20, Some(20)).unwrap(),
            Confirmation::Advance(20)
        );
    }

    #[test]
    fn confirming_beyond_delivery_is_refused() {
        let err = decide_confirmation(10, 21, Some(20)).unwrap_err();
        assert_eq!(err.reason, Reason::OffsetNotDelivered);
        // Unknown delivery (after a takeover): the caller checks existence instead.
        assert_eq!(
            decide_confirmation(10, 21, None).unwrap(),
            Confirmation::Advance(21)
        );
    }

    #[test]
    fn start_positions() {
        assert_eq!(StartPosition::Earliest.initial_cursor(99), 0);
        assert_eq!(StartPosition::Latest.initial_cursor(99), 99);
        assert_eq!(StartPosition::Offset(50).initial_cursor(99), 49);
        assert_eq!(StartPosition::Offset(0).initial_cursor(99), 0);
    }

    #[test]
    fn frontier_waits_for_the_lowest_offset() {
        let mut f = ContiguousFrontier::new(4);
        for o in [5, 7, 9, 12] {
            f.begin(o);
        }
        assert_eq!(f.complete(7), None);
        assert_eq!(f.complete(12), None);
        assert_eq!(f.frontier(), 4);
        assert_eq!(f.complete(5), Some(7));
        assert_eq!(f.pending(), 1);
        assert_eq!(f.complete(9), Some(12));
        assert_eq!(f.frontier(), 12);
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn frontier_ignores_unknown_and_repeated_completions() {
        let mut f = ContiguousFrontier::new(0);
        f.begin(1);
        assert_eq!(f.complete(3), None);
        assert_eq!(f.complete(1), Some(1));
        assert_eq!(f.complete(1), None);
    }
}
