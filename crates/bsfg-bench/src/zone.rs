//! A loopback benchmark zone: a 3-node R3 nats-server cluster in one
//! durability tier, a test PKI, and the release controller.

use bsfg_core::config::TlsFiles;
use bsfg_testkit::controller::{RunningController, loopback_server_identity, test_config};
use bsfg_testkit::nats::{NatsCluster, NatsOptions};
use bsfg_testkit::pki::TestPki;
use std::time::Duration;

/// The durability tiers of the contract (section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// nats-server's default sync_interval.
    Standard,
    /// sync_interval: always.
    Critical,
}

pub struct BenchZone {
    pub nats: NatsCluster,
    // Held for their lifetime: the certificate files and the controller's directory.
    _pki: TestPki,
    _dir: tempfile::TempDir,
    pub controller: RunningController,
    pub producer: TlsFiles,
}

impl BenchZone {
    pub async fn start(tier: Tier) -> anyhow::Result<BenchZone> {
        let nats = NatsCluster::start(NatsOptions {
            sync_always: tier == Tier::Critical,
            ..Default::default()
        })
        .await;
        let pki = TestPki::new("bench");
        let dir = tempfile::tempdir()?;
        let server = loopback_server_identity(&pki, "bench-bsfg");
        let mut config = test_config(
            "bench",
            "alpha",
            &nats.client_url(0),
            3,
            &server,
            dir.path(),
        );
        // Room for a whole cell; the stream is purged between cells.
        config
            .classes
            .get_mut("operational")
            .expect("test class")
            .max_bytes = bytesize::ByteSize::gib(3);
        config.logging.filter = "warn".into();
        config.lease.ttl = Duration::from_secs(1);
        let controller = RunningController::start(config, dir.path()).await;
        let producer = pki.client("mes-producer").tls_files();
        Ok(BenchZone {
            nats,
            _pki: pki,
            _dir: dir,
            controller,
            producer,
        })
    }

    pub fn pid(&self) -> u32 {
        self.controller.daemon().pid().expect("controller running")
    }
}
