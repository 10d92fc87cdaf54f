//! A minimal plain-HTTP/1.1 GET for management endpoints (NATS monitoring,
//! the gate agent, the controller's management address). Every call has a
//! deadline.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::time::Duration;

/// `GET http://<addr><path>` → (status, body), within `timeout`.
pub async fn get(addr: &str, path: &str, timeout: Duration) -> Result<(u16, String), String> {
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
            .method("GET")
            .uri(path)
            .header("host", addr)
            .body(Full::new(Bytes::new()))
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
        .map_err(|_| format!("no answer within {}", humantime::format_duration(timeout)))?
}

/// `GET` and parse JSON; any non-2xx status is an error naming it.
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
