//! What the simulator observes, always from inside a namespace (see
//! [`crate::netns::runtime`]): whether a host holds the VIP, whether its
//! controller serves (`/readyz`), the gate agent's and the controller's
//! `/status`, and the JetStream cluster (`/jsz`): the documents of
//! [`bsfg_mgmt`], read with its client.

pub mod jsz;
pub mod lease;
pub mod served_certificate;
pub mod zone_status;

use bsfg_mgmt::http::{self, HttpError};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

/// Whether the VIP is an address of this namespace: binding it succeeds
/// exactly when it is configured on a local interface (the same test the
/// controller's own bind makes; no IP_FREEBIND, `ip_nonlocal_bind` is 0 in a
/// fresh namespace). Must run inside the host's namespace.
pub fn holds_vip(vip: Ipv4Addr) -> bool {
    UdpSocket::bind((vip, 0)).is_ok()
}

/// A controller's readiness as seen through `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Readiness {
    /// 200: serving.
    Serving,
    /// Answered, not 200, or refused the connection: not serving.
    NotServing(String),
    /// No answer in time: we cannot tell (a frozen or overloaded process).
    Unknown(String),
}

impl Readiness {
    pub fn serving(&self) -> Option<bool> {
        match self {
            Readiness::Serving => Some(true),
            Readiness::NotServing(_) => Some(false),
            Readiness::Unknown(_) => None,
        }
    }
}

/// `GET /readyz` on the controller's management address.
pub async fn readiness(addr: SocketAddr, timeout: Duration) -> Readiness {
    match http::get(&addr.to_string(), "/readyz", timeout).await {
        Ok(r) if r.status == 200 => Readiness::Serving,
        Ok(r) => Readiness::NotServing(format!("{}: {}", r.status, r.body.trim())),
        Err(e @ HttpError::Refused { .. }) => Readiness::NotServing(format!("no controller: {e}")),
        Err(e) => Readiness::Unknown(e.to_string()),
    }
}
