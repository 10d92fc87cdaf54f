//! A peer zone node for cross-zone replay drills: the zone the simulated
//! zone pulls facts from (docs/replication.md), as one more namespace on the
//! instance's switch.
//!
//! Everything about the peer the simulated zone relies on comes from the
//! zone's own controller configuration ([`plan`]): with the example zone
//! (hosts/zone.nix), `peers.enterprise` names the peer zone `enterprise`,
//! its certificate identity `enterprise-bsfg`, its endpoint
//! `https://10.10.0.100:9443` and the consumer there, `to-plant-a`; the local
//! consumer `from-enterprise` (source `forward:enterprise`, reader
//! `mes-reader`) reads what was replicated.
//!
//! The node (`<instance>-peer`, interface `eth0` with the endpoint's address
//! in a /24, on the switch port `peer`) runs what a one-host zone runs: one
//! nats-server (JetStream, no cluster) on 127.0.0.1 and one real
//! `bsfg-controller` for the peer zone with the lease enabled (a single
//! controller takes it at start; no gate agent, no keepalived). Its class
//! `operational` is appended to by `<peer>-producer`; its consumer for the
//! simulated zone (`to-plant-a`, `store:operational`) admits exactly the
//! identity of the simulated zone's controller certificate
//! ([`super::credentials::controller_identity`], `plant-a-controller`), which
//! is also declared as the peer `plant-a`. A second consumer,
//! [`AUDIT_CONSUMER`], lets the drill read the peer's own store buffer back
//! (what the peer stored and when) without touching the replication cursor.
//!
//! Certificates: the peer's come from the simulated zone's CA. The example
//! zone declares no `peers.enterprise.ca`, so its controller verifies the
//! peer against its own `tls.ca` — the zone CA — exactly as the controller
//! does in production when both zones share a trust root; a peer CA of its
//! own would need a `ca` path in the zone file. With one CA the peer, which
//! trusts the same CA, also accepts the zone controller's client certificate.
//!
//! Routing: the zone's subnet and the peer's /24 share the switch segment;
//! each side gets an on-link route to the other's subnet (`ip route add
//! <subnet> dev <interface>`), so ARP resolves across them directly and the
//! service hosts reach the peer from their primary address, and the peer
//! answers. Only the service hosts (they run controllers) get the route.
//!
//! The namespace is recorded in the state file before it is created and both
//! daemons right after they start, so `down` removes the peer too, also
//! after the simulator crashed.

use super::Zone;
use super::credentials::{VALID_DAYS, controller_identity};
use super::files::{HostDirs, mkdir};
use super::workload::Workload;
use crate::netns;
use crate::observe::{self, Readiness};
use crate::processes::Kind;
use anyhow::{Context, Result, bail};
use bsfg_core::config::{ControllerConfig, TlsFiles};
use bsfg_core::source::Source;
use bsfg_testkit::pki::Usage;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// The peer node's namespace suffix (`<instance>-peer`), switch port and
/// run directory (`<run dir>/peer/`).
pub const PEER: &str = "peer";
/// The peer node's interface.
pub const PEER_IF: &str = "eth0";
/// The prefix length of the peer's segment (an endpoint carries none).
pub const PEER_PREFIX: u8 = 24;
/// The class the peer's producers append to and the consumers read.
pub const PEER_CLASS: &str = "operational";
/// The subject kind of the facts the drill appends at the peer.
pub const PEER_KIND: &str = "order";
/// A consumer on the peer over the same class, read by the peer's producer
/// identity at the end of a drill: what the peer stored, and when.
pub const AUDIT_CONSUMER: &str = "zonesim-audit";
/// The peer's NATS client port (on 127.0.0.1 inside its namespace).
pub const PEER_NATS_PORT: u16 = 4222;

/// What the simulated zone's configuration says about the peer it pulls
/// from, and who reads what it replicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPlan {
    /// The peer zone (`enterprise`).
    pub zone: String,
    /// The identity the peer's certificate must name (`enterprise-bsfg`).
    pub identity: String,
    /// `https://10.10.0.100:9443`.
    pub endpoint: String,
    pub address: Ipv4Addr,
    pub port: u16,
    /// The consumer on the peer this zone pulls from (`to-plant-a`).
    pub consumer: String,
    /// The local consumer reading the forward buffer (`from-enterprise`).
    pub forward_consumer: String,
    /// Its first allowed identity (`mes-reader`).
    pub forward_reader: String,
}

/// `https://<IPv4>:<port>` → (address, port). The simulator resolves no
/// names (sockets are opened inside namespaces), so the endpoint must be an
/// address literal.
pub fn parse_endpoint(endpoint: &str) -> Result<(Ipv4Addr, u16)> {
    let rest = endpoint
        .strip_prefix("https://")
        .with_context(|| format!("peer endpoint {endpoint:?} is not https://<address>:<port>"))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .with_context(|| format!("peer endpoint {endpoint:?} has no port"))?;
    let address: Ipv4Addr = host.parse().with_context(|| {
        format!("peer endpoint {endpoint:?}: the simulator needs an IPv4 address, not {host:?}")
    })?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("peer endpoint {endpoint:?}: bad port {port:?}"))?;
    Ok((address, port))
}

/// The network of `address/prefix` as `a.b.c.d/prefix` (what `ip route` takes).
pub fn subnet(address: Ipv4Addr, prefix: u8) -> String {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    format!("{}/{prefix}", Ipv4Addr::from(u32::from(address) & mask))
}

/// The first peer (by name) that this zone pulls from (an endpoint and a
/// consumer), with the local consumer of its forward buffer, from a
/// controller configuration.
pub fn plan(controller_config: &Value) -> Result<PeerPlan> {
    let peers = controller_config["peers"].as_object();
    let consumers = controller_config["consumers"].as_object();
    let Some(peers) = peers else {
        bail!("the zone declares no peers; a replication drill needs one it pulls from");
    };
    let mut names: Vec<&String> = peers.keys().collect();
    names.sort();
    for zone in names {
        let p = &peers[zone];
        let (Some(identity), Some(endpoint), Some(consumer)) = (
            p["identity"].as_str(),
            p["endpoint"].as_str(),
            p["consumer"].as_str(),
        ) else {
            continue;
        };
        let mut readers: Vec<(&String, &Value)> = consumers
            .into_iter()
            .flatten()
            .filter(|(_, c)| {
                c["source"].as_str().is_some_and(|s| {
                    matches!(Source::parse(s, 128), Ok(Source::Forward { peer, .. }) if peer == *zone)
                })
            })
            .collect();
        readers.sort_by_key(|(name, _)| name.as_str());
        let Some((forward_consumer, c)) = readers.first() else {
            bail!(
                "peer {zone}: no local consumer reads its forward buffer \
                 (source = \"forward:{zone}\"); the drill reads replicated facts through one"
            );
        };
        let forward_reader = c["allowed"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .with_context(|| format!("consumer {forward_consumer} allows no identity"))?;
        let (address, port) = parse_endpoint(endpoint)?;
        return Ok(PeerPlan {
            zone: zone.clone(),
            identity: identity.to_owned(),
            endpoint: endpoint.to_owned(),
            address,
            port,
            consumer: consumer.to_owned(),
            forward_consumer: (*forward_consumer).clone(),
            forward_reader: forward_reader.to_owned(),
        });
    }
    bail!(
        "the zone declares no peer it pulls from (peers.<zone> with identity, endpoint and \
         consumer); a replication drill needs one"
    )
}

/// The peer's producer identity.
pub fn producer_identity(plan: &PeerPlan) -> String {
    format!("{}-producer", plan.zone)
}

/// The peer's controller configuration (the controller's own schema, as the
/// zone library emits it for a zone, plus the consumers and the peer entry
/// the simulated zone needs), validated as the controller validates it.
pub fn controller_config(
    plan: &PeerPlan,
    receiver_zone: &str,
    management_port: u16,
    dir: &Path,
) -> Result<ControllerConfig> {
    let receiver = controller_identity(receiver_zone);
    let producer = producer_identity(plan);
    let creds = dir.join("credentials");
    let path = |p: &Path| p.display().to_string();
    let value = json!({
        "zone": plan.zone,
        "node": PEER,
        "listen": {"address": SocketAddr::new(plan.address.into(), plan.port).to_string()},
        "management": {"address": SocketAddr::new(plan.address.into(), management_port).to_string()},
        "tls": {
            "certificate": path(&creds.join("cert.pem")),
            "private_key": path(&creds.join("key.pem")),
            "ca": path(&creds.join("ca.pem")),
        },
        "nats": {"url": format!("nats://127.0.0.1:{PEER_NATS_PORT}")},
        // Sized like the simulated zone's streams (storageCap): the 10 GiB
        // default forward buffer would need that much free disk to start.
        "store": {
            "replicas": 1,
            "artifact_dir": path(&dir.join("artifacts")),
            "forward_max_bytes": "256 MiB",
        },
        "classes": {
            PEER_CLASS: {"max_age": "1d", "max_bytes": "256 MiB", "append": [producer]},
        },
        "consumers": {
            plan.consumer.clone(): {
                "source": format!("store:{PEER_CLASS}"),
                "start": "earliest",
                "allowed": [receiver],
            },
            AUDIT_CONSUMER: {
                "source": format!("store:{PEER_CLASS}"),
                "start": "earliest",
                "allowed": [producer],
            },
        },
        "peers": {receiver_zone: {"identity": receiver}},
        "lease": {"enabled": true},
        "logging": {"format": "text", "filter": "info,bsfg_controller=debug"},
    });
    let mut config: ControllerConfig = serde_json::from_value(value)
        .context("the peer's controller configuration does not match the controller's schema")?;
    config
        .check()
        .map_err(|e| anyhow::anyhow!("the peer's controller configuration: {e}"))?;
    Ok(config)
}

/// The peer's nats-server: one node, JetStream, client and monitoring port
/// on 127.0.0.1 only.
pub fn nats_settings(plan: &PeerPlan, dir: &Path) -> Value {
    json!({
        "server_name": plan.zone,
        "host": "127.0.0.1",
        "port": PEER_NATS_PORT,
        "http": "127.0.0.1:8222",
        "jetstream": {"store_dir": dir.join("jetstream").display().to_string()},
    })
}

/// A running peer node.
#[derive(Debug, Clone)]
pub struct PeerNode {
    pub plan: PeerPlan,
    /// The simulated zone's controller identity, the one the peer admits.
    pub receiver_identity: String,
    /// The peer's controller management address (`/readyz`, `/status`).
    pub management: SocketAddr,
    /// The peer's producer (`<peer>-producer`), from the zone CA.
    pub producer: TlsFiles,
    /// The reader of the simulated zone's forward consumer (`mes-reader`).
    pub forward_reader: TlsFiles,
    /// What the load generator appends at the peer: facts from the peer zone.
    pub workload: Workload,
    pub dirs: HostDirs,
}

impl Zone {
    /// Builds and starts the peer node of the zone's first pulling peer:
    /// namespace on the switch, routes both ways, certificates, nats-server
    /// and the controller. Does not wait for it to serve
    /// ([`Zone::wait_peer_serving`]).
    pub fn start_peer(&self) -> Result<PeerNode> {
        let config = &self
            .spec
            .alpha()
            .controller
            .as_ref()
            .context("alpha has no controller configuration")?
            .config;
        let plan = plan(config)?;
        let creds = self
            .credentials()
            .context("no CA in this process (the peer is made with the zone, by a drill)")?;
        let dirs = HostDirs::new(&self.run_dir, PEER);
        for d in [&dirs.root, &dirs.logs, &dirs.credentials] {
            mkdir(d)?;
        }
        mkdir(&dirs.root.join("jetstream"))?;
        mkdir(&dirs.root.join("artifacts"))?;
        let peer_subnet = subnet(plan.address, PEER_PREFIX);
        let alpha = self.spec.alpha();
        let zone_subnet = subnet(alpha.address, alpha.prefix_length);
        self.progress.say(format!(
            "creating the peer node {} ({} zone {}, {}) on the switch",
            self.ns(PEER),
            plan.identity,
            plan.zone,
            plan.endpoint
        ));
        // Routes first on the zone's side (nothing of the peer exists yet).
        for h in self.spec.service_hosts() {
            let host = self.spec.host(h);
            netns::ip_in(
                &self.ns(h),
                &["route", "add", &peer_subnet, "dev", &host.interface],
            )
            .with_context(|| format!("route to the peer's segment on {h}"))?;
        }
        let ns = self.ns(PEER);
        self.record_ns(&ns)?;
        netns::create(&ns)?;
        netns::plug(
            &ns,
            PEER_IF,
            &format!("{}/{PEER_PREFIX}", plan.address),
            &self.ns(netns::SWITCH),
            PEER,
        )?;
        netns::ip_in(&ns, &["route", "add", &zone_subnet, "dev", PEER_IF])
            .context("route from the peer to the zone's segment")?;

        // Certificates from the zone CA (see the module documentation).
        let receiver_identity = controller_identity(&self.spec.zone);
        let server = TlsFiles {
            certificate: dirs.credentials.join("cert.pem"),
            private_key: dirs.credentials.join("key.pem"),
            ca: dirs.credentials.join("ca.pem"),
        };
        creds.issue_to(
            &plan.identity,
            Usage::Both,
            &[IpAddr::V4(plan.address)],
            VALID_DAYS,
            &server,
        )?;
        let client_dir = dirs.root.join("client");
        mkdir(&client_dir)?;
        let producer_id = producer_identity(&plan);
        let producer = TlsFiles {
            certificate: client_dir.join(format!("{producer_id}.pem")),
            private_key: client_dir.join(format!("{producer_id}.key")),
            ca: client_dir.join("ca.pem"),
        };
        creds.issue_to(&producer_id, Usage::Client, &[], VALID_DAYS, &producer)?;
        let zone_clients = self.run_dir.join("client");
        let forward_reader = TlsFiles {
            certificate: zone_clients.join(format!("{}.pem", plan.forward_reader)),
            private_key: zone_clients.join(format!("{}.key", plan.forward_reader)),
            ca: zone_clients.join("ca.pem"),
        };
        creds.issue_to(
            &plan.forward_reader,
            Usage::Client,
            &[],
            VALID_DAYS,
            &forward_reader,
        )?;

        let management_port = self.spec.ports.controller_management;
        let config = controller_config(&plan, &self.spec.zone, management_port, &dirs.root)?;
        let controller_toml = dirs.root.join("controller.toml");
        std::fs::write(
            &controller_toml,
            toml::to_string(&config).context("rendering the peer's controller TOML")?,
        )
        .with_context(|| format!("writing {}", controller_toml.display()))?;
        std::fs::write(
            &dirs.nats_config,
            serde_json::to_string_pretty(&nats_settings(&plan, &dirs.root))?,
        )
        .with_context(|| format!("writing {}", dirs.nats_config.display()))?;

        self.progress.say(format!(
            "starting nats-server and bsfg-controller (zone {}) on the peer node",
            plan.zone
        ));
        self.spawn(
            PEER,
            Kind::Nats,
            vec![
                self.tools().nats_server.display().to_string(),
                "-c".into(),
                dirs.nats_config.display().to_string(),
            ],
        )?;
        self.spawn(
            PEER,
            Kind::Controller,
            vec![
                self.tools().controller.display().to_string(),
                "--config".into(),
                controller_toml.display().to_string(),
            ],
        )?;
        let workload = Workload {
            zone: plan.zone.clone(),
            class: PEER_CLASS.into(),
            kind: PEER_KIND.into(),
            producer: producer_id,
            consumer: AUDIT_CONSUMER.into(),
            reader: receiver_identity.clone(),
        };
        Ok(PeerNode {
            management: SocketAddr::new(plan.address.into(), management_port),
            plan,
            receiver_identity,
            producer,
            forward_reader,
            workload,
            dirs,
        })
    }

    /// Waits until the peer's controller answers `/readyz` 200 (asked from
    /// inside the peer node). The controller retries JetStream set-up for
    /// 30 s and exits otherwise: an exited controller fails at once.
    pub async fn wait_peer_serving(&self, peer: &PeerNode, timeout: Duration) -> Result<()> {
        let addr = peer.management;
        let log = peer.dirs.log(Kind::Controller.name());
        let result = self
            .wait_until("the peer's controller to serve", timeout, || async {
                if self.daemon(PEER, Kind::Controller).is_none() {
                    return Some(Err(anyhow::anyhow!("the peer's controller exited")));
                }
                let r = self
                    .in_ns(PEER, move || {
                        observe::readiness(addr, Duration::from_secs(1))
                    })
                    .await
                    .ok()?;
                (r == Readiness::Serving).then_some(Ok(()))
            })
            .await
            .and_then(|r| r);
        result.map_err(|e| {
            let tail = std::fs::read_to_string(&log)
                .map(|t| {
                    let lines: Vec<&str> = t.lines().collect();
                    lines[lines.len().saturating_sub(15)..].join("\n")
                })
                .unwrap_or_default();
            e.context(format!(
                "peer node; {} (last lines):\n{tail}",
                log.display()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_zone_controller() -> Value {
        json!({
            "zone": "plant-a",
            "classes": {"operational": {"append": ["mes-producer"]}},
            "consumers": {
                "erp-orders": {"source": "store:operational/order", "allowed": ["erp-reader"]},
                "from-enterprise": {"source": "forward:enterprise", "allowed": ["mes-reader"]}
            },
            "peers": {
                "enterprise": {
                    "identity": "enterprise-bsfg",
                    "endpoint": "https://10.10.0.100:9443",
                    "consumer": "to-plant-a"
                }
            }
        })
    }

    #[test]
    fn the_example_zone_pulls_from_enterprise_and_mes_reader_reads_it() {
        let p = plan(&example_zone_controller()).unwrap();
        assert_eq!(
            p,
            PeerPlan {
                zone: "enterprise".into(),
                identity: "enterprise-bsfg".into(),
                endpoint: "https://10.10.0.100:9443".into(),
                address: Ipv4Addr::new(10, 10, 0, 100),
                port: 9443,
                consumer: "to-plant-a".into(),
                forward_consumer: "from-enterprise".into(),
                forward_reader: "mes-reader".into(),
            }
        );
    }

    #[test]
    fn peers_without_a_consumer_or_a_forward_reader_are_refused() {
        let mut c = example_zone_controller();
        c["peers"]["enterprise"]
            .as_object_mut()
            .unwrap()
            .remove("consumer");
        assert!(
            plan(&c)
                .unwrap_err()
                .to_string()
                .contains("no peer it pulls from")
        );
        let mut c = example_zone_controller();
        c["consumers"]
            .as_object_mut()
            .unwrap()
            .remove("from-enterprise");
        let e = plan(&c).unwrap_err().to_string();
        assert!(e.contains("forward:enterprise"), "{e}");
        let e = plan(&json!({"consumers": {}})).unwrap_err().to_string();
        assert!(e.contains("no peers"), "{e}");
    }

    #[test]
    fn endpoints_must_be_address_literals_and_subnets_are_networks() {
        assert_eq!(
            parse_endpoint("https://10.10.0.100:9443").unwrap(),
            (Ipv4Addr::new(10, 10, 0, 100), 9443)
        );
        assert!(parse_endpoint("https://enterprise.example:9443").is_err());
        assert!(parse_endpoint("http://10.10.0.100:9443").is_err());
        assert!(parse_endpoint("https://10.10.0.100").is_err());
        assert_eq!(subnet(Ipv4Addr::new(10, 10, 0, 100), 24), "10.10.0.0/24");
        assert_eq!(subnet(Ipv4Addr::new(10, 20, 0, 11), 16), "10.20.0.0/16");
    }

    #[test]
    fn the_peer_admits_exactly_the_zone_controller_on_its_consumer() {
        let p = plan(&example_zone_controller()).unwrap();
        let c = controller_config(&p, "plant-a", 9464, Path::new("/run/z/peer")).unwrap();
        assert_eq!(c.zone, "enterprise");
        assert_eq!(c.listen.address.to_string(), "10.10.0.100:9443");
        assert_eq!(c.management.address.to_string(), "10.10.0.100:9464");
        assert!(
            c.lease.enabled,
            "a single controller, still behind the lease"
        );
        assert_eq!(c.store.replicas, 1);
        let to = &c.consumers["to-plant-a"];
        assert_eq!(to.source, "store:operational");
        assert_eq!(
            to.allowed.iter().collect::<Vec<_>>(),
            vec!["plant-a-controller"]
        );
        assert_eq!(c.peers["plant-a"].identity, "plant-a-controller");
        assert!(
            c.classes["operational"]
                .append
                .contains("enterprise-producer")
        );
        assert!(
            c.consumers[AUDIT_CONSUMER]
                .allowed
                .contains("enterprise-producer")
        );
        // The TOML the controller reads parses back to the same configuration.
        let text = toml::to_string(&c).unwrap();
        let back: ControllerConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.consumers, c.consumers);
        assert_eq!(
            nats_settings(&p, Path::new("/run/z/peer"))["jetstream"]["store_dir"],
            "/run/z/peer/jetstream"
        );
    }
}
