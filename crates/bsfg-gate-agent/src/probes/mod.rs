//! Probes: the only I/O that feeds the gates. Each probe observes one part
//! of the host (netlink, the local NATS server, the artifact mount, the
//! certificate file, the controller's readiness, the lease) and returns
//! plain facts; [`crate::gates`] turns them into verdicts.
//!
//! Every probe has a deadline, and all run concurrently, so one stuck
//! subsystem delays an evaluation by at most `nats.request_timeout`.

pub mod artifacts;
pub mod certificate;
pub mod credentials;
pub mod keepalived;
pub mod lease;
pub mod nats;
pub mod time_sync;
pub mod vip;

use crate::config::AgentConfig;
use crate::gates::controller::ReadinessFacts;
use crate::gates::{self, GateReport};
use bsfg_core::lease::LeaseView;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What one evaluation observed.
#[derive(Debug, Clone)]
pub struct Observed {
    pub gates: GateReport,
    pub lease: Result<LeaseView, String>,
    /// `controller.credentials`, each present or what is wrong with it.
    pub credentials: Vec<gates::certificate::CredentialFacts>,
    /// What the local nats-server announced on the agent's connection.
    pub nats_server_version: Option<String>,
    /// The host's clock (none with `time_sync.policy = "off"`).
    pub time_sync: Option<gates::time_sync::TimeSync>,
}

#[derive(Debug)]
pub struct Probes {
    config: Arc<AgentConfig>,
    vip: vip::VipProbe,
    keepalived: keepalived::KeepalivedProbe,
    monitor: nats::NatsMonitor,
    lease: lease::LeaseProbe,
    /// A write probe of the artifact directory is still running (a hung disk):
    /// do not pile up blocked threads behind it.
    artifact_probe_busy: Arc<AtomicBool>,
    /// The last time-sync verdict and when chronyd was asked.
    time_sync: Option<(std::time::Instant, gates::time_sync::TimeSync)>,
}

impl Probes {
    /// Must be called inside the tokio runtime (starts the NATS connection).
    pub fn new(config: Arc<AgentConfig>) -> Probes {
        let monitor_addr = config
            .nats
            .monitor_addr()
            .expect("nats.monitor_url is checked when loading");
        let lease = lease::LeaseProbe::new(
            &config.host,
            config.nats.connection(),
            config.nats.voters,
            config.lease.bucket.clone(),
            config.lease.ttl,
            config.lease.sighting_file.clone(),
        );
        Probes {
            monitor: nats::NatsMonitor::new(monitor_addr, config.nats.request_timeout),
            vip: vip::VipProbe::default(),
            keepalived: keepalived::KeepalivedProbe::default(),
            lease,
            artifact_probe_busy: Arc::new(AtomicBool::new(false)),
            time_sync: None,
            config,
        }
    }

    /// Runs every probe and evaluates every gate. `controller_running`:
    /// whether to ask the controller for readiness.
    pub async fn observe(&mut self, controller_running: bool) -> Observed {
        let c = self.config.clone();
        let timeout = c.nats.request_timeout;
        let client = self.lease.client();
        let monitor = &self.monitor;
        let due = self.time_sync_due();
        let time_query = async {
            match &due {
                Some(t) => Some(
                    time_sync::query(
                        &t.chronyc,
                        t.socket.as_deref(),
                        timeout.max(Duration::from_secs(1)),
                    )
                    .await,
                ),
                None => None,
            }
        };
        let (addresses, jetstream, quorum, lease, readiness, artifacts, time_report) = tokio::join!(
            self.vip.addresses(),
            nats::jetstream_facts(monitor, client.as_ref(), timeout),
            monitor.quorum(),
            self.lease.observe(),
            readiness(controller_running, &c, timeout),
            artifact_facts(&c, self.artifact_probe_busy.clone(), timeout),
            time_query,
        );
        let time = self.time_sync(time_report);
        let chain = certificate::observe_chain(&c.certificate.path, &c.certificate.trust);
        let credentials = credentials::observe(&c.controller.credentials);
        let (lease_gate, lease_held_elsewhere) = gates::lease::evaluate(&c.host, &lease);
        let (artifacts, artifacts_unanswered) = artifacts;
        let gates = GateReport {
            vip: gates::vip::evaluate(
                c.vip.address,
                &addresses,
                &self.keepalived.observe(c.keepalived.require_running),
            ),
            jetstream: gates::jetstream::evaluate(&jetstream),
            quorum: gates::quorum::evaluate(c.nats.voters, &quorum),
            artifacts: gates::artifacts::evaluate(c.artifacts.require_mount_point, &artifacts),
            certificate: gates::time_sync::apply(
                c.time_sync.policy,
                time.as_ref(),
                gates::certificate::evaluate_with_credentials(
                    bsfg_core::clock::unix_seconds(),
                    c.certificate.min_validity,
                    c.certificate.policy,
                    &credentials,
                    &chain,
                ),
            ),
            controller_ready: gates::controller::evaluate(&readiness),
            lease: lease_gate,
            lease_held_elsewhere,
            artifacts_unanswered,
        };
        Observed {
            gates,
            lease,
            credentials,
            nats_server_version: client.map(|c| c.server_info().version),
            time_sync: time,
        }
    }

    /// `time_sync` when chronyd is to be asked now (at most every
    /// `time_sync.interval`), none when the last answer stands or the
    /// policy is `off`.
    fn time_sync_due(&self) -> Option<crate::config::TimeSync> {
        let c = &self.config.time_sync;
        let fresh = self
            .time_sync
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < c.interval);
        (c.policy != crate::config::TimeSyncPolicy::Off && !fresh).then(|| c.clone())
    }

    /// The clock's verdict: from chronyd's new `report`, or the last one.
    fn time_sync(
        &mut self,
        report: Option<Result<time_sync::Tracking, time_sync::TimeSyncError>>,
    ) -> Option<gates::time_sync::TimeSync> {
        let c = &self.config.time_sync;
        if c.policy == crate::config::TimeSyncPolicy::Off {
            return None;
        }
        let Some(report) = report else {
            return self.time_sync.as_ref().map(|(_, t)| t.clone());
        };
        let t = gates::time_sync::assess(c, &report, bsfg_core::clock::unix_ms());
        match &self.time_sync {
            Some((_, before)) if before.synchronised == t.synchronised => {}
            _ if t.synchronised => tracing::info!(reason = %t.reason, "time synchronised"),
            _ => {
                tracing::warn!(reason = %t.reason, policy = c.policy.name(), "time not synchronised")
            }
        }
        self.time_sync = Some((std::time::Instant::now(), t.clone()));
        Some(t)
    }
}

async fn readiness(running: bool, c: &AgentConfig, timeout: Duration) -> ReadinessFacts {
    if !running {
        return ReadinessFacts::NotRunning;
    }
    let addr = c.controller.management.to_string();
    ReadinessFacts::Asked(
        bsfg_mgmt::http::get(&addr, "/readyz", timeout)
            .await
            .map(|r| (r.status, r.body))
            .map_err(|e| e.to_string()),
    )
}

/// The artifact storage's facts, and whether the write probe went unanswered
/// (still running after its timeout, or the previous one still is).
async fn artifact_facts(
    c: &AgentConfig,
    busy: Arc<AtomicBool>,
    timeout: Duration,
) -> (gates::artifacts::ArtifactFacts, bool) {
    let dir = c.artifacts.dir.clone();
    let stuck = |why: &str| gates::artifacts::ArtifactFacts {
        dir: c.artifacts.dir.clone(),
        is_dir: true,
        mount_point: Ok(true),
        writable: Err(why.to_owned()),
    };
    if busy.swap(true, Ordering::AcqRel) {
        return (
            stuck("the previous write probe has not returned (hung storage?)"),
            true,
        );
    }
    let done = busy.clone();
    let task = tokio::task::spawn_blocking(move || {
        let facts = artifacts::observe(&dir);
        done.store(false, Ordering::Release);
        facts
    });
    match tokio::time::timeout(timeout.max(Duration::from_secs(1)), task).await {
        Ok(Ok(facts)) => (facts, false),
        Ok(Err(e)) => {
            busy.store(false, Ordering::Release);
            (stuck(&format!("probe failed: {e}")), false)
        }
        Err(_) => (
            stuck("write probe did not return in time (hung storage?)"),
            true,
        ),
    }
}
