//! The Connect adapter's request decoding: content type, the
//! `Connect-Protocol-Version` header, unary bodies in JSON and protobuf, and
//! the envelopes of streaming calls.
//!
//! Input: `[method][chunk][ct_len] content-type [pv_len] protocol-version body`.
//! `method` picks the procedure (low 3 bits), `chunk` the size of the pieces
//! the body arrives in, `pv_len` 0xff for no header.

use super::{assert_rejection, fact::check_fact, fact::small_limits};
use crate::Outcome;
use bsfg_controller::rpc::connect::wire::{self, Codec, Deframer, Frame};
use bsfg_core::{BsfgError, Reason};
use bsfg_proto::v1::*;

/// The procedures, as the router names them.
pub const METHODS: [&str; 6] = [
    "AppendFact",
    "FetchFacts",
    "ConfirmReceipt",
    "PutObject",
    "GetObject",
    "Unknown",
];

/// Largest streamed message in this target (the controller's is configured).
const MAX_MESSAGE: usize = 4096;

/// The bytes of one request as this target reads them (seeds are built with it).
pub fn request(
    method: usize,
    chunk: u8,
    content_type: &[u8],
    protocol_version: Option<&[u8]>,
    body: &[u8],
) -> Vec<u8> {
    let mut out = vec![method as u8, chunk, content_type.len() as u8];
    out.extend_from_slice(content_type);
    match protocol_version {
        None => out.push(0xff),
        Some(v) => {
            out.push(v.len() as u8);
            out.extend_from_slice(v);
        }
    }
    out.extend_from_slice(body);
    out
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Some(head)
}

pub fn run(data: &[u8]) -> Outcome {
    let mut data = data;
    let Some(&[method, chunk, ct_len]) = take(&mut data, 3) else {
        return Outcome::Rejected;
    };
    let Some(content_type) = take(&mut data, usize::from(ct_len)) else {
        return Outcome::Rejected;
    };
    let Some(&[pv_len]) = take(&mut data, 1) else {
        return Outcome::Rejected;
    };
    let protocol_version = if pv_len == 0xff {
        None
    } else {
        match take(&mut data, usize::from(pv_len)) {
            Some(v) => Some(v),
            None => return Outcome::Rejected,
        }
    };
    let body = data;
    let method = METHODS[usize::from(method & 7) % METHODS.len()];

    if let Err(e) = wire::check_protocol_version(protocol_version) {
        assert_rejection(&e, &[Reason::InvalidRequest]);
        assert!(protocol_version.is_some_and(|v| v != b"1"));
        return Outcome::Rejected;
    }
    let Some((codec, streaming)) = wire::codec_of(Some(content_type)) else {
        return Outcome::Rejected;
    };
    // The content type we answer with names the same codec.
    assert_eq!(
        wire::codec_of(Some(wire::content_type(codec, streaming).as_bytes())),
        Some((codec, streaming))
    );
    match (method, streaming) {
        ("AppendFact", false) => unary::<AppendFactRequest>(codec, body, |r| {
            if let Some(f) = &r.fact {
                check_fact(f, &small_limits());
            }
        }),
        ("FetchFacts", false) => unary::<FetchFactsRequest>(codec, body, |_| {}),
        ("ConfirmReceipt", false) => unary::<ConfirmReceiptRequest>(codec, body, |_| {}),
        ("PutObject", true) => streamed::<PutObjectRequest>(codec, body, chunk),
        ("GetObject", true) => streamed::<GetObjectRequest>(codec, body, chunk),
        _ => Outcome::Rejected,
    }
}

fn unary<M>(codec: Codec, body: &[u8], more: impl Fn(&M)) -> Outcome
where
    M: prost::Message + Default + PartialEq + serde::Serialize + serde::de::DeserializeOwned,
{
    match wire::decode::<M>(codec, body) {
        Err(e) => {
            assert_rejection(&e, &[Reason::InvalidRequest]);
            Outcome::Rejected
        }
        Ok(m) => {
            round_trips(&m);
            more(&m);
            Outcome::Accepted
        }
    }
}

/// A decoded request is the same message re-encoded in either codec.
fn round_trips<M>(m: &M)
where
    M: prost::Message + Default + PartialEq + serde::Serialize + serde::de::DeserializeOwned,
{
    for codec in [Codec::Json, Codec::Proto] {
        let bytes = wire::encode(codec, m);
        let back: M = wire::decode(codec, &bytes).expect("our own encoding decodes");
        assert!(&back == m, "{codec:?} round trip changed the message");
    }
}

/// Deframes `body` delivered in pieces of `chunk` bytes (0: all at once).
fn deframe(body: &[u8], chunk: usize) -> (Vec<bytes::Bytes>, Option<BsfgError>) {
    let mut d = Deframer::new(MAX_MESSAGE);
    let mut frames = Vec::new();
    let pieces: Vec<&[u8]> = if chunk == 0 {
        vec![body]
    } else {
        body.chunks(chunk).collect()
    };
    let mut pieces = pieces.into_iter();
    loop {
        match d.next_frame() {
            Ok(Frame::Message(m)) => frames.push(m),
            Ok(Frame::End) => return (frames, None),
            Err(e) => return (frames, Some(e)),
            Ok(Frame::Incomplete) => match pieces.next() {
                Some(p) => {
                    d.push(p);
                    // Never more than one envelope and one piece held.
                    assert!(d.buffered() <= 5 + MAX_MESSAGE + p.len());
                }
                None => return (frames, d.finish().err()),
            },
        }
    }
}

fn streamed<M>(codec: Codec, body: &[u8], chunk: u8) -> Outcome
where
    M: prost::Message + Default + PartialEq + serde::Serialize + serde::de::DeserializeOwned,
{
    let (frames, error) = deframe(body, 0);
    let (pieced, pieced_error) = deframe(body, usize::from(chunk));
    assert_eq!(frames, pieced, "chunking changed the envelopes");
    assert_eq!(error, pieced_error, "chunking changed the outcome");
    if let Some(e) = &error {
        assert_rejection(e, &[Reason::InvalidRequest]);
    }
    // Re-enveloping what was read reads back the same.
    let mut again = Vec::new();
    for f in &frames {
        again.extend_from_slice(&wire::envelope(0, f));
    }
    again.extend_from_slice(&wire::envelope(wire::END_STREAM, b"{}"));
    assert_eq!(deframe(&again, 0), (frames.clone(), None));

    let mut accepted = error.is_none() && !frames.is_empty();
    for f in &frames {
        match wire::decode::<M>(codec, f) {
            Ok(m) => round_trips(&m),
            Err(e) => {
                assert_rejection(&e, &[Reason::InvalidRequest]);
                accepted = false;
            }
        }
    }
    if accepted {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}
