//! The I/O half of a drill's report: once the scenario ended, where the
//! VIP and the controllers are, the load's and the checker's logs, and
//! every fact read back through the VIP (and, for replication drills, from
//! the peer's own store). [`super::assess`] turns it into the report.

use super::READ_BACK_QUIET;
use super::checker::Sample;
use super::ctx::Ctx;
use crate::load::{self, LoadLog, ReadBack};
use crate::netns;
use crate::observe::Readiness;
use crate::observe::jsz::Placement;
use crate::report::ZoneFacts;
use crate::zone::Zone;
use crate::zone::peer::{AUDIT_CONSUMER, PEER};
use anyhow::{Context, Result};
use bsfg_core::config::TlsFiles;
use std::collections::BTreeSet;
use std::time::Duration;

/// What a drill run left behind.
#[derive(Debug, Clone)]
pub struct EndState {
    pub zone: ZoneFacts,
    pub run_dir: String,
    pub placement_after: Option<Placement>,
    /// Hosts holding the VIP at the end, in role order.
    pub vip: Vec<String>,
    /// Service hosts whose controller serves at the end, in role order.
    pub serving: Vec<String>,
    pub log: LoadLog,
    pub samples: Vec<Sample>,
    /// Drill time when the load and the checker were stopped.
    pub end: Duration,
    /// The zone's store buffer (or, with a peer, its forward buffer), read
    /// back through the VIP; `Err` says why it could not be.
    pub read: Result<ReadBack, String>,
    /// The peer's own store buffer, read back (replication drills only).
    pub at_peer: Option<Result<ReadBack, String>>,
    /// The gate agent's log on the host the VIP should move to.
    pub target_agent_log: Option<String>,
}

/// Stops the load and the checker and reads the zone's end state.
pub async fn collect(zone: &Zone, ctx: &mut Ctx) -> Result<EndState> {
    let placement_after = zone.any_placement().await.ok();
    let role_order = |h: &String| {
        zone.spec
            .host_names()
            .iter()
            .position(|n| n == h)
            .unwrap_or(usize::MAX)
    };
    let mut vip = zone.vip_holders().await.unwrap_or_default();
    vip.sort_by_key(role_order);
    let mut serving = Vec::new();
    for h in zone.spec.service_hosts() {
        if matches!(zone.readiness(h).await, Ok(Readiness::Serving)) {
            serving.push(h.to_owned());
        }
    }
    let log = match ctx.load.take() {
        Some(load) => load.stop(Duration::from_secs(30)).await,
        None => ctx.load_log.take().context("no load")?,
    };
    let samples = ctx.checker.take().context("no checker")?.stop().await;
    let end = ctx.now();
    let expected: BTreeSet<String> = log
        .acks
        .iter()
        .map(|a| a.id.clone())
        .chain(ctx.extra_acked.iter().cloned())
        .collect();
    // The read-back: the zone's store buffer, or what it replicated from
    // the peer (its forward buffer), through the VIP either way.
    let (reader, consumer) = match &ctx.peer {
        Some(p) => (p.forward_reader.clone(), p.plan.forward_consumer.clone()),
        None => (zone.client_tls().1, zone.workload.consumer.clone()),
    };
    let read = read_back(
        zone,
        netns::CLIENT,
        zone.spec.endpoint(),
        reader,
        consumer,
        expected.clone(),
    )
    .await;
    // Replication drills also read the peer's own store back (its audit
    // consumer): what the peer stored and when, for the lag figures.
    let at_peer = match &ctx.peer {
        Some(p) => Some(
            read_back(
                zone,
                PEER,
                p.plan.endpoint.clone(),
                p.producer.clone(),
                AUDIT_CONSUMER.to_owned(),
                expected,
            )
            .await,
        ),
        None => None,
    };
    let target_agent_log = ctx.target.as_ref().map(|t| zone.agent_log(t));
    Ok(EndState {
        zone: ZoneFacts {
            zone: zone.spec.zone.clone(),
            zone_file: zone.state().zone_file.display().to_string(),
            vrrp_version: zone.spec.vrrp.version,
            advert_interval_ms: zone.spec.vrrp.advert_interval_ms,
            lease_ttl: zone.spec.lease.ttl.clone(),
        },
        run_dir: zone.run_dir.display().to_string(),
        placement_after,
        vip,
        serving,
        log,
        samples,
        end,
        read,
        at_peer,
        target_agent_log,
    })
}

/// Reads `consumer` back through `endpoint` as `tls`, from inside `ns`,
/// until every id of `expected` was seen or the read-back gives up.
async fn read_back(
    zone: &Zone,
    ns: &'static str,
    endpoint: String,
    tls: TlsFiles,
    consumer: String,
    expected: BTreeSet<String>,
) -> Result<ReadBack, String> {
    zone.in_ns(ns, move || async move {
        load::read_back(
            &endpoint,
            &tls,
            &consumer,
            &expected,
            READ_BACK_QUIET,
            Duration::from_secs(120),
        )
        .await
    })
    .await
    .and_then(|r| r)
    .map_err(|e| format!("{e:#}"))
}
