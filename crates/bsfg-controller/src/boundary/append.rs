//! `AppendFact`: validate, authorise, one put-if-absent write.

use super::Boundary;
use bsfg_core::names::{self, NameKind};
use bsfg_core::policy::Identity;
use bsfg_core::{BsfgError, Reason, fact, identity};
use bsfg_proto::v1::{AppendFactRequest, AppendFactResponse};
use bsfg_store::AppendOutcome;
use prost::Message;

impl Boundary {
    pub async fn append(
        &self,
        who: &Identity,
        req: AppendFactRequest,
    ) -> Result<AppendFactResponse, BsfgError> {
        let class = req.stream_class.as_str();
        let result = self.append_inner(who, class, req.fact).await;
        if let Err(e) = &result {
            let label = if self.store_buffers.contains_key(class) {
                class
            } else {
                "unknown"
            };
            self.metrics.append_failed(label, e.reason.token());
        }
        result
    }

    async fn append_inner(
        &self,
        who: &Identity,
        class: &str,
        fact: Option<bsfg_proto::v1::Fact>,
    ) -> Result<AppendFactResponse, BsfgError> {
        self.fence.check()?;
        names::check_token(NameKind::StreamClass, class, self.limits.max_name_len)
            .map_err(|e| Reason::InvalidName.err(e.to_string()))?;
        self.policy.authorize_append(who, class)?;
        let fact = fact.ok_or_else(|| Reason::InvalidFact.err("fact is required"))?;
        let valid = fact::validate(&fact, &self.limits)?;
        let envelope = fact.envelope.as_ref().expect("validated");
        self.policy.check_from_zone(who, &envelope.from_zone)?;
        let buffer = &self.store_buffers[class];
        let fill = buffer.fill().percent();
        if fill >= f64::from(self.limits.store_buffer_reject_percent) {
            return Err(Reason::StoreBufferFull.err(format!(
                "store buffer {class} is {fill:.1}% full (limit {}%)",
                self.limits.store_buffer_reject_percent
            )));
        }
        if let Some(a) = &envelope.artifact {
            match self.index.get(&a.bucket, &a.key).await? {
                Some(rec) if rec.digest == a.digest && rec.size == a.size => {}
                Some(rec) => {
                    return Err(Reason::ArtifactMissing.err(format!(
                        "artifact {}/{} is stored as {} ({} bytes), not {} ({} bytes)",
                        a.bucket, a.key, rec.digest, rec.size, a.digest, a.size
                    )));
                }
                None => {
                    return Err(Reason::ArtifactMissing.err(format!(
                        "artifact {}/{} is not stored in this zone; PutObject it first",
                        a.bucket, a.key
                    )));
                }
            }
        }
        let outcome = buffer
            .append(
                valid.kind,
                &envelope.message_id,
                fact.encode_to_vec().into(),
                |stored| identity::same_payload(stored, &fact),
            )
            .await?;
        if let Some(m) = self.metrics.class(class) {
            m.requests.inc();
            if matches!(outcome, AppendOutcome::Duplicate { .. }) {
                m.duplicates.inc();
            }
        }
        Ok(AppendFactResponse {
            offset: outcome.offset(),
            duplicate: matches!(outcome, AppendOutcome::Duplicate { .. }),
        })
    }
}
