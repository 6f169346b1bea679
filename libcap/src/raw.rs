//! The raw layer: the only `unsafe` code in libcap, and so in any user program.
//!
//! Everything a program needs that Rust cannot express safely is here, each item small
//! enough to audit on its own:
//!
//! - [`syscall`] and [`thread_exit`]: the two `syscall` instructions, as safe functions.
//! - `_start`: the ELF entry point (a naked function: align the stack, call [`crate::rt`]).
//! - `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`: the C memory routines the compiler
//!   emits calls to. On `x86_64-unknown-linux-gnu` they normally come from libc, and the
//!   precompiled `compiler_builtins` for this target leaves them out (its `mem` feature is
//!   only on for libc-less targets and cannot be switched on without `-Zbuild-std`), so the
//!   link fails without them.
//! - `rust_eh_personality`: the precompiled `core` for this target is built with unwinding
//!   and names the personality routine in its unwind tables; with `panic = "abort"` it is
//!   never called, but the symbol must exist.
//! - [`take_heap_memory`]: hands out the static heap region exactly once.
//! - The program's `main`, as defined by [`crate::entry!`], declared here.
//!
//! # Why `syscall` is a safe function
//!
//! The asm block declares every register the ABI ([`abi::syscall`]) lets the kernel read or
//! write (`rax`, `rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`, `r12`-`r15`) as in/out, and `rcx`
//! and `r11` (overwritten by `SYSCALL`/`SYSRET`) as clobbered; the kernel preserves every
//! other register, including `rsp`, and uses no user stack. The kernel *reads* user memory
//! only where an argument points (`ConsoleWrite`); a read through a bad pointer is an
//! error code, not undefined behaviour in this process. The kernel *writes* user memory
//! only into the thread's IPC buffer, which libcap never holds a Rust reference to across a
//! syscall. So no register value passed here can break this program's memory safety, and the
//! function needs no `unsafe` contract. If the kernel ever gains a syscall that writes
//! through a pointer argument, that syscall gets its own `unsafe` wrapper here instead.

use core::arch::{asm, naked_asm};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

use abi::Sysno;

/// The registers of one syscall, other than `rax` (number in, result out).
///
/// On entry they hold the arguments and message words; on return, whatever the kernel put
/// there (see [`abi::syscall`] for which register means what per syscall).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub r10: u64,
    pub r8: u64,
    pub r9: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// Performs syscall `sysno` with `regs`, updates `regs` with the kernel's answer and
/// returns `rax` (0 on success, else an [`abi::ErrorCode`] number).
#[inline]
pub fn syscall(sysno: Sysno, regs: &mut Registers) -> u64 {
    let rax: u64;
    // SAFETY: see the module docs: all registers the kernel may change are operands or
    // clobbers, the kernel uses no user stack (`nostack`), and it writes no memory this
    // program holds a reference to. It may read memory, so the block is not `readonly`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") sysno.as_u64() => rax,
            inout("rdi") regs.rdi,
            inout("rsi") regs.rsi,
            inout("rdx") regs.rdx,
            inout("r10") regs.r10,
            inout("r8") regs.r8,
            inout("r9") regs.r9,
            inout("r12") regs.r12,
            inout("r13") regs.r13,
            inout("r14") regs.r14,
            inout("r15") regs.r15,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    rax
}

/// `ThreadExit` with `code`. Never returns: should the kernel return anyway, `ud2` faults
/// the thread.
pub fn thread_exit(code: u64) -> ! {
    // SAFETY: ThreadExit reads only `rax` and `rdi`; control does not come back (and if it
    // did, `ud2` raises #UD before any Rust code runs with a wrong assumption).
    unsafe {
        asm!(
            "syscall",
            "ud2",
            in("rax") Sysno::ThreadExit.as_u64(),
            in("rdi") code,
            options(noreturn, nostack),
        );
    }
}

/// The ELF entry point.
///
/// Entry state (what the kernel provides): `rsp` points into a mapped, writable stack; `rdi`
/// is reserved for a future start-info pointer (the kernel passes 0 today). `_start` clears
/// `rbp` (so frame walkers stop here), aligns `rsp` down to 16 bytes (so the `call` below
/// leaves `rsp + 8` 16-byte aligned in [`crate::rt::start`], as the SysV ABI requires) and
/// calls [`crate::rt::start`] with `rdi` untouched. `rt::start` never returns; `ud2` is
/// there in case it ever does.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    naked_asm!(
        "xor ebp, ebp",
        "and rsp, -16",
        "call {start}",
        "ud2",
        start = sym crate::rt::start,
    )
}

unsafe extern "Rust" {
    /// The program's `main`, defined by [`crate::entry!`] in the program crate, returning
    /// its exit code.
    ///
    /// Declared `safe`: the macro defines it as a plain safe Rust function with exactly this
    /// signature. A program that does not use the macro fails to link (undefined symbol), and
    /// one that uses it twice fails to link (duplicate symbol), so it is never wrong at run
    /// time.
    safe fn __libcap_main() -> u64;
}

/// Calls the program's `main` (see [`crate::entry!`]) and returns its exit code.
pub fn program_main() -> u64 {
    __libcap_main()
}

/// Size of the interim heap: a static region in the program's `.bss`.
pub const HEAP_SIZE: usize = 256 * 1024;

static HEAP_TAKEN: AtomicBool = AtomicBool::new(false);
static mut HEAP_MEMORY: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];

/// The heap region, the first time it is asked for; `None` ever after.
pub fn take_heap_memory() -> Option<&'static mut [MaybeUninit<u8>]> {
    if HEAP_TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    let region = &raw mut HEAP_MEMORY;
    // SAFETY: the flag above lets exactly one caller get here, and nothing else in the
    // program names HEAP_MEMORY, so this is the only reference to it there will ever be.
    Some(unsafe { &mut *region })
}

/// The personality routine named by `core`'s unwind tables. With `panic = "abort"` nothing
/// unwinds, so nothing calls it.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

// The memory routines. They are written with `rep movsb`/`rep stosb` and plain loops that
// LLVM does not turn back into calls to themselves (checked with objdump when they were
// written: none of them calls memcpy, memset, memcmp or bcmp). `rep movsb` is fast on every
// CPU with ERMS (Ivy Bridge and later) and correct on all. The direction flag is clear on
// entry to every function (SysV ABI), so the forward forms need no `cld`.

/// C `memcpy`.
///
/// # Safety
/// 1. `src` is valid for reads and `dest` for writes of `n` bytes.
/// 2. The two ranges do not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: conditions 1 and 2 are the caller's; `rep movsb` copies exactly `n` bytes
    // forward and touches no other memory or register than those declared.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
    }
    dest
}

/// C `memmove`: as `memcpy`, but the ranges may overlap.
///
/// # Safety
/// 1. `src` is valid for reads and `dest` for writes of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    let (d, s) = (dest as usize, src as usize);
    if d <= s || d >= s.wrapping_add(n) {
        // Forward copy is safe: every byte is read before the copy can overwrite it.
        // SAFETY: condition 1 is the caller's; a forward `rep movsb` reads each source
        // byte before writing any byte at or past it when `dest <= src`, and the ranges
        // are disjoint otherwise.
        unsafe {
            asm!(
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") dest => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags),
            );
        }
    } else if n > 0 {
        // `dest` is inside the source range: copy backwards from the last byte.
        let last = n - 1;
        // SAFETY: condition 1 is the caller's; with the direction flag set `rep movsb`
        // walks down from `dest + n - 1`/`src + n - 1`, which are in bounds because n > 0,
        // and reads each byte before the copy can overwrite it. `cld` restores the flag
        // the ABI requires to be clear; the flags are declared clobbered.
        unsafe {
            asm!(
                "std",
                "rep movsb",
                "cld",
                inout("rcx") n => _,
                inout("rdi") dest.wrapping_add(last) => _,
                inout("rsi") src.wrapping_add(last) => _,
                options(nostack),
            );
        }
    }
    dest
}

/// C `memset`: fills `n` bytes at `dest` with the low byte of `c`.
///
/// # Safety
/// 1. `dest` is valid for writes of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: condition 1 is the caller's; `rep stosb` writes exactly `n` bytes forward.
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            in("al") c as u8,
            options(nostack, preserves_flags),
        );
    }
    dest
}

/// C `memcmp`: compares `n` bytes as unsigned, returning <0, 0 or >0.
///
/// # Safety
/// 1. `a` and `b` are valid for reads of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        let (pa, pb) = (a.wrapping_add(i), b.wrapping_add(i));
        // SAFETY: i < n, so a + i is within the `n` readable bytes of condition 1.
        let x = unsafe { pa.read() };
        // SAFETY: as above, for b.
        let y = unsafe { pb.read() };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// C `bcmp`: zero if the `n` bytes are equal, non-zero otherwise.
///
/// # Safety
/// 1. `a` and `b` are valid for reads of `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same condition as memcmp's, passed on unchanged.
    unsafe { memcmp(a, b, n) }
}
