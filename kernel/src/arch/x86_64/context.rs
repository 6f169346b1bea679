//! Thread context: kernel-stack switching and per-thread FPU/SSE/AVX state.
//!
//! Every thread has its own kernel stack. A thread that is not running is parked inside
//! [`switch_to`], with its callee-saved registers pushed on its kernel stack and its stack
//! pointer saved in its thread record; its user registers (if it has a user half) are the
//! [`TrapFrame`](super::idt::TrapFrame) at the top of that stack. A new thread's stack is
//! prepared to look parked, with `switch_to`'s return address pointing at its first code.
//!
//! FPU state is switched eagerly with XSAVE/XRSTOR (FXSAVE/FXRSTOR without XSAVE). The
//! kernel itself is built soft-float and never touches these registers, so they only ever
//! hold user state. Eager, not lazy: lazy switching needs #NM traps and leaks timing about
//! other threads' FPU use; at 832 bytes of state (x87+SSE+AVX), 2,688 with AVX-512, the
//! cost is small. Each thread's image lives in one frame; `kcore::xsave` enables only
//! components whose image fits it.

use core::arch::naked_asm;
use core::sync::atomic::{AtomicBool, Ordering};

static USE_XSAVE: AtomicBool = AtomicBool::new(false);

pub fn init(xsave: bool) {
    USE_XSAVE.store(xsave, Ordering::Relaxed);
}

/// Parks the current thread (saving its stack pointer to `*save`) and resumes the thread
/// parked at `resume`.
///
/// # Safety
/// 1. `save` is valid for a write and stays valid until that thread is resumed.
/// 2. `resume` was saved by `switch_to` or built by [`prepare_stack`], on a stack that is
///    still mapped and not in use by anything else.
#[unsafe(naked)]
pub unsafe extern "C" fn switch_to(save: *mut u64, resume: u64) {
    naked_asm!(
        "push rbx", "push rbp", "push r12", "push r13", "push r14", "push r15",
        "mov [rdi], rsp",
        "mov rsp, rsi",
        "pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
        "ret",
    )
}

/// Parks the current thread so that [`switch_to`] resumes it in `trap_return` with the
/// stack pointer at `own_frame`, and enters user mode through the trap frame at `target_frame`
/// by way of `trap_return` (`iretq`). The IPC fast path's switch.
///
/// # Safety
/// 1. `save` is valid for a write and stays valid until that thread is resumed.
/// 2. The seven words below `own_frame` are mapped, writable and no longer needed (they
///    belong to the call chain this abandons), and `own_frame` is the thread's complete
///    trap frame, ready to return to.
/// 3. `target_frame` is a complete trap frame of a user thread on its own kernel stack,
///    that stack is the one interrupts and syscalls now use, and its address space is
///    loaded.
/// 4. `trap_return` is the address of `idt::trap_return`.
#[unsafe(naked)]
pub unsafe extern "C" fn switch_to_user(save: *mut u64, own_frame: u64, target_frame: u64, trap_return: u64) -> ! {
    naked_asm!(
        // The parked layout `prepare_stack` makes: r15 r14 r13 r12 rbp rbx (zero), `ret` to
        // the resume address.
        "lea rax, [rsi - 56]",
        "xor r8d, r8d",
        "mov [rax], r8", "mov [rax + 8], r8", "mov [rax + 16], r8",
        "mov [rax + 24], r8", "mov [rax + 32], r8", "mov [rax + 40], r8",
        "mov [rax + 48], rcx",
        "mov [rdi], rax",
        "mov rsp, rdx",
        "jmp rcx",
    )
}

/// Lays out a fresh kernel stack so that [`switch_to`] "returns" to `start`, with the
/// stack pointer at `frame_top` (where a new user thread keeps its trap frame). Returns the
/// value to pass to `switch_to` as `resume`.
///
/// # Safety
/// 1. `[frame_top - 7 words, frame_top)` is mapped, writable and unused.
pub unsafe fn prepare_stack(frame_top: u64, start: u64) -> u64 {
    let words = [0u64, 0, 0, 0, 0, 0, start]; // r15 r14 r13 r12 rbp rbx, return address
    let base = frame_top - (words.len() as u64) * 8;
    for (index, word) in words.iter().enumerate() {
        // SAFETY: condition 1: the seven words below `frame_top` are ours to write.
        unsafe { core::ptr::write((base + index as u64 * 8) as *mut u64, *word) };
    }
    base
}

/// Saves the FPU/vector state into `area` (64-byte aligned, large enough).
///
/// # Safety
/// 1. `area` points to a writable, 64-byte-aligned region of at least the XSAVE size.
pub unsafe fn save_fpu(area: *mut u8) {
    if USE_XSAVE.load(Ordering::Relaxed) {
        // SAFETY: condition 1; OSXSAVE is on whenever USE_XSAVE is set.
        unsafe { core::arch::asm!("xsave64 [{}]", in(reg) area, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack)) };
    } else {
        // SAFETY: condition 1 (512 bytes, 16-byte aligned suffice for FXSAVE).
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) area, options(nostack)) };
    }
}

/// Loads the FPU/vector state from `area`.
///
/// # Safety
/// 1. `area` holds state saved by [`save_fpu`] or made by [`init_fpu_area`].
pub unsafe fn restore_fpu(area: *const u8) {
    if USE_XSAVE.load(Ordering::Relaxed) {
        // SAFETY: condition 1: a valid XSAVE image (standard form, reserved bits zero).
        unsafe { core::arch::asm!("xrstor64 [{}]", in(reg) area, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack)) };
    } else {
        // SAFETY: condition 1: a valid FXSAVE image.
        unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) area, options(nostack)) };
    }
}

/// Writes the state a new thread starts with into a zeroed area: default x87 control word
/// and MXCSR (all exceptions masked), every XSAVE component in its initial state.
///
/// # Safety
/// 1. `area` points to a zeroed, writable region of at least 512 bytes.
pub unsafe fn init_fpu_area(area: *mut u8) {
    // SAFETY: condition 1: offsets 0 (FCW) and 24 (MXCSR) lie in the legacy region.
    unsafe { core::ptr::write_unaligned(area as *mut u16, 0x037f) };
    // SAFETY: as above.
    unsafe { core::ptr::write_unaligned(area.wrapping_add(24) as *mut u32, 0x1f80) };
}
