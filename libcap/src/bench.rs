//! Benchmark support: the timestamp counter, and IPC with an explicit message-info word.
//!
//! Used by `userland/bench-server` and `userland/bench-client` (`cargo xtask bench`).
//!
//! - [`rdtsc`] and [`rdtscp`]: the two reads of the time-stamp counter the sel4bench method
//!   needs (the sender reads `rdtsc` right before its syscall, the receiver `rdtscp` right
//!   after its own returns). Under QEMU TCG with `-icount shift=0` the counter advances one
//!   tick per executed guest instruction, so differences are instruction counts.
//! - [`null_syscall`]: a syscall number the kernel refuses at once.
//! - [`call_dry`], [`null_syscall_dry`]: the same sequences with the syscall replaced by a
//!   one-instruction no-op, whose cost every figure has subtracted (the sel4bench method).
//! - [`call`], [`recv`], [`reply_recv`]: the IPC calls with the info word and the eight
//!   register words as they are, with no [`crate::sys::Message`] around them. A benchmark
//!   needs two things `Message` does not offer yet: an info word whose length exceeds the
//!   register words (the rest is copied between the IPC buffers, whatever they hold) or that
//!   transfers caps (named in the IPC buffers' cap areas); and the cheapest possible user
//!   side, so the figures are the kernel's path.
//!
//! This module is its own file, with its two `unsafe` blocks, because libcap's raw layer was
//! being edited by another change when it was written; the two `asm!` reads could move into
//! `raw` (next to `cycle_counter`) without changing a caller.

use core::arch::asm;

use abi::args::{self, SyscallArgs};
use abi::{CapSlot, ErrorCode, MessageInfo};

use crate::raw::{self, Registers};

/// `rdtsc`: the time-stamp counter, read where the instruction stands in the program.
///
/// The `asm!` block is volatile (not `pure`), so the compiler keeps it in program order
/// relative to the syscalls around it. `rdtsc` itself does not wait for earlier
/// instructions to finish; under TCG every instruction completes in order anyway.
#[inline(always)]
pub fn rdtsc() -> u64 {
    let (low, high): (u64, u64);
    // SAFETY: RDTSC reads the counter into edx:eax and touches nothing else; the kernel
    // leaves CR4.TSD clear, so it is allowed in ring 3 (were it set, the result would be
    // #GP: a fault, not memory unsafety).
    unsafe { asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags)) };
    (high << 32) | low
}

/// `rdtscp`: the time-stamp counter after every earlier instruction has executed.
#[inline(always)]
pub fn rdtscp() -> u64 {
    let (low, high): (u64, u64);
    // SAFETY: RDTSCP reads the counter into edx:eax and IA32_TSC_AUX into ecx (declared
    // clobbered), touching no memory; allowed in ring 3 with CR4.TSD clear, as for rdtsc.
    unsafe {
        asm!("rdtscp", out("eax") low, out("edx") high, out("ecx") _, options(nomem, nostack, preserves_flags))
    };
    (high << 32) | low
}

/// A message as the registers carry it: the info word and the eight register words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawMessage {
    /// The message-info word (length may exceed the register words; caps may be non-zero).
    pub info: MessageInfo,
    /// `rdx r10 r8 r9 r12 r13 r14 r15`.
    pub words: [u64; abi::msg::REGISTER_WORDS],
}

/// What a receive returns: the sender's badge and the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawReceived {
    /// The badge of the cap the message came through (0 for replies).
    pub badge: u64,
    /// The message as delivered (the kernel's info word: length and caps as transferred).
    pub message: RawMessage,
}

/// The registers of `args` (the endpoint and info word) with `message`'s words.
#[inline(always)]
fn load<A: SyscallArgs>(args: &A, message: &RawMessage) -> Registers {
    let [rdi, rsi, ..] = args.encode();
    let [rdx, r10, r8, r9, r12, r13, r14, r15] = message.words;
    Registers { rdi, rsi, rdx, r10, r8, r9, r12, r13, r14, r15 }
}

fn store(rax: u64, regs: &Registers) -> Result<RawReceived, ErrorCode> {
    if rax != abi::syscall::SUCCESS {
        // An unknown error number would be an ABI disagreement; report it as the nearest.
        return Err(u32::try_from(rax).ok().and_then(|n| ErrorCode::try_from(n).ok()).unwrap_or(ErrorCode::InvalidArgument));
    }
    let info = MessageInfo::decode(regs.rsi)?;
    let words = [regs.rdx, regs.r10, regs.r8, regs.r9, regs.r12, regs.r13, regs.r14, regs.r15];
    Ok(RawReceived { badge: regs.rdi, message: RawMessage { info, words } })
}

/// `Call` on the endpoint in `endpoint` with `message`; returns the reply.
#[inline(always)]
pub fn call(endpoint: CapSlot, message: &RawMessage) -> Result<RawReceived, ErrorCode> {
    let args = args::Call { endpoint: endpoint.into(), info: message.info.into() };
    let mut regs = load(&args, message);
    let rax = raw::syscall(args::Call::SYSNO, &mut regs);
    store(rax, &regs)
}

/// [`call`] with the syscall replaced by a no-op (`raw::syscall_dry`): its overhead.
#[inline(always)]
pub fn call_dry(endpoint: CapSlot, message: &RawMessage) -> Result<RawReceived, ErrorCode> {
    let args = args::Call { endpoint: endpoint.into(), info: message.info.into() };
    let mut regs = load(&args, message);
    let rax = raw::syscall_dry(args::Call::SYSNO.as_u64(), &mut regs);
    store(rax, &regs)
}

/// No syscall has this number: the kernel answers `InvalidSyscall` at once, which makes it
/// the "null syscall" (a round trip into the kernel and back, nothing done).
pub const NULL_SYSCALL: u64 = u64::MAX;

/// The null syscall ([`NULL_SYSCALL`]); returns the kernel's `rax`.
#[inline(always)]
pub fn null_syscall() -> u64 {
    raw::syscall_number(NULL_SYSCALL, &mut Registers::default())
}

/// [`null_syscall`] with the syscall replaced by a no-op: its overhead.
#[inline(always)]
pub fn null_syscall_dry() -> u64 {
    raw::syscall_dry(NULL_SYSCALL, &mut Registers::default())
}

/// `Recv` on the endpoint in `endpoint`.
#[inline(always)]
pub fn recv(endpoint: CapSlot) -> Result<RawReceived, ErrorCode> {
    let (rax, regs) = raw::syscall_args(&args::Recv { endpoint: endpoint.into(), timeout: 0 });
    store(rax, &regs)
}

/// `ReplyRecv`: answer the pending call with `message`, then receive on `endpoint`.
#[inline(always)]
pub fn reply_recv(endpoint: CapSlot, message: &RawMessage) -> Result<RawReceived, ErrorCode> {
    let args = args::ReplyRecv { endpoint: endpoint.into(), info: message.info.into() };
    let mut regs = load(&args, message);
    let rax = raw::syscall(args::ReplyRecv::SYSNO, &mut regs);
    store(rax, &regs)
}

/// Executes exactly `2 * iterations` instructions (`dec`, `jnz`; `iterations` at least 1):
/// the calibration loop that checks one TSC tick per instruction under `-icount shift=0`.
#[inline(never)]
pub fn counted_loop(iterations: u64) {
    let iterations = iterations.max(1);
    // SAFETY: a register-only loop: it decrements its own operand to zero and touches no
    // memory, stack or other register (flags are declared clobbered by default).
    unsafe { asm!("2:", "dec {n}", "jnz 2b", n = inout(reg) iterations => _, options(nomem, nostack)) };
}
