//! `bsfg-gate-agent`: the process on Alpha and Beta that alone decides
//! whether the BSFG controller runs there (contract section 7).
//!
//! Promotion path: keepalived notify → [`keepalived`] (ordered events) →
//! [`promotion`] (pure) ← [`gates`] (pure) ← [`probes`] (the only I/O that
//! feeds gates) → [`supervisor`] starts the controller → the controller binds
//! the VIP, reaches JetStream, takes the lease → `/readyz` 200 → active.
//! Demotion is the same path in reverse and the fastest thing the agent does:
//! stop the controller, then set keepalived's track file so the VIP moves.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | the TOML + `BSFG_*` configuration |
//! | [`gates`] | the seven gates: observed facts → pass/warn/fail + reason |
//! | [`probes`] | netlink, NATS monitoring, mounts, certificate, readiness, lease |
//! | [`promotion`] | the state machine: events and observations → actions |
//! | [`supervisor`] | start/stop the controller: systemd or a child process |
//! | [`keepalived`] | notify FIFO in, track file out |
//! | [`status`] | builds `/status` ([`bsfg_mgmt::agent`]): the human table, Prometheus metrics |
//! | [`host_facts`] | what only the host can see, for `bsfgctl` (`/status` `host_facts`) |
//! | [`daemon`] | the loop that wires it together (`run`) |
//! | [`check`] | keepalived's `vrrp_script` (`check`) |
//!
//! See `docs/gate-agent.md` for operation and `docs/configuration.md` for the keys.

pub mod check;
pub mod config;
pub mod daemon;
pub mod gates;
pub mod host_facts;
pub mod keepalived;
pub mod probes;
pub mod promotion;
pub mod status;
pub mod supervisor;

/// Process exit codes (sysexits.h, as the controller uses).
pub mod exit {
    /// `check`: local JetStream unhealthy. `notify`/`status`: the daemon did not answer.
    pub const FAILED: u8 = 1;
    /// EX_UNAVAILABLE: the management address could not be bound, or the
    /// keepalived FIFO / track file directory is unusable.
    pub const UNAVAILABLE: u8 = 69;
    /// EX_SOFTWARE: internal error.
    pub const SOFTWARE: u8 = 70;
    /// EX_CONFIG: configuration error (the message names the key).
    pub const CONFIG: u8 = 78;
}

/// `tracing` output: human lines or JSON (for journald and log shippers).
pub fn init_logging(logging: &bsfg_core::config::Logging) {
    use bsfg_core::config::LogFormat;
    use tracing_subscriber::EnvFilter;
    // RUST_LOG wins over the configured filter, for ad-hoc debugging.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&logging.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match logging.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
