//! The local interfaces' addresses, through rtnetlink (never by parsing `ip`).

use crate::gates::vip::LocalAddress;
use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::LinkAttribute;
use std::collections::HashMap;

/// A netlink route socket, reopened after errors.
#[derive(Default)]
pub struct VipProbe {
    handle: Option<rtnetlink::Handle>,
}

impl std::fmt::Debug for VipProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VipProbe")
    }
}

impl VipProbe {
    fn handle(&mut self) -> Result<rtnetlink::Handle, String> {
        if let Some(h) = &self.handle {
            return Ok(h.clone());
        }
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?;
        tokio::spawn(conn);
        self.handle = Some(handle.clone());
        Ok(handle)
    }

    /// Every address on every local interface, with the interface's name.
    pub async fn addresses(&mut self) -> Result<Vec<LocalAddress>, String> {
        let handle = self.handle()?;
        let result = list(&handle).await;
        if result.is_err() {
            self.handle = None;
        }
        result
    }
}

async fn list(handle: &rtnetlink::Handle) -> Result<Vec<LocalAddress>, String> {
    let mut names = HashMap::new();
    let mut links = handle.link().get().execute();
    while let Some(link) = links
        .try_next()
        .await
        .map_err(|e| format!("netlink links: {e}"))?
    {
        for attr in link.attributes {
            if let LinkAttribute::IfName(name) = attr {
                names.insert(link.header.index, name);
            }
        }
    }
    let mut out = Vec::new();
    let mut addrs = handle.address().get().execute();
    while let Some(msg) = addrs
        .try_next()
        .await
        .map_err(|e| format!("netlink addresses: {e}"))?
    {
        let interface = names
            .get(&msg.header.index)
            .cloned()
            .unwrap_or_else(|| format!("ifindex {}", msg.header.index));
        for attr in &msg.attributes {
            // IPv4: IFA_LOCAL is the address (IFA_ADDRESS is the peer on
            // point-to-point links); IPv6 has only IFA_ADDRESS.
            if let AddressAttribute::Local(ip) | AddressAttribute::Address(ip) = attr {
                let a = LocalAddress {
                    address: *ip,
                    interface: interface.clone(),
                };
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    Ok(out)
}
