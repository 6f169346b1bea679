//! libcap: everything a user program needs to run on Democratizing AI OS.
//!
//! A program is a `#![no_std]`, `#![no_main]`, `#![forbid(unsafe_code)]` crate under
//! `userland/` that depends on libcap and names its `main` with [`entry!`]:
//!
//! ```rust,no_run
//! // src/main.rs also starts with #![no_std], #![no_main] and #![forbid(unsafe_code)]; this
//! // copy leaves them out so that `cargo xtask test` can compile it on the host.
//! libcap::entry!(main);
//!
//! fn main() -> Result<(), libcap::ErrorCode> {
//!     libcap::println!("hello from user space");
//!     let info = libcap::sys::cap_identify(libcap::slots::CONSOLE)?;
//!     libcap::println!("my console cap: {info:?}");
//!     Ok(())
//! }
//! ```
//!
//! The examples in these docs are compiled by `cargo xtask test` (on the host, without the
//! `runtime` feature); the ones that make syscalls are `no_run`, since a `syscall`
//! instruction on the host would reach Linux, not this kernel. They run for real in the
//! programs under `userland/`.
//!
//! `cargo xtask run` builds it (see "Build model" below) and packs it into the initrd as
//! `bin/<name>`.
//!
//! # What is here
//!
//! - [`entry!`] and [`rt`]: the path from the ELF entry point to `main` and out again.
//! - [`sys`]: one typed, safe function per syscall ([`sys::console_write`],
//!   [`sys::thread_exit`], the cap operations, IPC, notifications, yield).
//! - [`interface!`] and [`ipc`]: a service's interface declared once (client stub, server
//!   trait and loop generated; `userland/echo-api` is the example), typed messages up to
//!   [`ipc::MAX_BYTES`] through registers and the IPC buffer, [`ipc::CallError`];
//!   [`heapless`] for bounded strings and vectors in messages.
//! - [`console`], [`print!`], [`println!`]: output to the console cap.
//! - [`logger`]: a `log` backend over the console; [`log`] is re-exported.
//! - [`process`]: building processes: create objects, map frames, give caps, configure,
//!   start and kill threads; [`loader`]: load a static-PIE ELF into a new address space.
//! - [`heap`]: `alloc` works (`extern crate alloc;`): a 256 KiB static heap, which grows
//!   through the memory server when the program has a `heap` in the manifest.
//! - [`memory`]: the memory server's client (regions, shared frames, stats).
//! - [`window`]: reading and writing memory mapped into the process's window, and
//!   [`sys::call_with_caps`] / [`sys::reply_recv_with_caps`] for caps in messages (through
//!   the IPC buffer, which both loaders place at the entry stack top + 4 KiB).
//! - [`slots`]: the initial authority convention, which slots hold what at start.
//! - The ABI crate, re-exported as [`abi`] and its main types at the root.
//! - A panic handler: prints `panic: <message>` to the console cap and exits with
//!   [`rt::PANIC_EXIT_CODE`].
//!
//! # Trust
//!
//! All of libcap's `unsafe` is in one module, `raw` (private; its doc comment is the audit
//! guide): the two `syscall` instructions, `_start`, the C memory routines the compiler
//! calls, and the heap region. The rest of libcap is safe code, and `#![deny(unsafe_code)]`
//! at this root keeps it so. Programs `#![forbid(unsafe_code)]`.
//!
//! # Build model, and why
//!
//! User programs are built for the **`x86_64-unknown-linux-gnu`** target, not
//! `x86_64-unknown-none`, and linked **without libc** as **static position-independent
//! executables** (ELF `ET_DYN`, no `PT_INTERP`, no `DT_NEEDED`):
//!
//! - *Hardware floating point.* `x86_64-unknown-none` is a soft-float target (it must not
//!   touch SSE, because kernels run without saving it). User programs do math (the
//!   AI engine), so they want SSE2 floats: faster, and bit-exact with what the same code
//!   computes on a Linux host. Stable Rust has no other hard-float bare target without a
//!   custom target JSON or `-Zbuild-std`, both ruled out.
//! - *No libc.* `#![no_std]` + `#![no_main]`: libcap provides `_start`, `memcpy` and
//!   friends, the panic handler and the allocator. The precompiled `core`/`alloc` for this
//!   target are used as they are.
//! - *Static PIE, for ASLR.* The kernel can load each program at any page-aligned base.
//!   The only relocations are `R_X86_64_RELATIVE` ("write base + addend here"), which the
//!   **kernel's loader applies** before the program runs (`kcore::elf` validates them):
//!   glibc's self-relocating `rcrt1.o` is not linked, and doing it in `_start` would need
//!   `.data.rel.ro`/GOT writable at run time. After relocation the loader may make the
//!   `PT_GNU_RELRO` range read-only.
//!
//! The exact flags (xtask/src/userland.rs passes them, only to user programs, in their own
//! target directory `target/user`, so host builds and tests are unaffected):
//!
//! | flag | why |
//! |------|-----|
//! | `--target x86_64-unknown-linux-gnu` | hard-float SSE2 codegen and a stable, precompiled `core`/`alloc` |
//! | `-C target-feature=+crt-static` | with PIE, makes rustc link with `-static-pie`: no `PT_INTERP`, no `DT_NEEDED` |
//! | `-C relocation-model=pie` | position-independent code that assumes nothing is interposed: relative relocations only |
//! | `-C link-arg=-nostartfiles` | no `crt1.o`/`crti.o`/`crtbegin.o`: libcap's `_start` is the entry (rustc already passes `-nodefaultlibs`: no libc, no libgcc) |
//! | `-C strip=debuginfo` | no DWARF in the initrd (a program is ~50 KB instead of ~900 KB); symbols stay |
//! | `panic = "abort"` (workspace profiles) | no unwinding runtime |
//!
//! # What the kernel provides at entry
//!
//! - The ELF's `PT_LOAD` segments mapped at a page-aligned base with their permissions
//!   (never writable and executable), `.bss` zeroed, `R_X86_64_RELATIVE` relocations applied.
//! - `rip` = base + `e_entry` (libcap's `_start`); `rsp` = the top of a mapped, writable,
//!   non-executable stack (16-byte aligned, as on Linux; `_start` re-aligns anyway).
//! - `rdi`, `rsi`: the start arguments ([`rt::start_args`]): for init, the address and
//!   length of the read-only initrd ([`rt::initrd`]); 0 for every program started with
//!   `ThreadStart`, which zeroes all registers but `rsp` and `rip`.
//! - `rflags` with DF clear (the SysV ABI assumes it) and IF set; x87/SSE in their reset
//!   state (`FNINIT` control word 0x37F, `MXCSR` = 0x1F80), with `CR0.EM` clear and
//!   `CR4.OSFXSR`/`OSXMMEXCPT` set, and FPU/SSE state saved and restored per thread.
//! - The caps listed in [`slots`].
#![no_std]
// All unsafe code lives in `raw`, which opts back in; everything else is safe.
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Without the runtime (the host build of the doc examples) its helpers go unused.
#![cfg_attr(not(feature = "runtime"), allow(dead_code, unused_imports))]

// The loader keeps a growing list of frame keepers.
extern crate alloc;

#[allow(unsafe_code)]
mod raw;

// Benchmark support: rdtsc/rdtscp (two documented unsafe blocks) and IPC with a raw info word.
#[allow(unsafe_code)]
pub mod bench;

pub mod console;
pub mod heap;
pub mod interface;
pub mod ipc;
/// The project's one seeded pseudo-random generator (for tests and fuzzing, never secrets).
pub use kcore::rand;
pub mod loader;
pub mod logger;
pub mod memory;
pub mod process;
pub mod rt;
pub mod sys;

pub use abi;
pub use abi::{Badge, CapSlot, ErrorCode, MessageInfo, ObjectType, Rights, Sysno};
pub use log;
/// Bounded strings and vectors for messages (see [`ipc`]).
pub use heapless;

/// The initial authority convention: which slot holds which cap when a program starts.
///
/// The boot manifest (`system.toml`, crate `manifest`) fills them; the numbers here and
/// there agree.
///
/// | slot | cap |
/// |------|-----|
/// | 0 | never used: the null slot, so that 0 is never a valid cap by accident |
/// | 1 | [`CONSOLE`](slots::CONSOLE): a `Console` cap (write) |
/// | 2.. | the manifest's `caps`, in order |
/// | 96..126 | [`HEAP_FRAMES`](slots::HEAP_FRAMES): with a `heap`, the heap's frame caps |
/// | 126 | [`HEAP_MEMORY`](slots::HEAP_MEMORY): with a `heap`, the memory server (client badge) |
/// | 127 | [`HEAP_SPACE`](slots::HEAP_SPACE): with a `heap`, the program's own address space |
pub mod slots {
    use abi::CapSlot;

    /// The null slot: never holds a cap.
    pub const NULL: CapSlot = CapSlot::new(0);
    /// The console cap every program starts with.
    pub const CONSOLE: CapSlot = CapSlot::new(1);
    /// The first slot the program may use freely.
    pub const FIRST_FREE: CapSlot = CapSlot::new(2);
    /// A program with a `heap` (system.toml): its cap to the memory server, badged with its
    /// client number and quota. The heap grows through it (`crate::heap`).
    pub const HEAP_MEMORY: CapSlot = CapSlot::new(126);
    /// A program with a `heap`: its own address space, where the heap maps its frames.
    pub const HEAP_SPACE: CapSlot = CapSlot::new(127);
    /// A program with a `heap`: the slots that hold the heap's frame caps. The program must
    /// leave these slots, [`HEAP_MEMORY`] and [`HEAP_SPACE`] alone.
    pub const HEAP_FRAMES: core::ops::Range<u32> = 96..126;
}

/// Memory mapped into this process's own window (frames from the memory server, shared
/// regions), read and written only by copying: [`window::read`], [`window::write`]. A
/// program maps there itself, with a cap to its own address space
/// ([`process::map`]); nothing else is ever placed in the window.
pub mod window {
    pub use crate::raw::{WINDOW_HIGH, WINDOW_LOW, window_read as read, window_write as write};
}

/// Size of the static heap region, in bytes.
pub const HEAP_SIZE: usize = raw::HEAP_SIZE;
