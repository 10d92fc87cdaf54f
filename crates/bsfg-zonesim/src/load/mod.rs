//! The load generator and the read-back, run inside the client namespace.
//!
//! Producers append facts with unique `message_id`s through the VIP over
//! gRPC with mutual TLS, as a correct producer does: an append that fails or
//! does not answer in time is retried with the *same* id and payload until
//! it is acknowledged (the controller answers a repeat as `duplicate`), on a
//! fresh connection (a connection to a host that died stays silent). Every
//! acknowledgement is timestamped, so drills measure the failover gap and
//! the longest stall from it.
//!
//! The read-back pages through a declared consumer (FetchFacts, then
//! ConfirmReceipt of the page's last offset) until it is empty; it sees every
//! fact of the store buffer that the consumer's filter selects.

use anyhow::{Context, Result, bail};
use bsfg_client::{BoundaryServiceClient, connect_grpc, pb};
use bsfg_core::config::TlsFiles;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::netns::runtime::NetnsRuntime;
use crate::zone::workload::Workload;

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Concurrent producers (each appends one fact at a time).
    pub producers: usize,
    /// Pause after an acknowledged append, per producer.
    pub pause: Duration,
    /// One attempt's deadline for producer 0; then the same fact is retried
    /// on a new connection.
    pub attempt_timeout: Duration,
    /// Producer `i` waits `attempt_timeout + i * attempt_timeout_step`, so the
    /// producers' retries after a host dies do not all fall into the same
    /// instants (that would make first-ack times a multiple of one timeout).
    pub attempt_timeout_step: Duration,
    /// Pause between attempts of the same fact.
    pub retry_pause: Duration,
    /// `message_id` prefix, unique per run.
    pub prefix: String,
}

impl LoadConfig {
    pub fn new(prefix: &str) -> LoadConfig {
        LoadConfig {
            producers: 6,
            pause: Duration::from_millis(40),
            attempt_timeout: Duration::from_millis(200),
            attempt_timeout_step: Duration::from_millis(50),
            retry_pause: Duration::from_millis(20),
            prefix: prefix.to_owned(),
        }
    }
}

/// One acknowledged append. Times are since the drill's epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub id: String,
    /// When the first attempt was sent.
    pub first_try: Duration,
    /// When the successful attempt was sent.
    pub last_try: Duration,
    pub acked: Duration,
    pub attempts: u32,
    /// The controller recognised a repeat (an earlier attempt had been stored).
    pub duplicate: bool,
}

#[derive(Debug, Clone, Default)]
pub struct LoadLog {
    pub acks: Vec<Ack>,
    /// Failed attempts by reason.
    pub failures: BTreeMap<String, u64>,
    pub attempts: u64,
    /// Ids given up when the load was abandoned (never acknowledged, so not "lost").
    pub abandoned: Vec<String>,
}

/// The running producers.
#[derive(Debug)]
pub struct Load {
    log: Arc<Mutex<LoadLog>>,
    stop: CancellationToken,
    abandon: CancellationToken,
    finished: Vec<tokio::sync::oneshot::Receiver<()>>,
}

/// The fact for `id`, identical on every retry.
pub fn fact_request(
    w: &Workload,
    prefix: &str,
    id: &str,
    seq: u64,
    produced_at_unix_ms: i64,
) -> pb::AppendFactRequest {
    pb::AppendFactRequest {
        stream_class: w.class.clone(),
        fact: Some(pb::Fact {
            envelope: Some(pb::Envelope {
                message_id: id.to_owned(),
                from_zone: w.zone.clone(),
                to_zone: w.zone.clone(),
                produced_at_unix_ms,
                ..Default::default()
            }),
            subject: format!("{}:zonesim/{id}", w.kind),
            predicate: "appended".into(),
            object_json: serde_json::json!({ "run": prefix, "seq": seq }).to_string(),
        }),
    }
}

/// Short failure label: the gRPC code and the BSFG reason token.
pub fn failure_label(status: &tonic::Status) -> String {
    let reason = bsfg_client::reason_of(status);
    let mut label = format!("{:?}: {reason}", status.code());
    label.truncate(80);
    label
}

impl Load {
    /// Starts `config.producers` producers in `client` (the client namespace).
    pub fn start(
        client: &NetnsRuntime,
        endpoint: &str,
        tls: &TlsFiles,
        workload: &Workload,
        epoch: Instant,
        config: &LoadConfig,
    ) -> Result<Load> {
        let log = Arc::new(Mutex::new(LoadLog::default()));
        let stop = CancellationToken::new();
        let abandon = CancellationToken::new();
        let counter = Arc::new(AtomicU64::new(0));
        let mut finished = Vec::new();
        for i in 0..config.producers {
            let (tx, rx) = tokio::sync::oneshot::channel();
            finished.push(rx);
            let p = Producer {
                attempt_timeout: config.attempt_timeout + config.attempt_timeout_step * i as u32,
                endpoint: endpoint.to_owned(),
                tls: tls.clone(),
                workload: workload.clone(),
                config: config.clone(),
                epoch,
                counter: counter.clone(),
                log: log.clone(),
                stop: stop.clone(),
                abandon: abandon.clone(),
            };
            client.spawn(move || async move {
                p.run().await;
                let _ = tx.send(());
            })?;
        }
        Ok(Load {
            log,
            stop,
            abandon,
            finished,
        })
    }

    /// A shared read view, for conditions drills poll.
    pub fn view(&self) -> LoadView {
        LoadView(self.log.clone())
    }

    /// A copy of what happened so far.
    pub fn snapshot(&self) -> LoadLog {
        self.log.lock().expect("load log").clone()
    }

    /// Acknowledgements so far.
    pub fn acked(&self) -> usize {
        self.log.lock().expect("load log").acks.len()
    }

    /// Stops starting new facts and waits (up to `grace`) for every fact in
    /// flight to be acknowledged; what is still unacknowledged then is abandoned.
    pub async fn stop(self, grace: Duration) -> LoadLog {
        self.stop.cancel();
        let all = futures_join(self.finished);
        if tokio::time::timeout(grace, all).await.is_err() {
            self.abandon.cancel();
        }
        // The producers return promptly once abandoned.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut log = self.log.lock().expect("load log").clone();
        log.acks.sort_by_key(|a| a.acked);
        log
    }
}

/// Read access to a running load's log.
#[derive(Debug, Clone)]
pub struct LoadView(Arc<Mutex<LoadLog>>);

impl LoadView {
    /// Every id acknowledged so far.
    pub fn acked_ids(&self) -> std::collections::BTreeSet<String> {
        let log = self.0.lock().expect("load log");
        log.acks.iter().map(|a| a.id.clone()).collect()
    }

    /// Acknowledgements of attempts sent at or after `t`.
    pub fn acked_after(&self, t: Duration) -> usize {
        self.0
            .lock()
            .expect("load log")
            .acks
            .iter()
            .filter(|a| a.last_try >= t)
            .count()
    }
}

async fn futures_join(rxs: Vec<tokio::sync::oneshot::Receiver<()>>) {
    for rx in rxs {
        let _ = rx.await;
    }
}

struct Producer {
    attempt_timeout: Duration,
    endpoint: String,
    tls: TlsFiles,
    workload: Workload,
    config: LoadConfig,
    epoch: Instant,
    counter: Arc<AtomicU64>,
    log: Arc<Mutex<LoadLog>>,
    stop: CancellationToken,
    abandon: CancellationToken,
}

impl Producer {
    fn client(&self) -> Option<BoundaryServiceClient<Channel>> {
        match connect_grpc(&self.endpoint, &self.tls) {
            Ok(c) => Some(c),
            Err(e) => {
                self.fail(format!("client: {e}"));
                None
            }
        }
    }

    fn fail(&self, label: String) {
        let mut log = self.log.lock().expect("load log");
        log.attempts += 1;
        *log.failures.entry(label).or_default() += 1;
    }

    async fn run(self) {
        let mut client = self.client();
        while !self.stop.is_cancelled() {
            let seq = self.counter.fetch_add(1, Ordering::Relaxed);
            let id = format!("{}-{seq:07}", self.config.prefix);
            let req = fact_request(
                &self.workload,
                &self.config.prefix,
                &id,
                seq,
                bsfg_core::clock::unix_ms(),
            );
            let first_try = self.epoch.elapsed();
            let mut attempts = 0;
            loop {
                attempts += 1;
                let last_try = self.epoch.elapsed();
                let outcome = match client.as_mut() {
                    None => None,
                    Some(c) => Some(
                        tokio::time::timeout(self.attempt_timeout, c.append_fact(req.clone()))
                            .await,
                    ),
                };
                match outcome {
                    Some(Ok(Ok(resp))) => {
                        let acked = self.epoch.elapsed();
                        let mut log = self.log.lock().expect("load log");
                        log.attempts += 1;
                        log.acks.push(Ack {
                            id,
                            first_try,
                            last_try,
                            acked,
                            attempts,
                            duplicate: resp.into_inner().duplicate,
                        });
                        break;
                    }
                    Some(Ok(Err(status))) => {
                        self.fail(failure_label(&status));
                        client = self.client();
                    }
                    Some(Err(_)) => {
                        self.fail("timeout".into());
                        client = self.client();
                    }
                    None => client = self.client(),
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.config.retry_pause) => {}
                    _ = self.abandon.cancelled() => {}
                }
                if self.abandon.is_cancelled() {
                    self.log.lock().expect("load log").abandoned.push(id);
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.pause) => {}
                _ = self.stop.cancelled() => {}
            }
        }
    }
}

/// One append, retried with the same request (same id and payload) until
/// acknowledged or `timeout`; the response says whether the controller
/// called it a duplicate. A rejection ([`bsfg_client::is_rejection`]) ends
/// it at once: retrying would get the same answer.
pub async fn append_one(
    endpoint: &str,
    tls: &TlsFiles,
    req: pb::AppendFactRequest,
    timeout: Duration,
) -> Result<pb::AppendFactResponse> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let mut c = connect_grpc(endpoint, tls).context("gRPC client")?;
        match tokio::time::timeout(Duration::from_secs(2), c.append_fact(req.clone())).await {
            Ok(Ok(r)) => return Ok(r.into_inner()),
            Ok(Err(s)) if bsfg_client::is_rejection(&s) => {
                bail!("rejected: {:?}: {}", s.code(), s.message())
            }
            Ok(Err(s)) => last = format!("{:?}: {}", s.code(), s.message()),
            Err(_) => last = "timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("not acknowledged within {timeout:?}: {last}")
}

/// The example zone's artifact bucket (hosts/zone.nix `buckets`).
pub const ARTIFACT_BUCKET: &str = "drawings";

/// Uploads one artifact (`PutObject`, header then 16 KiB chunks) through
/// `endpoint`, one attempt within `timeout`.
pub async fn put_object(
    endpoint: &str,
    tls: &TlsFiles,
    bucket: &str,
    key: &str,
    data: &[u8],
    timeout: Duration,
) -> Result<pb::PutObjectResponse> {
    use pb::put_object_request::Part;
    let mut msgs = vec![pb::PutObjectRequest {
        part: Some(Part::Header(pb::ObjectHeader {
            bucket: bucket.into(),
            key: key.into(),
            media_type: "application/octet-stream".into(),
            size: data.len() as u64,
        })),
    }];
    msgs.extend(data.chunks(16 * 1024).map(|c| pb::PutObjectRequest {
        part: Some(Part::Chunk(c.to_vec())),
    }));
    let put = async {
        let mut c = connect_grpc(endpoint, tls).context("gRPC client")?;
        let r = c
            .put_object(futures::stream::iter(msgs))
            .await
            .map_err(|s| anyhow::anyhow!("{:?}: {}", s.code(), s.message()))?;
        Ok(r.into_inner())
    };
    tokio::time::timeout(timeout, put)
        .await
        .with_context(|| format!("PutObject {bucket}/{key}: no answer within {timeout:?}"))?
}

/// What the read-back found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadBack {
    /// (offset, message_id) in stream order, each offset once.
    pub facts: Vec<(u64, String)>,
    /// Time spent on empty pages before more facts appeared: pages are read
    /// from the nearest replica, and one that lags (a host just back from a
    /// partition) answers short until it has caught up.
    pub stale_s: f64,
    /// When each id was stored in the buffer read (JetStream's timestamp of
    /// its first occurrence, Unix ms): replication drills compare the two
    /// zones' buffers.
    pub stored_at_ms: BTreeMap<String, i64>,
}

impl ReadBack {
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.facts.iter().map(|(_, id)| id.as_str())
    }
}

/// Reads every fact the consumer selects, from its cursor on, confirming
/// page by page, until every id in `expected` was seen, or no new fact
/// appeared for `quiet` (an empty page is not the end while acknowledged
/// ids are missing: a lagging replica may have answered). Transient failures
/// are retried until `timeout`; a page fetched twice counts once (by offset).
pub async fn read_back(
    endpoint: &str,
    tls: &TlsFiles,
    consumer: &str,
    expected: &BTreeSet<String>,
    quiet: Duration,
    timeout: Duration,
) -> Result<ReadBack> {
    let deadline = Instant::now() + timeout;
    let mut seen = BTreeSet::new();
    let mut found: BTreeSet<String> = BTreeSet::new();
    let mut out = ReadBack::default();
    let mut client = connect_grpc(endpoint, tls).context("gRPC client")?;
    let mut last_error = String::new();
    let mut empty_since: Option<Instant> = None;
    loop {
        if Instant::now() > deadline {
            bail!(
                "read-back through consumer {consumer} incomplete after {timeout:?}: {last_error}"
            );
        }
        let page = tokio::time::timeout(
            Duration::from_secs(5),
            client.fetch_facts(pb::FetchFactsRequest {
                consumer_name: consumer.to_owned(),
                limit: 1000,
            }),
        )
        .await;
        let facts = match page {
            Ok(Ok(r)) => r.into_inner().facts,
            Ok(Err(s)) => {
                last_error = format!("{}: {}", failure_label(&s), s.message());
                tokio::time::sleep(Duration::from_millis(200)).await;
                client = connect_grpc(endpoint, tls).context("gRPC client")?;
                continue;
            }
            Err(_) => {
                last_error = "fetch timed out".into();
                client = connect_grpc(endpoint, tls).context("gRPC client")?;
                continue;
            }
        };
        let Some(last) = facts.last().map(|f| f.offset) else {
            if expected.iter().all(|id| found.contains(id)) {
                return Ok(out);
            }
            let since = *empty_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= quiet {
                return Ok(out);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        if let Some(since) = empty_since.take() {
            out.stale_s += since.elapsed().as_secs_f64();
        }
        for f in facts {
            if seen.insert(f.offset) {
                let id = f
                    .fact
                    .and_then(|f| f.envelope)
                    .map(|e| e.message_id)
                    .unwrap_or_default();
                found.insert(id.clone());
                out.stored_at_ms
                    .entry(id.clone())
                    .or_insert(f.stored_at_unix_ms);
                out.facts.push((f.offset, id));
            }
        }
        let confirmed = tokio::time::timeout(
            Duration::from_secs(5),
            client.confirm_receipt(pb::ConfirmReceiptRequest {
                consumer_name: consumer.to_owned(),
                offset: last,
            }),
        )
        .await;
        if !matches!(confirmed, Ok(Ok(_))) {
            last_error = format!("confirm {last}: {confirmed:?}");
            client = connect_grpc(endpoint, tls).context("gRPC client")?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            zone: "plant-a".into(),
            class: "operational".into(),
            kind: "order".into(),
            producer: "mes-producer".into(),
            consumer: "erp-orders".into(),
            reader: "erp-reader".into(),
        }
    }

    #[test]
    fn a_retry_sends_the_identical_fact() {
        let w = workload();
        let a = fact_request(&w, "run1", "run1-0000007", 7, 1_780_000_000_000);
        let b = fact_request(&w, "run1", "run1-0000007", 7, 1_780_000_000_000);
        assert_eq!(a, b);
        let f = a.fact.unwrap();
        let valid = bsfg_core::fact::validate(&f, &bsfg_core::Limits::default()).unwrap();
        assert_eq!(valid.kind, "order", "filed under the consumer's kind");
        assert_eq!(f.subject, "order:zonesim/run1-0000007");
        let env = f.envelope.unwrap();
        assert_eq!(env.message_id, "run1-0000007");
        assert_eq!(env.from_zone, "plant-a");
        assert_eq!(a.stream_class, "operational");
    }

    #[test]
    fn failure_labels_carry_code_and_reason() {
        let s = tonic::Status::unavailable("not_serving: the zone lease is held by alpha");
        assert_eq!(failure_label(&s), "Unavailable: not_serving");
    }
}
