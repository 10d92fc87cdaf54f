//! Configuration types of the binaries.
//!
//! Only data and validation live here; loading (TOML file + `BSFG_*`
//! environment through figment) happens in each binary. Every check returns
//! a [`ConfigError`] naming the offending key, so a bad configuration exits
//! with one line an operator can act on.

mod controller;
mod environment;

pub use environment::{FOREIGN_NAMES, FOREIGN_PREFIXES, is_config_override};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_and_messages_stay_on_one_line() {
        assert_eq!(key_path(["lease", "ttl"]), "lease.ttl");
        assert_eq!(key_path(["classes", "m\nax"]), r#"classes."m\nax""#);
        assert_eq!(key_path([""]), r#""""#);
        assert_eq!(key_path([]), "(file)");
        let e = ConfigError::new("k", "found `a\nb`");
        assert_eq!(e.message, "found `a\\nb`");
    }
}

pub use controller::*;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A configuration problem: the dotted key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration key `{key}`: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl fmt::Display) -> Self {
        ConfigError {
            key: one_line(&key.into()),
            message: one_line(&message.to_string()),
        }
    }
}

/// A dotted key path as TOML writes it: bare segments as they are, any
/// other segment (empty, spaces, control characters) quoted and escaped, so
/// the path is never empty and always fits on one line.
pub fn key_path<'a>(segments: impl IntoIterator<Item = &'a str>) -> String {
    let bare = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let parts: Vec<String> = segments
        .into_iter()
        .map(|s| {
            if bare(s) {
                s.to_owned()
            } else {
                serde_json::to_string(s).expect("a string serialises")
            }
        })
        .collect();
    if parts.is_empty() {
        "(file)".to_owned()
    } else {
        parts.join(".")
    }
}

/// `text` with control characters (newlines in a quoted key, ...) escaped:
/// a configuration error is one line in a log or on a terminal.
pub fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Certificate, key and trust root, all referenced by path (never inlined:
/// secrets stay out of configuration files and the Nix store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain presented by this process.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub private_key: PathBuf,
    /// PEM trust root(s) of the zone: client certificates must chain to one of these.
    pub ca: PathBuf,
}

/// How a process reaches its local NATS server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConnection {
    /// Client URL; in a zone always the local server (`nats://127.0.0.1:4222`).
    pub url: String,
    /// Optional NATS credentials file (`.creds`).
    pub credentials: Option<PathBuf>,
    /// Optional user/password file, one line `user:password`.
    pub user_password_file: Option<PathBuf>,
    /// The NATS user this process connects as (the zone renders one per
    /// daemon, each with only the subjects it needs); with `password_file`.
    pub user: Option<String>,
    /// A file holding `user`'s password (one line), e.g. from
    /// systemd's LoadCredential=.
    pub password_file: Option<PathBuf>,
    /// The user of the NATS system account (`$SYS`) named by
    /// `system_user_password_file`.
    pub system_user: String,
    /// Controller only: a file holding the password of `system_user` (one
    /// line). With it the active controller opens a second connection, as
    /// that user, for what only the system account may do: moving the
    /// JetStream meta leader off its own host. Without it the meta leader
    /// stays wherever JetStream elects it.
    pub system_user_password_file: Option<PathBuf>,
    /// Timeout of one JetStream API request or publish acknowledgement.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Timeout of the initial connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for NatsConnection {
    fn default() -> Self {
        NatsConnection {
            url: "nats://127.0.0.1:4222".into(),
            credentials: None,
            user_password_file: None,
            user: None,
            password_file: None,
            system_user: "bsfg-system".into(),
            system_user_password_file: None,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (journald, log shippers).
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Logging {
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info,bsfg_store=debug`. `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// True for `0.0.0.0`, `::` and friends.
pub fn is_wildcard(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_unspecified()
}

/// The controller example configuration used by unit tests across this crate.
#[cfg(test)]
pub(crate) fn tests_example() -> &'static str {
    controller::tests::EXAMPLE
}
