//! An allocation bound for every input: a global allocator that counts this
//! thread's live bytes and their peak, so a target can assert that no input
//! makes a parser allocate more than a bound proportional to its size (a
//! length prefix trusted to pre-allocate, a quadratic expansion).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts live heap bytes per thread; allocation itself is the system's.
pub struct Counting;

thread_local! {
    // `const` and `Cell<usize>`: no lazy initialisation and no destructor,
    // so touching them from inside the allocator never allocates.
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(by: usize) {
    let live = LIVE.with(|l| {
        let v = l.get().saturating_add(by);
        l.set(v);
        v
    });
    PEAK.with(|p| p.set(p.get().max(live)));
}

fn shrank(by: usize) {
    LIVE.with(|l| l.set(l.get().saturating_sub(by)));
}

// SAFETY: every method forwards to `System` unchanged; the bookkeeping only
// touches const-initialised thread-locals and never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is System's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The bound for an input of `len` bytes. Decoded messages cost more than
/// their bytes (a 2-byte empty `StoredFact` is a struct of ~150 bytes in a
/// doubling `Vec`), so the factor is generous; what it catches is growth
/// that the input does not pay for.
pub fn bound_for(len: usize) -> usize {
    512 * len + (2 << 20)
}

/// Runs `f` and panics if the heap it grows at its peak exceeds `bound` bytes.
pub fn bounded<T>(bound: usize, f: impl FnOnce() -> T) -> T {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let out = f();
    let peak = PEAK.with(Cell::get) - before;
    assert!(
        peak <= bound,
        "allocated {peak} bytes at the peak, more than the bound of {bound}"
    );
    out
}

/// The peak growth of the heap while `f` runs (for tests of the bound itself).
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let out = f();
    (out, PEAK.with(Cell::get) - before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_measured_and_the_bound_enforced() {
        let (_, peak) = peak_of(|| vec![0u8; 100_000]);
        assert!((100_000..110_000).contains(&peak), "{peak}");
        let caught = std::panic::catch_unwind(|| bounded(1000, || vec![0u8; 5000].len()));
        assert!(caught.is_err());
        assert_eq!(bounded(10_000, || vec![0u8; 5000].len()), 5000);
    }
}
