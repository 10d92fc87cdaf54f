//! Progress lines for a person watching a zone come up or a drill run.

use std::time::Instant;

/// Progress lines on stderr, with the time since the instance was created.
#[derive(Debug, Clone)]
pub struct Progress {
    start: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            start: Instant::now(),
            quiet,
        }
    }

    pub fn say(&self, msg: impl std::fmt::Display) {
        use std::io::Write;
        if !self.quiet {
            // A closed stderr (`... 2>&1 | head`) must not abort a drill.
            let _ = writeln!(
                std::io::stderr(),
                "[{:>6.1}s] {msg}",
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}
