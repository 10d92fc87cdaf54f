//! `bsfg-controller`: the zone's boundary service. See the crate README.

use bsfg_controller::config;
use bsfg_mgmt::ControllerExit;

// Measured: with glibc malloc a third of the controller's CPU under load went
// to malloc/free churn across worker threads (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// The BSFG zone controller: serves bsfg.v1.BoundaryService (gRPC and Connect)
/// with mutual TLS on the zone VIP, backed by the local NATS JetStream cluster.
///
/// In a zone it is started only by bsfg-gate-agent, never at boot. It reports
/// READY to systemd after it holds the zone lease, reached JetStream and bound
/// the VIP, and stops serving on its own if it cannot renew the lease. It
/// takes and renews the lease only while the VIP is on this host, and exits
/// as soon as the VIP leaves or another controller takes the lease.
///
/// Exit codes: 0 stopped cleanly; 78 configuration error; 69 JetStream
/// unreachable or the listen address (VIP) not bindable; 75 the zone lease is
/// held by another host; 79 fenced (the VIP left this host, or another
/// controller took the lease); 70 internal error.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// Configuration file (TOML). Every key can be overridden by an environment
    /// variable: BSFG_<SECTION>__<KEY>, e.g. BSFG_LISTEN__ADDRESS=10.0.0.100:9443.
    #[arg(
        short,
        long,
        env = "BSFG_CONFIG",
        default_value = "/etc/bsfg/controller.toml"
    )]
    config: PathBuf,

    /// Check the configuration and exit (0 when valid).
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bsfg-controller: {e}");
            return ExitCode::from(ControllerExit::Config.code());
        }
    };
    if cli.check_config {
        println!("{}: configuration is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    bsfg_controller::logging::init(&config.logging);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bsfg-controller: cannot start the async runtime: {e}");
            return ExitCode::from(ControllerExit::Software.code());
        }
    };
    match runtime.block_on(bsfg_controller::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "controller stopped");
            eprintln!("bsfg-controller: {e}");
            ExitCode::from(e.status.code())
        }
    }
}
