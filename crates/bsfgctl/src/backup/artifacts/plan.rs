//! What an artifact snapshot or restore does, decided without touching a
//! file: which blobs to copy, which to hard-link from the previous
//! snapshot, which snapshots to prune, which blobs a restore writes.
//!
//! The artifact store is content-addressed (`blobs/sha256/<hex>`, the
//! controller's layout), so a name is a promise about the content: a blob
//! already in the previous verified snapshot under the same name and size is
//! the same blob and is linked, not copied.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The manifest's file name inside a snapshot directory.
pub const MANIFEST: &str = "manifest.json";
/// The manifest format this bsfgctl writes and reads.
pub const FORMAT: u32 = 1;
/// Completed artifact snapshots are `artifacts-<UTC time>`; unfinished ones
/// are hidden `.artifacts-<UTC time>.partial` and never counted.
pub const DIR_PREFIX: &str = "artifacts-";
/// The blobs' directory relative to the artifact store and to a snapshot.
pub const BLOB_DIR: &str = "blobs/sha256";

/// One blob as listed (name and size; not yet read).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Blob {
    /// Lower-case hex SHA-256: the file name under `blobs/sha256/`.
    pub hex: String,
    pub size: u64,
}

impl Blob {
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.hex)
    }
}

/// A snapshot's manifest: every blob it holds, verified when it was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactManifest {
    pub format: u32,
    /// The artifact store the snapshot was taken from.
    pub source: String,
    pub started_unix_ms: i64,
    pub finished_unix_ms: i64,
    /// Sorted by name.
    pub blobs: Vec<Blob>,
    /// Bytes this snapshot copied; the rest are links to its predecessor.
    pub copied_bytes: u64,
}

impl ArtifactManifest {
    pub fn total_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

/// Whether `name` is a content address: 64 lower-case hex digits.
pub fn is_content_address(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Of the file names found in a `blobs/sha256` directory, those that are
/// not content addresses (a snapshot refuses to guess what they are).
pub fn foreign_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter(|n| !is_content_address(n))
        .cloned()
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotAction {
    /// Read from the store, hashed against its name, written, synced.
    Copy,
    /// The previous snapshot holds it (same name, same size): hard link.
    Link,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotStep {
    pub blob: Blob,
    pub action: SnapshotAction,
}

/// The steps of a snapshot of `source` (the store's blobs) after
/// `previous` (the newest verified snapshot's blobs, if any), in name order.
pub fn plan_snapshot(source: &[Blob], previous: Option<&[Blob]>) -> Vec<SnapshotStep> {
    let before: BTreeMap<&str, u64> = previous
        .unwrap_or(&[])
        .iter()
        .map(|b| (b.hex.as_str(), b.size))
        .collect();
    let mut blobs = source.to_vec();
    blobs.sort();
    blobs
        .into_iter()
        .map(|blob| {
            let action = if before.get(blob.hex.as_str()) == Some(&blob.size) {
                SnapshotAction::Link
            } else {
                SnapshotAction::Copy
            };
            SnapshotStep { blob, action }
        })
        .collect()
}

/// Of the completed artifact snapshot directories in `names`, those to
/// delete so that the newest `keep` remain (0 keeps all). Other names
/// (unfinished snapshots, JetStream snapshots, files not ours) are never
/// selected.
pub fn to_prune(names: &[String], keep: usize) -> Vec<String> {
    if keep == 0 {
        return Vec::new();
    }
    let mut ours: Vec<&String> = names.iter().filter(|n| is_snapshot_name(n)).collect();
    ours.sort();
    let excess = ours.len().saturating_sub(keep);
    ours.into_iter().take(excess).cloned().collect()
}

/// `artifacts-YYYYMMDDTHHMMSSZ`.
pub fn is_snapshot_name(name: &str) -> bool {
    name.strip_prefix(DIR_PREFIX).is_some_and(|t| {
        t.len() == 16
            && t.ends_with('Z')
            && t.as_bytes()[8] == b'T'
            && t.bytes()
                .enumerate()
                .all(|(i, b)| i == 8 || i == 15 || b.is_ascii_digit())
    })
}

/// The directory name of a snapshot started at `unix_ms`; a run in the same
/// second as an existing snapshot gets the next free second, so a name is
/// never reused (rename would fail on a non-empty directory).
pub fn dir_name(unix_ms: i64, existing: &[String]) -> String {
    let mut ms = unix_ms;
    loop {
        let jetstream = crate::backup::manifest::dir_name(ms);
        let time = jetstream
            .strip_prefix(crate::backup::manifest::DIR_PREFIX)
            .unwrap_or(&jetstream);
        let name = format!("{DIR_PREFIX}{time}");
        if !existing.iter().any(|e| e == &name) {
            return name;
        }
        ms += 1000;
    }
}

/// Why a snapshot cannot be restored or does not read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum BlobProblem {
    /// In the manifest, not in the snapshot.
    Missing { hex: String },
    /// Another size than the manifest says (a truncated copy).
    WrongSize {
        hex: String,
        expected: u64,
        found: u64,
    },
    /// Its content does not hash to its name.
    WrongDigest { hex: String, found: String },
    /// A file that is not a content address, or not in the manifest.
    Unexpected { name: String },
}

impl std::fmt::Display for BlobProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobProblem::Missing { hex } => write!(f, "sha256:{hex}: missing"),
            BlobProblem::WrongSize {
                hex,
                expected,
                found,
            } => write!(
                f,
                "sha256:{hex}: {found} bytes, the manifest says {expected} (truncated or replaced)"
            ),
            BlobProblem::WrongDigest { hex, found } => {
                write!(f, "sha256:{hex}: content hashes to sha256:{found}")
            }
            BlobProblem::Unexpected { name } => {
                write!(f, "{name}: not a blob of the manifest")
            }
        }
    }
}

/// The size checks of a snapshot against its manifest (`found`: the files
/// under its `blobs/sha256`), before any blob is read: what is missing,
/// truncated or foreign. Sorted; empty when every size matches.
pub fn size_problems(manifest: &[Blob], found: &[Blob]) -> Vec<BlobProblem> {
    let want: BTreeMap<&str, u64> = manifest.iter().map(|b| (b.hex.as_str(), b.size)).collect();
    let have: BTreeMap<&str, u64> = found.iter().map(|b| (b.hex.as_str(), b.size)).collect();
    let mut out = Vec::new();
    for (hex, &expected) in &want {
        match have.get(hex) {
            None => out.push(BlobProblem::Missing {
                hex: (*hex).to_owned(),
            }),
            Some(&found) if found != expected => out.push(BlobProblem::WrongSize {
                hex: (*hex).to_owned(),
                expected,
                found,
            }),
            Some(_) => {}
        }
    }
    for hex in have.keys() {
        if !want.contains_key(hex) {
            out.push(BlobProblem::Unexpected {
                name: (*hex).to_owned(),
            });
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreAction {
    /// Not in the store (or another size there): written via `tmp/` and renamed.
    Write,
    /// Already in the store with its size: content-addressed, so kept.
    Keep,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreStep {
    pub blob: Blob,
    pub action: RestoreAction,
}

/// The steps of restoring `snapshot` into a store that holds `store`. The
/// store's other blobs stay: restore only adds what the snapshot had.
pub fn plan_restore(snapshot: &[Blob], store: &[Blob]) -> Vec<RestoreStep> {
    let have: BTreeMap<&str, u64> = store.iter().map(|b| (b.hex.as_str(), b.size)).collect();
    let mut blobs = snapshot.to_vec();
    blobs.sort();
    blobs
        .into_iter()
        .map(|blob| {
            let action = if have.get(blob.hex.as_str()) == Some(&blob.size) {
                RestoreAction::Keep
            } else {
                RestoreAction::Write
            };
            RestoreStep { blob, action }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(c: char, size: u64) -> Blob {
        Blob {
            hex: c.to_string().repeat(64),
            size,
        }
    }

    #[test]
    fn unchanged_blobs_are_linked_and_new_or_resized_ones_copied() {
        let prev = [b('a', 1), b('b', 2)];
        let steps = plan_snapshot(&[b('c', 3), b('b', 2), b('a', 9)], Some(&prev));
        let got: Vec<(char, SnapshotAction)> = steps
            .iter()
            .map(|s| (s.blob.hex.chars().next().unwrap(), s.action))
            .collect();
        assert_eq!(
            got,
            [
                ('a', SnapshotAction::Copy),
                ('b', SnapshotAction::Link),
                ('c', SnapshotAction::Copy)
            ]
        );
        assert!(
            plan_snapshot(&[b('a', 1)], None)
                .iter()
                .all(|s| s.action == SnapshotAction::Copy)
        );
    }

    #[test]
    fn retention_prunes_the_oldest_of_ours_only() {
        let names: Vec<String> = [
            "artifacts-20261201T000000Z",
            "artifacts-20261203T000000Z",
            "artifacts-20261202T000000Z",
            ".artifacts-20261130T000000Z.partial",
            "snapshot-20261101T000000Z",
            "artifacts-notes",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(to_prune(&names, 2), ["artifacts-20261201T000000Z"]);
        assert_eq!(to_prune(&names, 3), Vec::<String>::new());
        assert_eq!(to_prune(&names, 0), Vec::<String>::new());
        assert_eq!(to_prune(&names, 1).len(), 2);
    }

    #[test]
    fn snapshot_names_are_dated_and_never_reused() {
        let first = dir_name(1_764_633_600_000, &[]);
        assert_eq!(first, "artifacts-20251202T000000Z");
        assert!(is_snapshot_name(&first));
        let second = dir_name(1_764_633_600_500, std::slice::from_ref(&first));
        assert_eq!(second, "artifacts-20251202T000001Z");
    }

    #[test]
    fn only_content_addresses_are_blobs() {
        assert!(is_content_address(&"0f".repeat(32)));
        assert!(!is_content_address(&"0F".repeat(32)));
        assert!(!is_content_address("abc"));
        let names = vec!["a".repeat(64), "upload.tmp".to_owned()];
        assert_eq!(foreign_names(&names), ["upload.tmp"]);
    }

    #[test]
    fn a_truncated_missing_or_foreign_blob_is_a_size_problem() {
        let manifest = [b('a', 10), b('b', 20)];
        assert!(size_problems(&manifest, &manifest).is_empty());
        let found = [b('a', 4), b('c', 1)];
        assert_eq!(
            size_problems(&manifest, &found),
            [
                BlobProblem::WrongSize {
                    hex: "a".repeat(64),
                    expected: 10,
                    found: 4
                },
                BlobProblem::Missing {
                    hex: "b".repeat(64)
                },
                BlobProblem::Unexpected {
                    name: "c".repeat(64)
                },
            ]
        );
    }

    #[test]
    fn restore_writes_only_what_the_store_lacks() {
        let steps = plan_restore(&[b('a', 1), b('b', 2)], &[b('a', 1), b('b', 1), b('z', 5)]);
        let got: Vec<RestoreAction> = steps.iter().map(|s| s.action).collect();
        assert_eq!(got, [RestoreAction::Keep, RestoreAction::Write]);
    }
}
