//! The architecture contract: what the kernel asks of the machine, and the only ways the
//! machine calls the kernel.
//!
//! The kernel proper names nothing below `arch::x86_64`: it uses the modules and functions
//! re-exported here. The other way, the arch layer reaches the kernel only through
//! [`hooks`] (plus the boot stub's jump to `kernel_entry`, an assembly symbol). Porting to
//! another architecture means providing this list. Two exceptions remain in the kernel
//! proper: `vspace.rs` builds x86-64 page tables with the `x86_64` crate's mapper, and the
//! I/O-port caps (`irq.rs`) are x86's own port instructions.

mod x86_64;

// Boot and platform discovery (`main.rs`), interrupt controllers and timers (`irq.rs`,
// `sched.rs`), CPU features and per-thread state (`sched.rs`), the console's UART.
pub use self::x86_64::{acpi, apic, boot, context, cpu, gdt, idt, ioapic, paging, serial, syscall, time};
pub use self::x86_64::{halt_forever, switch_stack, wait_for_interrupt};
/// Ends a QEMU run with an exit code (the in-QEMU tests).
#[cfg(feature = "ktest")]
pub use self::x86_64::exit_qemu;

/// The registers of an interrupted thread, as traps and syscalls save them.
pub use self::x86_64::idt::TrapFrame;

/// The root of the address space the CPU runs in now (physical address of its top table).
pub fn active_address_space() -> u64 {
    ::x86_64::registers::control::Cr3::read().0.start_address().as_u64()
}

/// Runs in address space `root` from now on (no flush of global kernel mappings).
///
/// # Safety
/// `root` is a live top-level table that maps the kernel's half exactly as every other
/// space does (so the kernel keeps running across the switch), and it stays live while
/// loaded.
pub unsafe fn load_address_space(root: u64) {
    let frame = ::x86_64::structures::paging::PhysFrame::containing_address(::x86_64::PhysAddr::new(root));
    // SAFETY: the caller's contract above.
    unsafe { ::x86_64::registers::control::Cr3::write(frame, ::x86_64::registers::control::Cr3Flags::empty()) };
}

/// Runs `f` with interrupts off, restoring their state after.
pub fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    ::x86_64::instructions::interrupts::without_interrupts(f)
}

/// How the machine calls the kernel: the arch layer calls up through these and nothing
/// else, so what an interrupt or a syscall can reach in the kernel is this list.
pub mod hooks {
    use super::TrapFrame;

    // Kernel services the arch layer builds on: the physical frame allocator and the
    // direct map (page tables, ACPI tables), and the last-resort console (exceptions).
    pub use crate::console::print_emergency;
    pub use crate::mm::{BOOT_DIRECT_MAP_LIMIT, DIRECT_MAP_BASE, allocate_frame, phys_to_virt};

    /// A `SYSCALL` from user mode, its registers saved in `frame`.
    pub fn syscall(frame: &mut TrapFrame) {
        crate::syscall::dispatch(frame);
    }

    /// An exception raised in user mode (`cr2`: the faulting address of a page fault).
    pub fn user_exception(frame: &mut TrapFrame, cr2: u64) {
        crate::sched::user_exception(frame, cr2);
    }

    /// The scheduler's timer fired (already acknowledged).
    pub fn timer() {
        crate::sched::on_timer();
    }

    /// ISA interrupt line `line` fired.
    pub fn irq(line: usize) {
        crate::irq::handle(line);
    }

    /// An exception in kernel mode, before it is reported: the in-QEMU tests may claim
    /// one they caused on purpose (`true`: handled, resume).
    pub fn kernel_exception(frame: &mut TrapFrame, cr2: u64) -> bool {
        #[cfg(feature = "ktest")]
        return crate::harness::ktest::on_exception(frame, cr2);
        #[cfg(not(feature = "ktest"))]
        {
            let _ = (frame, cr2);
            false
        }
    }
}
