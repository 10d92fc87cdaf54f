//! Cross-zone replay: this zone pulls facts from each peer zone.
//!
//! One [`PeerReplicator`] per configured peer with an endpoint. It runs only
//! while this controller serves (it checks the fence every round, so a
//! fenced or draining controller pulls nothing), and it keeps no state of its
//! own: the peer's consumer cursor is the durable progress, and the forward
//! buffer's put-if-absent makes every re-delivered fact a harmless duplicate.
//!
//! One round: `FetchFacts` (a page) → for each fact, concurrently: check
//! `from_zone`, fetch and verify its artifact if any, put-if-absent into
//! `fwd_<peer>` → when the whole page is durable here, `ConfirmReceipt` of its
//! last offset. A failure anywhere leaves the page unconfirmed; the next round
//! (after a jittered backoff) fetches it again. A controller killed mid-page
//! therefore yields neither gaps nor duplicates.
//!
//! Facts that can never be materialised (a `from_zone` other than the peer's,
//! a grammar this zone's limits refuse, a conflicting payload for a known
//! `message_id`) are not written, counted in
//! `bsfg_replication_rejected_total{peer,reason}`, logged, and confirmed, so
//! one bad fact does not stall the boundary.

pub mod lag;
pub mod page;
pub mod rehydrate;

use crate::boundary::Boundary;
use bsfg_client::BoundaryServiceClient;
use bsfg_client::pb::{
    ArtifactRef, ConfirmReceiptRequest, FetchFactsRequest, GetObjectRequest, get_object_response,
};
use bsfg_core::config::{ControllerConfig, Replication, TlsFiles};
use bsfg_core::retry::{Backoff, RepeatedWarning};
use bsfg_core::{BsfgError, Reason};
use bsfg_mgmt::controller::{PeerReplication, PeerState};
use futures::StreamExt;
use lag::Lag;
use page::Admission;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A peer zone this controller can reach.
#[derive(Clone)]
pub struct PeerLink {
    pub zone: String,
    /// The peer's consumer this zone pulls from; `None`: reached for artifacts only.
    pub consumer: Option<String>,
    pub client: BoundaryServiceClient<Channel>,
}

/// Clients for every peer with an endpoint, verifying each peer's identity.
pub fn peer_links(config: &ControllerConfig) -> Result<Vec<PeerLink>, String> {
    let mut links = Vec::new();
    for (zone, peer) in &config.peers {
        let Some(endpoint) = &peer.endpoint else {
            continue;
        };
        let consumer = peer.consumer.clone();
        // Our controller certificate is our zone identity; the peer's trust root may differ from ours.
        let ours = TlsFiles {
            ca: peer.ca.clone().unwrap_or_else(|| config.tls.ca.clone()),
            ..config.tls.clone()
        };
        let client = bsfg_client::connect_grpc_to(endpoint, &ours, Some(&peer.identity))
            .map_err(|e| format!("peers.{zone}: {e}"))?;
        links.push(PeerLink {
            zone: zone.clone(),
            consumer,
            client,
        });
    }
    Ok(links)
}

pub struct PeerReplicator {
    link: PeerLink,
    consumer: String,
    boundary: Arc<Boundary>,
    settings: Replication,
    status: Arc<Mutex<PeerReplication>>,
    lag: Mutex<Lag>,
}

/// How often the lag is published while a round is in flight or the
/// replicator waits (it grows then): the scrape interval's order.
const LAG_REFRESH: Duration = Duration::from_secs(1);

/// Why a round failed; the page stays unconfirmed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RoundError {
    #[error("{0}")]
    Rpc(String),
    #[error("{0}")]
    Local(BsfgError),
}

fn rpc(e: tonic::Status) -> RoundError {
    RoundError::Rpc(format!("{:?}: {}", e.code(), e.message()))
}

impl PeerReplicator {
    /// A replicator for a link that has a consumer (`None` otherwise).
    pub fn new(
        link: PeerLink,
        boundary: Arc<Boundary>,
        settings: Replication,
    ) -> Option<(PeerReplicator, Arc<Mutex<PeerReplication>>)> {
        let consumer = link.consumer.clone()?;
        let status = Arc::new(Mutex::new(PeerReplication {
            peer: link.zone.clone(),
            consumer: consumer.clone(),
            state: PeerState::Starting,
            last_error: None,
            replicated: 0,
            rejected: 0,
            confirmed_offset: 0,
            backlog: 0,
            lag_seconds: 0.0,
        }));
        Some((
            PeerReplicator {
                link,
                consumer,
                boundary,
                settings,
                status: status.clone(),
                lag: Mutex::new(Lag::start(bsfg_core::clock::unix_ms())),
            },
            status,
        ))
    }

    fn set(&self, f: impl FnOnce(&mut PeerReplication)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    fn label(&self) -> crate::metrics::PeerLabel {
        crate::metrics::PeerLabel {
            peer: self.link.zone.clone(),
        }
    }

    fn learned(&self, f: impl FnOnce(&mut Lag)) {
        if let Ok(mut l) = self.lag.lock() {
            f(&mut l);
        }
        self.publish_lag();
    }

    /// The lag as of now, to the metric and `/status`.
    fn publish_lag(&self) {
        let Ok(lag) = self
            .lag
            .lock()
            .map(|l| l.seconds(bsfg_core::clock::unix_ms()))
        else {
            return;
        };
        self.boundary
            .metrics
            .replication_lag_seconds
            .get_or_create(&self.label())
            .set(lag);
        self.set(|s| s.lag_seconds = lag);
    }

    /// Awaits `work`, publishing the lag at every `refresh` tick meanwhile:
    /// it grows while no round completes.
    async fn publishing_lag<F: std::future::Future>(
        &self,
        refresh: &mut tokio::time::Interval,
        work: F,
    ) -> F::Output {
        tokio::pin!(work);
        loop {
            tokio::select! {
                r = &mut work => return r,
                _ = refresh.tick() => self.publish_lag(),
            }
        }
    }

    /// Pulls until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut backoff = Backoff::new(self.settings.backoff_min, self.settings.backoff_max);
        let mut warning = RepeatedWarning::new(Duration::from_secs(1));
        let mut refresh = tokio::time::interval(LAG_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        self.publish_lag();
        loop {
            if stop.is_cancelled() {
                return;
            }
            let pause = if !self.boundary.fence.is_serving() {
                self.set(|s| s.state = PeerState::Paused);
                self.learned(|l| l.paused(bsfg_core::clock::unix_ms()));
                Duration::from_millis(100)
            } else {
                match self.publishing_lag(&mut refresh, self.round()).await {
                    Ok(0) => {
                        backoff.reset();
                        self.set(|s| {
                            s.state = PeerState::CaughtUp;
                            s.last_error = None;
                        });
                        self.settings.idle_poll
                    }
                    Ok(_) => {
                        backoff.reset();
                        self.set(|s| {
                            s.state = PeerState::Replicating;
                            s.last_error = None;
                        });
                        Duration::ZERO
                    }
                    Err(e) => {
                        let wait = backoff.next_delay(rand::random());
                        if let Some(n) = warning.occurred(bsfg_store::monotonic_now()) {
                            tracing::warn!(peer = %self.link.zone, error = %e, ?wait, failures_since_last_report = n, "replication round failed");
                        }
                        self.set(|s| {
                            s.state = PeerState::Backoff;
                            s.last_error = Some(e.to_string());
                        });
                        self.publish_lag();
                        wait
                    }
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = self.publishing_lag(&mut refresh, tokio::time::sleep(pause)) => {}
                }
            }
        }
    }

    /// One page: fetch, materialise, confirm. Returns the number of facts handled.
    async fn round(&self) -> Result<usize, RoundError> {
        let mut client = self.link.client.clone();
        let page = client
            .fetch_facts(FetchFactsRequest {
                consumer_name: self.consumer.clone(),
                limit: self.settings.page_facts,
            })
            .await
            .map_err(rpc)?
            .into_inner();
        let label = self.label();
        self.boundary
            .metrics
            .replication_backlog
            .get_or_create(&label)
            .set(i64::try_from(page.backlog).unwrap_or(i64::MAX));
        let plan = page::plan(&self.link.zone, &page, self.boundary.limits());
        let Some(last) = plan.confirm else {
            self.set(|s| s.backlog = 0);
            self.learned(|l| l.caught_up(bsfg_core::clock::unix_ms()));
            return Ok(0);
        };
        let n = plan.facts.len();
        // Futures made up front: a closure over borrowed admissions inside
        // the stream type would not be `Send` for every lifetime.
        let materialising: Vec<_> = plan
            .facts
            .into_iter()
            .map(|admission| self.materialise(admission))
            .collect();
        let outcomes: Vec<Result<bool, RoundError>> = futures::stream::iter(materialising)
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await;
        let mut rejected = 0;
        for o in outcomes {
            if !o? {
                rejected += 1;
            }
        }
        // The page's facts arrived now (the confirmation's round trip is not their lag).
        let stored_here_ms = bsfg_core::clock::unix_ms();
        // Everything of the page is durable here (or deliberately rejected): confirm it.
        client
            .confirm_receipt(ConfirmReceiptRequest {
                consumer_name: self.consumer.clone(),
                offset: last,
            })
            .await
            .map_err(rpc)?;
        self.learned(|l| {
            l.arrived(
                stored_here_ms,
                plan.newest_stored_at_unix_ms.unwrap_or(i64::MAX),
            )
        });
        self.boundary
            .metrics
            .replicated_facts
            .get_or_create(&label)
            .inc_by((n - rejected) as u64);
        self.boundary
            .metrics
            .frontier_offset
            .get_or_create(&crate::metrics::ConsumerLabel {
                consumer: format!("replicate:{}", self.link.zone),
            })
            .set(last as i64);
        self.set(|s| {
            s.replicated += (n - rejected) as u64;
            s.rejected += rejected as u64;
            s.confirmed_offset = last;
            s.backlog = page.backlog;
        });
        Ok(n)
    }

    /// Stores one fact (and its artifact). `Ok(false)`: deliberately rejected.
    async fn materialise(&self, admission: Admission<'_>) -> Result<bool, RoundError> {
        let (offset, fact, artifact) = match admission {
            Admission::Store {
                offset,
                fact,
                artifact,
            } => (offset, fact, artifact),
            Admission::Reject { offset, error } => {
                return Ok(self.reject(offset, error.reason.token()));
            }
        };
        // Only a fact that can be materialised is worth its artifact.
        if let Some(artifact) = artifact {
            fetch_artifact(&self.boundary, &self.link, artifact).await?;
        }
        match self.boundary.store_forwarded(&self.link.zone, fact).await {
            Ok(_) => Ok(true),
            Err(e) => match e.reason {
                Reason::SubstrateUnavailable | Reason::StoreBufferFull | Reason::Internal => {
                    Err(RoundError::Local(e))
                }
                _ => Ok(self.reject(offset, e.reason.token())),
            },
        }
    }

    fn reject(&self, offset: u64, why: &str) -> bool {
        tracing::error!(peer = %self.link.zone, offset, reason = why, "fact from peer not materialised");
        self.boundary
            .metrics
            .replication_rejected
            .get_or_create(&crate::metrics::PeerReason {
                peer: self.link.zone.clone(),
                reason: why.to_owned(),
            })
            .inc();
        false
    }
}

/// Fetches `artifact` from `link` unless this host already holds it, verifying
/// size and digest before it is stored and indexed.
pub(crate) async fn fetch_artifact(
    boundary: &Boundary,
    link: &PeerLink,
    artifact: &ArtifactRef,
) -> Result<(), RoundError> {
    if boundary
        .blobs()
        .holds(&artifact.digest, artifact.size)
        .await
    {
        return index_replicated(boundary, link, artifact).await;
    }
    let mut client = link.client.clone();
    let mut stream = client
        .get_object(GetObjectRequest {
            bucket: artifact.bucket.clone(),
            key: artifact.key.clone(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    let header = match stream.next().await {
        Some(Ok(m)) => match m.part {
            Some(get_object_response::Part::Header(h)) => h,
            _ => {
                return Err(RoundError::Rpc(
                    "GetObject did not start with a header".into(),
                ));
            }
        },
        Some(Err(e)) => return Err(rpc(e)),
        None => return Err(RoundError::Rpc("GetObject ended before its header".into())),
    };
    if header.digest != artifact.digest || header.size != artifact.size {
        return Err(RoundError::Local(Reason::ObjectMismatch.err(format!(
            "peer {} serves {}/{} as {} ({} bytes), the fact references {} ({} bytes)",
            link.zone,
            artifact.bucket,
            artifact.key,
            header.digest,
            header.size,
            artifact.digest,
            artifact.size
        ))));
    }
    let chunks = stream.filter_map(|m| async move {
        match m {
            Ok(m) => match m.part {
                Some(get_object_response::Part::Chunk(c)) => Some(Ok(bytes::Bytes::from(c))),
                _ => None,
            },
            Err(e) => Some(Err(
                Reason::SubstrateUnavailable.err(format!("artifact stream: {}", e.message()))
            )),
        }
    });
    boundary
        .ingest_blob(Box::pin(chunks), artifact.size, Some(&artifact.digest))
        .await
        .map_err(|e| {
            if e.reason == Reason::ObjectMismatch {
                boundary
                    .metrics
                    .artifact_transfer_failures
                    .get_or_create(&crate::metrics::PeerLabel {
                        peer: link.zone.clone(),
                    })
                    .inc();
            }
            RoundError::Local(e)
        })?;
    index_replicated(boundary, link, artifact).await
}

async fn index_replicated(
    boundary: &Boundary,
    link: &PeerLink,
    artifact: &ArtifactRef,
) -> Result<(), RoundError> {
    let record = bsfg_store::ArtifactRecord {
        bucket: artifact.bucket.clone(),
        key: artifact.key.clone(),
        digest: artifact.digest.clone(),
        size: artifact.size,
        media_type: artifact.media_type.clone(),
        created_at_unix_ms: bsfg_core::clock::unix_ms(),
        stored_by: boundary.node().to_owned(),
        origin_zone: Some(link.zone.clone()),
    };
    boundary
        .index_artifact(&record)
        .await
        .map_err(RoundError::Local)
}
