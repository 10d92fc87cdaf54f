//! Plain HTTP/1.1 to management endpoints (loopback or the management
//! network, never the VIP): NATS monitoring, a controller's `/readyz` and
//! `/status`, a gate agent's `/status`. Every call has a deadline; errors are
//! strings because they only ever end up in a gate's reason, a check's
//! evidence or on stderr.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::time::Duration;

/// `GET http://<addr><path>` → (status, body), within `timeout`.
pub async fn get(addr: &str, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    request("GET", addr, path, Bytes::new(), timeout).await
}

/// `POST http://<addr><path>` with a text body → (status, body), within `timeout`.
pub async fn post(
    addr: &str,
    path: &str,
    body: String,
    timeout: Duration,
) -> Result<(u16, String), String> {
    request("POST", addr, path, Bytes::from(body), timeout).await
}

/// `GET` and parse JSON; a non-2xx status is an error naming it.
pub async fn get_json(
    addr: &str,
    path: &str,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let (code, body) = get(addr, path, timeout).await?;
    if !(200..300).contains(&code) {
        return Err(format!("HTTP {code}: {}", body.trim()));
    }
    serde_json::from_str(&body).map_err(|e| format!("not JSON: {e}"))
}

async fn request(
    method: &str,
    addr: &str,
    path: &str,
    body: Bytes,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        let conn = tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr)
            .header("content-type", "text/plain")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        conn.abort();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer from {addr} within {} ms", timeout.as_millis()))?
}
