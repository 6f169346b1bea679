//! Frame objects: pages of RAM that user space holds by capability and maps.
//!
//! A frame cap keeps its page alive; each mapping of it is recorded (up to
//! [`MAX_MAPPINGS`] per frame), so that when the frame's last cap goes every mapping is
//! removed before the page is freed, and no address space can keep a page that nobody
//! pays for. Pages are zeroed when allocated, so no process sees another's data.

use abi::ErrorCode;
use spin::Mutex;

use crate::mm;

/// One less than 2^14: a frame's index + 1 must fit a page-table entry's software bits.
pub const MAX_FRAMES: usize = crate::vspace::MAX_TAG as usize;
pub const MAX_MAPPINGS: usize = 2;
/// What a frame costs its creator's quota.
pub const FRAME_COST: u64 = 4096;

#[derive(Clone, Copy, Debug)]
struct Mapping {
    space: u16,
    address: u64,
    writable: bool,
    executable: bool,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    phys: u64,
    mappings: [Option<Mapping>; MAX_MAPPINGS],
}

static FRAMES: Mutex<[Option<Entry>; MAX_FRAMES]> = Mutex::new([None; MAX_FRAMES]);

/// A fresh zeroed page, registered as a frame object. Returns its index.
pub fn create() -> Result<u32, ErrorCode> {
    let mut frames = FRAMES.lock();
    let index = frames.iter().position(Option::is_none).ok_or(ErrorCode::OutOfResources)?;
    let phys = mm::allocate_frame().map_err(|_| ErrorCode::OutOfResources)?;
    frames[index] = Some(Entry { phys, mappings: [None; MAX_MAPPINGS] });
    Ok(index as u32)
}

pub fn phys(index: u32) -> Option<u64> {
    FRAMES.lock().get(index as usize).copied().flatten().map(|entry| entry.phys)
}

/// Records that frame `index` is mapped at `address` in address space `space` with
/// `perms`. W^X holds per frame, not just per mapping: a frame mapped writable anywhere is
/// never mapped executable anywhere, and the other way round (`InvalidArgument`), so no
/// process can run code it wrote through a second mapping.
pub fn add_mapping(index: u32, space: u16, address: u64, perms: crate::vspace::Perms) -> Result<(), ErrorCode> {
    let mut frames = FRAMES.lock();
    let entry = frames.get_mut(index as usize).and_then(Option::as_mut).ok_or(ErrorCode::InvalidArgument)?;
    let conflict = entry.mappings.iter().flatten().any(|m| (perms.execute && m.writable) || (perms.write && m.executable));
    if conflict {
        return Err(ErrorCode::InvalidArgument);
    }
    let free = entry.mappings.iter_mut().find(|m| m.is_none()).ok_or(ErrorCode::OutOfResources)?;
    *free = Some(Mapping { space, address, writable: perms.write, executable: perms.execute });
    Ok(())
}

/// Forgets frame `index`'s mapping at `address` in `space` (constant time).
pub fn remove_mapping_of(index: u32, space: u16, address: u64) {
    let mut frames = FRAMES.lock();
    if let Some(entry) = frames.get_mut(index as usize).and_then(Option::as_mut) {
        for mapping in entry.mappings.iter_mut() {
            if matches!(mapping, Some(m) if m.space == space && m.address == address) {
                *mapping = None;
            }
        }
    }
}

/// Forgets every mapping into `space` (it is being destroyed).
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

/// The frame's last cap is gone: unmap it everywhere, then free the page.
pub fn destroy(index: u32) {
    let entry = FRAMES.lock().get_mut(index as usize).and_then(Option::take);
    let Some(entry) = entry else { return };
    for mapping in entry.mappings.iter().flatten() {
        crate::vspace::unmap_object(mapping.space, mapping.address);
    }
    let _ = mm::free_frame(entry.phys);
}

/// Live frame objects (for the consistency checks of tests).
pub fn live() -> usize {
    FRAMES.lock().iter().flatten().count()
}
