//! A peer zone node for cross-zone replay drills: the zone the simulated
//! zone pulls facts from (docs/replication.md), as one more namespace on the
//! instance's switch.
//!
//! What the simulated zone relies on comes from its own controller
//! configuration ([`expectation::plan`]): with the example zone (hosts/zone.nix),
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
//! stream at R1). [`expectation::check_peer`] refuses a description that does not serve
//! what the simulated zone expects: its zone name, its endpoint (VIP and
//! controller port), the consumer pulled from, admitting the simulated
//! zone's controller identity ([`super::credentials::controller_identity`],
//! `plant-a-bsfg`), the class the drill appends to, and
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

pub mod expectation;

use expectation::{PeerPlan, check_peer, plan, producer_identity, subnet};

use crate::netns;
use crate::observe::{self, Readiness};
use crate::processes::Kind;
use crate::zone::Zone;
use crate::zone::credentials::{VALID_DAYS, controller_identity};
use crate::zone::files::{HostDirs, mkdir};
use crate::zone::nats_users::ZoneNatsUsers;
use crate::zone::spec::{Binaries, ZoneSpec};
use crate::zone::workload::Workload;
use anyhow::{Context, Result};
use bsfg_core::config::TlsFiles;
use bsfg_testkit::pki::Usage;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
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
        let nats_users = ZoneNatsUsers::generate(&dirs.root);
        let peer = ZoneSpec::evaluate(
            repo,
            &repo.join(PEER_ZONE_FILE),
            &dirs.root,
            &Binaries {
                controller: self.tools().controller.clone(),
                gate_agent: self.tools().gate_agent.clone(),
                nats_server: self.tools().nats_server.clone(),
            },
            Some(&nats_users.arg),
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
        nats_users.write(&peer)?;
        creds.install_nats_route(&peer, &node.name)?;
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
            Usage::ServerAndClient,
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
