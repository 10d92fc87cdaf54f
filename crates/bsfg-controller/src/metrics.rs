//! Prometheus metrics, named as in the contract (section 9).
//!
//! Hot-path counters are created once per stream class at start-up and kept
//! as handles, so an append touches no map and allocates nothing for metrics.

use bsfg_mgmt::metrics::{MetricFamily, controller as contract};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};
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
pub struct StreamLabel {
    pub stream: String,
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabel {
    pub daemon: &'static str,
    pub version: &'static str,
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
    pub tls_handshakes_abandoned: Counter,
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
    pub stream_replicas: Family<StreamLabel, Gauge>,
    pub stream_replicas_current: Family<StreamLabel, Gauge>,
    pub stream_leader: Family<StreamLabel, Gauge>,
    pub stream_replica_lag: Family<StreamLabel, Gauge>,
}

/// Registers `metric` under its family in the management contract.
fn register(r: &mut Registry, family: &MetricFamily, metric: impl Metric) {
    r.register(family.name, family.help, metric);
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
        register(&mut registry, &contract::APPEND_REQUESTS, append_requests);
        register(
            &mut registry,
            &contract::APPEND_DUPLICATES,
            append_duplicates,
        );
        register(&mut registry, &contract::STORE_BUFFER_FILL_PERCENT, fill);
        let build = Family::<BuildLabel, Gauge>::default();
        build
            .get_or_create(&BuildLabel {
                daemon: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        register(&mut registry, &contract::BUILD_INFO, build);
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
            tls_handshakes_abandoned: Counter::default(),
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
            stream_replicas: Family::default(),
            stream_replicas_current: Family::default(),
            stream_leader: Family::default(),
            stream_replica_lag: Family::default(),
        };
        m.register_all()
    }

    fn register_all(mut self) -> Metrics {
        let r = &mut self.registry;
        register(r, &contract::APPEND_FAILURES, self.append_failures.clone());
        register(
            r,
            &contract::APPEND_LATENCY_SECONDS,
            self.append_latency.clone(),
        );
        register(r, &contract::FETCH_REQUESTS, self.fetch_requests.clone());
        register(
            r,
            &contract::CONFIRM_REQUESTS,
            self.confirm_requests.clone(),
        );
        register(r, &contract::FRONTIER_OFFSET, self.frontier_offset.clone());
        register(
            r,
            &contract::LAST_CONFIRM_TIMESTAMP_SECONDS,
            self.last_confirm_seconds.clone(),
        );
        register(r, &contract::RPC_REQUESTS, self.rpc_requests.clone());
        register(r, &contract::RPC_LATENCY_SECONDS, self.rpc_latency.clone());
        register(
            r,
            &contract::TLS_HANDSHAKE_FAILURES,
            self.tls_handshake_failures.clone(),
        );
        register(
            r,
            &contract::TLS_HANDSHAKES_ABANDONED,
            self.tls_handshakes_abandoned.clone(),
        );
        register(r, &contract::LISTEN, self.listen_info.clone());
        register(
            r,
            &contract::CONSUMER_BACKLOG,
            self.consumer_backlog.clone(),
        );
        register(r, &contract::CONTROLLER_SERVING, self.serving.clone());
        register(r, &contract::LEASE_HELD, self.lease_held.clone());
        register(r, &contract::LEASE_RENEWALS, self.lease_renewals.clone());
        register(
            r,
            &contract::LEASE_WRITE_FAILURES,
            self.lease_write_failures.clone(),
        );
        register(
            r,
            &contract::LEASE_REMAINING_SECONDS,
            self.lease_remaining_seconds.clone(),
        );
        register(
            r,
            &contract::REPLICATION_LAG_SECONDS,
            self.replication_lag_seconds.clone(),
        );
        register(
            r,
            &contract::REPLICATION_BACKLOG,
            self.replication_backlog.clone(),
        );
        register(
            r,
            &contract::REPLICATION_REJECTED,
            self.replication_rejected.clone(),
        );
        register(
            r,
            &contract::ARTIFACT_TRANSFER_FAILURES,
            self.artifact_transfer_failures.clone(),
        );
        register(
            r,
            &contract::REPLICATED_FACTS,
            self.replicated_facts.clone(),
        );
        register(
            r,
            &contract::ARTIFACTS_REHYDRATING,
            self.artifacts_rehydrating.clone(),
        );
        register(
            r,
            &contract::ARTIFACTS_REHYDRATED,
            self.artifacts_rehydrated.clone(),
        );
        register(r, &contract::STREAM_REPLICAS, self.stream_replicas.clone());
        register(
            r,
            &contract::STREAM_REPLICAS_CURRENT,
            self.stream_replicas_current.clone(),
        );
        register(r, &contract::STREAM_LEADER, self.stream_leader.clone());
        register(
            r,
            &contract::STREAM_REPLICA_LAG,
            self.stream_replica_lag.clone(),
        );
        self
    }

    /// Every known stream's replica health (a refresh replaces them all).
    pub fn set_stream_replicas(&self, streams: &[bsfg_store::StreamReplicas]) {
        for s in streams {
            let l = StreamLabel {
                stream: s.stream.clone(),
            };
            self.stream_replicas
                .get_or_create(&l)
                .set(s.configured as i64);
            self.stream_replicas_current
                .get_or_create(&l)
                .set(s.current as i64);
            self.stream_leader
                .get_or_create(&l)
                .set(s.has_leader as i64);
            self.stream_replica_lag
                .get_or_create(&l)
                .set(s.max_lag as i64);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family given one sample: an empty labelled family is not encoded.
    fn sampled() -> Metrics {
        let m = Metrics::new(["operational".to_owned()]);
        m.append_failed("operational", "store_buffer_full");
        m.rpc_done("AppendFact", "OK", 0.01);
        let consumer = ConsumerLabel {
            consumer: "erp-orders".into(),
        };
        m.fetch_requests.get_or_create(&consumer).inc();
        m.confirm_requests.get_or_create(&consumer).inc();
        m.frontier_offset.get_or_create(&consumer).set(1);
        m.last_confirm_seconds.get_or_create(&consumer).set(1);
        m.consumer_backlog.get_or_create(&consumer).set(1);
        m.set_stream_replicas(&[bsfg_store::StreamReplicas::leaderless(
            "facts_operational",
            3,
        )]);
        m.listen_info
            .get_or_create(&AddressLabel {
                address: "10.0.0.100:9443".into(),
            })
            .set(1);
        let peer = PeerLabel {
            peer: "enterprise".into(),
        };
        m.replication_lag_seconds.get_or_create(&peer).set(0.1);
        m.replication_backlog.get_or_create(&peer).set(1);
        m.replicated_facts.get_or_create(&peer).inc();
        m.artifact_transfer_failures.get_or_create(&peer).inc();
        m.replication_rejected
            .get_or_create(&PeerReason {
                peer: "enterprise".into(),
                reason: "zone_mismatch".into(),
            })
            .inc();
        m
    }

    #[test]
    fn exports_exactly_the_contract_families() {
        let text = sampled().encode();
        bsfg_mgmt::metrics::check(&text, contract::ALL).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}
