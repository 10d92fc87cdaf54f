//! `tracing` output: human lines or JSON (for journald and log shippers).

use bsfg_core::config::{LogFormat, Logging};
use tracing_subscriber::EnvFilter;

pub fn init(logging: &Logging) {
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
