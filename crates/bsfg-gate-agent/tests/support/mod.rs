//! What the gate agent's integration tests share: a zone of network
//! namespaces on a bridge, each host with its own real nats-server (one
//! 3-node JetStream cluster), gate agents and controllers launched inside
//! the hosts, tmpfs mounts, and HTTP from inside a namespace.
//!
//! Everything is unique to the test (namespace, bridge and veth names come
//! from `bsfg_testkit::unique_name`; files live in a temporary directory) and
//! removed on drop, failure included. No address is configured in the root
//! namespace: the zone's 10.77.0.0/24 exists only on the test's own bridge.

use bsfg_mgmt::AgentStatus;
use bsfg_testkit::bins;
use bsfg_testkit::netns::{Link, Netns, attach, bridge};
use bsfg_testkit::pki::{Identity, TestPki, Usage};
use bsfg_testkit::process::Daemon;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const VIP: &str = "10.77.0.100";
pub const PREFIX: &str = "24";
pub const CONTROLLER_PORT: u16 = 9443;
pub const CONTROLLER_MGMT: &str = "127.0.0.1:9464";
pub const AGENT_MGMT: &str = "127.0.0.1:9465";

/// Polls `f` every 100 ms until it returns `Some`, or panics after `timeout`
/// with `what` and the output of `diagnose`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Option<T>,
    diagnose: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                diagnose()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `f` on a thread that has entered network namespace `ns` (network
/// namespaces are per thread, so the rest of the test is unaffected).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the test namespace");
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// `GET http://<addr><path>` from inside namespace `ns`.
pub fn get_in(ns: &str, addr: &str, path: &str) -> Result<(u16, String), String> {
    let (addr, path) = (addr.to_owned(), path.to_owned());
    in_netns(ns, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(bsfg_mgmt::http::get(&addr, &path, Duration::from_secs(2)))
            .map(|r| (r.status, r.body))
            .map_err(|e| e.to_string())
    })
}

/// `POST http://<addr><path>` with `body` from inside namespace `ns`.
pub fn post_in(ns: &str, addr: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let (addr, path, body) = (addr.to_owned(), path.to_owned(), body.to_owned());
    in_netns(ns, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(bsfg_mgmt::http::post(
                &addr,
                &path,
                body,
                Duration::from_secs(2),
            ))
            .map(|r| (r.status, r.body))
            .map_err(|e| e.to_string())
    })
}

/// A tmpfs mounted on a fresh directory; unmounted (lazily) on drop.
pub struct Tmpfs {
    path: PathBuf,
    mounted: bool,
}

impl Tmpfs {
    /// Creates `path` (not mounted yet).
    pub fn at(path: &Path) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        Tmpfs {
            path: path.to_owned(),
            mounted: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mount(&mut self) {
        bsfg_testkit::require_root("mounting a tmpfs for the artifact gate");
        rustix::mount::mount(
            "bsfg-test-artifacts",
            &self.path,
            "tmpfs",
            rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
            c"size=8m,mode=0755",
        )
        .unwrap_or_else(|e| panic!("mount tmpfs on {}: {e}", self.path.display()));
        self.mounted = true;
    }

    pub fn remount_read_only(&self) {
        rustix::mount::mount_remount(
            &self.path,
            rustix::mount::MountFlags::RDONLY
                | rustix::mount::MountFlags::NOSUID
                | rustix::mount::MountFlags::NODEV,
            "size=8m",
        )
        .expect("remount read-only");
    }

    pub fn unmount(&mut self) {
        if self.mounted {
            rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::DETACH)
                .unwrap_or_else(|e| panic!("unmount {}: {e}", self.path.display()));
            self.mounted = false;
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// One host of the test zone: a namespace with `eth0` on the zone bridge
/// and its own nats-server.
pub struct Host {
    pub name: String,
    pub ns: Netns,
    pub address: Ipv4Addr,
    pub dir: PathBuf,
    _veth: Link,
    nats: Option<Daemon>,
}

impl Host {
    pub fn ns_name(&self) -> &str {
        self.ns.name()
    }

    /// Is the VIP on one of this host's interfaces (per `ip`, independently of the agent)?
    pub fn has_vip(&self) -> bool {
        let out = self.ns.run("ip", &["-o", "addr", "show", "dev", "eth0"]);
        out.contains(&format!(" {VIP}/"))
    }

    pub fn add_vip(&self) {
        self.ns
            .ip(&["addr", "add", &format!("{VIP}/{PREFIX}"), "dev", "eth0"]);
    }

    pub fn del_vip(&self) {
        self.ns
            .ip(&["addr", "del", &format!("{VIP}/{PREFIX}"), "dev", "eth0"]);
    }

    pub fn nats_log(&self) -> String {
        self.nats
            .as_ref()
            .map(|d| d.log_tail(20))
            .unwrap_or_default()
    }
}

/// The zone directory bind-mounted onto itself and made a shared mount.
///
/// `ip netns exec` gives each process it starts a new mount namespace whose
/// mounts are slaves of ours; mounts made later (a tmpfs appearing under a
/// running agent, or going away) only reach it through a shared mount.
struct SharedMount {
    path: PathBuf,
}

impl SharedMount {
    fn new(path: &Path) -> SharedMount {
        rustix::mount::mount_bind(path, path)
            .unwrap_or_else(|e| panic!("bind mount {}: {e}", path.display()));
        let guard = SharedMount {
            path: path.to_owned(),
        };
        rustix::mount::mount_change(path, rustix::mount::MountPropagationFlags::SHARED)
            .unwrap_or_else(|e| panic!("make {} shared: {e}", path.display()));
        guard
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Alpha, beta and gamma on one bridge, with a 3-node JetStream cluster.
/// (Fields drop in order: processes first, the directory last.)
pub struct Zone {
    pub hosts: Vec<Host>,
    pub pki: TestPki,
    _bridge: Link,
    _shared: SharedMount,
    _dir: tempfile::TempDir,
}

const NAMES: [&str; 3] = ["alpha", "beta", "gamma"];

impl Zone {
    pub fn start() -> Zone {
        bsfg_testkit::require_root("network namespaces for the test zone");
        let dir = tempfile::Builder::new()
            .prefix("bsfg-agent-zone-")
            .tempdir()
            .expect("tempdir");
        let shared = SharedMount::new(dir.path());
        let br = bridge("gzb");
        let mut hosts = Vec::new();
        for (i, name) in NAMES.iter().enumerate() {
            let ns = Netns::new("gz");
            let address = Ipv4Addr::new(10, 77, 0, 11 + i as u8);
            let veth = attach(&ns, &br, "eth0", &format!("{address}/{PREFIX}"));
            let host_dir = dir.path().join(name);
            std::fs::create_dir_all(&host_dir).expect("host dir");
            hosts.push(Host {
                name: name.to_string(),
                ns,
                address,
                dir: host_dir,
                _veth: veth,
                nats: None,
            });
        }
        let pki = TestPki::new("zone");
        let mut zone = Zone {
            hosts,
            pki,
            _bridge: br,
            _shared: shared,
            _dir: dir,
        };
        for i in 0..3 {
            zone.start_nats(i);
        }
        zone.wait_nats_ready();
        zone
    }

    pub fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|h| h.name == name).expect("host")
    }

    fn start_nats(&mut self, i: usize) {
        let routes: Vec<String> = self
            .hosts
            .iter()
            .map(|h| format!("\"nats-route://{}:6222\"", h.address))
            .collect();
        let h = &mut self.hosts[i];
        let conf = format!(
            "server_name: {name}\nlisten: \"0.0.0.0:4222\"\nhttp: \"127.0.0.1:8222\"\n\
             jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}}\n\
             cluster {{\n  name: agentzone\n  listen: \"0.0.0.0:6222\"\n  routes: [{routes}]\n}}\n",
            name = h.name,
            store = h.dir.join("jetstream").display(),
            routes = routes.join(", "),
        );
        let path = h.dir.join("nats.conf");
        std::fs::write(&path, conf).expect("nats conf");
        let mut cmd = h.ns.command(bins::nats_server());
        cmd.arg("-c").arg(&path);
        h.nats = Some(
            Daemon::spawn(&format!("nats-{}", h.name), cmd, &h.dir.join("nats.log"))
                .expect("spawn nats-server"),
        );
    }

    /// Every server healthy and agreeing on a meta leader.
    pub fn wait_nats_ready(&self) {
        wait_for(
            "the zone's JetStream cluster",
            Duration::from_secs(60),
            || {
                self.hosts
                    .iter()
                    .all(|h| {
                        let healthy = matches!(
                            get_in(
                                h.ns_name(),
                                "127.0.0.1:8222",
                                "/healthz?js-enabled-only=true"
                            ),
                            Ok((200, _))
                        );
                        let leader = get_in(h.ns_name(), "127.0.0.1:8222", "/jsz")
                            .ok()
                            .and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(&b).ok())
                            .and_then(|v| v["meta_cluster"]["leader"].as_str().map(str::to_owned))
                            .is_some_and(|l| !l.is_empty());
                        healthy && leader
                    })
                    .then_some(())
            },
            || {
                self.hosts
                    .iter()
                    .map(|h| format!("--- {}\n{}", h.name, h.nats_log()))
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        );
    }

    /// The controller's certificate for `host`, valid `days` from now.
    pub fn controller_identity(&self, host: &str, days: i64) -> Identity {
        let vip: IpAddr = VIP.parse().expect("vip");
        let now = time::OffsetDateTime::now_utc();
        self.pki.issue_window(
            &format!("{host}-controller"),
            Usage::ServerAndClient,
            &[vip],
            now - time::Duration::days(1),
            now + time::Duration::days(days),
        )
    }
}

/// How a test wants one host's agent set up.
pub struct AgentSetup {
    pub certificate_days: i64,
    pub policy: &'static str,
    pub hold_down: &'static str,
    pub ready_timeout: &'static str,
    /// A real keepalived manages the VIP (gate 1 then requires it to run);
    /// otherwise the test adds and removes the VIP by hand.
    pub keepalived_manages_vip: bool,
    /// Leave the (agent-checked) NATS system password file uninstalled,
    /// as on a host deployed before its secrets.
    pub withhold_password: bool,
}

impl Default for AgentSetup {
    fn default() -> Self {
        AgentSetup {
            certificate_days: 365,
            policy: "deny",
            hold_down: "2s",
            ready_timeout: "30s",
            keepalived_manages_vip: false,
            withhold_password: false,
        }
    }
}

impl Drop for Agent {
    /// SIGTERM: the agent stops its controller. If the agent is already gone
    /// (killed by the test), the controller it left is killed here.
    fn drop(&mut self) {
        let _ = self.stop();
        let leftover = std::fs::read_to_string(self.controller_pid_file())
            .ok()
            .and_then(|t| bsfg_gate_agent::supervisor::process::parse_pid_file(&t));
        if let Some((pid, start)) = leftover
            && bsfg_gate_agent::supervisor::process::start_time(pid) == Some(start)
            && let Some(pid) = rustix::process::Pid::from_raw(pid as i32)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// A gate agent (process supervisor) and the controller it runs, on one host.
pub struct Agent {
    pub host: String,
    pub ns: String,
    pub config_path: PathBuf,
    pub track_file: PathBuf,
    pub fifo: PathBuf,
    pub artifacts: Tmpfs,
    pub controller_log: PathBuf,
    /// A controller credential the agent checks (`controller.credentials`).
    pub password_file: PathBuf,
    daemon: Option<Daemon>,
    stopped_log: Option<String>,
}

impl Agent {
    /// Writes the controller's and the agent's configuration for `host`; the
    /// artifact directory is created but not mounted.
    pub fn prepare(zone: &Zone, host: &str, setup: &AgentSetup) -> Agent {
        let h = zone.host(host);
        let identity = zone.controller_identity(host, setup.certificate_days);
        let artifacts = Tmpfs::at(&h.dir.join("artifacts"));
        let run = h.dir.join("run");
        std::fs::create_dir_all(&run).expect("run dir");

        let mut controller = bsfg_testkit::controller::test_config(
            "agentzone",
            host,
            "nats://127.0.0.1:4222",
            3,
            &identity,
            &h.dir,
        );
        controller.listen.address = format!("{VIP}:{CONTROLLER_PORT}").parse().expect("addr");
        controller.management.address = CONTROLLER_MGMT.parse().expect("addr");
        controller.store.artifact_dir = artifacts.path().to_owned();
        controller.lease.sighting_file = Some(run.join("lease-sighting.json"));
        controller.drain_timeout = Duration::from_secs(1);
        let controller_path = h.dir.join("controller.toml");
        std::fs::write(
            &controller_path,
            toml::to_string(&controller).expect("controller toml"),
        )
        .expect("write controller config");
        // The controller runs as the agent's child: its output goes to the
        // agent's log. A wrapper keeps it in its own file instead.
        let controller_log = h.dir.join("controller.log");
        let wrapper = h.dir.join("controller.sh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec {} --config {} >>{} 2>&1\n",
                bins::workspace_binary("bsfg-controller").display(),
                controller_path.display(),
                controller_log.display()
            ),
        )
        .expect("wrapper");
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");

        let track_file = run.join("vrrp-track");
        let fifo = run.join("notify.fifo");
        let password_file = h.dir.join("nats-system-password");
        if !setup.withhold_password {
            std::fs::write(&password_file, "not-a-real-password\n").expect("password file");
        }
        let agent = format!(
            r#"zone = "agentzone"
host = "{host}"
evaluate_interval = "200ms"

[vip]
address = "{VIP}"

[nats]
url = "nats://127.0.0.1:4222"
monitor_url = "http://127.0.0.1:8222"
voters = 3

[artifacts]
dir = "{artifacts}"
require_mount_point = true

[certificate]
path = "{cert}"
min_validity = "30d"
policy = "{policy}"

[controller]
supervisor = "process"
command = ["{wrapper}"]
management = "{CONTROLLER_MGMT}"
ready_timeout = "{ready_timeout}"
stop_timeout = "10s"

[controller.credentials]
tls_certificate = "{cert}"
tls_private_key = "{key}"
tls_ca = "{ca}"
nats_system_password = "{password}"

[lease]
bucket = "bsfg_lease"
ttl = "1s"
sighting_file = "{sighting}"

[keepalived]
notify_fifo = "{fifo}"
track_file = "{track}"
require_running = {keepalived}

[promotion]
hold_down = "{hold_down}"
stall_grace = "5s"

[management]
address = "{AGENT_MGMT}"

[logging]
format = "text"
filter = "info,bsfg_gate_agent=debug"
"#,
            artifacts = artifacts.path().display(),
            cert = identity.certificate.display(),
            key = identity.private_key.display(),
            ca = identity.ca.display(),
            password = password_file.display(),
            policy = setup.policy,
            wrapper = wrapper.display(),
            ready_timeout = setup.ready_timeout,
            hold_down = setup.hold_down,
            keepalived = setup.keepalived_manages_vip,
            sighting = run.join("lease-sighting.json").display(),
            fifo = fifo.display(),
            track = track_file.display(),
        );
        let config_path = h.dir.join("gate-agent.toml");
        std::fs::write(&config_path, agent).expect("agent config");
        Agent {
            host: host.to_owned(),
            ns: h.ns_name().to_owned(),
            config_path,
            track_file,
            fifo,
            artifacts,
            controller_log,
            password_file,
            daemon: None,
            stopped_log: None,
        }
    }

    /// Starts `bsfg-gate-agent run` inside the host and waits for its first status.
    pub fn start(&mut self, zone: &Zone) {
        let h = zone.host(&self.host);
        let mut cmd = h.ns.command(bins::workspace_binary("bsfg-gate-agent"));
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config_path)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("BSFG_BIN_DIR");
        self.daemon = Some(
            Daemon::spawn(
                &format!("agent-{}", self.host),
                cmd,
                &h.dir.join("gate-agent.log"),
            )
            .expect("spawn bsfg-gate-agent"),
        );
        wait_for(
            "the agent's first status",
            Duration::from_secs(30),
            || self.status(),
            || self.logs(),
        );
    }

    /// SIGKILL the agent alone, as a crash would: its controller, if any,
    /// lives on without it.
    pub fn kill(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
            self.stopped_log = Some(d.log_tail(40));
        }
    }

    /// The controller process the agent (or its dead predecessor) recorded, if it still runs.
    pub fn controller_pid(&self) -> Option<u32> {
        let (pid, start) = std::fs::read_to_string(self.controller_pid_file())
            .ok()
            .and_then(|t| bsfg_gate_agent::supervisor::process::parse_pid_file(&t))?;
        (bsfg_gate_agent::supervisor::process::start_time(pid) == Some(start)).then_some(pid)
    }

    /// SIGTERM and wait (once: a stopped agent is forgotten).
    pub fn stop(&mut self) -> Option<i32> {
        let mut d = self.daemon.take()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let code = rt.block_on(d.stop(Duration::from_secs(20)));
        self.stopped_log = Some(d.log_tail(40));
        code
    }

    /// The agent's `/status`, through `bsfg-gate-agent status --json` run inside the host.
    pub fn status(&self) -> Option<AgentStatus> {
        let out = Command::new(bins::system_program("ip", "iproute2"))
            .args(["netns", "exec", &self.ns])
            .arg(bins::workspace_binary("bsfg-gate-agent"))
            .args(["status", "--json", "--config"])
            .arg(&self.config_path)
            .env_remove("BSFG_BIN_DIR")
            .output()
            .expect("run status");
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// `bsfg-gate-agent notify <args>` run inside the host, as a keepalived
    /// notify script would.
    pub fn notify(&self, args: &[&str]) -> std::process::Output {
        Command::new(bins::system_program("ip", "iproute2"))
            .args(["netns", "exec", &self.ns])
            .arg(bins::workspace_binary("bsfg-gate-agent"))
            .args(["notify", "--config"])
            .arg(&self.config_path)
            .args(args)
            .env_remove("BSFG_BIN_DIR")
            .output()
            .expect("run notify")
    }

    /// The human table (`bsfg-gate-agent status`).
    pub fn status_table(&self) -> String {
        let out = Command::new(bins::system_program("ip", "iproute2"))
            .args(["netns", "exec", &self.ns])
            .arg(bins::workspace_binary("bsfg-gate-agent"))
            .args(["status", "--config"])
            .arg(&self.config_path)
            .env_remove("BSFG_BIN_DIR")
            .output()
            .expect("run status");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Is this host's controller answering `/readyz` 200 right now?
    pub fn controller_ready(&self) -> bool {
        matches!(get_in(&self.ns, CONTROLLER_MGMT, "/readyz"), Ok((200, _)))
    }

    /// Is any controller process listening on this host's controller management port?
    pub fn controller_running(&self) -> bool {
        get_in(&self.ns, CONTROLLER_MGMT, "/healthz").is_ok()
    }

    pub fn track_value(&self) -> Option<String> {
        std::fs::read_to_string(&self.track_file)
            .ok()
            .map(|s| s.trim().to_owned())
    }

    /// The controller pid file the agent keeps (its default location).
    fn controller_pid_file(&self) -> PathBuf {
        self.track_file.with_file_name("controller.pid")
    }

    pub fn logs(&self) -> String {
        let agent = self
            .daemon
            .as_ref()
            .map(|d| d.log_tail(40))
            .or_else(|| self.stopped_log.clone())
            .unwrap_or_default();
        let controller = std::fs::read_to_string(&self.controller_log).unwrap_or_default();
        let controller: Vec<_> = controller.lines().collect();
        format!(
            "--- {} agent status\n{}\n--- {} agent log\n{agent}\n--- {} controller log\n{}",
            self.host,
            self.status_table(),
            self.host,
            self.host,
            controller[controller.len().saturating_sub(30)..].join("\n")
        )
    }
}
