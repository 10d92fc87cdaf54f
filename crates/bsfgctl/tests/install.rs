//! `bsfgctl install check-disks` on this machine, with real lsblk: a zone
//! whose alpha declares this machine's root disk (mounted: refused) and
//! disks that do not exist (refused), from the zone file
//! modules/lib/operator.nix computes. `bsfgctl install run` against a
//! stand-in machine (a device directory of by-id links to files that real
//! blkid probes, lsblk's JSON, logging stand-ins for disko's script and
//! nixos-install). Nothing is written to any disk.

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

/// A machine for `bsfgctl install run`: a device directory whose
/// `disk/by-id/` links name files standing in for the disks (blkid probes
/// them for real), lsblk's JSON describing those disks, the image's
/// manifest, and stand-ins for disko's script and nixos-install that log
/// their arguments. Nothing touches a real disk.
struct Machine {
    tmp: tempfile::TempDir,
}

const GIB: u64 = 1024 * 1024 * 1024;

impl Machine {
    fn new(disko_exit: i32) -> Machine {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let dev = root.join("dev");
        std::fs::create_dir_all(dev.join("disk/by-id")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let disks = [
            ("ata-SYS0", "sda", 480103981056u64, "system", 16),
            ("ata-SYS1", "sdb", 480103981056, "system", 16),
            ("nvme-JS", "nvme0n1", 1920383410176, "jetstream", 8),
            ("ata-ART0", "sdc", 4000787030016, "artifacts", 8),
            ("ata-ART1", "sdd", 4000787030016, "artifacts", 8),
        ];
        let mut lsblk = Vec::new();
        let mut uses = Vec::new();
        for (id, name, size, group, min) in disks {
            // 1 MiB of zeros: blank for blkid.
            std::fs::write(dev.join(name), vec![0u8; 1 << 20]).unwrap();
            std::os::unix::fs::symlink(format!("../../{name}"), dev.join("disk/by-id").join(id))
                .unwrap();
            lsblk.push(serde_json::json!({"name": name, "path": format!("/dev/{name}"), "type": "disk",
                "size": size, "rm": false, "ro": false, "mountpoints": [null], "pttype": null, "fstype": null}));
            uses.push(
                serde_json::json!({"device": format!("/dev/disk/by-id/{id}"),
                "use": format!("{group} use"), "group": group, "minBytes": min * GIB}),
            );
        }
        // The installer's own stick, mounted; not declared.
        lsblk.push(serde_json::json!({"name": "sde", "path": "/dev/sde", "type": "disk", "size": 31042043904u64,
            "rm": true, "ro": false, "mountpoints": [null], "children": [{"name": "sde1", "path": "/dev/sde1",
            "type": "part", "size": 31040994816u64, "rm": true, "ro": false, "mountpoints": ["/iso"]}]}));
        std::fs::write(
            root.join("lsblk.json"),
            serde_json::json!({ "blockdevices": lsblk }).to_string(),
        )
        .unwrap();
        let log = root.join("log");
        let script = |name: &str, exit: i32| {
            let p = root.join("bin").join(name);
            std::fs::write(
                &p,
                format!(
                    "#!/bin/sh\necho \"{name} $*\" >> {}\nexit {exit}\n",
                    log.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
            p
        };
        let disko = script("disko-destroy-format-mount", disko_exit);
        script("nixos-install", 0);
        let layout: Vec<_> = uses.iter().map(|u| u["device"].clone()).collect();
        let manifest = serde_json::json!({
            "host": "alpha", "role": "alpha", "zone": "plant-a",
            "system": "/nix/store/00000000000000000000000000000000-nixos-system-alpha-26.05",
            "disko": disko, "mountPoint": "/mnt", "disks": uses, "layout": layout,
            "files": [{"path": "/var/lib/bsfg/tls/controller.key", "secret": true, "option": "certificates.privateKey",
                       "mode": "0600", "createdBy": "bsfgctl pki issue"}]
        });
        std::fs::write(root.join("install.json"), manifest.to_string()).unwrap();
        Machine { tmp }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    fn run(&self, args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
        use std::io::Write;
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_bsfgctl"))
            .args(["install", "run"])
            .arg("--manifest")
            .arg(self.path("install.json"))
            .arg("--lsblk-json")
            .arg(self.path("lsblk.json"))
            .arg("--dev-dir")
            .arg(self.path("dev"))
            .args(args)
            .env("PATH", path)
            .env("HOME", "/nonexistent")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("log")).unwrap_or_default()
    }
}

#[test]
fn install_run_shows_asks_then_runs_disko_and_nixos_install_in_order() {
    let m = Machine::new(0);
    // --dry-run: the plan by stable name, device and size; nothing runs.
    let (code, out, err) = m.run(&["--dry-run"], "");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("/dev/disk/by-id/nvme-JS  (/dev/nvme0n1, 1920.4 GB)"),
        "{out}"
    );
    assert!(out.contains("--dry-run: nothing written"), "{out}");
    assert_eq!(m.log(), "");

    // A wrong answer writes nothing.
    let (code, out, _) = m.run(&[], "beta\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Type the host name (alpha) to go on"), "{out}");
    assert!(out.contains("not confirmed: nothing written"), "{out}");
    assert_eq!(m.log(), "");

    // The host's name: disko, then nixos-install of the carried system.
    let (code, out, err) = m.run(&[], "alpha\n");
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        m.log(),
        "disko-destroy-format-mount --yes-wipe-all-disks\n\
         nixos-install --root /mnt --system /nix/store/00000000000000000000000000000000-nixos-system-alpha-26.05 --no-root-passwd --no-channel-copy\n"
    );
    assert!(
        out.contains("==> [1/2] erase, partition and format"),
        "{out}"
    );
    assert!(out.contains("==> [2/2] install alpha's system"), "{out}");
    assert!(
        out.contains(
            "/mnt/var/lib/bsfg/tls/controller.key  mode 0600  (secret, certificates.privateKey)"
        ),
        "{out}"
    );
}

#[test]
fn install_run_refuses_a_disk_blkid_finds_data_on_until_wipe() {
    let m = Machine::new(0);
    // An old MBR partition table on the second system disk; lsblk (no
    // udev data) says nothing, blkid's probe finds it.
    let mut mbr = vec![0u8; 1 << 20];
    mbr[440..444].copy_from_slice(&0x1234_5678u32.to_le_bytes());
    mbr[446 + 4] = 0x83;
    mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
    mbr[446 + 12..446 + 16].copy_from_slice(&4000u32.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    std::fs::write(m.path("dev/sdb"), mbr).unwrap();
    let (code, out, err) = m.run(&["--yes"], "");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("refuse /dev/disk/by-id/ata-SYS1 (/dev/sdb) is not blank: it has a dos partition table; pass --wipe to erase it"),
        "{out}"
    );
    assert!(out.contains("alpha: nothing written"), "{out}");
    assert_eq!(m.log(), "");

    let (code, out, err) = m.run(&["--yes", "--wipe"], "");
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("ERASES a dos partition table"), "{out}");
    assert_eq!(m.log().lines().count(), 2);
}

#[test]
fn install_run_refuses_disks_that_are_not_the_declared_ones() {
    let m = Machine::new(0);
    // ART1 now names the installer's stick; JS's link is gone.
    let by_id = m.path("dev/disk/by-id");
    std::fs::remove_file(by_id.join("ata-ART1")).unwrap();
    std::fs::write(m.path("dev/sde"), vec![0u8; 4096]).unwrap();
    std::os::unix::fs::symlink("../../sde", by_id.join("ata-ART1")).unwrap();
    std::fs::remove_file(by_id.join("nvme-JS")).unwrap();
    let (code, out, _) = m.run(&["--yes", "--wipe"], "");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("refuse /dev/disk/by-id/nvme-JS does not exist on this machine"),
        "{out}"
    );
    assert!(
        out.contains("refuse /dev/disk/by-id/ata-ART1 (/dev/sde) is in use: mounted at /iso"),
        "{out}"
    );
    assert_eq!(m.log(), "");
}

#[test]
fn install_run_stops_when_disko_fails_and_says_what_state_the_disks_are_in() {
    let m = Machine::new(3);
    let (code, out, err) = m.run(&["--yes"], "");
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("step 1/2 (")
            && err.contains("exited with exit status: 3: the disks may be partly written"),
        "{err}"
    );
    assert_eq!(m.log(), "disko-destroy-format-mount --yes-wipe-all-disks\n");

    // A manifest that is not there: usage, with where it should come from.
    let (code, _, err) = Command::new(env!("CARGO_BIN_EXE_bsfgctl"))
        .args(["install", "run", "--manifest", "/nonexistent/install.json"])
        .output()
        .map(|o| {
            (
                o.status.code(),
                o.stdout,
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, Some(2));
    assert!(err.contains("installer image"), "{err}");
}

/// A loop device over a sparse file, detached when dropped.
struct Loop {
    device: String,
    _file: tempfile::NamedTempFile,
}

impl Loop {
    fn new(bytes: u64) -> Loop {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(bytes).unwrap();
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file.path())
            .output()
            .expect("losetup (util-linux)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop {
            device: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            _file: file,
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// Real block devices, real lsblk and blkid: loop devices declared through
/// by-id links. lsblk types them `loop`, not `disk`, so the installer
/// refuses them before anything else; the by-id resolution and lsblk's
/// real JSON (with PTTYPE and FSTYPE) are what this exercises.
#[test]
fn install_run_with_real_lsblk_refuses_loop_devices_as_not_disks() {
    bsfg_testkit::require_root("loop devices");
    let m = Machine::new(0);
    let loops: Vec<Loop> = (0..5).map(|_| Loop::new(20 * GIB)).collect();
    let by_id = m.path("dev/disk/by-id");
    for (id, l) in ["ata-SYS0", "ata-SYS1", "nvme-JS", "ata-ART0", "ata-ART1"]
        .iter()
        .zip(&loops)
    {
        std::fs::remove_file(by_id.join(id)).unwrap();
        std::os::unix::fs::symlink(&l.device, by_id.join(id)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_bsfgctl"))
        .args(["install", "run", "--dry-run", "--manifest"])
        .arg(m.path("install.json"))
        .arg("--dev-dir")
        .arg(m.path("dev"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for l in &loops {
        assert!(
            text.contains(&format!("is {}, a loop, not a whole disk", l.device)),
            "{text}"
        );
    }
    assert!(text.contains("alpha: nothing written"), "{text}");
    assert_eq!(m.log(), "");
}

/// The manifest the zone library computes (modules/lib/install.nix, with
/// the two store paths modules/installer.nix adds) is what `install run`
/// reads: every field name and type agrees, for each role.
#[test]
fn the_zone_librarys_manifest_is_what_install_run_reads() {
    let expr = format!(
        r#"let
  repo = {repo};
  z = import (repo + "/modules/lib/zone.nix");
  desc0 = import (repo + "/hosts/zone.nix");
  disks = n: h: {{
    system = ["/dev/disk/by-id/ata-${{n}}-sys0" "/dev/disk/by-id/ata-${{n}}-sys1"];
    jetstream = "/dev/disk/by-id/nvme-${{n}}-js";
  }} // (if h.role == "gamma" then {{}} else {{ artifacts = ["/dev/disk/by-id/ata-${{n}}-art0" "/dev/disk/by-id/ata-${{n}}-art1"]; }});
  desc = desc0 // {{ hosts = builtins.mapAttrs (n: h: h // {{ disks = disks n h; }}) desc0.hosts; }};
  hosts = z.allHosts {{ zone = z.normalise desc; pathsFor = _: z.nixosPaths; }};
in builtins.mapAttrs (_: s: (import (repo + "/modules/lib/install.nix")).manifest {{ zone = desc; settings = s; }}
  // {{ system = "/nix/store/00000000000000000000000000000000-nixos-system"; disko = "/nix/store/11111111111111111111111111111111-disko/bin/disko-destroy-format-mount"; }}) hosts"#,
        repo = repo().display()
    );
    let all: serde_json::Value =
        serde_json::from_slice(&crate::support::nix_eval_json(&expr)).unwrap();
    for (host, disks, secrets) in [("alpha", 5, 5), ("beta", 5, 5), ("gamma", 3, 2)] {
        let m = bsfgctl::install::manifest::parse(&all[host].to_string()).unwrap();
        assert_eq!(m.host, host);
        assert_eq!(m.mount_point, "/mnt");
        assert_eq!(m.disks.len(), disks, "{m:?}");
        let mut layout = m.layout.clone();
        layout.sort();
        let mut declared: Vec<String> = m.disks.iter().map(|d| d.device.clone()).collect();
        declared.sort();
        assert_eq!(layout, declared);
        assert!(
            m.disks
                .iter()
                .all(|d| d.min_bytes >= 8 * GIB && !d.use_.is_empty())
        );
        assert_eq!(
            m.files.iter().filter(|f| f.secret).count(),
            secrets,
            "{:?}",
            m.files
        );
        assert!(m.files.iter().all(|f| f.secret == f.option.is_some()));
    }
}
