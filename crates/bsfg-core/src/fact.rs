//! Validation of a fact against the contract (section 3) and the limits.
//!
//! `validate` is the first thing `AppendFact` does: it refuses anything that
//! could not be stored, replayed or matched later, before any I/O happens.

use crate::error::{BsfgError, Reason};
use crate::limits::Limits;
use crate::names::{self, NameKind};
use bsfg_proto::v1::{ArtifactRef, Envelope, Fact};
use prost::Message;

/// What validation learned about a fact that the append path needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidFact<'a> {
    /// The subject's kind: the NATS subject token the fact is filed under.
    pub kind: &'a str,
    /// The encoded size, already computed for the limit check.
    pub encoded_len: usize,
}

/// A parsed `subject`: `kind:id` or `kind:scope/id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject<'a> {
    pub kind: &'a str,
    pub scope: Option<&'a str>,
    pub id: &'a str,
}

fn invalid(detail: impl Into<String>) -> BsfgError {
    Reason::InvalidFact.err(detail)
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-' | '@' | '+' | '=' | '%' | '#')
}

/// Parses a subject: `kind:id` or `kind:scope/id`.
pub fn parse_subject<'a>(subject: &'a str, limits: &Limits) -> Result<Subject<'a>, BsfgError> {
    if subject.len() > limits.max_subject_len {
        return Err(invalid(format!(
            "subject is {} bytes, longer than the limit of {}",
            subject.len(),
            limits.max_subject_len
        )));
    }
    let (kind, rest) = subject.split_once(':').ok_or_else(|| {
        invalid(format!(
            "subject {subject:?} is not kind:id or kind:scope/id"
        ))
    })?;
    names::check_kind(kind, limits.max_name_len).map_err(|e| invalid(format!("subject {e}")))?;
    let (scope, id) = match rest.split_once('/') {
        Some((scope, id)) => (Some(scope), id),
        None => (None, rest),
    };
    for (part, what) in scope.iter().map(|s| (*s, "scope")).chain([(id, "id")]) {
        if part.is_empty() {
            return Err(invalid(format!("subject {subject:?} has an empty {what}")));
        }
        if let Some(c) = part.chars().find(|c| !is_id_char(*c)) {
            return Err(invalid(format!(
                "subject {subject:?} has {c:?} in its {what}; allowed: letters, digits and . _ ~ - @ + = % #"
            )));
        }
    }
    Ok(Subject { kind, scope, id })
}

fn check_visible_ascii(
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), BsfgError> {
    if value.is_empty() {
        return if required {
            Err(invalid(format!("{field} is required")))
        } else {
            Ok(())
        };
    }
    if value.len() > max {
        return Err(invalid(format!(
            "{field} is {} bytes, longer than the limit of {max}",
            value.len()
        )));
    }
    if let Some(c) = value.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(invalid(format!(
            "{field} has {c:?}; allowed: visible ASCII without spaces"
        )));
    }
    Ok(())
}

fn check_predicate(predicate: &str, limits: &Limits) -> Result<(), BsfgError> {
    if predicate.is_empty() {
        return Err(invalid("predicate is required"));
    }
    if predicate.len() > limits.max_subject_len {
        return Err(invalid(format!(
            "predicate is {} bytes, longer than the limit of {}",
            predicate.len(),
            limits.max_subject_len
        )));
    }
    let mut chars = predicate.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':'))
    {
        return Err(invalid(format!(
            "predicate {predicate:?} must start with a letter and use letters, digits, '_', '.', '-', ':'"
        )));
    }
    Ok(())
}

/// Checks a `sha256:<64 lower-case hex>` digest.
pub fn check_digest(digest: &str) -> Result<(), String> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "digest {digest:?} is not sha256:<64 lower-case hex digits>"
        )),
    }
}

/// Checks a media type: `type/subtype` with optional parameters, visible ASCII.
pub fn check_media_type(field: &str, value: &str, limits: &Limits) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > limits.max_name_len {
        return Err(format!(
            "{field} is longer than {} bytes",
            limits.max_name_len
        ));
    }
    let essence = value.split(';').next().unwrap_or_default().trim();
    match essence.split_once('/') {
        Some((t, s))
            if !t.is_empty()
                && !s.is_empty()
                && value.chars().all(|c| c == ' ' || c.is_ascii_graphic()) =>
        {
            Ok(())
        }
        _ => Err(format!("{field} {value:?} is not type/subtype")),
    }
}

fn check_artifact_ref(a: &ArtifactRef, limits: &Limits) -> Result<(), BsfgError> {
    names::check_token(NameKind::Bucket, &a.bucket, limits.max_name_len)
        .map_err(|e| invalid(format!("envelope.artifact: {e}")))?;
    names::check_object_key(&a.key, limits.max_object_key_len)
        .map_err(|e| invalid(format!("envelope.artifact: {e}")))?;
    check_digest(&a.digest).map_err(|e| invalid(format!("envelope.artifact: {e}")))?;
    if a.size > limits.max_object_bytes {
        return Err(invalid(format!(
            "envelope.artifact.size {} exceeds the object limit of {}",
            a.size, limits.max_object_bytes
        )));
    }
    check_media_type("envelope.artifact.media_type", &a.media_type, limits).map_err(invalid)?;
    Ok(())
}

fn check_envelope(env: &Envelope, limits: &Limits) -> Result<(), BsfgError> {
    check_visible_ascii(
        "envelope.message_id",
        &env.message_id,
        limits.max_name_len,
        true,
    )?;
    for (field, zone) in [
        ("envelope.from_zone", &env.from_zone),
        ("envelope.to_zone", &env.to_zone),
    ] {
        if zone.is_empty() {
            return Err(invalid(format!("{field} is required")));
        }
        names::check_token(NameKind::Zone, zone, limits.max_name_len)
            .map_err(|e| invalid(format!("{field}: {e}")))?;
    }
    if env.produced_at_unix_ms <= 0 {
        return Err(invalid(
            "envelope.produced_at_unix_ms must be a positive Unix time in milliseconds",
        ));
    }
    check_visible_ascii(
        "envelope.correlation_id",
        &env.correlation_id,
        limits.max_name_len,
        false,
    )?;
    check_visible_ascii(
        "envelope.causation_id",
        &env.causation_id,
        limits.max_name_len,
        false,
    )?;
    if env.labels.len() > limits.max_labels {
        return Err(invalid(format!(
            "envelope.labels has {} entries, more than the limit of {}",
            env.labels.len(),
            limits.max_labels
        )));
    }
    for (k, v) in &env.labels {
        check_visible_ascii("envelope.labels key", k, limits.max_name_len, true)?;
        if v.len() > limits.max_label_value_len {
            return Err(invalid(format!(
                "envelope.labels[{k:?}] is {} bytes, longer than the limit of {}",
                v.len(),
                limits.max_label_value_len
            )));
        }
    }
    check_media_type("envelope.object_media_type", &env.object_media_type, limits)
        .map_err(invalid)?;
    if env.object_schema.len() > limits.max_subject_len {
        return Err(invalid(format!(
            "envelope.object_schema is longer than {} bytes",
            limits.max_subject_len
        )));
    }
    if let Some(a) = &env.artifact {
        check_artifact_ref(a, limits)?;
    }
    Ok(())
}

/// Validates a fact. Cheap checks first; the JSON parse last.
pub fn validate<'a>(fact: &'a Fact, limits: &Limits) -> Result<ValidFact<'a>, BsfgError> {
    let encoded_len = fact.encoded_len();
    if encoded_len > limits.max_fact_bytes {
        return Err(Reason::FactTooLarge.err(format!(
            "fact is {encoded_len} bytes encoded, larger than the limit of {}",
            limits.max_fact_bytes
        )));
    }
    let env = fact
        .envelope
        .as_ref()
        .ok_or_else(|| invalid("envelope is required"))?;
    check_envelope(env, limits)?;
    let subject = parse_subject(&fact.subject, limits)?;
    check_predicate(&fact.predicate, limits)?;
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&fact.object_json) {
        return Err(invalid(format!("object_json is not valid JSON: {e}")));
    }
    Ok(ValidFact {
        kind: subject.kind,
        encoded_len,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_fact() -> Fact {
        Fact {
            envelope: Some(Envelope {
                message_id: "m-0001".into(),
                from_zone: "plant-a".into(),
                to_zone: "enterprise".into(),
                produced_at_unix_ms: 1_780_000_000_000,
                ..Default::default()
            }),
            subject: "order:line-3/4711".into(),
            predicate: "has_status".into(),
            object_json: r#"{"status":"released"}"#.into(),
        }
    }

    fn reason_of(fact: &Fact, limits: &Limits) -> Reason {
        validate(fact, limits).unwrap_err().reason
    }

    #[test]
    fn sample_is_valid_and_kind_is_extracted() {
        let f = sample_fact();
        let v = validate(&f, &Limits::default()).unwrap();
        assert_eq!(v.kind, "order");
        assert_eq!(v.encoded_len, f.encoded_len());
    }

    #[test]
    fn subject_shapes() {
        let l = Limits::default();
        assert_eq!(
            parse_subject("machine:m7", &l).unwrap(),
            Subject {
                kind: "machine",
                scope: None,
                id: "m7"
            }
        );
        assert_eq!(
            parse_subject("order:line-3/4711", &l).unwrap(),
            Subject {
                kind: "order",
                scope: Some("line-3"),
                id: "4711"
            }
        );
        for bad in [
            "order",
            "order:",
            ":x",
            "Order:x",
            "order:a/",
            "order:/b",
            "order:a b",
            "order.x:y",
            "o:a/b/c",
        ] {
            assert!(parse_subject(bad, &l).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn every_required_field_is_required() {
        let l = Limits::default();
        let mut f = sample_fact();
        f.envelope = None;
        assert_eq!(reason_of(&f, &l), Reason::InvalidFact);
        for mutate in [
            |e: &mut Envelope| e.message_id.clear(),
            |e: &mut Envelope| e.from_zone.clear(),
            |e: &mut Envelope| e.to_zone.clear(),
            |e: &mut Envelope| e.produced_at_unix_ms = 0,
            |e: &mut Envelope| e.message_id = "has space".into(),
            |e: &mut Envelope| e.from_zone = "plant.a".into(),
        ] {
            let mut f = sample_fact();
            mutate(f.envelope.as_mut().unwrap());
            assert_eq!(reason_of(&f, &l), Reason::InvalidFact);
        }
    }

    #[test]
    fn object_json_must_be_json() {
        let l = Limits::default();
        for bad in ["", "{", "{'a':1}", "nope", "{\"a\":1} trailing"] {
            let mut f = sample_fact();
            f.object_json = bad.into();
            let err = validate(&f, &l).unwrap_err();
            assert_eq!(err.reason, Reason::InvalidFact, "{bad:?}");
            assert!(err.detail.contains("object_json"), "{}", err.detail);
        }
        let mut f = sample_fact();
        f.object_json = "[1, 2.5, null, \"x\"]".into();
        validate(&f, &l).unwrap();
    }

    #[test]
    fn fact_size_limit() {
        let l = Limits {
            max_fact_bytes: 300,
            ..Limits::default()
        };
        let mut f = sample_fact();
        f.object_json = format!("\"{}\"", "x".repeat(400));
        assert_eq!(reason_of(&f, &l), Reason::FactTooLarge);
        f.object_json = format!("\"{}\"", "x".repeat(100));
        validate(&f, &l).unwrap();
    }

    #[test]
    fn label_limits() {
        let l = Limits {
            max_labels: 2,
            max_label_value_len: 8,
            ..Limits::default()
        };
        let mut f = sample_fact();
        let env = f.envelope.as_mut().unwrap();
        env.labels.insert("a".into(), "1".into());
        env.labels.insert("b".into(), "123456789".into());
        assert_eq!(reason_of(&f, &l), Reason::InvalidFact);
        let env = f.envelope.as_mut().unwrap();
        env.labels.insert("b".into(), "2".into());
        validate(&f, &l).unwrap();
        f.envelope
            .as_mut()
            .unwrap()
            .labels
            .insert("c".into(), "3".into());
        assert_eq!(reason_of(&f, &l), Reason::InvalidFact);
    }

    #[test]
    fn artifact_reference_is_checked() {
        let l = Limits::default();
        let mut f = sample_fact();
        let good = ArtifactRef {
            bucket: "drawings".into(),
            key: "part/17.pdf".into(),
            digest: format!("sha256:{}", "ab".repeat(32)),
            size: 10,
            media_type: "application/pdf".into(),
        };
        f.envelope.as_mut().unwrap().artifact = Some(good.clone());
        validate(&f, &l).unwrap();
        for bad in [
            ArtifactRef {
                digest: "md5:abc".into(),
                ..good.clone()
            },
            ArtifactRef {
                digest: format!("sha256:{}", "AB".repeat(32)),
                ..good.clone()
            },
            ArtifactRef {
                bucket: "Draw".into(),
                ..good.clone()
            },
            ArtifactRef {
                key: "../x".into(),
                ..good.clone()
            },
            ArtifactRef {
                media_type: "pdf".into(),
                ..good.clone()
            },
        ] {
            f.envelope.as_mut().unwrap().artifact = Some(bad.clone());
            assert_eq!(reason_of(&f, &l), Reason::InvalidFact, "{bad:?}");
        }
    }

    #[test]
    fn predicate_grammar() {
        let l = Limits::default();
        let mut f = sample_fact();
        for bad in ["", "1st", "has status", "has/status"] {
            f.predicate = bad.into();
            assert_eq!(reason_of(&f, &l), Reason::InvalidFact, "{bad:?}");
        }
        f.predicate = "bsfg.observed_at".into();
        validate(&f, &l).unwrap();
    }
}
