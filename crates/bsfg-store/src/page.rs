//! Reading a page of facts in one request: JetStream's batched direct get.
//!
//! `$JS.API.DIRECT.GET.<stream>` with `{"seq", "next_by_subj", "batch"}` streams
//! up to `batch` messages matching the filter from `seq` on, then an
//! end-of-batch status (204). Requires `allow_direct` on the stream
//! (nats-server 2.11 or newer).

use crate::errors::{internal, unavailable};
use crate::fact_buffer::StoredRecord;
use bsfg_core::BsfgError;
use futures::StreamExt;
use std::time::Duration;

pub(crate) async fn batch_direct_get(
    client: &async_nats::Client,
    stream: &str,
    start_seq: u64,
    filter: &str,
    limit: u32,
    timeout: Duration,
) -> Result<Page, BsfgError> {
    let inbox = client.new_inbox();
    let mut sub = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| unavailable("subscribing for a page", e))?;
    let body =
        serde_json::json!({ "seq": start_seq.max(1), "next_by_subj": filter, "batch": limit });
    client
        .publish_with_reply(
            format!("$JS.API.DIRECT.GET.{stream}"),
            inbox,
            body.to_string().into(),
        )
        .await
        .map_err(|e| unavailable("requesting a page", e))?;
    let mut out = Vec::with_capacity(limit as usize);
    loop {
        let msg = match tokio::time::timeout(timeout, sub.next()).await {
            Ok(Some(m)) => m,
            Ok(None) => return Err(unavailable("reading a page", "subscription closed")),
            Err(_) => {
                return Err(unavailable(
                    "reading a page",
                    format!("no answer from {stream} in {timeout:?}"),
                ));
            }
        };
        if let Some(status) = msg.status {
            return match status.as_u16() {
                // 204: end of batch; 404: nothing at or after seq.
                204 | 404 => Ok(Page {
                    records: out,
                    backlog: 0,
                }),
                503 => Err(unavailable("reading a page", "no JetStream responders")),
                _ => Err(unavailable(
                    "reading a page",
                    format!("status {status} {:?}", msg.description),
                )),
            };
        }
        let headers = msg
            .headers
            .as_ref()
            .ok_or_else(|| internal("reading a page", "message without headers"))?;
        let offset = headers
            .get("Nats-Sequence")
            .and_then(|v| v.as_str().parse::<u64>().ok())
            .ok_or_else(|| internal("reading a page", "missing Nats-Sequence"))?;
        let stored_at_unix_ms = headers
            .get("Nats-Time-Stamp")
            .map(|v| rfc3339_to_unix_ms(v.as_str()))
            .unwrap_or(0);
        // Matching messages after this one: the consumer's backlog once the page ends.
        let backlog = headers
            .get("Nats-Num-Pending")
            .and_then(|v| v.as_str().parse::<u64>().ok())
            .unwrap_or(0);
        let subject = headers
            .get("Nats-Subject")
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        out.push(StoredRecord {
            offset,
            stored_at_unix_ms,
            subject,
            payload: msg.payload,
        });
        if out.len() as u32 >= limit {
            // The server still sends its end-of-batch marker; we do not need to wait for it.
            return Ok(Page {
                records: out,
                backlog,
            });
        }
    }
}

/// One page of facts and how many more match after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub records: Vec<StoredRecord>,
    pub backlog: u64,
}

/// `2026-11-22T01:16:48.919539713Z` → Unix milliseconds (0 if unparsable).
pub(crate) fn rfc3339_to_unix_ms(s: &str) -> i64 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_jetstream_timestamps() {
        assert_eq!(
            super::rfc3339_to_unix_ms("2026-11-22T01:16:48.919539713Z"),
            1_795_310_208_919
        );
        assert_eq!(super::rfc3339_to_unix_ms("garbage"), 0);
    }
}
