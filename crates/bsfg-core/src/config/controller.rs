//! `bsfg-controller` configuration (`/etc/bsfg/controller.toml` plus `BSFG_*`).

use super::{ConfigError, Logging, NatsConnection, TlsFiles, is_wildcard};
use crate::cursor::StartPosition;
use crate::limits::Limits;
use crate::names::{self, NameKind};
use crate::source::Source;
use bytesize::ByteSize;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// This zone's id, e.g. `plant-a`.
    pub zone: String,
    /// This host's name within the zone, e.g. `alpha`.
    pub node: String,
    pub listen: Listen,
    #[serde(default)]
    pub management: Management,
    pub tls: TlsFiles,
    #[serde(default)]
    pub nats: NatsConnection,
    pub store: Store,
    #[serde(default)]
    pub limits: Limits,
    /// Stream classes of the store buffer, by name.
    #[serde(default)]
    pub classes: BTreeMap<String, StreamClass>,
    /// Declared consumers, by name.
    #[serde(default)]
    pub consumers: BTreeMap<String, Consumer>,
    /// Artifact buckets, by name.
    #[serde(default)]
    pub buckets: BTreeMap<String, Bucket>,
    /// Peer zones, by zone id.
    #[serde(default)]
    pub peers: BTreeMap<String, Peer>,
    #[serde(default)]
    pub lease: Lease,
    #[serde(default)]
    pub replication: Replication,
    #[serde(default)]
    pub logging: Logging,
    /// How long a SIGTERM waits for in-flight requests before closing connections.
    #[serde(default = "default_drain", with = "humantime_serde")]
    pub drain_timeout: Duration,
}

fn default_drain() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// The service address: the zone VIP and port 9443 in production.
    pub address: SocketAddr,
    /// Development only: allow a wildcard address (`0.0.0.0`, `::`). A zone
    /// controller must bind the VIP, so that a host without the VIP cannot serve.
    #[serde(default)]
    pub allow_wildcard: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Management {
    /// Plain HTTP `/healthz`, `/readyz`, `/status`, `/metrics`: loopback or the
    /// management network, never the VIP.
    pub address: SocketAddr,
}

impl Default for Management {
    fn default() -> Self {
        Management {
            address: "127.0.0.1:9464".parse().expect("static address"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    /// JetStream replicas of every stream and bucket (3 in a Triad-HA zone).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Where artifact blobs live (`/artifacts` in production).
    pub artifact_dir: PathBuf,
    /// How often the store-buffer fill is re-read from JetStream.
    #[serde(default = "default_fill_poll", with = "humantime_serde")]
    pub fill_poll_interval: Duration,
    /// Retention of forward buffers (facts pulled from peers).
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub forward_max_age: Duration,
    /// Size bound of each forward buffer.
    #[serde(default = "default_max_bytes", serialize_with = "exact_bytes")]
    pub forward_max_bytes: ByteSize,
    /// The NATS server (`server_name`) on which the active controller
    /// gathers stream and meta leadership while that server is current: the
    /// zone's witness (gamma), which never runs a controller, so neither the
    /// active host's crash nor the standby's waits for a JetStream election.
    /// Unset, or that server down: the peer already leading the most.
    #[serde(default)]
    pub leaders_on: Option<String>,
    /// How concurrent appends to one fact stream are committed together.
    #[serde(default)]
    pub group_commit: GroupCommit,
}

/// Group commit: appends that arrive together for the same fact stream are
/// written as one JetStream atomic batch, so the RAFT proposal, the
/// replication and (on `sync_interval: always`) the fsync are paid once per
/// batch. A fact that arrives while nothing is in flight goes at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupCommit {
    /// Off: every fact is its own JetStream publish.
    pub enabled: bool,
    /// Facts in one batch (nats-server accepts at most 1,000).
    pub max_facts: usize,
    /// Encoded bytes in one batch.
    #[serde(serialize_with = "exact_bytes")]
    pub max_bytes: ByteSize,
    /// Batches (or lone facts) of one stream awaiting their acknowledgement;
    /// facts that arrive meanwhile form the next batch (nats-server accepts
    /// at most 50 open batches per stream).
    pub max_in_flight: usize,
    /// How long a batch that is not full waits for more facts while another
    /// batch of the stream is in flight (never when the stream is idle).
    /// Zero: it goes as soon as a slot is free.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
}

/// nats-server's own bounds (ADR-50): facts per atomic batch, open batches per stream.
pub const SERVER_MAX_BATCH_FACTS: usize = 1000;
pub const SERVER_MAX_OPEN_BATCHES: usize = 50;

impl Default for GroupCommit {
    fn default() -> Self {
        GroupCommit {
            enabled: true,
            max_facts: 128,
            max_bytes: ByteSize::mib(1),
            max_in_flight: 4,
            max_delay: Duration::ZERO,
        }
    }
}

impl GroupCommit {
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1..=SERVER_MAX_BATCH_FACTS).contains(&self.max_facts) {
            return Err(ConfigError::new(
                "store.group_commit.max_facts",
                format!(
                    "must be between 1 and {SERVER_MAX_BATCH_FACTS} (nats-server's limit per atomic batch)"
                ),
            ));
        }
        if !(1..=SERVER_MAX_OPEN_BATCHES).contains(&self.max_in_flight) {
            return Err(ConfigError::new(
                "store.group_commit.max_in_flight",
                format!(
                    "must be between 1 and {SERVER_MAX_OPEN_BATCHES} (nats-server's limit of open batches per stream)"
                ),
            ));
        }
        if self.max_bytes.as_u64() == 0 {
            return Err(ConfigError::new(
                "store.group_commit.max_bytes",
                "must be at least one byte",
            ));
        }
        if self.max_delay > Duration::from_secs(1) {
            return Err(ConfigError::new(
                "store.group_commit.max_delay",
                format!("{:?} is longer than 1 s", self.max_delay),
            ));
        }
        Ok(())
    }
}

fn default_replicas() -> usize {
    3
}
fn default_fill_poll() -> Duration {
    Duration::from_secs(1)
}
fn default_max_age() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}
fn default_max_bytes() -> ByteSize {
    ByteSize::gib(10)
}

/// Sizes are written back as exact byte counts: `ByteSize`'s own rendering
/// ("2.5 GiB") rounds, so a rendered configuration would change its limits.
fn exact_bytes<S: serde::Serializer>(size: &ByteSize, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(size.as_u64())
}

/// JetStream's `max_bytes` is a signed 64-bit count.
const MAX_STREAM_BYTES: u64 = i64::MAX as u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamClass {
    /// Retention (`max_age` of the stream).
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// Capacity; appends are refused at `limits.store_buffer_reject_percent` of it.
    #[serde(default = "default_max_bytes", serialize_with = "exact_bytes")]
    pub max_bytes: ByteSize,
    /// Identities allowed to append to this class (`*`: any identity of the zone's CA).
    #[serde(default)]
    pub append: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    /// `store:<class>[/<kind>]` or `forward:<peer>[/<kind>]`.
    pub source: String,
    /// `earliest`, `latest`, or `{ offset = N }`.
    #[serde(default)]
    pub start: StartPosition,
    /// Identities allowed to fetch and confirm.
    #[serde(default)]
    pub allowed: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Identities allowed to `GetObject`.
    #[serde(default)]
    pub read: BTreeSet<String>,
    /// Identities allowed to `PutObject`.
    #[serde(default)]
    pub write: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// The identity (certificate CN or first DNS SAN) the peer zone's controller presents.
    pub identity: String,
    /// The peer's controller, `https://<peer VIP>:9443`; needed to pull from it.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The consumer on the peer that this zone pulls from.
    #[serde(default)]
    pub consumer: Option<String>,
    /// The peer's trust root, if it differs from this zone's `tls.ca`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

/// Cross-zone replay: how this zone pulls facts from its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Replication {
    /// Facts requested per `FetchFacts` (the peer caps it to its own limit);
    /// also bounds the memory a replicator holds.
    pub page_facts: u32,
    /// Facts of one page written to the forward buffer concurrently.
    pub concurrency: usize,
    /// Pause between polls when a peer has nothing new.
    #[serde(with = "humantime_serde")]
    pub idle_poll: Duration,
    /// Backoff after a failure starts here, doubles, and is jittered.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// How often artifacts still missing after a failover are retried.
    #[serde(with = "humantime_serde")]
    pub rehydrate_retry: Duration,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            page_facts: 256,
            concurrency: 16,
            idle_poll: Duration::from_millis(25),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            rehydrate_retry: Duration::from_secs(30),
        }
    }
}

/// The zone controller lease (one writer per zone). See `bsfg_core::lease`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lease {
    /// Off only for single-controller development setups.
    pub enabled: bool,
    /// JetStream KV bucket holding the lease key.
    pub bucket: String,
    /// Time after which an unrenewed lease may be taken by another host.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How often the holder renews.
    #[serde(with = "humantime_serde")]
    pub renew_interval: Duration,
    /// The holder stops serving this long before the TTL runs out, covering
    /// clock-rate drift and scheduling delay.
    #[serde(with = "humantime_serde")]
    pub safety_margin: Duration,
    /// Where the gate agent on this host records its lease sighting
    /// (`bsfg_store::LeaseSighting`); read once at start so a lease the agent
    /// already saw expire is taken without waiting another TTL.
    pub sighting_file: Option<PathBuf>,
}

impl Default for Lease {
    fn default() -> Self {
        Lease {
            enabled: true,
            bucket: "bsfg_lease".into(),
            ttl: Duration::from_millis(1000),
            renew_interval: Duration::from_millis(200),
            safety_margin: Duration::from_millis(250),
            sighting_file: None,
        }
    }
}

impl Lease {
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.safety_margin >= self.ttl {
            return Err(ConfigError::new(
                "lease.safety_margin",
                "must be shorter than lease.ttl",
            ));
        }
        // At least two renewal attempts must fit before the holder fences itself.
        if self.renew_interval * 2 > self.ttl - self.safety_margin {
            return Err(ConfigError::new(
                "lease.renew_interval",
                format!(
                    "{:?} leaves fewer than two renewals within ttl - safety_margin ({:?})",
                    self.renew_interval,
                    self.ttl - self.safety_margin
                ),
            ));
        }
        if self.bucket.is_empty()
            || !self
                .bucket
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ConfigError::new(
                "lease.bucket",
                "use letters, digits, '_' and '-' only",
            ));
        }
        Ok(())
    }
}

impl ControllerConfig {
    /// Everything that can be checked without I/O. Identities are lower-cased.
    pub fn check(&mut self) -> Result<(), ConfigError> {
        let max = self.limits.max_name_len;
        self.limits
            .check()
            .map_err(|(k, m)| ConfigError::new(k, m))?;
        names::check_token(NameKind::Zone, &self.zone, max)
            .map_err(|e| ConfigError::new("zone", e))?;
        names::check_token(NameKind::Host, &self.node, max)
            .map_err(|e| ConfigError::new("node", e))?;
        if is_wildcard(&self.listen.address) && !self.listen.allow_wildcard {
            return Err(ConfigError::new(
                "listen.address",
                format!(
                    "{} is a wildcard address; a zone controller binds the VIP only \
                     (set listen.allow_wildcard = true for development)",
                    self.listen.address
                ),
            ));
        }
        if self.listen.address == self.management.address {
            return Err(ConfigError::new(
                "management.address",
                "must differ from listen.address",
            ));
        }
        self.store.group_commit.check()?;
        if !(1..=5).contains(&self.store.replicas) {
            return Err(ConfigError::new(
                "store.replicas",
                "must be between 1 and 5",
            ));
        }
        if self.classes.is_empty() {
            return Err(ConfigError::new(
                "classes",
                "declare at least one stream class",
            ));
        }
        for (name, class) in &mut self.classes {
            let key = format!("classes.{name}");
            names::check_token(NameKind::StreamClass, name, max)
                .map_err(|e| ConfigError::new(&key, e))?;
            if !(1024 * 1024..=MAX_STREAM_BYTES).contains(&class.max_bytes.as_u64()) {
                return Err(ConfigError::new(
                    format!("{key}.max_bytes"),
                    "must be at least 1 MiB and at most 8 EiB",
                ));
            }
            if class.max_age.is_zero() {
                return Err(ConfigError::new(
                    format!("{key}.max_age"),
                    "must be positive",
                ));
            }
            class.append = normalise_identities(&format!("{key}.append"), &class.append, max)?;
        }
        if self.store.forward_max_bytes.as_u64() > MAX_STREAM_BYTES {
            return Err(ConfigError::new(
                "store.forward_max_bytes",
                "must be at most 8 EiB",
            ));
        }
        for (zone, peer) in &mut self.peers {
            let key = format!("peers.{zone}");
            names::check_token(NameKind::Zone, zone, max).map_err(|e| ConfigError::new(&key, e))?;
            if *zone == self.zone {
                return Err(ConfigError::new(&key, "a zone cannot be its own peer"));
            }
            peer.identity = peer.identity.to_ascii_lowercase();
            names::check_identity(&peer.identity, max)
                .map_err(|e| ConfigError::new(format!("{key}.identity"), e))?;
            // An endpoint alone serves artifact rehydration; pulling facts needs a consumer too.
            if peer.consumer.is_some() && peer.endpoint.is_none() {
                return Err(ConfigError::new(
                    format!("{key}.consumer"),
                    "pulling from a peer needs its endpoint too",
                ));
            }
            if let Some(e) = &peer.endpoint
                && !(e.starts_with("https://")
                    && e.rsplit_once(':')
                        .is_some_and(|(_, p)| p.parse::<u16>().is_ok()))
            {
                return Err(ConfigError::new(
                    format!("{key}.endpoint"),
                    format!("{e:?} is not https://<host>:<port>"),
                ));
            }
        }
        for (name, consumer) in &mut self.consumers {
            let key = format!("consumers.{name}");
            names::check_token(NameKind::Consumer, name, max)
                .map_err(|e| ConfigError::new(&key, e))?;
            let source = Source::parse(&consumer.source, max)
                .map_err(|e| ConfigError::new(format!("{key}.source"), e.detail))?;
            match &source {
                Source::Store { class, .. } if !self.classes.contains_key(class) => {
                    return Err(ConfigError::new(
                        format!("{key}.source"),
                        format!("unknown class {class:?}"),
                    ));
                }
                Source::Forward { peer, .. } if !self.peers.contains_key(peer) => {
                    return Err(ConfigError::new(
                        format!("{key}.source"),
                        format!("unknown peer {peer:?}"),
                    ));
                }
                _ => {}
            }
            consumer.allowed =
                normalise_identities(&format!("{key}.allowed"), &consumer.allowed, max)?;
        }
        for (name, bucket) in &mut self.buckets {
            let key = format!("buckets.{name}");
            names::check_token(NameKind::Bucket, name, max)
                .map_err(|e| ConfigError::new(&key, e))?;
            bucket.read = normalise_identities(&format!("{key}.read"), &bucket.read, max)?;
            bucket.write = normalise_identities(&format!("{key}.write"), &bucket.write, max)?;
        }
        if self.lease.enabled {
            self.lease.check()?;
        }
        if self.nats.system_user_password_file.is_some() && self.nats.system_user.is_empty() {
            return Err(ConfigError::new(
                "nats.system_user",
                "must name the system account's user when nats.system_user_password_file is set",
            ));
        }
        if self.replication.page_facts == 0 || self.replication.concurrency == 0 {
            return Err(ConfigError::new(
                "replication",
                "page_facts and concurrency must be at least 1",
            ));
        }
        if self.replication.backoff_min > self.replication.backoff_max {
            return Err(ConfigError::new(
                "replication.backoff_min",
                "must not exceed replication.backoff_max",
            ));
        }
        Ok(())
    }
}

fn normalise_identities(
    key: &str,
    ids: &BTreeSet<String>,
    max: usize,
) -> Result<BTreeSet<String>, ConfigError> {
    ids.iter()
        .map(|id| {
            if id == "*" {
                return Ok(id.clone());
            }
            let id = id.to_ascii_lowercase();
            names::check_identity(&id, max).map_err(|e| ConfigError::new(key, e))?;
            Ok(id)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"
zone = "plant-a"
node = "alpha"
[listen]
address = "10.0.0.100:9443"
[tls]
certificate = "/run/credentials/bsfg-controller.service/cert.pem"
private_key = "/run/credentials/bsfg-controller.service/key.pem"
ca = "/run/credentials/bsfg-controller.service/ca.pem"
[store]
artifact_dir = "/artifacts"
[classes.operational]
max_age = "7d"
max_bytes = "1 GiB"
append = ["MES-Producer"]
[consumers.erp-orders]
source = "store:operational/order"
start = "earliest"
allowed = ["erp-reader"]
[consumers.from-latest]
source = "store:operational"
start = { offset = 7 }
[buckets.drawings]
read = ["erp-reader"]
write = ["mes-producer"]
[peers.enterprise]
identity = "enterprise-bsfg"
"#;

    fn example() -> ControllerConfig {
        toml::from_str(EXAMPLE).unwrap()
    }

    #[test]
    fn sizes_render_exactly_and_stay_within_jetstream_range() {
        // Found by the config fuzz target: "2562 MiB" rendered as "2.5 GiB".
        let mut c = example();
        c.classes.get_mut("operational").unwrap().max_bytes = ByteSize::mib(2562);
        let back: ControllerConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        c.classes.get_mut("operational").unwrap().max_bytes = ByteSize::b(u64::MAX);
        assert_eq!(c.check().unwrap_err().key, "classes.operational.max_bytes");
    }

    #[test]
    fn example_parses_and_checks() {
        let mut c = example();
        c.check().unwrap();
        assert!(
            c.classes["operational"].append.contains("mes-producer"),
            "identities are lower-cased"
        );
        assert_eq!(c.consumers["from-latest"].start, StartPosition::Offset(7));
        assert_eq!(c.classes["operational"].max_bytes, ByteSize::gib(1));
        assert_eq!(c.management.address.to_string(), "127.0.0.1:9464");
    }

    #[test]
    fn wildcard_bind_needs_the_development_flag() {
        let mut c = example();
        c.listen.address = "0.0.0.0:9443".parse().unwrap();
        assert_eq!(c.check().unwrap_err().key, "listen.address");
        c.listen.allow_wildcard = true;
        c.check().unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = example();
        c.consumers.get_mut("erp-orders").unwrap().source = "store:audit".into();
        assert_eq!(c.check().unwrap_err().key, "consumers.erp-orders.source");

        let mut c = example();
        c.classes
            .insert("bad.name".into(), c.classes["operational"].clone());
        assert_eq!(c.check().unwrap_err().key, "classes.bad.name");

        let mut c = example();
        c.lease.renew_interval = Duration::from_millis(600);
        assert_eq!(c.check().unwrap_err().key, "lease.renew_interval");
    }

    #[test]
    fn the_system_user_is_optional() {
        let c = example();
        assert_eq!(c.nats.system_user_password_file, None, "off by default");
        assert_eq!(c.nats.system_user, "bsfg-system");
        let text = EXAMPLE.replace(
            "[store]",
            "[nats]\nsystem_user_password_file = \"/run/credentials/bsfg-controller.service/nats-system-password\"\n[store]",
        );
        let mut c: ControllerConfig = toml::from_str(&text).unwrap();
        c.check().unwrap();
        assert_eq!(
            c.nats.system_user_password_file.as_deref(),
            Some(std::path::Path::new(
                "/run/credentials/bsfg-controller.service/nats-system-password"
            ))
        );
        c.nats.system_user.clear();
        assert_eq!(c.check().unwrap_err().key, "nats.system_user");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = EXAMPLE.replace("[store]", "[store]\nartefact_dir = \"/x\"");
        let err = toml::from_str::<ControllerConfig>(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("artefact_dir"), "{err}");
    }

    #[test]
    fn group_commit_is_on_by_default_and_its_bounds_are_checked() {
        let c = example();
        assert!(c.store.group_commit.enabled);
        assert_eq!(
            c.store.group_commit.max_delay,
            Duration::ZERO,
            "no wait when idle"
        );
        let with = |section: &str| {
            let text = EXAMPLE.replace(
                "[classes.operational]",
                &format!("[store.group_commit]\n{section}\n[classes.operational]"),
            );
            let mut c: ControllerConfig = toml::from_str(&text).unwrap();
            c.check().map(|_| c.store.group_commit)
        };
        let g = with("max_facts = 500\nmax_in_flight = 8\nmax_delay = \"2ms\"").unwrap();
        assert_eq!((g.max_facts, g.max_in_flight), (500, 8));
        assert_eq!(g.max_delay, Duration::from_millis(2));
        for (section, key) in [
            ("max_facts = 1001", "store.group_commit.max_facts"),
            ("max_facts = 0", "store.group_commit.max_facts"),
            ("max_in_flight = 51", "store.group_commit.max_in_flight"),
            ("max_bytes = 0", "store.group_commit.max_bytes"),
            ("max_delay = \"2s\"", "store.group_commit.max_delay"),
        ] {
            assert_eq!(with(section).unwrap_err().key, key, "{section}");
        }
    }
}
