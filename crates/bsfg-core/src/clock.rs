//! Wall-clock time as the contract's wire fields carry it (`*_unix_ms`).
//!
//! The one read of the outside world in this crate: every binary stamps
//! times the same way, and a clock before 1970 reads as 0 instead of
//! panicking.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Seconds since the Unix epoch, now.
pub fn unix_seconds() -> i64 {
    unix_ms() / 1000
}

#[cfg(test)]
mod tests {
    #[test]
    fn seconds_and_milliseconds_agree_and_are_after_2025() {
        let (ms, s) = (super::unix_ms(), super::unix_seconds());
        assert!(ms > 1_735_689_600_000, "{ms}");
        assert!((s - ms / 1000).abs() <= 1, "{s} vs {ms}");
    }
}
