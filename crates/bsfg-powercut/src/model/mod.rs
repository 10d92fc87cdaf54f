//! The durability model of one volume (one host's disk), without I/O.
//!
//! Every inode has a *current* state (what a running process sees) and a
//! *durable* state (what survives a power cut):
//!
//! - file bytes and size become durable with `fsync`/`fdatasync` of the file
//!   (or a write through an `O_SYNC`/`O_DSYNC` handle); [`pages`] keeps the
//!   bytes written since as a copy-on-write overlay;
//! - a directory entry (create, mkdir, link, symlink, unlink, rmdir, rename)
//!   becomes durable with `fsync` of its directory. A rename is atomic: the
//!   sync of either directory it touches commits both of its sides (as a
//!   journal does), so a cut never leaves a file under both names or under
//!   none;
//! - mode, owner and times become durable with `fsync` (not `fdatasync`).
//!
//! [`Volume::cut`] discards every current state that is not durable at once:
//! the volume then holds exactly what was made durable, and whatever is no
//! longer reachable from the root through durable entries is gone, even if
//! its bytes were synced (a file whose entry was never synced is lost).
//!
//! [`Semantics::Posix`] is the above, the strict reading of POSIX.
//! [`Semantics::Journaled`] approximates ext4 `data=ordered` and XFS, which
//! keep all metadata in one journal: any sync also commits every namespace
//! and attribute change made before it, in every directory, but still only
//! the synced file's bytes.

mod pages;
#[cfg(test)]
mod tests;

use pages::{FileData, Pool};
pub use pages::{MAX_FILE_SIZE, PAGE};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

/// Inode number; [`ROOT`] is the root directory.
pub type Ino = u64;
pub const ROOT: Ino = 1;
/// An open-file handle.
pub type Fh = u64;
/// Longest name of one directory entry, in bytes (as ext4).
pub const MAX_NAME: usize = 255;

/// Which operations make metadata durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Semantics {
    /// An entry is durable only after `fsync` of its directory.
    #[default]
    Posix,
    /// Any sync commits all metadata changes made before it (ext4 `data=ordered`, XFS).
    Journaled,
}

impl std::str::FromStr for Semantics {
    type Err = String;
    fn from_str(s: &str) -> Result<Semantics, String> {
        match s {
            "posix" => Ok(Semantics::Posix),
            "journaled" => Ok(Semantics::Journaled),
            other => Err(format!(
                "unknown semantics {other:?}: use \"posix\" or \"journaled\""
            )),
        }
    }
}

impl std::fmt::Display for Semantics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Semantics::Posix => "posix",
            Semantics::Journaled => "journaled",
        })
    }
}

/// How a volume starts.
#[derive(Debug, Clone)]
pub struct Config {
    pub semantics: Semantics,
    /// Bytes of file pages the volume holds (durable and not yet synced); ENOSPC past it.
    pub capacity_bytes: u64,
    /// Owner and permission bits of the root directory.
    pub root_uid: u32,
    pub root_gid: u32,
    pub root_mode: u32,
    /// The kernel's background writeback, if modelled; `None`: nothing
    /// becomes durable without a sync (the worst case).
    pub writeback: Option<Writeback>,
}

/// What the kernel makes durable by itself, as [`Volume::tick`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writeback {
    /// Bytes of a file dirty for this long are written back (Linux
    /// `vm.dirty_expire_centisecs`, 30 s by default).
    pub expire_ms: u64,
    /// Journaled semantics: metadata is committed this often (ext4 `commit=`, 5 s by default).
    pub journal_commit_ms: u64,
}

impl Writeback {
    /// Linux and ext4 defaults.
    pub const LINUX_DEFAULTS: Writeback = Writeback {
        expire_ms: 30_000,
        journal_commit_ms: 5_000,
    };
}

impl Default for Config {
    fn default() -> Config {
        Config {
            semantics: Semantics::Posix,
            capacity_bytes: 4 << 30,
            root_uid: 0,
            root_gid: 0,
            root_mode: 0o755,
            writeback: None,
        }
    }
}

/// Errors, each one errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("directory not empty")]
    NotEmpty,
    #[error("invalid argument")]
    Invalid,
    #[error("file name too long")]
    NameTooLong,
    #[error("no space left on the volume")]
    NoSpace,
    #[error("file too large")]
    TooBig,
    #[error("bad file handle")]
    BadHandle,
    #[error("operation not permitted")]
    NotPermitted,
    #[error("operation not supported")]
    NotSupported,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// What `stat` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    /// 512-byte blocks stored.
    pub blocks: u64,
    /// Permission bits (07777).
    pub perm: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

/// Changes of `setattr`; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
}

/// Flags of an open handle that change what a write does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// `O_APPEND`: every write goes to the end of the file.
    pub append: bool,
    /// `O_SYNC` (data and attributes) or `O_DSYNC` (data): every write is synced before it returns.
    pub sync: Option<SyncKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// `fsync`: data, size and attributes.
    All,
    /// `fdatasync`: data and size.
    Data,
}

/// `renameat2` behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RenameMode {
    #[default]
    Replace,
    NoReplace,
    Exchange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: OsString,
    pub ino: Ino,
    pub kind: Kind,
}

/// What a cut would discard now, or did discard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volatile {
    /// Bytes written and not synced (whole pages).
    pub unsynced_bytes: u64,
    /// Files whose bytes or size differ from their durable state.
    pub unsynced_files: u64,
    /// Directory entries changed and not synced.
    pub unsynced_entries: u64,
}

/// Space of the volume, for `statfs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub inodes: u64,
}

#[derive(Debug, Clone, Copy)]
struct Attrs {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

#[derive(Debug)]
struct Dir {
    entries: BTreeMap<OsString, Ino>,
    durable: BTreeMap<OsString, Ino>,
    /// Names whose current entry may differ from the durable one.
    pending: BTreeSet<OsString>,
    parent: Ino,
}

#[derive(Debug)]
enum Node {
    File(FileData),
    Dir(Dir),
    Symlink(OsString),
}

#[derive(Debug)]
struct Inode {
    node: Node,
    attrs: Attrs,
    durable_attrs: Attrs,
    /// Current entries naming this inode.
    links: u32,
    /// Durable entries naming this inode (it must be kept while any exists).
    durable_refs: u32,
    open: u32,
}

impl Inode {
    fn kind(&self) -> Kind {
        match self.node {
            Node::File(_) => Kind::File,
            Node::Dir(_) => Kind::Dir,
            Node::Symlink(_) => Kind::Symlink,
        }
    }
}

#[derive(Debug, Clone)]
struct Handle {
    ino: Ino,
    flags: OpenFlags,
}

/// A rename not yet durable on either side.
#[derive(Debug, Clone)]
struct Rename {
    ino: Ino,
    from: (Ino, OsString),
    to: (Ino, OsString),
}

/// One volume: the inode table with current and durable states.
#[derive(Debug)]
pub struct Volume {
    semantics: Semantics,
    inodes: HashMap<Ino, Inode>,
    next_ino: Ino,
    handles: HashMap<Fh, Handle>,
    next_fh: Fh,
    pool: Pool,
    pending_dirs: BTreeSet<Ino>,
    pending_attrs: BTreeSet<Ino>,
    renames: Vec<Rename>,
    writeback: Option<Writeback>,
    /// Files with bytes not synced, by the tick at which they became dirty.
    dirty_since: HashMap<Ino, u64>,
    now_ms: u64,
    last_commit_ms: u64,
}

fn check_name(name: &OsStr) -> Result<(), FsError> {
    use std::os::unix::ffi::OsStrExt;
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(FsError::Invalid);
    }
    if b.len() > MAX_NAME {
        return Err(FsError::NameTooLong);
    }
    Ok(())
}

impl Volume {
    pub fn new(config: &Config) -> Volume {
        let now = SystemTime::now();
        let attrs = Attrs {
            mode: config.root_mode & 0o7777,
            uid: config.root_uid,
            gid: config.root_gid,
            atime: now,
            mtime: now,
            ctime: now,
        };
        let root = Inode {
            node: Node::Dir(Dir {
                entries: BTreeMap::new(),
                durable: BTreeMap::new(),
                pending: BTreeSet::new(),
                parent: ROOT,
            }),
            attrs,
            durable_attrs: attrs,
            links: 1,
            durable_refs: 1,
            open: 0,
        };
        Volume {
            semantics: config.semantics,
            inodes: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
            handles: HashMap::new(),
            next_fh: 1,
            pool: Pool::new(config.capacity_bytes),
            pending_dirs: BTreeSet::new(),
            pending_attrs: BTreeSet::new(),
            renames: Vec::new(),
            writeback: config.writeback,
            dirty_since: HashMap::new(),
            now_ms: 0,
            last_commit_ms: 0,
        }
    }

    /// Time passes (milliseconds since the volume started): with a
    /// [`Writeback`], bytes dirty for longer than its expiry become durable,
    /// as do (journaled) all metadata changes at each journal commit.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        let Some(wb) = self.writeback else { return };
        let expired: Vec<Ino> = self
            .dirty_since
            .iter()
            .filter(|(_, since)| now_ms.saturating_sub(**since) >= wb.expire_ms)
            .map(|(ino, _)| *ino)
            .collect();
        for ino in expired {
            self.dirty_since.remove(&ino);
            if let Some(Inode {
                node: Node::File(f),
                ..
            }) = self.inodes.get_mut(&ino)
            {
                f.sync(&mut self.pool);
            }
        }
        if self.semantics == Semantics::Journaled
            && now_ms.saturating_sub(self.last_commit_ms) >= wb.journal_commit_ms
        {
            self.last_commit_ms = now_ms;
            self.commit_journal();
        }
    }

    fn mark_dirty(&mut self, ino: Ino) {
        let now = self.now_ms;
        self.dirty_since.entry(ino).or_insert(now);
    }

    pub fn semantics(&self) -> Semantics {
        self.semantics
    }

    // ------------------------------------------------------------ lookups

    fn inode(&self, ino: Ino) -> Result<&Inode, FsError> {
        self.inodes.get(&ino).ok_or(FsError::NotFound)
    }

    fn inode_mut(&mut self, ino: Ino) -> Result<&mut Inode, FsError> {
        self.inodes.get_mut(&ino).ok_or(FsError::NotFound)
    }

    fn dir(&self, ino: Ino) -> Result<&Dir, FsError> {
        match &self.inode(ino)?.node {
            Node::Dir(d) => Ok(d),
            _ => Err(FsError::NotDir),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut Dir, FsError> {
        match &mut self.inode_mut(ino)?.node {
            Node::Dir(d) => Ok(d),
            _ => Err(FsError::NotDir),
        }
    }

    fn file(&self, ino: Ino) -> Result<&FileData, FsError> {
        match &self.inode(ino)?.node {
            Node::File(f) => Ok(f),
            Node::Dir(_) => Err(FsError::IsDir),
            Node::Symlink(_) => Err(FsError::Invalid),
        }
    }

    pub fn getattr(&self, ino: Ino) -> Result<Attr, FsError> {
        let i = self.inode(ino)?;
        let (size, blocks, nlink) = match &i.node {
            Node::File(f) => (f.size(), f.pages() * (PAGE as u64 / 512), i.links),
            Node::Dir(d) => {
                let subdirs = d
                    .entries
                    .values()
                    .filter(|c| matches!(self.inodes.get(c).map(|c| &c.node), Some(Node::Dir(_))))
                    .count() as u32;
                (PAGE as u64, PAGE as u64 / 512, 2 + subdirs)
            }
            Node::Symlink(t) => (t.len() as u64, 0, i.links),
        };
        Ok(Attr {
            ino,
            kind: i.kind(),
            size,
            blocks,
            perm: i.attrs.mode,
            nlink,
            uid: i.attrs.uid,
            gid: i.attrs.gid,
            atime: i.attrs.atime,
            mtime: i.attrs.mtime,
            ctime: i.attrs.ctime,
        })
    }

    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Attr, FsError> {
        let ino = *self
            .dir(parent)?
            .entries
            .get(name)
            .ok_or(FsError::NotFound)?;
        self.getattr(ino)
    }

    /// The entries of a directory (without `.` and `..`), in name order.
    pub fn readdir(&self, ino: Ino) -> Result<Vec<DirEntry>, FsError> {
        let d = self.dir(ino)?;
        Ok(d.entries
            .iter()
            .filter_map(|(name, &child)| {
                self.inodes.get(&child).map(|c| DirEntry {
                    name: name.clone(),
                    ino: child,
                    kind: c.kind(),
                })
            })
            .collect())
    }

    /// The parent of a directory (the root is its own parent).
    pub fn parent(&self, ino: Ino) -> Result<Ino, FsError> {
        Ok(self.dir(ino)?.parent)
    }

    pub fn readlink(&self, ino: Ino) -> Result<OsString, FsError> {
        match &self.inode(ino)?.node {
            Node::Symlink(t) => Ok(t.clone()),
            _ => Err(FsError::Invalid),
        }
    }

    pub fn read(&self, ino: Ino, offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
        Ok(self.file(ino)?.read(offset, len))
    }

    pub fn usage(&self) -> Usage {
        Usage {
            capacity_bytes: self.pool.capacity * PAGE as u64,
            used_bytes: self.pool.used * PAGE as u64,
            inodes: self.inodes.len() as u64,
        }
    }

    /// What a cut would discard now.
    pub fn volatile(&self) -> Volatile {
        let mut v = Volatile::default();
        for i in self.inodes.values() {
            if let Node::File(f) = &i.node
                && f.is_dirty()
            {
                v.unsynced_files += 1;
                v.unsynced_bytes += f.dirty_bytes();
            }
        }
        for &d in &self.pending_dirs {
            if let Ok(d) = self.dir(d) {
                v.unsynced_entries += d
                    .pending
                    .iter()
                    .filter(|n| d.entries.get(*n) != d.durable.get(*n))
                    .count() as u64;
            }
        }
        v
    }

    // ------------------------------------------------------------ namespace

    fn new_inode(&mut self, node: Node, mode: u32, uid: u32, gid: u32) -> Ino {
        let now = SystemTime::now();
        let attrs = Attrs {
            mode: mode & 0o7777,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
        };
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                node,
                attrs,
                // The attributes an inode is created with are part of its creation.
                durable_attrs: attrs,
                links: 0,
                durable_refs: 0,
                open: 0,
            },
        );
        ino
    }

    fn touch_dir(&mut self, dir: Ino) {
        if let Some(d) = self.inodes.get_mut(&dir) {
            let now = SystemTime::now();
            d.attrs.mtime = now;
            d.attrs.ctime = now;
            self.pending_attrs.insert(dir);
        }
    }

    fn add_entry(&mut self, dir: Ino, name: &OsStr, ino: Ino) -> Result<(), FsError> {
        let d = self.dir_mut(dir)?;
        d.entries.insert(name.to_owned(), ino);
        d.pending.insert(name.to_owned());
        self.pending_dirs.insert(dir);
        if let Some(Inode {
            node: Node::Dir(child),
            ..
        }) = self.inodes.get_mut(&ino)
        {
            child.parent = dir;
        }
        self.inode_mut(ino)?.links += 1;
        self.touch_dir(dir);
        Ok(())
    }

    /// Removes an entry; the inode is freed by the caller's [`Volume::release_if_unused`].
    fn remove_entry(&mut self, dir: Ino, name: &OsStr) -> Result<Ino, FsError> {
        let d = self.dir_mut(dir)?;
        let ino = d.entries.remove(name).ok_or(FsError::NotFound)?;
        d.pending.insert(name.to_owned());
        self.pending_dirs.insert(dir);
        let i = self.inode_mut(ino)?;
        i.links = i.links.saturating_sub(1);
        i.attrs.ctime = SystemTime::now();
        self.touch_dir(dir);
        Ok(ino)
    }

    /// Frees an inode nothing refers to any more (no entry, durable or
    /// current, and no open handle), and what only it kept alive.
    fn release_if_unused(&mut self, ino: Ino) {
        let mut work = vec![ino];
        while let Some(ino) = work.pop() {
            let unused = match self.inodes.get(&ino) {
                Some(i) => ino != ROOT && i.links == 0 && i.open == 0 && i.durable_refs == 0,
                None => false,
            };
            if !unused {
                continue;
            }
            let mut i = self.inodes.remove(&ino).expect("checked");
            self.pending_dirs.remove(&ino);
            self.pending_attrs.remove(&ino);
            self.dirty_since.remove(&ino);
            match &mut i.node {
                Node::File(f) => f.free(&mut self.pool),
                Node::Dir(d) => {
                    for child in d.durable.values() {
                        if let Some(c) = self.inodes.get_mut(child) {
                            c.durable_refs = c.durable_refs.saturating_sub(1);
                            work.push(*child);
                        }
                    }
                }
                Node::Symlink(_) => {}
            }
        }
    }

    fn insert_new(
        &mut self,
        parent: Ino,
        name: &OsStr,
        node: Node,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, FsError> {
        check_name(name)?;
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(FsError::Exists);
        }
        let ino = self.new_inode(node, mode, uid, gid);
        self.add_entry(parent, name, ino)?;
        Ok(ino)
    }

    /// Creates a regular file and opens it.
    pub fn create(
        &mut self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
        flags: OpenFlags,
    ) -> Result<(Attr, Fh), FsError> {
        let ino = self.mknod(parent, name, mode, uid, gid)?;
        let fh = self.open(ino, flags)?;
        Ok((self.getattr(ino)?, fh))
    }

    /// Creates a regular file.
    pub fn mknod(
        &mut self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Ino, FsError> {
        self.insert_new(
            parent,
            name,
            Node::File(FileData::default()),
            mode,
            uid,
            gid,
        )
    }

    pub fn mkdir(
        &mut self,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Attr, FsError> {
        let dir = Node::Dir(Dir {
            entries: BTreeMap::new(),
            durable: BTreeMap::new(),
            pending: BTreeSet::new(),
            parent,
        });
        let ino = self.insert_new(parent, name, dir, mode, uid, gid)?;
        self.getattr(ino)
    }

    pub fn symlink(
        &mut self,
        parent: Ino,
        name: &OsStr,
        target: &OsStr,
        uid: u32,
        gid: u32,
    ) -> Result<Attr, FsError> {
        let node = Node::Symlink(target.to_owned());
        let ino = self.insert_new(parent, name, node, 0o777, uid, gid)?;
        self.getattr(ino)
    }

    /// A hard link (not of directories).
    pub fn link(&mut self, ino: Ino, parent: Ino, name: &OsStr) -> Result<Attr, FsError> {
        check_name(name)?;
        if self.inode(ino)?.kind() == Kind::Dir {
            return Err(FsError::NotPermitted);
        }
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(FsError::Exists);
        }
        self.add_entry(parent, name, ino)?;
        self.inode_mut(ino)?.attrs.ctime = SystemTime::now();
        self.getattr(ino)
    }

    pub fn unlink(&mut self, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        let ino = *self
            .dir(parent)?
            .entries
            .get(name)
            .ok_or(FsError::NotFound)?;
        if self.inode(ino)?.kind() == Kind::Dir {
            return Err(FsError::IsDir);
        }
        self.remove_entry(parent, name)?;
        self.release_if_unused(ino);
        Ok(())
    }

    pub fn rmdir(&mut self, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        let ino = *self
            .dir(parent)?
            .entries
            .get(name)
            .ok_or(FsError::NotFound)?;
        if !self.dir(ino)?.entries.is_empty() {
            return Err(FsError::NotEmpty);
        }
        self.remove_entry(parent, name)?;
        self.release_if_unused(ino);
        Ok(())
    }

    /// Is `dir` equal to `ancestor` or below it?
    fn is_within(&self, mut dir: Ino, ancestor: Ino) -> bool {
        loop {
            if dir == ancestor {
                return true;
            }
            match self.dir(dir) {
                Ok(d) if d.parent != dir => dir = d.parent,
                _ => return false,
            }
        }
    }

    pub fn rename(
        &mut self,
        from_dir: Ino,
        from: &OsStr,
        to_dir: Ino,
        to: &OsStr,
        mode: RenameMode,
    ) -> Result<(), FsError> {
        check_name(to)?;
        let ino = *self
            .dir(from_dir)?
            .entries
            .get(from)
            .ok_or(FsError::NotFound)?;
        let target = self.dir(to_dir)?.entries.get(to).copied();
        let moving_dir = self.inode(ino)?.kind() == Kind::Dir;
        if moving_dir && self.is_within(to_dir, ino) {
            return Err(FsError::Invalid);
        }
        if mode == RenameMode::Exchange {
            let other = target.ok_or(FsError::NotFound)?;
            if other == ino {
                return Ok(());
            }
            if self.inode(other)?.kind() == Kind::Dir && self.is_within(from_dir, other) {
                return Err(FsError::Invalid);
            }
            self.remove_entry(from_dir, from)?;
            self.remove_entry(to_dir, to)?;
            self.add_entry(to_dir, to, ino)?;
            self.add_entry(from_dir, from, other)?;
            self.record_rename(ino, (from_dir, from), (to_dir, to));
            self.record_rename(other, (to_dir, to), (from_dir, from));
            return Ok(());
        }
        if from_dir == to_dir && from == to {
            return Ok(());
        }
        if let Some(target) = target {
            if mode == RenameMode::NoReplace {
                return Err(FsError::Exists);
            }
            if target == ino {
                // Two links to one file: POSIX says rename does nothing.
                return Ok(());
            }
            match (moving_dir, self.inode(target)?.kind() == Kind::Dir) {
                (true, false) => return Err(FsError::NotDir),
                (false, true) => return Err(FsError::IsDir),
                (true, true) if !self.dir(target)?.entries.is_empty() => {
                    return Err(FsError::NotEmpty);
                }
                _ => {}
            }
            self.remove_entry(to_dir, to)?;
        }
        self.remove_entry(from_dir, from)?;
        self.add_entry(to_dir, to, ino)?;
        self.record_rename(ino, (from_dir, from), (to_dir, to));
        if let Some(target) = target {
            self.release_if_unused(target);
        }
        Ok(())
    }

    fn record_rename(&mut self, ino: Ino, from: (Ino, &OsStr), to: (Ino, &OsStr)) {
        if from.0 != to.0 {
            self.renames.push(Rename {
                ino,
                from: (from.0, from.1.to_owned()),
                to: (to.0, to.1.to_owned()),
            });
        }
    }

    // ------------------------------------------------------------ files

    pub fn open(&mut self, ino: Ino, flags: OpenFlags) -> Result<Fh, FsError> {
        self.file(ino)?;
        self.inode_mut(ino)?.open += 1;
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle { ino, flags });
        Ok(fh)
    }

    pub fn release(&mut self, fh: Fh) -> Result<(), FsError> {
        let h = self.handles.remove(&fh).ok_or(FsError::BadHandle)?;
        if let Some(i) = self.inodes.get_mut(&h.ino) {
            i.open = i.open.saturating_sub(1);
        }
        self.release_if_unused(h.ino);
        Ok(())
    }

    /// Writes through an open handle (`O_APPEND`: at the end; `O_SYNC`: synced on return).
    pub fn write(&mut self, fh: Fh, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        let h = self.handles.get(&fh).ok_or(FsError::BadHandle)?.clone();
        let i = self.inodes.get_mut(&h.ino).ok_or(FsError::NotFound)?;
        let Node::File(f) = &mut i.node else {
            return Err(FsError::IsDir);
        };
        let at = if h.flags.append { f.size() } else { offset };
        f.write(at, data, &mut self.pool)?;
        let now = SystemTime::now();
        i.attrs.mtime = now;
        i.attrs.ctime = now;
        self.pending_attrs.insert(h.ino);
        self.mark_dirty(h.ino);
        if let Some(kind) = h.flags.sync {
            self.fsync(h.ino, kind)?;
        }
        Ok(data.len())
    }

    pub fn setattr(&mut self, ino: Ino, change: &SetAttr) -> Result<Attr, FsError> {
        let i = self.inodes.get_mut(&ino).ok_or(FsError::NotFound)?;
        let now = SystemTime::now();
        if let Some(size) = change.size {
            let Node::File(f) = &mut i.node else {
                return Err(if matches!(i.node, Node::Dir(_)) {
                    FsError::IsDir
                } else {
                    FsError::Invalid
                });
            };
            f.truncate(size, &mut self.pool)?;
            i.attrs.mtime = now;
            self.dirty_since.entry(ino).or_insert(self.now_ms);
        }
        if let Some(mode) = change.mode {
            i.attrs.mode = mode & 0o7777;
        }
        if let Some(uid) = change.uid {
            i.attrs.uid = uid;
        }
        if let Some(gid) = change.gid {
            i.attrs.gid = gid;
        }
        if let Some(t) = change.atime {
            i.attrs.atime = t;
        }
        if let Some(t) = change.mtime {
            i.attrs.mtime = t;
        }
        i.attrs.ctime = now;
        self.pending_attrs.insert(ino);
        self.getattr(ino)
    }

    /// `fallocate`: mode 0 extends the size; `keep_size` only reserves (a no-op
    /// here); `punch_hole` zeroes a range.
    pub fn fallocate(
        &mut self,
        ino: Ino,
        offset: u64,
        len: u64,
        keep_size: bool,
        punch_hole: bool,
    ) -> Result<(), FsError> {
        let size = self.file(ino)?.size();
        let end = offset.checked_add(len).ok_or(FsError::TooBig)?;
        if punch_hole {
            if !keep_size {
                return Err(FsError::NotSupported);
            }
            let end = end.min(size);
            let mut pos = offset;
            let zeros = vec![0u8; 1 << 20];
            while pos < end {
                let n = (end - pos).min(zeros.len() as u64) as usize;
                self.write_at(ino, pos, &zeros[..n])?;
                pos += n as u64;
            }
            return Ok(());
        }
        if !keep_size && end > size {
            self.setattr(
                ino,
                &SetAttr {
                    size: Some(end),
                    ..SetAttr::default()
                },
            )?;
        }
        Ok(())
    }

    fn write_at(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<(), FsError> {
        let i = self.inodes.get_mut(&ino).ok_or(FsError::NotFound)?;
        let Node::File(f) = &mut i.node else {
            return Err(FsError::IsDir);
        };
        f.write(offset, data, &mut self.pool)?;
        self.mark_dirty(ino);
        Ok(())
    }

    // ------------------------------------------------------------ durability

    /// `fsync`/`fdatasync` of a file (of a directory: as [`Volume::fsyncdir`]).
    pub fn fsync(&mut self, ino: Ino, kind: SyncKind) -> Result<(), FsError> {
        let i = self.inodes.get_mut(&ino).ok_or(FsError::NotFound)?;
        match &mut i.node {
            Node::File(f) => {
                f.sync(&mut self.pool);
                self.dirty_since.remove(&ino);
            }
            Node::Dir(_) => return self.fsyncdir(ino),
            Node::Symlink(_) => {}
        }
        if kind == SyncKind::All {
            i.durable_attrs = i.attrs;
            self.pending_attrs.remove(&ino);
        }
        if self.semantics == Semantics::Journaled {
            self.commit_journal();
        }
        Ok(())
    }

    /// `fsync` of a directory: its entries (and renames touching it) become durable.
    pub fn fsyncdir(&mut self, ino: Ino) -> Result<(), FsError> {
        self.dir(ino)?;
        if self.semantics == Semantics::Journaled {
            self.commit_journal();
            return Ok(());
        }
        self.commit_dir(ino);
        let i = self.inode_mut(ino)?;
        i.durable_attrs = i.attrs;
        self.pending_attrs.remove(&ino);
        Ok(())
    }

    /// Every metadata change so far becomes durable (one journal commit).
    fn commit_journal(&mut self) {
        for dir in std::mem::take(&mut self.pending_dirs) {
            self.commit_dir(dir);
        }
        for ino in std::mem::take(&mut self.pending_attrs) {
            if let Some(i) = self.inodes.get_mut(&ino) {
                i.durable_attrs = i.attrs;
            }
        }
    }

    /// Sets the durable entry `name` of `dir` (None: removes it), keeping the reference counts.
    fn set_durable(&mut self, dir: Ino, name: &OsStr, to: Option<Ino>) {
        let Ok(d) = self.dir_mut(dir) else { return };
        let old = match to {
            Some(ino) => d.durable.insert(name.to_owned(), ino),
            None => d.durable.remove(name),
        };
        if old == to {
            return;
        }
        if let Some(new) = to
            && let Some(i) = self.inodes.get_mut(&new)
        {
            i.durable_refs += 1;
        }
        if let Some(old) = old {
            if let Some(i) = self.inodes.get_mut(&old) {
                i.durable_refs = i.durable_refs.saturating_sub(1);
            }
            self.release_if_unused(old);
        }
    }

    fn commit_dir(&mut self, dir: Ino) {
        // Renames touching this directory commit both of their sides.
        let (touching, rest): (Vec<Rename>, Vec<Rename>) = std::mem::take(&mut self.renames)
            .into_iter()
            .partition(|r| r.from.0 == dir || r.to.0 == dir);
        self.renames = rest;
        for r in touching {
            let still_there = self
                .dir(r.to.0)
                .is_ok_and(|d| d.entries.get(&r.to.1) == Some(&r.ino));
            if still_there {
                self.set_durable(r.to.0, &r.to.1, Some(r.ino));
            }
            let source = self.dir(r.from.0).ok().map(|d| {
                (
                    d.durable.get(&r.from.1) == Some(&r.ino),
                    d.entries.get(&r.from.1) == Some(&r.ino),
                )
            });
            if let Some((durable_there, current_there)) = source
                && durable_there
                && !current_there
            {
                self.set_durable(r.from.0, &r.from.1, None);
            }
        }
        let Ok(d) = self.dir_mut(dir) else { return };
        let changes: Vec<(OsString, Option<Ino>)> = std::mem::take(&mut d.pending)
            .into_iter()
            .map(|name| {
                let ino = d.entries.get(&name).copied();
                (name, ino)
            })
            .collect();
        self.pending_dirs.remove(&dir);
        for (name, ino) in changes {
            self.set_durable(dir, &name, ino);
        }
    }

    /// Power lost: every state that is not durable is discarded, open handles
    /// die, and what is no longer reachable through durable entries is gone.
    pub fn cut(&mut self) -> Volatile {
        let discarded = self.volatile();
        self.handles.clear();
        self.renames.clear();
        self.pending_dirs.clear();
        self.pending_attrs.clear();
        self.dirty_since.clear();

        // What survives: reachable from the root through durable entries.
        let mut parents: HashMap<Ino, Ino> = HashMap::from([(ROOT, ROOT)]);
        let mut queue = vec![ROOT];
        while let Some(dir) = queue.pop() {
            let Some(Inode {
                node: Node::Dir(d), ..
            }) = self.inodes.get(&dir)
            else {
                continue;
            };
            let children: Vec<(OsString, Ino)> =
                d.durable.iter().map(|(n, &i)| (n.clone(), i)).collect();
            for (name, child) in children {
                let is_dir = match self.inodes.get(&child) {
                    Some(c) => matches!(c.node, Node::Dir(_)),
                    None => {
                        self.durable_dir(dir).remove(&name);
                        continue;
                    }
                };
                if is_dir {
                    if parents.contains_key(&child) {
                        // A directory has one parent; a second durable name is dropped.
                        self.durable_dir(dir).remove(&name);
                        continue;
                    }
                    queue.push(child);
                }
                parents.entry(child).or_insert(dir);
            }
        }
        let gone: Vec<Ino> = self
            .inodes
            .keys()
            .filter(|i| !parents.contains_key(i))
            .copied()
            .collect();
        for ino in gone {
            if let Some(Inode {
                node: Node::File(mut f),
                ..
            }) = self.inodes.remove(&ino)
            {
                f.free(&mut self.pool);
            }
        }
        for (&ino, i) in self.inodes.iter_mut() {
            i.attrs = i.durable_attrs;
            i.open = 0;
            i.links = 0;
            i.durable_refs = 0;
            match &mut i.node {
                Node::File(f) => {
                    f.cut(&mut self.pool);
                }
                Node::Dir(d) => {
                    d.entries = d.durable.clone();
                    d.pending.clear();
                    d.parent = parents[&ino];
                }
                Node::Symlink(_) => {}
            }
        }
        let children: Vec<Ino> = self
            .inodes
            .values()
            .filter_map(|i| match &i.node {
                Node::Dir(d) => Some(d.entries.values().copied().collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect();
        for child in children {
            if let Some(c) = self.inodes.get_mut(&child) {
                c.links += 1;
                c.durable_refs += 1;
            }
        }
        let root = self.inodes.get_mut(&ROOT).expect("the root stays");
        root.links = 1;
        root.durable_refs = 1;
        discarded
    }

    fn durable_dir(&mut self, dir: Ino) -> &mut BTreeMap<OsString, Ino> {
        match &mut self.inodes.get_mut(&dir).expect("walked").node {
            Node::Dir(d) => &mut d.durable,
            _ => unreachable!("walked directories only"),
        }
    }
}
