//! Mutual TLS is mandatory and identities are authorised per operation.

use crate::common::*;
use bsfg_client::pb::*;
use bsfg_testkit::pki::TestPki;
use rustls_pki_types::ServerName;
use std::sync::Arc;

/// A TLS handshake plus one HTTP/1.1 request: Ok(status line) or the error.
async fn try_request(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
) -> Result<String, String> {
    let answer = post(addr, config, "/bsfg.v1.BoundaryService/FetchFacts", "{}").await?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

/// A TLS handshake plus one Connect JSON POST over HTTP/1.1: Ok(the
/// response's first bytes: status line, headers, body) or the error.
async fn post(
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
    path: &str,
    body: &str,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnect-protocol-version: 1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = vec![0u8; 2048];
    let n = tls.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("connection closed".into());
    }
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// An identity in no ACL (a monitoring probe's) gets the health service,
/// over gRPC and Connect, and nothing else.
#[tokio::test]
async fn an_identity_without_a_role_gets_health_only() {
    let zone = Zone::start1_with(|_| {}).await;
    let addr = zone.controller.config.listen.address;
    let probe = zone.pki.client("plant-a-probe").tls_files();
    let config = || bsfg_client::client_config(&probe, &[b"http/1.1"]).unwrap();
    let answer = post(
        addr,
        config(),
        "/grpc.health.v1.Health/Check",
        r#"{"service":"bsfg.v1.BoundaryService"}"#,
    )
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"status":"SERVING"}"#), "{answer}");
    let unknown = post(
        addr,
        config(),
        "/grpc.health.v1.Health/Check",
        r#"{"service":"x.Y"}"#,
    )
    .await
    .unwrap();
    assert!(!unknown.starts_with("HTTP/1.1 200"), "{unknown}");
    let fetch = post(
        addr,
        config(),
        "/bsfg.v1.BoundaryService/FetchFacts",
        r#"{"consumerName":"all-ops","limit":1}"#,
    )
    .await
    .unwrap();
    assert!(fetch.starts_with("HTTP/1.1 403"), "{fetch}");
    assert!(fetch.contains("not_authorized"), "{fetch}");
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(pki: &TestPki) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::pem::PemObject::pem_file_iter(pki.ca_path()).unwrap() {
        let c: rustls_pki_types::CertificateDer<'static> = c.unwrap();
        roots.add(c).unwrap();
    }
    roots
}

fn without_client_cert(pki: &TestPki) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(pki))
        .with_no_client_auth()
}

#[tokio::test]
async fn clients_without_a_valid_certificate_of_the_zone_ca_are_refused() {
    let zone = Zone::start1_with(|_| {}).await;
    let addr = zone.controller.config.listen.address;

    // Sanity: the zone's own producer gets an HTTP answer on the same path.
    let ok = bsfg_client::client_config(&zone.producer, &[b"http/1.1"]).unwrap();
    let line = try_request(addr, ok)
        .await
        .expect("a valid client gets an answer");
    assert!(line.starts_with("HTTP/1.1"), "{line}");

    // 1. No client certificate at all.
    let err = try_request(addr, without_client_cert(&zone.pki))
        .await
        .unwrap_err();
    assert!(!err.is_empty());
    // 2. A certificate from another CA.
    let foreign_ca = TestPki::new("elsewhere");
    let foreign = foreign_ca.client("mes-producer");
    let cfg = bsfg_client::client_config(
        &bsfg_core::config::TlsFiles {
            ca: zone.pki.ca_path().clone(),
            ..foreign.tls_files()
        },
        &[b"http/1.1"],
    )
    .unwrap();
    assert!(try_request(addr, cfg).await.is_err(), "foreign CA accepted");
    // 3. An expired certificate from the right CA.
    let expired = zone.pki.expired_client("mes-producer");
    let cfg = bsfg_client::client_config(&expired.tls_files(), &[b"http/1.1"]).unwrap();
    assert!(
        try_request(addr, cfg).await.is_err(),
        "expired certificate accepted"
    );

    // The same refusals through the gRPC client: no call succeeds.
    let mut foreign_grpc = bsfg_client::connect_grpc(
        &zone.controller.endpoint(),
        &bsfg_core::config::TlsFiles {
            ca: zone.pki.ca_path().clone(),
            ..foreign.tls_files()
        },
    )
    .unwrap();
    assert!(
        foreign_grpc
            .fetch_facts(FetchFactsRequest {
                consumer_name: "all-ops".into(),
                limit: 1
            })
            .await
            .is_err()
    );

    let metrics = zone.controller.metrics().await.unwrap();
    let failures: f64 = metrics
        .lines()
        .find(|l| l.starts_with("bsfg_tls_handshake_failures_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect("handshake failure counter");
    assert!(failures >= 3.0, "{failures} handshake failures counted");
}

/// One counter of the controller's metrics.
async fn counter(zone: &Zone, name: &str) -> f64 {
    let metrics = zone.controller.metrics().await.unwrap();
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

/// A client that closes the connection before the handshake completes
/// (no TLS alert: it gave up, e.g. at its attempt timeout while the VIP
/// moves) is counted apart from refused handshakes, which alert.
#[tokio::test]
async fn handshakes_the_client_abandons_are_not_failures() {
    use tokio::io::AsyncWriteExt;
    let zone = Zone::start1_with(|_| {}).await;
    let addr = zone.controller.config.listen.address;
    // A real ClientHello, then the client closes without answering.
    let config = bsfg_client::client_config(&zone.producer, &[b"http/1.1"]).unwrap();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    for partial in [&hello[..], &[][..]] {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(partial).await.unwrap();
        tcp.shutdown().await.unwrap();
        drop(tcp);
    }
    // A refused one, for comparison: no client certificate.
    assert!(
        try_request(addr, without_client_cert(&zone.pki))
            .await
            .is_err()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let abandoned = counter(&zone, "bsfg_tls_handshakes_abandoned_total").await;
        let failures = counter(&zone, "bsfg_tls_handshake_failures_total").await;
        if abandoned >= 2.0 && failures >= 1.0 {
            assert_eq!((abandoned, failures), (2.0, 1.0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "abandoned {abandoned}, failures {failures}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn identities_without_permission_get_permission_denied() {
    let zone = Zone::start1_with(|_| {}).await;
    let mut reader = zone.grpc(&zone.reader);
    let err = reader
        .append_fact(append_req("operational", fact("r-1", "order:1", "{}")))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (tonic::Code::PermissionDenied, "not_authorized")
    );

    let stranger = zone.pki.client("some-tool").tls_files();
    let mut stranger = zone.grpc(&stranger);
    let err = stranger
        .fetch_facts(FetchFactsRequest {
            consumer_name: "all-ops".into(),
            limit: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (tonic::Code::PermissionDenied, "not_authorized")
    );
    // `audit` allows any identity of the zone CA to append, but only as this zone.
    stranger
        .append_fact(append_req("audit", fact("s-1", "event:1", "{}")))
        .await
        .unwrap();
    let mut foreign_zone = fact("s-2", "event:2", "{}");
    foreign_zone.envelope.as_mut().unwrap().from_zone = "enterprise".into();
    let err = stranger
        .append_fact(append_req("audit", foreign_zone))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (tonic::Code::PermissionDenied, "zone_mismatch")
    );

    let mut producer = zone.grpc(&zone.producer);
    let err = producer
        .fetch_facts(FetchFactsRequest {
            consumer_name: "erp-orders".into(),
            limit: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&err), "not_authorized");
    // Nothing was written by the refused calls.
    assert_eq!(fetch_all(&mut reader, "all-ops").await.len(), 0);
}

/// `openssl s_client` with `args` against `addr`, presenting the producer's
/// certificate: (handshake completed, its output).
fn openssl_client(addr: std::net::SocketAddr, zone: &Zone, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(bsfg_testkit::bins::system_program("openssl", "openssl"))
        .args(["s_client", "-connect", &addr.to_string(), "-brief"])
        .args(["-CAfile"])
        .arg(zone.pki.ca_path())
        .arg("-cert")
        .arg(&zone.producer.certificate)
        .arg("-key")
        .arg(&zone.producer.private_key)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl s_client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text.contains("CONNECTION ESTABLISHED"), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_0_and_1_1_are_refused_and_1_3_is_negotiated() {
    let zone = Zone::start1_with(|_| {}).await;
    let addr = zone.controller.config.listen.address;
    // SECLEVEL=0: let the client offer the old versions at all (OpenSSL 3
    // refuses to by default); the server must still refuse them.
    for (flag, name) in [("-tls1", "TLS 1.0"), ("-tls1_1", "TLS 1.1")] {
        let (ok, text) = openssl_client(addr, &zone, &[flag, "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(!ok, "{name} was accepted:\n{text}");
        // rustls answers a ClientHello without TLS 1.2/1.3 with a
        // handshake_failure (40) or protocol_version (70) alert.
        assert!(
            text.contains("alert number 40") || text.contains("alert number 70"),
            "{name}: not refused by the server's alert:\n{text}"
        );
    }
    let (ok, text) = openssl_client(addr, &zone, &["-tls1_3"]);
    assert!(ok, "a TLS 1.3 client could not connect:\n{text}");
    assert!(text.contains("Protocol version: TLSv1.3"), "{text}");
    // A client offering everything gets 1.3.
    let (ok, text) = openssl_client(addr, &zone, &[]);
    assert!(ok && text.contains("Protocol version: TLSv1.3"), "{text}");
    // TLS 1.2 only with forward-secret AEAD suites (Mozilla Intermediate):
    // a CBC or RSA-key-exchange suite is refused.
    let (ok, text) = openssl_client(
        addr,
        &zone,
        &["-tls1_2", "-cipher", "AES128-SHA:AES256-SHA256"],
    );
    assert!(!ok, "a non-AEAD TLS 1.2 suite was accepted:\n{text}");
    let (ok, text) = openssl_client(addr, &zone, &["-tls1_2"]);
    assert!(ok, "TLS 1.2 with ECDHE+AEAD refused:\n{text}");
}
