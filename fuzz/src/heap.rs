//! A counting global allocator: [`peak_bytes_during`] tells how much heap a call held at its
//! most, so that a target can assert that decoding `n` bytes takes memory proportional to `n`
//! and never what a length field claims.
//!
//! libFuzzer's `-malloc_limit_mb` (set by `scripts/fuzz`) catches one huge allocation; this
//! catches many moderate ones that together exceed the bound, and names the input's size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Heap a decoder may take per byte of input. A decoded value is larger than its encoding
/// (an enum variant written as one byte becomes a value of its type's size, a string or a
/// vector gains its 24-byte header and its allocation's rounding), but by a bounded factor.
pub const HEAP_BYTES_PER_INPUT_BYTE: usize = 256;

/// Heap a decoder may take whatever the input's size: serde preallocates a sequence from its
/// claimed length, but never more than 1 MiB per sequence (serde's `size_hint::cautious`), and
/// the types decoded nest a few sequences deep.
pub const HEAP_BYTES_BASE: usize = 8 * 1024 * 1024;

/// The most heap decoding `input_bytes` bytes may hold at once.
pub fn heap_bytes_max(input_bytes: usize) -> usize {
    HEAP_BYTES_BASE.saturating_add(input_bytes.saturating_mul(HEAP_BYTES_PER_INPUT_BYTE))
}

/// The system allocator, counting the bytes it holds.
#[derive(Debug)]
pub struct CountingAllocator;

static HELD_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

fn add(size: usize) {
    let held = HELD_BYTES.fetch_add(size, Ordering::Relaxed) + size;
    PEAK_BYTES.fetch_max(held, Ordering::Relaxed);
}

fn remove(size: usize) {
    HELD_BYTES.fetch_sub(size, Ordering::Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; the counters are only read.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            add(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            add(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from this allocator, which is the system's, with `layout`.
        unsafe { System.dealloc(pointer, layout) };
        remove(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the caller's contract for `realloc` is the system's.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            remove(layout.size());
            add(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `call` and returns what it returned with the most heap it held beyond what was held
/// before it (the fuzzer runs one input at a time on one thread).
pub fn peak_bytes_during<R>(call: impl FnOnce() -> R) -> (R, usize) {
    let before = HELD_BYTES.load(Ordering::Relaxed);
    PEAK_BYTES.store(before, Ordering::Relaxed);
    let result = call();
    let peak = PEAK_BYTES.load(Ordering::Relaxed);
    (result, peak.saturating_sub(before))
}

/// Runs `decode` on `input` and panics (a finding) if it held more heap than
/// [`heap_bytes_max`] allows for the input's size.
pub fn bounded<R>(input: &[u8], decode: impl FnOnce(&[u8]) -> R) -> R {
    let (result, peak) = peak_bytes_during(|| decode(input));
    let limit = heap_bytes_max(input.len());
    assert!(
        peak <= limit,
        "decoding {} bytes held {peak} bytes of heap, more than the {limit} allowed",
        input.len()
    );
    result
}
