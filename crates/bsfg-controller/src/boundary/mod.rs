//! The boundary operations, independent of the wire protocol.
//!
//! `rpc::grpc` and `rpc::connect` decode a request, take the caller's
//! identity from the TLS session, and call one method here; every method
//! returns the domain error type, which the RPC layer renders.

mod append;
mod consume;
mod forward;
mod objects;

pub use objects::ObjectBody;

use crate::artifacts::BlobStore;
use crate::fencing::Fence;
use crate::metrics::{ConsumerLabel, Metrics};
use bsfg_core::config::ControllerConfig;
use bsfg_core::policy::Policy;
use bsfg_core::source::{Buffer, Source};
use bsfg_core::{BsfgError, Limits, Reason};
use bsfg_store::{ArtifactIndex, CursorStore, FactBuffer, StoredCursor, Substrate};
use std::collections::HashMap;
use std::sync::Arc;

/// A declared consumer and its cursor, cached while this controller is active
/// (it is the zone's only writer of cursors: it holds the lease).
pub(crate) struct ConsumerState {
    filter: String,
    buffer: FactBuffer,
    label: ConsumerLabel,
    cursor: tokio::sync::Mutex<CursorCache>,
}

struct CursorCache {
    stored: StoredCursor,
    /// Highest offset this controller has delivered; unknown after a takeover.
    delivered: Option<u64>,
}

pub struct Boundary {
    zone: String,
    node: String,
    limits: Limits,
    policy: Policy,
    store_buffers: HashMap<String, FactBuffer>,
    forward_buffers: HashMap<String, FactBuffer>,
    consumers: HashMap<String, ConsumerState>,
    cursors: CursorStore,
    index: ArtifactIndex,
    blobs: BlobStore,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) fence: Arc<Fence>,
    /// Wakes the artifact rehydrator when a request finds a blob missing.
    pub(crate) rehydrate_nudge: tokio::sync::Notify,
}

impl Boundary {
    /// Creates or reconciles every stream and bucket, and loads every cursor.
    pub async fn start(
        config: &ControllerConfig,
        substrate: &Substrate,
        metrics: Arc<Metrics>,
        fence: Arc<Fence>,
    ) -> Result<Boundary, BsfgError> {
        let mut store_buffers = HashMap::new();
        for (name, class) in &config.classes {
            let b = FactBuffer::ensure(
                substrate,
                Buffer::Store(name.clone()),
                class.max_age,
                class.max_bytes.as_u64(),
                config.store.group_commit.clone(),
            )
            .await?;
            store_buffers.insert(name.clone(), b);
        }
        let mut forward_buffers = HashMap::new();
        for peer in config.peers.keys() {
            let b = FactBuffer::ensure(
                substrate,
                Buffer::Forward(peer.clone()),
                config.store.forward_max_age,
                config.store.forward_max_bytes.as_u64(),
                config.store.group_commit.clone(),
            )
            .await?;
            forward_buffers.insert(peer.clone(), b);
        }
        let cursors = CursorStore::open(substrate).await?;
        let mut consumers = HashMap::new();
        for (name, c) in &config.consumers {
            let source = Source::parse(&c.source, config.limits.max_name_len)?;
            let buffer = match source.buffer() {
                Buffer::Store(class) => store_buffers[&class].clone(),
                Buffer::Forward(peer) => forward_buffers[&peer].clone(),
            };
            let initial = c.start.initial_cursor(buffer.last_offset().await?);
            let stored = cursors.load_or_init(name, initial).await?;
            let label = ConsumerLabel {
                consumer: name.clone(),
            };
            metrics
                .frontier_offset
                .get_or_create(&label)
                .set(stored.offset as i64);
            consumers.insert(
                name.clone(),
                ConsumerState {
                    filter: source.subject_filter(),
                    buffer,
                    label,
                    cursor: tokio::sync::Mutex::new(CursorCache {
                        stored,
                        delivered: None,
                    }),
                },
            );
        }
        let index = ArtifactIndex::open(substrate).await?;
        let blobs = BlobStore::open(&config.store.artifact_dir).map_err(|e| {
            Reason::Internal.err(format!(
                "artifact directory {}: {e}",
                config.store.artifact_dir.display()
            ))
        })?;
        Ok(Boundary {
            zone: config.zone.clone(),
            node: config.node.clone(),
            limits: config.limits.clone(),
            policy: Policy::from_config(config),
            store_buffers,
            forward_buffers,
            consumers,
            cursors,
            index,
            blobs,
            metrics,
            fence,
            rehydrate_nudge: tokio::sync::Notify::new(),
        })
    }

    pub fn zone(&self) -> &str {
        &self.zone
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn store_buffers(&self) -> &HashMap<String, FactBuffer> {
        &self.store_buffers
    }

    pub fn forward_buffers(&self) -> &HashMap<String, FactBuffer> {
        &self.forward_buffers
    }

    pub fn artifact_index(&self) -> &ArtifactIndex {
        &self.index
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Consumer name → confirmed cursor, for /status.
    pub async fn cursor_report(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (name, c) in &self.consumers {
            out.push((name.clone(), c.cursor.lock().await.stored.offset));
        }
        out.sort();
        out
    }

    /// Re-reads every buffer's fill from JetStream (on a timer).
    /// Re-reads each consumer's backlog: a one-fact read from its cursor
    /// (JetStream reports how many more match), so the gauge stays current
    /// even for a consumer nobody fetches from.
    pub async fn refresh_backlog(&self) {
        for c in self.consumers.values() {
            let after = c.cursor.lock().await.stored.offset;
            match c.buffer.page(&c.filter, after, 1).await {
                Ok(page) => {
                    let backlog = page.records.len() as u64 + page.backlog;
                    self.metrics
                        .consumer_backlog
                        .get_or_create(&c.label)
                        .set(backlog as i64);
                }
                Err(e) => tracing::debug!(error = %e, "backlog refresh failed"),
            }
        }
    }

    pub async fn refresh_fill(&self) {
        for (class, buffer) in &self.store_buffers {
            match buffer.refresh_fill().await {
                Ok(()) => {
                    if let Some(m) = self.metrics.class(class) {
                        m.fill_percent.set(buffer.fill().percent());
                    }
                }
                Err(e) => tracing::debug!(class, error = %e, "fill refresh failed"),
            }
        }
    }
}
