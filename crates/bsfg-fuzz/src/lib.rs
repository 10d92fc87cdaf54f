//! Fuzz targets for every parser that sees outside bytes.
//!
//! Each target is a plain function over `&[u8]` that panics when an invariant
//! breaks, so the same code runs under AFL++ (`scripts/fuzz`, the
//! `bsfg-fuzz` binary) and in the normal test suite, which replays the
//! committed corpus and every minimised crash (`tests/corpus.rs`).
//!
//! | target | parser | invariants beyond "does not panic" |
//! |---|---|---|
//! | [`fact`](targets::fact) | `Fact` protobuf and JSON, `fact::validate`, payload identity | accepted facts round-trip (protobuf, JSON, subject); identity stable under re-encoding, label order and production time, and sensitive to the payload; every rejection has its reason |
//! | [`connect`](targets::connect) | Connect content types, protocol header, unary bodies, streaming envelopes | decoded requests round-trip in both codecs; envelopes deframe the same whatever the chunking; buffering stays within one envelope; every rejection is `invalid_request` with a detail |
//! | [`peer_page`](targets::peer_page) | a peer zone's `FetchFacts` page, the replicator's triage | one admission per fact in order; only valid facts from the peer are stored; the page's last offset is confirmed; lag is finite and never negative |
//! | [`keepalived`](targets::keepalived) | notify FIFO lines and `POST /notify` bodies | accepted lines round-trip through `to_line`; every rejection says why |
//! | [`config`](targets::config) | controller and gate-agent TOML | accepted configurations round-trip through TOML; every rejection names its key |
//! | [`zone`](targets::zone) | `zone.json` (bsfgctl) and the zone library's simulator output (bsfg-zonesim) | accepted zone files round-trip; roles resolve to hosts; rendered daemon configurations load or name a key |
//!
//! Every target also runs under an allocation bound ([`alloc::bounded`]).

pub mod alloc;
pub mod seeds;
pub mod targets;

/// What a target made of an input: the corpus must reach both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Rejected,
}

/// A fuzz target: its name (the corpus directory) and its function.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]) -> Outcome,
}

/// Every target, in the order `scripts/fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "fact",
        run: targets::fact::run,
    },
    Target {
        name: "connect",
        run: targets::connect::run,
    },
    Target {
        name: "peer_page",
        run: targets::peer_page::run,
    },
    Target {
        name: "keepalived",
        run: targets::keepalived::run,
    },
    Target {
        name: "config",
        run: targets::config::run,
    },
    Target {
        name: "zone",
        run: targets::zone::run,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Runs `target` on `input` under the allocation bound of its size.
pub fn check(target: &Target, input: &[u8]) -> Outcome {
    alloc::bounded(alloc::bound_for(input.len()), || (target.run)(input))
}
