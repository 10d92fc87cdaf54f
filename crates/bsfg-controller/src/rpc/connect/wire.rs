//! The Connect protocol's bytes, without I/O: content types, the protocol
//! version header, unary bodies and the 5-byte envelopes of streaming calls.
//! The handlers in [`super`] feed request bytes through these functions, and
//! so does the `connect` fuzz target.

use bsfg_core::{BsfgError, Reason};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// How messages are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Json,
    Proto,
}

/// End-of-stream flag of an envelope.
pub const END_STREAM: u8 = 0x02;
/// Compressed-message flag of an envelope (no compression is negotiated).
pub const COMPRESSED: u8 = 0x01;
/// The only Connect protocol version.
pub const PROTOCOL_VERSION: &str = "1";

/// `(codec, streaming?)` from a content type, ignoring parameters.
pub fn codec_of(content_type: Option<&[u8]>) -> Option<(Codec, bool)> {
    let ct = std::str::from_utf8(content_type?).ok()?;
    let essence = ct.split(';').next()?.trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Some((Codec::Json, false)),
        "application/proto" => Some((Codec::Proto, false)),
        "application/connect+json" => Some((Codec::Json, true)),
        "application/connect+proto" => Some((Codec::Proto, true)),
        _ => None,
    }
}

/// The content type a response of this codec carries.
pub fn content_type(codec: Codec, streaming: bool) -> &'static str {
    match (codec, streaming) {
        (Codec::Json, false) => "application/json",
        (Codec::Proto, false) => "application/proto",
        (Codec::Json, true) => "application/connect+json",
        (Codec::Proto, true) => "application/connect+proto",
    }
}

/// `Connect-Protocol-Version` may be absent; when present it must be `1`.
pub fn check_protocol_version(value: Option<&[u8]>) -> Result<(), BsfgError> {
    match value {
        None => Ok(()),
        Some(v) if v == PROTOCOL_VERSION.as_bytes() => Ok(()),
        Some(v) => Err(Reason::InvalidRequest.err(format!(
            "connect-protocol-version {:?} is not supported; send 1 or leave it out",
            String::from_utf8_lossy(v)
        ))),
    }
}

/// Decodes one message (a unary body or an envelope's payload).
pub fn decode<M>(codec: Codec, bytes: &[u8]) -> Result<M, BsfgError>
where
    M: prost::Message + Default + serde::de::DeserializeOwned,
{
    match codec {
        Codec::Json => serde_json::from_slice(bytes)
            .map_err(|e| Reason::InvalidRequest.err(format!("JSON body: {e}"))),
        Codec::Proto => {
            M::decode(bytes).map_err(|e| Reason::InvalidRequest.err(format!("protobuf body: {e}")))
        }
    }
}

/// Encodes one message.
pub fn encode<M: prost::Message + serde::Serialize>(codec: Codec, m: &M) -> Bytes {
    match codec {
        Codec::Json => Bytes::from(serde_json::to_vec(m).expect("generated types serialise")),
        Codec::Proto => Bytes::from(m.encode_to_vec()),
    }
}

/// One envelope: flags, big-endian length, the message.
pub fn envelope(flags: u8, msg: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + msg.len());
    out.put_u8(flags);
    out.put_u32(msg.len() as u32);
    out.put_slice(msg);
    out.freeze()
}

/// What [`Deframer::next_frame`] found in the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole message envelope.
    Message(Bytes),
    /// The end-of-stream envelope: nothing after it is read.
    End,
    /// More bytes are needed.
    Incomplete,
}

/// Splits a streaming request body into envelopes as its chunks arrive.
/// Memory stays bounded: an envelope announcing more than `max_message`
/// bytes is refused from its 5-byte prefix, before its payload is buffered.
#[derive(Debug)]
pub struct Deframer {
    buf: BytesMut,
    max_message: usize,
    done: bool,
}

impl Deframer {
    pub fn new(max_message: usize) -> Deframer {
        Deframer {
            buf: BytesMut::new(),
            max_message,
            done: false,
        }
    }

    /// Appends the next chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) {
        if !self.done {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Bytes held and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next envelope, if the bytes so far hold one. After an error or
    /// the end-of-stream envelope the deframer is done and returns `End`.
    pub fn next_frame(&mut self) -> Result<Frame, BsfgError> {
        if self.done {
            return Ok(Frame::End);
        }
        if self.buf.len() < 5 {
            return Ok(Frame::Incomplete);
        }
        let flags = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if flags & COMPRESSED != 0 {
            self.done = true;
            return Err(Reason::InvalidRequest.err("compressed messages are not supported"));
        }
        if len > self.max_message {
            self.done = true;
            return Err(Reason::InvalidRequest.err(format!(
                "a streamed message of {len} bytes exceeds {}",
                self.max_message
            )));
        }
        if self.buf.len() < 5 + len {
            return Ok(Frame::Incomplete);
        }
        self.buf.advance(5);
        let msg = self.buf.split_to(len).freeze();
        if flags & END_STREAM != 0 {
            self.done = true;
            self.buf.clear();
            return Ok(Frame::End);
        }
        Ok(Frame::Message(msg))
    }

    /// The body ended: an error if it stopped inside an envelope.
    pub fn finish(&mut self) -> Result<(), BsfgError> {
        if self.done || self.buf.is_empty() {
            self.done = true;
            return Ok(());
        }
        self.done = true;
        Err(Reason::InvalidRequest.err("request body ends inside a message"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bsfg_proto::v1::GetObjectRequest;

    #[test]
    fn content_types_and_their_codecs() {
        assert_eq!(
            codec_of(Some(b"application/json; charset=utf-8")),
            Some((Codec::Json, false))
        );
        assert_eq!(
            codec_of(Some(b"Application/Connect+Proto")),
            Some((Codec::Proto, true))
        );
        assert_eq!(codec_of(Some(b"text/plain")), None);
        assert_eq!(codec_of(Some(b"\xff")), None);
        assert_eq!(codec_of(None), None);
        for (codec, streaming) in [
            (Codec::Json, false),
            (Codec::Proto, false),
            (Codec::Json, true),
            (Codec::Proto, true),
        ] {
            let ct = content_type(codec, streaming);
            assert_eq!(codec_of(Some(ct.as_bytes())), Some((codec, streaming)));
        }
    }

    #[test]
    fn protocol_version_is_optional_but_must_be_one() {
        check_protocol_version(None).unwrap();
        check_protocol_version(Some(b"1")).unwrap();
        let e = check_protocol_version(Some(b"2")).unwrap_err();
        assert_eq!(e.reason, Reason::InvalidRequest);
    }

    #[test]
    fn envelopes_split_across_chunks_and_end_at_end_of_stream() {
        let msg = encode(
            Codec::Proto,
            &GetObjectRequest {
                bucket: "b".into(),
                key: "k".into(),
            },
        );
        let mut body = envelope(0, &msg).to_vec();
        body.extend_from_slice(&envelope(END_STREAM, b"{}"));
        body.extend_from_slice(b"ignored after the end");
        let mut d = Deframer::new(64);
        for byte in &body[..6] {
            assert_eq!(d.next_frame().unwrap(), Frame::Incomplete);
            d.push(std::slice::from_ref(byte));
        }
        d.push(&body[6..]);
        assert_eq!(d.next_frame().unwrap(), Frame::Message(msg));
        assert_eq!(d.next_frame().unwrap(), Frame::End);
        assert_eq!(d.buffered(), 0);
        d.finish().unwrap();
    }

    #[test]
    fn oversized_compressed_and_truncated_envelopes_are_refused() {
        let mut d = Deframer::new(4);
        d.push(&[0, 0, 0, 0, 5]);
        assert_eq!(d.next_frame().unwrap_err().reason, Reason::InvalidRequest);
        let mut d = Deframer::new(4);
        d.push(&[COMPRESSED, 0, 0, 0, 1, 0]);
        assert_eq!(d.next_frame().unwrap_err().reason, Reason::InvalidRequest);
        let mut d = Deframer::new(4);
        d.push(&[0, 0, 0, 0, 3, 1]);
        assert_eq!(d.next_frame().unwrap(), Frame::Incomplete);
        assert_eq!(d.finish().unwrap_err().reason, Reason::InvalidRequest);
    }
}
