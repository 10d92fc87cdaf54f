//! The installation plan: from the image's manifest, the declared disks as
//! they resolve on this machine and lsblk's view, either every step
//! `bsfgctl install run` will take or every reason it refuses. Pure: the
//! command prints the plan, asks, and runs its steps.
//!
//! On top of the disk selection check-disks makes ([`disks::select`]),
//! the installer refuses a disk declared by an unstable name (only
//! `/dev/disk/by-id/…` names the same disk on every boot), one too small
//! for its use, a RAID1 whose two members differ in size by more than 10%
//! (one of them is likely the wrong disk), and, unless `--wipe`, a disk
//! that is not blank (a partition table, partitions or a signature).

use super::disks::{self, BlockDevice, Declared, Refusal};
use super::manifest::{FileToPlace, Manifest};
use std::fmt::Write;

pub const STABLE_PREFIX: &str = "/dev/disk/by-id/";

/// What the operator allowed on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allow {
    /// Erase disks that are not blank.
    pub wipe: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub host: String,
    pub disks: Vec<PlannedDisk>,
    pub steps: Vec<Step>,
    pub mount_point: String,
    pub files: Vec<FileToPlace>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDisk {
    pub declared: String,
    pub device: String,
    pub size: u64,
    pub use_: String,
    /// What `--wipe` erases on it (empty: blank).
    pub erases: Vec<String>,
}

/// One program the installation runs, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub what: String,
    pub argv: Vec<String>,
}

/// More than 10% apart (of the larger).
fn uneven(a: u64, b: u64) -> bool {
    let (small, large) = (a.min(b), a.max(b));
    (large - small) * 10 > large
}

pub fn plan(
    m: &Manifest,
    declared: &[Declared],
    present: &[BlockDevice],
    allow: Allow,
) -> Result<Plan, Vec<Refusal>> {
    let mut refusals: Vec<Refusal> = m
        .disks
        .iter()
        .filter(|d| !d.device.starts_with(STABLE_PREFIX))
        .map(|d| Refusal::NotStable(d.device.clone()))
        .collect();
    // The size and content rules need the disks to be the declared ones.
    let selected = match disks::select(&m.layout, declared, present) {
        Ok(s) => s,
        Err(r) => {
            refusals.extend(r);
            return Err(refusals);
        }
    };
    let mut planned = Vec::new();
    for s in &selected {
        let Some(d) = m.disks.iter().find(|d| d.device == s.declared) else {
            // select() refuses a layout device that is not declared; a
            // declared disk without a use cannot come from the zone library.
            refusals.push(Refusal::Undeclared(s.declared.clone()));
            continue;
        };
        if s.size < d.min_bytes {
            refusals.push(Refusal::TooSmall {
                declared: s.declared.clone(),
                device: s.device.clone(),
                size: s.size,
                min: d.min_bytes,
                use_: d.use_.clone(),
            });
        }
        let erases = disks::find(present, &s.device)
            .map(BlockDevice::contents)
            .unwrap_or_default();
        if !erases.is_empty() && !allow.wipe {
            refusals.push(Refusal::NotBlank {
                declared: s.declared.clone(),
                device: s.device.clone(),
                found: erases.clone(),
            });
        }
        planned.push((
            d.group.as_str(),
            PlannedDisk {
                declared: s.declared.clone(),
                device: s.device.clone(),
                size: s.size,
                use_: d.use_.clone(),
                erases,
            },
        ));
    }
    for (i, (group, a)) in planned.iter().enumerate() {
        for (g, b) in &planned[i + 1..] {
            if g == group && uneven(a.size, b.size) {
                refusals.push(Refusal::UnevenPair {
                    group: (*group).to_owned(),
                    first: a.declared.clone(),
                    second: b.declared.clone(),
                    first_size: a.size,
                    second_size: b.size,
                });
            }
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    // Declared disks always come with disko's script (modules/installer.nix).
    let Some(disko) = m.disko.clone() else {
        return Err(vec![Refusal::NoneDeclared]);
    };
    Ok(Plan {
        host: m.host.clone(),
        disks: planned.into_iter().map(|(_, d)| d).collect(),
        steps: steps(m, &disko),
        mount_point: m.mount_point.clone(),
        files: m.files.clone(),
    })
}

fn steps(m: &Manifest, disko: &str) -> Vec<Step> {
    vec![
        Step {
            what: format!(
                "erase, partition and format the disks above with the {} layout, mount them under {}",
                m.role, m.mount_point
            ),
            // The operator confirmed bsfgctl's own plan; disko's question
            // would only repeat it.
            argv: vec![disko.to_owned(), "--yes-wipe-all-disks".into()],
        },
        Step {
            what: format!(
                "install {}'s system from this image's store (no build, no download)",
                m.host
            ),
            argv: [
                "nixos-install",
                "--root",
                &m.mount_point,
                "--system",
                &m.system,
                "--no-root-passwd",
                "--no-channel-copy",
            ]
            .map(str::to_owned)
            .to_vec(),
        },
    ]
}

/// What the command shows before it asks.
pub fn render(p: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Installing {} on these disks:", p.host);
    for d in &p.disks {
        let _ = writeln!(
            out,
            "  {}  ({}, {})\n      {}",
            d.declared,
            d.device,
            disks::bytes(d.size),
            d.use_
        );
        if !d.erases.is_empty() {
            let _ = writeln!(out, "      ERASES {}", d.erases.join(", "));
        }
    }
    let _ = writeln!(out, "Steps:");
    for (i, s) in p.steps.iter().enumerate() {
        let _ = writeln!(out, "  {}. {}\n       {}", i + 1, s.what, s.argv.join(" "));
    }
    out
}

/// What the operator must put on the installed host before it first boots.
pub fn render_files(p: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Before the first boot, place these files under {} (keys and passwords never enter the Nix store; the units load them at start):",
        p.mount_point
    );
    for f in &p.files {
        let kind = match &f.option {
            Some(o) => format!("secret, {o}"),
            None => "public".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {}{}  mode {}  ({kind})  from: {}",
            p.mount_point.trim_end_matches('/'),
            f.path,
            f.mode,
            f.created_by
        );
    }
    let _ = writeln!(
        out,
        "The certificates and keys are staged by `bsfgctl pki issue` under pki/hosts/{}/ at these paths; docs/secrets.md lists every file. Then reboot from the disks.",
        p.host
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::disks::parse_lsblk;
    use crate::install::manifest::{self, DiskUse};

    const GIB: u64 = 1024 * 1024 * 1024;

    // alpha booted from its installer stick: two SATA system disks (sdb
    // still has an old partition table), two artifact disks, one NVMe.
    const HOST: &str = r#"{"blockdevices": [
      {"name": "sda", "path": "/dev/sda", "type": "disk", "size": 480103981056, "rm": false, "ro": false, "mountpoints": [null], "pttype": null, "fstype": null},
      {"name": "sdb", "path": "/dev/sdb", "type": "disk", "size": 480103981056, "rm": false, "ro": false, "mountpoints": [null], "pttype": "dos", "fstype": null,
       "children": [{"name": "sdb1", "path": "/dev/sdb1", "type": "part", "size": 1073741824, "rm": false, "ro": false, "mountpoints": [null], "pttype": "dos", "fstype": "ntfs"}]},
      {"name": "sdc", "path": "/dev/sdc", "type": "disk", "size": 4000787030016, "rm": false, "ro": false, "mountpoints": [null]},
      {"name": "sdd", "path": "/dev/sdd", "type": "disk", "size": 4000787030016, "rm": false, "ro": false, "mountpoints": [null]},
      {"name": "sde", "path": "/dev/sde", "type": "disk", "size": 31042043904, "rm": true, "ro": false, "mountpoints": [null], "pttype": "dos",
       "children": [{"name": "sde1", "path": "/dev/sde1", "type": "part", "size": 31040994816, "rm": true, "ro": false, "mountpoints": ["/iso"], "fstype": "iso9660"}]},
      {"name": "nvme0n1", "path": "/dev/nvme0n1", "type": "disk", "size": 1920383410176, "rm": false, "ro": false, "mountpoints": [null], "pttype": null, "fstype": "linux_raid_member"}
    ]}"#;

    fn manifest() -> Manifest {
        let u = |device: &str, group: &str, min: u64| DiskUse {
            device: device.into(),
            use_: format!("{group} use"),
            group: group.into(),
            min_bytes: min * GIB,
        };
        let disks = vec![
            u("/dev/disk/by-id/ata-SYS0", "system", 16),
            u("/dev/disk/by-id/ata-SYS1", "system", 16),
            u("/dev/disk/by-id/nvme-JS", "jetstream", 8),
            u("/dev/disk/by-id/ata-ART0", "artifacts", 8),
            u("/dev/disk/by-id/ata-ART1", "artifacts", 8),
        ];
        Manifest {
            host: "alpha".into(),
            role: "alpha".into(),
            zone: "plant-a".into(),
            system: "/nix/store/00000000000000000000000000000000-nixos-system-alpha".into(),
            disko: Some(
                "/nix/store/11111111111111111111111111111111-disko/bin/disko-destroy-format-mount"
                    .into(),
            ),
            mount_point: "/mnt".into(),
            layout: disks.iter().map(|d| d.device.clone()).collect(),
            disks,
            files: vec![],
        }
    }

    fn resolved(m: &Manifest, to: &[&str]) -> Vec<Declared> {
        m.disks
            .iter()
            .zip(to)
            .map(|(d, r)| Declared {
                path: d.device.clone(),
                resolved: Some((*r).to_owned()),
            })
            .collect()
    }

    const ALPHA: [&str; 5] = [
        "/dev/sda",
        "/dev/sdb",
        "/dev/nvme0n1",
        "/dev/sdc",
        "/dev/sdd",
    ];

    #[test]
    fn a_disk_with_data_is_refused_unless_wipe_and_then_named_as_erased() {
        let m = manifest();
        let present = parse_lsblk(HOST).unwrap();
        let d = resolved(&m, &ALPHA);
        let r = plan(&m, &d, &present, Allow::default()).unwrap_err();
        assert_eq!(
            r,
            vec![
                Refusal::NotBlank {
                    declared: "/dev/disk/by-id/ata-SYS1".into(),
                    device: "/dev/sdb".into(),
                    found: vec!["a dos partition table".into(), "/dev/sdb1 (ntfs)".into()],
                },
                Refusal::NotBlank {
                    declared: "/dev/disk/by-id/nvme-JS".into(),
                    device: "/dev/nvme0n1".into(),
                    found: vec!["a linux_raid_member signature".into()],
                },
            ]
        );
        assert!(
            r[0].to_string().ends_with("pass --wipe to erase it"),
            "{}",
            r[0]
        );

        let p = plan(&m, &d, &present, Allow { wipe: true }).unwrap();
        assert_eq!(p.disks.len(), 5);
        assert!(p.disks[0].erases.is_empty());
        assert_eq!(
            p.disks[1].erases,
            ["a dos partition table", "/dev/sdb1 (ntfs)"]
        );
        assert_eq!(
            (
                p.disks[2].declared.as_str(),
                p.disks[2].device.as_str(),
                p.disks[2].size,
                p.disks[2].erases.as_slice()
            ),
            (
                "/dev/disk/by-id/nvme-JS",
                "/dev/nvme0n1",
                1920383410176,
                ["a linux_raid_member signature".to_owned()].as_slice()
            )
        );
        // What the operator reads before confirming.
        let text = render(&p);
        assert!(
            text.contains("ERASES a dos partition table, /dev/sdb1 (ntfs)"),
            "{text}"
        );
        assert!(
            text.contains("/dev/disk/by-id/nvme-JS  (/dev/nvme0n1, 1920.4 GB)"),
            "{text}"
        );
    }

    #[test]
    fn the_steps_are_disko_then_nixos_install_of_the_carried_system() {
        let m = manifest();
        let blank = HOST
            .replace(r#""pttype": "dos", "fstype": null,"#, r#""pttype": null, "fstype": null,"#)
            .replace(r#""fstype": "linux_raid_member""#, r#""fstype": null"#)
            .replace(r#""fstype": "ntfs""#, r#""fstype": null"#)
            .replace(r#""children": [{"name": "sdb1", "path": "/dev/sdb1", "type": "part", "size": 1073741824, "rm": false, "ro": false, "mountpoints": [null], "pttype": "dos", "fstype": null}]"#, r#""children": []"#);
        let present = parse_lsblk(&blank).unwrap();
        let p = plan(&m, &resolved(&m, &ALPHA), &present, Allow::default()).unwrap();
        assert!(p.disks.iter().all(|d| d.erases.is_empty()), "{p:?}");
        let argv: Vec<Vec<&str>> = p
            .steps
            .iter()
            .map(|s| s.argv.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            argv,
            vec![
                vec![m.disko.as_deref().unwrap(), "--yes-wipe-all-disks"],
                vec![
                    "nixos-install",
                    "--root",
                    "/mnt",
                    "--system",
                    m.system.as_str(),
                    "--no-root-passwd",
                    "--no-channel-copy"
                ],
            ]
        );
    }

    #[test]
    fn unstable_names_small_disks_and_uneven_pairs_are_refused() {
        let present = parse_lsblk(HOST).unwrap();
        // An unstable name, and a disk declared twice (select's rule).
        let mut m = manifest();
        m.disks[0].device = "/dev/sda".into();
        m.layout[0] = "/dev/sda".into();
        let mut d = resolved(&m, &ALPHA);
        d[4].resolved = Some("/dev/sda".into());
        let r = plan(&m, &d, &present, Allow { wipe: true }).unwrap_err();
        assert_eq!(r[0], Refusal::NotStable("/dev/sda".into()));
        assert!(matches!(r[1], Refusal::SameDisk { .. }), "{r:?}");
        assert!(r[0].to_string().contains("/dev/disk/by-id/"), "{}", r[0]);

        // Too small for its use.
        let mut m = manifest();
        m.disks[2].min_bytes = 4_000_000_000_000;
        let r = plan(&m, &resolved(&m, &ALPHA), &present, Allow { wipe: true }).unwrap_err();
        assert!(
            matches!(&r[..], [Refusal::TooSmall { declared, size: 1920383410176, .. }] if declared == "/dev/disk/by-id/nvme-JS"),
            "{r:?}"
        );
        assert!(
            r[0].to_string().contains("needs at least 4000.0 GB"),
            "{}",
            r[0]
        );

        // A RAID1 of a 4 TB and a 1 TB disk.
        let m = manifest();
        let host = HOST.replace(
            r#""path": "/dev/sdd", "type": "disk", "size": 4000787030016"#,
            r#""path": "/dev/sdd", "type": "disk", "size": 1000204886016"#,
        );
        assert_ne!(host, HOST);
        let r = plan(
            &m,
            &resolved(&m, &ALPHA),
            &parse_lsblk(&host).unwrap(),
            Allow { wipe: true },
        )
        .unwrap_err();
        assert!(
            matches!(&r[..], [Refusal::UnevenPair { group, .. }] if group == "artifacts"),
            "{r:?}"
        );
        let text = r[0].to_string();
        assert!(
            text.contains("4000.8 GB") && text.contains("1000.2 GB"),
            "{text}"
        );
        assert!(!uneven(480103981056, 500107862016));
        assert!(uneven(480103981056, 1000204886016));
        // The rule's edge: 10% of the larger is still even, more is not,
        // in either order.
        assert!(!uneven(1000, 900) && !uneven(900, 1000));
        assert!(uneven(1000, 899) && uneven(899, 1000));
        assert!(!uneven(4000787030016, 4000787030016));
    }

    #[test]
    fn no_declared_disks_means_no_plan() {
        let mut m = manifest();
        m.disks.clear();
        m.layout.clear();
        m.disko = None;
        let present = parse_lsblk(HOST).unwrap();
        assert_eq!(
            plan(&m, &[], &present, Allow { wipe: true }).unwrap_err(),
            vec![Refusal::NoneDeclared]
        );
    }

    #[test]
    fn the_files_to_place_are_listed_under_the_mount_point() {
        let json = r#"{"host": "gamma", "role": "gamma", "zone": "plant-a", "system": "/nix/store/x-system", "disko": null,
          "mountPoint": "/mnt", "disks": [], "layout": [],
          "files": [{"path": "/var/lib/bsfg/tls/nats-route.key", "secret": true, "option": "certificates.natsRoutePrivateKey", "mode": "0600", "createdBy": "bsfgctl pki issue"},
                    {"path": "/var/lib/bsfg/tls/ca.pem", "secret": false, "option": null, "mode": "0644", "createdBy": "bsfgctl pki issue"}]}"#;
        let m = manifest::parse(json).unwrap();
        let p = Plan {
            host: m.host.clone(),
            disks: vec![],
            steps: vec![],
            mount_point: m.mount_point.clone(),
            files: m.files.clone(),
        };
        let text = render_files(&p);
        assert!(
            text.contains("/mnt/var/lib/bsfg/tls/nats-route.key  mode 0600  (secret, certificates.natsRoutePrivateKey)  from: bsfgctl pki issue"),
            "{text}"
        );
        assert!(
            text.contains("/mnt/var/lib/bsfg/tls/ca.pem  mode 0644  (public)"),
            "{text}"
        );
        assert!(text.contains("pki/hosts/gamma/"), "{text}");
        assert!(manifest::parse("{}").is_err());
    }
}
