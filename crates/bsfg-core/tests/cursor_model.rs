//! Cursor arithmetic against a naive model: a set of confirmed offsets.

use bsfg_core::Reason;
use bsfg_core::cursor::{Confirmation, ContiguousFrontier, StartPosition, decide_confirmation};
use proptest::prelude::*;
use std::collections::BTreeSet;

proptest! {
    /// A run of confirmations: the cursor only moves forward, never past
    /// what was delivered, and ends at the highest accepted offset.
    #[test]
    fn confirmations_match_a_max_of_accepted_offsets(
        start in 0u64..50,
        steps in prop::collection::vec((0u64..120, prop::option::of(0u64..120)), 0..60),
    ) {
        let mut cursor = start;
        let mut model = start;
        for (offset, delivered) in steps {
            let before = cursor;
            match decide_confirmation(cursor, offset, delivered) {
                Ok(Confirmation::Unchanged(c)) => {
                    prop_assert!(offset <= before);
                    prop_assert_eq!(c, before);
                }
                Ok(Confirmation::Advance(c)) => {
                    prop_assert!(offset > before);
                    prop_assert!(delivered.is_none_or(|d| offset <= d));
                    prop_assert_eq!(c, offset);
                    cursor = c;
                }
                Err(e) => {
                    prop_assert_eq!(e.reason, Reason::OffsetNotDelivered);
                    prop_assert!(offset > before && delivered.is_some_and(|d| offset > d));
                }
            }
            // Model: accepted iff at or below the cursor (no-op) or at most delivered.
            if offset > model && delivered.is_none_or(|d| offset <= d) {
                model = offset;
            }
            prop_assert_eq!(cursor, model);
            prop_assert!(cursor >= before);
        }
    }

    /// The frontier is the highest offset with every registered offset at or
    /// below it completed, whatever order completions arrive in.
    #[test]
    fn frontier_is_the_highest_contiguously_completed_offset(
        confirmed in 0u64..20,
        gaps in prop::collection::vec(1u64..4, 0..40),
        completions in prop::collection::vec(any::<prop::sample::Index>(), 0..80),
    ) {
        let mut offsets = Vec::new();
        let mut next = confirmed;
        for g in gaps {
            next += g;
            offsets.push(next);
        }
        let mut f = ContiguousFrontier::new(confirmed);
        for o in &offsets {
            f.begin(*o);
        }
        let mut done = BTreeSet::new();
        for i in completions {
            if offsets.is_empty() {
                break;
            }
            let o = offsets[i.index(offsets.len())];
            let moved = f.complete(o);
            done.insert(o);
            let model = offsets
                .iter()
                .take_while(|o| done.contains(o))
                .last()
                .copied()
                .unwrap_or(confirmed);
            prop_assert_eq!(f.frontier(), model);
            prop_assert_eq!(f.pending(), offsets.len() - done.len());
            if let Some(m) = moved {
                prop_assert_eq!(m, model);
            }
        }
    }

    #[test]
    fn start_positions_never_skip_the_requested_offset(last in any::<u64>(), n in any::<u64>()) {
        prop_assert_eq!(StartPosition::Earliest.initial_cursor(last), 0);
        prop_assert_eq!(StartPosition::Latest.initial_cursor(last), last);
        let c = StartPosition::Offset(n).initial_cursor(last);
        // The next fetch starts at cursor + 1: at n, or at 1 for n = 0.
        prop_assert_eq!(c + 1, n.max(1));
    }
}
