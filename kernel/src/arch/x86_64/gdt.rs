//! Segments: the GDT, and the TSS with its interrupt stacks.
//!
//! Double fault, NMI and machine check run on their own stacks (IST entries), each above a
//! guard page, so a kernel stack overflow still produces a report instead of a triple
//! fault. The selector order (kernel code, kernel data, user data, user code) is the one
//! SYSRET expects.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

use super::paging;

pub const DOUBLE_FAULT_IST: u16 = 0;
pub const NMI_IST: u16 = 1;
pub const MACHINE_CHECK_IST: u16 = 2;
const IST_STACK_PAGES: u64 = 4;

/// Ring-3 selectors (RPL 3), fixed by the order of `init`'s appends.
pub const USER_DATA_SELECTOR: u64 = 0x18 | 3;
pub const USER_CODE_SELECTOR: u64 = 0x20 | 3;

pub struct Selectors {
    pub kernel_code: SegmentSelector,
    pub kernel_data: SegmentSelector,
    pub user_data: SegmentSelector,
    pub user_code: SegmentSelector,
    pub tss: SegmentSelector,
}

/// The TSS. The CPU reads it behind our back and the kernel updates RSP0 on every thread
/// switch, so Rust never holds a reference to it: it is touched through raw pointers only.
static mut TSS: TaskStateSegment = TaskStateSegment::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

/// The guard pages of the IST stacks, for the fault report and the tests: (bottom, top).
pub static IST_STACKS: Once<[(u64, u64); 3]> = Once::new();

pub fn init() -> Result<(), paging::PagingError> {
    let mut stacks = [(0, 0); 3];
    for stack in &mut stacks {
        *stack = paging::allocate_stack(IST_STACK_PAGES)?;
    }
    IST_STACKS.call_once(|| stacks);
    let tss = &raw mut TSS;
    // SAFETY: raw-pointer read of the static TSS before it is loaded; nothing else
    // accesses it yet (boot, one CPU, interrupts off).
    let mut table = unsafe { (*tss).interrupt_stack_table };
    for (entry, (_, top)) in table.iter_mut().zip(stacks.iter()) {
        *entry = VirtAddr::new(*top);
    }
    // SAFETY: as above, the write back.
    unsafe { (*tss).interrupt_stack_table = table };
    let (gdt, selectors) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let selectors = Selectors {
            kernel_code: gdt.append(Descriptor::kernel_code_segment()),
            kernel_data: gdt.append(Descriptor::kernel_data_segment()),
            user_data: gdt.append(Descriptor::user_data_segment()),
            user_code: gdt.append(Descriptor::user_code_segment()),
            // SAFETY: the TSS is a static, so it outlives the GDT; it is only ever accessed
            // through raw pointers (see `TSS`).
            tss: gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss) }),
        };
        (gdt, selectors)
    });
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which lives forever
    // (a static), and the code/data segments are the flat 64-bit ones the kernel runs in.
    unsafe { CS::set_reg(selectors.kernel_code) };
    // SAFETY: as above, a flat kernel data segment.
    unsafe { SS::set_reg(selectors.kernel_data) };
    // SAFETY: as above.
    unsafe { DS::set_reg(selectors.kernel_data) };
    // SAFETY: as above.
    unsafe { ES::set_reg(selectors.kernel_data) };
    // SAFETY: the TSS descriptor points at a static TSS whose IST stacks are mapped.
    unsafe { load_tss(selectors.tss) };
    Ok(())
}

/// Sets the stack the CPU uses for interrupts and exceptions taken in ring 3.
pub fn set_interrupt_stack(top: u64) {
    let tss = &raw mut TSS;
    // SAFETY: `tss` points to the static TSS; taking a field's address reads nothing.
    let rsp0 = unsafe { &raw mut (*tss).privilege_stack_table[0] };
    // SAFETY: raw-pointer write to the static TSS; the CPU reads RSP0 only when it takes
    // an interrupt from ring 3, which cannot happen while the kernel runs (interrupts off).
    unsafe { core::ptr::write_unaligned(rsp0, VirtAddr::new(top)) };
}

pub fn selectors() -> Option<&'static Selectors> {
    GDT.get().map(|(_, selectors)| selectors)
}
