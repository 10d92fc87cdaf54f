//! What keepalived's `enable_script_security` demands of the agent's
//! check script, and the script user it runs as.

use super::progress::Progress;
use anyhow::{Context, Result, bail};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// keepalived's `enable_script_security` refuses a script that a non-root
/// user could replace: the file or any directory above it owned by someone
/// else or writable by group/others.
pub fn script_path_is_secure(path: &Path) -> bool {
    path.ancestors().all(|p| {
        std::fs::metadata(p).is_ok_and(|m| {
            let sticky = m.is_dir() && m.mode() & 0o1000 != 0;
            m.uid() == 0 && (m.mode() & 0o022 == 0 || (sticky && p != path))
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
    fn script_security_follows_ownership_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("agent");
        std::fs::write(&f, "").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = rustix::process::geteuid().is_root();
        // /tmp is sticky and world-writable: allowed above the file, as keepalived does.
        assert_eq!(script_path_is_secure(&f), root);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!script_path_is_secure(&f));
    }
}
