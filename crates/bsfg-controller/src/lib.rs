//! The BSFG zone controller.
//!
//! Start-up order, each step a gate for the next (the gate agent reads the
//! outcome from the exit code or from `/readyz`):
//!
//! 1. TLS material loads (else exit 78);
//! 2. the management endpoint binds (loopback/management network);
//! 3. JetStream answers (else exit 69);
//! 4. the zone lease is taken (else exit 75), only while the service address
//!    is on this host (else exit 79) — see [`fencing`], [`service_address`];
//! 5. streams and buckets are created or reconciled, cursors loaded;
//! 6. the service address — the VIP — is bound (else exit 69);
//! 7. `READY=1` to systemd; stream leaders, and with the NATS system user
//!    the meta leader, are moved off this host (from 5 s after start).
//!
//! On SIGTERM: `STOPPING=1`, stop accepting, drain in-flight requests for
//! `drain_timeout`, release the lease, exit 0. Fenced (the VIP left this
//! host, or another controller took the lease): the same, but exit 79; a
//! fenced controller never waits to take the lease again.

pub mod artifacts;
pub mod boundary;
pub mod config;
pub mod fencing;
pub mod logging;
pub mod metrics;
pub mod mgmt;
pub mod replicator;
pub mod rpc;
pub mod service_address;
pub mod tls;

use bsfg_core::config::ControllerConfig;
use bsfg_mgmt::ControllerExit;
use bsfg_store::{LeaseSighting, LeaseStore, Substrate};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    pub status: ControllerExit,
    pub message: String,
}

fn fail(status: ControllerExit, message: impl std::fmt::Display) -> StartError {
    StartError {
        status,
        message: message.to_string(),
    }
}

pub async fn run(config: ControllerConfig) -> Result<(), StartError> {
    let stop = CancellationToken::new();
    spawn_signal_handler(stop.clone());

    let tls = tls::server_config(&config.tls)
        .map_err(|e| fail(ControllerExit::Config, format!("TLS: {e}")))?;
    let service = service_address::ServiceAddress::new(config.listen.address.ip())
        .map_err(|e| fail(ControllerExit::Config, e))?;
    // Peer endpoints and identities are configuration: a bad one is exit 78, now.
    let peer_links =
        replicator::peer_links(&config).map_err(|e| fail(ControllerExit::Config, e))?;
    let metrics = Arc::new(metrics::Metrics::new(config.classes.keys().cloned()));

    let substrate = Substrate::connect(
        &config.nats,
        config.store.replicas,
        &format!("bsfg-controller-{}", config.node),
    )
    .await
    .map_err(|e| fail(ControllerExit::Unavailable, e))?;

    let (lease, fence) = if config.lease.enabled {
        let store =
            bsfg_store::retry_while_unavailable("opening the lease bucket", STARTUP_BUDGET, || {
                LeaseStore::open(&substrate, &config.lease.bucket)
            })
            .await
            .map_err(|e| fail(ControllerExit::Unavailable, e))?;
        let (holder, fence) =
            fencing::LeaseHolder::new(store, &config.node, &config.lease, service, metrics.clone());
        (Some(holder), fence)
    } else {
        tracing::warn!("the zone lease is disabled: nothing prevents a second active controller");
        (None, fencing::Fence::without_lease())
    };

    let observed = Arc::new(mgmt::Observed {
        zone: config.zone.clone(),
        node: config.node.clone(),
        listen: config.listen.address,
        fence: fence.clone(),
        started_at_unix_ms: bsfg_core::clock::unix_ms(),
        boundary: tokio::sync::OnceCell::new(),
        lease: lease.clone(),
        metrics: metrics.clone(),
        bound: std::sync::atomic::AtomicBool::new(false),
        replication: tokio::sync::OnceCell::new(),
        rehydration: tokio::sync::OnceCell::new(),
    });
    let mgmt_listener = mgmt::bind(config.management.address).await.map_err(|e| {
        fail(
            ControllerExit::Unavailable,
            format!("management address {}: {e}", config.management.address),
        )
    })?;
    let mgmt_task = tokio::spawn(mgmt::serve(mgmt_listener, observed.clone(), stop.clone()));

    let mut keeper = None;
    if let Some(holder) = &lease {
        let sighting = config
            .lease
            .sighting_file
            .as_deref()
            .and_then(LeaseSighting::read);
        match holder.acquire(sighting).await {
            Ok(()) => {}
            Err(fencing::NotAcquired::Held(e)) => {
                return Err(fail(ControllerExit::LeaseHeld, e.detail));
            }
            Err(fencing::NotAcquired::Fenced(why)) => {
                tracing::error!(%why, "fenced before taking the zone lease; exiting 79");
                return Err(fail(ControllerExit::Fenced, format!("fenced: {why}")));
            }
        }
        tracing::info!(instance = %holder.instance().await, "zone lease taken");
        keeper = Some(tokio::spawn(holder.clone().keep(stop.clone())));
    }

    let boundary = match bsfg_store::retry_while_unavailable(
        "preparing streams and buckets",
        STARTUP_BUDGET,
        || boundary::Boundary::start(&config, &substrate, metrics.clone(), fence.clone()),
    )
    .await
    {
        Ok(b) => Arc::new(b),
        Err(e) => {
            release(&lease).await;
            return Err(fail(ControllerExit::Unavailable, e));
        }
    };
    let _ = observed.boundary.set(boundary.clone());

    let listener = match tokio::net::TcpListener::bind(config.listen.address).await {
        Ok(l) => l,
        Err(e) => {
            release(&lease).await;
            return Err(fail(
                ControllerExit::Unavailable,
                format!(
                    "cannot bind the service address {} (is the VIP on this host?): {e}",
                    config.listen.address
                ),
            ));
        }
    };
    // The health service answers from the fence (rpc::health).
    let app = rpc::ProtocolSplit::new(boundary.clone());
    let server = tokio::spawn(rpc::serve(
        listener,
        tls,
        app,
        metrics.clone(),
        stop.clone(),
        config.drain_timeout,
    ));
    observed
        .bound
        .store(true, std::sync::atomic::Ordering::SeqCst);
    metrics
        .listen_info
        .get_or_create(&metrics::AddressLabel {
            address: config.listen.address.to_string(),
        })
        .set(1);
    tracing::info!(listen = %config.listen.address, zone = %config.zone, node = %config.node, "serving");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    spawn_watchdog(stop.clone());
    spawn_fill_poller(
        boundary.clone(),
        config.store.fill_poll_interval,
        stop.clone(),
    );
    spawn_stream_health(
        substrate.clone(),
        boundary
            .store_buffers()
            .values()
            .chain(boundary.forward_buffers().values())
            .map(|b| b.stream_name().to_owned())
            .collect(),
        config.store.replicas,
        metrics.clone(),
        config
            .store
            .fill_poll_interval
            .max(STREAM_HEALTH_MIN_INTERVAL),
        stop.clone(),
    );
    spawn_leader_placement(
        substrate.clone(),
        config.nats.clone(),
        config.store.leaders_on.clone(),
        format!("bsfg-controller-{}-system", config.node),
        stop.clone(),
    );
    let mut peer_status = Vec::new();
    for link in peer_links.clone() {
        if let Some((r, status)) =
            replicator::PeerReplicator::new(link, boundary.clone(), config.replication.clone())
        {
            peer_status.push(status);
            tokio::spawn(r.run(stop.clone()));
        }
    }
    let _ = observed.replication.set(peer_status);
    let (rehydrator, rehydration) = replicator::rehydrate::Rehydrator::new(
        boundary.clone(),
        peer_links,
        config.replication.rehydrate_retry,
    );
    let _ = observed.rehydration.set(rehydration);
    tokio::spawn(rehydrator.run(stop.clone()));

    let fenced = match keeper {
        Some(mut keeper) => tokio::select! {
            _ = stop.cancelled() => None,
            why = &mut keeper => why.ok().flatten(),
        },
        None => {
            stop.cancelled().await;
            None
        }
    };
    if let Some(why) = &fenced {
        tracing::error!(
            %why,
            "fenced: this controller stops serving and exits 79; only the gate agent starts a controller again"
        );
        stop.cancel();
    }
    tracing::info!("stopping: draining in-flight requests");
    fence.set_draining();
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    if fenced.is_some() {
        // Nothing in flight can succeed any more (the fence refuses every
        // request), and connections through a VIP that moved are dead: do
        // not wait a full drain for them to close.
        let _ = tokio::time::timeout(FENCED_DRAIN, server).await;
    } else {
        let _ = server.await;
    }
    release(&lease).await;
    let _ = mgmt_task.await;
    tracing::info!("stopped");
    match fenced {
        Some(why) => Err(fail(ControllerExit::Fenced, format!("fenced: {why}"))),
        None => Ok(()),
    }
}

/// How long a fenced controller lets in-flight requests finish (each one is
/// refused by the fence) before it exits.
const FENCED_DRAIN: Duration = Duration::from_secs(1);

/// How long start-up keeps retrying JetStream set-up steps (stream creation,
/// leader election on a freshly formed cluster) before exiting 69.
const STARTUP_BUDGET: Duration = Duration::from_secs(30);

async fn release(lease: &Option<Arc<fencing::LeaseHolder>>) {
    if let Some(l) = lease {
        l.release().await;
    }
}

fn spawn_signal_handler(stop: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
        stop.cancel();
    });
}

/// Pings the systemd watchdog at half its interval while the runtime is alive.
fn spawn_watchdog(stop: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = interval / 2;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => { let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]); }
            }
        }
    });
}

fn spawn_fill_poller(boundary: Arc<boundary::Boundary>, every: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => { boundary.refresh_fill().await; boundary.refresh_backlog().await; },
            }
        }
    });
}

/// Stream listings are answered by every stream leader in turn: at most
/// one a second however short the fill poll is.
const STREAM_HEALTH_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Re-reads every stream's replicas from its leader (`bsfg_stream_*`):
/// the zone's buffers are known from the start, the KV buckets from the
/// first listing; a known stream missing from a later listing (its leader
/// does not answer) is reported leaderless, never dropped.
fn spawn_stream_health(
    substrate: Substrate,
    buffers: Vec<String>,
    replicas: usize,
    metrics: Arc<metrics::Metrics>,
    every: Duration,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut known = bsfg_store::KnownStreams::default();
        for b in &buffers {
            known.expect(b, replicas);
        }
        loop {
            let listed = match bsfg_store::stream_replicas(&substrate).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::debug!(error = %e, "stream replica listing failed");
                    None
                }
            };
            metrics.set_stream_replicas(&known.merge(listed));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

/// Moves stream leaders off this host after promotion, and again whenever one
/// comes back (a restarted peer can hand leadership back to us), gathering
/// them on `store.leaders_on` (the witness) while it is current; then the
/// JetStream meta leader, if this server leads the meta group and
/// `nats.system_user_password_file` gives the system account's user
/// (`bsfg_store::MetaMover`): a crash of this host then never waits for a
/// meta election on the standby (its gate 3).
///
/// The first round waits 5 s: right after a failover the old
/// active host has just died, and JetStream still reports it current for a
/// moment; handing a stream to it would leave the stream leaderless for
/// seconds (measured in the zone simulator's alpha-crash drill). A stream
/// with a replica down keeps its leader until the group is whole
/// (`bsfg_store::step_down_leaders_on`), and so does the meta group.
fn spawn_leader_placement(
    substrate: Substrate,
    nats: bsfg_core::config::NatsConnection,
    leaders_on: Option<String>,
    system_name: String,
    stop: CancellationToken,
) {
    const PLACEMENT_SETTLE: Duration = Duration::from_secs(5);
    tokio::spawn(async move {
        let server = substrate.client().server_info().server_name;
        if nats.system_user_password_file.is_none() {
            tracing::info!(
                "no nats.system_user_password_file: the JetStream meta leader stays where JetStream \
                 elects it, possibly on this host (a crash of it then waits for a meta election)"
            );
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(PLACEMENT_SETTLE) => {}
        }
        let mut meta: Option<bsfg_store::MetaMover> = None;
        let mut meta_failures = 0u32;
        loop {
            match bsfg_store::step_down_leaders_on(&substrate, &server, leaders_on.as_deref()).await
            {
                Ok(moved) if !moved.is_empty() => {
                    tracing::info!(?moved, "moved stream leaders (gathered on one peer)")
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "leader placement check failed"),
            }
            if nats.system_user_password_file.is_some() {
                if meta.is_none() {
                    match bsfg_store::SystemConnection::connect(&nats, &system_name).await {
                        Ok(Some(sys)) => {
                            tracing::info!(user = %nats.system_user, "connected as the NATS system user (meta-leader placement)");
                            meta = Some(bsfg_store::MetaMover::new(sys));
                        }
                        Ok(None) => {}
                        // Warn once, then quietly retry each round: the meta
                        // leader staying put costs failover time, not service.
                        Err(e) if meta_failures == 0 => {
                            meta_failures += 1;
                            tracing::warn!(error = %e, "cannot connect as the NATS system user; the meta leader may stay on this host (retrying every round)")
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "NATS system user: still no connection")
                        }
                    }
                }
                if let Some(m) = &meta {
                    move_meta_leader(&substrate, &server, leaders_on.as_deref(), m).await;
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            }
        }
    });
}

/// One round of meta-leader placement: hand it to the peer the streams are
/// gathered on (else the freshest peer) when this server leads it.
async fn move_meta_leader(
    substrate: &Substrate,
    server: &str,
    leaders_on: Option<&str>,
    mover: &bsfg_store::MetaMover,
) {
    let gather_on = bsfg_store::placements(substrate)
        .await
        .ok()
        .and_then(|p| bsfg_store::gathering_peer(&p, server, leaders_on));
    match mover.round(gather_on.as_deref()).await {
        Ok(bsfg_store::MetaOutcome::Moved { to, preferred }) => tracing::info!(
            to = to.as_deref().unwrap_or("(not elected yet)"),
            preferred = preferred.as_deref().unwrap_or("(plain step-down)"),
            "moved the JetStream meta leader off this host"
        ),
        Ok(bsfg_store::MetaOutcome::Failed(e)) => {
            tracing::warn!(error = %e, "meta-leader step-down failed")
        }
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "meta placement check failed"),
    }
}
