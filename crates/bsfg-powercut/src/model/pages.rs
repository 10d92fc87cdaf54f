//! The bytes of one regular file: durable pages plus a copy-on-write overlay
//! of the pages written since the last sync.
//!
//! A write copies only the pages it touches into the overlay (`dirty`); a sync
//! moves the overlay over the durable pages, so its cost is the number of
//! pages written since the previous sync, never the size of the file. A cut
//! drops the overlay. Pages never written are holes and read as zeros.
//!
//! Invariant: every stored page holds zeros past the end of the file as it
//! was when that page was last written (writes extend the size, truncations
//! zero the tail of the boundary page), so growing a file never uncovers old bytes.

use super::FsError;
use std::collections::BTreeMap;

/// Page size of the model (the unit of copy-on-write and of the capacity).
pub const PAGE: usize = 4096;
const PAGE_U64: u64 = PAGE as u64;

/// Largest file the model accepts (EFBIG past it), as ext4's 16 TiB.
pub const MAX_FILE_SIZE: u64 = 1 << 44;

type Page = Box<[u8; PAGE]>;

fn zero_page() -> Page {
    Box::new([0u8; PAGE])
}

/// Pages in use and the capacity of the volume, in pages.
#[derive(Debug, Clone)]
pub struct Pool {
    pub used: u64,
    pub capacity: u64,
}

impl Pool {
    pub fn new(capacity_bytes: u64) -> Pool {
        Pool {
            used: 0,
            capacity: capacity_bytes / PAGE_U64,
        }
    }

    fn take(&mut self, pages: u64) -> Result<(), FsError> {
        if self.used + pages > self.capacity {
            return Err(FsError::NoSpace);
        }
        self.used += pages;
        Ok(())
    }

    fn give(&mut self, pages: u64) {
        self.used = self.used.saturating_sub(pages);
    }
}

#[derive(Debug)]
pub struct FileData {
    size: u64,
    durable_size: u64,
    durable: BTreeMap<u64, Page>,
    dirty: BTreeMap<u64, Page>,
    /// Durable pages from this index on were cut off by a truncation since
    /// the last sync: they read as zeros unless rewritten. `u64::MAX`: none.
    zero_from: u64,
}

impl Default for FileData {
    fn default() -> FileData {
        FileData {
            size: 0,
            durable_size: 0,
            durable: BTreeMap::new(),
            dirty: BTreeMap::new(),
            zero_from: u64::MAX,
        }
    }
}

impl FileData {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Pages stored (durable and overlay), for `st_blocks`.
    pub fn pages(&self) -> u64 {
        (self.durable.len() + self.dirty.len()) as u64
    }

    /// Is there anything a cut would undo?
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty() || self.size != self.durable_size || self.zero_from != u64::MAX
    }

    /// Bytes written since the last sync (whole pages).
    pub fn dirty_bytes(&self) -> u64 {
        self.dirty.len() as u64 * PAGE_U64
    }

    /// The page as the file holds it now, before this write overlays it.
    fn base_page(&self, index: u64) -> Page {
        if index >= self.zero_from {
            return zero_page();
        }
        match self.durable.get(&index) {
            Some(p) => p.clone(),
            None => zero_page(),
        }
    }

    fn current_page(&self, index: u64) -> Option<&[u8; PAGE]> {
        if let Some(p) = self.dirty.get(&index) {
            return Some(p);
        }
        if index >= self.zero_from {
            return None;
        }
        self.durable.get(&index).map(|p| &**p)
    }

    pub fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        if offset >= self.size || len == 0 {
            return Vec::new();
        }
        let end = self.size.min(offset.saturating_add(len as u64));
        let mut out = vec![0u8; (end - offset) as usize];
        let mut pos = offset;
        while pos < end {
            let index = pos / PAGE_U64;
            let in_page = (pos % PAGE_U64) as usize;
            let n = (PAGE - in_page).min((end - pos) as usize);
            let at = (pos - offset) as usize;
            if let Some(p) = self.current_page(index) {
                out[at..at + n].copy_from_slice(&p[in_page..in_page + n]);
            }
            pos += n as u64;
        }
        out
    }

    /// Writes `data` at `offset`, all or nothing (ENOSPC before any byte changes).
    pub fn write(&mut self, offset: u64, data: &[u8], pool: &mut Pool) -> Result<(), FsError> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(FsError::TooBig)?;
        let (first, last) = (offset / PAGE_U64, (end - 1) / PAGE_U64);
        let new_pages = (first..=last)
            .filter(|i| !self.dirty.contains_key(i))
            .count() as u64;
        pool.take(new_pages)?;
        let mut pos = offset;
        for index in first..=last {
            if !self.dirty.contains_key(&index) {
                let base = self.base_page(index);
                self.dirty.insert(index, base);
            }
            let page = self.dirty.get_mut(&index).expect("just inserted");
            let in_page = (pos % PAGE_U64) as usize;
            let n = (PAGE - in_page).min((end - pos) as usize);
            let at = (pos - offset) as usize;
            page[in_page..in_page + n].copy_from_slice(&data[at..at + n]);
            pos += n as u64;
        }
        self.size = self.size.max(end);
        Ok(())
    }

    /// Sets the size: shrinking discards the tail, growing adds a hole.
    pub fn truncate(&mut self, new_size: u64, pool: &mut Pool) -> Result<(), FsError> {
        if new_size > MAX_FILE_SIZE {
            return Err(FsError::TooBig);
        }
        if new_size < self.size {
            let kept_pages = new_size.div_ceil(PAGE_U64);
            let in_page = (new_size % PAGE_U64) as usize;
            let boundary = new_size / PAGE_U64;
            if in_page != 0
                && !self.dirty.contains_key(&boundary)
                && boundary < self.zero_from
                && self.durable.contains_key(&boundary)
            {
                pool.take(1)?;
                let base = self.base_page(boundary);
                self.dirty.insert(boundary, base);
            }
            let dropped = self.dirty.split_off(&kept_pages);
            pool.give(dropped.len() as u64);
            if in_page != 0
                && let Some(p) = self.dirty.get_mut(&boundary)
            {
                p[in_page..].fill(0);
            }
            self.zero_from = self.zero_from.min(kept_pages);
        }
        self.size = new_size;
        Ok(())
    }

    /// Makes the current content and size durable.
    pub fn sync(&mut self, pool: &mut Pool) {
        if self.zero_from != u64::MAX {
            let cut_off = self.durable.split_off(&self.zero_from);
            pool.give(cut_off.len() as u64);
        }
        for (index, page) in std::mem::take(&mut self.dirty) {
            if self.durable.insert(index, page).is_some() {
                pool.give(1);
            }
        }
        self.durable_size = self.size;
        self.zero_from = u64::MAX;
    }

    /// Power lost: back to the last synced state. Returns the bytes discarded.
    pub fn cut(&mut self, pool: &mut Pool) -> u64 {
        let discarded = self.dirty_bytes();
        pool.give(self.dirty.len() as u64);
        self.dirty.clear();
        self.size = self.durable_size;
        self.zero_from = u64::MAX;
        discarded
    }

    /// Returns every page to the pool (the file is gone).
    pub fn free(&mut self, pool: &mut Pool) {
        pool.give(self.pages());
        self.durable.clear();
        self.dirty.clear();
    }
}
