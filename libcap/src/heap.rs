//! The interim heap: `alloc` (`Vec`, `Box`, `String`) over a fixed static region.
//!
//! Every program gets [`HEAP_SIZE`](crate::HEAP_SIZE) bytes (256 KiB) of
//! `.bss`, managed by `linked_list_allocator` (first fit, frees coalesce). Running out is
//! an allocation failure, which aborts the program through the panic handler.
//!
//! This is a stopgap. When the memory server exists, the heap grows by asking it for
//! frames (paid for by the program's quota) and this module's region goes away; programs
//! that only use `alloc` do not change.

use linked_list_allocator::LockedHeap;

use crate::raw;

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Hands the static region to the allocator. Called once by [`crate::rt`] before `main`;
/// later calls do nothing.
pub(crate) fn init() {
    if let Some(memory) = raw::take_heap_memory() {
        ALLOCATOR.lock().init_from_slice(memory);
    }
}

/// Heap usage: (bytes in use, bytes free).
pub fn usage() -> (usize, usize) {
    let heap = ALLOCATOR.lock();
    (heap.used(), heap.free())
}
