//! `bsfg-gate-agent` configuration: a TOML file (`/etc/bsfg/gate-agent.toml`)
//! with `BSFG_*` environment overrides (`BSFG_CONTROLLER__READY_TIMEOUT=20s`
//! sets `controller.ready_timeout`). Every error names the offending key.
//!
//! The schema is documented key by key in `docs/configuration.md`.

use bsfg_core::config::{ConfigError, Logging, NatsConnection};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The zone id, e.g. `plant-a` (reported in status and logs).
    pub zone: String,
    /// This host's name in the zone (`alpha`, `beta`): the name the
    /// controller writes into the lease, so gate 7 can tell "ours" from "theirs".
    pub host: String,
    /// How often the gates are re-evaluated when no event arrives.
    #[serde(default = "default_evaluate_interval", with = "humantime_serde")]
    pub evaluate_interval: Duration,
    pub vip: Vip,
    #[serde(default)]
    pub nats: Nats,
    pub artifacts: Artifacts,
    pub certificate: Certificate,
    pub controller: Controller,
    #[serde(default)]
    pub lease: Lease,
    #[serde(default)]
    pub keepalived: Keepalived,
    #[serde(default)]
    pub promotion: Promotion,
    #[serde(default)]
    pub management: Management,
    #[serde(default)]
    pub time_sync: TimeSync,
    #[serde(default)]
    pub logging: Logging,
}

fn default_evaluate_interval() -> Duration {
    Duration::from_millis(250)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vip {
    /// The zone VIP. Gate 1 passes while it is configured on any local interface.
    pub address: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Nats {
    /// The local NATS server (client protocol).
    pub url: String,
    /// The local NATS server's monitoring endpoint (`/healthz`, `/jsz`, `/varz`).
    pub monitor_url: String,
    /// JetStream meta-cluster voters in the zone (3 in Triad-HA). Quorum is a majority.
    pub voters: usize,
    /// Optional NATS credentials file (`.creds`).
    pub credentials: Option<PathBuf>,
    /// Optional user/password file, one line `user:password`.
    pub user_password_file: Option<PathBuf>,
    /// The agent's NATS user (reads the lease bucket, nothing else), with
    /// `password_file` (one line; LoadCredential= on the appliance).
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Timeout of one probe request (monitoring GET, NATS ping, lease read).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for Nats {
    fn default() -> Self {
        Nats {
            url: "nats://127.0.0.1:4222".into(),
            monitor_url: "http://127.0.0.1:8222".into(),
            voters: 3,
            credentials: None,
            user_password_file: None,
            user: None,
            password_file: None,
            request_timeout: Duration::from_secs(1),
        }
    }
}

impl Nats {
    /// The connection settings shared with the controller's client code.
    pub fn connection(&self) -> NatsConnection {
        NatsConnection {
            url: self.url.clone(),
            credentials: self.credentials.clone(),
            user_password_file: self.user_password_file.clone(),
            user: self.user.clone(),
            password_file: self.password_file.clone(),
            request_timeout: self.request_timeout,
            connect_timeout: self.request_timeout,
            ..NatsConnection::default()
        }
    }

    /// `host:port` of `monitor_url` (plain HTTP only: it is loopback).
    pub fn monitor_addr(&self) -> Result<String, ConfigError> {
        let rest = self.monitor_url.strip_prefix("http://").ok_or_else(|| {
            ConfigError::new(
                "nats.monitor_url",
                "must be http://<host>:<port> (the local monitoring port)",
            )
        })?;
        let addr = rest.trim_end_matches('/');
        if addr.is_empty() || addr.contains('/') || !addr.contains(':') {
            return Err(ConfigError::new(
                "nats.monitor_url",
                format!("{:?} is not http://<host>:<port>", self.monitor_url),
            ));
        }
        Ok(addr.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifacts {
    /// Artifact storage of the controller (`/artifacts`).
    pub dir: PathBuf,
    /// Require `dir` to be a mount point, so a missing disk cannot silently
    /// leave artifacts on the root filesystem. Off only for development.
    #[serde(default = "yes")]
    pub require_mount_point: bool,
}

fn yes() -> bool {
    true
}

/// What happens when the controller's certificate expires within `min_validity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CertificatePolicy {
    /// Promotion is denied (gate 5 fails).
    #[default]
    Deny,
    /// Promotion proceeds; gate 5 reports a warning.
    Warn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// The controller's certificate (PEM; the first certificate is the
    /// leaf, any further ones the intermediates it presents).
    pub path: PathBuf,
    /// The CA bundles the controller and NATS trust (PEM). Every
    /// certificate in them is held to `min_validity` and `policy` like the
    /// leaf: a CA about to expire takes every certificate it signed with it.
    #[serde(default)]
    pub trust: Vec<PathBuf>,
    /// Remaining validity required for promotion.
    #[serde(default = "default_min_validity", with = "humantime_serde")]
    pub min_validity: Duration,
    #[serde(default)]
    pub policy: CertificatePolicy,
}

fn default_min_validity() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

/// How the controller process is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupervisorKind {
    /// `systemctl start/stop <unit>` (production; the unit is never enabled).
    Systemd,
    /// The agent spawns `command` itself (zone simulator, containers).
    Process,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    pub supervisor: SupervisorKind,
    /// systemd unit of the controller (`supervisor = "systemd"`).
    #[serde(default = "default_unit")]
    pub unit: String,
    /// argv of the controller (`supervisor = "process"`).
    #[serde(default)]
    pub command: Vec<String>,
    /// The controller's management address (`/readyz`).
    #[serde(default = "default_controller_management")]
    pub management: SocketAddr,
    /// Time the controller has to report ready after it was started.
    #[serde(default = "default_ready_timeout", with = "humantime_serde")]
    pub ready_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when stopping the controller.
    #[serde(default = "default_stop_timeout", with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// `supervisor = "process"`: where the child's pid is recorded, so an
    /// agent restarted after a crash stops the controller its predecessor
    /// left behind. Default: `controller.pid` next to `keepalived.track_file`.
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
    /// The files the controller cannot start without, by name (its
    /// certificate, key and CA, the NATS system user's password), as
    /// installed on the host (on NixOS the sources of the controller unit's
    /// `LoadCredential=`). The agent only looks whether each exists and is
    /// not empty (it never reads them): gate 5 fails naming every one that
    /// is missing, so a host deployed before its secrets says what to
    /// install, and promotes once they are there.
    #[serde(default)]
    pub credentials: std::collections::BTreeMap<String, PathBuf>,
}

impl AgentConfig {
    /// The VRRP instance whose notifications the agent acts on:
    /// `keepalived.instance`, or `bsfg_<zone>` as the zone library names it.
    pub fn vrrp_instance(&self) -> String {
        if self.keepalived.instance.is_empty() {
            format!("bsfg_{}", self.zone)
        } else {
            self.keepalived.instance.clone()
        }
    }

    /// `controller.pid_file`, or its default in the agent's runtime directory.
    pub fn controller_pid_file(&self) -> PathBuf {
        self.controller
            .pid_file
            .clone()
            .unwrap_or_else(|| self.keepalived.track_file.with_file_name("controller.pid"))
    }
}

fn default_unit() -> String {
    "bsfg-controller.service".into()
}
fn default_controller_management() -> SocketAddr {
    "127.0.0.1:9464".parse().expect("static address")
}
fn default_ready_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_stop_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lease {
    /// JetStream KV bucket of the zone controller lease (same as the controller's).
    pub bucket: String,
    /// The lease TTL (same as the controller's): how long a revision must stay
    /// unchanged before another host may take the lease.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Where to record the lease sighting (revision + first-seen monotonic
    /// time) for the controller this agent starts, so it need not wait a
    /// fresh TTL for a lease the agent has already watched expire. Must equal
    /// the controller's `lease.sighting_file`. Unset: not written.
    pub sighting_file: Option<PathBuf>,
}

impl Default for Lease {
    fn default() -> Self {
        Lease {
            bucket: "bsfg_lease".into(),
            ttl: Duration::from_secs(1),
            sighting_file: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Keepalived {
    /// keepalived's `notify_fifo`: ordered `INSTANCE "<name>" <STATE> <priority>` lines.
    /// The only way anything changes the agent's view of VRRP: a local FIFO
    /// (mode 0600, owned by the agent's user; keepalived writes as root).
    pub notify_fifo: PathBuf,
    /// The zone's VRRP instance (`bsfg_<zone>`; empty: derived from `zone`).
    /// Notifications for any other instance are logged and ignored.
    pub instance: String,
    /// keepalived `track_file` (configured with weight 0): the agent writes a
    /// non-zero value to demote this host (FAULT), 0 to let it bid again.
    pub track_file: PathBuf,
    /// Gate 1 requires a running keepalived in this host's network namespace:
    /// a VIP left on the interface by a keepalived that died is stale (the
    /// peer takes the VIP too) and must not keep or start a controller here.
    /// Off only where no keepalived manages the VIP (tests that add it by hand).
    pub require_running: bool,
}

impl Default for Keepalived {
    fn default() -> Self {
        Keepalived {
            notify_fifo: "/run/bsfg-gate-agent/notify.fifo".into(),
            instance: String::new(),
            track_file: "/run/bsfg-gate-agent/vrrp-track".into(),
            require_running: true,
        }
    }
}

/// Timing of promotion and demotion decisions (added to the issue's schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Promotion {
    /// After a demotion, the host's health gates must pass without a break for
    /// this long before the track file is cleared; after the controller was
    /// stopped for any reason, this long passes before it is started again.
    /// Keeps a flapping gate from flapping the role.
    #[serde(with = "humantime_serde")]
    pub hold_down: Duration,
    /// How long a JetStream gate (2, 3) may fail, or an active controller may
    /// report not-ready, before this host demotes. Covers a JetStream leader
    /// election after a node crash, during which no host could do better, so
    /// the loss of Gamma never moves the role: NATS raft waits 4–9 s before
    /// it campaigns, and when both survivors campaign at once (a split vote)
    /// a second round follows, so two rounds and the answer: 20 s. (12 s,
    /// one round, let a split vote on the lease bucket demote a healthy
    /// active host while Gamma was down.)
    #[serde(with = "humantime_serde")]
    pub stall_grace: Duration,
    /// How long gate 4 may fail only because its write probe has not
    /// answered, before an active host demotes. A host starved of CPU or
    /// I/O for a few seconds looks like hung storage; demoting the only
    /// serving host for that costs the zone `hold_down` and a failover. A
    /// definite failure (not mounted, read-only) demotes at once.
    #[serde(with = "humantime_serde")]
    pub probe_grace: Duration,
}

impl Default for Promotion {
    fn default() -> Self {
        Promotion {
            hold_down: Duration::from_secs(10),
            stall_grace: Duration::from_secs(20),
            probe_grace: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Management {
    /// Plain HTTP, read-only (`GET /status`, `/metrics`, `/healthz`):
    /// loopback or the management network. Nothing served here changes state.
    pub address: SocketAddr,
}

impl Default for Management {
    fn default() -> Self {
        Management {
            address: "127.0.0.1:9465".parse().expect("static address"),
        }
    }
}

/// What an unsynchronised clock does to promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimeSyncPolicy {
    /// Reported in status and metrics, logged when it changes.
    #[default]
    Warn,
    /// Gate 5 fails while the clock is not synchronised.
    Deny,
    /// chronyd is not asked.
    Off,
}

impl TimeSyncPolicy {
    pub fn name(self) -> &'static str {
        match self {
            TimeSyncPolicy::Warn => "warn",
            TimeSyncPolicy::Deny => "deny",
            TimeSyncPolicy::Off => "off",
        }
    }
}

/// The host's time synchronisation, read from chronyd (`chronyc -c tracking`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeSync {
    pub policy: TimeSyncPolicy,
    /// Largest offset from true time still counted as synchronised.
    #[serde(with = "humantime_serde")]
    pub max_offset: Duration,
    /// How often chronyd is asked (at most).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// The chronyc executable (a name is looked up in PATH).
    pub chronyc: PathBuf,
    /// chronyd's command socket (`chronyc -h`); default: chronyc's own.
    pub socket: Option<PathBuf>,
}

impl Default for TimeSync {
    fn default() -> Self {
        TimeSync {
            policy: TimeSyncPolicy::Warn,
            max_offset: Duration::from_secs(1),
            interval: Duration::from_secs(10),
            chronyc: PathBuf::from("chronyc"),
            socket: None,
        }
    }
}

/// Loads and checks the configuration.
pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
    if !path.is_file() {
        return Err(ConfigError::new(
            "--config",
            format!("{} does not exist", path.display()),
        ));
    }
    let figment = Figment::new()
        .merge(Toml::file(path))
        // Other tools' BSFG_ variables (bsfgctl's BSFG_CLI_*) are not keys.
        .merge(
            Env::prefixed("BSFG_")
                .filter(|k| bsfg_core::config::is_config_override(k.as_str()))
                .split("__"),
        );
    from_figment(figment)
}

/// Parses a TOML text with no environment (tests, `--check-config` of documents).
pub fn from_toml(text: &str) -> Result<AgentConfig, ConfigError> {
    from_figment(Figment::new().merge(Toml::string(text)))
}

fn from_figment(figment: Figment) -> Result<AgentConfig, ConfigError> {
    let config: AgentConfig = figment.extract().map_err(first_error)?;
    config.check()?;
    Ok(config)
}

/// figment reports a chain of errors; the first one, with its full key, is
/// what an operator needs.
fn first_error(e: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let Some(first) = e.into_iter().next() else {
        return ConfigError::new("?", "unreadable configuration");
    };
    let mut path = first.path.clone();
    // Depending on the error, figment's path may or may not end with the field.
    let field = match &first.kind {
        Kind::MissingField(name) => Some(name.to_string()),
        Kind::UnknownField(name, _) => Some(name.clone()),
        _ => None,
    };
    if let Some(field) = field
        && path.last() != Some(&field)
    {
        path.push(field);
    }
    let key = bsfg_core::config::key_path(path.iter().map(String::as_str));
    ConfigError::new(key, &first.kind)
}

impl AgentConfig {
    /// Checks what serde cannot: relations and ranges.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, value) in [("zone", &self.zone), ("host", &self.host)] {
            if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::new(
                    key,
                    "must be a non-empty name without spaces",
                ));
            }
        }
        if self.evaluate_interval < Duration::from_millis(10)
            || self.evaluate_interval > Duration::from_secs(10)
        {
            return Err(ConfigError::new(
                "evaluate_interval",
                "must be between 10ms and 10s",
            ));
        }
        if self.vip.address.is_unspecified() || self.vip.address.is_loopback() {
            return Err(ConfigError::new(
                "vip.address",
                "must be a routable address, not a wildcard or loopback",
            ));
        }
        if self.nats.voters == 0 || self.nats.voters.is_multiple_of(2) {
            return Err(ConfigError::new(
                "nats.voters",
                format!("{} is not an odd number of voters", self.nats.voters),
            ));
        }
        if !self.nats.url.starts_with("nats://") && !self.nats.url.starts_with("tls://") {
            return Err(ConfigError::new(
                "nats.url",
                "must be nats://<host>:<port> or tls://<host>:<port>",
            ));
        }
        self.nats.monitor_addr()?;
        if self.nats.request_timeout.is_zero() {
            return Err(ConfigError::new("nats.request_timeout", "must be positive"));
        }
        if !self.artifacts.dir.is_absolute() {
            return Err(ConfigError::new(
                "artifacts.dir",
                "must be an absolute path",
            ));
        }
        if !self.certificate.path.is_absolute() {
            return Err(ConfigError::new(
                "certificate.path",
                "must be an absolute path",
            ));
        }
        if self.time_sync.max_offset.is_zero() {
            return Err(ConfigError::new("time_sync.max_offset", "must be positive"));
        }
        if self.time_sync.interval < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "time_sync.interval",
                "must be at least 1s (each check runs chronyc)",
            ));
        }
        if let Some(p) = self.certificate.trust.iter().find(|p| !p.is_absolute()) {
            return Err(ConfigError::new(
                "certificate.trust",
                format!("{} must be an absolute path", p.display()),
            ));
        }
        match self.controller.supervisor {
            SupervisorKind::Process if self.controller.command.is_empty() => {
                return Err(ConfigError::new(
                    "controller.command",
                    "is required with supervisor = \"process\" (argv of the controller)",
                ));
            }
            SupervisorKind::Systemd
                if !self.controller.unit.ends_with(".service")
                    || self.controller.unit.contains('/') =>
            {
                return Err(ConfigError::new(
                    "controller.unit",
                    format!(
                        "{:?} is not a systemd service unit name",
                        self.controller.unit
                    ),
                ));
            }
            _ => {}
        }
        for (name, path) in &self.controller.credentials {
            if !path.is_absolute() {
                return Err(ConfigError::new(
                    format!("controller.credentials.{name}"),
                    "must be an absolute path",
                ));
            }
        }
        if self.controller.management.ip().is_unspecified() {
            return Err(ConfigError::new(
                "controller.management",
                "must be the address the controller's management endpoint listens on, not a wildcard",
            ));
        }
        for (key, d) in [
            ("controller.ready_timeout", self.controller.ready_timeout),
            ("controller.stop_timeout", self.controller.stop_timeout),
            ("lease.ttl", self.lease.ttl),
        ] {
            if d.is_zero() {
                return Err(ConfigError::new(key, "must be positive"));
            }
        }
        if self.lease.bucket.is_empty()
            || !self
                .lease
                .bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ConfigError::new(
                "lease.bucket",
                "must be a KV bucket name (letters, digits, '_' and '-')",
            ));
        }
        for (key, p) in [
            ("keepalived.notify_fifo", &self.keepalived.notify_fifo),
            ("keepalived.track_file", &self.keepalived.track_file),
        ] {
            if !p.is_absolute() {
                return Err(ConfigError::new(key, "must be an absolute path"));
            }
        }
        if self.keepalived.notify_fifo == self.keepalived.track_file {
            return Err(ConfigError::new(
                "keepalived.track_file",
                "must differ from keepalived.notify_fifo",
            ));
        }
        if self.management.address.ip().is_unspecified() {
            return Err(ConfigError::new(
                "management.address",
                "must be loopback or a management-network address, not a wildcard",
            ));
        }
        if self.management.address == self.controller.management {
            return Err(ConfigError::new(
                "management.address",
                "must differ from controller.management",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The issue's schema, as the zone library renders it.
    pub(crate) const EXAMPLE: &str = r#"
zone = "plant-a"
host = "alpha"
evaluate_interval = "250ms"

[vip]
address = "10.0.0.100"

[nats]
url = "nats://127.0.0.1:4222"
monitor_url = "http://127.0.0.1:8222"
voters = 3

[artifacts]
dir = "/artifacts"
require_mount_point = true

[certificate]
path = "/var/lib/bsfg/tls/controller.pem"
min_validity = "30d"
policy = "deny"

[controller]
supervisor = "systemd"
unit = "bsfg-controller.service"
command = ["bsfg-controller", "--config", "/etc/bsfg/controller.toml"]
management = "127.0.0.1:9464"
ready_timeout = "15s"
stop_timeout = "10s"

[controller.credentials]
tls_certificate = "/var/lib/bsfg/tls/controller.pem"
tls_private_key = "/var/lib/bsfg/tls/controller.key"
tls_ca = "/var/lib/bsfg/tls/ca.pem"
nats_system_password = "/var/lib/bsfg/secrets/nats-system-password"

[lease]
bucket = "bsfg_lease"
ttl = "1s"

[keepalived]
notify_fifo = "/run/bsfg-gate-agent/notify.fifo"
track_file = "/run/bsfg-gate-agent/vrrp-track"

[management]
address = "127.0.0.1:9465"

[logging]
format = "json"
filter = "info"
"#;

    #[test]
    fn the_rendered_example_loads() {
        let c = from_toml(EXAMPLE).unwrap();
        assert_eq!(c.host, "alpha");
        assert_eq!(c.certificate.min_validity, Duration::from_secs(30 * 86400));
        assert_eq!(c.controller.supervisor, SupervisorKind::Systemd);
        assert_eq!(c.nats.monitor_addr().unwrap(), "127.0.0.1:8222");
        assert_eq!(c.promotion, Promotion::default());
    }

    fn edit(from: &str, to: &str) -> String {
        assert!(EXAMPLE.contains(from), "{from}");
        EXAMPLE.replacen(from, to, 1)
    }

    #[test]
    fn time_sync_defaults_to_warn_and_is_checked() {
        let c = from_toml(EXAMPLE).unwrap();
        assert_eq!(c.time_sync, TimeSync::default());
        assert_eq!(c.time_sync.policy, TimeSyncPolicy::Warn);
        let deny = from_toml(&format!(
            "{EXAMPLE}\n[time_sync]\npolicy = \"deny\"\nmax_offset = \"250ms\"\nsocket = \"/run/chrony/chronyd.sock\"\n"
        ))
        .unwrap();
        assert_eq!(deny.time_sync.policy, TimeSyncPolicy::Deny);
        assert_eq!(deny.time_sync.max_offset, Duration::from_millis(250));
        let e = from_toml(&format!("{EXAMPLE}\n[time_sync]\nmax_offset = \"0s\"\n")).unwrap_err();
        assert_eq!(e.key, "time_sync.max_offset", "{e}");
        let e = from_toml(&format!("{EXAMPLE}\n[time_sync]\ninterval = \"100ms\"\n")).unwrap_err();
        assert_eq!(e.key, "time_sync.interval", "{e}");
        assert!(from_toml(&format!("{EXAMPLE}\n[time_sync]\npolicy = \"maybe\"\n")).is_err());
    }

    #[test]
    fn controller_credentials_are_named_absolute_paths() {
        let c = from_toml(EXAMPLE).unwrap();
        assert_eq!(
            c.controller.credentials.keys().collect::<Vec<_>>(),
            [
                "nats_system_password",
                "tls_ca",
                "tls_certificate",
                "tls_private_key"
            ]
        );
        let e = from_toml(&edit(
            "tls_ca = \"/var/lib/bsfg/tls/ca.pem\"",
            "tls_ca = \"ca.pem\"",
        ))
        .unwrap_err();
        assert_eq!(e.key, "controller.credentials.tls_ca", "{e}");
        // Optional: an agent configured without them checks none.
        let none = from_toml(&EXAMPLE.replace(
            "[controller.credentials]\ntls_certificate = \"/var/lib/bsfg/tls/controller.pem\"\ntls_private_key = \"/var/lib/bsfg/tls/controller.key\"\ntls_ca = \"/var/lib/bsfg/tls/ca.pem\"\nnats_system_password = \"/var/lib/bsfg/secrets/nats-system-password\"\n",
            "",
        ))
        .unwrap();
        assert!(none.controller.credentials.is_empty());
    }

    #[test]
    fn unknown_keys_are_named_with_their_section() {
        let e = from_toml(&edit("voters = 3", "voters = 3\nvotes = 3")).unwrap_err();
        assert_eq!(e.key, "nats.votes", "{e}");
    }

    #[test]
    fn missing_keys_are_named() {
        let e = from_toml(&edit("address = \"10.0.0.100\"", "")).unwrap_err();
        assert_eq!(e.key, "vip.address", "{e}");
    }

    #[test]
    fn wrong_types_are_named() {
        let e =
            from_toml(&edit("ready_timeout = \"15s\"", "ready_timeout = \"soon\"")).unwrap_err();
        assert_eq!(e.key, "controller.ready_timeout", "{e}");
        let e = from_toml(&edit("policy = \"deny\"", "policy = \"maybe\"")).unwrap_err();
        assert_eq!(e.key, "certificate.policy", "{e}");
    }

    #[test]
    fn relations_are_checked() {
        let e = from_toml(&edit("voters = 3", "voters = 2")).unwrap_err();
        assert_eq!(e.key, "nats.voters");
        let e = from_toml(&edit(
            "monitor_url = \"http://127.0.0.1:8222\"",
            "monitor_url = \"https://127.0.0.1:8222\"",
        ))
        .unwrap_err();
        assert_eq!(e.key, "nats.monitor_url");
        let e = from_toml(
            &edit("supervisor = \"systemd\"", "supervisor = \"process\"").replace(
                "command = [\"bsfg-controller\", \"--config\", \"/etc/bsfg/controller.toml\"]",
                "",
            ),
        )
        .unwrap_err();
        assert_eq!(e.key, "controller.command");
        let e = from_toml(&edit(
            "address = \"127.0.0.1:9465\"",
            "address = \"0.0.0.0:9465\"",
        ))
        .unwrap_err();
        assert_eq!(e.key, "management.address");
        let e =
            from_toml(&edit("address = \"10.0.0.100\"", "address = \"127.0.0.1\"")).unwrap_err();
        assert_eq!(e.key, "vip.address");
    }

    #[test]
    fn promotion_timing_is_optional_and_overridable() {
        let c = from_toml(&format!(
            "{EXAMPLE}\n[promotion]\nhold_down = \"3s\"\nstall_grace = \"1s\"\n"
        ))
        .unwrap();
        assert_eq!(c.promotion.hold_down, Duration::from_secs(3));
        assert_eq!(c.promotion.stall_grace, Duration::from_secs(1));
    }
}
