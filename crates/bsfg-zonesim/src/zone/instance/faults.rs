//! The faults drills inject: crashes, cables, partitions, VRRP loss,
//! missing storage, short-lived certificates, agent restarts.

use super::Zone;
use crate::netns::{self, nft};
use crate::processes::{self, Kind};
use crate::zone::credentials::{SHORT_DAYS, VALID_DAYS};
use crate::zone::files;
use anyhow::{Context, Result, bail};
use rustix::process::Signal;
use std::time::Duration;

impl Zone {
    // ------------------------------------------------------------ faults

    /// A host dies: its cable is pulled (nothing it sends reaches anyone,
    /// not even a TCP reset), every process in it is killed, and what a
    /// reboot loses is gone (the VIP address, /run).
    pub fn crash(&self, host: &str) -> Result<()> {
        self.crashed
            .lock()
            .expect("crashed")
            .insert(host.to_owned());
        netns::set_port(&self.ns(netns::SWITCH), host, false)?;
        processes::kill_all(&netns::pids(&self.ns(host)));
        self.drop_vip_address(host);
        // A rebooted kernel starts with an empty neighbour cache; the
        // namespace outlives the crash, so it is emptied here.
        let _ = netns::ip_in(&self.ns(host), &["neigh", "flush", "all"]);
        Ok(())
    }

    fn drop_vip_address(&self, host: &str) {
        let h = self.spec.host(host);
        let _ = netns::ip_in(
            &self.ns(host),
            &[
                "addr",
                "del",
                &format!("{}/{}", self.spec.vip.address, self.spec.vip.prefix_length),
                "dev",
                &h.interface,
            ],
        );
    }

    /// A crashed host boots again: cable back, runtime state cleared (the
    /// agent's /run directory is a tmpfs on the appliance, the neighbour
    /// cache was flushed by the crash), daemons started in boot order.
    /// Persistent state (JetStream, artifacts) is kept.
    pub fn restore(&self, host: &str) -> Result<()> {
        let h = self.spec.host(host);
        // A container's /run is its own tmpfs: gone with the crash.
        if h.runs.gate_agent && self.init() == crate::container::Init::Process {
            let run = &h.paths.agent_runtime;
            let _ = std::fs::remove_dir_all(run);
            files::mkdir(run)?;
        }
        netns::set_port(&self.ns(netns::SWITCH), host, true)?;
        self.start_host(host)?;
        self.crashed.lock().expect("crashed").remove(host);
        Ok(())
    }

    /// `/artifacts`: the appliance's path (modules/lib/zone.nix nixosPaths).
    fn spec_in_container_artifacts(&self) -> String {
        "/artifacts".into()
    }

    pub fn is_crashed(&self, host: &str) -> bool {
        self.crashed.lock().expect("crashed").contains(host)
    }

    /// Pulls (`up = false`) or plugs a host's cable without touching its processes.
    pub fn set_cable(&self, host: &str, up: bool) -> Result<()> {
        netns::set_port(&self.ns(netns::SWITCH), host, up)
    }

    /// Link-level partition: frames between `host` and each of `from` are dropped.
    pub fn partition(&self, host: &str, from: &[&str]) -> Result<()> {
        nft::apply(&self.ns(netns::SWITCH), &nft::partition_ruleset(host, from))
    }

    pub fn heal_partition(&self) -> Result<()> {
        nft::clear(&self.ns(netns::SWITCH), "bridge")
    }

    /// `at` stops hearing `from`'s VRRP adverts (nftables in `at`'s namespace).
    pub fn drop_vrrp(&self, at: &str, from: &str) -> Result<()> {
        let src = self.spec.host(from).address;
        nft::apply(&self.ns(at), &nft::drop_vrrp_ruleset(src))
    }

    pub fn heal_vrrp(&self, at: &str) -> Result<()> {
        nft::clear(&self.ns(at), "inet")
    }

    /// The artifact storage of `host` disappears (the library's
    /// `requireMountPoint = false` mode: the simulator removes the directory).
    pub fn remove_artifacts(&self, host: &str) -> Result<()> {
        if self.init() == crate::container::Init::Systemd {
            // As on the appliance (the VM test's `umount /artifacts`).
            let dir = self.spec_in_container_artifacts();
            crate::container::machine::exec_ok(self.leader(host)?, &["umount", &dir])?;
            return Ok(());
        }
        let dir = &self.spec.host(host).paths.artifacts;
        let aside = dir.with_extension("missing");
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(dir, &aside).with_context(|| format!("moving {} away", dir.display()))
    }

    pub fn restore_artifacts(&self, host: &str) -> Result<()> {
        if self.init() == crate::container::Init::Systemd {
            let dir = self.spec_in_container_artifacts();
            let source = format!("{}/artifacts", crate::container::machine::SIM_STATE);
            crate::container::machine::exec_ok(
                self.leader(host)?,
                &["mount", "--bind", &source, &dir],
            )?;
            return Ok(());
        }
        let dir = &self.spec.host(host).paths.artifacts;
        let aside = dir.with_extension("missing");
        std::fs::rename(&aside, dir).with_context(|| format!("moving {} back", dir.display()))
    }

    /// Installs a controller certificate valid for `days` on `host`.
    pub fn install_certificate(&self, host: &str, days: i64) -> Result<()> {
        self.creds
            .as_ref()
            .context("no CA in this process (certificates are made by `up`)")?
            .install_server(host, days)
    }

    /// Where `host`'s controller certificate is on this machine (in the
    /// systemd mode: in the tree its container binds the directory from).
    pub fn certificate_file(&self, host: &str) -> Result<std::path::PathBuf> {
        self.creds
            .as_ref()
            .context("no CA in this process (certificates are made by `up`)")?
            .server_certificate(host)
    }

    pub fn install_short_certificate(&self, host: &str) -> Result<()> {
        self.install_certificate(host, SHORT_DAYS)
    }

    pub fn install_valid_certificate(&self, host: &str) -> Result<()> {
        self.install_certificate(host, VALID_DAYS)
    }

    /// Restarts the gate agent of `host` (SIGTERM: it stops its controller
    /// and sets the track file on the way out, as `systemctl restart` would).
    pub async fn restart_agent(&self, host: &str) -> Result<()> {
        if self.init() == crate::container::Init::Systemd {
            self.systemctl(host, &["restart", super::unit_of(Kind::GateAgent)?])?;
            return Ok(());
        }
        if let Some(d) = self.daemon(host, Kind::GateAgent) {
            d.signal(Signal::TERM);
            let gone = tokio::task::spawn_blocking(move || {
                processes::wait_gone(&d, Duration::from_secs(20))
            })
            .await?;
            if !gone {
                bail!("the gate agent on {host} did not stop within 20 s");
            }
        }
        self.start_agent(host)?;
        Ok(())
    }
}
