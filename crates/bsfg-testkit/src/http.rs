//! Plain HTTP GETs for health and monitoring endpoints in tests (5 s deadline).

use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(5);

/// GETs `http://<addr><path>`; returns status and body, or an error string.
pub async fn get(addr: &str, path: &str) -> Result<(u16, String), String> {
    bsfg_client::http::get(addr, path, DEADLINE).await
}

/// GETs a JSON document; `None` on any failure or non-2xx status.
pub async fn get_json(addr: &str, path: &str) -> Option<serde_json::Value> {
    bsfg_client::http::get_json(addr, path, DEADLINE).await.ok()
}
