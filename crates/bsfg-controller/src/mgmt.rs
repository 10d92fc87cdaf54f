//! The management endpoint: plain HTTP on loopback or the management network,
//! never on the VIP. `/healthz` (alive), `/readyz` (serving), `/status` (JSON
//! for the gate agent, the zone simulator and `bsfgctl`), `/metrics`.

use crate::boundary::Boundary;
use crate::fencing::{Fence, LeaseHolder};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the management endpoint can see; parts appear as start-up progresses.
pub struct Observed {
    pub zone: String,
    pub node: String,
    pub listen: SocketAddr,
    pub fence: Arc<Fence>,
    pub started_at_unix_ms: i64,
    pub boundary: tokio::sync::OnceCell<Arc<Boundary>>,
    pub lease: Option<Arc<LeaseHolder>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Set once the listener is bound and the service is up.
    pub bound: std::sync::atomic::AtomicBool,
    pub replication:
        tokio::sync::OnceCell<Vec<Arc<std::sync::Mutex<crate::replicator::PeerStatus>>>>,
    pub rehydration: tokio::sync::OnceCell<
        Arc<std::sync::Mutex<crate::replicator::rehydrate::RehydrationStatus>>,
    >,
}

#[derive(Serialize)]
struct Status {
    zone: String,
    node: String,
    state: &'static str,
    reason: Option<String>,
    listen: String,
    version: &'static str,
    executable: Option<String>,
    started_at_unix_ms: i64,
    lease: Option<LeaseStatus>,
    classes: Vec<ClassStatus>,
    consumers: Vec<ConsumerStatus>,
    replication: Vec<crate::replicator::PeerStatus>,
    rehydration: Option<crate::replicator::rehydrate::RehydrationStatus>,
}

#[derive(Serialize)]
struct LeaseStatus {
    held: bool,
    instance: String,
    holder: Option<String>,
    revision: Option<u64>,
    fence_in_ms: Option<u128>,
}

#[derive(Serialize)]
struct ClassStatus {
    class: String,
    fill_percent: f64,
}

#[derive(Serialize)]
struct ConsumerStatus {
    consumer: String,
    cursor: u64,
}

impl Observed {
    fn state(&self) -> (&'static str, Option<String>) {
        if self.fence.is_draining() {
            return ("draining", Some("shutting down".into()));
        }
        if !self.bound.load(std::sync::atomic::Ordering::SeqCst) {
            return (
                "starting",
                Some("not yet bound to the service address".into()),
            );
        }
        if let Some(l) = &self.lease
            && !l.address().is_local()
        {
            // Exact at every probe, before the lease holder's next step fences.
            return (
                "fenced",
                Some(format!(
                    "the service address {} is not on this host",
                    l.address().ip()
                )),
            );
        }
        match self.fence.not_serving_reason() {
            None => ("serving", None),
            Some(r) => ("fenced", Some(r)),
        }
    }
}

async fn readyz(State(o): State<Arc<Observed>>) -> impl IntoResponse {
    let (state, reason) = o.state();
    let code = if state == "serving" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(serde_json::json!({ "state": state, "reason": reason })),
    )
}

async fn status(State(o): State<Arc<Observed>>) -> impl IntoResponse {
    let (state, reason) = o.state();
    let lease = match &o.lease {
        Some(l) => {
            let view = l.view().await;
            Some(LeaseStatus {
                held: o.fence.remaining().is_some_and(|r| !r.is_zero()),
                instance: l.instance().await,
                holder: view.holder,
                revision: view.revision,
                fence_in_ms: o.fence.remaining().map(|r| r.as_millis()),
            })
        }
        None => None,
    };
    let (classes, consumers) = match o.boundary.get() {
        Some(b) => {
            let mut classes: Vec<_> = b
                .store_buffers()
                .iter()
                .map(|(c, buf)| ClassStatus {
                    class: c.clone(),
                    fill_percent: buf.fill().percent(),
                })
                .collect();
            classes.sort_by(|a, b| a.class.cmp(&b.class));
            let consumers = b
                .cursor_report()
                .await
                .into_iter()
                .map(|(consumer, cursor)| ConsumerStatus { consumer, cursor })
                .collect();
            (classes, consumers)
        }
        None => (Vec::new(), Vec::new()),
    };
    Json(Status {
        zone: o.zone.clone(),
        node: o.node.clone(),
        state,
        reason,
        listen: o.listen.to_string(),
        version: env!("CARGO_PKG_VERSION"),
        executable: std::env::current_exe()
            .ok()
            .map(|p| p.display().to_string()),
        started_at_unix_ms: o.started_at_unix_ms,
        lease,
        classes,
        consumers,
        replication: o
            .replication
            .get()
            .map(|v| {
                v.iter()
                    .filter_map(|s| s.lock().ok().map(|s| s.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        rehydration: o
            .rehydration
            .get()
            .and_then(|s| s.lock().ok().map(|s| s.clone())),
    })
}

async fn metrics(State(o): State<Arc<Observed>>) -> impl IntoResponse {
    o.metrics.serving.set(o.fence.is_serving() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        o.metrics.encode(),
    )
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub async fn serve(listener: TcpListener, observed: Arc<Observed>, stop: CancellationToken) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(observed);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    {
        tracing::error!(error = %e, "management endpoint failed");
    }
}
