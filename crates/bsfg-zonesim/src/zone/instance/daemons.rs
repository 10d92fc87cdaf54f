//! Starting, signalling and finding the daemons of a zone, and booting it
//! in the appliance's order.

use super::Zone;
use crate::container::Init;
use crate::netns;
use crate::processes::{self, DaemonRecord, Kind};
use crate::zone::files;
use anyhow::{Context, Result, bail};
use bsfg_mgmt::{Role, VrrpState};
use rustix::process::Signal;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The node exporter's `--collector.filesystem.mount-points-exclude`
/// default (1.5.0) without `run`.
const SIMULATOR_MOUNT_POINTS_EXCLUDE: &str = "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// systemd's exit status when it could not set up a unit's cgroup
/// (`EXIT_CGROUP`, systemd.exec(5)).
const EXIT_CGROUP: &str = "219";
/// How long a planned stop of the agent or keepalived may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// nats-server's lame-duck mode lasts `lame_duck_duration` (30 s in the
/// rendered configuration) at most; the margin covers the shutdown.
pub const LAME_DUCK_TIMEOUT: Duration = Duration::from_secs(60);

impl Zone {
    // ------------------------------------------------------------ daemons

    /// Records a daemon started outside the hosts' namespaces (teardown ends it).
    pub(crate) fn record_daemon(&self, d: DaemonRecord) -> Result<()> {
        self.state.lock().expect("state").add_daemon(d)
    }

    pub(crate) fn spawn(&self, host: &str, kind: Kind, argv: Vec<String>) -> Result<DaemonRecord> {
        let dirs = self.host_dirs(host);
        files::mkdir(&dirs.logs)?;
        let d = processes::spawn(&self.ns(host), host, kind, &argv, &dirs.log(kind.name()))?;
        self.state.lock().expect("state").add_daemon(d.clone())?;
        Ok(d)
    }

    /// In the systemd mode: `systemctl start` of `kind`'s unit (a no-op when
    /// systemd's Restart= already brought it back).
    fn start_unit(&self, host: &str, kind: Kind) -> Result<()> {
        self.start_unit_named(host, super::unit_of(kind)?)
    }

    /// `systemctl start UNIT` in `host`'s container, waiting out the
    /// container's 219/CGROUP failure of a unit started right after its stop.
    pub(crate) fn start_unit_named(&self, host: &str, unit: &str) -> Result<()> {
        let Err(e) = self.systemctl(host, &["start", unit]) else {
            return Ok(());
        };
        // Started right after `systemctl stop`, a unit can fail with
        // 219/CGROUP: in a container whose cgroups its systemd does not own
        // (no systemd on the machine) the old cgroup is not always removed
        // at once ("Failed to kill control group ... Input/output error").
        // Its Restart= starts it again a second later; only that case is
        // waited for (a NixOS host owns its cgroups and never sees it).
        let status = self.systemctl(host, &["show", "-p", "ExecMainStatus", "--value", unit])?;
        if status.trim() != EXIT_CGROUP {
            return Err(e);
        }
        self.progress.say(format!(
            "{unit} on {host} failed with 219/CGROUP (the container's cgroups); waiting for its Restart="
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self
                .systemctl(host, &["is-active", unit])
                .is_ok_and(|s| s.trim() == "active")
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(e.context(format!(
            "{unit} on {host} did not come back by its Restart= within 10 s"
        )))
    }

    /// `systemctl stop` of `kind`'s unit on `host` (the systemd mode): an
    /// operator's stop, which no `Restart=` undoes.
    pub fn stop_unit(&self, host: &str, kind: Kind) -> Result<()> {
        self.systemctl(host, &["stop", super::unit_of(kind)?])?;
        Ok(())
    }

    pub fn start_nats(&self, host: &str) -> Result<()> {
        if self.init() == Init::Systemd {
            return self.start_unit(host, Kind::Nats);
        }
        // ExecStart of the appliance's nats.service, with our paths.
        let argv = self.spec.host(host).units.nats.argv.clone();
        self.spawn(host, Kind::Nats, argv).map(drop)
    }

    pub fn start_agent(&self, host: &str) -> Result<()> {
        let h = self.spec.host(host);
        if !h.runs.gate_agent {
            bail!("{host} runs no gate agent");
        }
        // ExecStart of the appliance's bsfg-gate-agent.service.
        if self.init() == Init::Systemd {
            return self.start_unit(host, Kind::GateAgent);
        }
        let unit = h.units.gate_agent.as_ref().context("no gate agent unit")?;
        self.spawn(host, Kind::GateAgent, unit.argv.clone())
            .map(drop)
    }

    /// gamma's service probe: Debian's blackbox exporter on the host's
    /// management address with the library's configuration, as nixpkgs'
    /// prometheus-blackbox-exporter.service runs it (in the systemd mode
    /// gamma's container boots that unit itself: nothing to do).
    pub fn start_probe(&self, host: &str) -> Result<()> {
        let Some(p) = &self.spec.host(host).probe else {
            bail!("{host} runs no service probe");
        };
        if self.init() == Init::Systemd {
            return Ok(());
        }
        let program = bsfg_testkit::bins::find_system_program(
            "prometheus-blackbox-exporter",
            "prometheus-blackbox-exporter",
        )?;
        let argv = vec![
            program.display().to_string(),
            format!(
                "--web.listen-address={}:{}",
                p.listen.address, p.listen.port
            ),
            format!(
                "--config.file={}",
                self.host_dirs(host).probe_config.display()
            ),
        ];
        self.spawn(host, Kind::Probe, argv).map(drop)
    }

    /// The host's node exporter: Debian's, on the management address with
    /// the library's arguments (modules/lib/node-exporter.nix), as nixpkgs'
    /// prometheus-node-exporter.service runs it (process mode only: every
    /// container runs that unit, modules/lib/container.nix). Without
    /// systemd its systemd collector fails each scrape
    /// (`node_scrape_collector_success{collector="systemd"} 0`); the
    /// filesystem, timex and textfile collectors read this machine.
    pub fn start_node_exporter(&self, host: &str) -> Result<()> {
        if self.init() == Init::Systemd {
            return Ok(());
        }
        let (name, package) = crate::container::spec::NODE_EXPORTER;
        let program = bsfg_testkit::bins::find_system_program(name, package)?;
        let mut argv = vec![program.display().to_string()];
        argv.extend(self.spec.host(host).node_exporter.args.iter().cloned());
        // The one flag the appliance does not pass: the exporter's default
        // mount-point exclusion (1.5.0) without `/run`, where the
        // simulator's hosts keep their state (the appliance's /artifacts
        // and /data/jetstream are not excluded).
        argv.push(SIMULATOR_MOUNT_POINTS_EXCLUDE.into());
        self.spawn(host, Kind::NodeExporter, argv).map(drop)
    }

    pub fn start_keepalived(&self, host: &str) -> Result<()> {
        self.start_keepalived_after(host, Duration::ZERO)
    }

    /// keepalived, `delay` from now: the process is recorded at once and
    /// waits in a shell that then becomes keepalived (same pid), so a crash
    /// meanwhile kills it like any other process of the host.
    fn start_keepalived_after(&self, host: &str, delay: Duration) -> Result<()> {
        self.launch_keepalived(host, &self.tools.keepalived, delay)
    }

    fn launch_keepalived(
        &self,
        host: &str,
        program: &std::path::Path,
        delay: Duration,
    ) -> Result<()> {
        let dirs = self.host_dirs(host);
        if self.spec.host(host).keepalived.is_none() {
            bail!("{host} runs no keepalived");
        }
        if self.init() == Init::Systemd {
            return self.start_unit(host, Kind::Keepalived);
        }
        let pid = |name: &str| dirs.keepalived_dir.join(name).display().to_string();
        // Stale pid files of a killed keepalived would make it refuse to start.
        for f in ["keepalived.pid", "vrrp.pid", "checkers.pid"] {
            let _ = std::fs::remove_file(dirs.keepalived_dir.join(f));
        }
        let mut argv = Vec::new();
        if !delay.is_zero() {
            argv.extend([
                "/bin/sh".into(),
                "-c".into(),
                r#"sleep "$0" && exec "$@""#.into(),
                format!("{:.3}", delay.as_secs_f64()),
            ]);
        }
        argv.extend([
            program.display().to_string(),
            "--dont-fork".into(),
            "--log-console".into(),
            "--log-detail".into(),
            "--vrrp".into(),
            "--use-file".into(),
            dirs.keepalived_config.display().to_string(),
            "--pid".into(),
            pid("keepalived.pid"),
            "--vrrp_pid".into(),
            pid("vrrp.pid"),
            "--checkers_pid".into(),
            pid("checkers.pid"),
        ]);
        self.spawn(host, Kind::Keepalived, argv).map(drop)
    }

    /// What a host runs when it boots, in boot order: nats-server, then the
    /// agent (it creates the FIFO and track file keepalived uses), then
    /// keepalived after the library's `bootDelaySeconds`, as the appliance's
    /// timer starts it (a keepalived that bids while the host's own boot
    /// still loads it can miss the master's adverts and take the VIP back).
    /// In the systemd mode: the host's container boots (with the real timer).
    pub fn start_host(&self, host: &str) -> Result<()> {
        if self.init() == Init::Systemd {
            return self.start_container(host);
        }
        let runs = self.spec.host(host).runs;
        self.start_nats(host)?;
        self.start_node_exporter(host)?;
        if runs.gate_agent {
            self.start_agent(host)?;
        }
        if runs.probe {
            self.start_probe(host)?;
        }
        if let Some(k) = self
            .spec
            .host(host)
            .keepalived
            .as_ref()
            .filter(|_| runs.keepalived)
        {
            self.start_keepalived_after(host, Duration::from_secs(k.boot_delay_seconds))?;
        }
        Ok(())
    }

    /// A planned restart of every daemon on `host` onto the same binaries
    /// (certificates and configuration are read anew): [`Zone::restart_host_onto`].
    pub async fn restart_host(&self, host: &str) -> Result<()> {
        self.restart_host_onto(host, &|argv| Ok(argv.to_vec()))
            .await
    }

    /// What `nixos-rebuild switch` does to `host`: every daemon stopped as
    /// its unit stops it — the agent first (SIGTERM: it stops its controller
    /// and faults its track file on the way out), then keepalived, then
    /// nats-server in lame-duck mode (SIGUSR2, the unit's KillSignal) — each
    /// waited for, then started again in boot order from `build(argv)` (the
    /// same command line, or a new build's), keepalived at once (a switch
    /// restarts keepalived.service itself; the boot-delay timer is for boots).
    pub async fn restart_host_onto(
        &self,
        host: &str,
        build: &(dyn Fn(&[String]) -> Result<Vec<String>> + Sync),
    ) -> Result<()> {
        if self.init() == Init::Systemd {
            bail!(
                "restarting a host drives the process mode's daemons; under --init systemd restart the units"
            );
        }
        for (kind, signal, timeout) in [
            (Kind::GateAgent, Signal::TERM, STOP_TIMEOUT),
            (Kind::Keepalived, Signal::TERM, STOP_TIMEOUT),
            (Kind::Nats, Signal::USR2, LAME_DUCK_TIMEOUT),
        ] {
            self.stop_daemon(host, kind, signal, timeout).await?;
        }
        let h = self.spec.host(host);
        self.spawn(host, Kind::Nats, build(&h.units.nats.argv)?)?;
        if h.runs.gate_agent {
            let unit = h.units.gate_agent.as_ref().context("no gate agent unit")?;
            self.spawn(host, Kind::GateAgent, build(&unit.argv)?)?;
        }
        if h.runs.keepalived {
            let program = build(&[self.tools.keepalived.display().to_string()])?;
            self.launch_keepalived(host, Path::new(&program[0]), Duration::ZERO)?;
        }
        Ok(())
    }

    /// Stops `kind` on `host` with `signal` and waits up to `timeout` for it
    /// to be gone; nothing to do if it does not run.
    pub async fn stop_daemon(
        &self,
        host: &str,
        kind: Kind,
        signal: Signal,
        timeout: Duration,
    ) -> Result<()> {
        let Some(d) = self.daemon(host, kind) else {
            return Ok(());
        };
        d.signal(signal);
        let gone = tokio::task::spawn_blocking(move || processes::wait_gone(&d, timeout)).await?;
        if !gone {
            bail!("{} on {host} did not stop within {timeout:?}", kind.name());
        }
        Ok(())
    }

    /// The live record of `kind` on `host`.
    pub fn daemon(&self, host: &str, kind: Kind) -> Option<DaemonRecord> {
        self.state
            .lock()
            .expect("state")
            .live(Some(host))
            .into_iter()
            .find(|d| d.kind == kind)
            .cloned()
    }

    /// Sends `signal` to one daemon and, for SIGKILL, waits until it is gone.
    pub fn signal(&self, host: &str, kind: Kind, signal: Signal) -> Result<()> {
        if self.init() == Init::Systemd {
            return self.signal_unit(host, kind, signal);
        }
        let d = self
            .daemon(host, kind)
            .with_context(|| format!("no {} running on {host}", kind.name()))?;
        d.signal(signal);
        if signal == Signal::KILL && !processes::wait_gone(&d, Duration::from_secs(5)) {
            bail!("{} on {host} survived SIGKILL", kind.name());
        }
        Ok(())
    }

    /// SIGKILLs every process named `comm` in `host`'s namespace at once (a
    /// daemon and its children die together, as in a crash; killing only the
    /// parent lets keepalived's VRRP child shut down cleanly).
    pub fn kill_all_named(&self, host: &str, comm: &str) -> usize {
        let pids: Vec<i32> = netns::pids(&self.ns(host))
            .into_iter()
            .filter(|&p| processes::comm(p as u32).as_deref() == Some(comm))
            .collect();
        processes::kill_all(&pids);
        pids.len()
    }

    /// Sends `signal` to every bsfg-controller process in `host`'s namespace
    /// (SIGSTOP/SIGCONT freeze and resume one; it may be an orphan whose
    /// agent died); returns how many got it.
    pub fn signal_controllers(&self, host: &str, signal: Signal) -> usize {
        let pids = self.controller_pids(host);
        for pid in &pids {
            if let Some(p) = rustix::process::Pid::from_raw(*pid as i32) {
                let _ = rustix::process::kill_process(p, signal);
            }
        }
        pids.len()
    }

    /// The files `host`'s controller needs, by name, as the zone library
    /// gives them to its gate agent (`controller.credentials`).
    pub fn credential_paths(&self, host: &str) -> BTreeMap<String, PathBuf> {
        self.spec
            .host(host)
            .gate_agent
            .as_ref()
            .and_then(|a| a.config["controller"]["credentials"].as_object().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k, PathBuf::from(v.as_str()?))))
            .collect()
    }

    /// Pids of the bsfg-controller processes in `host`'s namespace.
    pub fn controller_pids(&self, host: &str) -> Vec<u32> {
        netns::pids(&self.ns(host))
            .into_iter()
            .map(|p| p as u32)
            .filter(|&p| processes::comm(p).as_deref() == Some("bsfg-controller"))
            .collect()
    }

    /// Names (`comm`) of every process in `host`'s namespace; in the
    /// systemd mode without the container's own OS (PID 1, journald,
    /// logind, D-Bus, polkitd), which every appliance host runs too.
    pub fn process_names(&self, host: &str) -> Vec<String> {
        let systemd = self.init() == Init::Systemd;
        let mut names: Vec<String> = netns::pids(&self.ns(host))
            .into_iter()
            .filter_map(|p| processes::comm(p as u32))
            .filter(|n| !(systemd && crate::container::machine::OS_PROCESSES.contains(&n.as_str())))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    // ------------------------------------------------------------ boot

    /// Boots the zone the way the appliance boots (contract: any order
    /// works; alpha is expected to win): every nats-server, the cluster
    /// forms, the agents start, keepalived on alpha, then — once alpha
    /// serves — keepalived on beta (the library's `bootDelaySeconds` makes
    /// beta's keepalived start later on NixOS for the same reason).
    pub async fn boot(&self, timeout: Duration) -> Result<()> {
        if self.init() == Init::Systemd {
            return self.boot_containers(timeout).await;
        }
        let [a, b, g] = self.spec.host_names().map(str::to_owned);
        self.progress.say(format!(
            "starting nats-server (JetStream, R3 cluster) on {a}, {b}, {g}"
        ));
        for h in [&a, &b, &g] {
            self.start_nats(h)?;
        }
        self.wait_formed(&[&a, &b, &g], timeout).await?;
        for h in [&a, &b, &g] {
            self.start_node_exporter(h)?;
        }
        self.progress.say(format!("JetStream cluster formed: 3 voters, meta leader elected; starting the gate agents on {a} and {b}"));
        self.start_agent(&a)?;
        self.start_agent(&b)?;
        if self.spec.host(&g).runs.probe {
            self.progress.say(format!(
                "starting the service probe (blackbox exporter) on {g}"
            ));
            self.start_probe(&g)?;
        }
        self.progress.say(format!("starting keepalived on {a}"));
        self.start_keepalived(&a)?;
        self.wait_serving(&a, timeout).await?;
        self.progress.say(format!(
            "{a} holds the VIP {} and its controller serves; starting keepalived on {b}",
            self.spec.vip.address
        ));
        self.start_keepalived(&b)?;
        self.wait_until(&format!("{b} BACKUP and standby"), timeout, || async {
            let s = self.agent_status(&b).await.ok()?;
            (s.vrrp.state == VrrpState::Backup && s.role == Role::Standby).then_some(())
        })
        .await?;
        self.progress
            .say(format!("{b} is BACKUP and standby: the zone is up"));
        Ok(())
    }
}
