//! A power domain: the volumes of hosts on one power feed, behind one lock.
//!
//! Every file-system operation of every mount takes the domain's lock, and so
//! does [`PowerDomain::cut`]: a cut of several volumes happens between two
//! operations of each of them, at one instant for all. A volume that lost
//! power answers every operation with EIO until [`PowerDomain::boot`]
//! remounts it (a fresh FUSE connection, so the kernel keeps no page or
//! dentry cache of what the cut discarded) with the durable state.

use crate::fuse::{self, VolumeFs};
use crate::model::{Config, Usage, Volatile, Volume};
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The power state of one volume, as reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeStatus {
    pub name: String,
    pub mountpoint: PathBuf,
    pub powered: bool,
    pub semantics: String,
    /// What a cut would discard now.
    pub volatile: Volatile,
    pub used_bytes: u64,
    pub capacity_bytes: u64,
    /// Cuts since the volume was created.
    pub cuts: u64,
}

/// What one cut discarded, per volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CutReport {
    pub volumes: Vec<(String, Volatile)>,
}

pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) mountpoint: PathBuf,
    pub(crate) volume: Volume,
    pub(crate) powered: bool,
    /// Bumped by every cut: operations of an older mount are refused.
    pub(crate) epoch: u64,
}

pub(crate) type Shared = Arc<Mutex<Vec<Slot>>>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, Vec<Slot>> {
    // A panic in one operation must not take the other mounts down with it.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The volumes of one power feed.
pub struct PowerDomain {
    shared: Shared,
    mounted: Mutex<Vec<PathBuf>>,
}

impl std::fmt::Debug for PowerDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerDomain")
            .field("volumes", &self.names())
            .finish()
    }
}

impl Default for PowerDomain {
    fn default() -> Self {
        Self::new()
    }
}

impl PowerDomain {
    pub fn new() -> PowerDomain {
        let shared: Shared = Arc::new(Mutex::new(Vec::new()));
        // The clock of the modelled background writeback; ends with the domain.
        let weak = Arc::downgrade(&shared);
        let started = std::time::Instant::now();
        let _ = std::thread::Builder::new()
            .name("powercut-clock".into())
            .spawn(move || {
                while let Some(shared) = weak.upgrade() {
                    let now_ms = started.elapsed().as_millis() as u64;
                    for slot in lock(&shared).iter_mut().filter(|s| s.powered) {
                        slot.volume.tick(now_ms);
                    }
                    drop(shared);
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
            });
        PowerDomain {
            shared,
            mounted: Mutex::new(Vec::new()),
        }
    }

    pub fn names(&self) -> Vec<String> {
        lock(&self.shared).iter().map(|s| s.name.clone()).collect()
    }

    /// Creates an empty volume and mounts it at `mountpoint` (created if missing).
    pub fn add_volume(&self, name: &str, mountpoint: &Path, config: &Config) -> Result<()> {
        if name.is_empty() || name.contains(char::is_whitespace) {
            bail!("volume name {name:?} must be non-empty and without spaces");
        }
        std::fs::create_dir_all(mountpoint)
            .with_context(|| format!("creating mount point {}", mountpoint.display()))?;
        let mountpoint = std::fs::canonicalize(mountpoint)?;
        let index = {
            let mut slots = lock(&self.shared);
            if slots.iter().any(|s| s.name == name) {
                bail!("volume {name} already exists");
            }
            if slots.iter().any(|s| s.mountpoint == mountpoint) {
                bail!("{} is already a volume's mount point", mountpoint.display());
            }
            slots.push(Slot {
                name: name.to_owned(),
                mountpoint: mountpoint.clone(),
                volume: Volume::new(config),
                powered: true,
                epoch: 0,
            });
            slots.len() - 1
        };
        fuse::detach_stale(&mountpoint);
        self.mount(index, 0)
    }

    fn mount(&self, index: usize, epoch: u64) -> Result<()> {
        let (name, mountpoint) = {
            let slots = lock(&self.shared);
            (slots[index].name.clone(), slots[index].mountpoint.clone())
        };
        let fs = VolumeFs::new(self.shared.clone(), index, epoch);
        fuse::mount(fs, &name, &mountpoint)
            .with_context(|| format!("mounting volume {name} at {}", mountpoint.display()))?;
        let mut mounted = self.mounted.lock().unwrap_or_else(|e| e.into_inner());
        if !mounted.contains(&mountpoint) {
            mounted.push(mountpoint);
        }
        Ok(())
    }

    fn indices(&self, names: &[String]) -> Result<Vec<usize>> {
        let slots = lock(&self.shared);
        if names.is_empty() {
            return Ok((0..slots.len()).collect());
        }
        names
            .iter()
            .map(|n| {
                slots.iter().position(|s| &s.name == n).ok_or_else(|| {
                    anyhow!(
                        "no volume {n} (volumes: {})",
                        slots
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            })
            .collect()
    }

    /// Power lost, at one instant, on the named volumes (all when empty):
    /// what was not durable is discarded and every operation fails with EIO
    /// until [`PowerDomain::boot`].
    pub fn cut(&self, names: &[String]) -> Result<CutReport> {
        let indices = self.indices(names)?;
        let mut slots = lock(&self.shared);
        if let Some(s) = indices.iter().map(|&i| &slots[i]).find(|s| !s.powered) {
            bail!("volume {} has no power already; boot it first", s.name);
        }
        let volumes = indices
            .into_iter()
            .map(|i| {
                let s = &mut slots[i];
                s.powered = false;
                s.epoch += 1;
                (s.name.clone(), s.volume.cut())
            })
            .collect();
        Ok(CutReport { volumes })
    }

    /// Power back on the named volumes (all when empty) that lost it: each
    /// is unmounted and mounted again with its durable state.
    pub fn boot(&self, names: &[String]) -> Result<Vec<String>> {
        let mut booted = Vec::new();
        for i in self.indices(names)? {
            let (name, mountpoint, epoch) = {
                let mut slots = lock(&self.shared);
                let s = &mut slots[i];
                if s.powered {
                    continue;
                }
                s.powered = true;
                (s.name.clone(), s.mountpoint.clone(), s.epoch)
            };
            // The lock is not held: unmounting may wait on the old connection.
            fuse::unmount(&mountpoint)
                .with_context(|| format!("unmounting {}", mountpoint.display()))?;
            self.mount(i, epoch)?;
            booted.push(name);
        }
        Ok(booted)
    }

    pub fn status(&self) -> Vec<VolumeStatus> {
        lock(&self.shared)
            .iter()
            .map(|s| {
                let Usage {
                    capacity_bytes,
                    used_bytes,
                    ..
                } = s.volume.usage();
                VolumeStatus {
                    name: s.name.clone(),
                    mountpoint: s.mountpoint.clone(),
                    powered: s.powered,
                    semantics: s.volume.semantics().to_string(),
                    volatile: s.volume.volatile(),
                    used_bytes,
                    capacity_bytes,
                    cuts: s.epoch,
                }
            })
            .collect()
    }

    /// Unmounts every volume (lazily if still in use).
    pub fn shutdown(&self) {
        let mounted = std::mem::take(&mut *self.mounted.lock().unwrap_or_else(|e| e.into_inner()));
        for m in mounted {
            if let Err(e) = fuse::unmount(&m) {
                tracing::warn!("unmounting {}: {e}", m.display());
            }
        }
    }
}

impl Drop for PowerDomain {
    fn drop(&mut self) {
        self.shutdown();
    }
}
