//! The connection to the local NATS server.

use crate::errors::unavailable;
use async_nats::jetstream;
use bsfg_core::BsfgError;
use bsfg_core::config::NatsConnection;
use std::time::Duration;

/// A connected client and its JetStream context, cheap to clone.
#[derive(Clone)]
pub struct Substrate {
    client: async_nats::Client,
    js: jetstream::Context,
    replicas: usize,
    request_timeout: Duration,
}

impl std::fmt::Debug for Substrate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Substrate")
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

impl Substrate {
    /// Connects to NATS. `replicas` is used for every stream and bucket created.
    pub async fn connect(
        conn: &NatsConnection,
        replicas: usize,
        name: &str,
    ) -> Result<Substrate, BsfgError> {
        let mut opts = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(conn.connect_timeout)
            .request_timeout(Some(conn.request_timeout))
            // Reconnect forever: the local server restarting is routine; callers see
            // timeouts (substrate_unavailable) meanwhile, never a dead client.
            .max_reconnects(None)
            .retry_on_initial_connect();
        if let Some(creds) = &conn.credentials {
            opts = opts
                .credentials_file(creds)
                .await
                .map_err(|e| unavailable("reading NATS credentials", e))?;
        }
        if let Some(path) = &conn.user_password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| unavailable("reading NATS user/password file", e))?;
            let (user, pass) = text.trim().split_once(':').ok_or_else(|| {
                unavailable("NATS user/password file", "expected one line user:password")
            })?;
            opts = opts.user_and_password(user.into(), pass.into());
        }
        match (&conn.user, &conn.password_file) {
            (Some(user), Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    unavailable(&format!("reading NATS password file {}", path.display()), e)
                })?;
                opts = opts.user_and_password(
                    user.clone(),
                    text.trim_end_matches(['\n', '\r']).to_owned(),
                );
            }
            (None, None) => {}
            _ => {
                return Err(unavailable(
                    "NATS user",
                    "nats.user and nats.password_file go together",
                ));
            }
        }
        let client = tokio::time::timeout(conn.connect_timeout, opts.connect(conn.url.as_str()))
            .await
            .map_err(|_| {
                unavailable(
                    "connecting to NATS",
                    format!("no answer from {} in {:?}", conn.url, conn.connect_timeout),
                )
            })?
            .map_err(|e| unavailable("connecting to NATS", e))?;
        // retry_on_initial_connect returns before the connection exists; wait for it.
        let deadline = tokio::time::Instant::now() + conn.connect_timeout;
        while client.connection_state() != async_nats::connection::State::Connected {
            if tokio::time::Instant::now() > deadline {
                return Err(unavailable(
                    "connecting to NATS",
                    format!("{} did not accept a connection", conn.url),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut js = jetstream::new(client.clone());
        js.set_timeout(conn.request_timeout);
        Ok(Substrate {
            client,
            js,
            replicas,
            request_timeout: conn.request_timeout,
        })
    }

    /// Connects with defaults to `url` (tests and tools).
    pub async fn connect_url(url: &str, replicas: usize) -> Result<Substrate, BsfgError> {
        let conn = NatsConnection {
            url: url.to_owned(),
            ..Default::default()
        };
        Self::connect(&conn, replicas, "bsfg").await
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// Runs a set-up step (creating a stream or bucket, electing its leader) until
/// it succeeds, retrying while JetStream is not ready — a freshly formed or
/// recovering cluster answers its first API requests late — for at most
/// `budget`. Any other failure, and the last unavailability, are returned.
pub async fn retry_while_unavailable<T, F, Fut>(
    what: &str,
    budget: Duration,
    mut step: F,
) -> Result<T, BsfgError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BsfgError>>,
{
    let deadline = tokio::time::Instant::now() + budget;
    let mut backoff =
        bsfg_core::retry::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut warning = bsfg_core::retry::RepeatedWarning::new(Duration::from_secs(1));
    loop {
        match step().await {
            Ok(v) => return Ok(v),
            Err(e)
                if e.reason == bsfg_core::Reason::SubstrateUnavailable
                    && tokio::time::Instant::now() < deadline =>
            {
                if let Some(n) = warning.occurred(crate::monotonic_now()) {
                    tracing::warn!(error = %e, failures_since_last_report = n, "{what}: JetStream not ready, retrying");
                }
                tokio::time::sleep(backoff.next_delay(rand::random())).await;
            }
            Err(e) => return Err(e),
        }
    }
}
