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
use bsfg_mgmt::controller::{
    ClassFill, ConsumerCursor, ControllerLease, ControllerStatus, PeerReplication, Readyz,
    Rehydration, ServingState,
};
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
    pub replication: tokio::sync::OnceCell<Vec<Arc<std::sync::Mutex<PeerReplication>>>>,
    pub rehydration: tokio::sync::OnceCell<Arc<std::sync::Mutex<Rehydration>>>,
}

impl Observed {
    fn readyz(&self) -> Readyz {
        let (state, reason) = if self.fence.is_draining() {
            (ServingState::Draining, Some("shutting down".into()))
        } else if !self.bound.load(std::sync::atomic::Ordering::SeqCst) {
            (
                ServingState::Starting,
                Some("not yet bound to the service address".into()),
            )
        } else if let Some(l) = self.lease.as_ref().filter(|l| !l.address().is_local()) {
            // Exact at every probe, before the lease holder's next step fences.
            (
                ServingState::Fenced,
                Some(format!(
                    "the service address {} is not on this host",
                    l.address().ip()
                )),
            )
        } else {
            match self.fence.not_serving_reason() {
                None => (ServingState::Serving, None),
                Some(r) => (ServingState::Fenced, Some(r)),
            }
        };
        Readyz { state, reason }
    }
}

async fn readyz(State(o): State<Arc<Observed>>) -> impl IntoResponse {
    let r = o.readyz();
    let code = if r.state == ServingState::Serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r))
}

async fn status(State(o): State<Arc<Observed>>) -> impl IntoResponse {
    let Readyz { state, reason } = o.readyz();
    let lease = match &o.lease {
        Some(l) => {
            let view = l.view().await;
            Some(ControllerLease {
                held: o.fence.remaining().is_some_and(|r| !r.is_zero()),
                instance: l.instance().await,
                holder: view.holder,
                revision: view.revision,
                fence_in_ms: o.fence.remaining().map(|r| r.as_millis() as u64),
            })
        }
        None => None,
    };
    let (classes, consumers) = match o.boundary.get() {
        Some(b) => {
            let mut classes: Vec<_> = b
                .store_buffers()
                .iter()
                .map(|(c, buf)| ClassFill {
                    class: c.clone(),
                    fill_percent: buf.fill().percent(),
                })
                .collect();
            classes.sort_by(|a, b| a.class.cmp(&b.class));
            let consumers = b
                .cursor_report()
                .await
                .into_iter()
                .map(|(consumer, cursor)| ConsumerCursor { consumer, cursor })
                .collect();
            (classes, consumers)
        }
        None => (Vec::new(), Vec::new()),
    };
    Json(ControllerStatus {
        zone: o.zone.clone(),
        node: o.node.clone(),
        state,
        reason,
        listen: o.listen.to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
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
