//! The few lines that execute `rdtsc`, `rdtscp` and `syscall`: everything measured goes through here.
//!
//! Each timed sequence is one `asm!` block (or a chain of blocks without `nomem`, which the
//! compiler treats as memory barriers and so cannot reorder), so what is counted is exactly
//! the instructions written here plus the kernel's path. Under TCG with `-icount shift=0`
//! every guest instruction advances the TSC by one, including `rdtsc` itself.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicU64};

/// Linux x86_64 system call numbers used by the benchmarks.
pub mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const GETPPID: usize = 110;
    pub const FUTEX: usize = 202;
}

/// `FUTEX_WAIT` and `FUTEX_WAKE` without `FUTEX_PRIVATE_FLAG`: the word lives in a
/// `MAP_SHARED` mapping used by two processes, so the shared (inode-keyed) path is required.
pub const FUTEX_WAIT: usize = 0;
pub const FUTEX_WAKE: usize = 1;

/// Reads the time-stamp counter (`rdtsc`).
#[inline(always)]
pub fn rdtsc() -> u64 {
    let value: u64;
    // SAFETY: `rdtsc` only reads the TSC into edx:eax; the kernel leaves CR4.TSD clear, so it
    // is allowed at CPL3. No `nomem`, so the compiler keeps memory accesses on their side of it.
    unsafe {
        asm!("rdtsc", "shl rdx, 32", "or rax, rdx", out("rax") value, out("rdx") _, options(nostack));
    }
    value
}

/// Reads the time-stamp counter with `rdtscp`, which waits for earlier instructions.
#[inline(always)]
pub fn rdtscp() -> u64 {
    let value: u64;
    // SAFETY: `rdtscp` only reads the TSC into edx:eax and IA32_TSC_AUX into ecx.
    unsafe {
        asm!("rdtscp", "shl rdx, 32", "or rax, rdx", out("rax") value, out("rdx") _, out("rcx") _, options(nostack));
    }
    value
}

/// `rdtsc`, a counted loop of exactly `2 * iterations + 1` instructions (`mov`, then
/// `dec`/`jnz` pairs), `rdtscp`; returns the TSC delta. `iterations` must be at least 1.
#[inline(never)]
pub fn timed_loop(iterations: u64) -> u64 {
    assert!(iterations >= 1, "a zero count would loop 2^64 times");
    let delta: u64;
    // SAFETY: only registers are touched; rcx counts down from `iterations` >= 1 to 0.
    unsafe {
        asm!(
            "rdtsc", "shl rdx, 32", "or rax, rdx", "mov r8, rax",
            "mov rcx, {n}",
            "2:", "dec rcx", "jnz 2b",
            "rdtscp", "shl rdx, 32", "or rax, rdx", "sub rax, r8",
            n = in(reg) iterations,
            out("rax") delta, out("rdx") _, out("rcx") _, out("r8") _,
            options(nostack, nomem),
        );
    }
    delta
}

/// `rdtsc`, `syscall` (getppid), `rdtscp`; returns the TSC delta.
#[inline(never)]
pub fn timed_null_syscall() -> u64 {
    let delta: u64;
    // SAFETY: getppid takes no arguments, cannot fail and touches no user memory; `syscall`
    // clobbers rcx and r11, which are declared.
    unsafe {
        asm!(
            "rdtsc", "shl rdx, 32", "or rax, rdx", "mov r8, rax",
            "mov eax, {nr}",
            "syscall",
            "rdtscp", "shl rdx, 32", "or rax, rdx", "sub rax, r8",
            nr = const nr::GETPPID,
            out("rax") delta, out("rdx") _, out("rcx") _, out("r8") _, out("r11") _,
            options(nostack),
        );
    }
    delta
}

/// The same sequence as [`timed_null_syscall`] with `syscall` replaced by `nop`: the
/// overhead subtracted from it.
#[inline(never)]
pub fn timed_null_nop() -> u64 {
    let delta: u64;
    // SAFETY: only registers are touched.
    unsafe {
        asm!(
            "rdtsc", "shl rdx, 32", "or rax, rdx", "mov r8, rax",
            "mov eax, {nr}",
            "nop",
            "rdtscp", "shl rdx, 32", "or rax, rdx", "sub rax, r8",
            nr = const nr::GETPPID,
            out("rax") delta, out("rdx") _, out("rcx") _, out("r8") _, out("r11") _,
            options(nostack, nomem),
        );
    }
    delta
}

/// Performs a raw system call with up to four arguments and returns rax (negative errno on
/// failure).
///
/// # Safety
///
/// 1. The call `nr` with these arguments must not write memory the caller does not own, nor
///    otherwise break Rust's assumptions (no `clone`, `exit`, `munmap` of live memory...).
#[inline(always)]
pub unsafe fn syscall4(nr: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> isize {
    let ret: isize;
    // SAFETY: condition 1 is the caller's; rcx and r11 are clobbered by `syscall` and declared.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Writes one byte to `fd` with a raw `write`; returns the result (1 on success).
#[inline(always)]
pub fn write_byte(fd: i32) -> isize {
    let byte = 0x2au8;
    // SAFETY: write reads one byte from `byte`, which lives for the call.
    unsafe { syscall4(nr::WRITE, fd as usize, (&raw const byte) as usize, 1, 0) }
}

/// Reads one byte from `fd` with a raw `read`; returns the result (1 on success).
#[inline(always)]
pub fn read_byte(fd: i32) -> isize {
    let mut byte = 0u8;
    // SAFETY: read writes at most one byte into `byte`, which we own for the call.
    unsafe { syscall4(nr::READ, fd as usize, (&raw mut byte) as usize, 1, 0) }
}

/// `FUTEX_WAIT` on `word` while it holds `expected` (no timeout).
#[inline(always)]
pub fn futex_wait(word: &AtomicU32, expected: u32) -> isize {
    // SAFETY: FUTEX_WAIT only reads the aligned word, which `word` keeps alive.
    unsafe {
        syscall4(
            nr::FUTEX,
            word.as_ptr() as usize,
            FUTEX_WAIT,
            expected as usize,
            0,
        )
    }
}

/// `FUTEX_WAKE` of at most one waiter on `word`.
#[inline(always)]
pub fn futex_wake(word: &AtomicU32) -> isize {
    // SAFETY: FUTEX_WAKE touches no user memory beyond looking up the word's key.
    unsafe { syscall4(nr::FUTEX, word.as_ptr() as usize, FUTEX_WAKE, 1, 0) }
}

/// Samples the one-way benchmarks can record in shared memory (warm-up included).
pub const MAX_SAMPLES: usize = 1 << 16;

/// Memory shared by the two processes of a ping-pong (one `MAP_SHARED` anonymous mapping).
///
/// # Invariants
///
/// Every field is an atomic, for which all-zero bytes are a valid value, so the zero-filled
/// mapping is a valid `Shared` without initialisation.
#[repr(C)]
pub struct Shared {
    /// Futex word, parent to child: the round number the parent has sent.
    pub ping: AtomicU32,
    /// Futex word, child to parent: the round number the child has answered.
    pub pong: AtomicU32,
    /// TSC read by the sender right before its send system call.
    pub sent_at: AtomicU64,
    /// One-way deltas measured by the child (receiver's `rdtscp` minus `sent_at`).
    pub one_way: [AtomicU64; MAX_SAMPLES],
}

/// Maps a fresh zeroed `Shared` that survives `fork` as shared memory. It is never unmapped.
pub fn shared() -> &'static Shared {
    let size = core::mem::size_of::<Shared>();
    // SAFETY: an anonymous mapping at a kernel-chosen address touches no existing memory.
    let ptr = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert!(ptr != libc::MAP_FAILED, "mmap of the shared page failed");
    // SAFETY: the mapping is page-aligned, `size` bytes long, zero-filled (a valid `Shared`,
    // see its invariants) and never unmapped, so a shared `'static` reference is sound.
    unsafe { &*ptr.cast::<Shared>() }
}

/// A pipe: (read end, write end).
pub fn pipe() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe writes two ints into `fds`.
    let ret = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(ret, 0, "pipe failed");
    (fds[0], fds[1])
}

/// Forks; the child runs `child` and exits with `_exit(0)`, never returning. Returns the
/// child's pid in the parent.
pub fn fork_with(child: impl FnOnce()) -> i32 {
    // SAFETY: this program is single-threaded when it forks, so the child inherits no lock
    // held by another thread; the child only touches memory and raw syscalls, then `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child();
        // SAFETY: `_exit` ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(0) }
    }
    pid
}

/// Waits for the child `pid` to exit; returns whether it exited with status 0.
pub fn wait(pid: i32) -> bool {
    let mut status = 0i32;
    // SAFETY: waitpid writes the status into `status`.
    let ret = unsafe { libc::waitpid(pid, &raw mut status, 0) };
    ret == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// Closes a file descriptor.
pub fn close(fd: i32) {
    // SAFETY: closing an fd this program owns.
    unsafe { libc::close(fd) };
}
