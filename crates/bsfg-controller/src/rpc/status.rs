//! Rendering domain errors for the wire: gRPC status with `google.rpc.ErrorInfo`
//! (domain `bsfg.dev`), or a Connect error document. Both carry the reason as
//! the first token of the message.

use base64::Engine;
use bsfg_core::BsfgError;
use bsfg_core::error::{ERROR_DOMAIN, RpcCode};
use prost::Message;
use std::collections::HashMap;
use tonic_types::{ErrorDetails, StatusExt};

pub fn grpc_code(code: RpcCode) -> tonic::Code {
    tonic::Code::from_i32(code as i32)
}

pub fn to_status(e: &BsfgError) -> tonic::Status {
    tonic::Status::with_error_details(
        grpc_code(e.code()),
        e.status_message(),
        ErrorDetails::with_error_info(e.reason.token(), ERROR_DOMAIN, HashMap::new()),
    )
}

/// The Connect error document for `e`:
/// `{"code", "message", "details": [{"type": "google.rpc.ErrorInfo", "value", "debug"}]}`.
pub fn connect_error_json(e: &BsfgError) -> serde_json::Value {
    let info = tonic_types::pb::ErrorInfo {
        reason: e.reason.token().to_owned(),
        domain: ERROR_DOMAIN.to_owned(),
        metadata: HashMap::new(),
    };
    serde_json::json!({
        "code": e.code().connect_name(),
        "message": e.status_message(),
        "details": [{
            "type": "google.rpc.ErrorInfo",
            "value": base64::engine::general_purpose::STANDARD_NO_PAD.encode(info.encode_to_vec()),
            "debug": { "reason": e.reason.token(), "domain": ERROR_DOMAIN },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bsfg_core::Reason;

    #[test]
    fn grpc_status_carries_error_info() {
        let s = to_status(&Reason::ConflictingDuplicate.err("m-1 at 7"));
        assert_eq!(s.code(), tonic::Code::AlreadyExists);
        assert_eq!(s.message(), "conflicting_duplicate: m-1 at 7");
        let info = s.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "conflicting_duplicate");
        assert_eq!(info.domain, "bsfg.dev");
    }

    #[test]
    fn connect_document_has_code_message_and_details() {
        let v = connect_error_json(&Reason::StoreBufferFull.err("85% full"));
        assert_eq!(v["code"], "resource_exhausted");
        assert_eq!(v["message"], "store_buffer_full: 85% full");
        assert_eq!(v["details"][0]["type"], "google.rpc.ErrorInfo");
        assert_eq!(v["details"][0]["debug"]["reason"], "store_buffer_full");
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(v["details"][0]["value"].as_str().unwrap())
            .unwrap();
        let info = tonic_types::pb::ErrorInfo::decode(raw.as_slice()).unwrap();
        assert_eq!(info.reason, "store_buffer_full");
    }
}
