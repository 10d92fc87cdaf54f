//! The grammar of names.
//!
//! Several names end up inside NATS subjects (`facts.<class>.<kind>.<id>`),
//! stream names (`facts_<class>`, `fwd_<peer>`), KV keys or file paths. NATS
//! tokens must not contain `.`, `*`, `>`, whitespace or control characters, so
//! every such name is checked here before it gets near the substrate, with a
//! length limit from configuration.

use std::fmt;

/// What kind of name failed, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Zone,
    StreamClass,
    Consumer,
    Bucket,
    ObjectKey,
    Kind,
    Identity,
    Host,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Zone => "zone",
            NameKind::StreamClass => "stream class",
            NameKind::Consumer => "consumer name",
            NameKind::Bucket => "bucket",
            NameKind::ObjectKey => "object key",
            NameKind::Kind => "kind",
            NameKind::Identity => "identity",
            NameKind::Host => "host name",
        })
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{0} is empty")]
    Empty(NameKind),
    #[error("{kind} {name:?} is {len} bytes, longer than the limit of {max}")]
    TooLong {
        kind: NameKind,
        name: String,
        len: usize,
        max: usize,
    },
    #[error("{kind} {name:?} has {found:?} at byte {at}; allowed: {allowed}")]
    BadChar {
        kind: NameKind,
        name: String,
        found: char,
        at: usize,
        allowed: &'static str,
    },
    #[error("{kind} {name:?} {why}")]
    BadShape {
        kind: NameKind,
        name: String,
        why: &'static str,
    },
}

fn check_chars(
    kind: NameKind,
    name: &str,
    max: usize,
    first: impl Fn(char) -> bool,
    rest: impl Fn(char) -> bool,
    allowed: &'static str,
) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty(kind));
    }
    if name.len() > max {
        return Err(NameError::TooLong {
            kind,
            name: name.to_owned(),
            len: name.len(),
            max,
        });
    }
    for (at, c) in name.char_indices() {
        let ok = if at == 0 { first(c) } else { rest(c) };
        if !ok {
            return Err(NameError::BadChar {
                kind,
                name: name.to_owned(),
                found: c,
                at,
                allowed,
            });
        }
    }
    Ok(())
}

const TOKEN_ALLOWED: &str = "a-z, 0-9, '_' and '-', starting with a letter or digit";

/// A NATS-token-safe lower-case name: zones, stream classes, consumers, buckets, hosts.
pub fn check_token(kind: NameKind, name: &str, max: usize) -> Result<(), NameError> {
    check_chars(
        kind,
        name,
        max,
        |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-',
        TOKEN_ALLOWED,
    )
}

/// A subject kind: a lower-case noun that becomes one NATS subject token.
pub fn check_kind(kind: &str, max: usize) -> Result<(), NameError> {
    check_chars(
        NameKind::Kind,
        kind,
        max,
        |c| c.is_ascii_lowercase(),
        |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-',
        "a-z, 0-9, '_' and '-', starting with a letter",
    )
}

/// A certificate identity (CN or DNS SAN): DNS-label-like, case-insensitive.
pub fn check_identity(name: &str, max: usize) -> Result<(), NameError> {
    check_chars(
        NameKind::Identity,
        name,
        max,
        |c| c.is_ascii_alphanumeric(),
        |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'),
        "letters, digits, '-', '_' and '.'",
    )
}

/// An object key: path-like segments of `[A-Za-z0-9._-]`, separated by `/`,
/// no empty, `.` or `..` segment (keys map onto nothing on disk, but operators
/// read them as paths and tools join them).
pub fn check_object_key(key: &str, max: usize) -> Result<(), NameError> {
    check_chars(
        NameKind::ObjectKey,
        key,
        max,
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'),
        |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'),
        "letters, digits, '_', '-', '.' and '/', starting with a letter, digit, '_' or '-'",
    )?;
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(NameError::BadShape {
            kind: NameKind::ObjectKey,
            name: key.to_owned(),
            why: "has an empty, '.' or '..' path segment",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_refuse_nats_metacharacters() {
        for bad in ["a.b", "a*", "a>", "a b", "a\tb", "A", "-a", "a\u{0}", "ä"] {
            assert!(
                check_token(NameKind::StreamClass, bad, 64).is_err(),
                "{bad:?} accepted"
            );
        }
        for good in ["operational", "audit-2", "plant_a", "9x"] {
            check_token(NameKind::StreamClass, good, 64).unwrap();
        }
    }

    #[test]
    fn token_length_limit_is_enforced() {
        let name = "a".repeat(65);
        let err = check_token(NameKind::Zone, &name, 64).unwrap_err();
        assert!(matches!(
            err,
            NameError::TooLong {
                len: 65,
                max: 64,
                ..
            }
        ));
        check_token(NameKind::Zone, &name[..64], 64).unwrap();
    }

    #[test]
    fn kinds_start_with_a_letter() {
        check_kind("order", 32).unwrap();
        assert!(check_kind("1order", 32).is_err());
        assert!(check_kind("Order", 32).is_err());
        assert!(check_kind("", 32).is_err());
    }

    #[test]
    fn object_keys_are_clean_paths() {
        check_object_key("drawings/2026/part-17.pdf", 256).unwrap();
        for bad in [
            "/abs", "a//b", "a/../b", "a/./b", "trail/", ".hidden", "sp ace", "a\\b",
        ] {
            assert!(check_object_key(bad, 256).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn error_messages_name_the_offending_character() {
        let err = check_token(NameKind::Consumer, "erp.reader", 64).unwrap_err();
        assert_eq!(
            err.to_string(),
            "consumer name \"erp.reader\" has '.' at byte 3; allowed: a-z, 0-9, '_' and '-', starting with a letter or digit"
        );
    }
}
