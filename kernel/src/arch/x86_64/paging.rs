//! The kernel's own page tables: W^X for the image, a no-execute direct map, MMIO windows
//! and guarded kernel stacks.
//!
//! The boot stub's tables map 4 GiB three times with everything writable and executable;
//! [`init`] replaces them with tables in which every page has exactly the permissions its
//! contents need: text RX, rodata R, data/bss RW+NX, the direct map RW+NX, MMIO RW+NX
//! uncached. Nothing is both writable and executable ([`audit`] checks that by walking the
//! live tables), and nothing is user-accessible.
//!
//! # Address-space layout (upper half, kernel only)
//! | range                      | what                                   |
//! |----------------------------|----------------------------------------|
//! | `ffff8000_00000000`        | direct map of physical memory (RW, NX) |
//! | `fffffd00_00000000`        | kernel stacks, each over a guard page  |
//! | `fffffe00_00000000`        | MMIO windows (uncached, NX)            |
//! | `ffffffff_80000000` + phys | the kernel image                       |

use spin::Mutex;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageSize, PageTable, PageTableFlags as Flags, PhysFrame, Size1GiB,
    Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

use crate::arch::hooks as mm;

pub const KERNEL_VIRT_OFFSET: u64 = 0xffff_ffff_8000_0000;
pub const STACK_REGION: u64 = 0xffff_fd00_0000_0000;
pub const MMIO_REGION: u64 = 0xffff_fe00_0000_0000;
const PAGE: u64 = 4096;
/// Each stack slot: up to 31 pages of stack above one guard page.
const STACK_SLOT: u64 = 32 * PAGE;

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
}

struct KernelSpace {
    mapper: OffsetPageTable<'static>,
    next_stack_slot: u64,
    next_mmio: u64,
}

static KERNEL_SPACE: Mutex<Option<KernelSpace>> = Mutex::new(None);

#[derive(Debug)]
#[allow(dead_code, reason = "the fields are what the Debug report of a failed boot shows")]
pub enum PagingError {
    OutOfMemory,
    Map(&'static str),
    NotInitialised,
}

struct Frames;

// SAFETY: `mm::allocate_frame` returns frames that are unused, zeroed and owned by the
// caller from then on.
unsafe impl FrameAllocator<Size4KiB> for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        mm::allocate_frame().ok().map(|address| PhysFrame::containing_address(PhysAddr::new(address)))
    }
}

/// A section of the kernel image, by its linker symbols.
pub struct Section {
    #[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "the W^X audit test names sections"))]
    pub name: &'static str,
    pub start: u64,
    pub end: u64,
    pub flags: Flags,
}

pub fn kernel_sections() -> [Section; 3] {
    let text = Flags::PRESENT | Flags::GLOBAL;
    let rodata = Flags::PRESENT | Flags::GLOBAL | Flags::NO_EXECUTE;
    let data = Flags::PRESENT | Flags::GLOBAL | Flags::NO_EXECUTE | Flags::WRITABLE;
    // Taking the address of a linker symbol reads nothing.
    [
        Section { name: "text", start: (&raw const __text_start) as u64, end: (&raw const __text_end) as u64, flags: text },
        Section {
            name: "rodata",
            start: (&raw const __rodata_start) as u64,
            end: (&raw const __rodata_end) as u64,
            flags: rodata,
        },
        Section { name: "data", start: (&raw const __data_start) as u64, end: (&raw const __data_end) as u64, flags: data },
    ]
}

fn map_page<S: PageSize>(mapper: &mut OffsetPageTable<'static>, virt: u64, phys: u64, flags: Flags) -> Result<(), PagingError>
where
    OffsetPageTable<'static>: Mapper<S>,
{
    let page = Page::<S>::from_start_address(VirtAddr::new(virt)).map_err(|_| PagingError::Map("misaligned page"))?;
    let frame = PhysFrame::<S>::from_start_address(PhysAddr::new(phys)).map_err(|_| PagingError::Map("misaligned frame"))?;
    let parents = Flags::PRESENT | Flags::WRITABLE;
    // SAFETY: callers map either the kernel image onto its own frames, RAM into the
    // direct map, MMIO into its window or fresh frames as stacks: no mapping aliases
    // memory with conflicting expectations, and changes to the live tables are followed by
    // a flush (ignored here only before the tables are loaded).
    let flush = unsafe { mapper.map_to_with_table_flags(page, frame, flags, parents, &mut Frames) };
    match flush {
        Ok(flush) => {
            flush.flush();
            Ok(())
        }
        Err(x86_64::structures::paging::mapper::MapToError::FrameAllocationFailed) => Err(PagingError::OutOfMemory),
        Err(_) => Err(PagingError::Map("page already mapped")),
    }
}

/// Builds the kernel's tables, switches to them and returns the usable-RAM end mapped.
///
/// `ram_end`: one past the highest byte of RAM to put in the direct map.
pub fn init(ram_end: u64, gigabyte_pages: bool) -> Result<(), PagingError> {
    let pml4_frame = mm::allocate_frame().map_err(|_| PagingError::OutOfMemory)?;
    let pml4_pointer = mm::phys_to_virt(pml4_frame) as *mut PageTable;
    // SAFETY: the frame is fresh, zeroed, page-aligned RAM visible through the direct map,
    // and from now on owned by this table alone for the life of the kernel.
    let pml4: &'static mut PageTable = unsafe { &mut *pml4_pointer };
    // SAFETY: the whole of physical memory we will touch through this mapper (page-table
    // frames, all below 4 GiB at this point) is mapped at DIRECT_MAP_BASE by the boot
    // tables, and stays mapped there in the tables being built.
    let mut mapper = unsafe { OffsetPageTable::new(pml4, VirtAddr::new(mm::DIRECT_MAP_BASE)) };

    for section in kernel_sections() {
        let mut virt = section.start;
        while virt < section.end {
            map_page::<Size4KiB>(&mut mapper, virt, virt - KERNEL_VIRT_OFFSET, section.flags)?;
            virt += PAGE;
        }
    }

    // The direct map: all of the first 4 GiB (firmware tables, boot data) and all RAM above.
    let direct = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL | Flags::HUGE_PAGE;
    let end = ram_end.max(mm::BOOT_DIRECT_MAP_LIMIT);
    let mut phys = 0;
    while phys < end {
        if gigabyte_pages && phys % Size1GiB::SIZE == 0 && end - phys >= Size1GiB::SIZE {
            map_page::<Size1GiB>(&mut mapper, mm::phys_to_virt(phys), phys, direct)?;
            phys += Size1GiB::SIZE;
        } else {
            map_page::<Size2MiB>(&mut mapper, mm::phys_to_virt(phys), phys, direct)?;
            phys += Size2MiB::SIZE;
        }
    }

    let frame = PhysFrame::containing_address(PhysAddr::new(pml4_frame));
    // SAFETY: the new tables map the kernel image at the addresses it runs at (text,
    // rodata, data, bss including the current boot stack) and the direct map that the
    // kernel uses for everything else, so execution continues unchanged after the switch.
    unsafe { Cr3::write(frame, Cr3Flags::empty()) };
    *KERNEL_SPACE.lock() = Some(KernelSpace { mapper, next_stack_slot: 0, next_mmio: MMIO_REGION });
    Ok(())
}

/// Maps `len` bytes of device memory at physical `phys`, uncached and never executable.
pub fn map_mmio(phys: u64, len: u64) -> Result<u64, PagingError> {
    let mut guard = KERNEL_SPACE.lock();
    let space = guard.as_mut().ok_or(PagingError::NotInitialised)?;
    let first = phys & !(PAGE - 1);
    let last = phys.checked_add(len.max(1)).ok_or(PagingError::Map("MMIO range overflows"))?.next_multiple_of(PAGE);
    let base = space.next_mmio;
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::NO_CACHE | Flags::WRITE_THROUGH | Flags::GLOBAL;
    let mut offset = 0;
    while first + offset < last {
        map_page::<Size4KiB>(&mut space.mapper, base + offset, first + offset, flags)?;
        offset += PAGE;
    }
    space.next_mmio = base + offset + PAGE; // an unmapped page between windows
    Ok(base + (phys - first))
}

/// A kernel stack of `pages` pages above an unmapped guard page. Returns (bottom, top).
pub fn allocate_stack(pages: u64) -> Result<(u64, u64), PagingError> {
    if pages == 0 || pages >= STACK_SLOT / PAGE {
        return Err(PagingError::Map("stack size out of range"));
    }
    let mut guard = KERNEL_SPACE.lock();
    let space = guard.as_mut().ok_or(PagingError::NotInitialised)?;
    let slot = STACK_REGION + space.next_stack_slot * STACK_SLOT;
    space.next_stack_slot += 1;
    // The slot's first page stays unmapped: the guard. The stack sits at the slot's top.
    let bottom = slot + STACK_SLOT - pages * PAGE;
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL;
    for index in 0..pages {
        let frame = mm::allocate_frame().map_err(|_| PagingError::OutOfMemory)?;
        map_page::<Size4KiB>(&mut space.mapper, bottom + index * PAGE, frame, flags)?;
    }
    Ok((bottom, slot + STACK_SLOT))
}

/// What [`audit`] found in the live page tables.
#[derive(Debug, Default)]
pub struct Audit {
    pub leaves: u64,
    pub writable_and_executable: u64,
    pub user_accessible: u64,
    /// The first offending virtual address, if any.
    pub first_violation: Option<u64>,
}

/// Walks every present mapping of the live tables and checks W^X with the effective
/// permissions (writable only if every level says so; executable only if no level sets NX).
pub fn audit() -> Audit {
    let (frame, _) = Cr3::read();
    let mut audit = Audit::default();
    walk(frame.start_address().as_u64(), 4, 0, true, true, false, &mut audit);
    audit
}

fn walk(table: u64, level: u8, base: u64, writable: bool, executable: bool, user: bool, audit: &mut Audit) {
    let pointer = mm::phys_to_virt(table) as *const PageTable;
    // SAFETY: `table` comes from CR3 or a present non-leaf entry, so it is a page-table
    // frame in RAM, which the direct map covers; we only read it.
    let entries = unsafe { &*pointer };
    for (index, entry) in entries.iter().enumerate() {
        let flags = entry.flags();
        if !flags.contains(Flags::PRESENT) {
            continue;
        }
        let shift = 12 + 9 * (u32::from(level) - 1);
        let mut virt = base | ((index as u64) << shift);
        if level == 4 && index >= 256 {
            virt |= 0xffff_0000_0000_0000; // sign extension
        }
        let w = writable && flags.contains(Flags::WRITABLE);
        let x = executable && !flags.contains(Flags::NO_EXECUTE);
        let u = user || flags.contains(Flags::USER_ACCESSIBLE);
        let leaf = level == 1 || (level <= 3 && flags.contains(Flags::HUGE_PAGE));
        if leaf {
            audit.leaves += 1;
            if w && x {
                audit.writable_and_executable += 1;
                audit.first_violation.get_or_insert(virt);
            }
            if u {
                audit.user_accessible += 1;
            }
        } else {
            walk(entry.addr().as_u64(), level - 1, virt, w, x, u, audit);
        }
    }
}

/// The effective (writable, executable) permissions of the page at `virt`, or `None`.
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn permissions(virt: u64) -> Option<(bool, bool)> {
    let (frame, _) = Cr3::read();
    let mut table = frame.start_address().as_u64();
    let (mut writable, mut executable) = (true, true);
    for level in (1..=4u32).rev() {
        let index = ((virt >> (12 + 9 * (level - 1))) & 0x1ff) as usize;
        let pointer = mm::phys_to_virt(table) as *const PageTable;
        // SAFETY: as in `walk`: a page-table frame reachable from CR3, read only.
        let table_ref = unsafe { &*pointer };
        let entry = &table_ref[index];
        let flags = entry.flags();
        if !flags.contains(Flags::PRESENT) {
            return None;
        }
        writable &= flags.contains(Flags::WRITABLE);
        executable &= !flags.contains(Flags::NO_EXECUTE);
        if level == 1 || flags.contains(Flags::HUGE_PAGE) {
            return Some((writable, executable));
        }
        table = entry.addr().as_u64();
    }
    None
}
