//! Frame objects: physically contiguous runs of pages that user space holds by capability
//! and maps.
//!
//! Most frames are *owned*: RAM the kernel allocated for them (one 4 KiB page up to 2 MiB,
//! size-aligned), zeroed when allocated and freed when the frame goes. A few are
//! *borrowed*: memory the kernel did not allocate and must never free or zero, today the
//! boot module (the initrd, init's `INIT_INITRD_FRAME_SLOT`) and the slices `FrameSlice`
//! cuts from it, so a model's weights reach a sandbox mapped read-only and shared, never
//! copied. Borrowed memory stays where it is for the kernel's lifetime, so a slice needs
//! nothing to keep its source alive.
//!
//! A borrowed frame is of one of two kinds, and a slice is of its source's kind: *boot
//! memory* (the initrd: never writable, `FrameInfo` says immutable) and *device memory*
//! (init's `INIT_DEVICE_FRAME_SLOT` over the PCI device window, `kcore::pci`, and the BAR
//! slices init cuts from it for drivers): never RAM, so never allocated, zeroed or freed;
//! mapped uncached; writable if the cap allows, never executable.
//!
//! A frame cap keeps its frame alive; each mapping of it is recorded (up to
//! [`MAX_MAPPINGS`] per frame), so that when the frame's last cap goes every mapping is
//! removed before the memory is freed (owned) or forgotten (borrowed), and no address space
//! can keep memory that nobody pays for, nor reach a frame that later takes the same index.
//! A mapping always covers the whole frame, in whole pages.
//!
//! # Invariants
//! - A live owned entry's `phys` is the first of `pages` frames the kernel allocator handed
//!   out as one run; `pages` is a power of two, `phys` is aligned to `pages * 4 KiB`, and
//!   `bytes` is `pages * 4 KiB`.
//! - A live borrowed entry's pages `[phys, phys + pages * 4 KiB)` lie inside the boot
//!   module's pages, which the allocator never manages (they were reserved before it was
//!   built); `phys` is page-aligned, `pages` is any number from 1, not size-aligned, and
//!   `bytes` (what `FrameInfo` reports, the length asked for) satisfies
//!   `(pages - 1) * 4 KiB < bytes <= pages * 4 KiB`. Destroying it unmaps every mapping
//!   and never frees or zeroes a page.
//! - A live device entry's pages lie inside the device window, which holds no RAM; its
//!   `bytes` follow the borrowed rule above.
//! - A boot-memory frame is never mapped writable or executable, a device frame never
//!   executable and always uncached: [`map`] enforces it whatever rights the cap carries.
//! - Every recorded mapping is present in its space: `pages` consecutive pages from
//!   `address`, each tagged with this frame's index + 1. Untagged pages are never frames.
//! - W^X per frame: no frame is mapped writable anywhere and executable anywhere.

use abi::ErrorCode;
use spin::Mutex;

use crate::mm;
use crate::vspace::{self, Perms};

/// Every frame object holds a cap object, so there are never more frames than cap objects;
/// a frame's index + 1 is its tag in page-table entries, which must fit [`vspace::MAX_TAG`].
pub const MAX_FRAMES: usize = crate::caps::OBJECTS;
const _: () = assert!(MAX_FRAMES <= vspace::MAX_TAG as usize);
/// How many address spaces (or places in one) may map the same frame at once.
pub const MAX_MAPPINGS: usize = 8;
/// The smallest and largest frame sizes, in bytes.
pub const PAGE_BYTES: u64 = 4096;
pub const MAX_FRAME_BYTES: u64 = abi::syscall::frame_create::MAX_BYTES;

#[derive(Clone, Copy, Debug)]
struct Mapping {
    space: u16,
    address: u64,
    writable: bool,
    executable: bool,
}

/// Whose memory a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Memory {
    /// Allocated for the frame: zeroed then, freed with it.
    Owned,
    /// Not the kernel's to free or zero (the boot module): only its mappings go with it.
    Borrowed,
    /// Device registers (the PCI device window): not RAM, not the kernel's to free or zero;
    /// mapped uncached, never executable.
    Device,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    phys: u64,
    pages: u64,
    /// The size `FrameInfo` reports: see the module invariants.
    bytes: u64,
    memory: Memory,
    mappings: [Option<Mapping>; MAX_MAPPINGS],
}

static FRAMES: Mutex<[Option<Entry>; MAX_FRAMES]> = Mutex::new([None; MAX_FRAMES]);

/// A frame request from `ObjectCreate`'s registers, checked: `size` in bytes (0 means one
/// page) a power of two from 4 KiB to [`MAX_FRAME_BYTES`], `flags` only known bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pages: u64,
    /// One past the highest physical address the frame may use.
    limit: u64,
}

impl Spec {
    pub fn decode(size: u64, flags: u64) -> Result<Spec, ErrorCode> {
        use abi::syscall::frame_create::{ALL_FLAGS, BELOW_4GIB};
        let bytes = if size == 0 { PAGE_BYTES } else { size };
        if !bytes.is_power_of_two() || !(PAGE_BYTES..=MAX_FRAME_BYTES).contains(&bytes) || flags & !ALL_FLAGS != 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        let limit = if flags & BELOW_4GIB != 0 { 1 << 32 } else { u64::MAX };
        Ok(Spec { pages: bytes / PAGE_BYTES, limit })
    }

    /// What the frame costs its creator's quota: its size.
    pub fn bytes(self) -> u64 {
        self.pages * PAGE_BYTES
    }
}

/// A fresh zeroed frame as `spec` asks, registered as a frame object. Returns its index.
/// `OutOfResources` if the frame table is full or no such run of memory is free.
pub fn create(spec: Spec) -> Result<u32, ErrorCode> {
    let mut frames = FRAMES.lock();
    let index = frames.iter().position(Option::is_none).ok_or(ErrorCode::OutOfResources)?;
    let phys = mm::allocate_run(spec.pages, spec.limit).map_err(|_| ErrorCode::OutOfResources)?;
    let Some(entry) = frames.get_mut(index) else {
        let _ = mm::free_run(phys, spec.pages);
        return Err(ErrorCode::OutOfResources);
    };
    *entry = Some(Entry { phys, pages: spec.pages, bytes: spec.bytes(), memory: Memory::Owned, mappings: [None; MAX_MAPPINGS] });
    Ok(index as u32)
}

/// A borrowed frame's extent, checked: page-aligned start, at least one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Borrowed {
    phys: u64,
    bytes: u64,
    memory: Memory,
}

impl Borrowed {
    /// The boot module from its first page: `first` page-aligned, `bytes` from there to the
    /// module's end. Boot only: the caller vouches that the pages are the module's.
    pub fn boot_module(first: u64, bytes: u64) -> Result<Borrowed, ErrorCode> {
        if !first.is_multiple_of(PAGE_BYTES) || bytes == 0 || first.checked_add(bytes).is_none() {
            return Err(ErrorCode::InvalidArgument);
        }
        Ok(Borrowed { phys: first, bytes, memory: Memory::Borrowed })
    }

    /// The device window (`kcore::pci::device_window`), page-aligned. Boot only: the caller
    /// vouches that it holds no RAM and none of the kernel's own device registers.
    pub fn device_window(first: u64, bytes: u64) -> Result<Borrowed, ErrorCode> {
        if !first.is_multiple_of(PAGE_BYTES) || !bytes.is_multiple_of(PAGE_BYTES) || bytes == 0 || first.checked_add(bytes).is_none() {
            return Err(ErrorCode::InvalidArgument);
        }
        Ok(Borrowed { phys: first, bytes, memory: Memory::Device })
    }

    /// `FrameSlice` of live frame `source`: bytes `[offset, offset + length)` of it.
    /// `IllegalOperation` for an owned frame (its pages go back to the allocator when it
    /// dies, and a slice could outlive it); `InvalidArgument` for an offset that is not a
    /// multiple of 4 KiB, a length of 0, or a range past the source's length (overflow
    /// included); `PeerGone` if `source` is not live (a cap always names a live frame).
    pub fn slice(source: u32, offset: u64, length: u64) -> Result<Borrowed, ErrorCode> {
        let frames = FRAMES.lock();
        let entry = frames.get(source as usize).copied().flatten().ok_or(ErrorCode::PeerGone)?;
        if entry.memory == Memory::Owned {
            return Err(ErrorCode::IllegalOperation);
        }
        let end = offset.checked_add(length).ok_or(ErrorCode::InvalidArgument)?;
        if !offset.is_multiple_of(PAGE_BYTES) || length == 0 || end > entry.bytes {
            return Err(ErrorCode::InvalidArgument);
        }
        // Cannot overflow: offset < entry.bytes, and phys + bytes fits (checked when the
        // outermost borrowed frame was made, and every slice lies inside its source).
        // The slice is of the source's kind: boot memory stays read-only, a device stays
        // a device (uncached, never executable).
        Ok(Borrowed { phys: entry.phys + offset, bytes: length, memory: entry.memory })
    }
}

/// Registers a borrowed frame over `extent`: nothing is allocated or zeroed. Returns its
/// index; `OutOfResources` if the frame table is full.
pub fn create_borrowed(extent: Borrowed) -> Result<u32, ErrorCode> {
    let mut frames = FRAMES.lock();
    let index = frames.iter().position(Option::is_none).ok_or(ErrorCode::OutOfResources)?;
    let entry = frames.get_mut(index).ok_or(ErrorCode::OutOfResources)?;
    let pages = extent.bytes.div_ceil(PAGE_BYTES);
    *entry = Some(Entry { phys: extent.phys, pages, bytes: extent.bytes, memory: extent.memory, mappings: [None; MAX_MAPPINGS] });
    Ok(index as u32)
}

/// The frame's first physical address.
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn phys(index: u32) -> Option<u64> {
    info(index).map(|(phys, _)| phys)
}

/// (first physical address, size in bytes) of a live frame: for a borrowed frame the byte
/// length it was made with, not rounded to pages.
pub fn info(index: u32) -> Option<(u64, u64)> {
    FRAMES.lock().get(index as usize).copied().flatten().map(|entry| (entry.phys, entry.bytes))
}

/// Whether live frame `index` is boot memory (so immutable: never mapped writable anywhere).
pub fn is_borrowed(index: u32) -> Option<bool> {
    FRAMES.lock().get(index as usize).copied().flatten().map(|entry| entry.memory == Memory::Borrowed)
}

/// Whether live frame `index` is device memory.
pub fn is_device(index: u32) -> Option<bool> {
    FRAMES.lock().get(index as usize).copied().flatten().map(|entry| entry.memory == Memory::Device)
}

/// Maps all of frame `index` at `address` in address space `space` (root `pml4`), with
/// `perms`, as one mapping.
///
/// Every page of the range must be unmapped (`SlotOccupied`) and inside the lower half
/// (`InvalidArgument`). W^X holds per frame, not just per mapping: a frame mapped writable
/// anywhere is never mapped executable anywhere, and the other way round
/// (`InvalidArgument`), so no process can run code it wrote through a second mapping. A
/// boot-memory frame is mapped read-only and non-executable or not at all
/// (`InvalidArgument`), whatever rights its cap carries: defence in depth behind the cap's
/// rights (read and grant), since the kernel does not own that memory and never checked
/// what it holds. A device frame is never mapped executable (`InvalidArgument`; device
/// registers are not code) and always uncached.
/// `OutOfResources` when the frame already has [`MAX_MAPPINGS`] mappings or a page table
/// cannot be allocated; on any error nothing is mapped.
pub fn map(index: u32, space: u16, pml4: u64, address: u64, perms: Perms) -> Result<(), ErrorCode> {
    let mut frames = FRAMES.lock();
    let entry = frames.get_mut(index as usize).and_then(Option::as_mut).ok_or(ErrorCode::PeerGone)?;
    if entry.memory == Memory::Borrowed && (perms.write || perms.execute) {
        return Err(ErrorCode::InvalidArgument);
    }
    if entry.memory == Memory::Device && perms.execute {
        return Err(ErrorCode::InvalidArgument);
    }
    let caching = if entry.memory == Memory::Device { vspace::Caching::Uncached } else { vspace::Caching::Normal };
    let bytes = entry.pages * PAGE_BYTES;
    let end = address.checked_add(bytes).ok_or(ErrorCode::InvalidArgument)?;
    if !address.is_multiple_of(PAGE_BYTES) || end > vspace::USER_END {
        return Err(ErrorCode::InvalidArgument);
    }
    let conflict = entry.mappings.iter().flatten().any(|m| (perms.execute && m.writable) || (perms.write && m.executable));
    if conflict {
        return Err(ErrorCode::InvalidArgument);
    }
    let free = entry.mappings.iter().position(Option::is_none).ok_or(ErrorCode::OutOfResources)?;
    // The tag (index + 1) fits: indices are below MAX_FRAMES <= MAX_TAG.
    let tag = (index + 1) as u16;
    // One walk per page: `map_tagged` refuses a page that is mapped already
    // (`SlotOccupied`) or a table the space's payer cannot pay for (`OutOfQuota`), and the
    // pages mapped before it are taken back.
    let mut tables = vspace::table_budget(space);
    let mut freed = 0;
    for page in 0..entry.pages {
        let offset = page * PAGE_BYTES;
        if let Err(error) = vspace::map_tagged_with(pml4, address + offset, entry.phys + offset, perms, caching, tag, &mut tables) {
            freed += vspace::prune(pml4, address + offset);
            for done in 0..page {
                if let Ok((_, _, tables_freed)) = vspace::unmap(pml4, address + done * PAGE_BYTES) {
                    freed += tables_freed;
                }
            }
            vspace::settle_tables(space, tables.made(), freed);
            return Err(error);
        }
    }
    vspace::settle_tables(space, tables.made(), 0);
    if let Some(mapping) = entry.mappings.get_mut(free) {
        *mapping = Some(Mapping { space, address, writable: perms.write, executable: perms.execute });
    }
    Ok(())
}

/// Removes the mapping that starts at `address` in `space` (root `pml4`): all its pages.
/// `InvalidArgument` if nothing is mapped there or `address` is inside a frame's mapping
/// but not its start.
pub fn unmap(space: u16, pml4: u64, address: u64) -> Result<(), ErrorCode> {
    let tag = vspace::tag_at(pml4, address)?;
    if tag == 0 {
        // Not a frame object: a page the space itself owns (init's image), whose frame the
        // space frees when it goes.
        let (_, _, freed) = vspace::unmap(pml4, address)?;
        vspace::settle_tables(space, 0, freed);
        return Ok(());
    }
    let mut frames = FRAMES.lock();
    let entry = frames.get_mut(usize::from(tag) - 1).and_then(Option::as_mut).ok_or(ErrorCode::InvalidArgument)?;
    let slot = entry
        .mappings
        .iter()
        .position(|m| matches!(m, Some(m) if m.space == space && m.address == address))
        .ok_or(ErrorCode::InvalidArgument)?;
    if let Some(mapping) = entry.mappings.get_mut(slot) {
        *mapping = None;
    }
    let freed = unmap_pages(pml4, address, entry.pages);
    vspace::settle_tables(space, 0, freed);
    Ok(())
}

/// Unmaps `pages` pages from `address`; returns how many page tables that freed.
fn unmap_pages(pml4: u64, address: u64, pages: u64) -> u64 {
    (0..pages).filter_map(|page| vspace::unmap(pml4, address + page * PAGE_BYTES).ok()).map(|(_, _, freed)| freed).sum()
}

/// Forgets every mapping into `space` (it is being destroyed, page tables and all).
pub fn forget_space(space: u16) {
    let mut frames = FRAMES.lock();
    for entry in frames.iter_mut().flatten() {
        for mapping in entry.mappings.iter_mut() {
            if matches!(mapping, Some(m) if m.space == space) {
                *mapping = None;
            }
        }
    }
}

/// The frame's last cap is gone: unmap it everywhere, then free its memory if it owns it
/// (a borrowed or device frame's pages are left as they are: not freed, not zeroed).
pub fn destroy(index: u32) {
    let entry = FRAMES.lock().get_mut(index as usize).and_then(Option::take);
    let Some(entry) = entry else { return };
    for mapping in entry.mappings.iter().flatten() {
        if let Some(pml4) = vspace::root(mapping.space) {
            let freed = unmap_pages(pml4, mapping.address, entry.pages);
            vspace::settle_tables(mapping.space, 0, freed);
        }
    }
    if entry.memory == Memory::Owned {
        let _ = mm::free_run(entry.phys, entry.pages);
    }
}

/// Live frame objects (for the consistency checks of tests).
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn live() -> usize {
    FRAMES.lock().iter().flatten().count()
}
