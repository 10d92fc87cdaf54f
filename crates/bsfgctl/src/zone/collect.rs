//! Collecting a [`Snapshot`]: every host queried concurrently, each request
//! with a deadline; failures are recorded, never fatal.

use super::file::{HostEntry, ZoneFile};
use super::snapshot::{CertificateSeen, ControllerSeen, HostObservation, Snapshot};
use bsfg_core::clock::unix_ms;
use bsfg_core::config::TlsFiles;
use bsfg_mgmt::http;
use bsfg_mgmt::nats::{self, Jsz, Varz};
use std::sync::Arc;
use std::time::Duration;

pub async fn snapshot(zone: &ZoneFile, identity: Option<&TlsFiles>, timeout: Duration) -> Snapshot {
    let taken_at_unix_ms = unix_ms();
    let hosts = futures::future::join_all(
        zone.host_names()
            .into_iter()
            .map(|name| observe_host(name.clone(), zone.hosts[&name].clone(), timeout)),
    )
    .await;
    let vip_certificate = match identity {
        Some(tls) => Some(peek_certificate(&zone.endpoint, tls, timeout).await),
        None => None,
    };
    Snapshot {
        zone: zone.clone(),
        taken_at_unix_ms,
        hosts,
        vip_certificate,
    }
}

async fn observe_host(name: String, h: HostEntry, timeout: Duration) -> HostObservation {
    let varz = async {
        let before = unix_ms();
        let parsed = http::get_json::<Varz>(&h.nats_monitor, nats::VARZ, timeout)
            .await
            .map_err(|e| e.to_string());
        let after = unix_ms();
        let window = parsed.is_ok().then_some((before, after));
        (parsed, window)
    };
    let jsz = async {
        http::get_json::<Jsz>(&h.nats_monitor, nats::JSZ, timeout)
            .await
            .map_err(|e| e.to_string())
    };
    let health = async {
        match http::get(&h.nats_monitor, nats::HEALTHZ_JETSTREAM, timeout).await {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(format!("HTTP {}: {}", r.status, r.body.trim())),
            Err(e) => Err(e.to_string()),
        }
    };
    let agent = async {
        match &h.agent {
            None => None,
            Some(addr) => Some(
                http::get_json(addr, "/status", timeout)
                    .await
                    .map_err(|e| e.to_string()),
            ),
        }
    };
    let controller = async {
        match &h.controller_management {
            None => None,
            Some(addr) => Some(observe_controller(addr, timeout).await),
        }
    };
    let node = async {
        match &h.node_exporter {
            None => None,
            Some(addr) => Some(
                http::get(addr, "/metrics", timeout)
                    .await
                    .map(|r| node_exporter_mount_points(&r.body))
                    .map_err(|e| e.to_string()),
            ),
        }
    };
    let ((varz, varz_window), mut jsz, jetstream_health, agent, controller, node_exporter_mounts) =
        tokio::join!(varz, jsz, health, agent, controller, node);
    // /jsz does not carry the server name; /varz does.
    if let (Ok(j), Ok(v)) = (&mut jsz, &varz)
        && j.server_name.is_empty()
    {
        j.server_name = v.server_name.clone();
    }
    HostObservation {
        name,
        role: h.role,
        varz,
        varz_window,
        jsz,
        jetstream_health,
        agent,
        controller,
        node_exporter_mounts,
    }
}

async fn observe_controller(addr: &str, timeout: Duration) -> Result<ControllerSeen, String> {
    let ready = http::get(addr, "/readyz", timeout)
        .await
        .map_err(|e| e.to_string())?
        .status
        == 200;
    let status = http::get_json(addr, "/status", timeout)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ControllerSeen { ready, status })
}

/// Mount points in node exporter output (`node_filesystem_size_bytes{...,mountpoint="/x"}`).
pub fn node_exporter_mount_points(metrics: &str) -> Vec<String> {
    let mut v: Vec<String> = metrics
        .lines()
        .filter(|l| l.starts_with("node_filesystem_size_bytes{"))
        .filter_map(|l| {
            let i = l.find("mountpoint=\"")? + "mountpoint=\"".len();
            let rest = &l[i..];
            Some(rest[..rest.find('"')?].to_owned())
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A TLS handshake with the endpoint (presenting `tls`): the server's leaf.
pub async fn peek_certificate(
    endpoint: &str,
    tls: &TlsFiles,
    timeout: Duration,
) -> Result<CertificateSeen, String> {
    let ep = bsfg_client::Endpoint::parse(endpoint).map_err(|e| e.to_string())?;
    let config = bsfg_client::client_config(tls, &[b"h2"])?;
    let name = ep.server_name().map_err(|e| e.to_string())?;
    let work = async {
        let tcp = tokio::net::TcpStream::connect(ep.authority())
            .await
            .map_err(|e| format!("{}: {e}", ep.authority()))?;
        let conn = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {}: {e}", ep.authority()))?;
        let leaf = conn
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .cloned()
            .ok_or("the server presented no certificate")?;
        certificate_seen(leaf.as_ref())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no TLS handshake with {endpoint} within {timeout:?}"))?
}

pub fn certificate_seen(der: &[u8]) -> Result<CertificateSeen, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    Ok(CertificateSeen {
        subject: cert.subject().to_string(),
        not_after_unix_ms: cert.validity().not_after.timestamp() * 1000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_exporter_mount_points_are_extracted_once_each() {
        let m = "# HELP node_filesystem_size_bytes x\n\
            node_filesystem_size_bytes{device=\"/dev/sdb1\",fstype=\"ext4\",mountpoint=\"/artifacts\"} 1e+09\n\
            node_filesystem_avail_bytes{device=\"/dev/sdb1\",fstype=\"ext4\",mountpoint=\"/opt/bsfg\"} 1\n\
            node_filesystem_size_bytes{device=\"/dev/nvme0n1p1\",fstype=\"xfs\",mountpoint=\"/data/jetstream\"} 2e+09\n\
            node_filesystem_size_bytes{device=\"/dev/sdb1\",fstype=\"ext4\",mountpoint=\"/artifacts\"} 1e+09\n";
        assert_eq!(
            node_exporter_mount_points(m),
            vec!["/artifacts", "/data/jetstream"]
        );
    }
}
