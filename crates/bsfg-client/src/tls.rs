//! rustls client configuration and the connector tonic dials through.

use crate::Endpoint;
use bsfg_core::config::TlsFiles;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::transport::Uri;

/// A client configuration: trust only `files.ca`, present `files.certificate`.
pub fn client_config(files: &TlsFiles, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let ca: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.ca)
        .map_err(|e| format!("{}: {e}", files.ca.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", files.ca.display()))?;
    for c in ca {
        roots
            .add(c)
            .map_err(|e| format!("{}: {e}", files.ca.display()))?;
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.certificate)
        .map_err(|e| format!("{}: {e}", files.certificate.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", files.certificate.display()))?;
    let key = PrivateKeyDer::from_pem_file(&files.private_key)
        .map_err(|e| format!("{}: {e}", files.private_key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("client certificate: {e}"))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Dials the endpoint over TCP and runs the TLS handshake.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) endpoint: Endpoint,
    pub(crate) tls: tokio_rustls::TlsConnector,
    /// When set, the server certificate's identity must be this (lower-case).
    pub(crate) expected_identity: Option<String>,
}

/// CN, else first DNS SAN, lower-cased: the identity rule of the contract.
pub fn certificate_identity(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    if let Some(cn) = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
    {
        return Some(cn.to_ascii_lowercase());
    }
    let san = parsed.subject_alternative_name().ok().flatten()?;
    san.value.general_names.iter().find_map(|n| match n {
        x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
        _ => None,
    })
}

type Io = TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

impl tower::Service<Uri> for Connector {
    type Response = Io;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Io, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp =
                tokio::net::TcpStream::connect((this.endpoint.host.as_str(), this.endpoint.port))
                    .await?;
            tcp.set_nodelay(true)?;
            let name = this.endpoint.server_name().map_err(std::io::Error::other)?;
            let tls = this.tls.connect(name, tcp).await?;
            if let Some(expected) = &this.expected_identity {
                let presented = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(certificate_identity);
                if presented.as_deref() != Some(expected.as_str()) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!(
                            "{} presented identity {:?}, expected {expected:?}",
                            this.endpoint.authority(),
                            presented.unwrap_or_default()
                        ),
                    ));
                }
            }
            Ok(TokioIo::new(tls))
        })
    }
}
