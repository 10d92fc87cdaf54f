//! Running the real `bsfg-controller` binary in a test.

use crate::bins;
use crate::pki::{Identity, TestPki};
use crate::ports::free_ports;
use crate::process::Daemon;
use bsfg_core::config::*;
use bsfg_core::cursor::StartPosition;
use bsfg_mgmt::ControllerStatus;
use bsfg_mgmt::http;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a management request of a test may take.
const HTTP_DEADLINE: Duration = Duration::from_secs(5);

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// A complete test configuration for zone `zone`, host `node`, on loopback:
/// classes `operational` (append: `mes-producer`) and `audit` (append: `*`),
/// consumers `erp-orders` (`store:operational/order`, `erp-reader`) and
/// `all-ops` (`store:operational`, `erp-reader`), bucket `drawings`
/// (write `mes-producer`, read `erp-reader`), 1 replica per node given.
pub fn test_config(
    zone: &str,
    node: &str,
    nats_url: &str,
    replicas: usize,
    tls: &Identity,
    dir: &Path,
) -> ControllerConfig {
    let ports = free_ports(2);
    let mut classes = BTreeMap::new();
    classes.insert(
        "operational".to_string(),
        StreamClass {
            max_age: Duration::from_secs(3600),
            max_bytes: bytesize(64 << 20),
            append: set(&["mes-producer"]),
        },
    );
    classes.insert(
        "audit".to_string(),
        StreamClass {
            max_age: Duration::from_secs(3600),
            max_bytes: bytesize(64 << 20),
            append: set(&["*"]),
        },
    );
    let mut consumers = BTreeMap::new();
    consumers.insert(
        "erp-orders".to_string(),
        Consumer {
            source: "store:operational/order".into(),
            start: StartPosition::Earliest,
            allowed: set(&["erp-reader"]),
        },
    );
    consumers.insert(
        "all-ops".to_string(),
        Consumer {
            source: "store:operational".into(),
            start: StartPosition::Earliest,
            allowed: set(&["erp-reader"]),
        },
    );
    let mut buckets = BTreeMap::new();
    buckets.insert(
        "drawings".to_string(),
        Bucket {
            read: set(&["erp-reader"]),
            write: set(&["mes-producer"]),
        },
    );
    ControllerConfig {
        zone: zone.into(),
        node: node.into(),
        listen: Listen {
            address: SocketAddr::from(([127, 0, 0, 1], ports[0])),
            allow_wildcard: false,
        },
        management: Management {
            address: SocketAddr::from(([127, 0, 0, 1], ports[1])),
        },
        tls: tls.tls_files(),
        nats: NatsConnection {
            url: nats_url.into(),
            ..Default::default()
        },
        store: Store {
            replicas,
            artifact_dir: dir.join(format!("artifacts-{node}")),
            fill_poll_interval: Duration::from_millis(200),
            forward_max_age: Duration::from_secs(3600),
            forward_max_bytes: bytesize(64 << 20),
            leaders_on: None,
            group_commit: Default::default(),
        },
        limits: bsfg_core::Limits::default(),
        classes,
        consumers,
        buckets,
        peers: BTreeMap::new(),
        lease: Lease::default(),
        replication: Replication::default(),
        logging: Logging {
            format: LogFormat::Text,
            filter: "info,bsfg_controller=debug".into(),
        },
        drain_timeout: Duration::from_secs(5),
    }
}

fn bytesize(n: u64) -> bytesize::ByteSize {
    bytesize::ByteSize::b(n)
}

/// A server certificate for a controller on loopback, with `127.0.0.1` in its SANs.
pub fn loopback_server_identity(pki: &TestPki, name: &str) -> Identity {
    pki.server(name, &["127.0.0.1".parse().expect("ip")])
}

/// A running controller process.
pub struct RunningController {
    pub config: ControllerConfig,
    pub config_path: PathBuf,
    daemon: Daemon,
}

impl RunningController {
    /// Writes the configuration next to `dir` and starts the binary; does not wait.
    pub fn spawn(config: ControllerConfig, dir: &Path) -> RunningController {
        std::fs::create_dir_all(dir).expect("controller dir");
        let config_path = dir.join(format!(
            "controller-{}-{}.toml",
            config.node,
            config.listen.address.port()
        ));
        std::fs::write(
            &config_path,
            toml::to_string(&config).expect("serialise config"),
        )
        .expect("write config");
        let mut cmd = Command::new(bins::workspace_binary("bsfg-controller"));
        cmd.arg("--config")
            .arg(&config_path)
            .env_remove("NOTIFY_SOCKET");
        let log = config_path.with_extension("log");
        let daemon = Daemon::spawn(&format!("controller-{}", config.node), cmd, &log)
            .expect("spawn bsfg-controller");
        RunningController {
            config,
            config_path,
            daemon,
        }
    }

    /// Starts the controller and waits until `/readyz` answers 200.
    pub async fn start(config: ControllerConfig, dir: &Path) -> RunningController {
        let mut c = Self::spawn(config, dir);
        c.wait_ready(Duration::from_secs(30)).await;
        c
    }

    pub async fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_ready().await {
                return;
            }
            if let Some(code) = self.daemon.exit_code() {
                panic!(
                    "bsfg-controller exited with {code} before becoming ready:\n{}",
                    self.daemon.log_tail(40)
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "bsfg-controller not ready after {timeout:?}:\n{}",
                    self.daemon.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit; returns its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.daemon.is_running() {
                return self.daemon.exit_code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// `https://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.config.listen.address)
    }

    pub fn mgmt_addr(&self) -> String {
        self.config.management.address.to_string()
    }

    /// `GET /status`; `None` if it does not answer with the document.
    pub async fn status(&self) -> Option<ControllerStatus> {
        http::get_json(&self.mgmt_addr(), "/status", HTTP_DEADLINE)
            .await
            .ok()
    }

    /// `GET /metrics` (OpenMetrics text); `None` if it does not answer.
    pub async fn metrics(&self) -> Option<String> {
        http::get(&self.mgmt_addr(), "/metrics", HTTP_DEADLINE)
            .await
            .ok()
            .map(|r| r.body)
    }

    /// `GET /readyz` answers 200.
    pub async fn is_ready(&self) -> bool {
        http::get(&self.mgmt_addr(), "/readyz", HTTP_DEADLINE)
            .await
            .is_ok_and(|r| r.status == 200)
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.daemon.log_tail(lines)
    }

    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// SIGTERM and wait; returns the exit code.
    pub async fn stop(&mut self) -> Option<i32> {
        self.daemon.stop(Duration::from_secs(15)).await
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        self.daemon.kill();
    }
}
