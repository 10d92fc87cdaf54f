//! Pacing and reporting repeated failures.
//!
//! - [`Backoff`]: exponential delays with jitter, so that the processes of a
//!   zone retrying the same substrate after the same fault (an election, a
//!   partition healing) do not hit it in lockstep.
//! - [`RepeatedWarning`]: a warning that may fire many times a second (a
//!   lease write failing on every tick during an outage) is logged at most
//!   once per interval, with the number of occurrences since the last line.
//!
//! Both are pure: the caller passes the random number and the clock reading.

use std::time::Duration;

/// Exponential backoff with "equal jitter": the n-th delay is drawn from
/// `[d/2, d)` with `d = min(first · 2ⁿ, max)`. Never zero, never above `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        let first = first.max(Duration::from_millis(1));
        Backoff {
            first,
            max: max.max(first),
            current: first,
        }
    }

    /// The next delay; `unit` is a random number in `[0, 1)`.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.max);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        d / 2 + d.mul_f64(unit / 2.0)
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.current = self.first;
    }
}

/// A warning logged at most once per `every`, counting what it swallowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatedWarning {
    every: Duration,
    last_logged: Option<Duration>,
    suppressed: u64,
}

impl RepeatedWarning {
    pub const fn new(every: Duration) -> RepeatedWarning {
        RepeatedWarning {
            every,
            last_logged: None,
            suppressed: 0,
        }
    }

    /// One occurrence at monotonic time `now`. `Some(n)`: log it now, saying
    /// that it happened `n` times since the last line (1 = only this one).
    /// `None`: counted, not logged.
    pub fn occurred(&mut self, now: Duration) -> Option<u64> {
        self.suppressed += 1;
        match self.last_logged {
            Some(t) if now.saturating_sub(t) < self.every => None,
            _ => {
                self.last_logged = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    /// Occurrences counted since the last logged line (for a closing
    /// "recovered after N more failures" line).
    pub fn pending(&self) -> u64 {
        self.suppressed
    }

    /// The condition is over: the next occurrence is logged at once, and
    /// returns how many went unlogged before.
    pub fn clear(&mut self) -> u64 {
        self.last_logged = None;
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let mut b = Backoff::new(ms(100), ms(1000));
        assert_eq!(b.next_delay(0.0), ms(50));
        assert_eq!(b.next_delay(0.0), ms(100));
        let third = b.next_delay(0.999);
        assert!(third >= ms(200) && third < ms(400), "{third:?}");
        for _ in 0..10 {
            let d = b.next_delay(0.5);
            assert!(d >= ms(500) && d <= ms(1000), "{d:?}");
        }
        b.reset();
        assert_eq!(b.next_delay(1.0), ms(100));
        assert_eq!(
            Backoff::new(ms(0), ms(0)).next_delay(f64::NAN),
            Duration::from_micros(500)
        );
    }

    #[test]
    fn jitter_spreads_two_retriers() {
        let (mut a, mut b) = (
            Backoff::new(ms(100), ms(800)),
            Backoff::new(ms(100), ms(800)),
        );
        assert_ne!(a.next_delay(0.1), b.next_delay(0.9));
    }

    #[test]
    fn a_repeated_warning_is_logged_once_per_interval_with_a_count() {
        let mut w = RepeatedWarning::new(ms(1000));
        assert_eq!(w.occurred(ms(0)), Some(1));
        // 40 a second, as a lease holder's failed writes in an outage.
        let logged: Vec<u64> = (1..=80).filter_map(|i| w.occurred(ms(i * 25))).collect();
        assert_eq!(logged, vec![40, 40]);
        assert_eq!(w.pending(), 0);
        assert_eq!(w.occurred(ms(2010)), None);
        assert_eq!(w.clear(), 1);
        assert_eq!(
            w.occurred(ms(2020)),
            Some(1),
            "logged at once after clearing"
        );
    }
}
