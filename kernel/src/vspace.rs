//! User address spaces: page tables for the lower half, and checked access to user memory.
//!
//! Each space has its own PML4. Its upper half (entries 256..512) points at the kernel's
//! own PDPTs, so the kernel is mapped identically everywhere (and never user-accessible);
//! its lower half is the process's. User mappings are created only through [`map`], which
//! refuses anything both writable and executable and anything outside the lower half.
//!
//! User memory is an allegation until checked: [`copy_from_user`] and [`copy_to_user`]
//! walk the space's page tables for every page of the range and require present, user,
//! (and writable) mappings, then copy through the direct map. The kernel never dereferences
//! a user pointer, so SMAP stays on without exceptions and no user pointer can fault the
//! kernel.

use abi::ErrorCode;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::mm;

/// One past the highest user address (the lower canonical half).
pub const USER_END: u64 = 0x0000_8000_0000_0000;
const PAGE: u64 = 4096;

/// What a user mapping allows. Readable is implied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    pub write: bool,
    pub execute: bool,
}

impl Perms {
    pub const READ: Perms = Perms { write: false, execute: false };
    pub const READ_WRITE: Perms = Perms { write: true, execute: false };
    #[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
    pub const READ_EXECUTE: Perms = Perms { write: false, execute: true };
}

/// Where `Map` gets the page tables it needs: the kernel allocator, at most `limit` tables
/// (what the address space's payer can still pay for), counting what it hands out.
pub struct Tables {
    limit: u64,
    made: u64,
    /// The last request was refused because `limit` was reached (not because RAM ran out).
    over_limit: bool,
}

impl Tables {
    /// No limit: the kernel builds this space itself (init, test programs) and pays.
    pub const UNLIMITED: Tables = Tables { limit: u64::MAX, made: 0, over_limit: false };

    pub const fn at_most(limit: u64) -> Tables {
        Tables { limit, made: 0, over_limit: false }
    }

    /// How many tables this budget handed out.
    pub const fn made(&self) -> u64 {
        self.made
    }
}

// SAFETY: `mm::allocate_frame` returns unused, zeroed frames that the caller owns.
unsafe impl FrameAllocator<Size4KiB> for Tables {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        if self.made >= self.limit {
            self.over_limit = true;
            return None;
        }
        let frame = mm::allocate_frame().ok().map(|address| PhysFrame::containing_address(PhysAddr::new(address)))?;
        self.made = self.made.saturating_add(1);
        Some(frame)
    }
}

fn table(phys: u64) -> &'static mut PageTable {
    let pointer = mm::phys_to_virt(phys) as *mut PageTable;
    // SAFETY: callers pass page-table frames owned by an address space; the direct map
    // covers them; the kernel is single-threaded with interrupts off while it edits page
    // tables, so no other reference to this table is live.
    unsafe { &mut *pointer }
}

fn mapper(pml4: u64) -> OffsetPageTable<'static> {
    // SAFETY: `pml4` is the root of a user address space made by `create`, and all physical
    // memory its tables live in is mapped at the direct map.
    unsafe { OffsetPageTable::new(table(pml4), VirtAddr::new(mm::DIRECT_MAP_BASE)) }
}

/// A new address space: empty lower half, the kernel's upper half. Returns its PML4.
pub fn create() -> Result<u64, ErrorCode> {
    let pml4 = mm::allocate_frame().map_err(|_| ErrorCode::OutOfResources)?;
    let (kernel_root, _) = x86_64::registers::control::Cr3::read();
    let kernel = table(kernel_root.start_address().as_u64());
    let new = table(pml4);
    for index in 256..512 {
        new[index] = kernel[index].clone();
    }
    Ok(pml4)
}

/// Frame-object tags fit in the 14 bits x86 leaves to software in a page-table entry
/// (bits 9-11 and 52-62): tag = frame index + 1, 0 = not a frame object.
pub const MAX_TAG: u16 = (1 << 14) - 1;

fn tag_flags(tag: u16) -> Flags {
    let tag = u64::from(tag & MAX_TAG);
    Flags::from_bits_truncate(((tag & 0b111) << 9) | ((tag >> 3) << 52))
}

fn tag_of(flags: Flags) -> u16 {
    let bits = flags.bits();
    (((bits >> 9) & 0b111) | (((bits >> 52) & 0x7ff) << 3)) as u16
}

/// Maps one page of `phys` at user address `virt` in a space the kernel builds itself (its
/// tables are the kernel's expense). Never writable and executable.
pub fn map(pml4: u64, virt: u64, phys: u64, perms: Perms) -> Result<(), ErrorCode> {
    let mut tables = Tables::UNLIMITED;
    map_tagged(pml4, virt, phys, perms, 0, &mut tables)
}

/// How the CPU may cache a user mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caching {
    /// Write-back: RAM.
    Normal,
    /// Uncached (PCD and PWT set: PAT entry 3, UC, with the power-on PAT the kernel keeps):
    /// device registers, where every access must reach the device, in order.
    Uncached,
}

/// As [`map`], remembering `tag` in the entry's software bits, so that unmapping finds the
/// frame object in constant time, and taking new page tables from `tables`: when it runs
/// dry the answer is `OutOfQuota` and nothing is mapped.
pub fn map_tagged(pml4: u64, virt: u64, phys: u64, perms: Perms, tag: u16, tables: &mut Tables) -> Result<(), ErrorCode> {
    map_tagged_with(pml4, virt, phys, perms, Caching::Normal, tag, tables)
}

/// As [`map_tagged`], with the mapping's [`Caching`].
pub fn map_tagged_with(pml4: u64, virt: u64, phys: u64, perms: Perms, caching: Caching, tag: u16, tables: &mut Tables) -> Result<(), ErrorCode> {
    if perms.write && perms.execute {
        return Err(ErrorCode::InvalidArgument);
    }
    if !virt.is_multiple_of(PAGE) || !phys.is_multiple_of(PAGE) || virt >= USER_END {
        return Err(ErrorCode::InvalidArgument);
    }
    let mut flags = Flags::PRESENT | Flags::USER_ACCESSIBLE | tag_flags(tag);
    if perms.write {
        flags |= Flags::WRITABLE;
    }
    if !perms.execute {
        flags |= Flags::NO_EXECUTE;
    }
    if caching == Caching::Uncached {
        flags |= Flags::NO_CACHE | Flags::WRITE_THROUGH;
    }
    let parents = Flags::PRESENT | Flags::WRITABLE | Flags::USER_ACCESSIBLE;
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(phys));
    // SAFETY: the page is in the lower half of a user space, so it cannot alias kernel
    // memory the kernel relies on; the frame is owned by whoever asked for the mapping.
    let result = unsafe { mapper(pml4).map_to_with_table_flags(page, frame, flags, parents, tables) };
    match result {
        Ok(flush) => {
            flush.flush();
            Ok(())
        }
        // Tables made before the refusal stay (empty); the caller's rollback prunes them.
        Err(x86_64::structures::paging::mapper::MapToError::FrameAllocationFailed) if tables.over_limit => Err(ErrorCode::OutOfQuota),
        Err(x86_64::structures::paging::mapper::MapToError::FrameAllocationFailed) => Err(ErrorCode::OutOfResources),
        Err(_) => Err(ErrorCode::SlotOccupied),
    }
}

/// The frame behind user page `virt`, if it is mapped for user access (and writable when
/// `write`) and is RAM: an uncached page is device memory (a device frame), which the
/// kernel never reads or writes for a user (through its cached direct map, a read could
/// have side effects on the device), so user copies refuse it like an unmapped page.
pub fn translate(pml4: u64, virt: u64, write: bool) -> Option<u64> {
    if virt >= USER_END {
        return None;
    }
    let mut table_phys = pml4;
    for level in (1..=4u32).rev() {
        let index = ((virt >> (12 + 9 * (level - 1))) & 0x1ff) as usize;
        let entry = &table(table_phys)[index];
        let flags = entry.flags();
        if !flags.contains(Flags::PRESENT | Flags::USER_ACCESSIBLE) || (write && !flags.contains(Flags::WRITABLE)) {
            return None;
        }
        if level == 1 {
            if flags.contains(Flags::NO_CACHE) {
                return None;
            }
            return Some(entry.addr().as_u64() + (virt & (PAGE - 1)));
        }
        if flags.contains(Flags::HUGE_PAGE) {
            return None; // user space uses 4 KiB pages only
        }
        table_phys = entry.addr().as_u64();
    }
    None
}

/// Whether user page `virt` is mapped uncached (PCD and PWT), `None` if it is not mapped
/// (for the checks of tests).
#[cfg(feature = "ktest")]
pub fn is_uncached(pml4: u64, virt: u64) -> Option<bool> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    match x86_64::structures::paging::mapper::Translate::translate(&mapper(pml4), page.start_address()) {
        x86_64::structures::paging::mapper::TranslateResult::Mapped { flags, .. } => Some(flags.contains(Flags::NO_CACHE | Flags::WRITE_THROUGH)),
        _ => None,
    }
}

/// The physical address behind user address `virt`, whatever the page's permissions
/// (the loader writes read-only pages it has just mapped).
pub fn translate_any(pml4: u64, virt: u64) -> Option<u64> {
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    let frame = x86_64::structures::paging::mapper::Translate::translate_addr(&mapper(pml4), page.start_address())?;
    Some(frame.as_u64() + (virt & (PAGE - 1)))
}

/// Copies `buffer.len()` bytes from user address `address` in `pml4`.
pub fn copy_from_user(pml4: u64, address: u64, buffer: &mut [u8]) -> Result<(), ErrorCode> {
    let mut done = 0usize;
    while done < buffer.len() {
        let virt = address.checked_add(done as u64).ok_or(ErrorCode::InvalidArgument)?;
        let phys = translate(pml4, virt, false).ok_or(ErrorCode::InvalidArgument)?;
        let chunk = ((PAGE - (virt % PAGE)) as usize).min(buffer.len() - done);
        let source = mm::phys_to_virt(phys) as *const u8;
        let into = buffer.get_mut(done..done + chunk).ok_or(ErrorCode::InvalidArgument)?;
        // SAFETY: `phys..phys+chunk` lies inside one user-readable page (checked above) of
        // RAM in the direct map; `into` is `chunk` bytes of the caller's buffer.
        unsafe { core::ptr::copy_nonoverlapping(source, into.as_mut_ptr(), chunk) };
        done += chunk;
    }
    Ok(())
}

/// Copies `data` to user address `address` in `pml4`, which must be user-writable.
pub fn copy_to_user(pml4: u64, address: u64, data: &[u8]) -> Result<(), ErrorCode> {
    // Check every page first, so a failing copy writes nothing.
    let mut offset = 0u64;
    while offset < data.len() as u64 {
        let virt = address.checked_add(offset).ok_or(ErrorCode::InvalidArgument)?;
        translate(pml4, virt, true).ok_or(ErrorCode::InvalidArgument)?;
        offset += PAGE - (virt % PAGE);
    }
    let mut done = 0usize;
    while done < data.len() {
        let virt = address + done as u64;
        let phys = translate(pml4, virt, true).ok_or(ErrorCode::InvalidArgument)?;
        let chunk = ((PAGE - (virt % PAGE)) as usize).min(data.len() - done);
        let target = mm::phys_to_virt(phys) as *mut u8;
        let from = data.get(done..done + chunk).ok_or(ErrorCode::InvalidArgument)?;
        // SAFETY: as in `copy_from_user`, for a user-writable page.
        unsafe { core::ptr::copy_nonoverlapping(from.as_ptr(), target, chunk) };
        done += chunk;
    }
    Ok(())
}

/// The frame-object tag of the page mapped at user address `virt` (0: mapped, but not a
/// frame object's page). `InvalidArgument` if nothing is mapped there.
pub fn tag_at(pml4: u64, virt: u64) -> Result<u16, ErrorCode> {
    use x86_64::structures::paging::mapper::{Translate, TranslateResult};
    if !virt.is_multiple_of(PAGE) || virt >= USER_END {
        return Err(ErrorCode::InvalidArgument);
    }
    match mapper(pml4).translate(VirtAddr::new(virt)) {
        TranslateResult::Mapped { flags, .. } => Ok(tag_of(flags)),
        _ => Err(ErrorCode::InvalidArgument),
    }
}

/// Removes the mapping at user address `virt`, returning the frame it mapped, its tag, and
/// how many page tables became empty and were freed with it.
pub fn unmap(pml4: u64, virt: u64) -> Result<(u64, u16, u64), ErrorCode> {
    use x86_64::structures::paging::mapper::{Translate, TranslateResult};
    if !virt.is_multiple_of(PAGE) || virt >= USER_END {
        return Err(ErrorCode::InvalidArgument);
    }
    let mut mapper = mapper(pml4);
    let tag = match mapper.translate(VirtAddr::new(virt)) {
        TranslateResult::Mapped { flags, .. } => tag_of(flags),
        _ => return Err(ErrorCode::InvalidArgument),
    };
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
    match mapper.unmap(page) {
        Ok((frame, flush)) => {
            flush.flush();
            Ok((frame.start_address().as_u64(), tag, prune(pml4, virt)))
        }
        Err(_) => Err(ErrorCode::InvalidArgument),
    }
}

/// Frees the page tables on `virt`'s path that hold no entry any more, lowest first, and
/// returns how many. A space never keeps an empty table, so mapping and unmapping across
/// its range cannot pile up kernel memory.
pub fn prune(pml4: u64, virt: u64) -> u64 {
    // The path: the PML4, then the PDPT, PD and PT for `virt`, as (table, index in it).
    let mut path = [(pml4, 0usize); 4];
    let mut table_phys = pml4;
    for (level, step) in path.iter_mut().enumerate() {
        let shift = 39 - 9 * level;
        let index = ((virt >> shift) & 0x1ff) as usize;
        *step = (table_phys, index);
        let entry = &table(table_phys)[index];
        if level == 3 {
            break;
        }
        if !entry.flags().contains(Flags::PRESENT) || entry.flags().contains(Flags::HUGE_PAGE) {
            return 0;
        }
        table_phys = entry.addr().as_u64();
    }
    let mut freed = 0;
    // From the PT up to the PDPT: free a table that is empty, and clear its parent's entry.
    for level in (1..4).rev() {
        let (Some(&(child, _)), Some(&(parent, index))) = (path.get(level), path.get(level - 1)) else { break };
        if table(child).iter().any(|entry| !entry.is_unused()) {
            break;
        }
        table(parent)[index].set_unused();
        let _ = mm::free_frame(child);
        freed += 1;
    }
    if freed > 0 {
        // The CPU may cache the cleared paging-structure entries; INVLPG drops them all
        // (for the current address space; other spaces are flushed by their next CR3 load).
        x86_64::instructions::tlb::flush(VirtAddr::new(virt));
    }
    freed
}

// ----- address-space objects -------------------------------------------------------------

pub const MAX_SPACES: usize = abi::tables::Table::AddressSpaces.capacity() as usize;
/// What an address space costs its creator's quota when it is made: its root and a few
/// tables' worth of bookkeeping. Every page table `Map` makes later is charged on top
/// ([`TABLE_COST`] each) and refunded when `Unmap` leaves it empty.
pub const SPACE_COST: u64 = 4 * 4096;
/// What one page table costs the address space's payer.
pub const TABLE_COST: u64 = 4096;

/// An address-space object: its root, whether the pages mapped in it belong to it (pages of
/// a space built by the kernel, init's image, belong to the space; pages user space maps
/// belong to their frame caps), and the cap-store object its page tables are charged to.
#[derive(Clone, Copy)]
struct SpaceEntry {
    root: u64,
    owns_pages: bool,
    object: Option<kcore::cap::ObjectId>,
}

impl SpaceEntry {
    const FREE: SpaceEntry = SpaceEntry { root: 0, owns_pages: false, object: None };
}

static SPACES: spin::Mutex<[SpaceEntry; MAX_SPACES]> = spin::Mutex::new([SpaceEntry::FREE; MAX_SPACES]);

/// Registers `pml4` as an address-space object; returns its index.
pub fn register(pml4: u64, owns_pages: bool) -> Result<u16, ErrorCode> {
    let mut spaces = SPACES.lock();
    let index = spaces.iter().position(|entry| entry.root == 0).ok_or(ErrorCode::OutOfResources)?;
    let entry = spaces.get_mut(index).ok_or(ErrorCode::OutOfResources)?;
    *entry = SpaceEntry { root: pml4, owns_pages, object: None };
    u16::try_from(index).map_err(|_| ErrorCode::OutOfResources)
}

/// Records which cap-store object pays for space `index`'s page tables (once its cap exists).
pub fn set_payer(index: u16, object: kcore::cap::ObjectId) {
    if let Some(entry) = SPACES.lock().get_mut(usize::from(index)).filter(|entry| entry.root != 0) {
        entry.object = Some(object);
    }
}

pub fn root(index: u16) -> Option<u64> {
    SPACES.lock().get(usize::from(index)).map(|entry| entry.root).filter(|&root| root != 0)
}

/// Whether `pml4` is the root of an address-space object (so its threads do not own it).
pub fn is_object(pml4: u64) -> bool {
    pml4 != 0 && SPACES.lock().iter().any(|entry| entry.root == pml4)
}

/// The page tables space `index` may still make: what its payer can pay for.
pub fn table_budget(index: u16) -> Tables {
    let object = SPACES.lock().get(usize::from(index)).and_then(|entry| entry.object);
    match object {
        Some(object) => Tables::at_most(crate::caps::with(|store| store.available_to(object)) / TABLE_COST),
        None => Tables::UNLIMITED,
    }
}

/// Settles a `Map` or `Unmap` of space `index`: `made` tables were made (and fit the budget
/// [`table_budget`] gave), `freed` were freed. The payer is charged or refunded the difference.
pub fn settle_tables(index: u16, made: u64, freed: u64) {
    let Some(object) = SPACES.lock().get(usize::from(index)).and_then(|entry| entry.object) else { return };
    crate::caps::with(|store| {
        if made > freed {
            // Fits: the budget was what the payer could pay, and nothing ran in between.
            let _ = store.charge_object(object, (made - freed) * TABLE_COST);
        } else {
            store.refund_object(object, (freed - made) * TABLE_COST);
        }
    });
}

/// Every address-space object that user space made (its payer pays for its tables) is
/// charged exactly [`SPACE_COST`] plus [`TABLE_COST`] per page table in its lower half, and
/// has no empty table. `Err((index, charged, tables))` names the first that is not (for the
/// consistency checks of tests).
#[cfg(feature = "ktest")]
pub fn check_table_charges() -> Result<(), (u16, u64, u64)> {
    fn count(table_phys: u64, level: u32) -> (u64, bool) {
        let mut tables = 0;
        let mut any_empty = false;
        let mut used = 0;
        for entry in table(table_phys).iter() {
            if !entry.flags().contains(Flags::PRESENT) {
                continue;
            }
            used += 1;
            if level > 1 {
                let (below, empty) = count(entry.addr().as_u64(), level - 1);
                tables += 1 + below;
                any_empty |= empty;
            }
        }
        (tables, any_empty || used == 0)
    }
    let spaces = *SPACES.lock();
    for (index, entry) in spaces.iter().enumerate() {
        let (Some(object), false) = (entry.object, entry.owns_pages) else { continue };
        if entry.root == 0 {
            continue;
        }
        let mut tables = 0;
        let mut empty = false;
        for pml4_entry in table(entry.root).iter().take(256) {
            if pml4_entry.flags().contains(Flags::PRESENT) {
                let (below, any_empty) = count(pml4_entry.addr().as_u64(), 3);
                tables += 1 + below;
                empty |= any_empty;
            }
        }
        let charged = crate::caps::with(|store| store.cost_of(object));
        if empty || charged != SPACE_COST + tables * TABLE_COST {
            return Err((index as u16, charged, tables));
        }
    }
    Ok(())
}

/// The space object's last cap is gone: stop its threads, free its tables (the frames it
/// mapped belong to their frame caps and stay). The store has already refunded everything
/// its tables were charged.
pub fn destroy_object(index: u16) {
    let Some(SpaceEntry { root: pml4, owns_pages, .. }) = SPACES.lock().get(usize::from(index)).copied().filter(|entry| entry.root != 0) else {
        return;
    };
    let current_dies = crate::sched::kill_threads_in(pml4);
    crate::frame::forget_space(index);
    if let Some(slot) = SPACES.lock().get_mut(usize::from(index)) {
        *slot = SpaceEntry::FREE;
    }
    destroy(pml4, owns_pages);
    if current_dies {
        crate::sched::doom_current();
    }
}

/// Frees the lower half: every user page-table frame and, when `free_pages`, every mapped
/// frame; then the PML4 itself. The space must not be active on any CPU.
pub fn destroy(pml4: u64, free_pages: bool) {
    fn free_level(table_phys: u64, level: u32, free_pages: bool) {
        for index in 0..512 {
            let entry = &table(table_phys)[index];
            if !entry.flags().contains(Flags::PRESENT) {
                continue;
            }
            let child = entry.addr().as_u64();
            if level > 1 {
                free_level(child, level - 1, free_pages);
                let _ = mm::free_frame(child);
            } else if free_pages && tag_of(entry.flags()) == 0 {
                // Tagged pages belong to frame objects, which free them (after unmapping
                // them everywhere) when their last cap goes.
                let _ = mm::free_frame(child);
            }
        }
    }
    for index in 0..256 {
        let entry = &table(pml4)[index];
        if entry.flags().contains(Flags::PRESENT) {
            let child = entry.addr().as_u64();
            free_level(child, 3, free_pages);
            let _ = mm::free_frame(child);
        }
    }
    let _ = mm::free_frame(pml4);
}
