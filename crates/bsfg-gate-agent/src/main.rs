//! `bsfg-gate-agent`: see the crate documentation and docs/gate-agent.md.

use bsfg_gate_agent::config::{self, AgentConfig, SupervisorKind};
use bsfg_gate_agent::keepalived::{self, Notification, parse_line};
use bsfg_gate_agent::supervisor::process::ChildSupervisor;
use bsfg_gate_agent::supervisor::systemd::SystemdSupervisor;
use bsfg_gate_agent::{check, daemon, exit, status};
use bsfg_mgmt::http;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The BSFG gate agent: the only thing that starts the zone controller on
/// Alpha and Beta, and only while this host holds the VIP and every
/// promotion gate passes (local JetStream, quorum, artifact storage,
/// certificate validity, controller readiness, the zone lease).
///
/// Exit codes: 0 success; 1 check failed / daemon unreachable; 69 the
/// management address or the keepalived paths are unusable; 70 internal
/// error; 78 configuration error.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// Configuration file (TOML). Every key can be overridden by an environment
    /// variable BSFG_<SECTION>__<KEY>, e.g. BSFG_CONTROLLER__READY_TIMEOUT=20s.
    #[arg(
        short,
        long,
        env = "BSFG_CONFIG",
        default_value = "/etc/bsfg/gate-agent.toml",
        global = true
    )]
    config: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: evaluate the gates continuously, start and stop the
    /// controller, demote through keepalived's track file. systemd
    /// Type=notify (READY=1, WATCHDOG=1 on every evaluation).
    Run,

    /// Keepalived vrrp_script: exit 0 only while this host's gate agent
    /// daemon answers (GET /healthz on management.address) and the local
    /// JetStream is healthy (monitoring /healthz?js-enabled-only=true and the
    /// server answering a client ping).
    Check,

    /// Forward a keepalived notification to the daemon through its notify
    /// FIFO (keepalived.notify_fifo; only root and the agent's user may write
    /// it), for a classic `notify` script. Arguments as keepalived passes
    /// them: INSTANCE|GROUP <name> MASTER|BACKUP|FAULT|STOP [priority].
    Notify {
        /// INSTANCE or GROUP.
        kind: String,
        /// VRRP instance or group name.
        name: String,
        /// MASTER, BACKUP, FAULT or STOP.
        state: String,
        priority: Option<u32>,
    },

    /// Show the daemon's view: role, VRRP state, each gate with its reason,
    /// controller, lease holder and recent transitions.
    Status {
        /// Print the /status JSON document instead of a table.
        #[arg(long)]
        json: bool,
        /// The daemon's management address (default: management.address from the configuration).
        #[arg(long)]
        management: Option<String>,
    },

    /// Check the configuration and exit (0 when valid).
    CheckConfig,
}

fn load(path: &std::path::Path) -> Result<AgentConfig, ExitCode> {
    config::load(path).map_err(|e| {
        eprintln!("bsfg-gate-agent: {}: {e}", path.display());
        ExitCode::from(exit::CONFIG)
    })
}

fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build();
    builder.map_err(|e| {
        eprintln!("bsfg-gate-agent: cannot start the async runtime: {e}");
        ExitCode::from(exit::SOFTWARE)
    })
}

/// The management address: the flag, else the configuration's.
fn management_addr(cli: &Cli, flag: &Option<String>) -> Result<String, ExitCode> {
    match flag {
        Some(a) => Ok(a.clone()),
        None => Ok(load(&cli.config)?.management.address.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(&cli) {
        Ok(code) | Err(code) => code,
    }
}

fn real_main(cli: &Cli) -> Result<ExitCode, ExitCode> {
    match &cli.command {
        Command::CheckConfig => {
            load(&cli.config)?;
            println!("{}: configuration is valid", cli.config.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let config = load(&cli.config)?;
            bsfg_gate_agent::init_logging(&config.logging);
            let rt = runtime(true)?;
            let result = rt.block_on(async {
                match config.controller.supervisor {
                    SupervisorKind::Process => {
                        let s = ChildSupervisor::new(
                            config.controller.command.clone(),
                            config.controller.stop_timeout,
                        )
                        .with_pid_file(config.controller_pid_file());
                        daemon::run(config, s).await
                    }
                    SupervisorKind::Systemd => {
                        let s = SystemdSupervisor::new(
                            config.controller.unit.clone(),
                            config.controller.stop_timeout,
                        );
                        daemon::run(config, s).await
                    }
                }
            });
            match result {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    tracing::error!(error = %e, "gate agent cannot run");
                    eprintln!("bsfg-gate-agent: {e}");
                    Err(ExitCode::from(exit::UNAVAILABLE))
                }
            }
        }
        Command::Check => {
            let config = load(&cli.config)?;
            let rt = runtime(false)?;
            match rt.block_on(check::run(&config)) {
                Ok(reason) => {
                    println!("ok: {reason}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(reason) => {
                    eprintln!("{reason}");
                    Err(ExitCode::from(exit::FAILED))
                }
            }
        }
        Command::Notify {
            kind,
            name,
            state,
            priority,
        } => {
            let config = load(&cli.config)?;
            let line = Notification {
                kind: kind.to_ascii_uppercase(),
                name: name.clone(),
                state: None,
                raw_state: state.to_ascii_uppercase(),
                priority: *priority,
            }
            .to_line();
            if let Err(e) = parse_line(&line) {
                eprintln!("bsfg-gate-agent notify: {e}");
                return Err(ExitCode::from(exit::FAILED));
            }
            let fifo = &config.keepalived.notify_fifo;
            match keepalived::write_fifo(fifo, &line) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("bsfg-gate-agent notify: {}: {e}", fifo.display());
                    Err(ExitCode::from(exit::FAILED))
                }
            }
        }
        Command::Status { json, management } => {
            let addr = management_addr(cli, management)?;
            let rt = runtime(false)?;
            let http::Response { status: code, body } = rt
                .block_on(http::get(&addr, "/status", Duration::from_secs(3)))
                .map_err(|e| {
                    eprintln!("bsfg-gate-agent status: daemon at {addr} unreachable: {e}");
                    ExitCode::from(exit::FAILED)
                })?;
            if code != 200 {
                eprintln!(
                    "bsfg-gate-agent status: daemon answered {code}: {}",
                    body.trim()
                );
                return Err(ExitCode::from(exit::FAILED));
            }
            if *json {
                println!("{}", body.trim());
                return Ok(ExitCode::SUCCESS);
            }
            match serde_json::from_str::<bsfg_mgmt::AgentStatus>(&body) {
                Ok(s) => {
                    print!("{}", status::render(&s));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("bsfg-gate-agent status: unexpected answer ({e}): {body}");
                    Err(ExitCode::from(exit::FAILED))
                }
            }
        }
    }
}
