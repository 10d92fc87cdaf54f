//! The power feed of the power-loss drills: every host's disks (JetStream
//! store, artifact storage) are `bsfg-powercut` volumes of one feed, so a
//! power loss of several hosts discards at one instant what none of them
//! had made durable (docs/durability.md).

use super::Zone;
use crate::processes::{self, Kind};
use anyhow::{Context, Result};
use bsfg_powercut::control::Client;
use bsfg_powercut::domain::CutReport;
use bsfg_powercut::model::Semantics;
use rustix::process::Signal;
use std::path::PathBuf;
use std::time::Duration;

/// The disks of a host on the feed: (volume name, mount point).
fn disks(zone: &Zone, host: &str) -> Vec<(String, PathBuf)> {
    let h = zone.spec.host(host);
    let mut v = vec![(format!("{host}-jetstream"), h.paths.jetstream.clone())];
    if h.runs.artifacts {
        v.push((format!("{host}-artifacts"), h.paths.artifacts.clone()));
    }
    v
}

impl Zone {
    fn power_feed(&self) -> Client {
        Client::new(self.run_dir.join("powercut.sock"))
    }

    /// Puts every host's disks on one power feed (before the hosts boot).
    pub fn start_power_feed(&self, semantics: Semantics) -> Result<()> {
        let bin = self
            .tools()
            .controller
            .parent()
            .context("the binaries' directory")?
            .join("bsfg-powercut");
        let mut argv = vec![
            bin.display().to_string(),
            "--control".into(),
            self.power_feed().socket().display().to_string(),
            "serve".into(),
            "--semantics".into(),
            semantics.to_string(),
            // Journal commits every 5 s and writeback of 30 s old data, as
            // the appliance's ext4 does by itself.
            "--writeback".into(),
        ];
        for h in self.spec.host_names() {
            for (name, mount) in disks(self, h) {
                argv.push("--volume".into());
                argv.push(format!("{name}={}", mount.display()));
            }
        }
        let logs = self.run_dir.join("powercut");
        std::fs::create_dir_all(&logs)?;
        self.progress.say(format!(
            "putting every host's disks on one power feed (bsfg-powercut, {semantics} semantics)"
        ));
        let d = processes::spawn_outside_hosts(
            "power-feed",
            Kind::PowerFeed,
            &argv,
            &logs.join("bsfg-powercut.log"),
        )
        .with_context(|| format!("starting {} (cargo build -p bsfg-powercut)", bin.display()))?;
        self.record_daemon(d)?;
        self.power_feed()
            .wait_ready(Duration::from_secs(20))
            .context("the power feed")?;
        Ok(())
    }

    /// `hosts` lose power at one instant: every process in them stops,
    /// their cables are out, their disks lose what was not durable, and
    /// then the processes are gone (as [`Zone::crash`]).
    pub fn power_loss(&self, hosts: &[&str]) -> Result<CutReport> {
        let pids: Vec<i32> = hosts
            .iter()
            .flat_map(|h| crate::netns::pids(&self.ns(h)))
            .collect();
        for &p in &pids {
            if let Some(pid) = rustix::process::Pid::from_raw(p) {
                let _ = rustix::process::kill_process(pid, Signal::STOP);
            }
        }
        for h in hosts {
            self.set_cable(h, false)?;
        }
        let volumes: Vec<String> = hosts
            .iter()
            .flat_map(|h| disks(self, h))
            .map(|(name, _)| name)
            .collect();
        let report = self.power_feed().cut(&volumes)?;
        for h in hosts {
            self.crash(h)?;
        }
        Ok(report)
    }

    /// Power is back on `hosts`: their disks come up with what was durable,
    /// then they boot as after a crash ([`Zone::restore`]).
    pub fn power_on(&self, hosts: &[&str]) -> Result<()> {
        let volumes: Vec<String> = hosts
            .iter()
            .flat_map(|h| disks(self, h))
            .map(|(name, _)| name)
            .collect();
        self.power_feed().boot(&volumes)?;
        for h in hosts {
            self.restore(h)?;
        }
        Ok(())
    }
}
