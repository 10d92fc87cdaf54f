//! The artifact directory: is it the root of a mount, can we write to it.

use crate::gates::artifacts::ArtifactFacts;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub fn observe(dir: &Path) -> ArtifactFacts {
    let is_dir = dir.is_dir();
    ArtifactFacts {
        dir: dir.to_owned(),
        is_dir,
        mount_point: if is_dir {
            is_mount_point(dir)
        } else {
            Ok(false)
        },
        writable: if is_dir {
            write_probe(dir)
        } else {
            Err("missing".into())
        },
    }
}

/// `statx`'s `STATX_ATTR_MOUNT_ROOT` (Linux 5.8+, also sees bind mounts of
/// the same filesystem); on older kernels, a device number differing from
/// the parent directory's.
pub fn is_mount_point(dir: &Path) -> Result<bool, String> {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags};
    match rustix::fs::statx(
        rustix::fs::CWD,
        dir,
        AtFlags::NO_AUTOMOUNT,
        StatxFlags::BASIC_STATS,
    ) {
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            return Ok(st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT));
        }
        Ok(_) | Err(rustix::io::Errno::NOSYS) => {}
        Err(e) => return Err(format!("statx: {e}")),
    }
    let canonical = dir.canonicalize().map_err(|e| e.to_string())?;
    let Some(parent) = canonical.parent() else {
        return Ok(true); // "/" is always a mount point
    };
    let own = std::fs::metadata(&canonical).map_err(|e| e.to_string())?;
    let up = std::fs::metadata(parent).map_err(|e| e.to_string())?;
    Ok(own.dev() != up.dev())
}

/// Creates, writes, syncs and removes a small file: a read-only remount or a
/// full disk fails here.
pub fn write_probe(dir: &Path) -> Result<(), String> {
    let mut f = tempfile::Builder::new()
        .prefix(".bsfg-gate-probe-")
        .tempfile_in(dir)
        .map_err(|e| e.to_string())?;
    f.write_all(b"bsfg gate agent write probe\n")
        .map_err(|e| e.to_string())?;
    f.as_file().sync_data().map_err(|e| e.to_string())?;
    f.close().map_err(|e| e.to_string())
}
