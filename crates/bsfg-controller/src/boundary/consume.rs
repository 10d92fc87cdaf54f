//! `FetchFacts` and `ConfirmReceipt` on declared consumers.

use super::{Boundary, ConsumerState};
use bsfg_core::cursor::{Confirmation, decide_confirmation};
use bsfg_core::names::{self, NameKind};
use bsfg_core::policy::Identity;
use bsfg_core::{BsfgError, Reason};
use bsfg_proto::v1::{
    ConfirmReceiptRequest, ConfirmReceiptResponse, Fact, FetchFactsRequest, FetchFactsResponse,
    StoredFact,
};
use bsfg_store::CursorAdvance;
use prost::Message;

impl Boundary {
    fn consumer(&self, who: &Identity, name: &str) -> Result<&ConsumerState, BsfgError> {
        names::check_token(NameKind::Consumer, name, self.limits.max_name_len)
            .map_err(|e| Reason::InvalidName.err(e.to_string()))?;
        self.policy.authorize_consumer(who, name)?;
        Ok(&self.consumers[name])
    }

    /// The next page after the consumer's cursor. Fetching twice without
    /// confirming returns the same facts from the same offset.
    pub async fn fetch(
        &self,
        who: &Identity,
        req: FetchFactsRequest,
    ) -> Result<FetchFactsResponse, BsfgError> {
        self.fence.check()?;
        let c = self.consumer(who, &req.consumer_name)?;
        self.metrics.fetch_requests.get_or_create(&c.label).inc();
        let after = c.cursor.lock().await.stored.offset;
        let limit = self.limits.page_size(req.limit);
        let page = c.buffer.page(&c.filter, after, limit).await?;
        let records = page.records;
        let mut facts = Vec::with_capacity(records.len());
        for r in &records {
            let fact = Fact::decode(r.payload.clone()).map_err(|e| {
                tracing::error!(offset = r.offset, error = %e, "stored fact does not decode");
                Reason::Internal.err(format!(
                    "stored fact at offset {} does not decode",
                    r.offset
                ))
            })?;
            facts.push(StoredFact {
                offset: r.offset,
                fact: Some(fact),
                stored_at_unix_ms: r.stored_at_unix_ms,
            });
        }
        if let Some(last) = records.last() {
            let mut cache = c.cursor.lock().await;
            cache.delivered = Some(cache.delivered.map_or(last.offset, |d| d.max(last.offset)));
        }
        Ok(FetchFactsResponse {
            facts,
            backlog: page.backlog,
        })
    }

    /// Advances the cursor to `offset` (cumulative), monotonically.
    pub async fn confirm(
        &self,
        who: &Identity,
        req: ConfirmReceiptRequest,
    ) -> Result<ConfirmReceiptResponse, BsfgError> {
        self.fence.check()?;
        let c = self.consumer(who, &req.consumer_name)?;
        self.metrics.confirm_requests.get_or_create(&c.label).inc();
        // One confirmation at a time per consumer: the cursor is read-modify-write.
        let mut cache = c.cursor.lock().await;
        let to = match decide_confirmation(cache.stored.offset, req.offset, cache.delivered)? {
            Confirmation::Unchanged(cursor) => {
                return Ok(ConfirmReceiptResponse {
                    cursor_advanced_to: cursor,
                });
            }
            Confirmation::Advance(to) => to,
        };
        if cache.delivered.is_none() && !c.buffer.holds(&c.filter, to).await? {
            return Err(Reason::OffsetNotDelivered.err(format!(
                "offset {to} is not a fact of consumer {}; fetch first",
                req.consumer_name
            )));
        }
        match self
            .cursors
            .advance(&req.consumer_name, to, cache.stored.revision)
            .await?
        {
            CursorAdvance::Advanced(stored) => {
                cache.stored = stored;
                self.metrics
                    .frontier_offset
                    .get_or_create(&c.label)
                    .set(to as i64);
                self.metrics
                    .last_confirm_seconds
                    .get_or_create(&c.label)
                    .set(bsfg_core::clock::unix_seconds());
                Ok(ConfirmReceiptResponse {
                    cursor_advanced_to: to,
                })
            }
            CursorAdvance::Conflict => {
                // Only a second writer can cause this; the lease exists to prevent one.
                if let Ok(Some(stored)) = self.cursors.load(&req.consumer_name).await {
                    cache.stored = stored;
                }
                tracing::error!(consumer = %req.consumer_name, "cursor moved under us: another controller wrote it");
                Err(Reason::NotServing.err("the cursor was moved by another controller; retry"))
            }
        }
    }
}
