//! nats-server's stream snapshot and restore API, as natscli uses it
//! (there is no natscli on the appliance):
//!
//! - snapshot: `$JS.API.STREAM.SNAPSHOT.<stream>` with a deliver subject;
//!   the server answers with the stream's configuration and state, then
//!   sends the archive in chunks to the deliver subject. A chunk with a
//!   reply subject is acknowledged by an empty message to it (flow
//!   control); an empty message ends the transfer, with status 204 when it
//!   succeeded, 408 or 500 and a reason when it did not.
//! - restore: `$JS.API.STREAM.RESTORE.<stream>` with configuration and
//!   state; the server answers with a subject to send chunks to. Each chunk
//!   is a request the server answers (empty: stored; JSON: an error); an
//!   empty request ends it and is answered with the restored stream's info.

use super::manifest::StreamState;
use async_nats::{Client, RequestErrorKind};
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Chunk size asked of the server and sent on restore (the server's default).
const CHUNK: usize = 128 * 1024;
/// Longest silence of the server during a transfer.
const IDLE: Duration = Duration::from_secs(30);
/// Status of the snapshot's final message when it succeeded.
const STATUS_END_OK: u16 = 204;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Nats(String),
    /// nats-server refused, with its JetStream error code (`err_code`).
    #[error("nats-server refused: {description} (code {code}, err_code {err_code})")]
    Refused {
        code: u16,
        err_code: u16,
        description: String,
    },
    #[error("no message from nats-server for {0:?}")]
    Stalled(Duration),
    #[error("nats-server ended the snapshot with status {status}: {reason}")]
    Aborted { status: u16, reason: String },
    #[error("writing the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected answer from nats-server: {0}")]
    Protocol(String),
    /// No server took an API request (the JetStream API is not up yet on
    /// the server: a cluster just formed or restarted). Nothing happened,
    /// so the request may be sent again.
    #[error("no responders: the JetStream API does not answer yet")]
    NoResponders,
}

fn nats(e: impl std::fmt::Display) -> WireError {
    WireError::Nats(e.to_string())
}

/// JetStream's error code for "stream not found".
pub const ERR_STREAM_NOT_FOUND: u16 = 10059;

#[derive(Debug, Deserialize)]
struct ApiError {
    code: u16,
    #[serde(default)]
    err_code: u16,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
struct Answer {
    error: Option<ApiError>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

async fn api(
    client: &Client,
    subject: String,
    body: serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, WireError> {
    let payload = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    let msg = client
        .request(subject, payload)
        .await
        .map_err(|e| match e.kind() {
            RequestErrorKind::NoResponders => WireError::NoResponders,
            _ => nats(e),
        })?;
    answer(&msg.payload)
}

fn answer(payload: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, WireError> {
    let a: Answer =
        serde_json::from_slice(payload).map_err(|e| WireError::Protocol(e.to_string()))?;
    match a.error {
        Some(e) => Err(WireError::Refused {
            code: e.code,
            err_code: e.err_code,
            description: e.description,
        }),
        None => Ok(a.rest),
    }
}

/// Every stream of the account, sorted.
pub async fn stream_names(client: &Client) -> Result<Vec<String>, WireError> {
    let mut names = Vec::new();
    loop {
        let a = api(
            client,
            "$JS.API.STREAM.NAMES".into(),
            json!({ "offset": names.len() }),
        )
        .await?;
        let page: Vec<String> = a
            .get("streams")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| WireError::Protocol(e.to_string()))?
            .unwrap_or_default();
        let total = a.get("total").and_then(|t| t.as_u64()).unwrap_or(0) as usize;
        let done = page.is_empty();
        names.extend(page);
        if done || names.len() >= total {
            break;
        }
    }
    names.sort();
    Ok(names)
}

/// What the server said about a stream when the snapshot began.
pub struct Snapshotted {
    pub config: serde_json::Value,
    pub state: StreamState,
}

/// Snapshots `stream`, handing each chunk of the archive to `sink`.
pub async fn snapshot(
    client: &Client,
    stream: &str,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<Snapshotted, WireError> {
    let inbox = client.new_inbox();
    let mut chunks = client.subscribe(inbox.clone()).await.map_err(nats)?;
    let a = api(
        client,
        format!("$JS.API.STREAM.SNAPSHOT.{stream}"),
        json!({ "deliver_subject": inbox, "chunk_size": CHUNK }),
    )
    .await?;
    let config = a.get("config").cloned().unwrap_or(serde_json::Value::Null);
    let state: StreamState = a
        .get("state")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| WireError::Protocol(format!("snapshot state: {e}")))?
        .unwrap_or_default();
    loop {
        let msg = tokio::time::timeout(IDLE, chunks.next())
            .await
            .map_err(|_| WireError::Stalled(IDLE))?
            .ok_or_else(|| WireError::Nats("the subscription ended".into()))?;
        if msg.payload.is_empty() {
            return match msg.status.map(|s| s.as_u16()) {
                None | Some(STATUS_END_OK) => Ok(Snapshotted { config, state }),
                Some(status) => Err(WireError::Aborted {
                    status,
                    reason: msg.description.unwrap_or_default(),
                }),
            };
        }
        sink(&msg.payload)?;
        if let Some(reply) = msg.reply {
            client.publish(reply, Bytes::new()).await.map_err(nats)?;
        }
    }
}

/// Deletes `stream`. `Ok(false)`: there was none.
pub async fn delete(client: &Client, stream: &str) -> Result<bool, WireError> {
    on_stream(client, "DELETE", stream).await
}

/// Whether `stream` exists.
pub async fn exists(client: &Client, stream: &str) -> Result<bool, WireError> {
    on_stream(client, "INFO", stream).await
}

/// `$JS.API.STREAM.<verb>.<stream>` without a body; `Ok(false)`: no such stream.
async fn on_stream(client: &Client, verb: &str, stream: &str) -> Result<bool, WireError> {
    match api(
        client,
        format!("$JS.API.STREAM.{verb}.{stream}"),
        serde_json::Value::Null,
    )
    .await
    {
        Ok(_) => Ok(true),
        Err(WireError::Refused { err_code, .. }) if err_code == ERR_STREAM_NOT_FOUND => Ok(false),
        Err(e) => Err(e),
    }
}

/// Restores `stream` from the archive in `input`; returns the restored
/// stream's state as the server reports it.
pub async fn restore(
    client: &Client,
    stream: &str,
    config: &serde_json::Value,
    state: &StreamState,
    input: &mut (impl AsyncRead + Unpin),
    mut progress: impl FnMut(u64),
) -> Result<StreamState, WireError> {
    let a = api(
        client,
        format!("$JS.API.STREAM.RESTORE.{stream}"),
        json!({ "config": config, "state": state }),
    )
    .await?;
    let deliver = a
        .get("deliver_subject")
        .and_then(|d| d.as_str())
        .ok_or_else(|| WireError::Protocol("restore answer without deliver_subject".into()))?
        .to_owned();
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    loop {
        let n = read_full(input, &mut buf).await?;
        if n == 0 {
            break;
        }
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        let reply = tokio::time::timeout(IDLE, send_chunk(client, &deliver, chunk, sent == 0))
            .await
            .map_err(|_| WireError::Stalled(IDLE))??;
        if !reply.payload.is_empty() {
            answer(&reply.payload)?;
        }
        sent += n as u64;
        progress(sent);
    }
    // The end: answered once the server has rebuilt the stream from the
    // archive, which can take longer than one chunk.
    let end = tokio::time::timeout(
        IDLE * 4,
        client.send_request(
            deliver,
            async_nats::Request::new()
                .payload(Bytes::new())
                .timeout(Some(IDLE * 4)),
        ),
    )
    .await
    .map_err(|_| WireError::Stalled(IDLE * 4))?
    .map_err(nats)?;
    let info = answer(&end.payload)?;
    info.get("state")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| WireError::Protocol(format!("restored state: {e}")))?
        .ok_or_else(|| WireError::Protocol("restore answer without the stream's state".into()))
}

/// One chunk of a restore, as a request the server answers. The server
/// that accepted the restore subscribes to `deliver`; in a cluster that
/// just formed, that interest can reach the server this client is on a
/// moment after the accepting answer. So before the server has taken any
/// chunk, "no responders" (nothing was received) means: send the first
/// chunk again shortly; later it means the restore is gone.
async fn send_chunk(
    client: &Client,
    deliver: &str,
    chunk: Bytes,
    first: bool,
) -> Result<async_nats::Message, WireError> {
    loop {
        match client.request(deliver.to_owned(), chunk.clone()).await {
            Err(e) if first && e.kind() == RequestErrorKind::NoResponders => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r => return r.map_err(nats),
        }
    }
}

async fn read_full(r: &mut (impl AsyncRead + Unpin), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = r.read(&mut buf[n..]).await?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}
