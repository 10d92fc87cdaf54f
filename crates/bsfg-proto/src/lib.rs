//! Wire types of the BSFG boundary service (`bsfg.v1`).
//!
//! The `.proto` lives in `proto/bsfg/v1/boundary.proto` and is the contract's
//! section 10 verbatim. Everything here is generated at build time:
//! prost messages, the tonic client and server, and serde impls that follow
//! the proto3 JSON mapping (used by the Connect protocol's `application/json`).

#![allow(clippy::all, missing_docs)]

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/bsfg.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/bsfg.v1.serde.rs"));
}

/// Encoded `FileDescriptorSet` of the service, for gRPC reflection or tooling.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/bsfg_descriptor.bin"));

/// Fully qualified service name, as used in gRPC and Connect paths.
pub const SERVICE_NAME: &str = "bsfg.v1.BoundaryService";

#[cfg(test)]
mod tests {
    use super::v1::*;

    #[test]
    fn json_uses_proto3_camel_case_and_string_uint64() {
        let resp = AppendFactResponse {
            offset: 42,
            duplicate: true,
        };
        let json = serde_json::to_string(&resp).unwrap();
        assert_eq!(json, r#"{"offset":"42","duplicate":true}"#);
        let back: AppendFactResponse = serde_json::from_str(r#"{"offset":42}"#).unwrap();
        assert_eq!(back.offset, 42);
        let env: Envelope = serde_json::from_str(r#"{"messageId":"m-1","fromZone":"a"}"#).unwrap();
        assert_eq!(env.message_id, "m-1");
    }

    #[test]
    fn oneof_parts_round_trip_through_json() {
        let req = PutObjectRequest {
            part: Some(put_object_request::Part::Chunk(vec![1, 2, 3])),
        };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(json, r#"{"chunk":"AQID"}"#);
        let back: PutObjectRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, req);
    }
}
