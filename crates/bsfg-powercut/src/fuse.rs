//! The FUSE edge: kernel requests onto the [`model`](crate::model), and the
//! mount and unmount of a volume.
//!
//! We mount with mount(2) ourselves (root only) and hand the /dev/fuse
//! descriptor to fuser, so fuser never unmounts anything: after a cut the old
//! mount is unmounted by path before the new one is mounted at that path, and
//! a stale mount of a killed daemon is detached at start.
//!
//! Writes are write-through (no FUSE writeback cache): every `write(2)`
//! reaches the model before it returns, so an `fsync` or an `O_SYNC` write is
//! exactly as durable as the model says.

use crate::domain::{Shared, lock};
use crate::model::{
    DirEntry, FsError, Kind, OpenFlags, PAGE, RenameMode, SetAttr, SyncKind, Volume,
};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, LockOwner, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How long the kernel may cache entries and attributes. The kernel is the
/// only client of a mount and every mount is new after a cut, so it is never stale.
const TTL: Duration = Duration::from_secs(1);

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;

fn errno(e: FsError) -> Errno {
    match e {
        FsError::NotFound => Errno::ENOENT,
        FsError::Exists => Errno::EEXIST,
        FsError::NotDir => Errno::ENOTDIR,
        FsError::IsDir => Errno::EISDIR,
        FsError::NotEmpty => Errno::ENOTEMPTY,
        FsError::Invalid => Errno::EINVAL,
        FsError::NameTooLong => Errno::ENAMETOOLONG,
        FsError::NoSpace => Errno::ENOSPC,
        FsError::TooBig => Errno::EFBIG,
        FsError::BadHandle => Errno::EBADF,
        FsError::NotPermitted => Errno::EPERM,
        FsError::NotSupported => Errno::EOPNOTSUPP,
    }
}

fn file_attr(a: &crate::model::Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.ctime,
        kind: file_type(a.kind),
        perm: a.perm as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: PAGE as u32,
        flags: 0,
    }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
    }
}

/// `O_APPEND`, `O_SYNC` and `O_DSYNC` of open flags.
fn open_flags(flags: i32) -> OpenFlags {
    use rustix::fs::OFlags;
    let flags = flags as u32;
    let sync = if flags & OFlags::SYNC.bits() == OFlags::SYNC.bits() {
        Some(SyncKind::All)
    } else if flags & OFlags::DSYNC.bits() != 0 {
        Some(SyncKind::Data)
    } else {
        None
    };
    OpenFlags {
        append: flags & OFlags::APPEND.bits() != 0,
        sync,
    }
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// One mount of one volume. Operations of a mount older than the volume's
/// last cut fail with EIO, as do all of them while the volume has no power.
pub struct VolumeFs {
    shared: Shared,
    index: usize,
    epoch: u64,
    /// Directory listings, taken at opendir (stable offsets while the directory changes).
    listings: Mutex<HashMap<u64, Vec<DirEntry>>>,
    next_listing: Mutex<u64>,
}

impl VolumeFs {
    pub(crate) fn new(shared: Shared, index: usize, epoch: u64) -> VolumeFs {
        VolumeFs {
            shared,
            index,
            epoch,
            listings: Mutex::new(HashMap::new()),
            next_listing: Mutex::new(1),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Volume) -> Result<T, FsError>) -> Result<T, Errno> {
        let mut slots = lock(&self.shared);
        let slot = &mut slots[self.index];
        if !slot.powered || slot.epoch != self.epoch {
            return Err(Errno::EIO);
        }
        f(&mut slot.volume).map_err(errno)
    }

    fn entry(&self, reply: ReplyEntry, r: Result<crate::model::Attr, Errno>) {
        match r {
            Ok(a) => reply.entry(&TTL, &file_attr(&a), Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn empty(reply: ReplyEmpty, r: Result<(), Errno>) {
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

impl fuser::Filesystem for VolumeFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.entry(reply, self.with(|v| v.lookup(parent.0, name)));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with(|v| v.getattr(ino.0)) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let change = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time),
            mtime: mtime.map(time),
        };
        match self.with(|v| v.setattr(ino.0, &change)) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        use std::os::unix::ffi::OsStrExt;
        match self.with(|v| v.readlink(ino.0)) {
            Ok(t) => reply.data(t.as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & S_IFMT != S_IFREG {
            // Devices, fifos and sockets: nothing the volumes hold needs them.
            return reply.error(Errno::EOPNOTSUPP);
        }
        let r = self.with(|v| {
            let ino = v.mknod(parent.0, name, mode & !umask, req.uid(), req.gid())?;
            v.getattr(ino)
        });
        self.entry(reply, r);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self.with(|v| v.mkdir(parent.0, name, mode & !umask, req.uid(), req.gid()));
        self.entry(reply, r);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        Self::empty(reply, self.with(|v| v.unlink(parent.0, name)));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        Self::empty(reply, self.with(|v| v.rmdir(parent.0, name)));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = self.with(|v| {
            v.symlink(
                parent.0,
                link_name,
                target.as_os_str(),
                req.uid(),
                req.gid(),
            )
        });
        self.entry(reply, r);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        use fuser::RenameFlags as F;
        let mode = if flags.contains(F::RENAME_EXCHANGE) {
            RenameMode::Exchange
        } else if flags.contains(F::RENAME_NOREPLACE) {
            RenameMode::NoReplace
        } else if flags.is_empty() {
            RenameMode::Replace
        } else {
            return reply.error(Errno::EINVAL);
        };
        Self::empty(
            reply,
            self.with(|v| v.rename(parent.0, name, newparent.0, newname, mode)),
        );
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.entry(reply, self.with(|v| v.link(ino.0, newparent.0, newname)));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: fuser::OpenFlags, reply: ReplyOpen) {
        match self.with(|v| v.open(ino.0, open_flags(flags.0))) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: fuser::OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.with(|v| v.read(ino.0, offset, size as usize)) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: fuser::OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // O_APPEND and O_SYNC come from the handle's open flags (the model
        // syncs an O_SYNC write itself; the kernel's own fsync after it is harmless).
        match self.with(|v| v.write(fh.0, offset, data)) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2) makes nothing durable.
        Self::empty(reply, self.with(|_| Ok(())));
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: fuser::OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        Self::empty(reply, self.with(|v| v.release(fh.0)));
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let kind = if datasync {
            SyncKind::Data
        } else {
            SyncKind::All
        };
        Self::empty(reply, self.with(|v| v.fsync(ino.0, kind)));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: fuser::OpenFlags, reply: ReplyOpen) {
        let listing = self.with(|v| {
            let parent = v.parent(ino.0)?;
            let mut entries = vec![
                DirEntry {
                    name: ".".into(),
                    ino: ino.0,
                    kind: Kind::Dir,
                },
                DirEntry {
                    name: "..".into(),
                    ino: parent,
                    kind: Kind::Dir,
                },
            ];
            entries.extend(v.readdir(ino.0)?);
            Ok(entries)
        });
        match listing {
            Ok(entries) => {
                let mut next = self.next_listing.lock().unwrap_or_else(|e| e.into_inner());
                let fh = *next;
                *next += 1;
                self.listings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(fh, entries);
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if let Err(e) = self.with(|_| Ok(())) {
            return reply.error(e);
        }
        let listings = self.listings.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entries) = listings.get(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        for (i, e) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(e.ino), (i + 1) as u64, file_type(e.kind), &e.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: fuser::OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        Self::empty(reply, self.with(|v| v.fsyncdir(ino.0)));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.with(|v| Ok(v.usage())) {
            Ok(u) => {
                let page = PAGE as u64;
                let free = (u.capacity_bytes - u.used_bytes.min(u.capacity_bytes)) / page;
                reply.statfs(
                    u.capacity_bytes / page,
                    free,
                    free,
                    u.inodes + (1 << 20),
                    1 << 20,
                    PAGE as u32,
                    crate::model::MAX_NAME as u32,
                    PAGE as u32,
                );
            }
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        if mode & S_IFMT != S_IFREG && mode & S_IFMT != 0 {
            return reply.error(Errno::EOPNOTSUPP);
        }
        let r = self.with(|v| {
            v.create(
                parent.0,
                name,
                mode & !umask,
                req.uid(),
                req.gid(),
                open_flags(flags),
            )
        });
        match r {
            Ok((a, fh)) => reply.created(
                &TTL,
                &file_attr(&a),
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        use rustix::fs::FallocateFlags as F;
        let mode = mode as u32;
        let known = F::KEEP_SIZE.bits() | F::PUNCH_HOLE.bits();
        if mode & !known != 0 {
            return reply.error(Errno::EOPNOTSUPP);
        }
        let keep = mode & F::KEEP_SIZE.bits() != 0;
        let punch = mode & F::PUNCH_HOLE.bits() != 0;
        Self::empty(
            reply,
            self.with(|v| v.fallocate(ino.0, offset, length, keep, punch)),
        );
    }
}

/// Mounts `fs` at `mountpoint` and serves it on its own threads.
pub(crate) fn mount(fs: VolumeFs, name: &str, mountpoint: &Path) -> anyhow::Result<()> {
    use rustix::mount::MountFlags;
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| anyhow::anyhow!("opening /dev/fuse: {e} (is the fuse module loaded?)"))?;
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    // default_permissions: the kernel checks modes and owners; allow_other:
    // the daemons of a host may run as other users than this one.
    let data = format!(
        "fd={},rootmode=40000,user_id={uid},group_id={gid},default_permissions,allow_other",
        dev.as_raw_fd()
    );
    rustix::mount::mount(
        format!("powercut:{name}").as_str(),
        mountpoint,
        "fuse.bsfg-powercut",
        MountFlags::NOSUID | MountFlags::NODEV,
        Some(std::ffi::CString::new(data)?.as_c_str()),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "mount(2) of a FUSE file system: {e}{}",
            if e == rustix::io::Errno::PERM {
                " (needs root)"
            } else {
                ""
            }
        )
    })?;
    let mut config = fuser::Config::default();
    config.acl = fuser::SessionACL::All;
    config.n_threads = Some(2);
    let session = match fuser::Session::from_fd(fs, dev.into(), fuser::SessionACL::All, config) {
        Ok(s) => s,
        Err(e) => {
            let _ = unmount(mountpoint);
            return Err(anyhow::anyhow!("FUSE handshake: {e}"));
        }
    };
    let name = name.to_owned();
    std::thread::Builder::new()
        .name(format!("fuse-{name}"))
        .spawn(move || {
            if let Err(e) = session.run() {
                tracing::warn!("volume {name}: FUSE session ended: {e}");
            }
        })?;
    Ok(())
}

/// Unmounts a volume: at once if nothing uses it, else detached, with its
/// FUSE connection aborted so that what still holds it gets errors.
pub fn unmount(mountpoint: &Path) -> anyhow::Result<()> {
    use rustix::mount::{UnmountFlags, unmount};
    let connection = connection_of(mountpoint);
    match unmount(mountpoint, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) => Ok(()), // not mounted
        Err(_) => {
            unmount(mountpoint, UnmountFlags::DETACH)
                .map_err(|e| anyhow::anyhow!("umount2(MNT_DETACH): {e}"))?;
            if let Some(c) = connection {
                ensure_fusectl();
                let _ = std::fs::write(format!("/sys/fs/fuse/connections/{c}/abort"), "1");
            }
            Ok(())
        }
    }
}

/// The kernel's id of the FUSE connection mounted at `mountpoint` (its
/// directory under /sys/fs/fuse/connections), from /proc/self/mountinfo: a
/// `stat` would ask the file system itself, which answers EIO after a cut.
fn connection_of(mountpoint: &Path) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let target = mountpoint.to_str()?;
    let dev = info
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let dev = f.nth(2)?;
            (f.nth(1)? == target).then_some(dev)
        })
        .next_back()?;
    let (major, minor) = dev.split_once(':')?;
    Some((major.parse::<u64>().ok()? << 20) | minor.parse::<u64>().ok()?)
}

/// Mounts fusectl (the FUSE connections' control files) where it is missing.
fn ensure_fusectl() {
    let dir = Path::new("/sys/fs/fuse/connections");
    if dir.is_dir() && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none()) {
        let _ = rustix::mount::mount(
            "fusectl",
            dir,
            "fusectl",
            rustix::mount::MountFlags::empty(),
            None,
        );
    }
}

/// Detaches a mount left at `mountpoint` by a daemon that died (its
/// connection answers ENOTCONN).
pub fn detach_stale(mountpoint: &Path) {
    if let Err(e) = std::fs::metadata(mountpoint)
        && e.raw_os_error() == Some(rustix::io::Errno::NOTCONN.raw_os_error())
    {
        let _ = rustix::mount::unmount(mountpoint, rustix::mount::UnmountFlags::DETACH);
    }
}
