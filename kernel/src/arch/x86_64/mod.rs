//! The x86_64 port: everything that touches the processor or the platform directly.
//!
//! Blanket preconditions for this module: the code runs at CPL 0 in long mode with paging
//! on, on the one boot processor. Interrupt handlers run with interrupts masked (interrupt
//! gates). Functions that need more say so in their own `# Safety` section.

pub mod acpi;
pub mod apic;
pub mod boot;
pub mod context;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod ioapic;
pub mod paging;
pub mod serial;
pub mod syscall;
pub mod time;

/// Ends the VM through QEMU's `isa-debug-exit` device (tests only; see `abi::qemu_exit`).
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn exit_qemu(code: u32) -> ! {
    let mut port = ::x86_64::instructions::port::Port::<u32>::new(abi::qemu_exit::PORT);
    // SAFETY: isa-debug-exit ends the VM; on a machine without it, port 0xf4 is unused and
    // the write does nothing, after which we halt.
    unsafe { port.write(code) };
    halt_forever()
}

/// Stops this CPU for good: interrupts off, then HLT in a loop (NMIs return to the loop).
pub fn halt_forever() -> ! {
    ::x86_64::instructions::interrupts::disable();
    loop {
        ::x86_64::instructions::hlt();
    }
}

/// Waits for the next interrupt.
pub fn wait_for_interrupt() {
    ::x86_64::instructions::interrupts::enable_and_hlt();
}

/// Continues on a new stack; the old one is abandoned.
///
/// # Safety
/// 1. `top` is the 16-byte-aligned top of a mapped, writable stack that nothing else uses.
pub unsafe fn switch_stack(top: u64, continuation: extern "C" fn() -> !) -> ! {
    // SAFETY: condition 1 gives a valid stack; `continuation` never returns, so nothing
    // ever needs the old stack again.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {continuation}",
            "ud2",
            top = in(reg) top,
            continuation = in(reg) continuation,
            options(noreturn),
        )
    }
}
