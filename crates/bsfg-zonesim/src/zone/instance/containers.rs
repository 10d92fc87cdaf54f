//! The systemd mode of a zone: every host a container booting systemd
//! (crate::container), its daemons the appliance's units. The operations
//! drills use (boot, crash, kill one daemon, restart the agent) map onto
//! the container: a crash kills every process of it, a reboot boots it
//! again, a daemon is found through its unit's MainPID.

use super::Zone;
use crate::container::machine::{self, MachineSpec};
use crate::container::spec::{self, ContainerSpec};
use crate::container::{Init, root};
use crate::processes::{self, Kind};
use crate::zone::files;
use crate::zone::spec::{Binaries, NatsUsers};
use anyhow::{Context, Result, bail};
use rustix::process::Signal;
use std::path::PathBuf;
use std::time::Duration;

/// How long a container may take from `systemd-nspawn` to `running`.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The unit that runs `kind` on an appliance host.
pub fn unit_of(kind: Kind) -> Result<&'static str> {
    Ok(match kind {
        Kind::Nats => "nats.service",
        Kind::GateAgent => "bsfg-gate-agent.service",
        Kind::Keepalived => "keepalived.service",
        Kind::Controller => "bsfg-controller.service",
        Kind::PowerFeed | Kind::Container | Kind::Probe | Kind::NodeExporter => {
            bail!("{} is no unit of a host", kind.name())
        }
    })
}

/// The containers of an instance: the cached root and the library's view.
#[derive(Debug)]
pub struct Containers {
    pub root: PathBuf,
    pub spec: ContainerSpec,
    /// The generation a host was last switched to (absent: the first,
    /// `spec`'s), which the next switch starts from, as a NixOS host's
    /// `/run/current-system` is what `nixos-rebuild switch` compares with.
    switched: std::sync::Mutex<std::collections::BTreeMap<String, spec::HostContainer>>,
}

impl Containers {
    /// Builds (or reuses) the root and evaluates the library's container view.
    pub fn prepare(
        opts: &crate::zone::options::Options,
        run_dir: &std::path::Path,
        bins: &Binaries,
        users: Option<&NatsUsers>,
        say: &dyn Fn(String),
    ) -> Result<Containers> {
        let root = root::ensure(say)?;
        say(format!(
            "evaluating modules/lib/container.nix (the appliance's units, files and users per host); root {}",
            root.display()
        ));
        // gamma's bsfg-backup.service and the service hosts' bsfg-artifact-backup.service run it.
        let bsfgctl =
            bsfg_testkit::bins::find_workspace_binary("bsfgctl", opts.bin_dir.as_deref())?;
        let spec = spec::evaluate(&opts.repo, &opts.zone_file, run_dir, bins, &bsfgctl, users)?;
        Ok(Containers {
            root,
            spec,
            switched: Default::default(),
        })
    }
}

impl Zone {
    pub fn init(&self) -> Init {
        self.state.lock().expect("state").init
    }

    fn containers(&self) -> Result<&Containers> {
        self.containers
            .as_ref()
            .context("this zone runs no containers (--init process)")
    }

    fn machine(&self, host: &str) -> Result<MachineSpec<'_>> {
        let c = self.containers()?;
        let container = c
            .spec
            .hosts
            .get(host)
            .with_context(|| format!("no container for {host}"))?;
        Ok(MachineSpec {
            root: &c.root,
            name: format!("{}-{host}", self.instance),
            host: self.spec.host(host).name.clone(),
            netns: self.ns(host),
            state: self.run_dir.join(host),
            container,
        })
    }

    /// Writes each container's `/etc` directories and state directories.
    pub(crate) fn write_containers(&self) -> Result<()> {
        for h in self.spec.host_names() {
            let m = self.machine(h)?;
            m.container.write(&m.etc_root())?;
            files::mkdir(&m.journal_dir())?;
            // nspawn refuses a bind whose source is missing.
            for b in m.container.binds.iter().filter(|b| !b.read_only) {
                files::mkdir(&b.source)?;
            }
        }
        Ok(())
    }

    /// Boots `host`'s container (returns once systemd is `running`).
    pub fn start_container(&self, host: &str) -> Result<()> {
        let m = self.machine(host)?;
        if machine::leader(&m.netns).is_some() {
            bail!("{host}'s container is already running");
        }
        let dirs = self.host_dirs(host);
        files::mkdir(&dirs.logs)?;
        let d = processes::spawn_outside_hosts(
            host,
            Kind::Container,
            &m.argv(),
            &dirs.log(Kind::Container.name()),
        )?;
        self.record_daemon(d.clone())?;
        let units = m.container.units.clone();
        machine::wait_booted(&m.netns, &units, &d, BOOT_TIMEOUT).with_context(|| {
            format!(
                "booting {host} (console: {})",
                dirs.log(Kind::Container.name()).display()
            )
        })?;
        Ok(())
    }

    /// PID 1 of `host`'s container.
    pub fn leader(&self, host: &str) -> Result<u32> {
        machine::leader(&self.ns(host))
            .with_context(|| format!("{host}'s container is not running"))
    }

    /// `systemctl ARGS` inside `host`'s container, as root.
    pub fn systemctl(&self, host: &str, args: &[&str]) -> Result<String> {
        let mut argv = vec!["systemctl"];
        argv.extend_from_slice(args);
        machine::exec_ok(self.leader(host)?, &argv)
    }

    /// The main pid of `unit` on `host` (None while it is not running).
    pub fn main_pid(&self, host: &str, unit: &str) -> Result<Option<u32>> {
        let out = self.systemctl(host, &["show", "-p", "MainPID", "--value", unit])?;
        // In the container's pid namespace; translate through the netns.
        let inner: u32 = out.trim().parse().context("MainPID")?;
        if inner == 0 {
            return Ok(None);
        }
        Ok(crate::netns::pids(&self.ns(host))
            .into_iter()
            .map(|p| p as u32)
            .find(|&p| inner_pid(p) == Some(inner)))
    }

    /// Sends `signal` to the main process of `kind`'s unit on `host`.
    pub(crate) fn signal_unit(&self, host: &str, kind: Kind, signal: Signal) -> Result<()> {
        let unit = unit_of(kind)?;
        let pid = self
            .main_pid(host, unit)?
            .with_context(|| format!("{unit} is not running on {host}"))?;
        let p = rustix::process::Pid::from_raw(pid as i32).context("pid 0")?;
        rustix::process::kill_process(p, signal)
            .with_context(|| format!("signalling {unit} on {host}"))?;
        if signal == Signal::KILL {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while processes::start_time(pid).is_some() {
                if std::time::Instant::now() > deadline {
                    bail!("{unit} on {host} survived SIGKILL");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// The credential `name` as `unit` on `host` loaded it
    /// (`/run/credentials/<unit>/<name>`, LoadCredential=).
    pub fn loaded_credential(&self, host: &str, unit: &str, name: &str) -> Result<String> {
        machine::exec_ok(
            self.leader(host)?,
            &["cat", &format!("/run/credentials/{unit}/{name}")],
        )
    }

    /// `systemd-analyze security` of every unit of `host`, one report per unit.
    pub fn security(&self, host: &str) -> Result<Vec<(String, String)>> {
        let m = self.machine(host)?;
        let leader = self.leader(host)?;
        m.container
            .units
            .iter()
            .map(|u| {
                let out = machine::exec(leader, &["systemd-analyze", "security", "--no-pager", u])?;
                Ok((u.clone(), String::from_utf8_lossy(&out.stdout).into_owned()))
            })
            .collect()
    }

    /// The overall exposure `systemd-analyze security` gives `unit` on `host`.
    pub fn exposure(&self, host: &str, unit: &str) -> Result<f64> {
        let out = machine::exec(
            self.leader(host)?,
            &["systemd-analyze", "security", "--no-pager", unit],
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        overall_exposure(&text)
            .with_context(|| format!("no overall exposure for {unit} in {text:?}"))
    }

    /// The last lines `unit` on `host` logged (for a check's detail).
    pub fn unit_journal(&self, host: &str, unit: &str) -> String {
        match self.unit_journal_text(host, unit) {
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(12)..].join("\n")
            }
            Err(e) => format!("(no journal: {e:#})"),
        }
    }

    /// Everything `unit` on `host` logged (this boot and earlier ones).
    pub fn unit_journal_text(&self, host: &str, unit: &str) -> Result<String> {
        let dir = self.run_dir.join(host).join("journal");
        machine::journal(&dir, &[unit], "cat")
    }

    /// The entries `program` (its stdout's identifier) or `unit` logged on
    /// `host`: an entry journald could not attribute to the unit (the
    /// sender gone before its cgroup was read) is in it too.
    pub fn program_journal(
        &self,
        host: &str,
        unit: &str,
        program: &str,
    ) -> Result<Vec<machine::JournalEntry>> {
        let dir = self.run_dir.join(host).join("journal");
        machine::journal_entries(
            &dir,
            &[
                &format!("_SYSTEMD_UNIT={unit}"),
                "+",
                &format!("SYSLOG_IDENTIFIER={program}"),
            ],
        )
    }

    /// Each unit's journal, from the host's bound journal directory, into
    /// `<host>/logs/<unit>.journal` (kept with the run directory).
    pub fn export_journals(&self) -> Result<()> {
        if self.containers.is_none() {
            return Ok(());
        }
        for h in self.spec.host_names() {
            let m = self.machine(h)?;
            let dirs = self.host_dirs(h);
            files::mkdir(&dirs.logs)?;
            for u in &m.container.units {
                let text = machine::journal(&m.journal_dir(), &[u.as_str()], "short-precise")?;
                std::fs::write(dirs.logs.join(format!("{u}.journal")), text)?;
            }
        }
        Ok(())
    }
}

/// What [`Zone::switch_container`] did to one host.
#[derive(Debug, Clone)]
pub struct Switched {
    /// The units stopped before the new files and started after the reload.
    pub restarted: Vec<String>,
    /// Changed units a switch does not restart (`restartIfChanged = false`)
    /// or that were not running.
    pub left: Vec<String>,
    /// How long `systemctl stop` took (nats-server's lame-duck mode).
    pub stop: Duration,
}

impl Zone {
    /// Every program the containers run, as (path in the containers, file
    /// on this machine): the bound programs (gamma's probe exporter and
    /// every host's node exporter included) and Debian's keepalived.
    pub fn container_programs(&self) -> Result<Vec<(PathBuf, PathBuf)>> {
        let c = self.containers()?;
        let b = &c.spec.container_binaries;
        let at = |name: &str| {
            b.get(name)
                .cloned()
                .with_context(|| format!("modules/lib/container.nix names no {name} program"))
        };
        let ka = &c.spec.keepalived_program;
        let bsfgctl = bsfg_testkit::bins::find_workspace_binary("bsfgctl", None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(vec![
            (at("controller")?, self.tools.controller.clone()),
            (at("gateAgent")?, self.tools.gate_agent.clone()),
            (at("natsServer")?, self.tools.nats_server.clone()),
            (at("bsfgctl")?, bsfgctl),
            (
                at("blackboxExporter")?,
                bsfg_testkit::bins::find_system_program(
                    spec::BLACKBOX_EXPORTER.0,
                    spec::BLACKBOX_EXPORTER.1,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            (
                at("nodeExporter")?,
                bsfg_testkit::bins::find_system_program(
                    spec::NODE_EXPORTER.0,
                    spec::NODE_EXPORTER.1,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            (ka.clone(), c.root.join(ka.strip_prefix("/").unwrap_or(ka))),
        ])
    }

    /// The main pid of every running unit of `host` the library lists.
    pub fn unit_main_pids(&self, host: &str) -> Result<Vec<(String, u32)>> {
        let m = self.machine(host)?;
        let mut pids = Vec::new();
        for u in &m.container.units {
            if let Some(pid) = self.main_pid(host, u)? {
                pids.push((u.clone(), pid));
            }
        }
        Ok(pids)
    }

    /// What `nixos-rebuild switch` to the next generation (every file of
    /// the generation the host runs, through `edit`) does to `host`'s
    /// container, as
    /// switch-to-configuration does it: the running units whose file
    /// changes and that restart if changed are stopped in one transaction
    /// (systemd stops them in reverse start order; nats.service in
    /// lame-duck mode, its KillSignal), the changed files are written, systemd
    /// reloads, and the stopped units start again in boot order.
    pub fn switch_container(&self, host: &str, edit: &dyn Fn(&str) -> String) -> Result<Switched> {
        let m = self.machine(host)?;
        let switched = &self.containers()?.switched;
        let current = switched
            .lock()
            .expect("switched")
            .get(host)
            .cloned()
            .unwrap_or_else(|| m.container.clone());
        let next = current.next_generation(edit);
        let plan = current.switch_to(&next)?;
        let (restarted, mut idle): (Vec<String>, Vec<String>) =
            plan.restart.into_iter().partition(|u| {
                self.systemctl(host, &["is-active", u])
                    .is_ok_and(|s| s.trim() == "active")
            });
        let start = std::time::Instant::now();
        if !restarted.is_empty() {
            let mut argv = vec!["stop"];
            argv.extend(restarted.iter().map(String::as_str));
            self.systemctl(host, &argv)
                .with_context(|| format!("stopping {} on {host}", restarted.join(" ")))?;
        }
        let stop = start.elapsed();
        current.changed_in(&next).write(&m.etc_root())?;
        self.systemctl(host, &["daemon-reload"])?;
        for u in &restarted {
            self.start_unit_named(host, u)?;
        }
        switched
            .lock()
            .expect("switched")
            .insert(host.to_owned(), next);
        let mut left = plan.left;
        left.append(&mut idle);
        Ok(Switched {
            restarted,
            left,
            stop,
        })
    }
}

impl Zone {
    /// What the gate agent of `host` logged, its controller's lines
    /// included: its log file, or in the systemd mode both units' journal.
    pub fn agent_log(&self, host: &str) -> String {
        if self.containers.is_some() {
            let dir = self.run_dir.join(host).join("journal");
            let units = [Kind::GateAgent, Kind::Controller].map(|k| unit_of(k).unwrap_or_default());
            return machine::journal(&dir, &units, "cat").unwrap_or_default();
        }
        std::fs::read_to_string(self.host_dirs(host).log(Kind::GateAgent.name()))
            .unwrap_or_default()
    }
}

/// `→ Overall exposure level for x.service: 1.4 OK :-)` → 1.4.
pub fn overall_exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))?;
    line.rsplit(':')
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `pid`'s pid in the innermost pid namespace it is in.
fn inner_pid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

impl Zone {
    /// The systemd mode's boot, staged like the process mode's so that
    /// every drill starts from alpha active: alpha's and gamma's containers
    /// at once, then beta's once they run. (A zone-wide power-on is a race
    /// keepalived's boot-delay timers, 5 s and 15 s, only bias towards
    /// alpha: on a loaded machine alpha's gates may still fail at 15 s and
    /// beta win; the boot drill covers every order.)
    pub(crate) async fn boot_containers(&self, timeout: Duration) -> Result<()> {
        let [a, b, g] = self.spec.host_names().map(str::to_owned);
        self.progress.say(format!(
            "booting systemd in the containers of {a} and {g} (root {})",
            self.containers()?.root.display()
        ));
        let hosts = [a.clone(), g.clone()];
        tokio::task::block_in_place(|| {
            std::thread::scope(|s| -> Result<()> {
                let boots: Vec<_> = hosts
                    .iter()
                    .map(|h| s.spawn(move || self.start_container(h)))
                    .collect();
                for b in boots {
                    b.join().expect("boot thread")?;
                }
                Ok(())
            })
        })?;
        self.progress.say(format!(
            "systemd runs on {a} and {g}; booting {b}, then waiting for {a} serving"
        ));
        tokio::task::block_in_place(|| self.start_container(&b))?;
        self.wait_formed(&[&a, &b, &g], timeout).await?;
        self.wait_serving(&a, timeout).await?;
        // beta's keepalived would start from its boot-delay timer, 15 s
        // after boot: that delay keeps a host that boots alone from taking
        // the VIP before its gates could pass. With alpha already MASTER it
        // protects nothing here, so it is started now, as an operator's
        // `systemctl start` would (the boot drill keeps the timers: it
        // boots the hosts again in every order). Saves ~10 s per drill.
        // The timer is stopped with it: still pending, it would start
        // keepalived 15 s after boot even if a drill had stopped it by then
        // (the rolling upgrade's stop of beta's units, which then fails
        // with "Job for keepalived.service canceled").
        tokio::task::block_in_place(|| {
            self.systemctl(&b, &["start", unit_of(Kind::Keepalived)?])?;
            self.systemctl(&b, &["stop", "keepalived-boot-delay.timer"])
        })?;
        self.wait_until(&format!("{b} BACKUP and standby"), timeout, || async {
            let s = self.agent_status(&b).await.ok()?;
            (s.vrrp.state == bsfg_mgmt::VrrpState::Backup && s.role == bsfg_mgmt::Role::Standby)
                .then_some(())
        })
        .await?;
        self.progress.say(format!(
            "{b} is BACKUP and standby: the zone is up (systemd mode)"
        ));
        Ok(())
    }
}

impl Zone {
    /// The controller on `host` runs as `bsfg-controller.service` (a child
    /// of the container's systemd, as the controller's user), started after
    /// the agent, and no unit wants or requires it: only the agent's
    /// `systemctl start` (allowed by the polkit rule) can have started it.
    pub fn controller_started_through_systemd(&self, host: &str) -> Result<String> {
        let leader = self.leader(host)?;
        let controller = unit_of(Kind::Controller)?;
        let agent = unit_of(Kind::GateAgent)?;
        let pid = self
            .main_pid(host, controller)?
            .with_context(|| format!("{controller} is not running"))?;
        if processes::parent_pid(pid) != Some(leader) {
            bail!("controller {pid}'s parent is not the container's systemd ({leader})");
        }
        let user = self.systemctl(host, &["show", "-p", "User", "--value", controller])?;
        let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))?
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next().map(str::to_owned))
            .unwrap_or_default();
        let expected = machine::exec_ok(leader, &["id", "-u", user.trim()])?;
        if uid != expected.trim() {
            bail!(
                "controller {pid} runs as uid {uid}, not {} ({})",
                user.trim(),
                expected.trim()
            );
        }
        let since = |unit: &str| -> Result<u64> {
            self.systemctl(
                host,
                &[
                    "show",
                    "-p",
                    "ExecMainStartTimestampMonotonic",
                    "--value",
                    unit,
                ],
            )?
            .trim()
            .parse()
            .context("ExecMainStartTimestampMonotonic")
        };
        if since(controller)? < since(agent)? {
            bail!("{controller} started before {agent}");
        }
        let pulled = self.systemctl(
            host,
            &[
                "show",
                "-p",
                "WantedBy",
                "-p",
                "RequiredBy",
                "-p",
                "UpheldBy",
                "-p",
                "BoundBy",
                controller,
            ],
        )?;
        if pulled
            .lines()
            .any(|l| l.split_once('=').is_some_and(|(_, v)| !v.trim().is_empty()))
        {
            bail!(
                "{controller} is pulled in by another unit: {}",
                pulled.trim()
            );
        }
        Ok(format!(
            "pid {pid} (uid {uid}, {}) under the container's systemd, started after {agent}, wanted by nothing",
            user.trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_overall_exposure() {
        let r = "  ✗ UMask= ...   0.1\n\n→ Overall exposure level for bsfg-controller.service: 1.1 OK :-)\n";
        assert_eq!(overall_exposure(r), Some(1.1));
        assert_eq!(overall_exposure("nothing"), None);
    }
}
