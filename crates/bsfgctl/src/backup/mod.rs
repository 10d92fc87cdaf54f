//! `bsfgctl backup` and `bsfgctl restore`: snapshots of every JetStream
//! stream of the zone (store and forward buffers, the KV buckets of cursors,
//! artifacts and lease) taken with nats-server's own snapshot API, so a
//! restore brings back every message under its original sequence number
//! (the fact's offset) and every stream consumer with its cursor.
//!
//! | module | what |
//! |---|---|
//! | [`manifest`] | the manifest, snapshot directory names, retention (pure) |
//! | [`archive`] | reading a snapshot back: digest, decompression, archive walk |
//! | [`wire`] | nats-server's snapshot and restore protocol |
//! | [`progress`] | progress lines on standard error |
//! | [`artifacts`] | snapshots of a service host's artifact store (blobs) |

pub mod archive;
pub mod artifacts;
pub mod manifest;
pub mod progress;
pub mod wire;

use crate::exit::{self, CliError, Result};
use clap::Args;
use manifest::{Manifest, StreamEntry};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// nats-server's client URL: on a zone host, its local server.
    #[arg(
        long,
        env = "BSFG_BACKUP_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// NATS user (the zone's `nats.users.backup`).
    #[arg(long, env = "BSFG_BACKUP_NATS_USER", default_value = "bsfg-backup")]
    pub nats_user: String,
    /// File holding that user's password (one line). Without it the
    /// connection has no password (a server without authorization).
    #[arg(long, env = "BSFG_BACKUP_NATS_PASSWORD_FILE", value_name = "FILE")]
    pub nats_password_file: Option<PathBuf>,
    /// Deadline of connecting and of each API request.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub nats_timeout: Duration,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Snapshot every JetStream stream of the zone into a new directory \
        `snapshot-<UTC time>` under --into, read each snapshot back (digest, \
        decompression, every archive entry), then delete the oldest snapshots beyond \
        --keep. The snapshot is consistent per stream and keeps sequence numbers and \
        consumer cursors; facts appended after it are not in it.\n\nAn unfinished \
        snapshot stays in a hidden `.snapshot-*.partial` directory and is never \
        counted as a snapshot."
)]
pub struct BackupArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// Directory that holds the snapshots.
    #[arg(long, value_name = "DIR")]
    pub into: PathBuf,
    /// How many snapshots to keep (the newest); 0 keeps all.
    #[arg(long, default_value_t = 7)]
    pub keep: usize,
    /// Snapshot only this stream (repeatable); default: every stream.
    #[arg(long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// Also write the result as Prometheus metrics (node exporter textfile
    /// format) to this file, replaced atomically.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    long_about = "Restore the streams of a snapshot made by `bsfgctl backup`. Every \
        archive is read back first; nothing in the zone changes unless all of them \
        verify. Nothing may write meanwhile: stop both gate agents (they stop the \
        controllers) before, start them after. The controller lease is not restored \
        (the first controller that starts takes a new one) unless --include-lease."
)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// The snapshot directory (`.../snapshot-<UTC time>`).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Only read the snapshot back; do not connect to the zone.
    #[arg(long)]
    pub verify_only: bool,
    /// Restore only this stream (repeatable); default: every stream but the lease.
    #[arg(long = "stream", value_name = "NAME")]
    pub streams: Vec<String>,
    /// Delete a stream that exists before restoring it (its current
    /// content is lost). Without it an existing stream stops the restore
    /// before anything changed.
    #[arg(long)]
    pub replace: bool,
    /// The controller lease's stream (KV bucket `lease.bucket`).
    #[arg(long, default_value = "KV_bsfg_lease", value_name = "NAME")]
    pub lease_stream: String,
    /// Restore the lease's stream too.
    #[arg(long)]
    pub include_lease: bool,
    /// How long to wait while the zone's JetStream API does not answer yet
    /// ("no responders": a cluster just rebuilt or restarted is still
    /// forming); 0 fails at once.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub wait: Duration,
}

/// The wait of `restore --wait`: retries an API request that found no
/// responder, with a progress line every few seconds, until the budget is
/// spent.
struct ApiWait {
    budget: Duration,
    waited: Duration,
    last_note: Option<Duration>,
}

impl ApiWait {
    const RETRY: Duration = Duration::from_millis(250);
    const NOTE_EVERY: Duration = Duration::from_secs(5);

    fn new(budget: Duration) -> ApiWait {
        ApiWait {
            budget,
            waited: Duration::ZERO,
            last_note: None,
        }
    }

    /// One "no responders" answer for `what`: sleeps and returns, or fails
    /// (exit 3) once `--wait` is spent.
    async fn no_responders(&mut self, what: &str, url: &str) -> Result<()> {
        if self.waited >= self.budget {
            return Err(CliError::Unreachable(format!(
                "{what}: the JetStream API at {url} still answers \"no responders\" after {} \
                 (--wait): is the cluster formed and JetStream enabled? (bsfgctl zone status)",
                humantime::format_duration(self.budget)
            )));
        }
        if self
            .last_note
            .is_none_or(|t| self.waited >= t + Self::NOTE_EVERY)
        {
            eprintln!(
                "{what}: the JetStream API at {url} does not answer yet (no responders); \
                 waited {} of {} (--wait)",
                humantime::format_duration(Duration::from_secs(self.waited.as_secs())),
                humantime::format_duration(self.budget)
            );
            self.last_note = Some(self.waited);
        }
        tokio::time::sleep(Self::RETRY).await;
        self.waited += Self::RETRY;
        Ok(())
    }

    /// `request` again while it finds no responder.
    async fn patiently<T, Fut>(
        &mut self,
        stream: &str,
        url: &str,
        mut request: impl FnMut() -> Fut,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = std::result::Result<T, wire::WireError>>,
    {
        loop {
            match request().await {
                Err(wire::WireError::NoResponders) => self.no_responders(stream, url).await?,
                r => return r.map_err(|e| wire_err(stream, e)),
            }
        }
    }
}

async fn connect(a: &NatsArgs) -> Result<async_nats::Client> {
    let mut opts = async_nats::ConnectOptions::new()
        .name("bsfgctl-backup")
        .connection_timeout(a.nats_timeout)
        .request_timeout(Some(a.nats_timeout));
    if let Some(path) = &a.nats_password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("NATS password file {}: {e}", path.display())))?;
        opts = opts.user_and_password(
            a.nats_user.clone(),
            text.trim_end_matches(['\n', '\r']).to_owned(),
        );
    }
    opts.connect(a.nats_url.as_str())
        .await
        .map_err(|e| CliError::Unreachable(format!("connecting to NATS at {}: {e}", a.nats_url)))
}

fn wire_err(stream: &str, e: wire::WireError) -> CliError {
    match e {
        wire::WireError::Nats(_) | wire::WireError::Stalled(_) => {
            CliError::Unreachable(format!("{stream}: {e}"))
        }
        _ => CliError::Failed(format!("{stream}: {e}")),
    }
}

fn io_err(what: &Path, e: std::io::Error) -> CliError {
    CliError::Failed(format!("{}: {e}", what.display()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The JSON document of `backup` and `restore --json`.
#[derive(Debug, serde::Serialize)]
struct Report<'a> {
    snapshot: PathBuf,
    streams: Vec<StreamReport<'a>>,
    total_bytes: u64,
    seconds: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pruned: Vec<String>,
}

#[derive(Debug, serde::Serialize)]
struct StreamReport<'a> {
    name: &'a str,
    messages: u64,
    first_seq: u64,
    last_seq: u64,
    consumers: &'a [String],
    bytes: u64,
    action: &'static str,
}

impl<'a> StreamReport<'a> {
    fn of(s: &'a StreamEntry, action: &'static str) -> StreamReport<'a> {
        StreamReport {
            name: &s.name,
            messages: s.state.messages,
            first_seq: s.state.first_seq,
            last_seq: s.state.last_seq,
            consumers: &s.verified.consumers,
            bytes: s.bytes,
            action,
        }
    }
}

fn print_report(r: &Report, json: bool) {
    if json {
        crate::commands::print_json(r);
        return;
    }
    let rows: Vec<Vec<String>> = r
        .streams
        .iter()
        .map(|s| {
            vec![
                s.name.to_owned(),
                s.action.to_owned(),
                s.messages.to_string(),
                format!("{}..{}", s.first_seq, s.last_seq),
                s.consumers.len().to_string(),
                progress::human_bytes(s.bytes),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::output::table::render(
            &[
                "STREAM",
                "ACTION",
                "MESSAGES",
                "SEQUENCES",
                "CONSUMERS",
                "SIZE"
            ],
            &rows
        )
    );
    println!(
        "{}: {} in {:.1} s",
        r.snapshot.display(),
        progress::human_bytes(r.total_bytes),
        r.seconds
    );
    for p in &r.pruned {
        println!("pruned {p}");
    }
}

pub async fn backup(a: &BackupArgs, json: bool) -> Result<u8> {
    let started = std::time::Instant::now();
    let result = take_snapshot(a).await;
    if let Some(path) = &a.metrics_file {
        write_metrics(path, &a.into, result.as_ref().ok().map(|(m, _)| m))?;
    }
    let (m, dir) = result?;
    let pruned = prune(&a.into, a.keep)?;
    let report = Report {
        snapshot: dir,
        streams: m
            .streams
            .iter()
            .map(|s| StreamReport::of(s, "snapshot, verified"))
            .collect(),
        total_bytes: m.total_bytes(),
        seconds: started.elapsed().as_secs_f64(),
        pruned,
    };
    print_report(&report, json);
    Ok(exit::OK)
}

async fn take_snapshot(a: &BackupArgs) -> Result<(Manifest, PathBuf)> {
    let client = connect(&a.nats).await?;
    let names = if a.streams.is_empty() {
        wire::stream_names(&client)
            .await
            .map_err(|e| wire_err("listing streams", e))?
    } else {
        a.streams.clone()
    };
    let started_unix_ms = now_ms();
    let name = manifest::dir_name(started_unix_ms);
    let partial = a.into.join(format!(".{name}.partial"));
    let done = a.into.join(&name);
    std::fs::create_dir_all(&a.into).map_err(|e| io_err(&a.into, e))?;
    // 0700: a snapshot holds every fact of the zone.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&partial)
        .map_err(|e| io_err(&partial, e))?;
    let mut streams = Vec::new();
    for stream in &names {
        let file = format!("{stream}.tar.s2");
        let path = partial.join(&file);
        let mut out = std::fs::File::create(&path).map_err(|e| io_err(&path, e))?;
        let mut hash = Sha256::new();
        let mut bytes = 0u64;
        let mut bar = progress::Progress::new(format!("snapshot {stream}"));
        let snap = wire::snapshot(&client, stream, |chunk| {
            out.write_all(chunk)?;
            hash.update(chunk);
            bytes += chunk.len() as u64;
            bar.update(bytes, None);
            Ok(())
        })
        .await
        .map_err(|e| wire_err(stream, e))?;
        out.sync_all().map_err(|e| io_err(&path, e))?;
        drop(out);
        let sha256 = format!("sha256:{}", hex::encode(hash.finalize()));
        // Read back from the disk: what a restore would read.
        let verified = tokio::task::spawn_blocking({
            let (path, sha256) = (path.clone(), sha256.clone());
            move || archive::verify_file(&path, &sha256)
        })
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?
        .map_err(|e| CliError::Failed(format!("{stream}: the snapshot does not read back: {e}")))?;
        bar.finish(bytes, "verified");
        streams.push(StreamEntry {
            name: stream.clone(),
            file,
            bytes,
            sha256,
            config: snap.config,
            state: snap.state,
            verified,
        });
    }
    let m = Manifest {
        format: manifest::FORMAT,
        started_unix_ms,
        finished_unix_ms: now_ms(),
        streams,
    };
    let mpath = partial.join(manifest::MANIFEST);
    let text = serde_json::to_vec_pretty(&m).map_err(|e| CliError::Failed(e.to_string()))?;
    write_synced(&mpath, &text)?;
    std::fs::rename(&partial, &done).map_err(|e| io_err(&done, e))?;
    sync_dir(&a.into)?;
    Ok((m, done))
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| io_err(path, e))?;
    f.write_all(data).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

fn dir_entries(dir: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    Ok(rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect())
}

fn prune(into: &Path, keep: usize) -> Result<Vec<String>> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let victims = manifest::to_prune(&dir_entries(into)?, keep);
    for v in &victims {
        let p = into.join(v);
        std::fs::remove_dir_all(&p).map_err(|e| io_err(&p, e))?;
    }
    Ok(victims)
}

/// The newest completed snapshot under `into` and its manifest.
pub fn newest(into: &Path) -> Result<Option<(PathBuf, Manifest)>> {
    let mut names: Vec<String> = dir_entries(into)?
        .into_iter()
        .filter(|n| n.starts_with(manifest::DIR_PREFIX))
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

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let p = dir.join(manifest::MANIFEST);
    let text = std::fs::read(&p).map_err(|e| io_err(&p, e))?;
    let m: Manifest = serde_json::from_slice(&text)
        .map_err(|e| CliError::Failed(format!("{}: {e}", p.display())))?;
    if m.format != manifest::FORMAT {
        return Err(CliError::Failed(format!(
            "{}: manifest format {} (this bsfgctl reads {})",
            p.display(),
            m.format,
            manifest::FORMAT
        )));
    }
    Ok(m)
}

/// Node exporter textfile: the newest good snapshot's time and size, and
/// whether this run succeeded.
fn write_metrics(path: &Path, into: &Path, this_run: Option<&Manifest>) -> Result<()> {
    let newest = newest(into).ok().flatten().map(|(_, m)| m);
    let good = this_run.or(newest.as_ref());
    write_textfile(path, &metrics_text(good, this_run.is_some(), now_ms()))
}

/// Replaces a textfile-collector file atomically: the node exporter never
/// reads half of one.
fn write_textfile(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text).map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// Prometheus text format of gauge values, one family each.
fn textfile(values: Vec<(&bsfg_mgmt::metrics::MetricFamily, String)>) -> String {
    values
        .into_iter()
        .map(|(f, v)| {
            format!(
                "# HELP {n} {h}\n# TYPE {n} {t}\n{n} {v}\n",
                n = f.name,
                h = f.help,
                t = f.kind.name()
            )
        })
        .collect()
}

/// The metrics file (Prometheus text format) of a run that ended at `now_ms`.
pub fn metrics_text(good: Option<&Manifest>, succeeded: bool, now_ms: i64) -> String {
    use bsfg_mgmt::metrics::backup as m;
    let secs = |ms: i64| ms as f64 / 1000.0;
    let mut values: Vec<(&bsfg_mgmt::metrics::MetricFamily, String)> = Vec::new();
    if let Some(g) = good {
        values.push((
            &m::LAST_SUCCESS_TIMESTAMP_SECONDS,
            secs(g.finished_unix_ms).to_string(),
        ));
        values.push((&m::LAST_SUCCESS_BYTES, g.total_bytes().to_string()));
    }
    values.push((&m::LAST_RUN_SUCCESS, u8::from(succeeded).to_string()));
    values.push((&m::LAST_RUN_TIMESTAMP_SECONDS, secs(now_ms).to_string()));
    textfile(values)
}

pub async fn restore(a: &RestoreArgs, json: bool) -> Result<u8> {
    let started = std::time::Instant::now();
    let m = read_manifest(&a.from)?;
    let chosen: Vec<&StreamEntry> = m
        .streams
        .iter()
        .filter(|s| {
            if a.streams.is_empty() {
                a.include_lease || manifest::restored_by_default(&s.name, &a.lease_stream)
            } else {
                a.streams.contains(&s.name)
            }
        })
        .collect();
    if let Some(missing) = a
        .streams
        .iter()
        .find(|n| !m.streams.iter().any(|s| &s.name == *n))
    {
        return Err(CliError::Usage(format!(
            "stream {missing} is not in the snapshot {}",
            a.from.display()
        )));
    }
    // Every archive reads back before anything in the zone changes.
    for s in &chosen {
        let path = a.from.join(&s.file);
        let mut bar = progress::Progress::new(format!("verify {}", s.name));
        let sha = s.sha256.clone();
        let found = tokio::task::spawn_blocking(move || archive::verify_file(&path, &sha))
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?
            .map_err(|e| {
                CliError::Failed(format!("{}: the snapshot does not read back: {e}", s.name))
            })?;
        if found != s.verified {
            return Err(CliError::Failed(format!(
                "{}: the archive now holds {found:?}, the manifest recorded {:?}",
                s.name, s.verified
            )));
        }
        bar.finish(s.bytes, "verified");
    }
    let mut rows = Vec::new();
    if !a.verify_only {
        let client = connect(&a.nats).await?;
        let url = a.nats.nats_url.as_str();
        let mut wait = ApiWait::new(a.wait);
        if !a.replace {
            let mut existing = Vec::new();
            for s in &chosen {
                if wait
                    .patiently(&s.name, url, || wire::exists(&client, &s.name))
                    .await?
                {
                    existing.push(s.name.as_str());
                }
            }
            if !existing.is_empty() {
                return Err(CliError::Failed(format!(
                    "these streams exist: {} (nothing was changed; --replace deletes them first)",
                    existing.join(", ")
                )));
            }
        }
        for s in &chosen {
            if a.replace {
                wait.patiently(&s.name, url, || wire::delete(&client, &s.name))
                    .await?;
            }
            let path = a.from.join(&s.file);
            let mut bar = progress::Progress::new(format!("restore {}", s.name));
            // "No responders" comes before the first chunk is read: open the
            // archive again for the next try.
            let got = loop {
                let mut input = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| io_err(&path, e))?;
                match wire::restore(&client, &s.name, &s.config, &s.state, &mut input, |n| {
                    bar.update(n, Some(s.bytes))
                })
                .await
                {
                    Err(wire::WireError::NoResponders) => wait.no_responders(&s.name, url).await?,
                    r => break r.map_err(|e| wire_err(&s.name, e))?,
                }
            };
            if !manifest::same_content(&got, &s.state) {
                return Err(CliError::Failed(format!(
                    "{}: restored sequences {}..{} ({} messages), the snapshot had {}..{} ({})",
                    s.name,
                    got.first_seq,
                    got.last_seq,
                    got.messages,
                    s.state.first_seq,
                    s.state.last_seq,
                    s.state.messages
                )));
            }
            bar.finish(s.bytes, "restored");
            rows.push(*s);
        }
    }
    let action = if a.verify_only {
        "verified"
    } else {
        "restored"
    };
    let listed = if a.verify_only { chosen } else { rows };
    let report = Report {
        snapshot: a.from.clone(),
        total_bytes: listed.iter().map(|s| s.bytes).sum(),
        streams: listed.iter().map(|s| StreamReport::of(s, action)).collect(),
        seconds: started.elapsed().as_secs_f64(),
        pruned: Vec::new(),
    };
    print_report(&report, json);
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--wait` bounds the retries: `0` gives up at the first "no
    /// responders", a budget at budget/RETRY sleeps; any other error
    /// ends the wait at once.
    #[tokio::test]
    async fn the_wait_for_responders_is_bounded_and_only_for_no_responders() {
        let mut w = ApiWait::new(Duration::ZERO);
        assert!(matches!(
            w.no_responders("facts", "nats://x:4222").await,
            Err(CliError::Unreachable(_))
        ));

        let mut w = ApiWait::new(ApiWait::RETRY * 2);
        let mut calls = 0;
        let r: Result<()> = w
            .patiently("facts", "nats://x:4222", || {
                calls += 1;
                async { Err(wire::WireError::NoResponders) }
            })
            .await;
        assert!(matches!(r, Err(CliError::Unreachable(_))));
        assert_eq!(calls, 3);
        assert_eq!(w.waited, ApiWait::RETRY * 2);

        let mut w = ApiWait::new(Duration::from_secs(60));
        let mut calls = 0;
        let r: Result<()> = w
            .patiently("facts", "nats://x:4222", || {
                calls += 1;
                async { Err(wire::WireError::Protocol("bad answer".into())) }
            })
            .await;
        assert!(r.is_err() && !matches!(r, Err(CliError::Unreachable(_))));
        assert_eq!((calls, w.waited), (1, Duration::ZERO));
    }

    #[test]
    fn the_metrics_file_names_the_contracts_families() {
        let m = Manifest {
            format: manifest::FORMAT,
            started_unix_ms: 1_000,
            finished_unix_ms: 2_500,
            streams: Vec::new(),
        };
        let ok = metrics_text(Some(&m), true, 3_000);
        assert!(
            ok.contains("\nbsfg_backup_last_success_timestamp_seconds 2.5\n"),
            "{ok}"
        );
        assert!(ok.contains("\nbsfg_backup_last_run_success 1\n"), "{ok}");
        assert!(
            ok.contains("# TYPE bsfg_backup_last_run_timestamp_seconds gauge\n"),
            "{ok}"
        );
        let declared = bsfg_mgmt::metrics::declared(&ok);
        assert_eq!(declared.len(), bsfg_mgmt::metrics::backup::ALL.len());
        // A failed first run: no success yet, and it says so.
        let failed = metrics_text(None, false, 3_000);
        assert!(!failed.contains("last_success"), "{failed}");
        assert!(
            failed.contains("\nbsfg_backup_last_run_success 0\n"),
            "{failed}"
        );
    }
}
