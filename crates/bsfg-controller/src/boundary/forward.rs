//! Materialising facts pulled from a peer zone into its forward buffer.

use super::Boundary;
use bsfg_core::{BsfgError, Reason, fact, identity};
use bsfg_proto::v1::Fact;
use bsfg_store::AppendOutcome;
use prost::Message;

impl Boundary {
    /// Put-if-absent of a peer's fact into `fwd_<peer>`, keyed by its
    /// `message_id` for the forward buffer's whole retention.
    pub(crate) async fn store_forwarded(
        &self,
        peer: &str,
        fact: &Fact,
    ) -> Result<AppendOutcome, BsfgError> {
        let valid = fact::validate(fact, &self.limits)?;
        let envelope = fact.envelope.as_ref().expect("validated");
        if envelope.from_zone != peer {
            return Err(Reason::ZoneMismatch.err(format!(
                "a fact from peer {peer} says from_zone {:?}",
                envelope.from_zone
            )));
        }
        let buffer = self
            .forward_buffers
            .get(peer)
            .ok_or_else(|| Reason::Internal.err(format!("no forward buffer for peer {peer}")))?;
        buffer
            .append(
                valid.kind,
                &envelope.message_id,
                fact.encode_to_vec().into(),
                |stored| identity::same_payload(stored, fact),
            )
            .await
    }
}
