//! The tonic implementation of `bsfg.v1.BoundaryService`.

use super::PeerIdentity;
use super::status::to_status;
use crate::boundary::Boundary;
use bsfg_core::{BsfgError, Reason};
use bsfg_proto::v1::boundary_service_server::BoundaryService;
use bsfg_proto::v1::*;
use futures::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status, Streaming};

pub struct GrpcBoundary {
    boundary: Arc<Boundary>,
}

impl GrpcBoundary {
    pub fn new(boundary: Arc<Boundary>) -> Self {
        GrpcBoundary { boundary }
    }

    /// Runs one call: identity from the TLS session, metrics, error rendering.
    async fn call<T, R, F, Fut>(
        &self,
        method: &'static str,
        req: Request<T>,
        f: F,
    ) -> Result<Response<R>, Status>
    where
        F: FnOnce(Arc<Boundary>, bsfg_core::policy::Identity, T) -> Fut,
        Fut: std::future::Future<Output = Result<R, BsfgError>>,
    {
        let started = Instant::now();
        let who = req
            .extensions()
            .get::<PeerIdentity>()
            .map(|p| p.0.clone())
            .ok_or_else(|| {
                to_status(&Reason::Unauthenticated.err("no client certificate identity"))
            })?;
        let result = f(self.boundary.clone(), who, req.into_inner()).await;
        let code = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().connect_name(),
        };
        let elapsed = started.elapsed().as_secs_f64();
        self.boundary.metrics.rpc_done(method, code, elapsed);
        if method == "AppendFact" {
            self.boundary.metrics.append_latency.observe(elapsed);
        }
        result.map(Response::new).map_err(|e| to_status(&e))
    }
}

type GetObjectStream = Pin<Box<dyn Stream<Item = Result<GetObjectResponse, Status>> + Send>>;

#[tonic::async_trait]
impl BoundaryService for GrpcBoundary {
    async fn append_fact(
        &self,
        req: Request<AppendFactRequest>,
    ) -> Result<Response<AppendFactResponse>, Status> {
        self.call("AppendFact", req, |b, who, r| async move {
            b.append(&who, r).await
        })
        .await
    }

    async fn fetch_facts(
        &self,
        req: Request<FetchFactsRequest>,
    ) -> Result<Response<FetchFactsResponse>, Status> {
        self.call("FetchFacts", req, |b, who, r| async move {
            b.fetch(&who, r).await
        })
        .await
    }

    async fn confirm_receipt(
        &self,
        req: Request<ConfirmReceiptRequest>,
    ) -> Result<Response<ConfirmReceiptResponse>, Status> {
        self.call("ConfirmReceipt", req, |b, who, r| async move {
            b.confirm(&who, r).await
        })
        .await
    }

    async fn put_object(
        &self,
        req: Request<Streaming<PutObjectRequest>>,
    ) -> Result<Response<PutObjectResponse>, Status> {
        self.call("PutObject", req, |b, who, stream| async move {
            let parts = stream.map(|m| {
                m.map_err(|s| Reason::InvalidRequest.err(format!("upload stream: {}", s.message())))
            });
            b.put_object(&who, Box::pin(parts)).await
        })
        .await
    }

    type GetObjectStream = GetObjectStream;

    async fn get_object(
        &self,
        req: Request<GetObjectRequest>,
    ) -> Result<Response<GetObjectStream>, Status> {
        self.call("GetObject", req, |b, who, r| async move {
            let (header, body) = b.get_object(&who, r).await?;
            let head = futures::stream::once(async move {
                Ok(GetObjectResponse {
                    part: Some(get_object_response::Part::Header(header)),
                })
            });
            let chunks = body.map(|c| match c {
                Ok(bytes) => Ok(GetObjectResponse {
                    part: Some(get_object_response::Part::Chunk(bytes.to_vec())),
                }),
                Err(e) => Err(to_status(&e)),
            });
            Ok(Box::pin(head.chain(chunks)) as GetObjectStream)
        })
        .await
    }
}
