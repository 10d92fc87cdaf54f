//! `Fact` as a producer sends it (protobuf or Connect JSON), its validation
//! and its payload identity.
//!
//! Mode byte: bit 0 selects JSON, bit 1 the small limits (boundaries are
//! reached with fewer bytes).

use super::{assert_rejection, mode};
use crate::Outcome;
use bsfg_core::{Limits, Reason, fact, identity};
use bsfg_proto::v1::Fact;
use prost::Message;

/// Limits small enough that every one of them is within a mutation's reach.
pub fn small_limits() -> Limits {
    Limits {
        max_fact_bytes: 600,
        max_name_len: 16,
        max_subject_len: 48,
        max_object_key_len: 24,
        max_labels: 3,
        max_label_value_len: 8,
        max_object_bytes: 4096,
        max_connect_body_bytes: 1024,
        ..Limits::default()
    }
}

pub fn run(data: &[u8]) -> Outcome {
    let (m, bytes) = mode(data);
    let decoded = if m & 1 == 0 {
        Fact::decode(bytes).ok()
    } else {
        serde_json::from_slice::<Fact>(bytes).ok()
    };
    let Some(f) = decoded else {
        return Outcome::Rejected;
    };
    let limits = if m & 2 == 0 {
        Limits::default()
    } else {
        small_limits()
    };
    check_fact(&f, &limits)
}

/// Every invariant of one decoded fact; shared with the other targets that
/// carry facts (Connect's `AppendFact`, a peer's page).
pub fn check_fact(f: &Fact, limits: &Limits) -> Outcome {
    let encoded = f.encode_to_vec();
    // Identity is a function of the payload, whatever the encoding did.
    let id = identity::payload_identity(f);
    let back = Fact::decode(encoded.as_slice()).expect("our own encoding decodes");
    assert_eq!(&back, f, "protobuf round trip changed the fact");
    assert_eq!(identity::payload_identity(&back), id);
    assert!(identity::same_payload(&encoded, f));
    assert!(id.starts_with("sha256:") && fact::check_digest(&id).is_ok());

    match fact::validate(f, limits) {
        Err(e) => {
            assert_rejection(&e, &[Reason::InvalidFact, Reason::FactTooLarge]);
            assert_eq!(
                e.reason == Reason::FactTooLarge,
                encoded.len() > limits.max_fact_bytes,
                "fact_too_large must mean exactly: encoded size above the limit"
            );
            Outcome::Rejected
        }
        Ok(valid) => {
            assert_eq!(valid.encoded_len, encoded.len());
            check_accepted(f, limits, valid.kind, &id);
            Outcome::Accepted
        }
    }
}

fn check_accepted(f: &Fact, limits: &Limits, kind: &str, id: &str) {
    // The subject reassembles from its parts.
    let s = fact::parse_subject(&f.subject, limits).expect("validated subject parses");
    assert_eq!(s.kind, kind);
    let rebuilt = match s.scope {
        Some(scope) => format!("{}:{scope}/{}", s.kind, s.id),
        None => format!("{}:{}", s.kind, s.id),
    };
    assert_eq!(rebuilt, f.subject);

    // Connect JSON carries exactly the same fact.
    let json = serde_json::to_vec(f).expect("facts serialise");
    let from_json: Fact = serde_json::from_slice(&json).expect("our own JSON parses");
    assert_eq!(&from_json, f, "JSON round trip changed the fact");
    fact::validate(&from_json, limits).expect("a valid fact stays valid through JSON");

    // A retry re-stamps the time: still the same payload.
    let env = f.envelope.as_ref().expect("validated");
    let mut retried = f.clone();
    let e = retried.envelope.as_mut().expect("validated");
    e.produced_at_unix_ms = e.produced_at_unix_ms.wrapping_add(1).max(1);
    assert_eq!(identity::payload_identity(&retried), id);
    assert!(identity::same_payload(&f.encode_to_vec(), &retried));

    // Labels inserted in the opposite order: same identity.
    let mut reordered = f.clone();
    let mut labels: Vec<_> = env.labels.iter().collect();
    labels.sort();
    let e = reordered.envelope.as_mut().expect("validated");
    e.labels = labels
        .into_iter()
        .rev()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(identity::payload_identity(&reordered), id);

    // Any change of payload is a different identity.
    let mut changed = f.clone();
    changed.object_json.push(' ');
    assert_ne!(identity::payload_identity(&changed), id);
    let mut changed = f.clone();
    changed
        .envelope
        .as_mut()
        .expect("validated")
        .message_id
        .push('x');
    assert_ne!(identity::payload_identity(&changed), id);

    // The message token is a fixed-size NATS-safe token, a function of the id.
    let t = identity::message_token(&env.message_id);
    assert_eq!(t.len(), 32);
    assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(t, identity::message_token(&env.message_id.clone()));
}
