//! The zone lease as JetStream holds it: the key read from the bucket's
//! leader (`bsfg_store::LeaseStore`, the controller's own reader) through
//! one host's nats-server, from inside that host's namespace.

use crate::netns::runtime::NetnsRuntime;
use anyhow::{Context, Result};
use bsfg_core::lease::Observation;
use bsfg_store::{LeaseStore, Substrate};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// One read of the lease key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseSample {
    /// The host named by the key (`None`: vacant). A record whose TTL ran
    /// out still names its writer until someone writes the key again.
    pub holder: Option<String>,
    pub revision: Option<u64>,
}

/// A connection to one host's nats-server that reads the lease key.
#[derive(Debug, Clone)]
pub struct LeaseWatch {
    rt: Arc<NetnsRuntime>,
    store: LeaseStore,
}

impl LeaseWatch {
    /// Connects through the nats-server of the host `rt` runs in, as
    /// `conn` says (a user allowed to read the lease bucket).
    pub async fn connect(
        rt: Arc<NetnsRuntime>,
        conn: bsfg_core::config::NatsConnection,
        bucket: &str,
    ) -> Result<LeaseWatch> {
        let bucket = bucket.to_owned();
        let store = rt
            .run(move || async move {
                let s = Substrate::connect(&conn, 3, "bsfg-zonesim-lease-watch").await?;
                LeaseStore::open(&s, &bucket).await
            })
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("opening the lease bucket")?;
        Ok(LeaseWatch { rt, store })
    }

    /// The key now; `None` if it could not be read within `timeout`.
    pub async fn read(&self, timeout: Duration) -> Option<LeaseSample> {
        let store = self.store.clone();
        let obs = self
            .rt
            .run(move || async move { tokio::time::timeout(timeout, store.read()).await })
            .await
            .ok()?
            .ok()?
            .ok()?;
        Some(match obs {
            Observation::Vacant { revision } => LeaseSample {
                holder: None,
                revision,
            },
            Observation::Held { record, revision } => LeaseSample {
                holder: Some(record.host),
                revision: Some(revision),
            },
        })
    }
}
