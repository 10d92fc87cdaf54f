//! Holding the zone lease and fencing ourselves when we cannot renew it.
//!
//! The [`Fence`] is what every request checks first: serving is allowed only
//! while (a) we are not draining and (b) the lease's fence deadline — a
//! `CLOCK_MONOTONIC` instant computed by `bsfg_core::lease` — lies in the
//! future. The check reads two atomics and the clock, so self-fencing is exact
//! to the request and does not depend on a background task being scheduled.
//!
//! Two ways of not serving, deliberately different:
//! - **Paused**: renewals fail because JetStream cannot commit (a leader
//!   election, lost quorum). Nobody else can take the lease either (taking
//!   it is a write), so the holder keeps trying and serves again when a
//!   write succeeds — the agent waits such stalls out (`stall_grace`).
//! - **Fenced** ([`Fenced`]): this controller can no longer be the zone's
//!   writer — its service address left the host (the VIP moved) or another
//!   controller took the lease. It releases the lease if it is still its
//!   own, stops and exits with [`bsfg_mgmt::ControllerExit::Fenced`]; only its gate
//!   agent may start a controller here again. The lease follows the VIP: no
//!   write is ever sent while the service address is not local.

use crate::metrics::Metrics;
use crate::service_address::ServiceAddress;
use bsfg_core::config::Lease as LeaseConfig;
use bsfg_core::lease::{LeaseAction, LeaseState, LeaseTiming, Observation};
use bsfg_core::retry::{Backoff, RepeatedWarning};
use bsfg_core::{BsfgError, Reason};
use bsfg_store::{LeaseSighting, LeaseStore, LeaseWrite, monotonic_now};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Whether requests may be served right now.
#[derive(Debug, Default)]
pub struct Fence {
    /// `CLOCK_MONOTONIC` milliseconds until which we may serve; `u64::MAX` without a lease.
    deadline_ms: AtomicU64,
    draining: AtomicBool,
    lease_enabled: AtomicBool,
    /// Who holds the lease when it is not us, for errors and /readyz.
    pub(crate) blocked_by: std::sync::Mutex<Option<String>>,
    /// Set once this controller is fenced for good (it is exiting); the
    /// flag keeps the request path at atomics, the reason is read only then.
    fenced_flag: AtomicBool,
    fenced: std::sync::Mutex<Option<Fenced>>,
}

/// Why this controller stopped being the zone's writer for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fenced {
    /// The service address is not on this host: the VIP is elsewhere.
    AddressGone { address: std::net::IpAddr },
    /// Another controller took the zone lease.
    LeaseTaken { by: String },
}

impl std::fmt::Display for Fenced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fenced::AddressGone { address } => write!(
                f,
                "the service address {address} is not on this host (the VIP is elsewhere)"
            ),
            Fenced::LeaseTaken { by } => {
                write!(f, "another controller ({by}) took the zone lease")
            }
        }
    }
}

impl Fence {
    pub fn without_lease() -> Arc<Fence> {
        Arc::new(Fence {
            deadline_ms: AtomicU64::new(u64::MAX),
            ..Default::default()
        })
    }

    fn with_lease() -> Arc<Fence> {
        let f = Fence::default();
        f.lease_enabled.store(true, Ordering::Relaxed);
        Arc::new(f)
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Time left before we must stop serving (`None`: no lease in use).
    pub fn remaining(&self) -> Option<Duration> {
        if !self.lease_enabled.load(Ordering::Relaxed) {
            return None;
        }
        let deadline = self.deadline_ms.load(Ordering::Acquire);
        Some(Duration::from_millis(
            deadline.saturating_sub(monotonic_now().as_millis() as u64),
        ))
    }

    pub fn is_serving(&self) -> bool {
        !self.is_draining() && !self.is_fenced() && self.remaining().is_none_or(|r| !r.is_zero())
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced_flag.load(Ordering::Acquire)
    }

    fn set_fenced(&self, why: Fenced) {
        self.set_deadline(None);
        if let Ok(mut g) = self.fenced.lock() {
            g.get_or_insert(why);
        }
        self.fenced_flag.store(true, Ordering::Release);
    }

    /// The first check of every request.
    pub fn check(&self) -> Result<(), BsfgError> {
        if self.is_fenced() {
            let why = self.fenced.lock().ok().and_then(|g| g.clone());
            return Err(Reason::NotServing.err(match why {
                Some(why) => format!("fenced: {why}; this controller stops"),
                None => "fenced; this controller stops".into(),
            }));
        }
        if self.is_draining() {
            return Err(Reason::NotServing
                .err("this controller is shutting down; retry (the zone VIP moves)"));
        }
        if self.remaining().is_some_and(|r| r.is_zero()) {
            let who = self
                .blocked_by
                .lock()
                .map(|g| g.clone())
                .unwrap_or_default();
            let why = match who {
                Some(h) => format!("the zone lease is held by {h}"),
                None => "this controller could not renew the zone lease".into(),
            };
            return Err(Reason::NotServing.err(format!("{why}; it does not serve")));
        }
        Ok(())
    }

    fn set_deadline(&self, deadline: Option<Duration>) {
        self.deadline_ms.store(
            deadline.map(|d| d.as_millis() as u64).unwrap_or(0),
            Ordering::Release,
        );
    }

    /// Why we are not serving, for /readyz; `None` while serving.
    pub fn not_serving_reason(&self) -> Option<String> {
        self.check().err().map(|e| e.detail)
    }
}

/// The lease holder: takes the lease at start, renews it, releases it on shutdown.
pub struct LeaseHolder {
    store: LeaseStore,
    state: Mutex<LeaseState>,
    timing: LeaseTiming,
    fence: Arc<Fence>,
    metrics: Arc<Metrics>,
    address: ServiceAddress,
    writes: Mutex<WritePacing>,
}

/// Failed writes are retried with backoff and jitter, and reported at most
/// once a second with a count (an outage would otherwise log ~40 lines a second).
struct WritePacing {
    backoff: Backoff,
    not_before: Option<Duration>,
    warning: RepeatedWarning,
    failures: u64,
    /// A write of ours succeeded once: seeing another controller's record
    /// afterwards means the lease was taken from us.
    held_once: bool,
}

/// Why [`LeaseHolder::acquire`] did not take the lease.
#[derive(Debug)]
pub enum NotAcquired {
    /// Another controller holds a live lease (exit 75).
    Held(BsfgError),
    /// The service address is not on this host (exit 79).
    Fenced(Fenced),
}

impl LeaseHolder {
    /// Opens the lease bucket and prepares (does not yet take) the lease.
    pub fn new(
        store: LeaseStore,
        host: &str,
        config: &LeaseConfig,
        address: ServiceAddress,
        metrics: Arc<Metrics>,
    ) -> (Arc<LeaseHolder>, Arc<Fence>) {
        let instance = format!("{host}-{:016x}", rand::random::<u64>());
        let timing = LeaseTiming {
            ttl: config.ttl,
            renew_interval: config.renew_interval,
            safety_margin: config.safety_margin,
        };
        let fence = Fence::with_lease();
        let tick = (timing.renew_interval / 4).max(Duration::from_millis(10));
        let holder = LeaseHolder {
            store,
            state: Mutex::new(LeaseState::new(host, instance, timing)),
            timing,
            fence: fence.clone(),
            metrics,
            address,
            writes: Mutex::new(WritePacing {
                backoff: Backoff::new(tick, (timing.ttl / 2).max(tick)),
                not_before: None,
                warning: RepeatedWarning::new(Duration::from_secs(1)),
                failures: 0,
                held_once: false,
            }),
        };
        (Arc::new(holder), fence)
    }

    /// The service address this holder follows.
    pub fn address(&self) -> ServiceAddress {
        self.address
    }

    pub async fn instance(&self) -> String {
        self.state.lock().await.instance().to_owned()
    }

    /// Takes the lease, waiting at most about one TTL for a previous holder's
    /// lease to expire. `sighting` is the gate agent's observation, if any.
    pub async fn acquire(&self, sighting: Option<LeaseSighting>) -> Result<(), NotAcquired> {
        if !self.address.is_local() {
            return Err(NotAcquired::Fenced(Fenced::AddressGone {
                address: self.address.ip(),
            }));
        }
        let first = self.store.read().await.map_err(NotAcquired::Held)?;
        {
            let mut state = self.state.lock().await;
            // Seed from the agent's sighting of the same revision: it has been
            // watching longer than we have, on the same host clock.
            let seen_since = match (&first, sighting) {
                (Observation::Held { revision, .. }, Some(s)) if s.revision == Some(*revision) => {
                    s.first_seen()
                }
                (Observation::Vacant { revision }, Some(s)) if s.revision == *revision => {
                    s.first_seen()
                }
                _ => monotonic_now(),
            };
            state.observe(seen_since, first);
        }
        let give_up = monotonic_now() + self.timing.ttl * 2 + self.timing.renew_interval;
        loop {
            if let Some(why) = self.step().await {
                return Err(NotAcquired::Fenced(why));
            }
            if self.fence.remaining().is_some_and(|r| !r.is_zero()) {
                return Ok(());
            }
            if monotonic_now() > give_up {
                let holder = self
                    .fence
                    .blocked_by
                    .lock()
                    .map(|g| g.clone())
                    .unwrap_or_default();
                return Err(NotAcquired::Held(Reason::NotServing.err(format!(
                    "the zone lease is held by {}",
                    holder.unwrap_or_else(|| "another controller".into())
                ))));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// One decision + I/O step; updates the fence. `Some`: fenced for good.
    async fn step(&self) -> Option<Fenced> {
        // The lease follows the VIP: checked at every step (every quarter of
        // the renew interval), not only before a write, so a controller on a
        // host the VIP just left stops at once.
        if !self.address.is_local() {
            return Some(Fenced::AddressGone {
                address: self.address.ip(),
            });
        }
        let mut state = self.state.lock().await;
        let now = monotonic_now();
        let action = state.next_action(now);
        let expected = match action {
            LeaseAction::Hold => None,
            LeaseAction::Wait { holder, .. } => {
                if let Ok(mut b) = self.fence.blocked_by.lock() {
                    *b = Some(holder);
                }
                // Keep observing: a renewal restarts the wait, a release ends it.
                if let Ok(obs) = self.store.read().await {
                    state.observe(monotonic_now(), obs);
                }
                None
            }
            LeaseAction::Acquire { expected_revision } => Some(expected_revision),
            LeaseAction::Renew { revision } => Some(Some(revision)),
        };
        if let Some(expected) = expected {
            let mut pacing = self.writes.lock().await;
            if pacing.not_before.is_none_or(|t| now >= t) {
                self.write(&mut state, &mut pacing, expected).await;
            }
        }
        let deadline = state.fence_deadline();
        self.fence.set_deadline(deadline);
        let now = monotonic_now();
        let held = deadline.is_some_and(|d| d > now);
        self.metrics.lease_held.set(held as i64);
        self.metrics.lease_remaining_seconds.set(
            deadline
                .map(|d| d.saturating_sub(now).as_secs_f64())
                .unwrap_or(0.0),
        );
        let held_once = self.writes.lock().await.held_once;
        match state.taken_by_other() {
            Some(by) if held_once => Some(Fenced::LeaseTaken { by: by.to_owned() }),
            _ => None,
        }
    }

    /// One lease write (take or renew) and what it tells us.
    async fn write(&self, state: &mut LeaseState, pacing: &mut WritePacing, expected: Option<u64>) {
        let sent = monotonic_now();
        state.write_sent(sent);
        let record = state.record(bsfg_core::clock::unix_ms());
        let budget = self.timing.renew_interval.max(Duration::from_millis(100));
        let failure = match tokio::time::timeout(budget, self.store.write(&record, expected)).await
        {
            Ok(Ok(LeaseWrite::Written { revision })) => {
                state.write_succeeded(sent, revision);
                self.metrics.lease_renewals.inc();
                if let Ok(mut b) = self.fence.blocked_by.lock() {
                    *b = None;
                }
                pacing.held_once = true;
                pacing.backoff.reset();
                pacing.not_before = None;
                if pacing.failures > 0 {
                    tracing::info!(
                        failures = pacing.failures,
                        "lease writes succeed again after {} failures",
                        pacing.failures
                    );
                    pacing.failures = 0;
                    pacing.warning.clear();
                }
                return;
            }
            Ok(Ok(LeaseWrite::Conflict)) => {
                state.write_conflicted();
                if let Ok(obs) = self.store.read().await {
                    state.observe(monotonic_now(), obs);
                }
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {budget:?}"),
        };
        self.metrics.lease_write_failures.inc();
        state.write_failed();
        pacing.failures += 1;
        let now = monotonic_now();
        pacing.not_before = Some(now + pacing.backoff.next_delay(rand::random()));
        if let Some(n) = pacing.warning.occurred(now) {
            tracing::warn!(
                error = %failure,
                failures_since_last_report = n,
                "lease write failed ({n} since the last report)"
            );
        }
    }

    /// Renews until cancelled or fenced. A lease that cannot be renewed
    /// closes the fence (requests get `not_serving`) until a write succeeds
    /// again; a fenced holder releases the lease if it is still its own and
    /// returns why, and the controller exits.
    pub async fn keep(self: Arc<Self>, stop: CancellationToken) -> Option<Fenced> {
        let tick = self.timing.renew_interval / 4;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(tick.max(Duration::from_millis(10))) => {}
            }
            let was_serving = self.fence.is_serving();
            if let Some(why) = self.step().await {
                self.fence.set_fenced(why.clone());
                self.release().await;
                return Some(why);
            }
            if was_serving && !self.fence.is_serving() && !self.fence.is_draining() {
                tracing::error!(
                    "zone lease not renewed in time: not serving until a renewal succeeds"
                );
            }
        }
    }

    /// Deletes the lease key if we still hold it, so the peer need not wait for the TTL.
    pub async fn release(&self) {
        let revision = self.state.lock().await.release();
        self.fence.set_deadline(None);
        if let Some(rev) = revision {
            match self.store.release(rev).await {
                Ok(true) => tracing::info!(revision = rev, "zone lease released"),
                Ok(false) => tracing::info!("zone lease already moved on; nothing to release"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not release the zone lease; it expires by itself")
                }
            }
        }
    }

    /// (revision, holder) for /status.
    pub async fn view(&self) -> bsfg_core::lease::LeaseView {
        self.state.lock().await.view(monotonic_now())
    }
}
