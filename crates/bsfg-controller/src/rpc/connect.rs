//! The Connect protocol on the service port.
//!
//! - Unary (`AppendFact`, `FetchFacts`, `ConfirmReceipt`): `POST
//!   /bsfg.v1.BoundaryService/<Method>` with `application/json` (proto3 JSON
//!   mapping) or `application/proto`; `Connect-Protocol-Version: 1` optional.
//!   Errors: the HTTP status of the code and a JSON error document.
//! - Streaming (`PutObject` client stream, `GetObject` server stream):
//!   `application/connect+json` or `application/connect+proto`, messages in
//!   5-byte envelopes (flags, big-endian length), ending with an end-of-stream
//!   envelope (flag 0x02) carrying `{}` or `{"error": ...}`.

pub mod wire;

use super::PeerIdentity;
use super::health::{self, Health};
use super::status::connect_error_json;
use crate::boundary::Boundary;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use bsfg_core::{BsfgError, Reason};
use bsfg_proto::v1::*;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use std::sync::Arc;
use std::time::Instant;
use wire::{Codec, Deframer, END_STREAM, Frame, content_type, decode, encode, envelope};

pub fn router(boundary: Arc<Boundary>, health: Health) -> Router {
    Router::new()
        .route(
            &format!("{}Check", health::PATH_PREFIX),
            post(
                move |State(b): State<Arc<Boundary>>, headers: HeaderMap, body: Body| {
                    let health = health.clone();
                    async move { health_check(&b, &health, &headers, body).await }
                },
            ),
        )
        .route(
            &format!("/{}/{{method}}", bsfg_proto::SERVICE_NAME),
            post(handle).fallback(|State(b): State<Arc<Boundary>>, body: Body| async move {
                let e = Reason::InvalidRequest.err("Connect calls are POST requests");
                refuse(&b, body, &e, Some(StatusCode::METHOD_NOT_ALLOWED)).await
            }),
        )
        .fallback(|State(b): State<Arc<Boundary>>, body: Body| async move {
            refuse(
                &b,
                body,
                &Reason::Unimplemented.err("no such procedure"),
                None,
            )
            .await
        })
        .with_state(boundary)
}

/// `grpc.health.v1.Health/Check` as a Connect unary call (JSON or
/// protobuf), for probes that speak HTTP only; no role needed.
async fn health_check(b: &Boundary, health: &Health, headers: &HeaderMap, body: Body) -> Response {
    if let Err(e) = wire::check_protocol_version(
        headers
            .get("connect-protocol-version")
            .map(HeaderValue::as_bytes),
    ) {
        return refuse(b, body, &e, None).await;
    }
    let Some((codec, false)) =
        wire::codec_of(headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes))
    else {
        let e = Reason::InvalidRequest
            .err("content-type must be application/json or application/proto (a unary call)");
        return refuse(b, body, &e, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)).await;
    };
    let limit = b.limits().max_connect_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let e = Reason::InvalidRequest.err(format!("request body is larger than {limit} bytes"));
        return error_response(&e);
    };
    match health::connect_answer(health, codec == Codec::Json, &bytes) {
        Ok(Some(answer)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, content_type_header(codec, false))],
            answer,
        )
            .into_response(),
        Ok(None) => error_response(&Reason::Unimplemented.err(format!(
            "no health status for that service: ask for \"\" or \"{}\"",
            bsfg_proto::SERVICE_NAME
        ))),
        Err(e) => error_response(&e),
    }
}

/// How long a refused request's body is read before the answer goes out.
const DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

/// Answers a request refused before its body was read. The body is read
/// first (up to the body limit, briefly): an answer sent while the client is
/// still sending ends the HTTP/2 stream with RST_STREAM, which is legal but
/// which some clients (curl 7.88) report as a transport error instead of the
/// error document.
async fn refuse(b: &Boundary, body: Body, e: &BsfgError, status: Option<StatusCode>) -> Response {
    let limit = b.limits().max_connect_body_bytes;
    let _ = tokio::time::timeout(DRAIN_DEADLINE, axum::body::to_bytes(body, limit)).await;
    let mut r = error_response(e);
    if let Some(status) = status {
        *r.status_mut() = status;
    }
    r
}

fn content_type_header(codec: Codec, streaming: bool) -> HeaderValue {
    HeaderValue::from_static(content_type(codec, streaming))
}

fn error_response(e: &BsfgError) -> Response {
    let status =
        StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        connect_error_json(e).to_string(),
    )
        .into_response()
}

async fn handle(
    State(b): State<Arc<Boundary>>,
    identity: Option<Extension<PeerIdentity>>,
    method: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(Extension(PeerIdentity(who))) = identity else {
        let e = Reason::Unauthenticated.err("no client certificate identity");
        return refuse(&b, body, &e, None).await;
    };
    let Ok(Path(method)) = method else {
        let e = Reason::InvalidRequest.err("the procedure name in the path is not valid UTF-8");
        return refuse(&b, body, &e, None).await;
    };
    if let Err(e) = wire::check_protocol_version(
        headers
            .get("connect-protocol-version")
            .map(HeaderValue::as_bytes),
    ) {
        return refuse(&b, body, &e, None).await;
    }
    let content_type = headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
    let Some((codec, streaming)) = wire::codec_of(content_type) else {
        let e = Reason::InvalidRequest.err(
            "content-type must be application/json or application/proto (unary), \
             application/connect+json or application/connect+proto (streaming)",
        );
        return refuse(&b, body, &e, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)).await;
    };
    let (response, code) = match (method.as_str(), streaming) {
        ("AppendFact" | "FetchFacts" | "ConfirmReceipt", false) => {
            unary(&b, &who, &method, codec, body).await
        }
        ("PutObject", true) => put_object(&b, &who, codec, body).await,
        ("GetObject", true) => get_object(b.clone(), &who, codec, body).await,
        ("AppendFact" | "FetchFacts" | "ConfirmReceipt" | "PutObject" | "GetObject", _) => {
            let e = Reason::InvalidRequest.err(format!(
                "{method} is {} over Connect; use the matching content type",
                if streaming { "unary" } else { "streaming" }
            ));
            let r = refuse(&b, body, &e, Some(StatusCode::UNSUPPORTED_MEDIA_TYPE)).await;
            (r, e.code().connect_name())
        }
        _ => {
            let e = Reason::Unimplemented.err(format!("no procedure {method}"));
            (refuse(&b, body, &e, None).await, e.code().connect_name())
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    b.metrics.rpc_done(static_method(&method), code, elapsed);
    if method == "AppendFact" {
        b.metrics.append_latency.observe(elapsed);
    }
    response
}

async fn unary(
    b: &Boundary,
    who: &bsfg_core::policy::Identity,
    method: &str,
    codec: Codec,
    body: Body,
) -> (Response, &'static str) {
    let limit = b.limits().max_connect_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let reason = if method == "AppendFact" {
                Reason::FactTooLarge
            } else {
                Reason::InvalidRequest
            };
            let e = reason.err(format!("request body is larger than {limit} bytes"));
            return (error_response(&e), e.code().connect_name());
        }
    };
    let result = match method {
        "AppendFact" => match decode::<AppendFactRequest>(codec, &bytes) {
            Ok(req) => b.append(who, req).await.map(|r| encode(codec, &r)),
            Err(e) => Err(e),
        },
        "FetchFacts" => match decode::<FetchFactsRequest>(codec, &bytes) {
            Ok(req) => b.fetch(who, req).await.map(|r| encode(codec, &r)),
            Err(e) => Err(e),
        },
        _ => match decode::<ConfirmReceiptRequest>(codec, &bytes) {
            Ok(req) => b.confirm(who, req).await.map(|r| encode(codec, &r)),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(body) => (
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, content_type_header(codec, false))],
                body,
            )
                .into_response(),
            "ok",
        ),
        Err(e) => (error_response(&e), e.code().connect_name()),
    }
}

/// The procedure name as a static label (anything else is "unknown").
pub(crate) fn static_method(method: &str) -> &'static str {
    match method {
        "AppendFact" => "AppendFact",
        "FetchFacts" => "FetchFacts",
        "ConfirmReceipt" => "ConfirmReceipt",
        "PutObject" => "PutObject",
        "GetObject" => "GetObject",
        _ => "unknown",
    }
}

fn end_stream(error: Option<&BsfgError>) -> Bytes {
    let doc = match error {
        None => serde_json::json!({}),
        Some(e) => serde_json::json!({ "error": connect_error_json(e) }),
    };
    envelope(END_STREAM, doc.to_string().as_bytes())
}

fn stream_response(codec: Codec, body: Body) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type_header(codec, true))],
        body,
    )
        .into_response()
}

/// Decodes enveloped messages from a request body, one at a time.
fn enveloped_messages<M>(
    codec: Codec,
    body: Body,
    max_message: usize,
) -> impl Stream<Item = Result<M, BsfgError>> + Unpin
where
    M: prost::Message + Default + serde::de::DeserializeOwned,
{
    let data = body.into_data_stream();
    Box::pin(futures::stream::unfold(
        (data, Deframer::new(max_message)),
        move |(mut data, mut frames)| async move {
            loop {
                match frames.next_frame() {
                    Ok(Frame::Message(msg)) => {
                        return Some((decode::<M>(codec, &msg), (data, frames)));
                    }
                    Ok(Frame::End) => return None,
                    Ok(Frame::Incomplete) => {}
                    Err(e) => return Some((Err(e), (data, frames))),
                }
                match data.next().await {
                    Some(Ok(chunk)) => frames.push(&chunk),
                    Some(Err(e)) => {
                        frames.finish().ok();
                        return Some((
                            Err(Reason::InvalidRequest.err(format!("request body: {e}"))),
                            (data, frames),
                        ));
                    }
                    None => {
                        return match frames.finish() {
                            Ok(()) => None,
                            Err(e) => Some((Err(e), (data, frames))),
                        };
                    }
                }
            }
        },
    ))
}

async fn put_object(
    b: &Boundary,
    who: &bsfg_core::policy::Identity,
    codec: Codec,
    body: Body,
) -> (Response, &'static str) {
    let max = b.limits().max_connect_body_bytes;
    let parts = enveloped_messages::<PutObjectRequest>(codec, body, max);
    match b.put_object(who, parts).await {
        Ok(resp) => {
            let mut out = BytesMut::new();
            out.extend_from_slice(&envelope(0, &encode(codec, &resp)));
            out.extend_from_slice(&end_stream(None));
            (stream_response(codec, Body::from(out.freeze())), "ok")
        }
        Err(e) => (
            stream_response(codec, Body::from(end_stream(Some(&e)))),
            e.code().connect_name(),
        ),
    }
}

async fn get_object(
    b: Arc<Boundary>,
    who: &bsfg_core::policy::Identity,
    codec: Codec,
    body: Body,
) -> (Response, &'static str) {
    let max = b.limits().max_connect_body_bytes;
    let mut requests = enveloped_messages::<GetObjectRequest>(codec, body, max);
    let req = match requests.next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return (
                stream_response(codec, Body::from(end_stream(Some(&e)))),
                e.code().connect_name(),
            );
        }
        None => {
            let e = Reason::InvalidRequest.err("GetObject needs one request message");
            return (
                stream_response(codec, Body::from(end_stream(Some(&e)))),
                e.code().connect_name(),
            );
        }
    };
    match b.get_object(who, req).await {
        Ok((header, chunks)) => {
            let head = envelope(
                0,
                &encode(
                    codec,
                    &GetObjectResponse {
                        part: Some(get_object_response::Part::Header(header)),
                    },
                ),
            );
            // Header, chunks, then exactly one end-of-stream frame (with the error if a read fails).
            let frames = futures::stream::unfold(
                (Some(head), Some(chunks)),
                move |(head, chunks)| async move {
                    if let Some(h) = head {
                        return Some((Ok::<_, std::io::Error>(h), (None, chunks)));
                    }
                    let mut chunks = chunks?;
                    match chunks.next().await {
                        Some(Ok(bytes)) => {
                            let msg = GetObjectResponse {
                                part: Some(get_object_response::Part::Chunk(bytes.to_vec())),
                            };
                            Some((Ok(envelope(0, &encode(codec, &msg))), (None, Some(chunks))))
                        }
                        Some(Err(e)) => Some((Ok(end_stream(Some(&e))), (None, None))),
                        None => Some((Ok(end_stream(None)), (None, None))),
                    }
                },
            );
            (stream_response(codec, Body::from_stream(frames)), "ok")
        }
        Err(e) => (
            stream_response(codec, Body::from(end_stream(Some(&e)))),
            e.code().connect_name(),
        ),
    }
}
