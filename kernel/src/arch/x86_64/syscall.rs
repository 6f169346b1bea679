//! The SYSCALL entry: from ring 3 into the kernel's syscall dispatcher and back.
//!
//! `syscall_entry` saves the user's registers as a [`TrapFrame`] at the top of the current
//! thread's kernel stack (the same layout traps use), calls `crate::syscall::dispatch` and
//! leaves through the common `iretq` path. IF, TF, DF and AC are masked on entry, so the
//! kernel runs with interrupts off and never with user-controlled flags.
//!
//! Single CPU: the user stack pointer is parked in, and the kernel stack pointer read from,
//! two statics reached RIP-relative. SMP will move them to per-CPU data behind `swapgs`.

use core::arch::naked_asm;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::VirtAddr;
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;

use super::gdt;
use super::idt::{TrapFrame, trap_return};

/// The kernel stack top of the running thread: where the entry builds its frame.
#[unsafe(no_mangle)]
static SYSCALL_KERNEL_RSP: AtomicU64 = AtomicU64::new(0);
#[unsafe(no_mangle)]
static SYSCALL_USER_RSP: AtomicU64 = AtomicU64::new(0);

/// The pseudo-vector that marks a frame built by a syscall.
pub const SYSCALL_VECTOR: u64 = 0x100;

pub fn set_kernel_stack(top: u64) {
    SYSCALL_KERNEL_RSP.store(top, Ordering::Relaxed);
}

#[unsafe(naked)]
extern "C" fn syscall_entry() {
    naked_asm!(
        "mov [rip + SYSCALL_USER_RSP], rsp",
        "mov rsp, [rip + SYSCALL_KERNEL_RSP]",
        "push {user_ss}",
        "push qword ptr [rip + SYSCALL_USER_RSP]",
        "push r11",
        "push {user_cs}",
        "push rcx",
        "push 0",
        "push {vector}",
        "push r15", "push r14", "push r13", "push r12", "push r11", "push r10", "push r9", "push r8",
        "push rbp", "push rdi", "push rsi", "push rdx", "push rcx", "push rbx", "push rax",
        "mov rdi, rsp",
        "call {dispatch}",
        "jmp {trap_return}",
        user_ss = const gdt::USER_DATA_SELECTOR,
        user_cs = const gdt::USER_CODE_SELECTOR,
        vector = const SYSCALL_VECTOR,
        dispatch = sym dispatch_trampoline,
        trap_return = sym trap_return,
    )
}

extern "C" fn dispatch_trampoline(frame: &mut TrapFrame) {
    crate::arch::hooks::syscall(frame);
}

pub fn init() -> Result<(), &'static str> {
    // SAFETY: the selectors in STAR are the GDT's (kernel code/data at 0x08/0x10, user
    // data/code at 0x18/0x20), LSTAR points at the entry stub above, and the mask keeps
    // interrupts, traps, direction and alignment checks off in the kernel. SCE only makes
    // SYSCALL available; nothing reaches ring 3 before threads exist.
    unsafe {
        Efer::update(|flags| flags.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
    }
    let Some(selectors) = gdt::selectors() else {
        return Err("the GDT is not set up (gdt::init must run first)");
    };
    Star::write(selectors.user_code, selectors.user_data, selectors.kernel_code, selectors.kernel_data)
        .map_err(|_| "the GDT's selectors are not in the order SYSRET expects")?;
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    SFMask::write(
        RFlags::INTERRUPT_FLAG
            | RFlags::TRAP_FLAG
            | RFlags::DIRECTION_FLAG
            | RFlags::ALIGNMENT_CHECK
            | RFlags::NESTED_TASK
            | RFlags::IOPL_HIGH
            | RFlags::IOPL_LOW,
    );
    Ok(())
}

/// RFLAGS a user thread may hold: the arithmetic flags and direction; interrupts on.
pub fn sanitize_user_flags(rflags: u64) -> u64 {
    const USER_CHANGEABLE: u64 = 0b1100_1101_0101; // CF PF AF ZF SF DF OF
    (rflags & USER_CHANGEABLE) | RFlags::INTERRUPT_FLAG.bits() | 0x2
}
