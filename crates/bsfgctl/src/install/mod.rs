//! `bsfgctl install`: installing a host from its installer image. Which
//! disks the role's layout may touch is [`disks`] (pure: the resolved
//! declared paths and lsblk's JSON in, the selection or every reason to
//! refuse out); the installation's steps are [`plan`] (pure, on top of
//! that selection), from the image's [`manifest`]; [`command`] reads the
//! files, resolves `/dev/disk/by-id/…` links, runs lsblk, asks, and runs
//! disko and nixos-install.

pub mod disks;
pub mod manifest;
pub mod plan;

use crate::exit::{self, CliError, Result};
use crate::identity::ConfigFile;
use crate::zone::file::ZoneFile;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum InstallCommand {
    /// Check that the host's declared disks (hosts.<name>.disks) are present, whole, writable and unused; exit 1 with every reason if not.
    CheckDisks(CheckDisksArgs),
    /// On the host's installer image: partition its declared disks with the role's layout and install the host's system from the image, offline.
    #[command(long_about = RUN_ABOUT)]
    Run(RunArgs),
}

const RUN_ABOUT: &str = "\
On the host's installer image (nix build .#iso-<host>): partition the host's declared disks with its role's layout and install the host's system, which the image carries, without any network.

It reads the image's /etc/bsfg/install.json, resolves each declared disk (hosts.<name>.disks in the zone description, /dev/disk/by-id/… names only) and compares it with lsblk, then shows the plan: each disk by its stable name, its device and size, what the layout makes of it, and the two steps. It refuses, naming every reason and writing nothing, if a disk of the layout is not declared, a declared disk is missing, not a whole writable disk, mounted (the installer's own stick), given twice, too small for its use, half of a RAID1 whose other half differs in size by more than 10%, or not blank without --wipe (a partition table, partitions, a file-system or RAID signature, as lsblk or `blkid --probe` sees it).

After you type the host's name (or with --yes) it runs disko's script for the layout (wipes, partitions, formats, mounts under /mnt), then `nixos-install --root /mnt --system <the host's system> --no-root-passwd --no-channel-copy`, and lists the secret and certificate files to place under /mnt before the first boot.

Exit status: 0 installed (or, with --dry-run, the plan is possible), 1 refused, not confirmed or a step failed, 2 bad usage or an unreadable manifest.";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The image's install manifest.
    #[arg(long, env = "BSFG_INSTALL_MANIFEST", value_name = "FILE", default_value = manifest::DEFAULT_PATH)]
    pub manifest: PathBuf,
    /// Erase disks that already hold a partition table, partitions or a signature (the plan names what each loses).
    #[arg(long)]
    pub wipe: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Show the plan (or every refusal) and exit; nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    /// Read this `lsblk --json --bytes --output NAME,PATH,TYPE,SIZE,RM,RO,MOUNTPOINTS,PTTYPE,FSTYPE` output instead of running lsblk.
    #[arg(long, value_name = "FILE")]
    pub lsblk_json: Option<PathBuf>,
    /// Where the device nodes and their /dev/disk/by-id links are (another directory: a chroot or a test).
    #[arg(long, value_name = "DIR", default_value = "/dev")]
    pub dev_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckDisksArgs {
    /// The zone description (JSON from modules/lib/operator.nix).
    #[arg(long, env = "BSFG_CLI_ZONE_FILE", value_name = "FILE")]
    pub zone_file: Option<PathBuf>,
    /// The host being installed.
    #[arg(long, value_name = "HOST")]
    pub host: String,
    /// Read this `lsblk --json --bytes --output NAME,PATH,TYPE,SIZE,RM,RO,MOUNTPOINTS,PTTYPE,FSTYPE` output instead of running lsblk.
    #[arg(long, value_name = "FILE")]
    pub lsblk_json: Option<PathBuf>,
}

const LSBLK_ARGS: &[&str] = &[
    "--json",
    "--bytes",
    "--output",
    "NAME,PATH,TYPE,SIZE,RM,RO,MOUNTPOINTS,PTTYPE,FSTYPE",
];

pub fn command(c: &InstallCommand, file: &ConfigFile) -> Result<u8> {
    match c {
        InstallCommand::CheckDisks(a) => check_disks(a, file),
        InstallCommand::Run(a) => run(a),
    }
}

/// lsblk's view of the block devices, from `file` or by running it.
fn block_devices(file: Option<&Path>) -> Result<Vec<disks::BlockDevice>> {
    let json = match file {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| CliError::Usage(format!("{}: {e}", p.display())))?,
        None => {
            let out = std::process::Command::new("lsblk")
                .args(LSBLK_ARGS)
                .output()
                .map_err(|e| CliError::Usage(format!("running lsblk: {e}")))?;
            if !out.status.success() {
                return Err(CliError::Usage(format!(
                    "lsblk exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    disks::parse_lsblk(&json).map_err(|e| CliError::Usage(e.to_string()))
}

/// Where `/dev/…` `path` is under `dev_dir` (normally /dev itself).
fn under(dev_dir: &Path, path: &str) -> PathBuf {
    match path.strip_prefix("/dev/") {
        Some(rest) => dev_dir.join(rest),
        None => PathBuf::from(path),
    }
}

/// Each declared path and the device it names on this machine: the link
/// resolved under `dev_dir` and named as under /dev.
fn resolve(paths: &[String], dev_dir: &Path) -> Vec<disks::Declared> {
    let root = std::fs::canonicalize(dev_dir).unwrap_or_else(|_| dev_dir.to_owned());
    paths
        .iter()
        .map(|p| {
            let resolved = std::fs::canonicalize(under(dev_dir, p)).ok().map(|r| {
                match r.strip_prefix(&root) {
                    Ok(rest) => Path::new("/dev").join(rest).display().to_string(),
                    Err(_) => r.display().to_string(),
                }
            });
            disks::Declared {
                path: p.clone(),
                resolved,
            }
        })
        .collect()
}

/// Adds `blkid --probe` of each declared whole disk to lsblk's view.
fn probe(
    present: &mut [disks::BlockDevice],
    declared: &[disks::Declared],
    dev_dir: &Path,
) -> Result<()> {
    for d in present.iter_mut() {
        if !declared
            .iter()
            .any(|x| x.resolved.as_deref() == Some(d.path.as_str()))
        {
            continue;
        }
        let node = under(dev_dir, &d.path);
        let out = std::process::Command::new("blkid")
            .args(["--probe", "--output", "export"])
            .arg(&node)
            .output()
            .map_err(|e| CliError::Usage(format!("running blkid (util-linux): {e}")))?;
        // 2: nothing found on the device, i.e. blank.
        match out.status.code() {
            Some(0) => d.add_probe(disks::parse_blkid_export(&String::from_utf8_lossy(
                &out.stdout,
            ))),
            Some(2) => {}
            _ => {
                return Err(CliError::Failed(format!(
                    "blkid --probe {} exited with {}: {}",
                    node.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
    }
    Ok(())
}

fn run(a: &RunArgs) -> Result<u8> {
    let text = std::fs::read_to_string(&a.manifest).map_err(|e| {
        CliError::Usage(format!(
            "{}: {e} (run this on the host's installer image, nix build .#iso-<host>, or pass --manifest)",
            a.manifest.display()
        ))
    })?;
    let m = manifest::parse(&text)
        .map_err(|e| CliError::Usage(format!("{}: {e}", a.manifest.display())))?;
    let mut present = block_devices(a.lsblk_json.as_deref())?;
    let declared_paths: Vec<String> = m.disks.iter().map(|d| d.device.clone()).collect();
    let declared = resolve(&declared_paths, &a.dev_dir);
    probe(&mut present, &declared, &a.dev_dir)?;
    let p = match plan::plan(&m, &declared, &present, plan::Allow { wipe: a.wipe }) {
        Ok(p) => p,
        Err(refusals) => {
            for r in &refusals {
                println!("refuse {r}");
            }
            println!("{}: nothing written", m.host);
            return Ok(exit::FAILED);
        }
    };
    print!("{}", plan::render(&p));
    if a.dry_run {
        println!("--dry-run: nothing written");
        return Ok(exit::OK);
    }
    if !a.yes {
        print!(
            "This erases the {} disks above. Type the host name ({}) to go on: ",
            p.disks.len(),
            p.host
        );
        std::io::stdout().flush().ok();
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(|e| CliError::Usage(format!("reading the confirmation: {e}")))?;
        if answer.trim() != p.host {
            println!("not confirmed: nothing written");
            return Ok(exit::FAILED);
        }
    }
    let n = p.steps.len();
    for (i, step) in p.steps.iter().enumerate() {
        println!("==> [{}/{n}] {}", i + 1, step.what);
        println!("    {}", step.argv.join(" "));
        let status = std::process::Command::new(&step.argv[0])
            .args(&step.argv[1..])
            .status()
            .map_err(|e| CliError::Failed(format!("running {}: {e}", step.argv[0])))?;
        if !status.success() {
            let hint = if i == 0 {
                "the disks may be partly written; fix the cause and run again with --wipe"
            } else {
                "the disks are partitioned and mounted; fix the cause and run again with --wipe, or run the nixos-install line above by hand"
            };
            return Err(CliError::Failed(format!(
                "step {}/{n} ({}) exited with {status}: {hint}",
                i + 1,
                step.argv[0]
            )));
        }
    }
    println!("{}: installed under {}", p.host, p.mount_point);
    print!("{}", plan::render_files(&p));
    Ok(exit::OK)
}

fn check_disks(a: &CheckDisksArgs, file: &ConfigFile) -> Result<u8> {
    let zone = ZoneFile::load_required(a.zone_file.as_deref(), file)?;
    let host = zone.hosts.get(&a.host).ok_or_else(|| {
        CliError::Usage(format!(
            "no host {:?} in the zone file (hosts: {})",
            a.host,
            zone.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let present = block_devices(a.lsblk_json.as_deref())?;
    let declared = resolve(&host.install_disks, Path::new("/dev"));
    // The layout partitions exactly the declared disks (modules/lib/disks.nix).
    match disks::select(&host.install_disks, &declared, &present) {
        Ok(selected) => {
            for s in &selected {
                println!(
                    "ok     {:<40} {} ({} GB)",
                    s.declared,
                    s.device,
                    s.size / 1_000_000_000
                );
            }
            println!(
                "{}: the layout may partition these {} disks",
                a.host,
                selected.len()
            );
            Ok(exit::OK)
        }
        Err(refusals) => {
            for r in &refusals {
                println!("refuse {r}");
            }
            println!("{}: nothing written", a.host);
            Ok(exit::FAILED)
        }
    }
}
