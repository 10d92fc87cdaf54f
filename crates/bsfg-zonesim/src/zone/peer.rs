//! A peer zone node for cross-zone replay drills: the zone the simulated
//! zone pulls facts from (docs/replication.md), as one more namespace on the
//! instance's switch.
//!
//! What the simulated zone relies on comes from its own controller
//! configuration ([`plan`]): with the example zone (hosts/zone.nix),
//! `peers.enterprise` names the peer zone `enterprise`, its certificate
//! identity `enterprise-bsfg`, its endpoint `https://10.10.0.100:9443` and
//! the consumer there, `to-plant-a`; the local consumer `from-enterprise`
//! (source `forward:enterprise`, reader `mes-reader`) reads what was
//! replicated.
//!
//! The peer zone itself is a zone description, [`PEER_ZONE_FILE`], which
//! the zone library (modules/lib/simulator.nix) evaluates like the
//! simulated zone's: its alpha's controller configuration and nats-server
//! settings are what the node runs, written out unchanged except that the
//! one nats-server runs without its cluster block (the node is one server
//! of the three the description names, so the description keeps every
//! stream at R1). [`check_peer`] refuses a description that does not serve
//! what the simulated zone expects: its zone name, its endpoint (VIP and
//! controller port), the consumer pulled from, admitting the simulated
//! zone's controller identity ([`super::credentials::controller_identity`],
//! `plant-a-controller`), the class the drill appends to, and
//! [`AUDIT_CONSUMER`], through which the drill reads the peer's own store
//! buffer back (what it stored and when) without touching the replication
//! cursor.
//!
//! The node (`<instance>-peer`, interface `eth0`, on the switch port `peer`)
//! carries the peer's VIP and its alpha's management address; it runs one
//! nats-server and one real `bsfg-controller` with the lease enabled (a
//! single controller takes it at start; no gate agent, no keepalived: the
//! peer's own failover is not what the drill exercises).
//!
//! Certificates: the peer's come from the simulated zone's CA. The example
//! zone declares no `peers.enterprise.ca`, so its controller verifies the
//! peer against its own `tls.ca` — the zone CA — exactly as the controller
//! does in production when both zones share a trust root; a peer CA of its
//! own would need a `ca` path in the zone file. With one CA the peer, which
//! trusts the same CA, also accepts the zone controller's client certificate.
//!
//! Routing: the zone's subnet and the peer's share the switch segment; each
//! side gets an on-link route to the other's subnet (`ip route add <subnet>
//! dev <interface>`), so ARP resolves across them directly and the service
//! hosts reach the peer from their primary address, and the peer answers.
//! Only the service hosts (they run controllers) get the route.
//!
//! The namespace is recorded in the state file before it is created and both
//! daemons right after they start, so `down` removes the peer too, also
//! after the simulator crashed.

use super::Zone;
use super::credentials::{VALID_DAYS, controller_identity};
use super::files::{HostDirs, mkdir};
use super::spec::{Binaries, ZoneSpec};
use super::workload::Workload;
use crate::netns;
use crate::observe::{self, Readiness};
use crate::processes::Kind;
use anyhow::{Context, Result, bail};
use bsfg_core::config::TlsFiles;
use bsfg_core::source::Source;
use bsfg_testkit::pki::Usage;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// The peer node's namespace suffix (`<instance>-peer`), switch port and
/// run directory (`<run dir>/peer/`).
pub const PEER: &str = "peer";
/// The peer zone's description, relative to the repository.
pub const PEER_ZONE_FILE: &str = "crates/bsfg-zonesim/zones/enterprise.nix";
/// The peer node's interface.
pub const PEER_IF: &str = "eth0";
/// The class the peer's producers append to and the consumers read.
pub const PEER_CLASS: &str = "operational";
/// The subject kind of the facts the drill appends at the peer.
pub const PEER_KIND: &str = "order";
/// A consumer on the peer over the same class, read by the peer's producer
/// identity at the end of a drill: what the peer stored, and when.
pub const AUDIT_CONSUMER: &str = "zonesim-audit";

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

/// Whether the peer zone's controller configuration (`config`, the zone
/// library's, for the peer's VIP `vip` and controller port `port`) serves
/// what the simulated zone expects of it (`plan`), admitting `receiver`,
/// the simulated zone's controller identity, on the consumer it pulls.
pub fn check_peer(
    plan: &PeerPlan,
    vip: Ipv4Addr,
    port: u16,
    config: &Value,
    receiver: &str,
) -> Result<()> {
    let zone = config["zone"].as_str().unwrap_or_default();
    if zone != plan.zone {
        bail!(
            "{PEER_ZONE_FILE} describes zone {zone:?}; the zone pulls from {:?}",
            plan.zone
        );
    }
    let (want_address, want_port) = (plan.address, plan.port);
    if (vip, port) != (want_address, want_port) {
        bail!(
            "{PEER_ZONE_FILE} serves on https://{vip}:{port}; the zone pulls from {}",
            plan.endpoint
        );
    }
    let admits = |consumer: &str, identity: &str| {
        config["consumers"][consumer]["allowed"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i.as_str() == Some(identity)))
    };
    if !admits(&plan.consumer, receiver) {
        bail!(
            "{PEER_ZONE_FILE}: consumer {} must exist and allow {receiver}, the zone's controller",
            plan.consumer
        );
    }
    let producer = producer_identity(plan);
    if !admits(AUDIT_CONSUMER, &producer) {
        bail!("{PEER_ZONE_FILE}: consumer {AUDIT_CONSUMER} must exist and allow {producer}");
    }
    let appends = config["classes"][PEER_CLASS]["append"]
        .as_array()
        .is_some_and(|a| a.iter().any(|i| i.as_str() == Some(producer.as_str())));
    if !appends {
        bail!("{PEER_ZONE_FILE}: class {PEER_CLASS} must exist and let {producer} append");
    }
    Ok(())
}

/// The node's nats-server: the library's settings for the peer's alpha,
/// without the cluster block (it is the peer zone's only server here).
pub fn node_nats_settings(settings: &Value) -> Value {
    let mut s = settings.clone();
    if let Some(m) = s.as_object_mut() {
        m.remove("cluster");
    }
    s
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
    /// the peer zone's description through the zone library, namespace on
    /// the switch, routes both ways, certificates, nats-server and the
    /// controller. Does not wait for it to serve ([`Zone::wait_peer_serving`]).
    /// `repo`: where [`PEER_ZONE_FILE`] and the zone library are.
    pub fn start_peer(&self, repo: &Path) -> Result<PeerNode> {
        let config = self.spec.controller_config()?;
        let plan = plan(config)?;
        let creds = self
            .credentials()
            .context("no CA in this process (the peer is made with the zone, by a drill)")?;
        let receiver_identity = controller_identity(&self.spec.zone);
        let dirs = HostDirs::new(&self.run_dir, PEER);
        let peer = ZoneSpec::evaluate(
            repo,
            &repo.join(PEER_ZONE_FILE),
            &dirs.root,
            &Binaries {
                controller: self.tools().controller.clone(),
                gate_agent: self.tools().gate_agent.clone(),
                nats_server: self.tools().nats_server.clone(),
            },
            None,
        )?;
        let node = peer.alpha();
        let controller = node
            .controller
            .as_ref()
            .context("the peer zone's alpha runs no controller")?;
        check_peer(
            &plan,
            peer.vip.address,
            peer.ports.controller,
            &controller.config,
            &receiver_identity,
        )?;
        for d in [
            &dirs.root,
            &dirs.logs,
            &node.paths.jetstream,
            &node.paths.artifacts,
            &node.paths.agent_runtime,
        ] {
            mkdir(d)?;
        }
        let peer_subnet = subnet(peer.vip.address, peer.vip.prefix_length);
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
            &format!("{}/{}", peer.vip.address, peer.vip.prefix_length),
            &self.ns(netns::SWITCH),
            PEER,
        )?;
        // The management endpoint and monitoring listen on alpha's address.
        netns::ip_in(
            &ns,
            &[
                "addr",
                "add",
                &format!("{}/{}", node.management_address, node.prefix_length),
                "dev",
                PEER_IF,
            ],
        )
        .context("the peer's management address")?;
        netns::ip_in(&ns, &["route", "add", &zone_subnet, "dev", PEER_IF])
            .context("route from the peer to the zone's segment")?;

        // Certificates from the zone CA (see the module documentation).
        let server = TlsFiles {
            certificate: node.paths.tls.certificate.clone(),
            private_key: node.paths.tls.private_key.clone(),
            ca: node.paths.tls.ca.clone(),
        };
        creds.issue_to(
            &plan.identity,
            Usage::Both,
            &[IpAddr::V4(peer.vip.address)],
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

        let controller_toml = &node.paths.controller_config;
        std::fs::write(controller_toml, &controller.config_text)
            .with_context(|| format!("writing {}", controller_toml.display()))?;
        std::fs::write(
            &dirs.nats_config,
            serde_json::to_string_pretty(&node_nats_settings(&node.nats.settings))?,
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
            management: SocketAddr::new(
                node.management_address.into(),
                peer.ports.controller_management,
            ),
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
    use serde_json::json;

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

    /// The library's controller configuration for the peer's alpha, as far
    /// as [`check_peer`] reads it.
    fn peer_controller() -> Value {
        json!({
            "zone": "enterprise",
            "classes": {"operational": {"append": ["enterprise-producer"]}},
            "consumers": {
                "to-plant-a": {"source": "store:operational", "allowed": ["plant-a-controller"]},
                "zonesim-audit": {"source": "store:operational", "allowed": ["enterprise-producer"]}
            }
        })
    }

    #[test]
    fn the_peer_must_serve_what_the_zone_pulls() {
        let p = plan(&example_zone_controller()).unwrap();
        let vip = Ipv4Addr::new(10, 10, 0, 100);
        let c = peer_controller();
        check_peer(&p, vip, 9443, &c, "plant-a-controller").unwrap();
        let refused = |vip: Ipv4Addr, port: u16, c: &Value, receiver: &str| {
            check_peer(&p, vip, port, c, receiver)
                .unwrap_err()
                .to_string()
        };
        assert!(
            refused(Ipv4Addr::new(10, 10, 0, 99), 9443, &c, "plant-a-controller")
                .contains("https://10.10.0.99:9443")
        );
        assert!(refused(vip, 9444, &c, "plant-a-controller").contains("9444"));
        assert!(refused(vip, 9443, &c, "plant-b-controller").contains("consumer to-plant-a"));
        let mut other = c.clone();
        other["zone"] = "plant-b".into();
        assert!(refused(vip, 9443, &other, "plant-a-controller").contains("\"plant-b\""));
        let mut no_audit = c.clone();
        no_audit["consumers"]
            .as_object_mut()
            .unwrap()
            .remove(AUDIT_CONSUMER);
        assert!(refused(vip, 9443, &no_audit, "plant-a-controller").contains(AUDIT_CONSUMER));
        let mut no_class = c;
        no_class["classes"] = json!({});
        assert!(refused(vip, 9443, &no_class, "plant-a-controller").contains("class operational"));
    }

    #[test]
    fn the_node_runs_its_server_without_the_cluster() {
        let s = json!({"server_name": "alpha", "port": 4222, "cluster": {"name": "enterprise"}, "jetstream": {"store_dir": "/x"}});
        let n = node_nats_settings(&s);
        assert!(n.get("cluster").is_none());
        assert_eq!(n["jetstream"], s["jetstream"]);
    }

    /// The description in the repository, through the real zone library.
    #[test]
    fn the_repository_peer_zone_serves_the_example_zone() {
        let repo = crate::zone::options::default_repo();
        let dir = tempfile::tempdir().unwrap();
        let bins = Binaries {
            controller: "/bin/c".into(),
            gate_agent: "/bin/g".into(),
            nats_server: "/bin/n".into(),
        };
        let evaluate = |zone_file: &str| {
            ZoneSpec::evaluate(&repo, &repo.join(zone_file), dir.path(), &bins, None).unwrap()
        };
        let peer = evaluate(PEER_ZONE_FILE);
        let example = evaluate("hosts/zone.nix");
        let p = plan(&example.alpha().controller.as_ref().unwrap().config).unwrap();
        let c = &peer.alpha().controller.as_ref().unwrap().config;
        check_peer(
            &p,
            peer.vip.address,
            peer.ports.controller,
            c,
            &controller_identity(&example.zone),
        )
        .unwrap();
        assert_eq!(c["store"]["replicas"], 1, "one server: every stream at R1");
        // Validated as the controller validates its configuration.
        let mut config: bsfg_core::config::ControllerConfig =
            serde_json::from_value(c.clone()).unwrap();
        config.check().unwrap();
    }
}
