//! The client side of `bsfg.v1.BoundaryService`, over mutual TLS.
//!
//! - [`connect_grpc`]: a tonic client on one HTTP/2 connection (multiplexed:
//!   concurrent calls are pipelined), presenting a client certificate and
//!   trusting only the zone's CA;
//! - [`connect::ConnectClient`]: Connect-protocol unary calls with
//!   `application/json` or `application/proto`, as `curl` would make them.
//!
//! Both take an endpoint `https://<host>:<port>`; the host may be an IP
//! address (the zone VIP), which must then appear in the server
//! certificate's IP SANs.

pub mod connect;
mod tls;

pub use bsfg_proto::v1 as pb;
pub use bsfg_proto::v1::boundary_service_client::BoundaryServiceClient;
pub use tls::{certificate_identity, client_config};

use bsfg_core::config::TlsFiles;
use rustls_pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint as TonicEndpoint, Uri};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("endpoint {0:?}: expected https://<host>:<port>")]
    BadEndpoint(String),
    #[error("TLS files: {0}")]
    Tls(String),
    #[error("connecting to {endpoint}: {source}")]
    Connect {
        endpoint: String,
        source: tonic::transport::Error,
    },
}

/// A parsed `https://host:port` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, ClientError> {
        let bad = || ClientError::BadEndpoint(s.to_owned());
        let rest = s.strip_prefix("https://").ok_or_else(bad)?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
        })
    }

    pub fn server_name(&self) -> Result<ServerName<'static>, ClientError> {
        ServerName::try_from(self.host.clone())
            .map_err(|e| ClientError::Tls(format!("server name {}: {e}", self.host)))
    }

    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A gRPC client for `endpoint`, authenticating with `identity`. The
/// connection is made lazily on the first call and re-made after failures.
pub fn connect_grpc(
    endpoint: &str,
    identity: &TlsFiles,
) -> Result<BoundaryServiceClient<Channel>, ClientError> {
    connect_grpc_to(endpoint, identity, None)
}

/// Like [`connect_grpc`], and the server's certificate must also name
/// `expected_identity` (its CN, else first DNS SAN): a zone pulling from a
/// peer checks that the peer is the zone it expects, not merely any holder
/// of a certificate from a trusted CA.
pub fn connect_grpc_to(
    endpoint: &str,
    identity: &TlsFiles,
    expected_identity: Option<&str>,
) -> Result<BoundaryServiceClient<Channel>, ClientError> {
    let ep = Endpoint::parse(endpoint)?;
    let tls = tls::client_config(identity, &[b"h2"]).map_err(ClientError::Tls)?;
    let connector = tls::Connector {
        endpoint: ep.clone(),
        tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        expected_identity: expected_identity.map(str::to_ascii_lowercase),
    };
    // The TLS is ours (the connector); tonic sees plain HTTP/2 on the stream.
    let uri: Uri = format!("http://{}", ep.authority())
        .parse()
        .map_err(|_| ClientError::BadEndpoint(endpoint.into()))?;
    let channel = TonicEndpoint::from(uri)
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_with_connector_lazy(connector);
    Ok(BoundaryServiceClient::new(channel).max_decoding_message_size(64 << 20))
}

/// Whether the zone answered about the request itself, so sending the same
/// request again gets the same answer (a bad fact, a conflicting duplicate, a
/// caller without permission). Everything else (unavailable, a full store
/// buffer, a deadline, a transport error) may clear: a correct producer
/// retries those with the same `message_id` and payload.
pub fn is_rejection(status: &tonic::Status) -> bool {
    use tonic::Code;
    matches!(
        status.code(),
        Code::InvalidArgument
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::NotFound
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::Unimplemented
            | Code::OutOfRange
    )
}

/// The machine-readable reason of a failed call: the `google.rpc.ErrorInfo`
/// reason if present, else the first token of the status message.
pub fn reason_of(status: &tonic::Status) -> String {
    status
        .message()
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use tonic::{Code, Status};

    #[test]
    fn answers_about_the_request_are_rejections_and_the_zone_s_state_is_not() {
        for code in [
            Code::InvalidArgument,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::FailedPrecondition,
        ] {
            assert!(super::is_rejection(&Status::new(code, "x")), "{code:?}");
        }
        for code in [
            Code::Unavailable,
            Code::ResourceExhausted,
            Code::DeadlineExceeded,
            Code::Unknown,
            Code::Internal,
        ] {
            assert!(!super::is_rejection(&Status::new(code, "x")), "{code:?}");
        }
    }
}
