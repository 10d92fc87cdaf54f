//! The management endpoint (plain HTTP on loopback or the management
//! network): `GET /status` (JSON), `GET /metrics` (OpenMetrics),
//! `GET /healthz`, and `POST /notify` for keepalived notify scripts.
//!
//! `/notify` is unauthenticated on purpose and harmless: a notification only
//! makes the agent re-read the truth, and the one thing it acts on without
//! re-reading (BACKUP/FAULT/STOP stop the controller) is the safe direction.

use crate::keepalived::{Notification, parse_line};
use crate::status::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bsfg_mgmt::AgentStatus;
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

#[derive(Clone)]
pub struct Shared {
    pub config: Arc<crate::config::AgentConfig>,
    pub status: Arc<RwLock<Option<AgentStatus>>>,
    pub metrics: Arc<Metrics>,
    pub notifications: mpsc::Sender<Notification>,
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/notify", post(notify))
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
    s.metrics.set_certificate_expiry(
        crate::probes::certificate::observe(&s.config.certificate.path)
            .map(|c| c.not_after)
            .unwrap_or(0),
    );
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn notify(State(s): State<Shared>, body: String) -> Response {
    match parse_line(&body) {
        Ok(n) => match s.notifications.send(n).await {
            Ok(()) => (StatusCode::ACCEPTED, "accepted\n").into_response(),
            Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "agent stopping\n").into_response(),
        },
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}
