//! What the simulator observes of a zone, always from inside a host's
//! namespace, and waiting for it.

use super::Zone;
use crate::observe::jsz::Placement;
use crate::observe::{self, Readiness};
use crate::processes::Kind;
use anyhow::{Result, anyhow, bail};
use bsfg_mgmt::nats::{self, Jsz};
use bsfg_mgmt::{AgentStatus, ControllerStatus, http};
use std::net::SocketAddr;
use std::time::Duration;

impl Zone {
    // ------------------------------------------------------------ observing

    /// Runs `f` inside `host`'s namespace.
    pub async fn in_ns<F, Fut, T>(&self, what: &str, f: F) -> Result<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + 'static,
        T: Send + 'static,
    {
        self.runtime(what)?.run(f).await
    }

    pub async fn holds_vip(&self, host: &str) -> Result<bool> {
        let vip = self.spec.vip.address;
        self.in_ns(host, move || async move { observe::holds_vip(vip) })
            .await
    }

    /// Hosts holding the VIP, in role order.
    pub async fn vip_holders(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for h in self.spec.host_names() {
            if self.holds_vip(h).await? {
                out.push(h.to_owned());
            }
        }
        Ok(out)
    }

    fn mgmt(&self, host: &str, port: u16) -> SocketAddr {
        SocketAddr::new(self.spec.host(host).management_address.into(), port)
    }

    pub fn controller_mgmt(&self, host: &str) -> SocketAddr {
        self.mgmt(host, self.spec.ports.controller_management)
    }

    pub fn agent_mgmt(&self, host: &str) -> SocketAddr {
        self.mgmt(host, self.spec.ports.agent_management)
    }

    pub fn nats_monitor(&self, host: &str) -> SocketAddr {
        self.mgmt(host, self.spec.ports.nats_monitor)
    }

    pub async fn readiness(&self, host: &str) -> Result<Readiness> {
        let addr = self.controller_mgmt(host);
        self.in_ns(host, move || {
            observe::readiness(addr, Duration::from_secs(1))
        })
        .await
    }

    async fn get_json<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        host: &str,
        addr: SocketAddr,
        path: &'static str,
    ) -> Result<T> {
        Ok(self
            .in_ns(host, move || async move {
                http::get_json(&addr.to_string(), path, Duration::from_secs(2)).await
            })
            .await??)
    }

    /// The gate agent's `/metrics` text, asked from inside its host.
    pub async fn agent_metrics(&self, host: &str) -> Result<String> {
        let addr = self.agent_mgmt(host).to_string();
        let r = self
            .in_ns(host, move || async move {
                http::get(&addr, "/metrics", Duration::from_secs(3)).await
            })
            .await??;
        if !r.is_success() {
            bail!("HTTP {}: {}", r.status, r.body.trim());
        }
        Ok(r.body)
    }

    pub async fn agent_status(&self, host: &str) -> Result<AgentStatus> {
        self.get_json(host, self.agent_mgmt(host), "/status").await
    }

    pub async fn controller_status(&self, host: &str) -> Result<ControllerStatus> {
        self.get_json(host, self.controller_mgmt(host), "/status")
            .await
    }

    /// JetStream placement as `host`'s nats-server sees it.
    pub async fn placement(&self, host: &str) -> Result<Placement> {
        let jsz: Jsz = self
            .get_json(host, self.nats_monitor(host), nats::JSZ)
            .await?;
        let mut p = Placement::from(&jsz);
        if p.server.is_empty() {
            p.server = host.to_owned();
        }
        Ok(p)
    }

    /// Placement from the first host that answers (alive ones first).
    pub async fn any_placement(&self) -> Result<Placement> {
        let mut last = anyhow!("no host answered");
        for h in self.spec.host_names() {
            if self.is_crashed(h) {
                continue;
            }
            match self.placement(h).await {
                Ok(p) if p.meta_leader.is_some() => return Ok(p),
                Ok(_) => last = anyhow!("{h}: no meta leader"),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Whether `host` holds the VIP and its controller reports ready.
    pub async fn serving(&self, host: &str) -> bool {
        matches!(self.holds_vip(host).await, Ok(true))
            && matches!(self.readiness(host).await, Ok(Readiness::Serving))
    }

    // ------------------------------------------------------------ waiting

    /// Polls `f` every 100 ms until it returns `Some`, or fails after `timeout`.
    pub async fn wait_until<T, F, Fut>(&self, what: &str, timeout: Duration, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = f().await {
                return Ok(v);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every host in `hosts` sees a formed 3-voter cluster with a meta leader.
    pub async fn wait_formed(&self, hosts: &[&str], timeout: Duration) -> Result<()> {
        for h in hosts {
            self.wait_until(
                &format!("a formed JetStream cluster as seen by {h}"),
                timeout,
                || async {
                    self.placement(h)
                        .await
                        .ok()
                        .filter(|p| p.formed(3))
                        .map(|_| ())
                },
            )
            .await
            .map_err(|e| self.explain(e, h))?;
        }
        Ok(())
    }

    /// `host` holds the VIP and its controller serves.
    pub async fn wait_serving(&self, host: &str, timeout: Duration) -> Result<()> {
        self.wait_until(&format!("{host} serving on the VIP"), timeout, || async {
            self.serving(host).await.then_some(())
        })
        .await
        .map_err(|e| self.explain(e, host))
    }

    /// Adds the tail of `host`'s logs to an error.
    pub fn explain(&self, e: anyhow::Error, host: &str) -> anyhow::Error {
        let dirs = self.host_dirs(host);
        let mut tails = String::new();
        for kind in [Kind::Nats, Kind::GateAgent, Kind::Keepalived] {
            let path = dirs.log(kind.name());
            if let Ok(text) = std::fs::read_to_string(&path) {
                let lines: Vec<&str> = text.lines().collect();
                let from = lines.len().saturating_sub(15);
                tails.push_str(&format!(
                    "\n--- {} (last lines)\n{}",
                    path.display(),
                    lines[from..].join("\n")
                ));
            }
        }
        e.context(format!(
            "on {host}; logs under {}{tails}",
            dirs.logs.display()
        ))
    }
}
