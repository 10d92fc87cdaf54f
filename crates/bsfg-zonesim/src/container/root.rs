//! The Debian root every container boots, made once by
//! `scripts/lib/container-root.sh` (debootstrap) and cached under a name
//! derived from the recipe's SHA-256: an edited recipe builds a new root,
//! an unchanged one is reused by every run and instance. The containers use
//! it read-only (`--volatile=overlay`), so one root serves all hosts.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The recipe, compiled in: what the cache name is computed from.
pub const RECIPE: &str = include_str!("../../../../scripts/lib/container-root.sh");

/// Where roots are cached unless `$BSFG_CONTAINER_CACHE` says otherwise.
pub const DEFAULT_CACHE: &str = "/var/cache/bsfg-zonesim";

/// `bookworm-<first 16 hex digits of the recipe's SHA-256>`.
pub fn root_name(recipe: &str) -> String {
    let digest = Sha256::digest(recipe.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("bookworm-{hex}")
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("BSFG_CONTAINER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE))
}

/// The cached root, built first if missing. Concurrent callers wait for
/// one build (a lock file); a half-built root is never used (built under a
/// temporary name, renamed when complete).
pub fn ensure(repo: &Path, say: &dyn Fn(String)) -> Result<PathBuf> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let root = cache.join(root_name(RECIPE));
    let lock_path = cache.join(".lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("locking {}", lock_path.display()))?;
    if root.join("usr/lib/systemd/systemd").exists() {
        return Ok(root);
    }
    let script = repo.join("scripts/lib/container-root.sh");
    let on_disk = std::fs::read_to_string(&script)
        .with_context(|| format!("reading {}", script.display()))?;
    if on_disk != RECIPE {
        bail!(
            "{} differs from the recipe this simulator was built with; rebuild it (cargo build -p bsfg-zonesim)",
            script.display()
        );
    }
    for tool in ["debootstrap", "systemd-nspawn"] {
        bsfg_testkit::bins::find_system_program(
            tool,
            if tool == "debootstrap" {
                "debootstrap"
            } else {
                "systemd-container"
            },
        )?;
    }
    let partial = cache.join(format!("{}.partial", root_name(RECIPE)));
    let _ = std::fs::remove_dir_all(&partial);
    say(format!(
        "building the container root {} with debootstrap (once; a few minutes)",
        root.display()
    ));
    let mirror = std::env::var("BSFG_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    let log = cache.join(format!("{}.log", root_name(RECIPE)));
    let out = std::fs::File::create(&log)?;
    let status = Command::new("bash")
        .arg(&script)
        .arg(&partial)
        .arg(&mirror)
        .stdout(out.try_clone()?)
        .stderr(out)
        .status()
        .context("running scripts/lib/container-root.sh")?;
    if !status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        bail!(
            "building the container root failed ({status}); see {}",
            log.display()
        );
    }
    std::fs::rename(&partial, &root)
        .with_context(|| format!("renaming {} to {}", partial.display(), root.display()))?;
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_follows_the_recipe() {
        assert_eq!(root_name(RECIPE), root_name(RECIPE));
        assert_ne!(root_name(RECIPE), root_name(&format!("{RECIPE}\n# edited")));
        assert!(root_name(RECIPE).starts_with("bookworm-"));
    }
}
