//! The instance's state file, `<run dir>/state.json`: what this instance
//! created, written *before* each thing is created, so that `down` removes
//! everything even after the simulator itself crashed or was killed, and
//! touches nothing else.
//!
//! Teardown order: every process inside one of the recorded namespaces is
//! killed (found through the namespace, `ip netns pids`, so a daemon's
//! children, such as the controller and keepalived's script helpers, go
//! too), then recorded daemons that somehow left their namespace (by pid and
//! start time), then the namespaces (their links go with them), then the run
//! directory.

use crate::netns;
use crate::processes::{self, DaemonRecord};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
/// Where instances keep their run directories unless told otherwise.
pub const DEFAULT_RUN_ROOT: &str = "/run/bsfg-zonesim";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub instance: String,
    pub run_dir: PathBuf,
    pub zone_file: PathBuf,
    /// The simulator process that created the instance (informational).
    pub created_by_pid: u32,
    pub created_unix_ms: i64,
    /// Namespaces, recorded before creation.
    pub namespaces: Vec<String>,
    /// Daemons, recorded right after start (their namespace is recorded
    /// already, so a daemon started but not yet recorded is found there).
    pub daemons: Vec<DaemonRecord>,
    /// What runs the hosts' daemons.
    #[serde(default)]
    pub init: crate::container::Init,
}

impl State {
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join(STATE_FILE)
    }

    pub fn load(run_dir: &Path) -> Result<Option<State>> {
        let path = Self::path(run_dir);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is not a zonesim state file", path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Atomic replace (temp file + rename), so a crash mid-write leaves the
    /// previous version.
    pub fn save(&self) -> Result<()> {
        let path = Self::path(&self.run_dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }

    pub fn add_namespace(&mut self, ns: &str) -> Result<()> {
        if !self.namespaces.iter().any(|n| n == ns) {
            self.namespaces.push(ns.to_owned());
        }
        self.save()
    }

    pub fn add_daemon(&mut self, d: DaemonRecord) -> Result<()> {
        self.daemons.retain(|x| x.alive());
        self.daemons.push(d);
        self.save()
    }

    /// Live daemons of `host` (or all hosts).
    pub fn live(&self, host: Option<&str>) -> Vec<&DaemonRecord> {
        self.daemons
            .iter()
            .filter(|d| host.is_none_or(|h| d.host == h) && d.alive())
            .collect()
    }

    /// Whether any process of the instance still runs.
    pub fn anything_running(&self) -> bool {
        !self.live(None).is_empty() || self.namespaces.iter().any(|ns| !netns::pids(ns).is_empty())
    }
}

/// Namespaces of `instance` found on the machine (for a run directory that
/// was lost: `<instance>-` is an unambiguous prefix, see
/// [`netns::check_instance_name`]).
pub fn namespaces_of(instance: &str) -> Vec<String> {
    let prefix = format!("{instance}-");
    netns::list()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('-'))
        })
        .collect()
}

/// What [`teardown`] removed.
#[derive(Debug, Default)]
pub struct Removed {
    pub processes: usize,
    pub namespaces: Vec<String>,
    pub run_dir: Option<PathBuf>,
}

/// Removes everything instance `instance` created under `run_dir`.
pub fn teardown(instance: &str, run_dir: &Path) -> Result<Removed> {
    let state = State::load(run_dir)?;
    if let Some(s) = &state
        && s.instance != instance
    {
        bail!(
            "{} belongs to instance {:?}, not {instance:?}; refusing to touch it",
            State::path(run_dir).display(),
            s.instance
        );
    }
    let mut namespaces: Vec<String> = state
        .as_ref()
        .map(|s| s.namespaces.clone())
        .unwrap_or_default();
    for ns in namespaces_of(instance) {
        if !namespaces.contains(&ns) {
            namespaces.push(ns);
        }
    }
    let mut removed = Removed::default();
    // Everything inside our namespaces: daemons and their children.
    let mut pids = Vec::new();
    for ns in &namespaces {
        pids.extend(netns::pids(ns));
    }
    if let Some(s) = &state {
        for d in s.live(None) {
            if !pids.contains(&(d.pid as i32)) {
                pids.push(d.pid as i32);
            }
        }
    }
    removed.processes = pids.len();
    processes::kill_all(&pids);
    for ns in &namespaces {
        netns::delete(ns).with_context(|| format!("deleting namespace {ns}"))?;
        removed.namespaces.push(ns.clone());
    }
    // The power feed's disks (power-loss drills): detached, also when its
    // daemon was killed above and they answer ENOTCONN.
    detach_mounts_below(run_dir);
    if run_dir.exists() {
        if state.is_none() && !looks_like_ours(run_dir) {
            bail!(
                "{} has no {STATE_FILE}; not removing a directory this simulator may not have made",
                run_dir.display()
            );
        }
        std::fs::remove_dir_all(run_dir)
            .with_context(|| format!("removing {}", run_dir.display()))?;
        removed.run_dir = Some(run_dir.to_owned());
    }
    Ok(removed)
}

/// Lazily unmounts every mount at or below `dir`, deepest first.
fn detach_mounts_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
    }
}

/// A run directory whose state file was never written holds at most the
/// directory skeleton of a failed `up`.
fn looks_like_ours(run_dir: &Path) -> bool {
    std::fs::read_dir(run_dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State {
            instance: "t1".into(),
            run_dir: dir.path().to_owned(),
            ..Default::default()
        };
        s.save().unwrap();
        s.add_namespace("t1-alpha").unwrap();
        s.add_namespace("t1-alpha").unwrap();
        let loaded = State::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.namespaces, vec!["t1-alpha".to_owned()]);
        assert_eq!(loaded, s);
        assert!(!dir.path().join("state.json.tmp").exists());
    }

    #[test]
    fn a_missing_state_file_is_none_and_a_foreign_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(State::load(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join(STATE_FILE), "{\"not\": 1}").unwrap();
        assert!(State::load(dir.path()).is_err());
    }

    #[test]
    fn teardown_refuses_another_instances_run_dir() {
        let dir = tempfile::tempdir().unwrap();
        State {
            instance: "other".into(),
            run_dir: dir.path().to_owned(),
            ..Default::default()
        }
        .save()
        .unwrap();
        let e = teardown("mine", dir.path()).unwrap_err().to_string();
        assert!(e.contains("belongs to instance \"other\""), "{e}");
        assert!(dir.path().join(STATE_FILE).exists());
    }
}
