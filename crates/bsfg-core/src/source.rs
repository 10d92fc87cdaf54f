//! Consumer sources and the subjects facts are filed under.
//!
//! Store buffer of class `c`: stream `facts_c`, subjects `facts.c.<kind>.<token>`.
//! Forward buffer of peer `p`: stream `fwd_p`, subjects `fwd.p.<kind>.<token>`.
//! The trailing token is the message token (see [`crate::identity`]), which
//! makes every append a per-subject put-if-absent.

use crate::error::{BsfgError, Reason};
use crate::names::{self, NameKind};
use std::fmt;

/// Which buffer a consumer reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// `store:<class>[/<kind>]`: the zone's own store buffer of a class.
    Store { class: String, kind: Option<String> },
    /// `forward:<peer>[/<kind>]`: facts pulled from a peer zone.
    Forward { peer: String, kind: Option<String> },
}

/// A buffer: the stream, and the subject prefix its facts live under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Buffer {
    Store(String),
    Forward(String),
}

impl Buffer {
    pub fn stream_name(&self) -> String {
        match self {
            Buffer::Store(class) => format!("facts_{class}"),
            Buffer::Forward(peer) => format!("fwd_{peer}"),
        }
    }

    /// `facts.<class>` or `fwd.<peer>`.
    pub fn subject_prefix(&self) -> String {
        match self {
            Buffer::Store(class) => format!("facts.{class}"),
            Buffer::Forward(peer) => format!("fwd.{peer}"),
        }
    }

    /// The subject a fact with this kind and message token is filed under.
    pub fn fact_subject(&self, kind: &str, token: &str) -> String {
        format!("{}.{kind}.{token}", self.subject_prefix())
    }

    /// The stream's subject space.
    pub fn stream_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, name, kind) = match self {
            Source::Store { class, kind } => ("store", class, kind),
            Source::Forward { peer, kind } => ("forward", peer, kind),
        };
        match kind {
            Some(k) => write!(f, "{scheme}:{name}/{k}"),
            None => write!(f, "{scheme}:{name}"),
        }
    }
}

impl Source {
    /// Parses `store:<class>[/<kind>]` or `forward:<peer>[/<kind>]`.
    pub fn parse(s: &str, max_name_len: usize) -> Result<Source, BsfgError> {
        let bad = |why: String| Reason::InvalidName.err(format!("consumer source {s:?}: {why}"));
        let (scheme, rest) = s.split_once(':').ok_or_else(|| {
            bad("expected store:<class>[/<kind>] or forward:<peer>[/<kind>]".into())
        })?;
        let (name, kind) = match rest.split_once('/') {
            Some((n, k)) => (n, Some(k)),
            None => (rest, None),
        };
        if let Some(k) = kind {
            names::check_kind(k, max_name_len).map_err(|e| bad(e.to_string()))?;
        }
        let kind = kind.map(str::to_owned);
        match scheme {
            "store" => {
                names::check_token(NameKind::StreamClass, name, max_name_len)
                    .map_err(|e| bad(e.to_string()))?;
                Ok(Source::Store {
                    class: name.to_owned(),
                    kind,
                })
            }
            "forward" => {
                names::check_token(NameKind::Zone, name, max_name_len)
                    .map_err(|e| bad(e.to_string()))?;
                Ok(Source::Forward {
                    peer: name.to_owned(),
                    kind,
                })
            }
            other => Err(bad(format!(
                "unknown scheme {other:?}; expected store or forward"
            ))),
        }
    }

    pub fn buffer(&self) -> Buffer {
        match self {
            Source::Store { class, .. } => Buffer::Store(class.clone()),
            Source::Forward { peer, .. } => Buffer::Forward(peer.clone()),
        }
    }

    /// The NATS subject filter selecting this source's facts.
    pub fn subject_filter(&self) -> String {
        let buffer = self.buffer();
        match self {
            Source::Store { kind: Some(k), .. } | Source::Forward { kind: Some(k), .. } => {
                format!("{}.{k}.*", buffer.subject_prefix())
            }
            _ => buffer.stream_subjects(),
        }
    }
}

/// True if a NATS `subject` matches `filter` (tokens, `*` one token, `>` the rest).
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_matching_follows_nats_wildcards() {
        assert!(subject_matches("facts.op.>", "facts.op.order.ab"));
        assert!(!subject_matches("facts.op.>", "facts.op"));
        assert!(subject_matches("facts.op.order.*", "facts.op.order.ab"));
        assert!(!subject_matches("facts.op.order.*", "facts.op.order.ab.c"));
        assert!(!subject_matches("facts.op.order.*", "facts.op.machine.ab"));
        assert!(subject_matches("a.b", "a.b"));
        assert!(!subject_matches("a.b", "a.b.c"));
    }

    #[test]
    fn parses_both_schemes_with_and_without_kind() {
        let s = Source::parse("store:operational/order", 64).unwrap();
        assert_eq!(
            s,
            Source::Store {
                class: "operational".into(),
                kind: Some("order".into())
            }
        );
        assert_eq!(s.subject_filter(), "facts.operational.order.*");
        assert_eq!(s.buffer().stream_name(), "facts_operational");
        assert_eq!(s.to_string(), "store:operational/order");

        let f = Source::parse("forward:plant-a", 64).unwrap();
        assert_eq!(f.subject_filter(), "fwd.plant-a.>");
        assert_eq!(f.buffer().stream_name(), "fwd_plant-a");
        assert_eq!(
            f.buffer().fact_subject("order", "ab12"),
            "fwd.plant-a.order.ab12"
        );
    }

    #[test]
    fn refuses_unsafe_or_unknown_sources() {
        for bad in [
            "operational",
            "store:",
            "store:op.x",
            "store:op/Order",
            "store:op/a.b",
            "kafka:x",
            "forward:*",
        ] {
            let err = Source::parse(bad, 64).unwrap_err();
            assert_eq!(err.reason, Reason::InvalidName, "{bad:?}");
        }
    }
}
