//! `bsfgctl backup-artifacts` and `bsfgctl restore-artifacts`: snapshots of
//! one service host's artifact store (`/artifacts/blobs/sha256/<hex>`) into
//! dated directories, every copied blob hashed against its name, unchanged
//! blobs hard-linked to the previous snapshot. The plan is [`plan`]; this
//! module does the file I/O.
//!
//! The zone-wide index of artifacts lives in JetStream (the KV bucket
//! `bsfg backup` snapshots); this snapshot holds the blobs it names.

pub mod plan;

use super::{
    dir_entries, io_err, now_ms, progress, sync_dir, textfile, write_synced, write_textfile,
};
use crate::exit::{self, CliError, Result};
use clap::Args;
use plan::{ArtifactManifest, Blob, BlobProblem, RestoreAction, SnapshotAction};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many problems an error message lists before it counts the rest.
const LISTED: usize = 10;

#[derive(Debug, Args)]
#[command(
    long_about = "Snapshot this host's artifact store into a new directory \
        `artifacts-<UTC time>` under --into. Every blob that is new since the \
        previous snapshot is read, hashed against its content address \
        (blobs/sha256/<hex>), written and read back; a blob the previous snapshot \
        holds under the same name and size is hard-linked, so a daily run copies \
        only what changed. A blob whose content does not match its name fails the \
        run, and the snapshot is not kept. Then the oldest snapshots beyond --keep \
        are deleted.\n\nAn unfinished snapshot stays in a hidden \
        `.artifacts-*.partial` directory and is never counted as a snapshot."
)]
pub struct BackupArtifactsArgs {
    /// The artifact store (the controller's artifact directory).
    #[arg(long, default_value = "/artifacts", value_name = "DIR")]
    pub from: PathBuf,
    /// Directory that holds the snapshots.
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// How many snapshots to keep (the newest); 0 keeps all.
    #[arg(long, default_value_t = 7)]
    pub keep: usize,
    /// Also hash the blobs that are hard-linked from the previous snapshot
    /// (reads the whole store: finds blobs that rotted in place).
    #[arg(long)]
    pub full: bool,
    /// Also write the result as Prometheus metrics (node exporter textfile
    /// format) to this file, replaced atomically.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Restore the blobs of a snapshot made by `bsfgctl backup-artifacts` \
        into an artifact store. Every blob of the snapshot is read back first (size \
        against the manifest, content against its name); nothing is written unless \
        all of them verify. Each blob is then written to the store's tmp/, synced \
        and renamed into blobs/sha256/, so the store never holds part of a blob; \
        blobs the store already holds are kept, and blobs it holds that the \
        snapshot lacks stay. A restore that stops half-way can be run again."
)]
pub struct RestoreArtifactsArgs {
    /// The snapshot directory (`.../artifacts-<UTC time>`).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The artifact store to restore into.
    #[arg(long, default_value = "/artifacts", value_name = "DIR")]
    pub into: PathBuf,
    /// Only read the snapshot back; write nothing.
    #[arg(long)]
    pub verify_only: bool,
}

/// The JSON document of `backup-artifacts --json`.
#[derive(Debug, serde::Serialize)]
struct BackupReport {
    snapshot: PathBuf,
    source: PathBuf,
    blobs: usize,
    copied: usize,
    linked: usize,
    copied_bytes: u64,
    total_bytes: u64,
    seconds: f64,
    pruned: Vec<String>,
}

/// The JSON document of `restore-artifacts --json`.
#[derive(Debug, serde::Serialize)]
struct RestoreReport {
    snapshot: PathBuf,
    into: PathBuf,
    blobs: usize,
    verified_bytes: u64,
    written: usize,
    kept: usize,
    written_bytes: u64,
    verify_only: bool,
    seconds: f64,
}

fn blob_path(root: &Path, hex: &str) -> PathBuf {
    root.join(plan::BLOB_DIR).join(hex)
}

/// The regular files under `root/blobs/sha256`, as blobs, and the names
/// that are not content addresses (or not regular files).
/// Errors name the path and keep the kind, for the caller's hint.
fn list_blobs(root: &Path) -> std::io::Result<(Vec<Blob>, Vec<String>)> {
    let dir = root.join(plan::BLOB_DIR);
    let at = |p: &Path, e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))
    };
    let rd = std::fs::read_dir(&dir).map_err(|e| at(&dir, e))?;
    let (mut blobs, mut names) = (Vec::new(), Vec::new());
    for entry in rd {
        let entry = entry.map_err(|e| at(&dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata().map_err(|e| at(&entry.path(), e))?;
        if meta.is_file() {
            names.push(name.clone());
            if plan::is_content_address(&name) {
                blobs.push(Blob {
                    hex: name,
                    size: meta.len(),
                });
            }
        } else {
            names.push(format!("{name}/"));
        }
    }
    blobs.sort();
    Ok((blobs, plan::foreign_names(&names)))
}

/// Streams `src` through SHA-256 into `out` (if any); returns the hex
/// digest and the byte count.
fn hash_stream(
    src: &Path,
    mut out: Option<&mut std::fs::File>,
    bar: &mut progress::Progress,
    done: &mut u64,
    total: u64,
) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(src).map_err(|e| io_err(src, e))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| io_err(src, e))?;
        if k == 0 {
            break;
        }
        hash.update(&buf[..k]);
        if let Some(o) = out.as_deref_mut() {
            o.write_all(&buf[..k]).map_err(|e| {
                CliError::Failed(format!("writing a copy of {}: {e}", src.display()))
            })?;
        }
        n += k as u64;
        *done += k as u64;
        bar.update(*done, Some(total));
    }
    Ok((hex::encode(hash.finalize()), n))
}

/// Copies a blob to `dst` (created, synced), hashing what it reads; a
/// content that does not match the name removes `dst` and is a problem.
fn copy_verified(
    src: &Path,
    dst: &Path,
    blob: &Blob,
    bar: &mut progress::Progress,
    done: &mut u64,
    total: u64,
) -> Result<Option<BlobProblem>> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(|e| io_err(dst, e))?;
    let (hex, n) = hash_stream(src, Some(&mut out), bar, done, total)?;
    out.sync_all().map_err(|e| io_err(dst, e))?;
    drop(out);
    let problem = problem_of(blob, &hex, n);
    if problem.is_some() {
        std::fs::remove_file(dst).map_err(|e| io_err(dst, e))?;
    }
    Ok(problem)
}

fn problem_of(blob: &Blob, hex: &str, n: u64) -> Option<BlobProblem> {
    if hex != blob.hex {
        Some(BlobProblem::WrongDigest {
            hex: blob.hex.clone(),
            found: hex.to_owned(),
        })
    } else if n != blob.size {
        // Grew or shrank while being read: not the blob that was listed.
        Some(BlobProblem::WrongSize {
            hex: blob.hex.clone(),
            expected: blob.size,
            found: n,
        })
    } else {
        None
    }
}

fn problems_error(what: &str, problems: &[BlobProblem]) -> CliError {
    let mut msg = format!("{what}: {} blob problem(s)", problems.len());
    for p in problems.iter().take(LISTED) {
        msg.push_str(&format!("\n  {p}"));
    }
    if problems.len() > LISTED {
        msg.push_str(&format!("\n  ... and {} more", problems.len() - LISTED));
    }
    CliError::Failed(msg)
}

fn read_manifest(dir: &Path) -> Result<ArtifactManifest> {
    let p = dir.join(plan::MANIFEST);
    let text = std::fs::read(&p).map_err(|e| {
        CliError::Failed(format!(
            "{}: {e} (not a completed artifact snapshot)",
            p.display()
        ))
    })?;
    let m: ArtifactManifest = serde_json::from_slice(&text)
        .map_err(|e| CliError::Failed(format!("{}: {e}", p.display())))?;
    if m.format != plan::FORMAT {
        return Err(CliError::Failed(format!(
            "{}: manifest format {} (this bsfgctl reads {})",
            p.display(),
            m.format,
            plan::FORMAT
        )));
    }
    Ok(m)
}

/// The newest completed artifact snapshot under `into` and its manifest.
pub fn newest(into: &Path) -> Result<Option<(PathBuf, ArtifactManifest)>> {
    let mut names: Vec<String> = dir_entries(into)?
        .into_iter()
        .filter(|n| plan::is_snapshot_name(n))
        .collect();
    names.sort();
    match names.pop() {
        None => Ok(None),
        Some(n) => {
            let dir = into.join(n);
            let m = read_manifest(&dir)?;
            Ok(Some((dir, m)))
        }
    }
}

pub fn backup_artifacts(a: &BackupArtifactsArgs, json: bool) -> Result<u8> {
    let started = std::time::Instant::now();
    let result = take_snapshot(a);
    if let Some(path) = &a.metrics_file {
        let newest = newest(&a.into).ok().flatten().map(|(_, m)| m);
        let this_run = result.as_ref().ok().map(|(m, _, _)| m);
        let good = this_run.or(newest.as_ref());
        write_textfile(path, &metrics_text(good, this_run.is_some(), now_ms()))?;
    }
    let (m, dir, linked) = result?;
    let victims = plan::to_prune(&dir_entries(&a.into)?, a.keep);
    for v in &victims {
        let p = a.into.join(v);
        std::fs::remove_dir_all(&p).map_err(|e| io_err(&p, e))?;
    }
    let report = BackupReport {
        snapshot: dir,
        source: a.from.clone(),
        blobs: m.blobs.len(),
        copied: m.blobs.len() - linked,
        linked,
        copied_bytes: m.copied_bytes,
        total_bytes: m.total_bytes(),
        seconds: started.elapsed().as_secs_f64(),
        pruned: victims,
    };
    if json {
        crate::commands::print_json(&report);
    } else {
        println!(
            "{}: {} blobs, {}: {} copied ({}), {} hard-linked to the previous snapshot, in {:.1} s",
            report.snapshot.display(),
            report.blobs,
            progress::human_bytes(report.total_bytes),
            report.copied,
            progress::human_bytes(report.copied_bytes),
            report.linked,
            report.seconds
        );
        for p in &report.pruned {
            println!("pruned {p}");
        }
    }
    Ok(exit::OK)
}

/// Takes one snapshot; returns its manifest, directory and linked count.
fn take_snapshot(a: &BackupArtifactsArgs) -> Result<(ArtifactManifest, PathBuf, usize)> {
    let started_unix_ms = now_ms();
    let (source, foreign) = list_blobs(&a.from).map_err(|e| {
        let hint = match e.kind() {
            // The store is 2770 bsfg-controller:bsfg-artifacts.
            std::io::ErrorKind::PermissionDenied => {
                "readable by the bsfg-artifacts group only: run as root or as a member (the unit's SupplementaryGroups=)"
            }
            _ => "is --from the artifact store, with blobs/sha256?",
        };
        CliError::Failed(format!("{e} ({hint})"))
    })?;
    if !foreign.is_empty() {
        let problems: Vec<BlobProblem> = foreign
            .into_iter()
            .map(|name| BlobProblem::Unexpected { name })
            .collect();
        return Err(problems_error(
            &format!(
                "{}: files that are not content addresses",
                a.from.join(plan::BLOB_DIR).display()
            ),
            &problems,
        ));
    }
    std::fs::create_dir_all(&a.into).map_err(|e| io_err(&a.into, e))?;
    let previous = newest(&a.into)?;
    let steps = plan::plan_snapshot(&source, previous.as_ref().map(|(_, m)| m.blobs.as_slice()));
    let name = plan::dir_name(started_unix_ms, &dir_entries(&a.into)?);
    let partial = a.into.join(format!(".{name}.partial"));
    let done_dir = a.into.join(&name);
    // 0700: the blobs are the zone's artifacts, readable by the backup only.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&partial)
        .map_err(|e| io_err(&partial, e))?;
    let result = fill(
        a,
        &partial,
        &steps,
        previous.as_ref().map(|(d, _)| d.as_path()),
    );
    let (copied_bytes, linked) = match result {
        Ok(v) => v,
        Err(e) => {
            // Not a snapshot: nothing of it stays.
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let m = ArtifactManifest {
        format: plan::FORMAT,
        source: a.from.display().to_string(),
        started_unix_ms,
        finished_unix_ms: now_ms(),
        blobs: steps.into_iter().map(|s| s.blob).collect(),
        copied_bytes,
    };
    let text = serde_json::to_vec_pretty(&m).map_err(|e| CliError::Failed(e.to_string()))?;
    write_synced(&partial.join(plan::MANIFEST), &text)?;
    sync_dir(&partial)?;
    std::fs::rename(&partial, &done_dir).map_err(|e| io_err(&done_dir, e))?;
    sync_dir(&a.into)?;
    Ok((m, done_dir, linked))
}

/// Copies and links the blobs of `steps` into `partial`; returns the bytes
/// copied and the number linked.
fn fill(
    a: &BackupArtifactsArgs,
    partial: &Path,
    steps: &[plan::SnapshotStep],
    previous: Option<&Path>,
) -> Result<(u64, usize)> {
    let blobs = partial.join(plan::BLOB_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&blobs)
        .map_err(|e| io_err(&blobs, e))?;
    let total: u64 = steps
        .iter()
        .filter(|s| a.full || s.action == SnapshotAction::Copy)
        .map(|s| s.blob.size)
        .sum();
    let mut bar = progress::Progress::new(format!("artifacts {}", a.from.display()));
    let (mut done, mut copied_bytes, mut linked) = (0u64, 0u64, 0usize);
    let mut problems = Vec::new();
    for step in steps {
        let (src, dst) = (
            blob_path(&a.from, &step.blob.hex),
            blobs.join(&step.blob.hex),
        );
        let mut copy = step.action == SnapshotAction::Copy;
        if !copy {
            let prev = blob_path(
                previous.expect("a link step has a previous snapshot"),
                &step.blob.hex,
            );
            if a.full {
                let (hex, n) = hash_stream(&src, None, &mut bar, &mut done, total)?;
                if let Some(p) = problem_of(&step.blob, &hex, n) {
                    problems.push(p);
                    continue;
                }
            }
            // The previous snapshot's copy must still be the size it was
            // verified at; otherwise (or across file systems) copy afresh.
            let prev_ok = std::fs::metadata(&prev).is_ok_and(|m| m.len() == step.blob.size);
            if !prev_ok || std::fs::hard_link(&prev, &dst).is_err() {
                copy = true;
            } else {
                linked += 1;
            }
        }
        if copy {
            match copy_verified(&src, &dst, &step.blob, &mut bar, &mut done, total)? {
                Some(p) => problems.push(p),
                None => copied_bytes += step.blob.size,
            }
        }
    }
    if !problems.is_empty() {
        bar.finish(done, "failed");
        return Err(problems_error(
            &format!("{}: the artifact store", a.from.display()),
            &problems,
        ));
    }
    sync_dir(&blobs)?;
    // Read back: what a restore would read.
    let problems = verify_snapshot_blobs(
        partial,
        &steps.iter().map(|s| s.blob.clone()).collect::<Vec<_>>(),
        false,
    )?;
    if !problems.is_empty() {
        bar.finish(done, "failed");
        return Err(problems_error(
            &format!("{}: the snapshot does not read back", partial.display()),
            &problems,
        ));
    }
    bar.finish(done, "verified");
    Ok((copied_bytes, linked))
}

/// Checks a snapshot's blobs against `blobs` (its manifest): sizes first
/// (a missing, truncated or foreign file), then, if `content`, every blob's
/// hash against its name.
fn verify_snapshot_blobs(dir: &Path, blobs: &[Blob], content: bool) -> Result<Vec<BlobProblem>> {
    let (found, foreign) = match list_blobs(dir) {
        Ok(v) => v,
        Err(e) => return Err(CliError::Failed(format!("{e} (not an artifact snapshot)"))),
    };
    let mut problems = plan::size_problems(blobs, &found);
    problems.extend(
        foreign
            .into_iter()
            .map(|name| BlobProblem::Unexpected { name }),
    );
    if !problems.is_empty() || !content {
        return Ok(problems);
    }
    let total: u64 = blobs.iter().map(|b| b.size).sum();
    let mut bar = progress::Progress::new(format!("verify {}", dir.display()));
    let mut done = 0u64;
    for b in blobs {
        let (hex, n) = hash_stream(&blob_path(dir, &b.hex), None, &mut bar, &mut done, total)?;
        problems.extend(problem_of(b, &hex, n));
    }
    bar.finish(
        done,
        if problems.is_empty() {
            "verified"
        } else {
            "failed"
        },
    );
    Ok(problems)
}

pub fn restore_artifacts(a: &RestoreArtifactsArgs, json: bool) -> Result<u8> {
    let started = std::time::Instant::now();
    let m = read_manifest(&a.from)?;
    let problems = verify_snapshot_blobs(&a.from, &m.blobs, true)?;
    if !problems.is_empty() {
        return Err(problems_error(
            &format!("{}: refused, nothing was written", a.from.display()),
            &problems,
        ));
    }
    let mut report = RestoreReport {
        snapshot: a.from.clone(),
        into: a.into.clone(),
        blobs: m.blobs.len(),
        verified_bytes: m.total_bytes(),
        written: 0,
        kept: 0,
        written_bytes: 0,
        verify_only: a.verify_only,
        seconds: 0.0,
    };
    if !a.verify_only {
        let blobs_dir = a.into.join(plan::BLOB_DIR);
        let tmp = a.into.join("tmp");
        // What is restored belongs to whoever owns the store (the
        // controller's user and the artifacts group on the appliance), with
        // the mode the controller's UMask gives its own blobs.
        let owner = std::fs::metadata(&a.into).map_err(|e| {
            CliError::Failed(format!(
                "{}: {e} (the artifact store must exist)",
                a.into.display()
            ))
        })?;
        let own = |p: &Path, mode: u32| -> Result<()> {
            std::os::unix::fs::chown(p, Some(owner.uid()), Some(owner.gid()))
                .and_then(|()| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)))
                .map_err(|e| io_err(p, e))
        };
        for d in [&a.into.join("blobs"), &blobs_dir, &tmp] {
            if !d.exists() {
                std::fs::create_dir(d).map_err(|e| io_err(d, e))?;
                own(d, 0o2770)?;
            }
        }
        let (store, _) = list_blobs(&a.into).map_err(|e| CliError::Failed(e.to_string()))?;
        let steps = plan::plan_restore(&m.blobs, &store);
        let total: u64 = steps
            .iter()
            .filter(|s| s.action == RestoreAction::Write)
            .map(|s| s.blob.size)
            .sum();
        let mut bar = progress::Progress::new(format!("restore into {}", a.into.display()));
        let mut done = 0u64;
        for s in &steps {
            if s.action == RestoreAction::Keep {
                report.kept += 1;
                continue;
            }
            // tmp/ is on the store's file system: the rename is atomic, and
            // the controller clears tmp/ at start-up.
            let part = tmp.join(format!(".restore-{}", s.blob.hex));
            let _ = std::fs::remove_file(&part);
            let problem = copy_verified(
                &blob_path(&a.from, &s.blob.hex),
                &part,
                &s.blob,
                &mut bar,
                &mut done,
                total,
            )?;
            if let Some(p) = problem {
                // Changed since it was verified: stop; what is in place is whole.
                return Err(problems_error(
                    &format!("{}: changed during the restore", a.from.display()),
                    &[p],
                ));
            }
            own(&part, 0o640)?;
            let dst = blobs_dir.join(&s.blob.hex);
            std::fs::rename(&part, &dst).map_err(|e| io_err(&dst, e))?;
            report.written += 1;
            report.written_bytes += s.blob.size;
        }
        sync_dir(&blobs_dir)?;
        bar.finish(done, "restored");
    }
    report.seconds = started.elapsed().as_secs_f64();
    if json {
        crate::commands::print_json(&report);
    } else if a.verify_only {
        println!(
            "{}: {} blobs, {} verified",
            report.snapshot.display(),
            report.blobs,
            progress::human_bytes(report.verified_bytes)
        );
    } else {
        println!(
            "{} -> {}: {} blobs written ({}), {} already there, in {:.1} s",
            report.snapshot.display(),
            report.into.display(),
            report.written,
            progress::human_bytes(report.written_bytes),
            report.kept,
            report.seconds
        );
    }
    Ok(exit::OK)
}

/// The metrics file (Prometheus text format) of a run that ended at `now_ms`.
pub fn metrics_text(good: Option<&ArtifactManifest>, succeeded: bool, now_ms: i64) -> String {
    use bsfg_mgmt::metrics::artifact_backup as m;
    let secs = |ms: i64| ms as f64 / 1000.0;
    let mut values: Vec<(&bsfg_mgmt::metrics::MetricFamily, String)> = Vec::new();
    if let Some(g) = good {
        values.push((
            &m::LAST_SUCCESS_TIMESTAMP_SECONDS,
            secs(g.finished_unix_ms).to_string(),
        ));
        values.push((&m::LAST_SUCCESS_BLOBS, g.blobs.len().to_string()));
        values.push((&m::LAST_SUCCESS_BYTES, g.total_bytes().to_string()));
        values.push((&m::LAST_SUCCESS_COPIED_BYTES, g.copied_bytes.to_string()));
    }
    values.push((&m::LAST_RUN_SUCCESS, u8::from(succeeded).to_string()));
    values.push((&m::LAST_RUN_TIMESTAMP_SECONDS, secs(now_ms).to_string()));
    textfile(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_file_names_the_contracts_families() {
        let m = ArtifactManifest {
            format: plan::FORMAT,
            source: "/artifacts".into(),
            started_unix_ms: 1_000,
            finished_unix_ms: 2_000,
            blobs: vec![Blob {
                hex: "a".repeat(64),
                size: 5,
            }],
            copied_bytes: 5,
        };
        let ok = metrics_text(Some(&m), true, 3_000);
        assert!(ok.contains("bsfg_artifact_backup_last_success_timestamp_seconds 2\n"));
        assert!(ok.contains("bsfg_artifact_backup_last_run_success 1\n"));
        let declared = bsfg_mgmt::metrics::declared(&ok);
        assert_eq!(
            declared.len(),
            bsfg_mgmt::metrics::artifact_backup::ALL.len()
        );
        let failed = metrics_text(None, false, 3_000);
        assert!(failed.contains("bsfg_artifact_backup_last_run_success 0\n"));
        assert!(!failed.contains("last_success_timestamp"));
    }
}
