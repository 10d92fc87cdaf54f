//! The seed corpus: valid and nearly valid inputs of every target, so the
//! fuzzer starts where the parsers accept. `corpus/<target>/` holds them
//! (written by `BSFG_FUZZ_BLESS=1 cargo nextest run -p bsfg-fuzz`, which also
//! renders the example zone through the zone library with nix-instantiate).

use crate::targets::{connect, peer_page};
use bsfg_controller::rpc::connect::wire::{self, Codec};
use bsfg_proto::v1::*;
use prost::Message;
use std::path::Path;

/// One seed: target, file name, bytes.
#[derive(Debug, Clone)]
pub struct Seed {
    pub target: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
}

fn seed(target: &'static str, name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Seed {
    Seed {
        target,
        name: name.into(),
        bytes: bytes.into(),
    }
}

fn with_mode(mode: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(bytes);
    out
}

/// A valid fact from `from` (the contract's example shape).
pub fn fact(id: &str, from: &str) -> Fact {
    Fact {
        envelope: Some(Envelope {
            message_id: id.into(),
            from_zone: from.into(),
            to_zone: "plant-a".into(),
            produced_at_unix_ms: 1_780_000_000_000,
            correlation_id: "c-1".into(),
            ..Default::default()
        }),
        subject: "order:line-3/4711".into(),
        predicate: "has_status".into(),
        object_json: r#"{"status":"released","qty":[1,2.5,null]}"#.into(),
    }
}

fn facts() -> Vec<(&'static str, Fact)> {
    let plain = fact("m-0001", "plant-b");
    let mut labelled = fact("m-0002", "plant-b");
    let env = labelled.envelope.as_mut().unwrap();
    env.labels.insert("line".into(), "3".into());
    env.labels.insert("shift".into(), "b".into());
    env.object_media_type = "application/json".into();
    env.object_schema = "urn:order:v1".into();
    let mut with_artifact = fact("m-0003", "plant-b");
    with_artifact.subject = "drawing:17".into();
    with_artifact.envelope.as_mut().unwrap().artifact = Some(ArtifactRef {
        bucket: "drawings".into(),
        key: "part/17.pdf".into(),
        digest: format!("sha256:{}", "ab".repeat(32)),
        size: 1000,
        media_type: "application/pdf".into(),
    });
    let mut bad_subject = fact("m-0004", "plant-b");
    bad_subject.subject = "Order:a b".into();
    let mut bad_json = fact("m-0005", "plant-b");
    bad_json.object_json = "{'a':1}".into();
    vec![
        ("plain", plain),
        ("labelled", labelled),
        ("artifact", with_artifact),
        ("bad-subject", bad_subject),
        ("bad-json", bad_json),
    ]
}

/// The seeds that need nothing but this crate.
pub fn static_seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    for (name, f) in facts() {
        let proto = f.encode_to_vec();
        let json = serde_json::to_vec(&f).unwrap();
        out.push(seed("fact", format!("{name}.pb"), with_mode(0, &proto)));
        out.push(seed("fact", format!("{name}.json"), with_mode(1, &json)));
        out.push(seed(
            "fact",
            format!("{name}-small.pb"),
            with_mode(2, &proto),
        ));
    }

    let append = AppendFactRequest {
        stream_class: "operational".into(),
        fact: Some(facts()[1].1.clone()),
    };
    let fetch = FetchFactsRequest {
        consumer_name: "erp-orders".into(),
        limit: 10,
    };
    let confirm = ConfirmReceiptRequest {
        consumer_name: "erp-orders".into(),
        offset: 7,
    };
    let unary: [(&str, usize, Vec<u8>, Vec<u8>); 3] = [
        (
            "append",
            0,
            wire::encode(Codec::Json, &append).to_vec(),
            wire::encode(Codec::Proto, &append).to_vec(),
        ),
        (
            "fetch",
            1,
            wire::encode(Codec::Json, &fetch).to_vec(),
            wire::encode(Codec::Proto, &fetch).to_vec(),
        ),
        (
            "confirm",
            2,
            wire::encode(Codec::Json, &confirm).to_vec(),
            wire::encode(Codec::Proto, &confirm).to_vec(),
        ),
    ];
    for (name, method, json, proto) in unary {
        out.push(seed(
            "connect",
            format!("{name}.json"),
            connect::request(method, 0, b"application/json", Some(b"1"), &json),
        ));
        out.push(seed(
            "connect",
            format!("{name}-noheader.json"),
            connect::request(method, 0, b"application/json; charset=utf-8", None, &json),
        ));
        out.push(seed(
            "connect",
            format!("{name}.pb"),
            connect::request(method, 0, b"application/proto", Some(b"1"), &proto),
        ));
    }
    out.push(seed(
        "connect",
        "append-version-2.json",
        connect::request(0, 0, b"application/json", Some(b"2"), b"{}"),
    ));
    for codec in [Codec::Json, Codec::Proto] {
        let ext = if codec == Codec::Json { "json" } else { "pb" };
        let ct = wire::content_type(codec, true).as_bytes();
        let header = PutObjectRequest {
            part: Some(put_object_request::Part::Header(ObjectHeader {
                bucket: "drawings".into(),
                key: "part/17.pdf".into(),
                media_type: "application/pdf".into(),
                size: 6,
            })),
        };
        let chunk = PutObjectRequest {
            part: Some(put_object_request::Part::Chunk(b"%PDF-1".to_vec())),
        };
        let mut body = Vec::new();
        for m in [&header, &chunk] {
            body.extend_from_slice(&wire::envelope(0, &wire::encode(codec, m)));
        }
        body.extend_from_slice(&wire::envelope(wire::END_STREAM, b"{}"));
        out.push(seed(
            "connect",
            format!("put-object.{ext}"),
            connect::request(3, 3, ct, Some(b"1"), &body),
        ));
        let get = GetObjectRequest {
            bucket: "drawings".into(),
            key: "part/17.pdf".into(),
        };
        let mut body = wire::envelope(0, &wire::encode(codec, &get)).to_vec();
        body.extend_from_slice(&wire::envelope(wire::END_STREAM, b"{}"));
        out.push(seed(
            "connect",
            format!("get-object.{ext}"),
            connect::request(4, 1, ct, None, &body),
        ));
        // Ends inside an envelope.
        out.push(seed(
            "connect",
            format!("get-object-truncated.{ext}"),
            connect::request(4, 2, ct, None, &body[..body.len() - 8]),
        ));
    }

    let stored = |offset, fact, at| StoredFact {
        offset,
        fact,
        stored_at_unix_ms: at,
    };
    let all = facts();
    let page = FetchFactsResponse {
        facts: vec![
            stored(1, Some(all[0].1.clone()), 1_780_000_000_100),
            stored(2, Some(all[1].1.clone()), 1_780_000_000_200),
            stored(3, Some(all[2].1.clone()), 1_780_000_000_300),
            stored(4, Some(fact("m-0006", "elsewhere")), 1_780_000_000_400),
            stored(5, Some(all[3].1.clone()), 1_780_000_000_500),
            stored(6, None, 1_780_000_000_600),
        ],
        backlog: 12,
    };
    out.push(seed(
        "peer_page",
        "mixed.pb",
        with_mode(0, &page.encode_to_vec()),
    ));
    out.push(seed(
        "peer_page",
        "mixed-small.pb",
        with_mode(1, &page.encode_to_vec()),
    ));
    let hostile_clock = FetchFactsResponse {
        facts: vec![stored(9, Some(fact("m-0007", peer_page::PEER)), i64::MIN)],
        backlog: u64::MAX,
    };
    out.push(seed(
        "peer_page",
        "hostile-clock.pb",
        with_mode(0, &hostile_clock.encode_to_vec()),
    ));
    out.push(seed("peer_page", "empty.pb", with_mode(0, &[])));

    for (name, text) in [
        (
            "fifo",
            "INSTANCE \"bsfg_plant-a\" MASTER 100\nINSTANCE \"bsfg_plant-a\" BACKUP 100\n\nGROUP \"bsfg group\" FAULT 0\n",
        ),
        ("script-args", "INSTANCE bsfg_plant-a STOP"),
        ("deleted", "INSTANCE \"VI_1\" DELETED 0\n"),
        (
            "not-vrrp",
            "VS [192.168.201.15]:tcp:80 UP\nINSTANCE \"VI_1\n",
        ),
    ] {
        out.push(seed("keepalived", name, text.as_bytes()));
    }

    out.push(seed(
        "config",
        "controller-unknown-key.toml",
        with_mode(
            0,
            b"zone = \"plant-a\"\n[listen]\nadress = \"10.0.0.1:50051\"\n",
        ),
    ));
    out.push(seed(
        "config",
        "gate-agent-bad-duration.toml",
        with_mode(1, b"zone = \"plant-a\"\nevaluate_interval = \"soon\"\n"),
    ));

    let zone_example = include_str!("../../bsfgctl/tests/data/zone-example.json");
    out.push(seed(
        "zone",
        "zone-example.json",
        with_mode(0, zone_example.as_bytes()),
    ));
    let mut two_alphas: serde_json::Value = serde_json::from_str(zone_example).unwrap();
    two_alphas["hosts"]["beta"]["role"] = "alpha".into();
    out.push(seed(
        "zone",
        "zone-two-alphas.json",
        with_mode(0, two_alphas.to_string().as_bytes()),
    ));
    out
}

/// The seeds the zone library renders for the example zone (hosts/zone.nix):
/// the simulator's zone and every host's controller and gate-agent TOML.
pub fn zone_library_seeds(repo: &Path) -> anyhow::Result<Vec<Seed>> {
    use bsfg_zonesim::zone::spec::{Binaries, expression};
    let bins = Binaries {
        controller: "/opt/bsfg/bin/bsfg-controller".into(),
        gate_agent: "/opt/bsfg/bin/bsfg-gate-agent".into(),
        nats_server: "/opt/bsfg/bin/nats-server".into(),
    };
    let expr = expression(
        repo,
        &repo.join("hosts/zone.nix"),
        Path::new("/run/zonesim"),
        &bins,
        None,
    );
    let out = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "nix-instantiate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seeds = vec![seed(
        "zone",
        "simulator-zone.json",
        with_mode(1, &out.stdout),
    )];
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    for (host, h) in spec["hosts"].as_object().into_iter().flatten() {
        if let Some(c) = h.get("controller").filter(|c| !c.is_null()) {
            let text = c["configText"].as_str().unwrap_or_default();
            seeds.push(seed(
                "config",
                format!("controller-{host}.toml"),
                with_mode(0, text.as_bytes()),
            ));
        }
        if let Some(a) = h.get("gateAgent").filter(|a| !a.is_null()) {
            let text = a["configText"].as_str().unwrap_or_default();
            seeds.push(seed(
                "config",
                format!("gate-agent-{host}.toml"),
                with_mode(1, text.as_bytes()),
            ));
        }
    }
    Ok(seeds)
}
