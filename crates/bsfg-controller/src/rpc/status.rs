//! Rendering domain errors for the wire: gRPC status with `google.rpc.ErrorInfo`
//! (domain `bsfg.dev`), or a Connect error document. Both carry the reason as
//! the first token of the message.

use base64::Engine;
use bsfg_core::error::{ERROR_DOMAIN, RpcCode};
use bsfg_core::{BsfgError, Reason};
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

/// tonic answers some requests itself, before a handler runs: a message
/// above the decoding limit (`OUT_OF_RANGE`), a body that is not protobuf, an
/// unknown method or compression. Its status has no `ErrorInfo`. This puts
/// the contract's reason into such a trailers-only answer (`headers` of the
/// response) and returns the error it now carries; answers that already
/// carry details (every handler's) are left alone.
pub fn complete_grpc_status(method: &str, headers: &mut http::HeaderMap) -> Option<BsfgError> {
    if headers.contains_key("grpc-status-details-bin") {
        return None;
    }
    let status = tonic::Status::from_header_map(headers)?;
    let reason = match status.code() {
        tonic::Code::Ok => return None,
        tonic::Code::OutOfRange if method == "AppendFact" => Reason::FactTooLarge,
        tonic::Code::OutOfRange
        | tonic::Code::InvalidArgument
        | tonic::Code::Internal
        | tonic::Code::DataLoss => Reason::InvalidRequest,
        tonic::Code::Unimplemented => Reason::Unimplemented,
        _ => Reason::Internal,
    };
    let e = reason.err(format!(
        "the request was refused before it was read ({}): {}",
        status.code().description(),
        status.message()
    ));
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    to_status(&e).add_header(headers).ok()?;
    Some(e)
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

    #[test]
    fn tonic_statuses_without_details_get_the_contract_reason() {
        let mut headers = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 2000000 bytes, the limit is: 1048576 bytes",
        )
        .into_http::<()>()
        .into_parts()
        .0
        .headers;
        let e = complete_grpc_status("AppendFact", &mut headers).expect("rewritten");
        assert_eq!(e.reason, Reason::FactTooLarge);
        let s = tonic::Status::from_header_map(&headers).unwrap();
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(
            s.message().starts_with("fact_too_large: "),
            "{}",
            s.message()
        );
        assert!(
            s.message().contains("found 2000000 bytes"),
            "{}",
            s.message()
        );
        assert_eq!(s.get_details_error_info().unwrap().reason, "fact_too_large");

        let mut headers = tonic::Status::out_of_range("too large")
            .into_http::<()>()
            .into_parts()
            .0
            .headers;
        let e = complete_grpc_status("FetchFacts", &mut headers).unwrap();
        assert_eq!(e.reason, Reason::InvalidRequest);

        let mut headers = tonic::Status::unimplemented("")
            .into_http::<()>()
            .into_parts()
            .0
            .headers;
        let e = complete_grpc_status("Nope", &mut headers).unwrap();
        assert_eq!(e.reason, Reason::Unimplemented);
    }

    #[test]
    fn statuses_with_details_and_successes_are_left_alone() {
        let ours = to_status(&Reason::ConflictingDuplicate.err("m-1"));
        let mut headers = ours.into_http::<()>().into_parts().0.headers;
        let before = headers.clone();
        assert_eq!(complete_grpc_status("AppendFact", &mut headers), None);
        assert_eq!(headers, before);
        let mut headers = http::HeaderMap::new();
        assert_eq!(complete_grpc_status("AppendFact", &mut headers), None);
        let mut headers = tonic::Status::ok("")
            .into_http::<()>()
            .into_parts()
            .0
            .headers;
        assert_eq!(complete_grpc_status("AppendFact", &mut headers), None);
    }

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
