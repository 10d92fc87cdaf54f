//! Gate 4: the artifact storage is mounted and writable.
//!
//! A mount point, because a missing disk must not silently turn `/artifacts`
//! into a directory on the root filesystem (artifacts written there would be
//! lost with the next real mount). Writable, because a read-only remount
//! after filesystem errors is how a failing disk usually shows.

use super::GateResult;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFacts {
    pub dir: PathBuf,
    /// The directory exists (as a directory).
    pub is_dir: bool,
    /// `dir` is the root of a mount, or why that could not be told.
    pub mount_point: Result<bool, String>,
    /// A file could be created, written and removed in `dir`.
    pub writable: Result<(), String>,
}

pub fn evaluate(require_mount_point: bool, facts: &ArtifactFacts) -> GateResult {
    let dir = facts.dir.display();
    if !facts.is_dir {
        return GateResult::fail(format!("{dir} does not exist or is not a directory"));
    }
    if require_mount_point {
        match &facts.mount_point {
            Err(e) => {
                return GateResult::fail(format!("cannot tell whether {dir} is mounted: {e}"));
            }
            Ok(false) => return GateResult::fail(format!("{dir} is not a mount point")),
            Ok(true) => {}
        }
    }
    if let Err(e) = &facts.writable {
        return GateResult::fail(format!("{dir} is not writable: {e}"));
    }
    GateResult::pass(if require_mount_point {
        format!("{dir} mounted and writable")
    } else {
        format!("{dir} writable (mount point not required)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ArtifactFacts {
        ArtifactFacts {
            dir: "/artifacts".into(),
            is_dir: true,
            mount_point: Ok(true),
            writable: Ok(()),
        }
    }

    #[test]
    fn mounted_and_writable_passes() {
        assert_eq!(
            evaluate(true, &facts()),
            GateResult::pass("/artifacts mounted and writable")
        );
    }

    #[test]
    fn not_a_mount_point_fails_unless_not_required() {
        let f = ArtifactFacts {
            mount_point: Ok(false),
            ..facts()
        };
        assert_eq!(evaluate(true, &f).reason, "/artifacts is not a mount point");
        assert!(evaluate(false, &f).passes());
    }

    #[test]
    fn missing_read_only_or_unknown_fails() {
        let missing = ArtifactFacts {
            is_dir: false,
            ..facts()
        };
        assert!(!evaluate(false, &missing).passes());
        let ro = ArtifactFacts {
            writable: Err("Read-only file system (os error 30)".into()),
            ..facts()
        };
        assert!(evaluate(true, &ro).reason.contains("Read-only"));
        let unknown = ArtifactFacts {
            mount_point: Err("permission denied".into()),
            ..facts()
        };
        assert!(!evaluate(true, &unknown).passes());
    }
}
