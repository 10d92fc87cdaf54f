//! The standard health service (`grpc.health.v1.Health`), over gRPC and as a
//! Connect unary call, answered from the [`Fence`]: SERVING exactly while
//! this controller may serve requests (the lease held, not draining, not
//! fenced), so an external probe on the VIP sees what producers see. No
//! role is needed: any client with a certificate of the zone CA may ask
//! (the zone's service probe has an identity in no ACL for this).

use crate::fencing::Fence;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// The health service's own path prefix.
pub const PATH_PREFIX: &str = "/grpc.health.v1.Health/";

/// How often a Watch call looks at the fence for a change.
const WATCH_POLL: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct Health {
    fence: Arc<Fence>,
}

impl Health {
    pub fn new(fence: Arc<Fence>) -> Health {
        Health { fence }
    }

    /// The status of `service` (`""`: the server as a whole, or the BSFG
    /// service); `None` for a service this server does not have.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        if !service.is_empty() && service != bsfg_proto::SERVICE_NAME {
            return None;
        }
        Some(if self.fence.is_serving() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        })
    }

    pub fn server(self) -> tonic_health::pb::health_server::HealthServer<Health> {
        tonic_health::pb::health_server::HealthServer::new(self)
    }
}

fn response(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

#[tonic::async_trait]
impl tonic_health::pb::health_server::Health for Health {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        let service = request.into_inner().service;
        match self.status(&service) {
            Some(s) => Ok(tonic::Response::new(response(s))),
            None => Err(tonic::Status::not_found(format!(
                "no service {service:?} here"
            ))),
        }
    }

    type WatchStream = BoxStream<'static, Result<HealthCheckResponse, tonic::Status>>;

    /// The current status at once, then every change.
    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        let service = request.into_inner().service;
        let health = self.clone();
        let stream = futures::stream::unfold(None, move |last| {
            let (health, service) = (health.clone(), service.clone());
            async move {
                loop {
                    let now = health
                        .status(&service)
                        .unwrap_or(ServingStatus::ServiceUnknown);
                    if last != Some(now) {
                        return Some((Ok(response(now)), Some(now)));
                    }
                    tokio::time::sleep(WATCH_POLL).await;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}

/// A Connect unary health check's answer: the JSON body (proto3 JSON: the
/// status by name) or the protobuf one; `None` for a service this server
/// does not have.
pub fn connect_answer(
    health: &Health,
    json: bool,
    body: &[u8],
) -> Result<Option<Vec<u8>>, bsfg_core::BsfgError> {
    use bsfg_core::Reason;
    use prost::Message;
    let service = if json {
        #[derive(serde::Deserialize)]
        struct Request {
            #[serde(default)]
            service: String,
        }
        let body = if body.is_empty() { b"{}" } else { body };
        serde_json::from_slice::<Request>(body)
            .map_err(|e| Reason::InvalidRequest.err(format!("HealthCheckRequest: {e}")))?
            .service
    } else {
        HealthCheckRequest::decode(body)
            .map_err(|e| Reason::InvalidRequest.err(format!("HealthCheckRequest: {e}")))?
            .service
    };
    let Some(status) = health.status(&service) else {
        return Ok(None);
    };
    let out = if json {
        serde_json::to_vec(&serde_json::json!({ "status": status.as_str_name() }))
            .expect("a JSON object serialises")
    } else {
        response(status).encode_to_vec()
    };
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn serving_follows_the_fence_and_unknown_services_are_not_found() {
        let fence = Fence::without_lease();
        let h = Health::new(fence.clone());
        assert_eq!(h.status(""), Some(ServingStatus::Serving));
        assert_eq!(
            h.status(bsfg_proto::SERVICE_NAME),
            Some(ServingStatus::Serving)
        );
        assert_eq!(h.status("other.Service"), None);
        let json = connect_answer(&h, true, br#"{"service":"bsfg.v1.BoundaryService"}"#).unwrap();
        assert_eq!(json.as_deref(), Some(&br#"{"status":"SERVING"}"#[..]));
        fence.set_draining();
        assert_eq!(h.status(""), Some(ServingStatus::NotServing));
        let json = connect_answer(&h, true, b"").unwrap();
        assert_eq!(json.as_deref(), Some(&br#"{"status":"NOT_SERVING"}"#[..]));
        let proto = connect_answer(&h, false, &[]).unwrap().expect("known");
        assert_eq!(
            HealthCheckResponse::decode(proto.as_slice())
                .unwrap()
                .status,
            ServingStatus::NotServing as i32
        );
        assert_eq!(
            connect_answer(&h, true, br#"{"service":"x"}"#).unwrap(),
            None
        );
        assert!(connect_answer(&h, true, b"{").is_err());
    }
}
