//! The snapshot's manifest and the naming and retention of snapshot
//! directories: pure data and functions.
//!
//! A snapshot is a directory `snapshot-<UTC time>` holding one
//! `<stream>.tar.s2` per stream (nats-server's own stream snapshot: message
//! blocks with their sequence numbers, and the stream's consumers with
//! their cursors) and `manifest.json`, written last.

use serde::{Deserialize, Serialize};

/// The manifest's file name inside a snapshot directory.
pub const MANIFEST: &str = "manifest.json";
/// Version of the manifest layout; restore refuses other versions.
pub const FORMAT: u32 = 1;
/// Prefix of a completed snapshot directory; an unfinished one starts with `.`.
pub const DIR_PREFIX: &str = "snapshot-";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    /// When the first stream's snapshot was requested (Unix ms).
    pub started_unix_ms: i64,
    /// When the last stream's snapshot was verified (Unix ms).
    pub finished_unix_ms: i64,
    pub streams: Vec<StreamEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamEntry {
    pub name: String,
    /// File name inside the snapshot directory.
    pub file: String,
    /// Size of the file (compressed archive) in bytes.
    pub bytes: u64,
    /// `sha256:<hex>` of the file.
    pub sha256: String,
    /// The stream's configuration as nats-server reported it with the
    /// snapshot (sent back unchanged on restore).
    pub config: serde_json::Value,
    /// The stream's state at the snapshot: first/last sequence, messages.
    pub state: StreamState,
    /// What the read-back found in the archive.
    pub verified: ArchiveSummary,
}

/// The part of nats-server's stream state a restore is checked against.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamState {
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub first_seq: u64,
    #[serde(default)]
    pub last_seq: u64,
    #[serde(default)]
    pub consumer_count: u64,
    /// The rest of the server's state document, kept for the restore request.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// What reading an archive back found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ArchiveSummary {
    /// `messages` (nats-server 2.12+: one entry per message with its
    /// sequence number) or `tar` (older servers: the store's files).
    pub format: String,
    /// Bytes after decompression.
    pub uncompressed_bytes: u64,
    /// Messages in the archive (`messages` format), and their first and
    /// last sequence numbers.
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub first_seq: u64,
    #[serde(default)]
    pub last_seq: u64,
    /// Message block files (`tar` format: `msgs/*.blk`).
    #[serde(default)]
    pub message_blocks: u64,
    /// Consumers whose state the archive holds (`obs/<name>/`).
    pub consumers: Vec<String>,
}

impl Manifest {
    pub fn total_bytes(&self) -> u64 {
        self.streams.iter().map(|s| s.bytes).sum()
    }
}

/// The directory name of a snapshot taken at `unix_ms`:
/// `snapshot-20261201T173000Z` (sorts by time).
pub fn dir_name(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{DIR_PREFIX}{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Of the completed snapshot directories in `names`, those to delete so
/// that the newest `keep` remain. Other names (unfinished snapshots, files
/// that are not ours) are never selected.
pub fn to_prune(names: &[String], keep: usize) -> Vec<String> {
    let mut ours: Vec<&String> = names.iter().filter(|n| n.starts_with(DIR_PREFIX)).collect();
    ours.sort();
    let excess = ours.len().saturating_sub(keep);
    ours.into_iter().take(excess).cloned().collect()
}

/// Whether a restored stream holds what its snapshot held: the same
/// messages under the same sequence numbers. (An empty stream has no first
/// sequence to compare: nats-server reports 0 or last + 1.)
pub fn same_content(restored: &StreamState, snapshot: &StreamState) -> bool {
    restored.messages == snapshot.messages
        && restored.last_seq == snapshot.last_seq
        && (snapshot.messages == 0 || restored.first_seq == snapshot.first_seq)
}

/// Streams a restore leaves alone unless asked: the controller lease is
/// re-taken by the first controller that starts (restoring an old holder
/// would fence the zone against a controller that no longer exists).
pub fn restored_by_default(stream: &str, lease_stream: &str) -> bool {
    stream != lease_stream
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_are_utc_and_sort_by_time() {
        assert_eq!(dir_name(0), "snapshot-19700101T000000Z");
        // 2026-12-01T17:30:05Z
        assert_eq!(dir_name(1_796_146_205_000), "snapshot-20261201T173005Z");
        assert_eq!(dir_name(951_782_400_000), "snapshot-20000229T000000Z");
        assert!(dir_name(1_000_000_000_000) < dir_name(1_000_000_001_000));
    }

    #[test]
    fn pruning_keeps_the_newest_and_touches_nothing_else() {
        let names: Vec<String> = [
            "snapshot-20261203T000000Z",
            ".snapshot-20261204T000000Z.partial",
            "snapshot-20261201T000000Z",
            "notes.txt",
            "snapshot-20261202T000000Z",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            to_prune(&names, 2),
            vec!["snapshot-20261201T000000Z".to_string()]
        );
        assert_eq!(to_prune(&names, 3), Vec::<String>::new());
        assert_eq!(to_prune(&names, 0).len(), 3);
    }

    #[test]
    fn restored_content_is_compared_by_messages_and_sequences() {
        let st = |messages, first_seq, last_seq| StreamState {
            messages,
            first_seq,
            last_seq,
            ..Default::default()
        };
        assert!(same_content(&st(299, 1, 300), &st(299, 1, 300)));
        assert!(!same_content(&st(299, 2, 300), &st(299, 1, 300)));
        assert!(!same_content(&st(298, 1, 300), &st(299, 1, 300)));
        assert!(!same_content(&st(299, 1, 299), &st(299, 1, 300)));
        // Empty: nats-server says first 0 in one place, last + 1 in another.
        assert!(same_content(&st(0, 1, 0), &st(0, 0, 0)));
        assert!(!same_content(&st(0, 1, 0), &st(0, 0, 7)));
    }

    #[test]
    fn the_lease_is_not_restored_by_default() {
        assert!(!restored_by_default("KV_bsfg_lease", "KV_bsfg_lease"));
        assert!(restored_by_default("KV_bsfg_cursors", "KV_bsfg_lease"));
    }
}
