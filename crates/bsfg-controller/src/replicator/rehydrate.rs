//! Artifact rehydration after a failover.
//!
//! Artifacts live on the disk of the host whose controller stored them; the
//! zone-wide index (JetStream, R3) survives a host. After a failover the new
//! active host knows blobs it lacks; `GetObject` answers `artifact_rehydrating`
//! for them while this task fetches them back from peer zones that hold a copy
//! (the origin zone first, then every other peer), verifying size and digest.
//! Artifacts no peer holds stay listed as unavailable in `/status`: the
//! Triad-HA pattern recovers those from backup (an accepted limitation).

use super::{PeerLink, fetch_artifact};
use crate::boundary::Boundary;
use bsfg_client::pb::ArtifactRef;
use bsfg_mgmt::controller::Rehydration;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Rehydrator {
    boundary: Arc<Boundary>,
    links: Vec<PeerLink>,
    retry: Duration,
    status: Arc<Mutex<Rehydration>>,
}

impl Rehydrator {
    pub fn new(
        boundary: Arc<Boundary>,
        links: Vec<PeerLink>,
        retry: Duration,
    ) -> (Rehydrator, Arc<Mutex<Rehydration>>) {
        let status = Arc::new(Mutex::new(Rehydration::default()));
        (
            Rehydrator {
                boundary,
                links,
                retry,
                status: status.clone(),
            },
            status,
        )
    }

    pub async fn run(self, stop: CancellationToken) {
        loop {
            if self.boundary.fence.is_serving() {
                self.scan().await;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.boundary.rehydrate_nudge.notified() => {}
                _ = tokio::time::sleep(self.retry) => {}
            }
        }
    }

    async fn scan(&self) {
        let records = match self.boundary.artifact_index().list().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "rehydration: cannot list the artifact index");
                return;
            }
        };
        let mut missing = Vec::new();
        for r in records {
            if !self.boundary.blobs().holds(&r.digest, r.size).await {
                missing.push(r);
            }
        }
        self.boundary
            .metrics
            .artifacts_rehydrating
            .set(missing.len() as i64);
        let mut unavailable = Vec::new();
        let mut fetched = 0;
        for (i, rec) in missing.iter().enumerate() {
            let reference = ArtifactRef {
                bucket: rec.bucket.clone(),
                key: rec.key.clone(),
                digest: rec.digest.clone(),
                size: rec.size,
                media_type: rec.media_type.clone(),
            };
            // Origin zone first: it certainly had the blob.
            let mut links: Vec<&PeerLink> = self.links.iter().collect();
            links.sort_by_key(|l| Some(&l.zone) != rec.origin_zone.as_ref());
            let mut done = false;
            for link in links {
                match fetch_artifact(&self.boundary, link, &reference).await {
                    Ok(()) => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(peer = %link.zone, key = %rec.key, error = %e, "rehydration attempt")
                    }
                }
            }
            if done {
                fetched += 1;
                self.boundary.metrics.artifacts_rehydrated.inc();
                tracing::info!(bucket = %rec.bucket, key = %rec.key, "artifact rehydrated from a peer zone");
            } else {
                unavailable.push(format!("{}/{}", rec.bucket, rec.key));
            }
            self.boundary
                .metrics
                .artifacts_rehydrating
                .set((missing.len() - i - 1 + unavailable.len()) as i64);
        }
        if !unavailable.is_empty() {
            tracing::warn!(
                count = unavailable.len(),
                "artifacts no peer zone could supply; restore them from backup"
            );
        }
        if let Ok(mut s) = self.status.lock() {
            s.pending = unavailable.len();
            s.fetched += fetched;
            s.unavailable = unavailable;
            s.scans += 1;
        }
    }
}
