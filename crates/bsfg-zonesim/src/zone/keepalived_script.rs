//! What keepalived's `enable_script_security` demands of the agent's
//! check script, and the script user it runs as.

use super::progress::Progress;
use anyhow::{Context, Result, bail};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Whether keepalived can run the check at `path` as its non-root script
/// user: `enable_script_security` refuses a script that such a user could
/// replace (the file or any directory above it owned by someone else or
/// writable by group/others), and the script user must be able to reach it
/// at all (every directory above searchable, the file executable, by
/// others). keepalived reports either only in its own log and then runs
/// without the check, so the gate would silently be gone.
pub fn script_path_is_usable(path: &Path) -> bool {
    path.ancestors().all(|p| {
        std::fs::metadata(p).is_ok_and(|m| {
            let sticky = m.is_dir() && m.mode() & 0o1000 != 0;
            let secure = m.uid() == 0 && (m.mode() & 0o022 == 0 || (sticky && p != path));
            let reachable = m.mode() & 0o001 != 0;
            secure && reachable
        })
    })
}

/// Creates keepalived's script user when it is missing (Debian's keepalived
/// package does not create `keepalived_script`; NixOS does).
pub fn ensure_script_user(user: &str, progress: &Progress) -> Result<()> {
    if user == "root" {
        return Ok(());
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    if passwd.lines().any(|l| l.split(':').next() == Some(user)) {
        return Ok(());
    }
    progress.say(format!(
        "creating the system user {user} (keepalived runs the agent's check as this user)"
    ));
    let out = std::process::Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ])
        .output()
        .context("running useradd")?;
    if !out.status.success() {
        bail!(
            "useradd {user}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn script_usability_follows_ownership_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("agent");
        std::fs::write(&f, "").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = rustix::process::geteuid().is_root();
        // /tmp is sticky and world-writable: allowed above the file, as keepalived does.
        assert_eq!(script_path_is_usable(&f), root);
        // Secure but out of the script user's reach (a 0700 checkout).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!script_path_is_usable(&f));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o754)).unwrap();
        assert!(!script_path_is_usable(&f));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!script_path_is_usable(&f));
    }
}
