//! The certificate a daemon presents on a real TLS connection: the
//! controller's gRPC listener and nats-server's cluster (route) listener.
//! The handshakes are the I/O edge; what a certificate says ([`facts`]) and
//! whether it is the expected one ([`Served::is`]) are pure.

use bsfg_core::config::TlsFiles;
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

/// The leaf certificate a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub der: Vec<u8>,
    /// Hex, as `openssl x509 -serial` prints it (upper case, no colons).
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
}

impl Served {
    /// Whether this is the certificate of `pem` (its first CERTIFICATE block).
    pub fn is(&self, pem: &str) -> bool {
        bsfg_pki::inspect::pem_certificates(pem.as_bytes())
            .ok()
            .and_then(|c| c.into_iter().next())
            .is_some_and(|der| der == self.der)
    }
}

impl std::fmt::Display for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "serial {} notBefore {}", self.serial, self.not_before)
    }
}

/// The serial and notBefore of a DER certificate.
pub fn facts(der: &[u8]) -> Result<Served, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    Ok(Served {
        der: der.to_vec(),
        serial: cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect(),
        not_before: cert.validity().not_before.timestamp(),
    })
}

/// How long a route port is given to send a plain-text INFO first.
const INFO_WAIT: Duration = Duration::from_millis(300);

/// What a listener speaks before TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// TLS from the first byte, ALPN h2 (the controller's gRPC and Connect).
    Controller,
    /// nats-server's route port: the TLS handshake first (as nats-server
    /// v2.15 does on its route port), or the server's plain-text `INFO`
    /// line and then the handshake (as servers that send INFO first do).
    NatsRoute,
}

/// Handshakes with `addr` as `tls` (client certificate and CA), expecting
/// the server to be `server_name`, and returns the leaf it presented. Must
/// run inside the namespace that reaches `addr`.
pub async fn peek(
    listener: Listener,
    addr: SocketAddr,
    server_name: &str,
    tls: &TlsFiles,
    timeout: Duration,
) -> Result<Served, String> {
    let work = async {
        let conn = handshake(listener, addr, server_name, tls)
            .await?
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
        let leaf = conn
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or("the server presented no certificate")?;
        facts(leaf.as_ref())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no TLS handshake with {addr} within {timeout:?}"))?
}

/// The TCP connection (past nats-server's INFO line) and the client's side
/// of the TLS handshake as `tls`; the outer error is everything before the
/// handshake, the inner one the handshake's own.
async fn handshake(
    listener: Listener,
    addr: SocketAddr,
    server_name: &str,
    tls: &TlsFiles,
) -> Result<std::io::Result<TlsStream<TcpStream>>, String> {
    let alpn: &[&[u8]] = match listener {
        Listener::Controller => &[b"h2"],
        Listener::NatsRoute => &[],
    };
    let config = bsfg_client::client_config(tls, alpn)?;
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| format!("server name {server_name:?}: {e}"))?;
    let mut tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    if listener == Listener::NatsRoute {
        skip_info_line(&mut tcp).await?;
    }
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await)
}

/// What a server did with the client certificate of a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientVerdict {
    /// The handshake completed and the server spoke over it.
    Accepted,
    /// The server ended the handshake with this TLS alert.
    Refused(rustls::AlertDescription),
}

/// How long a server is given to accept or refuse after the handshake.
const VERDICT_WAIT: Duration = Duration::from_secs(5);

/// Handshakes with `addr` as `tls` and waits for the server's verdict on
/// the client certificate: with TLS 1.3 the client's side of the handshake
/// completes before the server has checked it, so the verdict is the
/// server's first record (an alert, or data: HTTP/2 SETTINGS from the
/// controller, INFO from nats-server's route port). Must run inside the
/// namespace that reaches `addr`.
pub async fn client_verdict(
    listener: Listener,
    addr: SocketAddr,
    server_name: &str,
    tls: &TlsFiles,
    timeout: Duration,
) -> Result<ClientVerdict, String> {
    use tokio::io::AsyncWriteExt;
    let work = async {
        let mut conn = match handshake(listener, addr, server_name, tls).await? {
            Ok(c) => c,
            // TLS 1.2: the server refuses within the handshake.
            Err(e) => return alert_of(&e).ok_or(format!("TLS handshake with {addr}: {e}")),
        };
        if listener == Listener::Controller {
            // The HTTP/2 client preface and an empty SETTINGS frame.
            conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                .await
                .or_else(|e| alert_of(&e).map(|_| ()).ok_or(e.to_string()))?;
        }
        let mut buf = [0u8; 1];
        match tokio::time::timeout(VERDICT_WAIT, conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => Ok(ClientVerdict::Accepted),
            Ok(Ok(_)) => Err(format!("{addr} closed the connection without an alert")),
            Ok(Err(e)) => alert_of(&e).ok_or(format!("reading from {addr}: {e}")),
            Err(_) => Err(format!(
                "{addr} neither spoke nor refused within {VERDICT_WAIT:?}"
            )),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no TLS verdict from {addr} within {timeout:?}"))?
}

/// The TLS alert the peer sent, if that is what `e` is (by its typed
/// rustls error, not its text).
fn alert_of(e: &std::io::Error) -> Option<ClientVerdict> {
    match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(d) => Some(ClientVerdict::Refused(*d)),
        _ => None,
    }
}

/// Consumes nats-server's greeting up to its CRLF (at most 64 KiB) if it
/// sends one before the TLS handshake; a server that waits for the client's
/// hello sends nothing within [`INFO_WAIT`] (well inside its TLS timeout).
async fn skip_info_line(tcp: &mut TcpStream) -> Result<(), String> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(INFO_WAIT, tcp.peek(&mut first)).await {
        Err(_) => return Ok(()),
        Ok(Err(e)) => return Err(format!("reading nats-server's greeting: {e}")),
        Ok(Ok(0)) => return Err("nats-server closed the connection at once".into()),
        Ok(Ok(_)) => {}
    }
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(2).any(|w| w == b"\r\n") {
        let n = tcp
            .read(&mut buf)
            .await
            .map_err(|e| format!("reading nats-server's INFO: {e}"))?;
        if n == 0 {
            return Err("nats-server closed the connection before its INFO".into());
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.len() > 64 * 1024 {
            return Err("no CRLF in the first 64 KiB from nats-server".into());
        }
    }
    if !seen.starts_with(b"INFO ") {
        return Err(format!(
            "nats-server's greeting is not INFO: {:?}",
            String::from_utf8_lossy(&seen[..seen.len().min(40)])
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bsfg_pki::{Authority, LeafRequest, Usage, Validity};

    #[test]
    fn facts_and_identity_of_a_generated_certificate() {
        let ca = Authority::generate("test CA", Validity::days_from_now(10)).unwrap();
        let req = LeafRequest {
            common_name: "svc".into(),
            dns_names: vec!["svc".into()],
            ip_addresses: vec![],
            usage: Usage::Server,
        };
        let a = ca.issue(&req, Validity::days_from_now(5)).unwrap();
        let b = ca.issue(&req, Validity::days_from_now(5)).unwrap();
        let der = bsfg_pki::inspect::pem_certificates(a.certificate_pem.as_bytes()).unwrap();
        let served = facts(&der[0]).unwrap();
        assert!(served.is(&a.certificate_pem));
        assert!(
            !served.is(&b.certificate_pem),
            "another issue of the same request"
        );
        assert!(!served.is("not pem"));
        assert!(!served.serial.is_empty());
        assert!(served.serial.chars().all(|c| c.is_ascii_hexdigit()));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((served.not_before - now).abs() < 3 * 86_400, "{served}");
        assert!(facts(b"junk").is_err());
    }
}
