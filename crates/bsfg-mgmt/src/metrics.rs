//! The metric families each daemon serves on `GET /metrics` (OpenMetrics,
//! contract section 9). The daemons register exactly these (a unit test in
//! each compares its encoded registry with this table); the alert rules and
//! the dashboard under `ops/` may name only their series.

/// One metric family: what a daemon registers, and what the rules may query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricFamily {
    /// The registered name; a counter's series carries `_total`, a
    /// histogram's `_bucket`, `_sum` and `_count` ([`MetricFamily::series`]).
    pub name: &'static str,
    pub kind: Kind,
    /// Label names, in the order the daemon encodes them.
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    /// The OpenMetrics `# TYPE` word.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

impl MetricFamily {
    /// The series names a scrape of this family offers.
    pub fn series(&self) -> Vec<String> {
        match self.kind {
            Kind::Counter => vec![format!("{}_total", self.name)],
            Kind::Gauge => vec![self.name.to_owned()],
            Kind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|s| format!("{}{s}", self.name))
                .collect(),
        }
    }
}

const fn family(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricFamily {
    MetricFamily {
        name,
        kind,
        labels,
        help,
    }
}

/// Both daemons export their build, so a rule can compare alpha with beta
/// during and after a rolling upgrade (`daemon` is the binary's package
/// name, `version` its release).
pub const BUILD_INFO: MetricFamily = family(
    "bsfg_build_info",
    Kind::Gauge,
    &["daemon", "version"],
    "Always 1; the labels name the running binary and its version",
);

/// The controller's families.
pub mod controller {
    pub use super::BUILD_INFO;
    use super::{Kind::*, MetricFamily, family};

    pub const APPEND_REQUESTS: MetricFamily = family(
        "bsfg_append_requests",
        Counter,
        &["class"],
        "AppendFact requests, by stream class",
    );
    pub const APPEND_DUPLICATES: MetricFamily = family(
        "bsfg_append_duplicates",
        Counter,
        &["class"],
        "AppendFact retries answered as duplicates",
    );
    pub const STORE_BUFFER_FILL_PERCENT: MetricFamily = family(
        "bsfg_store_buffer_fill_percent",
        Gauge,
        &["class"],
        "Store buffer fill, percent of max_bytes",
    );
    pub const APPEND_FAILURES: MetricFamily = family(
        "bsfg_append_failures",
        Counter,
        &["class", "reason"],
        "AppendFact failures, by class and reason",
    );
    pub const APPEND_LATENCY_SECONDS: MetricFamily = family(
        "bsfg_append_latency_seconds",
        Histogram,
        &[],
        "AppendFact latency",
    );
    pub const FETCH_REQUESTS: MetricFamily = family(
        "bsfg_fetch_requests",
        Counter,
        &["consumer"],
        "FetchFacts requests, by consumer",
    );
    pub const CONFIRM_REQUESTS: MetricFamily = family(
        "bsfg_confirm_requests",
        Counter,
        &["consumer"],
        "ConfirmReceipt requests, by consumer",
    );
    pub const FRONTIER_OFFSET: MetricFamily = family(
        "bsfg_frontier_offset",
        Gauge,
        &["consumer"],
        "Confirmed cursor of each consumer",
    );
    pub const LAST_CONFIRM_TIMESTAMP_SECONDS: MetricFamily = family(
        "bsfg_last_confirm_timestamp_seconds",
        Gauge,
        &["consumer"],
        "Unix time of the last cursor advance, by consumer",
    );
    pub const RPC_REQUESTS: MetricFamily = family(
        "bsfg_rpc_requests",
        Counter,
        &["method", "code"],
        "RPCs by method and status code",
    );
    pub const RPC_LATENCY_SECONDS: MetricFamily = family(
        "bsfg_rpc_latency_seconds",
        Histogram,
        &["method"],
        "RPC latency by method",
    );
    pub const TLS_HANDSHAKE_FAILURES: MetricFamily = family(
        "bsfg_tls_handshake_failures",
        Counter,
        &[],
        "Failed TLS handshakes on the service port: refused (no, expired or foreign client certificate, a TLS alert, a protocol error) or timed out; not those the client abandoned",
    );
    pub const TLS_HANDSHAKES_ABANDONED: MetricFamily = family(
        "bsfg_tls_handshakes_abandoned",
        Counter,
        &[],
        "TLS handshakes on the service port that the client ended by closing the connection, without a TLS alert (clients giving up, e.g. at their attempt timeout while the VIP moves)",
    );
    pub const LISTEN: MetricFamily = family(
        "bsfg_listen",
        Gauge,
        &["address"],
        "The address the service port is bound to (1 once bound): the VIP, never a wildcard",
    );
    pub const CONSUMER_BACKLOG: MetricFamily = family(
        "bsfg_consumer_backlog",
        Gauge,
        &["consumer"],
        "Facts of each consumer's source after its cursor",
    );
    pub const CONTROLLER_SERVING: MetricFamily = family(
        "bsfg_controller_serving",
        Gauge,
        &[],
        "1 while this controller serves requests",
    );
    pub const LEASE_HELD: MetricFamily = family(
        "bsfg_lease_held",
        Gauge,
        &[],
        "1 while this controller holds the zone lease",
    );
    pub const LEASE_RENEWALS: MetricFamily = family(
        "bsfg_lease_renewals",
        Counter,
        &[],
        "Successful lease writes",
    );
    pub const LEASE_WRITE_FAILURES: MetricFamily = family(
        "bsfg_lease_write_failures",
        Counter,
        &[],
        "Lease writes that failed or timed out",
    );
    pub const LEASE_REMAINING_SECONDS: MetricFamily = family(
        "bsfg_lease_remaining_seconds",
        Gauge,
        &[],
        "Time until this controller fences itself without a renewal",
    );
    pub const REPLICATION_LAG_SECONDS: MetricFamily = family(
        "bsfg_replication_lag_seconds",
        Gauge,
        &["peer"],
        "How far behind each peer zone this zone may be: the age of the newest fact of the last page when it was stored here, or the time since a round last completed if longer (it grows while the peer cannot be reached)",
    );
    pub const REPLICATION_BACKLOG: MetricFamily = family(
        "bsfg_replication_backlog",
        Gauge,
        &["peer"],
        "Facts known to wait at each peer",
    );
    pub const REPLICATION_REJECTED: MetricFamily = family(
        "bsfg_replication_rejected",
        Counter,
        &["peer", "reason"],
        "Facts from peers not materialised, by reason",
    );
    pub const ARTIFACT_TRANSFER_FAILURES: MetricFamily = family(
        "bsfg_artifact_transfer_failures",
        Counter,
        &["peer"],
        "Artifacts from peers that failed size or digest verification",
    );
    pub const REPLICATED_FACTS: MetricFamily = family(
        "bsfg_replicated_facts",
        Counter,
        &["peer"],
        "Facts pulled from each peer zone",
    );
    pub const ARTIFACTS_REHYDRATING: MetricFamily = family(
        "bsfg_artifacts_rehydrating",
        Gauge,
        &[],
        "Artifacts being fetched back from peers",
    );
    pub const ARTIFACTS_REHYDRATED: MetricFamily = family(
        "bsfg_artifacts_rehydrated",
        Counter,
        &[],
        "Artifacts fetched back from peers",
    );
    /// The zone's streams (store buffers `facts_<class>`, forward buffers
    /// `fwd_<peer>`, KV buckets `KV_<bucket>`), as each stream's RAFT
    /// leader reports them to the active controller. A stream whose leader
    /// does not answer reports 0 replicas current and no leader.
    pub const STREAM_REPLICAS: MetricFamily = family(
        "bsfg_stream_replicas",
        Gauge,
        &["stream"],
        "Configured replicas of each stream of the zone (store buffers, forward buffers, KV buckets)",
    );
    pub const STREAM_REPLICAS_CURRENT: MetricFamily = family(
        "bsfg_stream_replicas_current",
        Gauge,
        &["stream"],
        "Replicas of each stream current as its leader reports them: the leader plus every follower current and online; 0 while no leader answers",
    );
    pub const STREAM_LEADER: MetricFamily = family(
        "bsfg_stream_leader",
        Gauge,
        &["stream"],
        "1 while the stream has a RAFT leader that answers, 0 while none does (appends or cursor writes to it stall)",
    );
    pub const STREAM_REPLICA_LAG: MetricFamily = family(
        "bsfg_stream_replica_lag",
        Gauge,
        &["stream"],
        "RAFT entries the furthest-behind online follower of each stream lags its leader (an offline follower counts as not current instead)",
    );

    pub const ALL: &[MetricFamily] = &[
        APPEND_REQUESTS,
        APPEND_DUPLICATES,
        STORE_BUFFER_FILL_PERCENT,
        APPEND_FAILURES,
        APPEND_LATENCY_SECONDS,
        FETCH_REQUESTS,
        CONFIRM_REQUESTS,
        FRONTIER_OFFSET,
        LAST_CONFIRM_TIMESTAMP_SECONDS,
        RPC_REQUESTS,
        RPC_LATENCY_SECONDS,
        TLS_HANDSHAKE_FAILURES,
        TLS_HANDSHAKES_ABANDONED,
        LISTEN,
        CONSUMER_BACKLOG,
        CONTROLLER_SERVING,
        LEASE_HELD,
        LEASE_RENEWALS,
        LEASE_WRITE_FAILURES,
        LEASE_REMAINING_SECONDS,
        REPLICATION_LAG_SECONDS,
        REPLICATION_BACKLOG,
        REPLICATION_REJECTED,
        ARTIFACT_TRANSFER_FAILURES,
        REPLICATED_FACTS,
        ARTIFACTS_REHYDRATING,
        ARTIFACTS_REHYDRATED,
        STREAM_REPLICAS,
        STREAM_REPLICAS_CURRENT,
        STREAM_LEADER,
        STREAM_REPLICA_LAG,
        BUILD_INFO,
    ];
}

/// The gate agent's families.
pub mod agent {
    pub use super::BUILD_INFO;
    use super::{Kind::*, MetricFamily, family};

    pub const GATE_STATE: MetricFamily = family(
        "bsfg_gate_state",
        Gauge,
        &["gate"],
        "Promotion gate verdict (1 pass or warn, 0 fail)",
    );
    pub const VRRP_STATE: MetricFamily = family(
        "bsfg_vrrp_state",
        Gauge,
        &["state"],
        "Keepalived VRRP state last reported (1 for the current state)",
    );
    pub const ROLE: MetricFamily = family(
        "bsfg_gate_agent_role",
        Gauge,
        &["state"],
        "The agent's role (1 for the current role)",
    );
    pub const CONTROLLER_ACTIVE: MetricFamily = family(
        "bsfg_controller_active",
        Gauge,
        &[],
        "1 while the controller runs here and reports ready",
    );
    pub const ROLE_TRANSITIONS: MetricFamily = family(
        "bsfg_role_transitions",
        Counter,
        &[],
        "Role changes of this agent (alert on a high rate: churn)",
    );
    pub const LEASE_REMAINING_SECONDS: MetricFamily = family(
        "bsfg_lease_remaining_seconds",
        Gauge,
        &[],
        "Time until another host may take the zone lease, measured here",
    );
    pub const LEASE_HOLDER: MetricFamily = family(
        "bsfg_lease_holder",
        Gauge,
        &["host"],
        "1 for the host holding the zone lease",
    );
    pub const CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS: MetricFamily = family(
        "bsfg_certificate_expiry_timestamp_seconds",
        Gauge,
        &[],
        "Unix time the controller certificate (certificate.path) expires; 0 if unreadable",
    );
    pub const CA_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS: MetricFamily = family(
        "bsfg_ca_certificate_expiry_timestamp_seconds",
        Gauge,
        &["role", "path", "subject"],
        "Unix time each CA certificate the controller relies on expires: role intermediate (further certificates of certificate.path) or CA (certificate.trust)",
    );
    pub const CONTROLLER_CREDENTIAL_PRESENT: MetricFamily = family(
        "bsfg_controller_credential_present",
        Gauge,
        &["credential", "path"],
        "1 while the controller credential file (controller.credentials) is present, 0 while missing",
    );
    pub const NATS_SERVER_INFO: MetricFamily = family(
        "bsfg_nats_server_info",
        Gauge,
        &["version"],
        "1 for the version the local nats-server announced on the agent's connection; absent while not connected",
    );
    pub const JETSTREAM_VOTERS_CURRENT: MetricFamily = family(
        "bsfg_jetstream_voters_current",
        Gauge,
        &["view"],
        "JetStream meta-group voters current as the local server sees them (gate 3): view leader (exact: the leader tracks every follower) or follower (itself and the leader at most); 0 without a meta leader, absent while /jsz is unreadable",
    );
    pub const TIME_SYNCHRONISED: MetricFamily = family(
        "bsfg_time_synchronised",
        Gauge,
        &[],
        "1 while chronyd reports this host's clock synchronised within time_sync.max_offset; 0 otherwise, also while chronyd cannot be asked and with time_sync.policy off",
    );
    pub const TIME_OFFSET_SECONDS: MetricFamily = family(
        "bsfg_time_offset_seconds",
        Gauge,
        &[],
        "This host's clock offset from true time as chronyd tracks it (positive: fast); 0 while unknown (bsfg_time_synchronised is then 0)",
    );

    pub const ALL: &[MetricFamily] = &[
        GATE_STATE,
        VRRP_STATE,
        ROLE,
        CONTROLLER_ACTIVE,
        ROLE_TRANSITIONS,
        LEASE_REMAINING_SECONDS,
        LEASE_HOLDER,
        CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS,
        CA_CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS,
        CONTROLLER_CREDENTIAL_PRESENT,
        BUILD_INFO,
        NATS_SERVER_INFO,
        JETSTREAM_VOTERS_CURRENT,
        TIME_SYNCHRONISED,
        TIME_OFFSET_SECONDS,
    ];
}

/// What `bsfgctl backup --metrics-file` writes after each run (gamma's
/// bsfg-backup.service; served by the node exporter's textfile collector).
pub mod backup {
    use super::{Kind::*, MetricFamily, family};

    pub const LAST_SUCCESS_TIMESTAMP_SECONDS: MetricFamily = family(
        "bsfg_backup_last_success_timestamp_seconds",
        Gauge,
        &[],
        "When the newest verified snapshot finished (Unix seconds)",
    );
    pub const LAST_SUCCESS_BYTES: MetricFamily = family(
        "bsfg_backup_last_success_bytes",
        Gauge,
        &[],
        "Size of the newest verified snapshot (all streams, compressed)",
    );
    pub const LAST_RUN_SUCCESS: MetricFamily = family(
        "bsfg_backup_last_run_success",
        Gauge,
        &[],
        "1 if the last run snapshotted and read back every stream, else 0",
    );
    pub const LAST_RUN_TIMESTAMP_SECONDS: MetricFamily = family(
        "bsfg_backup_last_run_timestamp_seconds",
        Gauge,
        &[],
        "When the last snapshot run ended (Unix seconds)",
    );

    pub const ALL: &[MetricFamily] = &[
        LAST_SUCCESS_TIMESTAMP_SECONDS,
        LAST_SUCCESS_BYTES,
        LAST_RUN_SUCCESS,
        LAST_RUN_TIMESTAMP_SECONDS,
    ];
}

/// The metrics file of `bsfgctl backup-artifacts` on alpha and beta (node
/// exporter textfile collector): the scheduled snapshots of each service
/// host's artifact store.
pub mod artifact_backup {
    use super::{Kind::*, MetricFamily, family};

    pub const LAST_SUCCESS_TIMESTAMP_SECONDS: MetricFamily = family(
        "bsfg_artifact_backup_last_success_timestamp_seconds",
        Gauge,
        &[],
        "When the newest verified artifact snapshot finished (Unix seconds)",
    );
    pub const LAST_SUCCESS_BLOBS: MetricFamily = family(
        "bsfg_artifact_backup_last_success_blobs",
        Gauge,
        &[],
        "Blobs in the newest verified artifact snapshot",
    );
    pub const LAST_SUCCESS_BYTES: MetricFamily = family(
        "bsfg_artifact_backup_last_success_bytes",
        Gauge,
        &[],
        "Size of the newest verified artifact snapshot (all blobs, linked ones included)",
    );
    pub const LAST_SUCCESS_COPIED_BYTES: MetricFamily = family(
        "bsfg_artifact_backup_last_success_copied_bytes",
        Gauge,
        &[],
        "Bytes the newest verified artifact snapshot copied (the rest are hard links to the previous one)",
    );
    pub const LAST_RUN_SUCCESS: MetricFamily = family(
        "bsfg_artifact_backup_last_run_success",
        Gauge,
        &[],
        "1 if the last run copied and verified every blob, else 0",
    );
    pub const LAST_RUN_TIMESTAMP_SECONDS: MetricFamily = family(
        "bsfg_artifact_backup_last_run_timestamp_seconds",
        Gauge,
        &[],
        "When the last artifact snapshot run ended (Unix seconds)",
    );

    pub const ALL: &[MetricFamily] = &[
        LAST_SUCCESS_TIMESTAMP_SECONDS,
        LAST_SUCCESS_BLOBS,
        LAST_SUCCESS_BYTES,
        LAST_SUCCESS_COPIED_BYTES,
        LAST_RUN_SUCCESS,
        LAST_RUN_TIMESTAMP_SECONDS,
    ];
}

/// The families an OpenMetrics exposition declares (`# TYPE` lines), with
/// the label names of their first sample: what a daemon's unit test
/// compares with its table.
pub fn declared(exposition: &str) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for l in exposition.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (it.next(), it.next()) {
                out.push((name.to_owned(), kind.to_owned(), Vec::new()));
            }
        } else if !l.starts_with('#')
            && let Some((name, rest)) = l.split_once('{')
            && let Some(last) = out.last_mut()
            && last.2.is_empty()
            && name.starts_with(last.0.as_str())
        {
            let labels = rest.split_once('}').map_or("", |(l, _)| l);
            last.2 = labels
                .split(',')
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.trim().to_owned()))
                .filter(|k| k != "le")
                .collect();
        }
    }
    out
}

/// Compares an exposition with a table: `Err` names every family missing,
/// extra, of another kind, or with other labels.
pub fn check(exposition: &str, table: &[MetricFamily]) -> Result<(), String> {
    let seen = declared(exposition);
    let mut problems = Vec::new();
    for f in table {
        match seen.iter().find(|(n, _, _)| n == f.name) {
            None => problems.push(format!("{} not exported", f.name)),
            Some((_, kind, labels)) => {
                if kind != f.kind.name() {
                    problems.push(format!(
                        "{} is a {kind}, the contract says {}",
                        f.name,
                        f.kind.name()
                    ));
                }
                if labels
                    .iter()
                    .map(String::as_str)
                    .ne(f.labels.iter().copied())
                {
                    problems.push(format!(
                        "{} has labels {labels:?}, the contract says {:?}",
                        f.name, f.labels
                    ));
                }
            }
        }
    }
    for (n, _, _) in &seen {
        if !table.iter().any(|f| f.name == n) {
            problems.push(format!("{n} exported but not in the contract"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_of_each_kind_and_a_checked_exposition() {
        assert_eq!(
            agent::ROLE_TRANSITIONS.series(),
            ["bsfg_role_transitions_total"]
        );
        assert_eq!(controller::RPC_LATENCY_SECONDS.series().len(), 3);
        let text = "# HELP bsfg_gate_state x\n# TYPE bsfg_gate_state gauge\n\
                    bsfg_gate_state{gate=\"vip\"} 1\n\
                    # TYPE bsfg_role_transitions counter\nbsfg_role_transitions_total 3\n# EOF\n";
        let table = [agent::GATE_STATE, agent::ROLE_TRANSITIONS];
        assert_eq!(check(text, &table), Ok(()));
        let e = check(text, &[agent::GATE_STATE, agent::LEASE_HOLDER]).unwrap_err();
        assert!(e.contains("bsfg_lease_holder not exported"), "{e}");
        assert!(
            e.contains("bsfg_role_transitions exported but not in the contract"),
            "{e}"
        );
    }

    #[test]
    fn names_are_unique_per_daemon() {
        for table in [controller::ALL, agent::ALL] {
            let mut names: Vec<_> = table.iter().map(|f| f.name).collect();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), table.len());
        }
    }
}
