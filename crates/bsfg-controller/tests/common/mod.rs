//! A zone for controller tests: a real nats-server cluster, a test CA, the
//! real controller binary, and clients for the producer and reader identities.

use bsfg_client::connect::ConnectClient;
use bsfg_client::pb::*;
use bsfg_client::{BoundaryServiceClient, connect_grpc};
use bsfg_core::config::{ControllerConfig, TlsFiles};
use bsfg_testkit::controller::{RunningController, loopback_server_identity, test_config};
use bsfg_testkit::nats::NatsCluster;
use bsfg_testkit::pki::TestPki;
use tonic::transport::Channel;

pub const ZONE: &str = "plant-a";

pub struct Zone {
    pub nats: NatsCluster,
    pub pki: TestPki,
    pub dir: tempfile::TempDir,
    pub controller: RunningController,
    pub producer: TlsFiles,
    pub reader: TlsFiles,
}

impl Zone {
    /// 3-node R3 cluster, one controller.
    pub async fn start3() -> Zone {
        Self::start(NatsCluster::start3().await, 3, |_| {}).await
    }

    /// One nats-server, R1.
    pub async fn start1_with(tweak: impl FnOnce(&mut ControllerConfig)) -> Zone {
        Self::start(NatsCluster::start1().await, 1, tweak).await
    }

    pub async fn start(
        nats: NatsCluster,
        replicas: usize,
        tweak: impl FnOnce(&mut ControllerConfig),
    ) -> Zone {
        let pki = TestPki::new(ZONE);
        let dir = tempfile::tempdir().unwrap();
        let server = loopback_server_identity(&pki, "plant-a-bsfg");
        let mut config = test_config(
            ZONE,
            "alpha",
            &nats.client_url(0),
            replicas,
            &server,
            dir.path(),
        );
        tweak(&mut config);
        let controller = RunningController::start(config, dir.path()).await;
        let producer = pki.client("mes-producer").tls_files();
        let reader = pki.client("erp-reader").tls_files();
        Zone {
            nats,
            pki,
            dir,
            controller,
            producer,
            reader,
        }
    }

    pub fn grpc(&self, who: &TlsFiles) -> BoundaryServiceClient<Channel> {
        connect_grpc(&self.controller.endpoint(), who).unwrap()
    }

    pub fn connect(&self, who: &TlsFiles) -> ConnectClient {
        ConnectClient::new(&self.controller.endpoint(), who).unwrap()
    }

    /// Restarts the controller process with the same configuration.
    pub async fn restart_controller(&mut self) {
        assert_eq!(
            self.controller.stop().await,
            Some(0),
            "clean stop:\n{}",
            self.controller.log_tail(30)
        );
        let config = self.controller.config.clone();
        self.controller = RunningController::start(config, self.dir.path()).await;
    }
}

pub fn fact(message_id: &str, subject: &str, json: &str) -> Fact {
    Fact {
        envelope: Some(Envelope {
            message_id: message_id.into(),
            from_zone: ZONE.into(),
            to_zone: "enterprise".into(),
            produced_at_unix_ms: 1_780_000_000_000,
            ..Default::default()
        }),
        subject: subject.into(),
        predicate: "has_status".into(),
        object_json: json.into(),
    }
}

pub fn append_req(class: &str, fact: Fact) -> AppendFactRequest {
    AppendFactRequest {
        stream_class: class.into(),
        fact: Some(fact),
    }
}

/// The reason token of a gRPC error (from google.rpc.ErrorInfo).
pub fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let info = status
        .get_details_error_info()
        .expect("every error carries ErrorInfo");
    assert_eq!(info.domain, "bsfg.dev");
    assert!(
        status.message().starts_with(&info.reason),
        "message starts with the reason: {}",
        status.message()
    );
    info.reason
}

/// Fetches every fact of `consumer` from its cursor on, without confirming.
pub async fn fetch_all(
    client: &mut BoundaryServiceClient<Channel>,
    consumer: &str,
) -> Vec<StoredFact> {
    client
        .fetch_facts(FetchFactsRequest {
            consumer_name: consumer.into(),
            limit: 1000,
        })
        .await
        .expect("fetch")
        .into_inner()
        .facts
}

/// Reads `consumer` to its end, confirming page after page; returns how often
/// each message id was delivered (every value is 1 when nothing is duplicated).
pub async fn drain(
    client: &mut BoundaryServiceClient<Channel>,
    consumer: &str,
) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    loop {
        let page = client
            .fetch_facts(FetchFactsRequest {
                consumer_name: consumer.into(),
                limit: 1000,
            })
            .await
            .expect("fetch")
            .into_inner()
            .facts;
        let Some(last) = page.last().map(|f| f.offset) else {
            return counts;
        };
        for f in page {
            let id = f
                .fact
                .and_then(|f| f.envelope)
                .map(|e| e.message_id)
                .unwrap_or_default();
            *counts.entry(id).or_insert(0) += 1;
        }
        client
            .confirm_receipt(ConfirmReceiptRequest {
                consumer_name: consumer.into(),
                offset: last,
            })
            .await
            .expect("confirm");
    }
}
