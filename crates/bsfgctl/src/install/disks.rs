//! The installer's disk selection. The zone description declares each
//! host's disks (`hosts.<name>.disks`, modules/lib/disks.nix; its
//! `installDisks`), and the role's disko layout names the devices it
//! partitions. Before anything is written, [`select`] refuses unless every
//! device of the layout is a declared disk, every declared disk is present
//! as a whole, writable disk, nothing on it is mounted (the ISO's own
//! medium is), and no two declarations are the same disk.

use serde::Deserialize;

/// One device of `lsblk --json --bytes --output NAME,PATH,TYPE,SIZE,RM,RO,MOUNTPOINTS,PTTYPE,FSTYPE`,
/// with its partitions (and what is on them) as `children`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlockDevice {
    pub name: String,
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default, rename = "rm")]
    pub removable: bool,
    #[serde(default, rename = "ro")]
    pub read_only: bool,
    #[serde(default, deserialize_with = "mountpoints")]
    pub mountpoints: Vec<String>,
    /// The partition table on the device (`gpt`, `dos`), if any.
    #[serde(default)]
    pub pttype: Option<String>,
    /// The signature on the device itself (`ext4`, `linux_raid_member`), if any.
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub children: Vec<BlockDevice>,
}

fn mountpoints<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v: Option<Vec<Option<String>>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().flatten().collect())
}

#[derive(Debug, Deserialize)]
struct Lsblk {
    blockdevices: Vec<BlockDevice>,
}

/// lsblk's output could not be read.
#[derive(Debug, thiserror::Error)]
#[error("lsblk --json: {0}")]
pub struct LsblkError(#[from] serde_json::Error);

pub fn parse_lsblk(json: &str) -> Result<Vec<BlockDevice>, LsblkError> {
    Ok(serde_json::from_str::<Lsblk>(json)?.blockdevices)
}

impl BlockDevice {
    /// Mount points of this device and of everything on it.
    pub fn mounted(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.mountpoints.iter().map(String::as_str).collect();
        for c in &self.children {
            out.extend(c.mounted());
        }
        out
    }

    /// What is already on the disk, for the installer's `--wipe` rule:
    /// its partition table, its partitions, and any signature on the disk
    /// itself (a file system or RAID member without partitions). Empty: blank.
    pub fn contents(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(t) = &self.pttype {
            out.push(format!("a {t} partition table"));
        }
        if let Some(f) = &self.fstype {
            out.push(format!("a {f} signature"));
        }
        for c in &self.children {
            match &c.fstype {
                Some(f) => out.push(format!("{} ({f})", c.path)),
                None => out.push(c.path.clone()),
            }
        }
        out
    }
}

/// What `blkid --probe --output export <device>` read from the device
/// itself. lsblk takes PTTYPE and FSTYPE from udev's database, which is
/// empty where udev has not run (or not yet seen a device); the probe
/// reads the disk's first sectors, so the blank rule never rests on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub pttype: Option<String>,
    pub fstype: Option<String>,
}

pub fn parse_blkid_export(text: &str) -> Probe {
    let mut p = Probe::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("PTTYPE", v)) if !v.is_empty() => p.pttype = Some(v.to_owned()),
            Some(("TYPE", v)) if !v.is_empty() => p.fstype = Some(v.to_owned()),
            _ => {}
        }
    }
    p
}

impl BlockDevice {
    /// Adds what the probe found and lsblk did not report.
    pub fn add_probe(&mut self, p: Probe) {
        if self.pttype.is_none() {
            self.pttype = p.pttype;
        }
        if self.fstype.is_none() {
            self.fstype = p.fstype;
        }
    }
}

/// A disk of the zone description and what its path resolves to on this
/// machine (`/dev/disk/by-id/nvme-…` → `/dev/nvme0n1`), if it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub path: String,
    pub resolved: Option<String>,
}

/// A disk the layout may partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub declared: String,
    pub device: String,
    pub size: u64,
}

/// Why the installer refuses to touch the disks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the zone description declares no disks for this host (hosts.<name>.disks)")]
    NoneDeclared,
    #[error("the layout partitions {0}, which the zone description does not declare")]
    Undeclared(String),
    #[error("{0} does not exist on this machine")]
    Missing(String),
    #[error("{declared} is {device}, which lsblk does not list")]
    Unlisted { declared: String, device: String },
    #[error("{declared} is {device}, a {kind}, not a whole disk")]
    NotADisk {
        declared: String,
        device: String,
        kind: String,
    },
    #[error("{declared} ({device}) is read-only")]
    ReadOnly { declared: String, device: String },
    #[error("{declared} ({device}) has size 0 (no medium?)")]
    Empty { declared: String, device: String },
    #[error("{declared} ({device}) is in use: mounted at {}", mounted.join(", "))]
    Mounted {
        declared: String,
        device: String,
        mounted: Vec<String>,
    },
    #[error("{first} and {second} are the same disk ({device})")]
    SameDisk {
        first: String,
        second: String,
        device: String,
    },
    #[error(
        "{0} is not a stable name: declare the disk as /dev/disk/by-id/… (ls -l /dev/disk/by-id/), which names the same disk on every boot"
    )]
    NotStable(String),
    #[error("{declared} ({device}) holds {}, but {use_} needs at least {}", bytes(*size), bytes(*min))]
    TooSmall {
        declared: String,
        device: String,
        size: u64,
        min: u64,
        use_: String,
    },
    #[error("{first} ({}) and {second} ({}) form the {group} RAID1 but differ in size by more than 10%: is one of them the wrong disk?", bytes(*first_size), bytes(*second_size))]
    UnevenPair {
        group: String,
        first: String,
        second: String,
        first_size: u64,
        second_size: u64,
    },
    #[error("{declared} ({device}) is not blank: it has {}; pass --wipe to erase it", found.join(", "))]
    NotBlank {
        declared: String,
        device: String,
        found: Vec<String>,
    },
}

/// A size as lsblk's users read it: decimal gigabytes, one decimal.
pub fn bytes(n: u64) -> String {
    format!("{:.1} GB", n as f64 / 1e9)
}

/// The device (or partition) at `path` in lsblk's tree.
pub fn find<'a>(devices: &'a [BlockDevice], path: &str) -> Option<&'a BlockDevice> {
    devices.iter().find_map(|d| {
        if d.path == path {
            Some(d)
        } else {
            find(&d.children, path)
        }
    })
}

/// The disks the layout may partition, or every reason not to touch any.
/// `layout`: the devices the disko layout names (`disk.<name>.device`);
/// `declared`: the host's declared disks, resolved; `present`: lsblk.
pub fn select(
    layout: &[String],
    declared: &[Declared],
    present: &[BlockDevice],
) -> Result<Vec<Selected>, Vec<Refusal>> {
    let mut refusals = Vec::new();
    if declared.is_empty() {
        refusals.push(Refusal::NoneDeclared);
    }
    for l in layout {
        if !declared.iter().any(|d| &d.path == l) {
            refusals.push(Refusal::Undeclared(l.clone()));
        }
    }
    let mut selected: Vec<Selected> = Vec::new();
    for d in declared {
        let Some(device) = &d.resolved else {
            refusals.push(Refusal::Missing(d.path.clone()));
            continue;
        };
        let (declared, device) = (d.path.clone(), device.clone());
        let Some(b) = find(present, &device) else {
            refusals.push(Refusal::Unlisted { declared, device });
            continue;
        };
        if b.kind != "disk" {
            refusals.push(Refusal::NotADisk {
                declared,
                device,
                kind: b.kind.clone(),
            });
            continue;
        }
        if let Some(first) = selected.iter().find(|s| s.device == device) {
            refusals.push(Refusal::SameDisk {
                first: first.declared.clone(),
                second: declared,
                device,
            });
            continue;
        }
        let mounted: Vec<String> = b.mounted().into_iter().map(str::to_owned).collect();
        if b.read_only {
            refusals.push(Refusal::ReadOnly {
                declared: declared.clone(),
                device: device.clone(),
            });
        } else if b.size == 0 {
            refusals.push(Refusal::Empty {
                declared: declared.clone(),
                device: device.clone(),
            });
        } else if !mounted.is_empty() {
            refusals.push(Refusal::Mounted {
                declared: declared.clone(),
                device: device.clone(),
                mounted,
            });
        }
        selected.push(Selected {
            declared,
            device,
            size: b.size,
        });
    }
    if refusals.is_empty() {
        Ok(selected)
    } else {
        Err(refusals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real output of util-linux 2.38 lsblk on a build machine (a VM:
    // zram swap, one virtio disk holding the root file system).
    const THIS_MACHINE: &str = r#"{
   "blockdevices": [
      {"name": "zram0", "path": "/dev/zram0", "type": "disk", "size": 0, "rm": false, "ro": false, "mountpoints": [null], "pkname": null},
      {"name": "vda", "path": "/dev/vda", "type": "disk", "size": 274877906944, "rm": false, "ro": false, "mountpoints": ["/run/netns", "/"], "pkname": null}
   ]
}"#;

    // A host booted from the ISO on a USB stick: two SATA system disks,
    // two artifact disks, one NVMe; the stick is mounted (the live system).
    const HOST: &str = r#"{
   "blockdevices": [
      {"name": "sda", "path": "/dev/sda", "type": "disk", "size": 480103981056, "rm": false, "ro": false, "mountpoints": [null]},
      {"name": "sdb", "path": "/dev/sdb", "type": "disk", "size": 480103981056, "rm": false, "ro": false, "mountpoints": [null],
       "children": [{"name": "sdb1", "path": "/dev/sdb1", "type": "part", "size": 1073741824, "rm": false, "ro": false, "mountpoints": [null]}]},
      {"name": "sdc", "path": "/dev/sdc", "type": "disk", "size": 4000787030016, "rm": false, "ro": false, "mountpoints": [null]},
      {"name": "sdd", "path": "/dev/sdd", "type": "disk", "size": 4000787030016, "rm": false, "ro": false, "mountpoints": [null]},
      {"name": "sde", "path": "/dev/sde", "type": "disk", "size": 31042043904, "rm": true, "ro": false, "mountpoints": [null],
       "children": [{"name": "sde1", "path": "/dev/sde1", "type": "part", "size": 31040994816, "rm": true, "ro": false, "mountpoints": ["/iso"]}]},
      {"name": "nvme0n1", "path": "/dev/nvme0n1", "type": "disk", "size": 1920383410176, "rm": false, "ro": false, "mountpoints": [null]}
   ]
}"#;

    fn declared(pairs: &[(&str, Option<&str>)]) -> Vec<Declared> {
        pairs
            .iter()
            .map(|(p, r)| Declared {
                path: (*p).into(),
                resolved: r.map(str::to_owned),
            })
            .collect()
    }

    fn alpha() -> Vec<Declared> {
        declared(&[
            ("/dev/disk/by-id/ata-SYS0", Some("/dev/sda")),
            ("/dev/disk/by-id/ata-SYS1", Some("/dev/sdb")),
            ("/dev/disk/by-id/nvme-JS", Some("/dev/nvme0n1")),
            ("/dev/disk/by-id/ata-ART0", Some("/dev/sdc")),
            ("/dev/disk/by-id/ata-ART1", Some("/dev/sdd")),
        ])
    }

    fn layout(d: &[Declared]) -> Vec<String> {
        d.iter().map(|d| d.path.clone()).collect()
    }

    #[test]
    fn blkid_probe_fills_what_lsblk_left_empty() {
        // blkid 2.38 -p -o export on an ext4 file system and on a GPT disk.
        let ext4 = "DEVNAME=/dev/loop0\nLABEL=probe\nUUID=cae767d9-8d19-4548-a258-a011f2744027\nVERSION=1.0\nBLOCK_SIZE=1024\nTYPE=ext4\nUSAGE=filesystem\n";
        let gpt = "DEVNAME=/dev/sda\nPTUUID=5b1e0a2c-0c6f-4b0e-9d1a-7a0d7c2f1e11\nPTTYPE=gpt\n";
        assert_eq!(
            parse_blkid_export(ext4),
            Probe {
                pttype: None,
                fstype: Some("ext4".into())
            }
        );
        let mut d = parse_lsblk(HOST).unwrap().remove(0);
        assert!(d.contents().is_empty());
        d.add_probe(parse_blkid_export(gpt));
        assert_eq!(d.contents(), ["a gpt partition table"]);
        d.add_probe(parse_blkid_export(""));
        assert_eq!(d.contents(), ["a gpt partition table"]);
    }

    #[test]
    fn real_lsblk_output_parses() {
        let devices = parse_lsblk(THIS_MACHINE).unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[1].mounted(), ["/run/netns", "/"]);
        assert!(devices[0].mounted().is_empty());
        assert!(parse_lsblk("{}").is_err());
    }

    #[test]
    fn the_declared_disks_are_selected() {
        let present = parse_lsblk(HOST).unwrap();
        let d = alpha();
        let s = select(&layout(&d), &d, &present).unwrap();
        assert_eq!(
            s.iter().map(|s| s.device.as_str()).collect::<Vec<_>>(),
            [
                "/dev/sda",
                "/dev/sdb",
                "/dev/nvme0n1",
                "/dev/sdc",
                "/dev/sdd"
            ]
        );
    }

    #[test]
    fn anything_else_is_refused_with_every_reason() {
        let present = parse_lsblk(HOST).unwrap();
        // The ISO's stick declared by mistake; a disk missing; a partition.
        let d = declared(&[
            ("/dev/disk/by-id/usb-STICK", Some("/dev/sde")),
            ("/dev/disk/by-id/ata-GONE", None),
            ("/dev/disk/by-id/ata-SYS1-part1", Some("/dev/sdb1")),
            ("/dev/disk/by-id/wwn-SYS0", Some("/dev/sda")),
            ("/dev/disk/by-id/ata-SYS0", Some("/dev/sda")),
            ("/dev/disk/by-id/scsi-X", Some("/dev/sdx")),
        ]);
        let mut l = layout(&d);
        l.push("/dev/nvme0n1".into());
        let r = select(&l, &d, &present).unwrap_err();
        assert_eq!(
            r,
            vec![
                Refusal::Undeclared("/dev/nvme0n1".into()),
                Refusal::Mounted {
                    declared: "/dev/disk/by-id/usb-STICK".into(),
                    device: "/dev/sde".into(),
                    mounted: vec!["/iso".into()],
                },
                Refusal::Missing("/dev/disk/by-id/ata-GONE".into()),
                Refusal::NotADisk {
                    declared: "/dev/disk/by-id/ata-SYS1-part1".into(),
                    device: "/dev/sdb1".into(),
                    kind: "part".into(),
                },
                Refusal::SameDisk {
                    first: "/dev/disk/by-id/wwn-SYS0".into(),
                    second: "/dev/disk/by-id/ata-SYS0".into(),
                    device: "/dev/sda".into(),
                },
                Refusal::Unlisted {
                    declared: "/dev/disk/by-id/scsi-X".into(),
                    device: "/dev/sdx".into(),
                },
            ]
        );
        assert!(r[1].to_string().contains("mounted at /iso"), "{}", r[1]);
    }

    #[test]
    fn no_declared_disks_a_read_only_or_empty_disk_is_refused() {
        let present = parse_lsblk(THIS_MACHINE).unwrap();
        assert_eq!(
            select(&[], &[], &present).unwrap_err(),
            vec![Refusal::NoneDeclared]
        );
        let d = declared(&[("/dev/zram0", Some("/dev/zram0"))]);
        assert!(matches!(
            select(&layout(&d), &d, &present).unwrap_err()[..],
            [Refusal::Empty { .. }]
        ));
        let d = declared(&[("/dev/vda", Some("/dev/vda"))]);
        assert!(matches!(
            select(&layout(&d), &d, &present).unwrap_err()[..],
            [Refusal::Mounted { .. }]
        ));
        let ro = HOST.replace(
            r#""name": "nvme0n1", "path": "/dev/nvme0n1", "type": "disk", "size": 1920383410176, "rm": false, "ro": false"#,
            r#""name": "nvme0n1", "path": "/dev/nvme0n1", "type": "disk", "size": 1920383410176, "rm": false, "ro": true"#,
        );
        assert_ne!(ro, HOST);
        let d = alpha();
        assert!(matches!(
            select(&layout(&d), &d, &parse_lsblk(&ro).unwrap()).unwrap_err()[..],
            [Refusal::ReadOnly { .. }]
        ));
    }
}
