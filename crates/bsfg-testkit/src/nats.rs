//! A real JetStream cluster of `nats-server` processes on loopback.

use crate::bins;
use crate::ports::free_ports;
use crate::process::Daemon;
use bsfg_mgmt::http;
use bsfg_mgmt::nats::{self, Jsz};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a monitoring request may take.
const HTTP_DEADLINE: Duration = Duration::from_secs(5);

/// How to build the cluster.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    pub nodes: usize,
    /// `sync_interval: always` (the `critical` durability tier).
    pub sync_always: bool,
    /// Extra configuration appended to every node's file.
    pub extra_config: String,
    /// The accounts of a zone with `nats.systemUser` (modules/lib/zone.nix,
    /// `natsAccounts`): `$SYS` with this user (its bcrypt hash), `$G` with
    /// the password-less `no_auth_user`, so clients without credentials
    /// connect as before.
    pub system_user: Option<SystemUser>,
    /// The JetStream store of node `i` (for example a `bsfg-powercut`
    /// volume per node); empty: a directory of the cluster's temp dir.
    pub store_dirs: Vec<PathBuf>,
}

impl Default for NatsOptions {
    fn default() -> Self {
        NatsOptions {
            nodes: 3,
            sync_always: false,
            extra_config: String::new(),
            system_user: None,
            store_dirs: Vec::new(),
        }
    }
}

/// A user of the NATS system account, made for one test or simulated zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUser {
    pub user: String,
    /// 32 random bytes, hex.
    pub password: String,
    /// bcrypt of `password`: what nats-server's configuration holds.
    pub password_hash: String,
}

impl SystemUser {
    /// The user name the zone library gives the controller's system user.
    pub const DEFAULT_USER: &'static str = "bsfg-system";
    /// The user of `$G` that clients without credentials become.
    pub const APP_USER: &'static str = "bsfg";

    /// A fresh random password and its bcrypt hash (cost 11, as
    /// nats-server's documentation recommends at least).
    pub fn generate() -> SystemUser {
        let mut bytes = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .expect("reading /dev/urandom");
        let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let password_hash = bcrypt::hash(&password, 11).expect("bcrypt");
        SystemUser {
            user: Self::DEFAULT_USER.into(),
            password,
            password_hash,
        }
    }

    /// nats-server configuration (its own syntax) for the accounts: what the
    /// zone library renders as JSON for a zone with `nats.systemUser`.
    pub fn accounts_config(&self) -> String {
        format!(
            "accounts {{\n  \"$SYS\" {{ users = [ {{ user: \"{}\", password: \"{}\" }} ] }}\n}}\n\
             system_account: \"$SYS\"\n\
             authorization {{ users = [ {{ user: \"{app}\" }} ] }}\n\
             no_auth_user: \"{app}\"\n",
            self.user,
            self.password_hash,
            app = Self::APP_USER,
        )
    }

    /// Writes the password (one line) to `path`, mode 0600, as the file
    /// `nats.system_user_password_file` names.
    pub fn write_password(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, format!("{}\n", self.password))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    }
}

struct Node {
    name: String,
    client_port: u16,
    monitor_port: u16,
    config: PathBuf,
    log: PathBuf,
    daemon: Option<Daemon>,
}

/// A running cluster; every process is killed and every file removed on drop.
pub struct NatsCluster {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// A 3-node JetStream cluster with file storage, ready (meta leader elected).
    pub async fn start3() -> NatsCluster {
        Self::start(NatsOptions::default()).await
    }

    /// One JetStream server (no clustering).
    pub async fn start1() -> NatsCluster {
        Self::start(NatsOptions {
            nodes: 1,
            ..Default::default()
        })
        .await
    }

    pub async fn start(opts: NatsOptions) -> NatsCluster {
        // Ports can be taken between choosing and binding; retry with fresh ones.
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::try_start(&opts).await {
                Ok(c) => return c,
                Err(e) => last_err = e,
            }
        }
        panic!(
            "could not start a {}-node nats-server cluster: {last_err}",
            opts.nodes
        );
    }

    async fn try_start(opts: &NatsOptions) -> Result<NatsCluster, String> {
        let bin = bins::nats_server();
        let dir = tempfile::Builder::new()
            .prefix("bsfg-nats-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let ports = free_ports(opts.nodes * 3);
        let cluster_ports: Vec<u16> = (0..opts.nodes).map(|i| ports[i * 3 + 1]).collect();
        let mut nodes = Vec::new();
        for i in 0..opts.nodes {
            let name = format!("n{i}");
            let (client_port, cluster_port, monitor_port) =
                (ports[i * 3], ports[i * 3 + 1], ports[i * 3 + 2]);
            let store = opts
                .store_dirs
                .get(i)
                .cloned()
                .unwrap_or_else(|| dir.path().join(&name));
            let mut conf = format!(
                "server_name: {name}\nlisten: \"127.0.0.1:{client_port}\"\nhttp: \"127.0.0.1:{monitor_port}\"\n\
                 jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 256MB\n  max_file_store: 4GB\n{}}}\n",
                store.display(),
                if opts.sync_always {
                    "  sync_interval: always\n"
                } else {
                    ""
                }
            );
            if opts.nodes > 1 {
                let routes: Vec<String> = cluster_ports
                    .iter()
                    .filter(|p| **p != cluster_port)
                    .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                    .collect();
                conf.push_str(&format!(
                    "cluster {{\n  name: bsfgtest\n  listen: \"127.0.0.1:{cluster_port}\"\n  routes: [{}]\n}}\n",
                    routes.join(", ")
                ));
            }
            if let Some(u) = &opts.system_user {
                conf.push_str(&u.accounts_config());
            }
            conf.push_str(&opts.extra_config);
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(&config, conf).map_err(|e| e.to_string())?;
            let log = dir.path().join(format!("{name}.log"));
            nodes.push(Node {
                name,
                client_port,
                monitor_port,
                config,
                log,
                daemon: None,
            });
        }
        let mut cluster = NatsCluster { dir, nodes };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i, &bin)?;
        }
        cluster.wait_ready_for(Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    fn spawn(&mut self, i: usize, bin: &PathBuf) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let mut cmd = Command::new(bin);
        cmd.arg("-c").arg(&node.config);
        node.daemon = Some(
            Daemon::spawn(&format!("nats-{}", node.name), cmd, &node.log)
                .map_err(|e| e.to_string())?,
        );
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `nats://127.0.0.1:<port>` of node `i`.
    pub fn client_url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// `127.0.0.1:<port>` of node `i`'s monitoring endpoint.
    pub fn monitor_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].monitor_port)
    }

    /// The server name of node `i` (`n0`, `n1`, ...).
    pub fn node_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].daemon.as_ref().and_then(Daemon::pid)
    }

    /// SIGKILL node `i` (a crash: no clean shutdown).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut d) = self.nodes[i].daemon.take() {
            d.kill();
        }
    }

    /// SIGSTOP / SIGCONT node `i`.
    pub fn freeze(&self, i: usize) {
        if let Some(d) = &self.nodes[i].daemon {
            d.freeze();
        }
    }

    pub fn thaw(&self, i: usize) {
        if let Some(d) = &self.nodes[i].daemon {
            d.thaw();
        }
    }

    /// Starts node `i` again with its old data and waits until the cluster is ready.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        let bin = bins::nats_server();
        self.spawn(i, &bin).expect("respawn nats-server");
        if let Err(e) = self.wait_ready_for(Duration::from_secs(30)).await {
            panic!("node {i} did not rejoin: {e}\n{}", self.log_tail(i, 30));
        }
    }

    /// Starts every node again with its old data (all at once: a 3-node
    /// cluster that lost every node needs two back to elect a meta leader)
    /// and waits until the cluster is ready.
    pub async fn restart_all(&mut self) {
        let bin = bins::nats_server();
        for i in 0..self.nodes.len() {
            self.kill(i);
            self.spawn(i, &bin).expect("respawn nats-server");
        }
        if let Err(e) = self.wait_ready_for(Duration::from_secs(60)).await {
            panic!(
                "the cluster did not form again: {e}\n{}",
                self.log_tail(0, 30)
            );
        }
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i]
            .daemon
            .as_mut()
            .is_some_and(Daemon::is_running)
    }

    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        self.nodes[i]
            .daemon
            .as_ref()
            .map(|d| d.log_tail(lines))
            .unwrap_or_default()
    }

    /// The meta leader as seen by node `i`, if known.
    pub async fn meta_leader(&self, i: usize) -> Option<String> {
        let jsz: Jsz = http::get_json(&self.monitor_addr(i), "/jsz", HTTP_DEADLINE)
            .await
            .ok()?;
        jsz.meta_leader().map(str::to_owned)
    }

    /// The leader of `stream` as seen by node `i`, if known.
    pub async fn stream_leader(&self, i: usize, stream: &str) -> Option<String> {
        let jsz: Jsz = http::get_json(&self.monitor_addr(i), nats::JSZ, HTTP_DEADLINE)
            .await
            .ok()?;
        jsz.streams()
            .into_iter()
            .find(|s| s.name == stream)?
            .leader()
            .map(str::to_owned)
    }

    /// Waits until every running node answers healthy and agrees on a meta leader.
    pub async fn wait_ready(&mut self) {
        if let Err(e) = self.wait_ready_for(Duration::from_secs(30)).await {
            panic!("nats cluster not ready: {e}");
        }
    }

    /// Why the meta group is not yet whole, if it is not: a leader that
    /// knows every configured server as a voter and hears every running one
    /// as current. A known leader alone is not enough: a fresh cluster elects
    /// one before every peer has joined the group, and losing that leader
    /// then can leave the others without a quorum.
    async fn meta_group_incomplete(&self) -> Option<String> {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].daemon.is_some())
            .collect();
        let &first = running.first()?;
        let Some(leader) = self.meta_leader(first).await else {
            return Some("no meta leader".into());
        };
        let Some(li) = self.index_of(&leader).filter(|i| running.contains(i)) else {
            return Some(format!("meta leader {leader} is not running"));
        };
        let jsz: Jsz = match http::get_json(&self.monitor_addr(li), "/jsz", HTTP_DEADLINE).await {
            Ok(j) => j,
            Err(e) => return Some(format!("{leader} /jsz: {e}")),
        };
        let meta = jsz.meta_cluster.unwrap_or_default();
        let current = meta.current_voters(&leader);
        let missing: Vec<&str> = running
            .iter()
            .map(|&i| self.nodes[i].name.as_str())
            .filter(|n| !current.iter().any(|c| c == n))
            .collect();
        if meta.cluster_size < self.nodes.len() || !missing.is_empty() {
            return Some(format!(
                "meta group on {leader}: {} voters of {}, not current: {missing:?}",
                meta.cluster_size,
                self.nodes.len()
            ));
        }
        None
    }

    async fn wait_ready_for(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let clustered = self.nodes.len() > 1;
        loop {
            let mut problem = None;
            for i in 0..self.nodes.len() {
                if self.nodes[i].daemon.is_none() {
                    continue;
                }
                if !self.is_running(i) {
                    return Err(format!(
                        "{} exited:\n{}",
                        self.nodes[i].name,
                        self.log_tail(i, 20)
                    ));
                }
                let addr = self.monitor_addr(i);
                match http::get(&addr, nats::HEALTHZ_JETSTREAM, HTTP_DEADLINE).await {
                    Ok(r) if r.status == 200 => {}
                    other => problem = Some(format!("{} health: {other:?}", self.nodes[i].name)),
                }
                if clustered && self.meta_leader(i).await.is_none() {
                    problem = Some(format!("{} sees no meta leader", self.nodes[i].name));
                }
            }
            if clustered && problem.is_none() {
                problem = self.meta_group_incomplete().await;
            }
            match problem {
                None => return Ok(()),
                Some(p) if Instant::now() > deadline => return Err(p),
                Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}
