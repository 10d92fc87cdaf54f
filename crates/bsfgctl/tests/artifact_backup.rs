//! `bsfgctl backup-artifacts` and `restore-artifacts` on real files: an
//! artifact store laid out as the controller lays it out
//! (`blobs/sha256/<hex>`), snapshots that hard-link what did not change,
//! a corrupted blob that fails the run, a truncated snapshot that restore
//! refuses, retention.

use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bsfgctl(args: &[&str]) -> (i32, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bsfgctl"))
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Adds a blob of `len` bytes (seeded by `seed`) to the store; its hex digest.
fn put_blob(store: &Path, seed: u8, len: usize) -> String {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let hex = hex::encode(Sha256::digest(&data));
    let dir = store.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&hex), &data).unwrap();
    hex
}

fn snapshots(into: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(into)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn backup(
    store: &Path,
    into: &Path,
    keep: &str,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let mut args = vec![
        "backup-artifacts",
        "--from",
        s(store),
        "--into",
        s(into),
        "--keep",
        keep,
    ];
    args.extend_from_slice(extra);
    bsfgctl(&args)
}

#[test]
fn unchanged_blobs_are_hard_linked_and_a_snapshot_restores_byte_for_byte() {
    let t = tempfile::tempdir().unwrap();
    let (store, into) = (t.path().join("store"), t.path().join("snaps"));
    let first: Vec<String> = (0..3)
        .map(|i| put_blob(&store, i, 200_000 + i as usize))
        .collect();
    let (code, j, err) = backup(&store, &into, "7", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (
            j["blobs"].as_u64(),
            j["copied"].as_u64(),
            j["linked"].as_u64()
        ),
        (Some(3), Some(3), Some(0))
    );

    let added = put_blob(&store, 9, 50_000);
    let (code, j, err) = backup(&store, &into, "7", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (
            j["blobs"].as_u64(),
            j["copied"].as_u64(),
            j["linked"].as_u64()
        ),
        (Some(4), Some(1), Some(3))
    );
    assert_eq!(j["copied_bytes"].as_u64(), Some(50_000));
    let snaps = snapshots(&into);
    assert_eq!(snaps.len(), 2);
    let ino = |snap: &Path, hex: &str| {
        std::fs::metadata(snap.join("blobs/sha256").join(hex))
            .unwrap()
            .ino()
    };
    assert_eq!(
        ino(&snaps[0], &first[0]),
        ino(&snaps[1], &first[0]),
        "unchanged blob not linked"
    );

    // --verify-only writes nothing, not even the store's directories.
    let target = t.path().join("restored");
    std::fs::create_dir(&target).unwrap();
    let (code, j, err) = bsfgctl(&[
        "restore-artifacts",
        "--from",
        s(&snaps[1]),
        "--into",
        s(&target),
        "--verify-only",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(j["blobs"].as_u64(), Some(4));
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    let (code, j, err) = bsfgctl(&[
        "restore-artifacts",
        "--from",
        s(&snaps[1]),
        "--into",
        s(&target),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(j["written"].as_u64(), Some(4));
    for hex in first.iter().chain([&added]) {
        let a = std::fs::read(store.join("blobs/sha256").join(hex)).unwrap();
        let b = std::fs::read(target.join("blobs/sha256").join(hex)).unwrap();
        assert_eq!(a, b, "{hex}");
    }
    // Again: content-addressed, so nothing to write.
    let (code, j, _) = bsfgctl(&[
        "restore-artifacts",
        "--from",
        s(&snaps[1]),
        "--into",
        s(&target),
    ]);
    assert_eq!(
        (code, j["written"].as_u64(), j["kept"].as_u64()),
        (0, Some(0), Some(4))
    );
}

#[test]
fn a_corrupted_blob_in_the_store_fails_the_run_and_leaves_no_snapshot() {
    let t = tempfile::tempdir().unwrap();
    let (store, into) = (t.path().join("store"), t.path().join("snaps"));
    let metrics = t.path().join("artifact-backup.prom");
    put_blob(&store, 1, 10_000);
    let bad = put_blob(&store, 2, 10_000);
    // Same size, other content: only the hash can tell.
    let p = store.join("blobs/sha256").join(&bad);
    let mut data = std::fs::read(&p).unwrap();
    data[5_000] ^= 0xff;
    std::fs::write(&p, data).unwrap();

    let (code, j, err) = backup(&store, &into, "7", &["--metrics-file", s(&metrics)]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(j, serde_json::Value::Null);
    assert!(
        err.contains(&format!("sha256:{bad}: content hashes to sha256:")),
        "{err}"
    );
    assert!(
        snapshots(&into).is_empty(),
        "a failed run left {:?}",
        snapshots(&into)
    );
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        m.contains("bsfg_artifact_backup_last_run_success 0\n"),
        "{m}"
    );
    assert!(
        !m.contains("bsfg_artifact_backup_last_success_timestamp_seconds"),
        "{m}"
    );

    // A foreign file is not guessed at either.
    std::fs::remove_file(&p).unwrap();
    std::fs::write(store.join("blobs/sha256/upload.part"), b"x").unwrap();
    let (code, _, err) = backup(&store, &into, "7", &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("upload.part: not a blob of the manifest"),
        "{err}"
    );
}

#[test]
fn a_corrupted_blob_that_would_be_linked_is_found_by_full() {
    let t = tempfile::tempdir().unwrap();
    let (store, into) = (t.path().join("store"), t.path().join("snaps"));
    let hex = put_blob(&store, 3, 4_096);
    assert_eq!(backup(&store, &into, "7", &[]).0, 0);
    let p = store.join("blobs/sha256").join(&hex);
    let mut data = std::fs::read(&p).unwrap();
    data[0] ^= 1;
    std::fs::write(&p, data).unwrap();
    // The daily run links it (same name, same size) from the verified copy.
    let (code, j, err) = backup(&store, &into, "7", &[]);
    assert_eq!((code, j["linked"].as_u64()), (0, Some(1)), "{err}");
    let (code, _, err) = backup(&store, &into, "7", &["--full"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("sha256:{hex}: content hashes to")),
        "{err}"
    );
}

#[test]
fn a_truncated_snapshot_is_refused_and_nothing_is_written() {
    let t = tempfile::tempdir().unwrap();
    let (store, into) = (t.path().join("store"), t.path().join("snaps"));
    put_blob(&store, 4, 30_000);
    let hex = put_blob(&store, 5, 30_000);
    assert_eq!(backup(&store, &into, "7", &[]).0, 0);
    let snap = snapshots(&into).pop().unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(snap.join("blobs/sha256").join(&hex))
        .unwrap();
    f.set_len(1_000).unwrap();
    drop(f);
    let target = t.path().join("restored");
    std::fs::create_dir(&target).unwrap();
    for extra in [&["--verify-only"][..], &[]] {
        let mut args = vec![
            "restore-artifacts",
            "--from",
            s(&snap),
            "--into",
            s(&target),
        ];
        args.extend_from_slice(extra);
        let (code, _, err) = bsfgctl(&args);
        assert_eq!(code, 1, "{extra:?}: {err}");
        assert!(
            err.contains(&format!(
                "sha256:{hex}: 1000 bytes, the manifest says 30000"
            )),
            "{err}"
        );
        assert!(err.contains("nothing was written"), "{err}");
    }
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    // No manifest: not a completed snapshot.
    std::fs::remove_file(snap.join("manifest.json")).unwrap();
    let (code, _, err) = bsfgctl(&[
        "restore-artifacts",
        "--from",
        s(&snap),
        "--into",
        s(&target),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("not a completed artifact snapshot"), "{err}");
}

#[test]
fn retention_prunes_the_oldest_snapshots() {
    let t = tempfile::tempdir().unwrap();
    let (store, into) = (t.path().join("store"), t.path().join("snaps"));
    put_blob(&store, 6, 1_000);
    let mut made = Vec::new();
    for _ in 0..3 {
        let (code, j, err) = backup(&store, &into, "2", &[]);
        assert_eq!(code, 0, "{err}");
        made.push(PathBuf::from(j["snapshot"].as_str().unwrap()));
        if made.len() == 3 {
            let pruned: Vec<&str> = j["pruned"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(pruned, [made[0].file_name().unwrap().to_str().unwrap()]);
        }
    }
    assert_eq!(snapshots(&into), made[1..]);
    // The survivors still hold the blob the pruned one shared with them.
    let (code, _, err) = bsfgctl(&[
        "restore-artifacts",
        "--from",
        s(&made[1]),
        "--into",
        s(&store),
        "--verify-only",
    ]);
    assert_eq!(code, 0, "{err}");
}
