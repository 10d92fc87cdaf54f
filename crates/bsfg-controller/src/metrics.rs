//! Prometheus metrics, named as in the contract (section 9).
//!
//! Hot-path counters are created once per stream class at start-up and kept
//! as handles, so an append touches no map and allocates nothing for metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassReason {
    pub class: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabel {
    pub consumer: String,
}

/// Static strings: looking these up allocates nothing on the request path.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodCode {
    pub method: &'static str,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AddressLabel {
    pub address: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerReason {
    pub peer: String,
    pub reason: String,
}

/// Per-class handles used on the append path.
#[derive(Clone, Debug)]
pub struct ClassMetrics {
    pub requests: Counter,
    pub duplicates: Counter,
    pub fill_percent: Gauge<f64, AtomicU64>,
}

pub struct Metrics {
    pub registry: Registry,
    classes: HashMap<String, ClassMetrics>,
    pub append_failures: Family<ClassReason, Counter>,
    pub append_latency: Histogram,
    pub fetch_requests: Family<ConsumerLabel, Counter>,
    pub confirm_requests: Family<ConsumerLabel, Counter>,
    pub frontier_offset: Family<ConsumerLabel, Gauge>,
    pub last_confirm_seconds: Family<ConsumerLabel, Gauge>,
    pub rpc_requests: Family<MethodCode, Counter>,
    pub rpc_latency: Family<MethodLabel, Histogram>,
    pub tls_handshake_failures: Counter,
    pub serving: Gauge,
    pub listen_info: Family<AddressLabel, Gauge>,
    pub consumer_backlog: Family<ConsumerLabel, Gauge>,
    pub lease_held: Gauge,
    pub lease_renewals: Counter,
    pub lease_write_failures: Counter,
    pub lease_remaining_seconds: Gauge<f64, AtomicU64>,
    pub replication_lag_seconds: Family<PeerLabel, Gauge<f64, AtomicU64>>,
    pub replication_backlog: Family<PeerLabel, Gauge>,
    pub replicated_facts: Family<PeerLabel, Counter>,
    pub replication_rejected: Family<PeerReason, Counter>,
    pub artifact_transfer_failures: Family<PeerLabel, Counter>,
    pub artifacts_rehydrating: Gauge,
    pub artifacts_rehydrated: Counter,
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~13 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Metrics {
    pub fn new(classes: impl IntoIterator<Item = String>) -> Metrics {
        let mut registry = Registry::default();
        let append_requests = Family::<ClassLabel, Counter>::default();
        let append_duplicates = Family::<ClassLabel, Counter>::default();
        let fill = Family::<ClassLabel, Gauge<f64, AtomicU64>>::default();
        let class_metrics = classes
            .into_iter()
            .map(|class| {
                let label = ClassLabel {
                    class: class.clone(),
                };
                let m = ClassMetrics {
                    requests: append_requests.get_or_create(&label).clone(),
                    duplicates: append_duplicates.get_or_create(&label).clone(),
                    fill_percent: fill.get_or_create(&label).clone(),
                };
                (class, m)
            })
            .collect();
        registry.register(
            "bsfg_append_requests",
            "AppendFact requests, by stream class",
            append_requests,
        );
        registry.register(
            "bsfg_append_duplicates",
            "AppendFact retries answered as duplicates",
            append_duplicates,
        );
        registry.register(
            "bsfg_store_buffer_fill_percent",
            "Store buffer fill, percent of max_bytes",
            fill,
        );
        let m = Metrics {
            registry,
            classes: class_metrics,
            append_failures: Family::default(),
            append_latency: latency_histogram(),
            fetch_requests: Family::default(),
            confirm_requests: Family::default(),
            frontier_offset: Family::default(),
            last_confirm_seconds: Family::default(),
            rpc_requests: Family::default(),
            rpc_latency: Family::new_with_constructor(latency_histogram),
            tls_handshake_failures: Counter::default(),
            serving: Gauge::default(),
            listen_info: Family::default(),
            consumer_backlog: Family::default(),
            lease_held: Gauge::default(),
            lease_renewals: Counter::default(),
            lease_write_failures: Counter::default(),
            lease_remaining_seconds: Gauge::default(),
            replication_lag_seconds: Family::default(),
            replication_backlog: Family::default(),
            replicated_facts: Family::default(),
            replication_rejected: Family::default(),
            artifact_transfer_failures: Family::default(),
            artifacts_rehydrating: Gauge::default(),
            artifacts_rehydrated: Counter::default(),
        };
        m.register_all()
    }

    fn register_all(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "bsfg_append_failures",
            "AppendFact failures, by class and reason",
            self.append_failures.clone(),
        );
        r.register(
            "bsfg_append_latency_seconds",
            "AppendFact latency",
            self.append_latency.clone(),
        );
        r.register(
            "bsfg_fetch_requests",
            "FetchFacts requests, by consumer",
            self.fetch_requests.clone(),
        );
        r.register(
            "bsfg_confirm_requests",
            "ConfirmReceipt requests, by consumer",
            self.confirm_requests.clone(),
        );
        r.register(
            "bsfg_frontier_offset",
            "Confirmed cursor of each consumer",
            self.frontier_offset.clone(),
        );
        r.register(
            "bsfg_last_confirm_timestamp_seconds",
            "Unix time of the last cursor advance, by consumer",
            self.last_confirm_seconds.clone(),
        );
        r.register(
            "bsfg_rpc_requests",
            "RPCs by method and status code",
            self.rpc_requests.clone(),
        );
        r.register(
            "bsfg_rpc_latency_seconds",
            "RPC latency by method",
            self.rpc_latency.clone(),
        );
        r.register(
            "bsfg_tls_handshake_failures",
            "Failed TLS handshakes on the service port",
            self.tls_handshake_failures.clone(),
        );
        r.register(
            "bsfg_listen",
            "The address the service port is bound to (1 once bound): the VIP, never a wildcard",
            self.listen_info.clone(),
        );
        r.register(
            "bsfg_consumer_backlog",
            "Facts of each consumer's source after its cursor",
            self.consumer_backlog.clone(),
        );
        r.register(
            "bsfg_controller_serving",
            "1 while this controller serves requests",
            self.serving.clone(),
        );
        r.register(
            "bsfg_lease_held",
            "1 while this controller holds the zone lease",
            self.lease_held.clone(),
        );
        r.register(
            "bsfg_lease_renewals",
            "Successful lease writes",
            self.lease_renewals.clone(),
        );
        r.register(
            "bsfg_lease_write_failures",
            "Lease writes that failed or timed out",
            self.lease_write_failures.clone(),
        );
        r.register(
            "bsfg_lease_remaining_seconds",
            "Time until this controller fences itself without a renewal",
            self.lease_remaining_seconds.clone(),
        );
        r.register(
            "bsfg_replication_lag_seconds",
            "Age of the newest fact pulled from each peer zone when it was stored",
            self.replication_lag_seconds.clone(),
        );
        r.register(
            "bsfg_replication_backlog",
            "Facts known to wait at each peer",
            self.replication_backlog.clone(),
        );
        r.register(
            "bsfg_replication_rejected",
            "Facts from peers not materialised, by reason",
            self.replication_rejected.clone(),
        );
        r.register(
            "bsfg_artifact_transfer_failures",
            "Artifacts from peers that failed size or digest verification",
            self.artifact_transfer_failures.clone(),
        );
        r.register(
            "bsfg_replicated_facts",
            "Facts pulled from each peer zone",
            self.replicated_facts.clone(),
        );
        r.register(
            "bsfg_artifacts_rehydrating",
            "Artifacts being fetched back from peers",
            self.artifacts_rehydrating.clone(),
        );
        r.register(
            "bsfg_artifacts_rehydrated",
            "Artifacts fetched back from peers",
            self.artifacts_rehydrated.clone(),
        );
        self
    }

    pub fn class(&self, class: &str) -> Option<&ClassMetrics> {
        self.classes.get(class)
    }

    pub fn append_failed(&self, class: &str, reason: &str) {
        self.append_failures
            .get_or_create(&ClassReason {
                class: class.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn rpc_done(&self, method: &'static str, code: &'static str, seconds: f64) {
        self.rpc_requests
            .get_or_create(&MethodCode { method, code })
            .inc();
        self.rpc_latency
            .get_or_create(&MethodLabel { method })
            .observe(seconds);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
