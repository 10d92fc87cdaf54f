//! `bsfgctl install check-disks` on this machine, with real lsblk: a zone
//! whose alpha declares this machine's root disk (mounted: refused) and
//! disks that do not exist (refused), from the zone file
//! modules/lib/operator.nix computes. Nothing is written to any disk.

use bsfgctl::install::disks::parse_lsblk;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap()
}

/// The whole disk holding `/`, if `/` is on a block device lsblk lists.
fn root_disk() -> Option<String> {
    let out = Command::new("lsblk")
        .args([
            "--json",
            "--bytes",
            "--output",
            "NAME,PATH,TYPE,SIZE,RM,RO,MOUNTPOINTS",
        ])
        .output()
        .expect("lsblk (util-linux)");
    assert!(out.status.success());
    parse_lsblk(&String::from_utf8_lossy(&out.stdout))
        .unwrap()
        .into_iter()
        .find(|d| d.kind == "disk" && d.mounted().contains(&"/"))
        .map(|d| d.path)
}

#[test]
fn check_disks_refuses_a_mounted_and_missing_disks_naming_each() {
    let tmp = tempfile::tempdir().unwrap();
    let root = root_disk();
    let sys0 = root
        .clone()
        .unwrap_or_else(|| "/dev/disk/by-id/bsfg-test-missing-root".into());
    let zone = tmp.path().join("zone.nix");
    std::fs::write(
        &zone,
        format!(
            r#"let z = import {repo}/hosts/zone.nix; in z // {{
  hosts = z.hosts // {{
    alpha = z.hosts.alpha // {{
      disks = {{
        system = ["{sys0}" "/dev/disk/by-id/bsfg-test-missing-sys1"];
        jetstream = "/dev/disk/by-id/bsfg-test-missing-nvme";
        artifacts = ["/dev/disk/by-id/bsfg-test-missing-art0" "/dev/disk/by-id/bsfg-test-missing-art1"];
      }};
    }};
  }};
}}"#,
            repo = repo().display()
        ),
    )
    .unwrap();
    let expr = format!(
        "import {}/modules/lib/operator.nix {{ zone = import {}; }}",
        repo().display(),
        zone.display()
    );
    let zone_json = tmp.path().join("zone.json");
    std::fs::write(&zone_json, crate::support::nix_eval_json(&expr)).unwrap();

    let run = |host: &str| {
        Command::new(env!("CARGO_BIN_EXE_bsfgctl"))
            .args(["install", "check-disks", "--host", host])
            .env("BSFG_CLI_ZONE_FILE", &zone_json)
            .env("HOME", "/nonexistent")
            .output()
            .unwrap()
    };
    let out = run("alpha");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    for missing in ["sys1", "nvme", "art0", "art1"] {
        assert!(
            text.contains(&format!(
                "refuse /dev/disk/by-id/bsfg-test-missing-{missing} does not exist"
            )),
            "{text}"
        );
    }
    if let Some(root) = root {
        assert!(
            text.contains(&format!("refuse {root} ({root}) is in use: mounted at")),
            "{text}"
        );
    }
    assert!(text.contains("alpha: nothing written"), "{text}");
    // beta declares none: refused too, with the setting to fill in.
    let out = run("beta");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("declares no disks for this host"), "{text}");
    let out = run("delta");
    assert_eq!(out.status.code(), Some(2));
}
