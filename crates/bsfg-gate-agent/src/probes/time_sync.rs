//! The host's time synchronisation, as chronyd tracks it: `chronyc -c
//! tracking` (the CSV form of `chronyc tracking`). [`parse_tracking`] is
//! pure; [`query`] runs chronyc with a deadline and is the only I/O.

use std::path::Path;
use std::time::Duration;

/// One `chronyc -c tracking` report (chrony 4: 14 comma-separated fields).
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    /// The reference ID, hex (`7F7F0101` is chronyd's local clock,
    /// `00000000` no reference).
    pub reference_id: String,
    /// The reference's name or address (empty for the local clock).
    pub reference: String,
    pub stratum: u32,
    /// The correction chronyd is applying (seconds; positive: the system
    /// clock is slow of true time).
    pub correction_seconds: f64,
    pub leap: Leap,
}

/// chronyd's leap status: whether it considers the clock synchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leap {
    Normal,
    InsertSecond,
    DeleteSecond,
    NotSynchronised,
}

impl Leap {
    fn parse(s: &str) -> Option<Leap> {
        Some(match s {
            "Normal" => Leap::Normal,
            "Insert second" => Leap::InsertSecond,
            "Delete second" => Leap::DeleteSecond,
            "Not synchronised" => Leap::NotSynchronised,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Leap::Normal => "Normal",
            Leap::InsertSecond => "Insert second",
            Leap::DeleteSecond => "Delete second",
            Leap::NotSynchronised => "Not synchronised",
        }
    }
}

impl Tracking {
    /// The clock's offset from true time (positive: fast).
    pub fn offset_seconds(&self) -> f64 {
        -self.correction_seconds
    }
}

/// What is wrong with chronyc's output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackingError {
    #[error("expected 14 comma-separated fields, found {0}")]
    FieldCount(usize),
    #[error("field {field} is not {expected}: {value:?}")]
    Field {
        field: &'static str,
        expected: &'static str,
        value: String,
    },
}

/// Parses the first line of `chronyc -c tracking`.
pub fn parse_tracking(output: &str) -> Result<Tracking, TrackingError> {
    let line = output.lines().next().unwrap_or_default().trim();
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 14 {
        return Err(TrackingError::FieldCount(f.len()));
    }
    let bad = |field, expected, value: &str| TrackingError::Field {
        field,
        expected,
        value: value.to_owned(),
    };
    if f[0].len() != 8 || !f[0].chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad("reference ID", "8 hex digits", f[0]));
    }
    let stratum = f[2].parse().map_err(|_| bad("stratum", "a number", f[2]))?;
    let correction_seconds = f[4]
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| bad("system time", "seconds", f[4]))?;
    let leap =
        Leap::parse(f[13]).ok_or_else(|| bad("leap status", "a chrony leap status", f[13]))?;
    Ok(Tracking {
        reference_id: f[0].to_owned(),
        reference: f[1].to_owned(),
        stratum,
        correction_seconds,
        leap,
    })
}

/// Why chronyd could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeSyncError {
    #[error("{0} not found (install chrony)")]
    NotInstalled(String),
    #[error("{command} exited with {status}: {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{0} did not answer within {1:?}")]
    TimedOut(String, Duration),
    #[error("{0}: {1}")]
    Io(String, String),
    #[error("chronyc's tracking report: {0}")]
    Output(#[from] TrackingError),
}

/// Runs `<chronyc> -c tracking` (with `-h <socket>` if given), killing it
/// after `timeout`.
pub async fn query(
    chronyc: &Path,
    socket: Option<&Path>,
    timeout: Duration,
) -> Result<Tracking, TimeSyncError> {
    let name = chronyc.display().to_string();
    let mut cmd = tokio::process::Command::new(chronyc);
    if let Some(s) = socket {
        cmd.arg("-h").arg(s);
    }
    cmd.args(["-c", "tracking"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => return Err(TimeSyncError::TimedOut(name, timeout)),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TimeSyncError::NotInstalled(name));
        }
        Ok(Err(e)) => return Err(TimeSyncError::Io(name, e.to_string())),
        Ok(Ok(out)) => out,
    };
    if !out.status.success() {
        return Err(TimeSyncError::Failed {
            command: name,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(parse_tracking(&String::from_utf8_lossy(&out.stdout))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real output of chronyc 4.3 (Debian 12), captured from chronyd runs:
    // its local clock, no source yet, and synchronised to a server.
    const LOCAL: &str = "7F7F0101,,8,1796161629.358544318,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,0.000000000,0.000000000,0.0,Normal\n";
    const UNSYNCHRONISED: &str = "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n";
    const SERVER: &str = "7F000001,127.0.0.1,9,1796161738.306455629,-0.000001722,-0.000000004,0.000000015,0.011,-0.000,0.118,0.000005505,0.000000253,0.1,Normal\n";

    #[test]
    fn a_synchronised_report() {
        let t = parse_tracking(SERVER).unwrap();
        assert_eq!(t.reference_id, "7F000001");
        assert_eq!(t.reference, "127.0.0.1");
        assert_eq!(t.stratum, 9);
        assert_eq!(t.leap, Leap::Normal);
        assert!((t.offset_seconds() - 0.000001722).abs() < 1e-12, "{t:?}");
        let local = parse_tracking(LOCAL).unwrap();
        assert_eq!((local.stratum, local.reference.as_str()), (8, ""));
    }

    #[test]
    fn an_unsynchronised_report() {
        let t = parse_tracking(UNSYNCHRONISED).unwrap();
        assert_eq!(t.leap, Leap::NotSynchronised);
        assert_eq!(t.stratum, 0);
    }

    #[test]
    fn malformed_reports_name_what_is_wrong() {
        assert_eq!(parse_tracking(""), Err(TrackingError::FieldCount(1)));
        assert_eq!(
            parse_tracking("506 Cannot talk to daemon"),
            Err(TrackingError::FieldCount(1))
        );
        let e = parse_tracking(&UNSYNCHRONISED.replace("Not synchronised", "Maybe")).unwrap_err();
        assert!(
            matches!(
                e,
                TrackingError::Field {
                    field: "leap status",
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_tracking(&SERVER.replace(",9,", ",x,")).unwrap_err();
        assert!(
            matches!(
                e,
                TrackingError::Field {
                    field: "stratum",
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_tracking(&SERVER.replace("-0.000001722", "nan")).unwrap_err();
        assert!(
            matches!(
                e,
                TrackingError::Field {
                    field: "system time",
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_tracking(&SERVER.replace("7F000001", "7F00")).unwrap_err();
        assert!(
            matches!(
                e,
                TrackingError::Field {
                    field: "reference ID",
                    ..
                }
            ),
            "{e}"
        );
    }
}
