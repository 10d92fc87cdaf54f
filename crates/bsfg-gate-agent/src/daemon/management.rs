//! The management endpoint (plain HTTP on loopback or the management
//! network): `GET /status` (JSON), `GET /metrics` (OpenMetrics),
//! `GET /healthz`. Read-only: nothing reachable over the network changes the
//! agent's or the controller's state (keepalived's transitions arrive through
//! the local notify FIFO only). Any other method or path is 405/404.

use crate::status::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bsfg_mgmt::AgentStatus;
use std::sync::{Arc, RwLock};

#[derive(Clone)]
pub struct Shared {
    pub config: Arc<crate::config::AgentConfig>,
    pub status: Arc<RwLock<Option<AgentStatus>>>,
    pub metrics: Arc<Metrics>,
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(shared)
}

async fn status(State(s): State<Shared>) -> Response {
    let current = s.status.read().expect("not poisoned").clone();
    match current {
        Some(mut st) => {
            st.host_facts = Some(crate::host_facts::gather(&s.config).await);
            axum::Json(st).into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no evaluation yet\n".to_owned(),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<Shared>) -> Response {
    s.metrics
        .set_chain_expiry(&crate::probes::certificate::observe_chain(
            &s.config.certificate.path,
            &s.config.certificate.trust,
        ));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}
