//! Progress of long transfers on standard error: redrawn in place on a
//! terminal, a line every few seconds otherwise (journal, pipes).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const LINE_EVERY: Duration = Duration::from_secs(5);
const REDRAW_EVERY: Duration = Duration::from_millis(200);

pub struct Progress {
    what: String,
    tty: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(what: String) -> Progress {
        let now = Instant::now();
        Progress {
            what,
            tty: std::io::stderr().is_terminal(),
            started: now,
            last: now,
        }
    }

    /// `done` bytes of `total` (if known) are through.
    pub fn update(&mut self, done: u64, total: Option<u64>) {
        let every = if self.tty { REDRAW_EVERY } else { LINE_EVERY };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let line = line(&self.what, done, total, self.started.elapsed());
        let mut e = std::io::stderr().lock();
        let _ = if self.tty {
            write!(e, "\r\x1b[2K{line}")
        } else {
            writeln!(e, "{line}")
        };
    }

    pub fn finish(&mut self, done: u64, outcome: &str) {
        let line = format!(
            "{}: {outcome}",
            line(&self.what, done, None, self.started.elapsed())
        );
        let mut e = std::io::stderr().lock();
        let _ = if self.tty {
            writeln!(e, "\r\x1b[2K{line}")
        } else {
            writeln!(e, "{line}")
        };
    }
}

fn line(what: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    match total {
        Some(t) if t > 0 => format!(
            "{what}: {} of {} ({:.0}%), {}/s",
            human_bytes(done),
            human_bytes(t),
            done as f64 * 100.0 / t as f64,
            human_bytes(rate as u64)
        ),
        _ => format!(
            "{what}: {}, {}/s",
            human_bytes(done),
            human_bytes(rate as u64)
        ),
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_lines_read_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(
            line("restore facts_a", 512, Some(1024), Duration::from_secs(1)),
            "restore facts_a: 512 B of 1.0 KiB (50%), 512 B/s"
        );
    }
}
