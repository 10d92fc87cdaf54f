//! Who the simulator's producer and reader are, derived from the zone's own
//! controller configuration: a class with an `append` identity, and a
//! declared consumer reading that class's store buffer. With the example
//! zone (hosts/zone.nix): `mes-producer` appends `order:` facts to
//! `operational`, `erp-reader` reads them back through `erp-orders`.

use anyhow::{Result, bail};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub zone: String,
    pub class: String,
    /// The subject kind facts are filed under (the consumer's filter, if any).
    pub kind: String,
    pub producer: String,
    pub consumer: String,
    pub reader: String,
}

/// `store:<class>[/<kind>]` → (class, kind).
pub fn parse_store_source(source: &str) -> Option<(&str, Option<&str>)> {
    let rest = source.strip_prefix("store:")?;
    match rest.split_once('/') {
        Some((class, kind)) => Some((class, Some(kind))),
        None => Some((rest, None)),
    }
}

/// The first (by name) consumer of a store buffer whose class has an
/// appending identity, from a controller configuration.
pub fn derive(controller_config: &Value) -> Result<Workload> {
    let zone = controller_config["zone"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let classes = controller_config["classes"].as_object();
    let consumers = controller_config["consumers"].as_object();
    let (Some(classes), Some(consumers)) = (classes, consumers) else {
        bail!("the zone declares no classes or no consumers");
    };
    let mut names: Vec<&String> = consumers.keys().collect();
    names.sort();
    for name in names {
        let c = &consumers[name];
        let Some((class, kind)) = c["source"].as_str().and_then(parse_store_source) else {
            continue;
        };
        let producer = classes
            .get(class)
            .and_then(|k| k["append"].as_array())
            .and_then(|a| a.first())
            .and_then(Value::as_str);
        let reader = c["allowed"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str);
        if let (Some(producer), Some(reader)) = (producer, reader) {
            return Ok(Workload {
                zone,
                class: class.to_owned(),
                kind: kind.unwrap_or("drill").to_owned(),
                producer: producer.to_owned(),
                consumer: name.clone(),
                reader: reader.to_owned(),
            });
        }
    }
    bail!(
        "the zone has no consumer of a store buffer (`source = \"store:<class>[/<kind>]\"`) \
         whose class has an `append` identity; the simulator needs one to read appends back"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_example_zone_gives_mes_producer_and_erp_reader() {
        let c = json!({
            "zone": "plant-a",
            "classes": {
                "operational": {"append": ["mes-producer"]},
                "audit": {"append": ["mes-producer"]}
            },
            "consumers": {
                "erp-orders": {"source": "store:operational/order", "allowed": ["erp-reader"]},
                "from-enterprise": {"source": "forward:enterprise", "allowed": ["mes-reader"]}
            }
        });
        let w = derive(&c).unwrap();
        assert_eq!(
            w,
            Workload {
                zone: "plant-a".into(),
                class: "operational".into(),
                kind: "order".into(),
                producer: "mes-producer".into(),
                consumer: "erp-orders".into(),
                reader: "erp-reader".into(),
            }
        );
    }

    #[test]
    fn a_whole_class_consumer_gets_a_default_kind_and_forward_consumers_are_skipped() {
        assert_eq!(parse_store_source("store:ops"), Some(("ops", None)));
        assert_eq!(parse_store_source("forward:x"), None);
        let c = json!({
            "zone": "plant-t",
            "classes": {"operational": {"append": ["producer"]}},
            "consumers": {"verifier": {"source": "store:operational", "allowed": ["producer"]}}
        });
        assert_eq!(derive(&c).unwrap().kind, "drill");
        let none = json!({"zone": "z", "classes": {}, "consumers": {"f": {"source": "forward:p", "allowed": ["x"]}}});
        assert!(derive(&none).is_err());
    }
}
