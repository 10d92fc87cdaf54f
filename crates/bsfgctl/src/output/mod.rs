//! Human output: aligned tables and short durations. JSON output is serde.

pub mod table;

pub use table::render as table;

/// `12d`, `5h`, `3m`, `40s`, `850ms` (negative: `-3d`).
pub fn short_duration_ms(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let a = ms.unsigned_abs();
    let s = if a >= 86_400_000 {
        format!("{}d", a / 86_400_000)
    } else if a >= 3_600_000 {
        format!("{}h", a / 3_600_000)
    } else if a >= 60_000 {
        format!("{}m", a / 60_000)
    } else if a >= 1000 {
        format!("{}s", a / 1000)
    } else {
        format!("{a}ms")
    };
    format!("{sign}{s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_durations_pick_the_largest_unit() {
        assert_eq!(short_duration_ms(40 * 86_400_000 + 5), "40d");
        assert_eq!(short_duration_ms(-2 * 86_400_000), "-2d");
        assert_eq!(short_duration_ms(7_200_000), "2h");
        assert_eq!(short_duration_ms(61_000), "1m");
        assert_eq!(short_duration_ms(1500), "1s");
        assert_eq!(short_duration_ms(850), "850ms");
    }
}
