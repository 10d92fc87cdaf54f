//! The local NATS server: monitoring endpoint (`/healthz`, `/jsz`, `/varz`)
//! and a client connection (ping), feeding gates 2 and 3.

use crate::gates::jetstream::JetstreamFacts;
use crate::gates::quorum::{QuorumFacts, meta_cluster};
use bsfg_mgmt::http;
use bsfg_mgmt::nats::{self, Jsz, Varz};
use serde::de::DeserializeOwned;
use std::time::Duration;

#[derive(Debug)]
pub struct NatsMonitor {
    addr: String,
    timeout: Duration,
    /// `server_name` from `/varz`, read once (it never changes while the server runs;
    /// re-read after any failure in case the server was replaced).
    server_name: std::sync::Mutex<Option<String>>,
}

impl NatsMonitor {
    pub fn new(addr: String, timeout: Duration) -> NatsMonitor {
        NatsMonitor {
            addr,
            timeout,
            server_name: std::sync::Mutex::new(None),
        }
    }

    pub async fn healthz(&self) -> Result<(u16, String), String> {
        http::get(&self.addr, nats::HEALTHZ_JETSTREAM, self.timeout)
            .await
            .map(|r| (r.status, r.body))
            .map_err(|e| e.to_string())
    }

    async fn json<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        http::get_json(&self.addr, path, self.timeout)
            .await
            .map_err(|e| format!("{path}: {e}"))
    }

    pub async fn quorum(&self) -> Result<QuorumFacts, String> {
        let cached = self.server_name.lock().expect("not poisoned").clone();
        let server_name = match cached {
            Some(n) => n,
            None => {
                let varz: Varz = self.json(nats::VARZ).await?;
                if varz.server_name.is_empty() {
                    return Err("no server_name in /varz".into());
                }
                let name = varz.server_name;
                *self.server_name.lock().expect("not poisoned") = Some(name.clone());
                name
            }
        };
        let jsz: Jsz = self.json("/jsz").await.inspect_err(|_| {
            *self.server_name.lock().expect("not poisoned") = None;
        })?;
        Ok(QuorumFacts {
            server_name,
            meta: meta_cluster(jsz)?,
        })
    }
}

/// Gate 2's facts: health endpoint plus a ping over `client`, if connected.
pub async fn jetstream_facts(
    monitor: &NatsMonitor,
    client: Option<&async_nats::Client>,
    timeout: Duration,
) -> JetstreamFacts {
    let ping = async {
        let client = client.ok_or_else(|| "not connected to the local server".to_owned())?;
        tokio::time::timeout(timeout, client.flush())
            .await
            .map_err(|_| format!("no PONG within {}", humantime::format_duration(timeout)))?
            .map_err(|e| e.to_string())
    };
    let (healthz, ping) = tokio::join!(monitor.healthz(), ping);
    JetstreamFacts { healthz, ping }
}
