//! `bsfgctl`: see `docs/bsfgctl.md`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = bsfgctl::cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bsfgctl: cannot start the runtime: {e}");
            return ExitCode::from(bsfgctl::exit::FAILED);
        }
    };
    ExitCode::from(rt.block_on(bsfgctl::commands::run(cli)))
}
