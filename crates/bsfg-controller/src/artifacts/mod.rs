//! Artifact blobs on the local filesystem, content-addressed.
//!
//! Layout under the artifact directory (`/artifacts` in production):
//! - `blobs/sha256/<hex>`: immutable blobs, named by their digest;
//! - `tmp/`: uploads in progress (same filesystem, so the final rename is atomic).
//!
//! A blob is written to `tmp/`, fsynced, renamed into place and the directory
//! fsynced; only then does the zone-wide index (JetStream) learn of it. A crash
//! at any point leaves either no blob or a complete one, never a partial blob
//! under its final name. Leftover temp files are removed at start-up.
//!
//! The directories are created durably too (fsync of each parent): on a file
//! system that needs a directory fsync for a new name, a power cut would
//! otherwise take every acknowledged blob with a `blobs/` whose own entry
//! was never synced. `bsfg-powercut` tests exactly that.

use bsfg_core::{BsfgError, Reason};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};
use tokio::fs::File;
use tokio::io::AsyncWriteExt;

/// Chunk size of `GetObject` responses.
pub const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

fn io_err(what: &str, e: io::Error) -> BsfgError {
    Reason::Internal.err(format!("artifact storage: {what}: {e}"))
}

impl BlobStore {
    /// Prepares the directory layout, durably, and checks it is writable.
    pub fn open(root: &Path) -> io::Result<BlobStore> {
        create_dir_durable(&root.join("blobs/sha256"))?;
        // Entries a previous run made and a crash left unsynced become durable now.
        sync_dir(&root.join("blobs"))?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir(&tmp)?;
        sync_dir(root)?;
        // Writability, now rather than at the first upload.
        let probe = tmp.join(".probe");
        std::fs::write(&probe, b"")?;
        std::fs::remove_file(probe)?;
        Ok(BlobStore {
            root: root.to_owned(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` (`sha256:<hex>`) lives.
    pub fn path_of(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs/sha256").join(hex)
    }

    /// Is the blob here, with the expected size?
    pub async fn holds(&self, digest: &str, size: u64) -> bool {
        tokio::fs::metadata(self.path_of(digest))
            .await
            .map(|m| m.len() == size)
            .unwrap_or(false)
    }

    /// Starts an upload into a temp file.
    pub async fn begin(&self) -> Result<Upload, BsfgError> {
        let path = self
            .root
            .join("tmp")
            .join(format!("upload-{:016x}", rand::random::<u64>()));
        let file = File::create(&path)
            .await
            .map_err(|e| io_err("creating a temp file", e))?;
        Ok(Upload {
            path,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
            root: self.root.clone(),
        })
    }

    /// Opens a blob for reading.
    pub async fn open_blob(&self, digest: &str) -> Result<File, BsfgError> {
        File::open(self.path_of(digest))
            .await
            .map_err(|e| io_err("opening a blob", e))
    }
}

/// `fsync` of a directory: the names created, renamed or removed in it are durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents; each new name is made durable by
/// an fsync of its parent (a new directory's own entry is not durable until then).
fn create_dir_durable(dir: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
    std::fs::create_dir_all(dir)?;
    for created in missing.into_iter().rev() {
        if let Some(parent) = created.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// An upload in progress. Dropped without [`commit`](Upload::commit), its temp file is removed.
pub struct Upload {
    path: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    size: u64,
    root: PathBuf,
}

impl Upload {
    pub async fn write(&mut self, chunk: &Bytes) -> Result<(), BsfgError> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Reason::Internal.err("upload already finished"))?;
        file.write_all(chunk)
            .await
            .map_err(|e| io_err("writing a temp file", e))
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// `sha256:<hex>` of what was written so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }

    /// Makes the blob durable under its digest and returns the digest.
    pub async fn commit(mut self) -> Result<String, BsfgError> {
        let digest = self.digest();
        let mut file = self
            .file
            .take()
            .ok_or_else(|| Reason::Internal.err("upload already finished"))?;
        file.flush().await.map_err(|e| io_err("flushing", e))?;
        file.sync_all().await.map_err(|e| io_err("fsync", e))?;
        drop(file);
        let dir = self.root.join("blobs/sha256");
        let target = dir.join(digest.trim_start_matches("sha256:"));
        // Content-addressed: an existing blob with this name has these very bytes.
        tokio::fs::rename(&self.path, &target)
            .await
            .map_err(|e| io_err("renaming into place", e))?;
        let d = File::open(&dir)
            .await
            .map_err(|e| io_err("opening the blob directory", e))?;
        d.sync_all()
            .await
            .map_err(|e| io_err("fsync of the blob directory", e))?;
        Ok(digest)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commit_is_content_addressed_and_abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut up = store.begin().await.unwrap();
        up.write(&Bytes::from_static(b"hello ")).await.unwrap();
        up.write(&Bytes::from_static(b"world")).await.unwrap();
        assert_eq!(up.size(), 11);
        let digest = up.commit().await.unwrap();
        assert_eq!(digest, bsfg_core::identity::content_digest(b"hello world"));
        assert!(store.holds(&digest, 11).await);
        assert!(!store.holds(&digest, 12).await);

        let mut aborted = store.begin().await.unwrap();
        aborted
            .write(&Bytes::from_static(b"partial"))
            .await
            .unwrap();
        drop(aborted);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn leftover_temp_files_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("tmp/upload-dead"), b"x").unwrap();
        BlobStore::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
