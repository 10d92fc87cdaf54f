//! One simulated zone: its namespaces, files, certificates and daemons, and
//! the operations drills perform on it (crash, restore, partition, kill one
//! daemon, take away a gate).

use super::credentials::{Credentials, SHORT_DAYS, VALID_DAYS};
use super::files::{self, HostDirs};
use super::spec::{Binaries, NatsSystemUser, ZoneSpec};
use super::workload::{self, Workload};
use crate::netns::runtime::NetnsRuntime;
use crate::netns::{self, nft};
use crate::observe::jsz::{self, Placement};
use crate::observe::status::{AgentStatus, ControllerStatus};
use crate::observe::{self, Readiness, http};
use crate::processes::{self, DaemonRecord, Kind};
use crate::state::{self, State};
use anyhow::{Context, Result, anyhow, bail};
use bsfg_core::config::TlsFiles;
use rustix::process::Signal;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How one instance is named and where its inputs are.
#[derive(Debug, Clone)]
pub struct Options {
    /// Prefixes the namespaces (`<instance>-alpha`) and names the run directory.
    pub instance: String,
    /// Parent of the run directory (`<run_root>/<instance>`).
    pub run_root: PathBuf,
    /// The repository (for `modules/lib/simulator.nix`).
    pub repo: PathBuf,
    /// The zone description.
    pub zone_file: PathBuf,
    /// Where bsfg-controller and bsfg-gate-agent are.
    pub bin_dir: Option<PathBuf>,
    /// No progress lines.
    pub quiet: bool,
}

impl Options {
    pub fn new(instance: &str) -> Options {
        let repo = default_repo();
        Options {
            instance: instance.to_owned(),
            run_root: state::DEFAULT_RUN_ROOT.into(),
            zone_file: repo.join("hosts/zone.nix"),
            repo,
            bin_dir: None,
            quiet: false,
        }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.run_root.join(&self.instance)
    }
}

/// The repository this simulator was built from (`$BSFG_REPO` overrides).
pub fn default_repo() -> PathBuf {
    std::env::var_os("BSFG_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .nth(2)
                .expect("crates/bsfg-zonesim is two levels below the repository")
                .to_path_buf()
        })
}

/// Progress lines on stderr, with the time since the instance was created.
#[derive(Debug, Clone)]
pub struct Progress {
    start: Instant,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            start: Instant::now(),
            quiet,
        }
    }

    pub fn say(&self, msg: impl std::fmt::Display) {
        use std::io::Write;
        if !self.quiet {
            // A closed stderr (`... 2>&1 | head`) must not abort a drill.
            let _ = writeln!(
                std::io::stderr(),
                "[{:>6.1}s] {msg}",
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

/// The programs a zone runs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub nats_server: PathBuf,
    pub keepalived: PathBuf,
    pub controller: PathBuf,
    pub gate_agent: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Where bsfg-controller and bsfg-gate-agent are: `--bin-dir`, then
/// `$BSFG_BIN_DIR`, then next to this executable (or one level up, for a
/// test binary in `target/<profile>/deps/`).
pub fn bin_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = explicit {
        return Ok(d.to_owned());
    }
    if let Some(d) = std::env::var_os("BSFG_BIN_DIR") {
        return Ok(d.into());
    }
    let exe = std::env::current_exe().context("locating this executable")?;
    let dir = exe.parent().context("executable directory")?;
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        if d.join("bsfg-controller").is_file() && d.join("bsfg-gate-agent").is_file() {
            return Ok(d.to_owned());
        }
    }
    bail!(
        "bsfg-controller and bsfg-gate-agent not found next to {} (build them: \
         cargo build -p bsfg-controller -p bsfg-gate-agent), or set BSFG_BIN_DIR / --bin-dir",
        exe.display()
    )
}

impl Tools {
    pub fn find(bin_dir_opt: Option<&Path>) -> Result<Tools> {
        let dir = bin_dir(bin_dir_opt)?;
        let ours = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if !p.is_file() {
                bail!("{} not found (cargo build -p {name})", p.display());
            }
            Ok(p)
        };
        let nats_server = match std::env::var_os("NATS_SERVER_BIN") {
            Some(p) => PathBuf::from(p),
            None => on_path("nats-server")
                .or_else(|| {
                    let venv = default_repo().join(".venv/bin/nats-server");
                    venv.is_file().then_some(venv)
                })
                .context(
                    "nats-server not found ($NATS_SERVER_BIN, PATH, .venv/bin); \
                     scripts/zone installs it",
                )?,
        };
        for (tool, package) in [
            ("ip", "iproute2"),
            ("nft", "nftables"),
            ("nix-instantiate", "nix-bin"),
        ] {
            on_path(tool).with_context(|| {
                format!("{tool} not found; install the Debian package {package}")
            })?;
        }
        Ok(Tools {
            nats_server,
            keepalived: on_path("keepalived")
                .context("keepalived not found; install the Debian package keepalived")?,
            controller: ours("bsfg-controller")?,
            gate_agent: ours("bsfg-gate-agent")?,
        })
    }
}

/// keepalived's `enable_script_security` refuses a script that a non-root
/// user could replace: the file or any directory above it owned by someone
/// else or writable by group/others.
pub fn script_path_is_secure(path: &Path) -> bool {
    path.ancestors().all(|p| {
        std::fs::metadata(p).is_ok_and(|m| {
            let sticky = m.is_dir() && m.mode() & 0o1000 != 0;
            m.uid() == 0 && (m.mode() & 0o022 == 0 || (sticky && p != path))
        })
    })
}

/// Creates keepalived's script user when it is missing (Debian's keepalived
/// package does not create `keepalived_script`; NixOS does).
pub fn ensure_script_user(user: &str, progress: &Progress) -> Result<()> {
    if user == "root" {
        return Ok(());
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    if passwd.lines().any(|l| l.split(':').next() == Some(user)) {
        return Ok(());
    }
    progress.say(format!(
        "creating the system user {user} (keepalived runs the agent's check as this user)"
    ));
    let out = std::process::Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ])
        .output()
        .context("running useradd")?;
    if !out.status.success() {
        bail!(
            "useradd {user}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A running (or being built) zone instance.
pub struct Zone {
    pub instance: String,
    pub spec: ZoneSpec,
    pub workload: Workload,
    pub run_dir: PathBuf,
    pub progress: Progress,
    creds: Option<Credentials>,
    tools: Tools,
    state: Mutex<State>,
    runtimes: Mutex<BTreeMap<String, Arc<NetnsRuntime>>>,
    crashed: Mutex<BTreeSet<String>>,
    owned: bool,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("instance", &self.instance)
            .field("run_dir", &self.run_dir)
            .finish_non_exhaustive()
    }
}

/// `bsfgctl` configuration files for the producer and the reader
/// (`<run dir>/client/bsfgctl-<identity>.toml`), and the zone as `bsfgctl
/// zone status` reads it (`client/zone.json`, from `modules/lib/operator.nix`
/// with this run directory). The latter is a convenience: if the operator
/// view cannot be evaluated, the configuration files omit it.
fn write_cli_files(
    opts: &Options,
    spec: &ZoneSpec,
    w: &Workload,
    run_dir: &Path,
    progress: &Progress,
) -> Result<()> {
    let dir = run_dir.join("client");
    let zone_json = dir.join("zone.json");
    let expr = format!(
        "import {} {{ zone = import {}; runDir = {}; }}",
        super::spec::nix_string(
            &opts
                .repo
                .join("modules/lib/operator.nix")
                .display()
                .to_string()
        ),
        super::spec::nix_string(&opts.zone_file.display().to_string()),
        super::spec::nix_string(&run_dir.display().to_string()),
    );
    let operator = std::process::Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .output();
    let zone_file = match operator {
        Ok(out) if out.status.success() => {
            std::fs::write(&zone_json, &out.stdout)
                .with_context(|| format!("writing {}", zone_json.display()))?;
            Some(zone_json)
        }
        Ok(out) => {
            progress.say(format!(
                "no zone.json for bsfgctl (modules/lib/operator.nix: {})",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            None
        }
        Err(e) => {
            progress.say(format!("no zone.json for bsfgctl: {e}"));
            None
        }
    };
    for id in [&w.producer, &w.reader] {
        let mut config = toml::Table::new();
        config.insert("endpoint".into(), spec.endpoint().into());
        config.insert(
            "cert".into(),
            dir.join(format!("{id}.pem")).display().to_string().into(),
        );
        config.insert(
            "key".into(),
            dir.join(format!("{id}.key")).display().to_string().into(),
        );
        config.insert("ca".into(), dir.join("ca.pem").display().to_string().into());
        config.insert("from_zone".into(), spec.zone.clone().into());
        if let Some(z) = &zone_file {
            config.insert("zone_file".into(), z.display().to_string().into());
        }
        let path = dir.join(format!("bsfgctl-{id}.toml"));
        std::fs::write(&path, toml::to_string(&config)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Root is needed for namespaces, keepalived and useradd.
pub fn require_root() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!(
            "the zone simulator needs root (network namespaces, keepalived); \
             run it with sudo, e.g. sudo env PATH=\"$PATH\" ./scripts/zone up"
        );
    }
    Ok(())
}

impl Zone {
    /// Builds a new instance: run directory, files, certificates, namespaces
    /// and links. No daemon runs yet ([`Zone::boot`] starts them). The
    /// instance is removed again when the `Zone` is dropped, unless
    /// [`Zone::keep`] was called.
    pub fn create(opts: &Options) -> Result<Zone> {
        require_root()?;
        netns::check_instance_name(&opts.instance)?;
        let progress = Progress::new(opts.quiet);
        let run_dir = opts.run_dir();
        if let Some(s) = State::load(&run_dir)? {
            if s.anything_running() {
                bail!(
                    "instance {} is already up ({}); `status` shows it, `down` removes it",
                    opts.instance,
                    run_dir.display()
                );
            }
            progress.say(format!(
                "removing the leftovers of a previous {} run",
                opts.instance
            ));
        }
        state::teardown(&opts.instance, &run_dir)?;
        let mut tools = Tools::find(opts.bin_dir.as_deref())?;
        files::mkdir(&opts.run_root)?;
        files::mkdir(&run_dir)?;
        let st = State {
            instance: opts.instance.clone(),
            run_dir: run_dir.clone(),
            zone_file: opts.zone_file.clone(),
            created_by_pid: std::process::id(),
            created_unix_ms: bsfg_core::clock::unix_ms(),
            ..Default::default()
        };
        st.save()?;
        // From here on a failure removes what was made.
        let mut guard = TeardownGuard {
            instance: opts.instance.clone(),
            run_dir: run_dir.clone(),
            armed: true,
        };
        if !script_path_is_secure(&tools.gate_agent) {
            // keepalived would refuse to run the check from there.
            let bin = run_dir.join("bin");
            files::mkdir(&bin)?;
            let copy = bin.join("bsfg-gate-agent");
            std::fs::copy(&tools.gate_agent, &copy)
                .with_context(|| format!("copying {}", tools.gate_agent.display()))?;
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
            progress.say(format!(
                "{} is not root-owned all the way up (keepalived's script security); using a copy in {}",
                tools.gate_agent.display(),
                bin.display()
            ));
            tools.gate_agent = copy;
        }
        let bins = Binaries {
            controller: tools.controller.clone(),
            gate_agent: tools.gate_agent.clone(),
            nats_server: tools.nats_server.clone(),
        };
        // The NATS system user (the controller's meta-leader step-down):
        // made here, its bcrypt hash handed to the library for nats-server's
        // configuration, the password written where each controller reads it.
        let system_user = bsfg_testkit::nats::SystemUser::generate();
        let system_arg = NatsSystemUser {
            password_file: run_dir.join("nats-system-password"),
            password_hash: system_user.password_hash.clone(),
        };
        progress.say(format!(
            "evaluating the zone library for {}",
            opts.zone_file.display()
        ));
        let spec = ZoneSpec::evaluate(
            &opts.repo,
            &opts.zone_file,
            &run_dir,
            &bins,
            Some(&system_arg),
        )?;
        let workload = workload::derive(
            &spec
                .alpha()
                .controller
                .as_ref()
                .context("alpha has no controller configuration")?
                .config,
        )?;
        for h in spec.service_hosts() {
            if let Some(k) = &spec.host(h).keepalived {
                ensure_script_user(&k.check_script.user, &progress)?;
            }
        }
        for h in spec.host_names() {
            files::write_host(spec.host(h), &HostDirs::new(&run_dir, h))?;
        }
        let password_files = std::iter::once(system_arg.password_file.clone()).chain(
            spec.service_hosts()
                .into_iter()
                .filter_map(|h| spec.system_password_file(h)),
        );
        for f in password_files {
            system_user
                .write_password(&f)
                .with_context(|| format!("writing {}", f.display()))?;
        }
        progress.say("making the zone CA and certificates (rcgen)");
        let creds = Credentials::create(&spec, &workload, &run_dir)?;
        write_cli_files(opts, &spec, &workload, &run_dir, &progress)?;
        guard.armed = false;
        // From here on the Zone's Drop removes the instance.
        let zone = Zone {
            instance: opts.instance.clone(),
            spec,
            workload,
            run_dir,
            progress,
            creds: Some(creds),
            tools,
            state: Mutex::new(st),
            runtimes: Mutex::new(BTreeMap::new()),
            crashed: Mutex::new(BTreeSet::new()),
            owned: true,
        };
        zone.build_network()?;
        Ok(zone)
    }

    /// Attaches to an instance that is up (status, append, down).
    pub fn attach(opts: &Options) -> Result<Zone> {
        require_root()?;
        netns::check_instance_name(&opts.instance)?;
        let run_dir = opts.run_dir();
        let st = State::load(&run_dir)?.with_context(|| {
            format!(
                "instance {} is not up (no {}); start it with `up`",
                opts.instance,
                State::path(&run_dir).display()
            )
        })?;
        let tools = Tools::find(opts.bin_dir.as_deref())?;
        let gate_agent = {
            let copy = run_dir.join("bin/bsfg-gate-agent");
            if copy.is_file() {
                copy
            } else {
                tools.gate_agent.clone()
            }
        };
        let bins = Binaries {
            controller: tools.controller.clone(),
            gate_agent,
            nats_server: tools.nats_server.clone(),
        };
        // Without the system user: attaching writes no configuration, and
        // the addresses, ports and paths do not depend on it.
        let spec = ZoneSpec::evaluate(&opts.repo, &st.zone_file, &run_dir, &bins, None)?;
        let workload = workload::derive(
            &spec
                .alpha()
                .controller
                .as_ref()
                .context("alpha has no controller configuration")?
                .config,
        )?;
        Ok(Zone {
            instance: opts.instance.clone(),
            spec,
            workload,
            run_dir,
            progress: Progress::new(opts.quiet),
            creds: None,
            tools,
            state: Mutex::new(st),
            runtimes: Mutex::new(BTreeMap::new()),
            crashed: Mutex::new(BTreeSet::new()),
            owned: false,
        })
    }

    /// Leaves the instance running when this `Zone` is dropped (`up`).
    pub fn keep(&mut self) {
        self.owned = false;
    }

    pub fn ns(&self, what: &str) -> String {
        netns::ns_name(&self.instance, what)
    }

    pub(crate) fn record_ns(&self, ns: &str) -> Result<()> {
        self.state.lock().expect("state").add_namespace(ns)
    }

    fn build_network(&self) -> Result<()> {
        let switch = self.ns(netns::SWITCH);
        self.progress.say(format!(
            "creating namespaces {0}-alpha, {0}-beta, {0}-gamma, {0}-client and the switch {switch}",
            self.instance
        ));
        self.record_ns(&switch)?;
        netns::create_switch(&switch)?;
        for h in self.spec.host_names() {
            let host = self.spec.host(h);
            let ns = self.ns(h);
            self.record_ns(&ns)?;
            netns::create(&ns)?;
            netns::plug(
                &ns,
                &host.interface,
                &format!("{}/{}", host.address, host.prefix_length),
                &switch,
                h,
            )?;
            if host.management_address != host.address {
                netns::ip_in(
                    &ns,
                    &[
                        "addr",
                        "add",
                        &format!("{}/32", host.management_address),
                        "dev",
                        &host.interface,
                    ],
                )?;
            }
        }
        let client = self.ns(netns::CLIENT);
        self.record_ns(&client)?;
        netns::create(&client)?;
        netns::plug(
            &client,
            netns::CLIENT_IF,
            &format!(
                "{}/{}",
                self.spec.client_address()?,
                self.spec.alpha().prefix_length
            ),
            &switch,
            netns::CLIENT,
        )?;
        Ok(())
    }

    /// A thread running inside the namespace of `what` (a host or `client`).
    pub fn runtime(&self, what: &str) -> Result<Arc<NetnsRuntime>> {
        let mut map = self.runtimes.lock().expect("runtimes");
        if let Some(rt) = map.get(what) {
            return Ok(rt.clone());
        }
        let rt = Arc::new(NetnsRuntime::start(&self.ns(what))?);
        map.insert(what.to_owned(), rt.clone());
        Ok(rt)
    }

    pub fn host_dirs(&self, host: &str) -> HostDirs {
        HostDirs::new(&self.run_dir, host)
    }

    pub fn tools(&self) -> &Tools {
        &self.tools
    }

    pub fn credentials(&self) -> Option<&Credentials> {
        self.creds.as_ref()
    }

    /// The producer's and the reader's TLS files (written by `create`).
    pub fn client_tls(&self) -> (TlsFiles, TlsFiles) {
        let dir = self.run_dir.join("client");
        let files = |id: &str| TlsFiles {
            certificate: dir.join(format!("{id}.pem")),
            private_key: dir.join(format!("{id}.key")),
            ca: dir.join("ca.pem"),
        };
        (files(&self.workload.producer), files(&self.workload.reader))
    }

    pub fn state(&self) -> State {
        self.state.lock().expect("state").clone()
    }

    // ------------------------------------------------------------ daemons

    pub(crate) fn spawn(&self, host: &str, kind: Kind, argv: Vec<String>) -> Result<DaemonRecord> {
        let dirs = self.host_dirs(host);
        files::mkdir(&dirs.logs)?;
        let d = processes::spawn(&self.ns(host), host, kind, &argv, &dirs.log(kind.name()))?;
        self.state.lock().expect("state").add_daemon(d.clone())?;
        Ok(d)
    }

    pub fn start_nats(&self, host: &str) -> Result<DaemonRecord> {
        // ExecStart of the appliance's nats.service, with our paths.
        let argv = self.spec.host(host).units.nats.argv.clone();
        self.spawn(host, Kind::Nats, argv)
    }

    pub fn start_agent(&self, host: &str) -> Result<DaemonRecord> {
        let h = self.spec.host(host);
        if !h.runs.gate_agent {
            bail!("{host} runs no gate agent");
        }
        // ExecStart of the appliance's bsfg-gate-agent.service.
        let unit = h.units.gate_agent.as_ref().context("no gate agent unit")?;
        self.spawn(host, Kind::GateAgent, unit.argv.clone())
    }

    pub fn start_keepalived(&self, host: &str) -> Result<DaemonRecord> {
        let dirs = self.host_dirs(host);
        if self.spec.host(host).keepalived.is_none() {
            bail!("{host} runs no keepalived");
        }
        let pid = |name: &str| dirs.keepalived_dir.join(name).display().to_string();
        // Stale pid files of a killed keepalived would make it refuse to start.
        for f in ["keepalived.pid", "vrrp.pid", "checkers.pid"] {
            let _ = std::fs::remove_file(dirs.keepalived_dir.join(f));
        }
        self.spawn(
            host,
            Kind::Keepalived,
            vec![
                self.tools.keepalived.display().to_string(),
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
            ],
        )
    }

    /// What a host runs, in boot order: nats-server, then the agent (it
    /// creates the FIFO and track file keepalived uses), then keepalived.
    pub fn start_host(&self, host: &str) -> Result<()> {
        let runs = self.spec.host(host).runs;
        self.start_nats(host)?;
        if runs.gate_agent {
            self.start_agent(host)?;
        }
        if runs.keepalived {
            self.start_keepalived(host)?;
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

    /// Names (`comm`) of every process in `host`'s namespace.
    pub fn process_names(&self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = netns::pids(&self.ns(host))
            .into_iter()
            .filter_map(|p| processes::comm(p as u32))
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
        let [a, b, g] = self.spec.host_names().map(str::to_owned);
        self.progress.say(format!(
            "starting nats-server (JetStream, R3 cluster) on {a}, {b}, {g}"
        ));
        for h in [&a, &b, &g] {
            self.start_nats(h)?;
        }
        self.wait_formed(&[&a, &b, &g], timeout).await?;
        self.progress.say(format!("JetStream cluster formed: 3 voters, meta leader elected; starting the gate agents on {a} and {b}"));
        self.start_agent(&a)?;
        self.start_agent(&b)?;
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
            (s.vrrp.state == "BACKUP" && s.role == "standby").then_some(())
        })
        .await?;
        self.progress
            .say(format!("{b} is BACKUP and standby: the zone is up"));
        Ok(())
    }

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
    /// agent's /run directory is a tmpfs on the appliance), daemons started
    /// in boot order. Persistent state (JetStream, artifacts) is kept.
    pub fn restore(&self, host: &str) -> Result<()> {
        let h = self.spec.host(host);
        if h.runs.gate_agent {
            let run = &h.paths.agent_runtime;
            let _ = std::fs::remove_dir_all(run);
            files::mkdir(run)?;
        }
        netns::set_port(&self.ns(netns::SWITCH), host, true)?;
        self.start_host(host)?;
        self.crashed.lock().expect("crashed").remove(host);
        Ok(())
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
        let dir = &self.spec.host(host).paths.artifacts;
        let aside = dir.with_extension("missing");
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(dir, &aside).with_context(|| format!("moving {} away", dir.display()))
    }

    pub fn restore_artifacts(&self, host: &str) -> Result<()> {
        let dir = &self.spec.host(host).paths.artifacts;
        let aside = dir.with_extension("missing");
        std::fs::rename(&aside, dir).with_context(|| format!("moving {} back", dir.display()))
    }

    /// Installs a controller certificate valid for `days` on `host`.
    pub fn install_certificate(&self, host: &str, days: i64) -> Result<()> {
        self.creds
            .as_ref()
            .context("no CA in this process (certificates are made by `up`)")?
            .install_server(&self.spec, host, days)
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
        let (code, body) = self
            .in_ns(host, move || http::get(addr, path, Duration::from_secs(2)))
            .await??;
        if code != 200 {
            bail!("{addr}{path} answered {code}: {}", body.trim());
        }
        serde_json::from_str(&body).with_context(|| format!("{addr}{path}: unexpected answer"))
    }

    /// The gate agent's `/metrics` text, asked from inside its host.
    pub async fn agent_metrics(&self, host: &str) -> Result<String> {
        let addr = self.agent_mgmt(host);
        self.in_ns(host, move || async move {
            match http::get(addr, "/metrics", Duration::from_secs(3)).await {
                Ok((200, body)) => Ok(body),
                Ok((code, body)) => Err(anyhow!("HTTP {code}: {}", body.trim())),
                Err(e) => Err(anyhow!("{e}")),
            }
        })
        .await?
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
        let addr = self.nats_monitor(host);
        let (code, body) = self
            .in_ns(host, move || {
                http::get(addr, jsz::PATH, Duration::from_secs(2))
            })
            .await??;
        if code != 200 {
            bail!("{addr}/jsz answered {code}");
        }
        let mut p = jsz::parse(&body).map_err(|e| anyhow!(e))?;
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

    // ------------------------------------------------------------ teardown

    /// Removes the instance (processes, namespaces, run directory).
    pub fn teardown(&mut self) -> Result<state::Removed> {
        self.runtimes.lock().expect("runtimes").clear();
        self.owned = false;
        state::teardown(&self.instance, &self.run_dir)
    }
}

/// Removes a half-built instance when `create` fails before the `Zone` exists.
struct TeardownGuard {
    instance: String,
    run_dir: PathBuf,
    armed: bool,
}

impl Drop for TeardownGuard {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = state::teardown(&self.instance, &self.run_dir)
        {
            eprintln!("zonesim: removing instance {}: {e:#}", self.instance);
        }
    }
}

impl Drop for Zone {
    fn drop(&mut self) {
        if self.owned
            && let Err(e) = self.teardown()
        {
            eprintln!("zonesim: removing instance {}: {e:#}", self.instance);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_security_follows_ownership_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("agent");
        std::fs::write(&f, "").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = rustix::process::geteuid().is_root();
        // /tmp is sticky and world-writable: allowed above the file, as keepalived does.
        assert_eq!(script_path_is_secure(&f), root);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!script_path_is_secure(&f));
    }
}
