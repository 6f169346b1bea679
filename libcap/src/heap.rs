//! The heap: `alloc` (`Vec`, `Box`, `String`) for every program, growing through the
//! memory server when the program has one.
//!
//! Two regions, each managed by `linked_list_allocator` (first fit, frees coalesce):
//!
//! - **static**: [`HEAP_SIZE`](crate::HEAP_SIZE) bytes (256 KiB) of `.bss`, there from the
//!   first instruction. A program without a memory server lives in it alone; running out is
//!   an allocation failure, which ends the program through the panic handler.
//! - **grown**: when the static region cannot serve a request and the program started with
//!   a `heap` (system.toml; the caps at [`slots::HEAP_MEMORY`] and [`slots::HEAP_SPACE`]),
//!   the allocator asks the memory server for a region (charged to the program's client
//!   quota), maps its frames read-write one after another at the top of the grown region,
//!   and extends the grown heap over them. Regions start at 64 KiB and double up to 2 MiB,
//!   so a growing `Vec` costs few calls; a larger request gets a region of its own size
//!   (in pages).
//!   The grown region starts at a random 64 KiB boundary in a reserved 16 TiB range
//!   ([`GROWTH_LOW`]..[`GROWTH_HIGH`]), below the window and above program images.
//!
//! The program never sees where memory comes from. Freed memory returns to the heap, not to
//! the server: the regions stay the program's until it ends, when init tells the server
//! (`ClientGone`) and every page goes back. The frame caps live in the reserved slots
//! [`slots::HEAP_FRAMES`]; when they run out, or the quota does, the heap stops growing and
//! prints why once, and the allocation fails.
//!
//! Nothing here allocates: growing happens inside the allocator, so the calls it makes (IPC
//! to the server, `FrameInfo`, `Map`) use only the stack.

use core::alloc::Layout;
use core::ptr::NonNull;

use linked_list_allocator::Heap;

use crate::memory::{MemError, Memory, Region};
use crate::{CapSlot, ObjectType, raw, slots, sys};

/// The reserved virtual range the grown heap lives in: 64 TiB to 80 TiB. (`crate::loader`
/// places images below 64 TiB; the window is 96 to 112 TiB; stacks are above.)
pub const GROWTH_LOW: u64 = 0x0000_4000_0000_0000;
/// The end (exclusive) of the grown heap's range.
pub const GROWTH_HIGH: u64 = 0x0000_5000_0000_0000;
/// The first region the heap asks for, in pages (64 KiB); each next one doubles.
const FIRST_CHUNK_PAGES: u32 = 16;
/// The largest chunk: the kernel's largest frame, 2 MiB.
const MAX_CHUNK_PAGES: u32 = memory_api::MAX_CONTIGUOUS_PAGES;
const PAGE: u64 = memory_api::PAGE_SIZE;

/// Whether, and where, the heap can grow.
enum Growth {
    /// Not looked at yet ([`init`] decides).
    Unknown,
    /// No memory server caps at start: the static region is all there is.
    Unavailable,
    Ready { memory: Memory, next_chunk_pages: u32, next_slot: u32, reported: bool },
}

/// Everything the allocator owns, behind one lock (`raw`'s global allocator).
pub(crate) struct State {
    fixed: Heap,
    grown: Heap,
    /// Where the grown region starts (random, chosen at [`init`]).
    grown_base: u64,
    growth: Growth,
    /// Bytes of the grown region, and regions fetched.
    grown_bytes: u64,
    regions: u32,
}

impl State {
    pub(crate) const fn new() -> State {
        State { fixed: Heap::empty(), grown: Heap::empty(), grown_base: 0, growth: Growth::Unknown, grown_bytes: 0, regions: 0 }
    }

    /// Memory for `layout`, from the static region, the grown one, or a new region.
    pub(crate) fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        if let Ok(block) = self.fixed.allocate_first_fit(layout) {
            return Some(block);
        }
        if let Ok(block) = self.grown.allocate_first_fit(layout) {
            return Some(block);
        }
        self.grow(layout)?;
        self.grown.allocate_first_fit(layout).ok()
    }

    /// The region a block came from.
    pub(crate) fn owner(&mut self, block: NonNull<u8>) -> &mut Heap {
        let address = block.as_ptr() as usize;
        if (self.fixed.bottom() as usize..self.fixed.top() as usize).contains(&address) { &mut self.fixed } else { &mut self.grown }
    }

    /// Fetches and maps one more region, big enough for `layout` wherever the grown heap's
    /// free space ends. `None` if the heap cannot grow (and says why, once).
    fn grow(&mut self, layout: Layout) -> Option<()> {
        let Growth::Ready { memory, next_chunk_pages, next_slot, reported } = &mut self.growth else { return None };
        // Room for the block at any alignment, plus the allocator's bookkeeping.
        let needed = (layout.size() as u64).checked_add(layout.align() as u64)?.checked_add(2 * 64)?;
        let needed_pages = u32::try_from(needed.div_ceil(PAGE)).ok()?;
        // No rounding up beyond the chunk: a region of any size is a few frames.
        let pages = needed_pages.max(*next_chunk_pages);
        let free_slots = slots::HEAP_FRAMES.end - *next_slot;
        // Near the quota, a smaller region than the next chunk may still fit the request.
        let created = match memory.create(pages, 0) {
            Err(MemError::OverQuota { used_pages, quota_pages, .. }) if quota_pages - used_pages >= needed_pages => {
                memory.create(quota_pages - used_pages, 0)
            }
            other => other,
        };
        let result = created.and_then(|region: Region| {
            if region.frames > free_slots {
                let _ = memory.free(region.id);
                return Err(MemError::OutOfSlots);
            }
            let first = (*next_slot - slots::HEAP_FRAMES.start) as usize;
            let into = &HEAP_FRAME_SLOTS[first..first + region.frames as usize];
            let at = self.grown_base + self.grown_bytes;
            let mapped = memory.map_region(region, slots::HEAP_SPACE, at, true, into);
            if mapped.is_err() {
                let _ = memory.free(region.id);
            }
            mapped.map(|bytes| (region, bytes))
        });
        match result {
            Ok((region, bytes)) => {
                *next_slot += region.frames;
                *next_chunk_pages = (*next_chunk_pages * 2).min(MAX_CHUNK_PAGES);
                let at = self.grown_base + self.grown_bytes;
                if !raw::add_heap_memory(&mut self.grown, at, bytes as usize) {
                    return None;
                }
                self.grown_bytes += bytes;
                self.regions += 1;
                Some(())
            }
            Err(error) => {
                if !*reported {
                    *reported = true;
                    crate::println!("heap: cannot grow by {pages} pages: {error:?}");
                }
                None
            }
        }
    }
}

/// The slots of [`slots::HEAP_FRAMES`], as a table the grower slices.
const HEAP_FRAME_SLOTS: [CapSlot; (slots::HEAP_FRAMES.end - slots::HEAP_FRAMES.start) as usize] = {
    let mut table = [CapSlot::new(0); (slots::HEAP_FRAMES.end - slots::HEAP_FRAMES.start) as usize];
    let mut index = 0;
    while index < table.len() {
        table[index] = CapSlot::new(slots::HEAP_FRAMES.start + index as u32);
        index += 1;
    }
    table
};

/// Hands the static region to the allocator and decides whether the heap can grow: it can
/// if the program started with an endpoint at [`slots::HEAP_MEMORY`] and an address space at
/// [`slots::HEAP_SPACE`]. Called once by [`crate::rt`] before `main`; later calls do nothing.
pub(crate) fn init() {
    raw::with_heap(|state| {
        if !matches!(state.growth, Growth::Unknown) {
            return;
        }
        if let Some(memory) = raw::take_heap_memory() {
            state.fixed.init_from_slice(memory);
        }
        let holds = |slot, kind| sys::cap_identify(slot).is_ok_and(|info| info.object_type == kind);
        state.growth = if holds(slots::HEAP_MEMORY, ObjectType::Endpoint) && holds(slots::HEAP_SPACE, ObjectType::AddressSpace) {
            // A random 64 KiB boundary in the first 1 TiB of the range.
            let offset = crate::loader::entropy() % (1 << 24) * 0x1_0000;
            state.grown_base = GROWTH_LOW + offset;
            Growth::Ready {
                memory: Memory::new(slots::HEAP_MEMORY),
                next_chunk_pages: FIRST_CHUNK_PAGES,
                next_slot: slots::HEAP_FRAMES.start,
                reported: false,
            }
        } else {
            Growth::Unavailable
        };
    });
}

/// What the heap holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// Bytes in use, in both regions.
    pub used: usize,
    /// Bytes free in both regions (without growing).
    pub free: usize,
    /// Bytes the heap has grown by through the memory server.
    pub grown: u64,
    /// Regions fetched from the memory server.
    pub regions: u32,
    /// Whether the heap can grow (the program has a `heap` in the manifest).
    pub can_grow: bool,
}

/// Heap usage.
pub fn usage() -> Usage {
    raw::with_heap(|state| Usage {
        used: state.fixed.used() + state.grown.used(),
        free: state.fixed.free() + state.grown.free(),
        grown: state.grown_bytes,
        regions: state.regions,
        can_grow: matches!(state.growth, Growth::Ready { .. }),
    })
}
