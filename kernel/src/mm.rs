//! Physical memory: the direct map and the kernel's frame allocator.
//!
//! All RAM is mapped at [`DIRECT_MAP_BASE`] (read-write, never executable), so the kernel
//! reaches any frame by address arithmetic. The frame allocator is the host-tested
//! [`kcore::frames::FrameAllocator`], its bitmap carved from RAM at boot.

use kcore::bootinfo::{BootInfoError, PhysRead};
use kcore::frames::{FrameAllocator, FrameError};
use kcore::memmap::MemoryMap;
use spin::Mutex;

/// Where physical address 0 appears in the kernel's address space.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// The boot stub's page tables map only the first 4 GiB at the direct map.
pub const BOOT_DIRECT_MAP_LIMIT: u64 = 4 << 30;

static FRAMES: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);

/// The kernel virtual address of physical `address` in the direct map.
pub fn phys_to_virt(address: u64) -> u64 {
    DIRECT_MAP_BASE.wrapping_add(address)
}

/// Physical memory reads for the boot-information parser, limited to what the boot page
/// tables map.
pub struct BootMemory;

impl PhysRead for BootMemory {
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), BootInfoError> {
        let end = address.checked_add(buffer.len() as u64).ok_or(BootInfoError::Unreadable { address })?;
        if end > BOOT_DIRECT_MAP_LIMIT {
            return Err(BootInfoError::Unreadable { address });
        }
        let source = phys_to_virt(address) as *const u8;
        // SAFETY: [address, end) lies below 4 GiB, which the boot page tables map at the
        // direct map, and the kernel's own tables map all RAM there too. Firmware memory
        // is plain memory: reading it has no side effects. Volatile-free byte copy.
        unsafe { core::ptr::copy_nonoverlapping(source, buffer.as_mut_ptr(), buffer.len()) };
        Ok(())
    }
}

/// Builds the frame allocator from usable RAM, carving its bitmap from the first range
/// below the boot direct-map limit that is large enough.
pub fn init_frames(usable: &mut MemoryMap) -> Result<(), FrameError> {
    let words = FrameAllocator::words_needed(usable);
    let bytes = (words as u64 * 8).next_multiple_of(kcore::memmap::PAGE_SIZE);
    let storage_start = usable
        .ranges()
        .iter()
        .find(|range| range.len() >= bytes && range.start.saturating_add(bytes) <= BOOT_DIRECT_MAP_LIMIT)
        .map(|range| range.start)
        .ok_or(FrameError::OutOfMemory)?;
    usable.reserve(storage_start, bytes);
    let pointer = phys_to_virt(storage_start) as *mut u64;
    // SAFETY: the range is usable RAM below 4 GiB (mapped by the direct map, 8-byte
    // aligned since page aligned), now reserved from the allocator's own map so nothing
    // else will ever own it; the slice lives as long as the kernel.
    let bitmap: &'static mut [u64] = unsafe { core::slice::from_raw_parts_mut(pointer, words) };
    *FRAMES.lock() = Some(FrameAllocator::new(usable, bitmap)?);
    Ok(())
}

/// A zeroed 4 KiB frame.
pub fn allocate_frame() -> Result<u64, FrameError> {
    let frame = FRAMES.lock().as_mut().ok_or(FrameError::OutOfMemory)?.allocate()?;
    let pointer = phys_to_virt(frame) as *mut u8;
    // SAFETY: the frame is RAM that the allocator just handed to us alone, and the direct
    // map covers it (the allocator hands out low frames first, and the kernel's tables map
    // all of RAM before anything above 4 GiB could be reached).
    unsafe { core::ptr::write_bytes(pointer, 0, kcore::memmap::PAGE_SIZE as usize) };
    Ok(frame)
}

/// `pages` zeroed, physically contiguous frames (a power of two), aligned to their size,
/// all below physical address `limit`.
pub fn allocate_run(pages: u64, limit: u64) -> Result<u64, FrameError> {
    let first = FRAMES.lock().as_mut().ok_or(FrameError::OutOfMemory)?.allocate_run(pages, limit)?;
    let pointer = phys_to_virt(first) as *mut u8;
    let bytes = (pages * kcore::memmap::PAGE_SIZE) as usize;
    // SAFETY: as in `allocate_frame`, for every frame of the run, which the allocator just
    // handed to us alone and which is contiguous in the direct map.
    unsafe { core::ptr::write_bytes(pointer, 0, bytes) };
    Ok(first)
}

/// Returns a run from [`allocate_run`].
pub fn free_run(first: u64, pages: u64) -> Result<(), FrameError> {
    FRAMES.lock().as_mut().ok_or(FrameError::NotUsable)?.free_run(first, pages)
}

pub fn free_frame(frame: u64) -> Result<(), FrameError> {
    FRAMES.lock().as_mut().ok_or(FrameError::NotUsable)?.free(frame)
}

/// (free frames, managed frames).
pub fn frame_stats() -> (u64, u64) {
    FRAMES.lock().as_ref().map_or((0, 0), |frames| (frames.free_frames(), frames.frame_count()))
}
