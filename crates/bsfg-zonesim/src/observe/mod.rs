//! What the simulator observes, always from inside a namespace (see
//! [`crate::netns::runtime`]): whether a host holds the VIP, whether its
//! controller serves (`/readyz`), the gate agent's and the controller's
//! `/status`, and the JetStream cluster (`/jsz`).

pub mod http;
pub mod jsz;
pub mod lease;
pub mod status;
pub mod zone_status;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    match http::get(addr, "/readyz", timeout).await {
        Ok((200, _)) => Readiness::Serving,
        Ok((code, body)) => Readiness::NotServing(format!("{code}: {}", body.trim())),
        Err(http::HttpError::Refused(e)) => Readiness::NotServing(format!("no controller: {e}")),
        Err(e) => Readiness::Unknown(e.to_string()),
    }
}
