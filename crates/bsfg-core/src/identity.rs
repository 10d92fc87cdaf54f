//! Payload identity and the per-message subject token.
//!
//! **Payload identity** decides whether a second `AppendFact` with the same
//! `message_id` is a harmless retry (`duplicate = true`) or a conflict. It is a
//! SHA-256 over a canonical, length-prefixed encoding of the fact *except*
//! `produced_at_unix_ms`: a producer that rebuilds its envelope on retry
//! (re-stamping the time) is still retrying, not conflicting. Labels are
//! hashed in key order, so map ordering never matters.
//!
//! **Message token**: each fact is filed under its own NATS subject,
//! `<prefix>.<kind>.<token>`, where the token is derived from the `message_id`.
//! Publishing with `Nats-Expected-Last-Subject-Sequence: 0` then makes the
//! append an atomic put-if-absent in the same single JetStream write, for as
//! long as the fact is retained. The token is 128 bits of SHA-256, hex: a safe
//! NATS token whatever characters the producer's id uses.

use bsfg_proto::v1::{ArtifactRef, Fact};
use sha2::{Digest, Sha256};

/// SHA-256 of a fact's canonical encoding, as `sha256:<hex>`.
pub fn payload_identity(fact: &Fact) -> String {
    let mut h = CanonicalHasher::default();
    match &fact.envelope {
        None => h.field(0, b""),
        Some(env) => {
            h.field(1, env.message_id.as_bytes());
            h.field(2, env.from_zone.as_bytes());
            h.field(3, env.to_zone.as_bytes());
            // 4: produced_at_unix_ms is deliberately not part of the identity.
            h.field(5, env.correlation_id.as_bytes());
            h.field(6, env.causation_id.as_bytes());
            let mut labels: Vec<_> = env.labels.iter().collect();
            labels.sort();
            h.count(7, labels.len());
            for (k, v) in labels {
                h.field(7, k.as_bytes());
                h.field(7, v.as_bytes());
            }
            h.field(8, env.object_media_type.as_bytes());
            h.field(9, env.object_schema.as_bytes());
            match &env.artifact {
                None => h.count(10, 0),
                Some(ArtifactRef {
                    bucket,
                    key,
                    digest,
                    size,
                    media_type,
                }) => {
                    h.count(10, 1);
                    h.field(10, bucket.as_bytes());
                    h.field(10, key.as_bytes());
                    h.field(10, digest.as_bytes());
                    h.field(10, &size.to_le_bytes());
                    h.field(10, media_type.as_bytes());
                }
            }
        }
    }
    h.field(20, fact.subject.as_bytes());
    h.field(21, fact.predicate.as_bytes());
    h.field(22, fact.object_json.as_bytes());
    format!("sha256:{}", hex::encode(h.0.finalize()))
}

/// Tag + length + bytes: no two different field sequences encode the same.
#[derive(Default)]
struct CanonicalHasher(Sha256);

impl CanonicalHasher {
    fn field(&mut self, tag: u8, bytes: &[u8]) {
        self.0.update([tag]);
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }
    fn count(&mut self, tag: u8, n: usize) {
        self.field(tag, &(n as u64).to_le_bytes());
    }
}

/// Whether `stored` (an encoded fact, as kept in a buffer) carries the same
/// payload as `fact`: the duplicate-or-conflict decision, made only when a
/// `message_id` turns out to be taken, so appends never hash on the way in.
pub fn same_payload(stored: &[u8], fact: &Fact) -> bool {
    use prost::Message;
    Fact::decode(stored).is_ok_and(|s| payload_identity(&s) == payload_identity(fact))
}

/// The NATS subject token under which the fact with this `message_id` is filed.
pub fn message_token(message_id: &str) -> String {
    let digest = Sha256::digest(message_id.as_bytes());
    hex::encode(&digest[..16])
}

/// `sha256:<hex>` of a byte string (artifacts).
pub fn content_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::tests::sample_fact;

    #[test]
    fn identity_ignores_production_time_only() {
        let a = sample_fact();
        let mut b = a.clone();
        b.envelope.as_mut().unwrap().produced_at_unix_ms += 5_000;
        assert_eq!(payload_identity(&a), payload_identity(&b));

        let mut c = a.clone();
        c.object_json = r#"{"status":"held"}"#.into();
        assert_ne!(payload_identity(&a), payload_identity(&c));

        let mut d = a.clone();
        d.envelope
            .as_mut()
            .unwrap()
            .labels
            .insert("line".into(), "3".into());
        assert_ne!(payload_identity(&a), payload_identity(&d));
    }

    #[test]
    fn identity_is_independent_of_label_order() {
        let mut a = sample_fact();
        let mut b = sample_fact();
        for (k, v) in [("x", "1"), ("y", "2"), ("z", "3")] {
            a.envelope
                .as_mut()
                .unwrap()
                .labels
                .insert(k.into(), v.into());
        }
        for (k, v) in [("z", "3"), ("x", "1"), ("y", "2")] {
            b.envelope
                .as_mut()
                .unwrap()
                .labels
                .insert(k.into(), v.into());
        }
        assert_eq!(payload_identity(&a), payload_identity(&b));
    }

    #[test]
    fn field_boundaries_matter() {
        // "ab"+"c" must not hash like "a"+"bc".
        let mut a = sample_fact();
        a.subject = "ab".into();
        a.predicate = "c".into();
        let mut b = sample_fact();
        b.subject = "a".into();
        b.predicate = "bc".into();
        assert_ne!(payload_identity(&a), payload_identity(&b));
    }

    #[test]
    fn same_payload_decodes_the_stored_fact() {
        use prost::Message;
        let a = sample_fact();
        let mut retried = a.clone();
        retried.envelope.as_mut().unwrap().produced_at_unix_ms += 1;
        assert!(same_payload(&a.encode_to_vec(), &retried));
        let mut other = a.clone();
        other.object_json = "{}".into();
        assert!(!same_payload(&a.encode_to_vec(), &other));
        assert!(!same_payload(b"\xff\xff not a fact", &a));
    }

    #[test]
    fn message_token_is_a_safe_fixed_size_token() {
        let t = message_token("order 4711.v2>*");
        assert_eq!(t.len(), 32);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(t, message_token("order 4711.v2>*"));
        assert_ne!(t, message_token("order 4711.v3>*"));
    }
}
