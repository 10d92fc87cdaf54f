//! The one client for management endpoints: plain HTTP/1.1 (hyper) to
//! loopback or the management network, never the VIP. Used for nats-server
//! monitoring, a controller's `/readyz` and `/status`, a gate agent's
//! `/status` and `/notify`, by the agent, `bsfgctl`, the zone simulator and
//! the tests. Every call has a deadline, and a failure says what kind it
//! was: nothing listening ([`HttpError::Refused`]) is an answer, no answer
//! in time ([`HttpError::Timeout`]) is not.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::de::DeserializeOwned;
use std::fmt;
use std::io;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The connection was refused or the address is unreachable: nothing
    /// listens there.
    Refused { addr: String, detail: String },
    /// No complete answer within the deadline (a frozen or overloaded process).
    Timeout { addr: String, after: Duration },
    /// An answer, with a status outside 2xx ([`get_json`] only).
    Status { status: u16, body: String },
    /// Anything else: reset mid-answer, not HTTP, not the expected JSON.
    Other(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Refused { addr, detail } => write!(f, "{addr}: {detail}"),
            HttpError::Timeout { addr, after } => {
                write!(f, "no answer from {addr} within {} ms", after.as_millis())
            }
            HttpError::Status { status, body } => write!(f, "HTTP {status}: {}", body.trim()),
            HttpError::Other(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for HttpError {}

/// `GET http://<addr><path>`, within `timeout`.
pub async fn get(addr: &str, path: &str, timeout: Duration) -> Result<Response, HttpError> {
    request("GET", addr, path, Bytes::new(), timeout).await
}

/// `POST http://<addr><path>` with a text body, within `timeout`.
pub async fn post(
    addr: &str,
    path: &str,
    body: String,
    timeout: Duration,
) -> Result<Response, HttpError> {
    request("POST", addr, path, Bytes::from(body), timeout).await
}

/// `GET` a JSON document into `T`; a status outside 2xx is [`HttpError::Status`].
pub async fn get_json<T: DeserializeOwned>(
    addr: &str,
    path: &str,
    timeout: Duration,
) -> Result<T, HttpError> {
    let r = get(addr, path, timeout).await?;
    if !r.is_success() {
        return Err(HttpError::Status {
            status: r.status,
            body: r.body,
        });
    }
    serde_json::from_str(&r.body).map_err(|e| HttpError::Other(format!("{addr}{path}: {e}")))
}

fn connect_error(addr: &str, e: io::Error) -> HttpError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable => HttpError::Refused {
            addr: addr.to_owned(),
            detail: e.to_string(),
        },
        _ => HttpError::Other(format!("{addr}: {e}")),
    }
}

async fn request(
    method: &str,
    addr: &str,
    path: &str,
    body: Bytes,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let other = |e: &dyn fmt::Display| HttpError::Other(format!("{addr}{path}: {e}"));
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| connect_error(addr, e))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| other(&e))?;
        let conn = tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr)
            .header("content-type", "text/plain")
            .body(Full::new(body))
            .map_err(|e| other(&e))?;
        let resp = sender.send_request(req).await.map_err(|e| other(&e))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| other(&e))?
            .to_bytes();
        conn.abort();
        Ok(Response {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HttpError::Timeout {
            addr: addr.to_owned(),
            after: timeout,
        })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers every connection with `answer` after reading
    /// the request head (or never answers, for `None`).
    async fn serve(answer: Option<&'static [u8]>) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = s.read(&mut buf).await.unwrap();
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                    }
                    match answer {
                        Some(a) => {
                            s.write_all(a).await.unwrap();
                            let _ = s.shutdown().await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn identity_and_chunked_bodies() {
        let a = serve(Some(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{\"a\": 1}\n",
        ))
        .await;
        let r = get(&a, "/status", Duration::from_secs(5)).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{\"a\": 1}\n"));
        let v: serde_json::Value = get_json(&a, "/status", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(v["a"], 1);
        let c = serve(Some(
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n",
        ))
        .await;
        let r = get(&c, "/readyz", Duration::from_secs(5)).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "{\"a\":1}"));
        let e = get_json::<serde_json::Value>(&c, "/readyz", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::Status { status: 503, .. }), "{e:?}");
    }

    #[tokio::test]
    async fn nothing_listening_is_refused_and_silence_is_a_timeout() {
        // A port that was just free: bound, then closed.
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().to_string()
        };
        let e = get(&addr, "/", Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(e, HttpError::Refused { .. }), "{e:?}");
        let silent = serve(None).await;
        let e = get(&silent, "/", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::Timeout { .. }), "{e:?}");
        let garbage = serve(Some(b"garbage\r\n\r\n")).await;
        let e = get(&garbage, "/", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::Other(_)), "{e:?}");
    }
}
