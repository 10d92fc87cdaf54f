//! What the simulated zone expects of the peer it pulls from: the plan
//! read from its own controller configuration ([`plan`]), and the check
//! that the peer zone's description serves it ([`check_peer`]). Pure.

use super::{AUDIT_CONSUMER, PEER_CLASS, PEER_ZONE_FILE};
use anyhow::{Context, Result, bail};
use bsfg_core::source::Source;
use serde_json::Value;
use std::net::Ipv4Addr;

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
}
