//! Running a parsed command line. Each command prints its result (table or
//! JSON) and returns the exit code, or an error that carries one.

pub mod facts;
pub mod objects;

use crate::cli::{Cli, Command, ZoneCommand};
use crate::exit::{self, CliError, Result};
use crate::identity::ConfigFile;
use clap::CommandFactory;

/// Runs `cli`; returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bsfgctl: {e}");
            e.code()
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8> {
    let json = cli.json;
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "bsfgctl", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man { out } => write_man_pages(&out),
        Command::Backup(a) => crate::backup::backup(&a, json).await,
        Command::Restore(a) => crate::backup::restore(&a, json).await,
        Command::BackupArtifacts(a) => crate::backup::artifacts::backup_artifacts(&a, json),
        Command::RestoreArtifacts(a) => crate::backup::artifacts::restore_artifacts(&a, json),
        command => {
            let file = ConfigFile::load(cli.config.as_deref())?;
            match command {
                Command::Append(a) => facts::append(&a, &file, json).await,
                Command::Fetch(a) => facts::fetch(&a, &file, json).await,
                Command::Confirm(a) => facts::confirm(&a, &file, json).await,
                Command::Tail(a) => facts::tail(&a, &file, json).await,
                Command::PutObject(a) => objects::put(&a, &file, json).await,
                Command::GetObject(a) => objects::get(&a, &file, json).await,
                Command::Zone(ZoneCommand::Status(a)) => {
                    crate::zone::status_command(&a, &file, json).await
                }
                Command::Commission(a) => crate::commission::command(&a, &file, json).await,
                Command::Upgrade(a) => crate::upgrade::command(&a, &file, json).await,
                Command::Pki(c) => crate::pki::command(&c, &file, json),
                Command::Install(c) => crate::install::command(&c, &file),
                Command::Completions { .. }
                | Command::Man { .. }
                | Command::Backup(_)
                | Command::Restore(_)
                | Command::BackupArtifacts(_)
                | Command::RestoreArtifacts(_) => unreachable!(),
            }
        }
    }
}

/// `bsfgctl.1` plus `bsfgctl-<sub>.1` for every subcommand (nested: `bsfgctl-zone-status.1`).
fn write_man_pages(dir: &std::path::Path) -> Result<u8> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::Usage(format!("{}: {e}", dir.display())))?;
    let mut written = Vec::new();
    let cmd = Cli::command();
    write_man(&cmd, "bsfgctl", dir, &mut written)?;
    for line in written {
        println!("{line}");
    }
    Ok(exit::OK)
}

fn write_man(
    cmd: &clap::Command,
    name: &str,
    dir: &std::path::Path,
    written: &mut Vec<String>,
) -> Result<()> {
    let cmd = cmd.clone().name(name.to_owned());
    let path = dir.join(format!("{name}.1"));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .map_err(|e| CliError::Failed(format!("rendering {name}.1: {e}")))?;
    std::fs::write(&path, buf).map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
    written.push(path.display().to_string());
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

/// Prints a serialisable value as pretty JSON.
pub fn print_json<T: serde::Serialize>(v: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    );
}
