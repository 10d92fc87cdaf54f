//! `bsfg-powercut`: see the crate documentation and docs/durability.md.

use anyhow::{Context, Result, bail};
use bsfg_powercut::control::{self, Client};
use bsfg_powercut::domain::PowerDomain;
use bsfg_powercut::model::{Config, Semantics, Writeback};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// A test file system that models a power cut. `serve` mounts volumes (one
/// per host disk) whose data is volatile until made durable: a file's bytes
/// by fsync/fdatasync of the file (or an O_SYNC/O_DSYNC write), a new name,
/// rename or removal by fsync of its directory. `cut` discards everything
/// volatile on the named volumes at one instant (three hosts on one feed);
/// the volumes then answer EIO until `boot` remounts them with what was
/// durable. Everything is held in memory; nothing is written to a disk.
///
/// Needs root (mount(2)); /dev/fuse must exist. No fusermount is used.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// The control socket.
    #[arg(
        long,
        global = true,
        default_value = "/run/bsfg-powercut.sock",
        env = "BSFG_POWERCUT_SOCKET"
    )]
    control: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Mount the volumes and answer on the control socket until SIGTERM or
    /// SIGINT (then every volume is unmounted and its content dropped).
    Serve {
        /// NAME=MOUNTPOINT, repeated: one volume each, all on one power feed.
        #[arg(long = "volume", required = true, value_parser = parse_volume)]
        volumes: Vec<(String, PathBuf)>,
        /// posix: a new name is durable only after fsync of its directory;
        /// journaled: any sync also commits every metadata change before it
        /// (ext4 data=ordered, XFS).
        #[arg(long, default_value = "posix")]
        semantics: Semantics,
        /// Capacity of each volume in MiB (file pages held, synced or not); ENOSPC past it.
        #[arg(long, default_value_t = 4096)]
        capacity_mib: u64,
        /// Owner of each volume's root directory, UID:GID.
        #[arg(long, default_value = "0:0", value_parser = parse_owner)]
        root_owner: (u32, u32),
        /// Permission bits of each volume's root directory, octal.
        #[arg(long, default_value = "755", value_parser = parse_mode)]
        root_mode: u32,
        /// Model the kernel's background writeback with Linux's defaults:
        /// bytes dirty for 30 s are written back, and (journaled) metadata
        /// is committed every 5 s. Without it nothing is durable unless synced.
        #[arg(long)]
        writeback: bool,
        /// With --writeback: the dirty expiry in milliseconds.
        #[arg(long, requires = "writeback", default_value_t = Writeback::LINUX_DEFAULTS.expire_ms)]
        dirty_expire_ms: u64,
        /// With --writeback: the journal commit interval in milliseconds.
        #[arg(long, requires = "writeback", default_value_t = Writeback::LINUX_DEFAULTS.journal_commit_ms)]
        journal_commit_ms: u64,
    },
    /// Cut the power of the named volumes (all when none is named) at one instant.
    Cut { volumes: Vec<String> },
    /// Restore the power: remount the named volumes (all when none is named) with their durable state.
    Boot { volumes: Vec<String> },
    /// Volumes, power, and what a cut would discard now.
    Status {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn parse_volume(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=MOUNTPOINT"))?;
    if name.is_empty() || path.is_empty() {
        return Err(format!("{s:?} is not NAME=MOUNTPOINT"));
    }
    Ok((name.to_owned(), PathBuf::from(path)))
}

fn parse_owner(s: &str) -> Result<(u32, u32), String> {
    let (u, g) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not UID:GID"))?;
    Ok((
        u.parse().map_err(|_| format!("{u:?} is not a uid"))?,
        g.parse().map_err(|_| format!("{g:?} is not a gid"))?,
    ))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s:?} is not an octal mode (0..7777)"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bsfg-powercut: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let client = Client::new(&cli.control);
    match cli.command {
        Command::Serve {
            volumes,
            semantics,
            capacity_mib,
            root_owner,
            root_mode,
            writeback,
            dirty_expire_ms,
            journal_commit_ms,
        } => serve(
            &cli.control,
            volumes,
            Config {
                semantics,
                capacity_bytes: capacity_mib << 20,
                root_uid: root_owner.0,
                root_gid: root_owner.1,
                root_mode,
                writeback: writeback.then_some(Writeback {
                    expire_ms: dirty_expire_ms,
                    journal_commit_ms,
                }),
            },
        ),
        Command::Cut { volumes } => {
            let r = client.cut(&volumes)?;
            for (name, v) in r.volumes {
                println!(
                    "{name}: power cut; discarded {} bytes in {} files, {} directory entries",
                    v.unsynced_bytes, v.unsynced_files, v.unsynced_entries
                );
            }
            Ok(())
        }
        Command::Boot { volumes } => {
            let booted = client.boot(&volumes)?;
            if booted.is_empty() {
                println!("every volume named has power already");
            }
            for name in booted {
                println!("{name}: booted (remounted with its durable state)");
            }
            Ok(())
        }
        Command::Status { json } => {
            let s = client.status()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
                return Ok(());
            }
            println!(
                "{:<20} {:<6} {:<10} {:>12} {:>12} {:>8} mountpoint",
                "volume", "power", "semantics", "used", "unsynced", "entries"
            );
            for v in s {
                println!(
                    "{:<20} {:<6} {:<10} {:>12} {:>12} {:>8} {}",
                    v.name,
                    if v.powered { "on" } else { "off" },
                    v.semantics,
                    v.used_bytes,
                    v.volatile.unsynced_bytes,
                    v.volatile.unsynced_entries,
                    v.mountpoint.display()
                );
            }
            Ok(())
        }
    }
}

fn serve(socket: &std::path::Path, volumes: Vec<(String, PathBuf)>, config: Config) -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!("serve needs root (it mounts with mount(2)); run it as root");
    }
    let domain = Arc::new(PowerDomain::new());
    for (name, path) in &volumes {
        domain
            .add_volume(name, path, &config)
            .with_context(|| format!("volume {name}"))?;
        tracing::info!(
            "volume {name} mounted at {} ({})",
            path.display(),
            config.semantics
        );
    }
    control::serve(domain.clone(), socket)?;
    tracing::info!("ready; control socket {}", socket.display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        anyhow::Ok(())
    })?;
    tracing::info!("stopping: unmounting every volume");
    domain.shutdown();
    let _ = std::fs::remove_file(socket);
    Ok(())
}
