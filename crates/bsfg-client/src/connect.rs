//! Connect-protocol unary calls over HTTP/1.1 + TLS: what `curl` does, typed.

use crate::{ClientError, Endpoint};
use bsfg_core::config::TlsFiles;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use std::sync::Arc;

/// The codec of a Connect unary call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Json,
    Proto,
}

impl Codec {
    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Json => "application/json",
            Codec::Proto => "application/proto",
        }
    }
}

/// One HTTP response of a Connect call.
#[derive(Debug, Clone)]
pub struct ConnectResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

impl ConnectResponse {
    /// The Connect error document (`{"code","message","details"}`), if this is an error.
    pub fn error(&self) -> Option<serde_json::Value> {
        (self.status != 200)
            .then(|| serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null))
    }
}

/// A client for Connect unary calls. Each call opens one HTTP/1.1 connection
/// (simple and independent; the benchmark measures exactly this path).
#[derive(Clone)]
pub struct ConnectClient {
    endpoint: Endpoint,
    tls: tokio_rustls::TlsConnector,
}

impl ConnectClient {
    pub fn new(endpoint: &str, identity: &TlsFiles) -> Result<ConnectClient, ClientError> {
        let endpoint = Endpoint::parse(endpoint)?;
        let tls = crate::tls::client_config(identity, &[b"http/1.1"]).map_err(ClientError::Tls)?;
        Ok(ConnectClient {
            endpoint,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        })
    }

    /// A persistent HTTP/1.1 connection for many calls in sequence.
    pub async fn session(&self) -> std::io::Result<ConnectSession> {
        let tcp = tokio::net::TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port))
            .await?;
        tcp.set_nodelay(true)?;
        let name = self.endpoint.server_name().map_err(std::io::Error::other)?;
        let tls = self.tls.connect(name, tcp).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(ConnectSession {
            sender,
            authority: self.endpoint.authority(),
        })
    }

    /// POSTs `body` to `/bsfg.v1.BoundaryService/<method>` on a fresh connection.
    pub async fn call_raw(
        &self,
        method: &str,
        content_type: &str,
        body: Bytes,
    ) -> std::io::Result<ConnectResponse> {
        self.session()
            .await?
            .call_raw(method, content_type, body)
            .await
    }

    /// A unary call with a typed request and response.
    pub async fn call<Req, Resp>(
        &self,
        method: &str,
        codec: Codec,
        req: &Req,
    ) -> std::io::Result<Result<Resp, ConnectResponse>>
    where
        Req: prost::Message + serde::Serialize,
        Resp: prost::Message + Default + serde::de::DeserializeOwned,
    {
        self.session().await?.call(method, codec, req).await
    }
}

/// One open HTTP/1.1 connection.
pub struct ConnectSession {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
}

impl ConnectSession {
    pub async fn call_raw(
        &mut self,
        method: &str,
        content_type: &str,
        body: Bytes,
    ) -> std::io::Result<ConnectResponse> {
        let req = hyper::Request::post(format!("/{}/{method}", bsfg_proto::SERVICE_NAME))
            .header("host", &self.authority)
            .header("content-type", content_type)
            .header("connect-protocol-version", "1")
            .body(Full::new(body))
            .map_err(std::io::Error::other)?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(std::io::Error::other)?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok(ConnectResponse {
            status,
            content_type,
            body,
        })
    }

    pub async fn call<Req, Resp>(
        &mut self,
        method: &str,
        codec: Codec,
        req: &Req,
    ) -> std::io::Result<Result<Resp, ConnectResponse>>
    where
        Req: prost::Message + serde::Serialize,
        Resp: prost::Message + Default + serde::de::DeserializeOwned,
    {
        let body = match codec {
            Codec::Json => Bytes::from(serde_json::to_vec(req).map_err(std::io::Error::other)?),
            Codec::Proto => Bytes::from(req.encode_to_vec()),
        };
        let resp = self.call_raw(method, codec.content_type(), body).await?;
        if resp.status != 200 {
            return Ok(Err(resp));
        }
        let decoded = match codec {
            Codec::Json => serde_json::from_slice(&resp.body).map_err(std::io::Error::other)?,
            Codec::Proto => Resp::decode(resp.body.clone()).map_err(std::io::Error::other)?,
        };
        Ok(Ok(decoded))
    }
}
