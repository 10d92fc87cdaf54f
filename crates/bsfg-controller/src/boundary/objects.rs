//! `PutObject` and `GetObject`: immutable artifacts, content-addressed blobs
//! on this host, indexed zone-wide in JetStream.

use super::Boundary;
use crate::artifacts::CHUNK;
use bsfg_core::names::{self, NameKind};
use bsfg_core::policy::Identity;
use bsfg_core::{BsfgError, Reason, fact};
use bsfg_proto::v1::put_object_request::Part;
use bsfg_proto::v1::{
    ArtifactRef, GetObjectRequest, ObjectHeader, PutObjectRequest, PutObjectResponse,
};
use bsfg_store::{ArtifactRecord, IndexOutcome};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::pin::Pin;

/// The bytes of an artifact, in chunks.
pub type ObjectBody = Pin<Box<dyn Stream<Item = Result<Bytes, BsfgError>> + Send>>;

impl Boundary {
    fn check_object_names(&self, bucket: &str, key: &str) -> Result<(), BsfgError> {
        names::check_token(NameKind::Bucket, bucket, self.limits.max_name_len)
            .map_err(|e| Reason::InvalidName.err(e.to_string()))?;
        names::check_object_key(key, self.limits.max_object_key_len)
            .map_err(|e| Reason::InvalidName.err(e.to_string()))
    }

    /// Stores an artifact sent as a header followed by chunks. Same key and
    /// same content again is idempotent; same key with other content is a conflict.
    pub async fn put_object<S>(
        &self,
        who: &Identity,
        mut parts: S,
    ) -> Result<PutObjectResponse, BsfgError>
    where
        S: Stream<Item = Result<PutObjectRequest, BsfgError>> + Unpin,
    {
        self.fence.check()?;
        let header = match parts.next().await {
            Some(Ok(PutObjectRequest {
                part: Some(Part::Header(h)),
            })) => h,
            Some(Ok(_)) => {
                return Err(
                    Reason::InvalidRequest.err("the first PutObject message must be the header")
                );
            }
            Some(Err(e)) => return Err(e),
            None => return Err(Reason::InvalidRequest.err("empty PutObject stream")),
        };
        let ObjectHeader {
            bucket,
            key,
            media_type,
            size,
        } = header;
        self.check_object_names(&bucket, &key)?;
        fact::check_media_type("media_type", &media_type, &self.limits)
            .map_err(|e| Reason::InvalidRequest.err(e))?;
        self.policy.authorize_write(who, &bucket)?;
        if size > self.limits.max_object_bytes {
            return Err(Reason::ObjectTooLarge.err(format!(
                "object is {size} bytes, larger than the limit of {}",
                self.limits.max_object_bytes
            )));
        }
        let chunks = parts.filter_map(|p| async move {
            match p {
                Err(e) => Some(Err(e)),
                Ok(PutObjectRequest {
                    part: Some(Part::Chunk(c)),
                }) => Some(Ok(Bytes::from(c))),
                Ok(PutObjectRequest {
                    part: Some(Part::Header(_)),
                }) => Some(Err(
                    Reason::InvalidRequest.err("a second header in one PutObject")
                )),
                Ok(PutObjectRequest { part: None }) => None,
            }
        });
        let digest = self.ingest_blob(Box::pin(chunks), size, None).await?;
        let record = ArtifactRecord {
            bucket: bucket.clone(),
            key: key.clone(),
            digest: digest.clone(),
            size,
            media_type,
            created_at_unix_ms: bsfg_core::clock::unix_ms(),
            stored_by: self.node.clone(),
            origin_zone: None,
        };
        self.index_artifact(&record).await?;
        Ok(PutObjectResponse {
            bucket,
            key,
            digest,
            size,
        })
    }

    /// Writes a blob from `chunks`, checking the declared size (and digest, when
    /// known) before it becomes visible under its content address.
    pub(crate) async fn ingest_blob<S>(
        &self,
        mut chunks: S,
        size: u64,
        expected_digest: Option<&str>,
    ) -> Result<String, BsfgError>
    where
        S: Stream<Item = Result<Bytes, BsfgError>> + Unpin,
    {
        let mut upload = self.blobs.begin().await?;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if upload.size() + chunk.len() as u64 > size {
                return Err(
                    Reason::ObjectMismatch.err(format!("more bytes than the declared size {size}"))
                );
            }
            upload.write(&chunk).await?;
        }
        if upload.size() != size {
            return Err(Reason::ObjectMismatch
                .err(format!("received {} bytes, declared {size}", upload.size())));
        }
        if let Some(expected) = expected_digest {
            let actual = upload.digest();
            if actual != expected {
                return Err(Reason::ObjectMismatch.err(format!(
                    "received content has digest {actual}, expected {expected}"
                )));
            }
        }
        upload.commit().await
    }

    /// Records an artifact in the zone index: same digest again is fine, another is a conflict.
    pub(crate) async fn index_artifact(&self, record: &ArtifactRecord) -> Result<(), BsfgError> {
        match self.index.record_if_absent(record).await? {
            IndexOutcome::Created => Ok(()),
            IndexOutcome::Existing(existing) if existing.digest == record.digest => Ok(()),
            IndexOutcome::Existing(existing) => Err(Reason::ObjectConflict.err(format!(
                "{}/{} is already stored with digest {}",
                record.bucket, record.key, existing.digest
            ))),
        }
    }

    /// Reads an artifact: its reference, then its bytes in chunks.
    pub async fn get_object(
        &self,
        who: &Identity,
        req: GetObjectRequest,
    ) -> Result<(ArtifactRef, ObjectBody), BsfgError> {
        self.fence.check()?;
        self.check_object_names(&req.bucket, &req.key)?;
        self.policy.authorize_read(who, &req.bucket)?;
        let rec = self
            .index
            .get(&req.bucket, &req.key)
            .await?
            .ok_or_else(|| {
                Reason::UnknownObject.err(format!("no artifact {}/{}", req.bucket, req.key))
            })?;
        if !self.blobs.holds(&rec.digest, rec.size).await {
            self.rehydrate_nudge.notify_one();
            return Err(Reason::ArtifactRehydrating.err(format!(
                "{}/{} ({}) is not on this host yet (stored by {}); it is being fetched back, retry later",
                rec.bucket, rec.key, rec.digest, rec.stored_by
            )));
        }
        let file = self.blobs.open_blob(&rec.digest).await?;
        let body = tokio_util::io::ReaderStream::with_capacity(file, CHUNK)
            .map(|r| r.map_err(|e| Reason::Internal.err(format!("reading a blob: {e}"))));
        let header = ArtifactRef {
            bucket: rec.bucket,
            key: rec.key,
            digest: rec.digest,
            size: rec.size,
            media_type: rec.media_type,
        };
        Ok((header, Box::pin(body)))
    }
}
