//! The zone controller lease, read (never written) from the JetStream KV
//! bucket the controller keeps it in. The agent is an observer: it feeds
//! every read into a [`LeaseState`] of its own, whose view counts the TTL
//! from when *this host* first saw the current revision (no cross-host
//! clocks), exactly as a contending controller would.
//!
//! When `lease.sighting_file` is set, the agent records that sighting
//! (revision + first-seen time on the host's monotonic clock) so the
//! controller it starts does not wait another full TTL for a lease the
//! agent has already watched expire.

use bsfg_core::config::NatsConnection;
use bsfg_core::lease::{LeaseState, LeaseTiming, LeaseView};
use bsfg_store::{LeaseSighting, LeaseStore, Substrate, monotonic_now};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug)]
pub struct LeaseProbe {
    bucket: String,
    timeout: Duration,
    substrate: watch::Receiver<Option<Substrate>>,
    store: Option<LeaseStore>,
    observer: LeaseState,
    sighting_file: Option<PathBuf>,
    sighting: Option<LeaseSighting>,
}

impl LeaseProbe {
    /// Starts connecting to the local NATS server in the background (a
    /// server that is down at agent start must not stall the evaluations).
    pub fn new(
        host: &str,
        connection: NatsConnection,
        voters: usize,
        bucket: String,
        ttl: Duration,
        sighting_file: Option<PathBuf>,
    ) -> LeaseProbe {
        let (tx, rx) = watch::channel(None);
        let timeout = connection.request_timeout;
        tokio::spawn(async move {
            let mut reported = false;
            loop {
                match Substrate::connect(&connection, voters, "bsfg-gate-agent").await {
                    Ok(s) => {
                        tracing::info!(url = %connection.url, "connected to the local NATS server");
                        let _ = tx.send(Some(s));
                        return;
                    }
                    Err(e) => {
                        if !reported {
                            tracing::warn!(url = %connection.url, error = %e, "cannot connect to NATS yet; retrying");
                            reported = true;
                        }
                        if tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        // The observer never writes; its instance id matches no controller's.
        let observer = LeaseState::new(
            host,
            format!("gate-agent-observer-{}", std::process::id()),
            LeaseTiming {
                ttl,
                renew_interval: ttl,
                safety_margin: Duration::ZERO,
            },
        );
        LeaseProbe {
            bucket,
            timeout,
            substrate: rx,
            store: None,
            observer,
            sighting_file,
            sighting: None,
        }
    }

    /// The NATS client, once connected (shared with gate 2's ping).
    pub fn client(&self) -> Option<async_nats::Client> {
        self.substrate.borrow().as_ref().map(|s| s.client().clone())
    }

    /// Reads the lease and returns this host's view of it.
    pub async fn observe(&mut self) -> Result<LeaseView, String> {
        let Some(substrate) = self.substrate.borrow().clone() else {
            return Err("not connected to the local NATS server".into());
        };
        if self.store.is_none() {
            let store =
                tokio::time::timeout(self.timeout, LeaseStore::open(&substrate, &self.bucket))
                    .await
                    .map_err(|_| format!("opening bucket {} timed out", self.bucket))?
                    .map_err(|e| e.to_string())?;
            self.store = Some(store);
        }
        let store = self.store.as_ref().expect("opened above");
        let observation = tokio::time::timeout(self.timeout, store.read())
            .await
            .map_err(|_| "reading the lease timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        let now = monotonic_now();
        self.observer.observe(now, observation);
        let view = self.observer.view(now);
        self.record_sighting(&view, now);
        Ok(view)
    }

    fn record_sighting(&mut self, view: &LeaseView, now: Duration) {
        if self.sighting.is_some_and(|s| s.revision == view.revision) {
            return;
        }
        let sighting = LeaseSighting {
            revision: view.revision,
            first_seen_monotonic_ms: now.as_millis() as u64,
        };
        self.sighting = Some(sighting);
        if let Some(path) = &self.sighting_file
            && let Err(e) = sighting.write(path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot record the lease sighting");
        }
    }
}
