//! The Debian root every container boots, made once by [`RECIPE`]
//! (debootstrap) and cached under a name
//! derived from the recipe's SHA-256: an edited recipe builds a new root,
//! an unchanged one is reused by every run and instance. The containers use
//! it read-only (`--volatile=overlay`), so one root serves all hosts.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;

/// The recipe: a bash script run as `bash -s TARGET MIRROR`, compiled in
/// (so the simulator needs no repository file to build a root) and what
/// the cache name is computed from.
pub const RECIPE: &str = r#"#!/usr/bin/env bash
# The Debian root the zone simulator's systemd mode boots (bsfg-zonesim
# --init systemd): systemd 252 as PID 1, dbus, polkitd and keepalived from
# Debian bookworm. Nothing of ours goes in here: units, configuration,
# users (systemd-sysusers), binaries and state are bound in per host at
# boot, so one root serves every host of every instance read-only.
#
#   bash -s TARGET MIRROR < this recipe
#
# The simulator names the cache directory after the SHA-256 of this text, so
# editing the recipe builds a new root on the next run.
set -euo pipefail
target=$1
mirror=${2:-http://deb.debian.org/debian}
packages=(
  systemd systemd-sysv dbus libpam-systemd polkitd keepalived iproute2 procps
  # polkitd needs a logind (a virtual package debootstrap does not resolve):
  # libpam-systemd provides it.
)
debootstrap --variant=minbase --include="$(
  IFS=,
  echo "${packages[*]}"
)" bookworm "$target" "$mirror"
# What a NixOS host does not have either: the package manager's timers, the
# console getty (the simulator reads each unit's journal instead), and the
# packages' own enablement (the simulator binds its own /etc/systemd/system).
rm -f "$target"/etc/machine-id "$target"/var/lib/dbus/machine-id
: >"$target"/etc/machine-id
# debootstrap copies this machine's hostname; each container gets its host's
# name from systemd-nspawn --hostname instead.
rm -f "$target"/etc/hostname
# systemd-networkd / resolved are not in minbase; the host's namespace already
# has its addresses. An empty fstab: nspawn provides the API file systems.
: >"$target"/etc/fstab
apt-get -o RootDir="$target" clean 2>/dev/null || rm -rf "$target"/var/cache/apt/archives/*.deb
"#;

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
pub fn ensure(say: &dyn Fn(String)) -> Result<PathBuf> {
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
    let mirror = std::env::var("BSFG_DEBIAN_MIRROR").unwrap_or_else(|_| apt_mirror());
    say(format!(
        "debootstrap from {mirror} (BSFG_DEBIAN_MIRROR overrides)"
    ));
    let log = cache.join(format!("{}.log", root_name(RECIPE)));
    let out = std::fs::File::create(&log)?;
    let mut child = Command::new("bash")
        .arg("-s")
        .arg(&partial)
        .arg(&mirror)
        .stdin(std::process::Stdio::piped())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("running the container root's recipe with bash")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("bash's stdin")?;
        stdin.write_all(RECIPE.as_bytes())?;
    }
    let status = child.wait()?;
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

/// The Debian archive this machine's apt installs from (the package
/// registry the prerequisites came from, hence reachable wherever they
/// installed), else deb.debian.org.
fn apt_mirror() -> String {
    let mut texts: Vec<String> = std::fs::read_to_string("/etc/apt/sources.list")
        .into_iter()
        .collect();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "sources" || e == "list") {
                texts.extend(std::fs::read_to_string(p).ok());
            }
        }
    }
    texts
        .iter()
        .find_map(|t| debian_archive(t))
        .unwrap_or_else(|| "http://deb.debian.org/debian".into())
}

/// The first source of a Debian release's `main` (any release: the
/// archive serves bookworm too), in either apt format (one-line `deb URI
/// SUITE COMPONENTS` or deb822 stanzas).
fn debian_archive(text: &str) -> Option<String> {
    const RELEASES: &[&str] = &[
        "bullseye", "bookworm", "trixie", "forky", "sid", "stable", "testing", "unstable",
    ];
    let ok = |suites: &str, components: &str| {
        suites.split_whitespace().any(|s| {
            RELEASES.contains(&s.split('-').next().unwrap_or(s)) && !s.ends_with("-security")
        }) && components.split_whitespace().any(|c| c == "main")
    };
    for line in text.lines().map(str::trim) {
        let mut w = line.split_whitespace();
        if w.next() == Some("deb") {
            let mut uri = w.next()?;
            if uri.starts_with('[') {
                // `deb [options] URI ...`
                while !uri.ends_with(']') {
                    uri = w.next()?;
                }
                uri = w.next()?;
            }
            let suite = w.next().unwrap_or_default();
            let rest: Vec<&str> = w.collect();
            if ok(suite, &rest.join(" ")) {
                return Some(uri.to_owned());
            }
        }
    }
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_owned())
            })
        };
        let types = field("Types").unwrap_or_default();
        if types.split_whitespace().any(|t| t == "deb")
            && ok(&field("Suites")?, &field("Components")?)
        {
            return field("URIs")?.split_whitespace().next().map(str::to_owned);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_debian_archive_apt_uses() {
        let deb822 = "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n";
        assert_eq!(
            debian_archive(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let one_line = "# x\ndeb [signed-by=/k.gpg arch=amd64] http://m.example/debian bookworm main contrib\n";
        assert_eq!(
            debian_archive(one_line).as_deref(),
            Some("http://m.example/debian")
        );
        assert_eq!(
            debian_archive("deb https://deb.nodesource.com/node_20.x nodistro main"),
            None
        );
        assert_eq!(
            debian_archive("Types: deb\nURIs: http://x\nSuites: nodistro\nComponents: main\n"),
            None
        );
    }

    #[test]
    fn the_name_follows_the_recipe() {
        assert_eq!(root_name(RECIPE), root_name(RECIPE));
        assert_ne!(root_name(RECIPE), root_name(&format!("{RECIPE}\n# edited")));
        assert!(root_name(RECIPE).starts_with("bookworm-"));
    }
}
