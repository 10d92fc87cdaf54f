//! The service port: one TCP listener on the VIP, mutual TLS, then per request
//! either gRPC (tonic; `content-type: application/grpc*`) or the Connect
//! protocol (everything else, e.g. `curl` with `application/json`).

pub mod connect;
pub mod grpc;
pub mod health;
pub mod status;

use crate::boundary::Boundary;
use crate::metrics::Metrics;
use crate::tls::identity_of;
use bsfg_core::policy::Identity;
use bsfg_proto::v1::boundary_service_server::BoundaryServiceServer;
use bytes::Bytes;
use futures::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The caller's identity, put into every request's extensions by the TLS layer.
#[derive(Debug, Clone)]
pub struct PeerIdentity(pub Identity);

/// Dispatches a request to the gRPC or the Connect router by content type.
#[derive(Clone)]
pub struct ProtocolSplit {
    grpc: axum::Router,
    connect: axum::Router,
    metrics: Arc<Metrics>,
}

impl ProtocolSplit {
    pub fn new(boundary: Arc<Boundary>) -> Self {
        let health = health::Health::new(boundary.fence.clone());
        let limits = boundary.limits().clone();
        // Room for the largest fact plus framing; object chunks are bounded by the same.
        let max_message = (limits.max_fact_bytes + 64 * 1024).max(1 << 20);
        let grpc = tonic::service::Routes::new(
            BoundaryServiceServer::new(grpc::GrpcBoundary::new(boundary.clone()))
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(64 << 20),
        )
        .add_service(health.clone().server())
        .into_axum_router();
        ProtocolSplit {
            grpc,
            metrics: boundary.metrics.clone(),
            connect: connect::router(boundary, health),
        }
    }
}

impl<B> tower::Service<http::Request<B>> for ProtocolSplit
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = http::Response<axum::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let is_grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        if !is_grpc {
            return Box::pin(self.connect.clone().oneshot(req.map(axum::body::Body::new)));
        }
        // The health service keeps its own (standard) statuses.
        if req.uri().path().starts_with(health::PATH_PREFIX) {
            return Box::pin(self.grpc.clone().oneshot(req.map(axum::body::Body::new)));
        }
        let method = connect::static_method(req.uri().path().rsplit('/').next().unwrap_or(""));
        let metrics = self.metrics.clone();
        let started = std::time::Instant::now();
        let answer = self.grpc.clone().oneshot(req.map(axum::body::Body::new));
        Box::pin(async move {
            let mut response = answer.await?;
            // A rejection tonic made itself gets the contract's reason, and is counted.
            if let Some(e) = status::complete_grpc_status(method, response.headers_mut()) {
                tracing::debug!(method, error = %e, "request refused by the gRPC layer");
                metrics.rpc_done(
                    method,
                    e.code().connect_name(),
                    started.elapsed().as_secs_f64(),
                );
            }
            Ok(response)
        })
    }
}

/// A handshake the client ended by closing the connection: end of stream
/// or a reset before it finished, with no TLS alert (an alert, a bad
/// certificate, an unknown CA, a protocol error, is `InvalidData` carrying
/// the rustls error, and counts as a failure).
fn abandoned(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

/// Accepts connections until `stop`, then drains in-flight requests for up to `drain`.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: ProtocolSplit,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
    drain: Duration,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_concurrent_streams(4096)
        // Fixed, generous flow-control windows instead of adaptive BDP probing
        // (no PING round trips per connection to size them).
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(8 << 20)
        .max_send_buf_size(1 << 20);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, app, metrics, builder) = (
            acceptor.clone(),
            app.clone(),
            metrics.clone(),
            builder.clone(),
        );
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    // The client closed the connection mid-handshake
                    // without a TLS alert: it gave up (an attempt timeout
                    // while the VIP moves), nothing was refused.
                    Ok(Err(e)) if abandoned(&e) => {
                        metrics.tls_handshakes_abandoned.inc();
                        tracing::debug!(%peer, error = %e, "TLS handshake abandoned by the client");
                        return;
                    }
                    Ok(Err(e)) => {
                        metrics.tls_handshake_failures.inc();
                        tracing::info!(%peer, error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        metrics.tls_handshake_failures.inc();
                        tracing::info!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let identity = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(identity_of);
            let Some(identity) = identity else {
                metrics.tls_handshake_failures.inc();
                tracing::warn!(%peer, "client certificate has neither CN nor DNS SAN; closing");
                return;
            };
            tracing::debug!(%peer, %identity, "connection");
            let peer_identity = PeerIdentity(identity);
            let svc = tower::ServiceBuilder::new()
                .map_request(move |mut r: http::Request<hyper::body::Incoming>| {
                    r.extensions_mut().insert(peer_identity.clone());
                    r
                })
                .service(app);
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(svc));
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(?drain, "drain timeout: closing the remaining connections");
    }
}
