//! The raw layer: the only `unsafe` code in libcap, and so in any user program.
//!
//! Everything a program needs that Rust cannot express safely is here, each item small
//! enough to audit on its own:
//!
//! - [`syscall`] and [`thread_exit`]: the two `syscall` instructions, as safe functions
//!   ([`syscall_args`] and [`Registers::from_args`] put an [`abi::args`] struct, the one
//!   definition of a syscall's argument registers, into them).
//! - `_start`: the ELF entry point (a naked function: align the stack, call [`crate::rt`]).
//! - `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`: the C memory routines the compiler
//!   emits calls to. On `x86_64-unknown-linux-gnu` they normally come from libc, and the
//!   precompiled `compiler_builtins` for this target leaves them out (its `mem` feature is
//!   only on for libc-less targets and cannot be switched on without `-Zbuild-std`), so the
//!   link fails without them.
//! - `rust_eh_personality` and `_Unwind_Resume`: the precompiled `core` and `alloc` for this
//!   target are built with unwinding and name these in their unwind tables and landing pads;
//!   with `panic = "abort"` neither is ever called, but the symbols must exist.
//! - [`take_heap_memory`]: hands out the static heap region exactly once;
//!   [`add_heap_memory`]: hands the grown heap the pages just mapped above its top; and the
//!   global allocator, whose two unsafe calls (`GlobalAlloc` itself and `Heap::deallocate`)
//!   wrap `crate::heap`'s safe policy.
//! - The program's `main`, as defined by [`crate::entry!`], declared here.
//! - [`start_args`] and [`initrd`]: the two words the kernel passes at entry, and the
//!   read-only initrd they describe (init only).
//! - [`cycle_counter`]: `rdtsc`, as entropy for the program loader.
//! - [`with_scratch_page`]: map a frame at a reserved address of this process, fill it
//!   through a `&mut [u8; 4096]`, unmap it. The loader's only way to write a child's memory.
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
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use abi::args::SyscallArgs;
use abi::{CapSlot, ErrorCode, Sysno};

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

impl Registers {
    /// The argument registers for `args` ([`SyscallArgs::encode`]: `rdi rsi rdx r10 r8 r9`);
    /// `r12`-`r15` zero.
    #[inline]
    pub fn from_args<A: SyscallArgs>(args: &A) -> Registers {
        let [rdi, rsi, rdx, r10, r8, r9] = args.encode();
        Registers { rdi, rsi, rdx, r10, r8, r9, ..Registers::default() }
    }
}

/// Performs the syscall `args` are the arguments of ([`SyscallArgs::SYSNO`]) and returns
/// `rax` and the registers as the kernel left them.
#[inline]
pub fn syscall_args<A: SyscallArgs>(args: &A) -> (u64, Registers) {
    let mut regs = Registers::from_args(args);
    let rax = syscall(A::SYSNO, &mut regs);
    (rax, regs)
}

/// Performs syscall `sysno` with `regs`, updates `regs` with the kernel's answer and
/// returns `rax` (0 on success, else an [`abi::ErrorCode`] number).
#[inline]
pub fn syscall(sysno: Sysno, regs: &mut Registers) -> u64 {
    syscall_number(sysno.as_u64(), regs)
}

/// The one `asm!` of a syscall: `$instruction` with `rax` = `$number` and the ten argument
/// and message registers of `$regs` as operands, `rcx`/`r11` clobbered. Used for the real
/// `syscall` and for the dry run benchmarks subtract, so the two set up and read exactly the
/// same registers. Evaluates to the `rax` after it.
macro_rules! register_asm {
    ($instruction:literal, $number:expr, $regs:expr) => {{
        let rax: u64;
        asm!(
            $instruction,
            inlateout("rax") $number => rax,
            inout("rdi") $regs.rdi,
            inout("rsi") $regs.rsi,
            inout("rdx") $regs.rdx,
            inout("r10") $regs.r10,
            inout("r8") $regs.r8,
            inout("r9") $regs.r9,
            inout("r12") $regs.r12,
            inout("r13") $regs.r13,
            inout("r14") $regs.r14,
            inout("r15") $regs.r15,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
        rax
    }};
}

/// As [`syscall`], with any value in `rax`, valid syscall number or not (for the fuzzer
/// and ABI tests; the kernel answers an unknown number with `InvalidSyscall`).
#[inline]
pub fn syscall_number(number: u64, regs: &mut Registers) -> u64 {
    // SAFETY: see the module docs: all registers the kernel may change are operands or
    // clobbers, the kernel uses no user stack (`nostack`), and it writes no memory this
    // program holds a reference to. It may read memory, so the block is not `readonly`.
    unsafe { register_asm!("syscall", number, regs) }
}

/// [`syscall_number`] with the `syscall` instruction replaced by `xor eax, eax`: the same
/// register setup and the same success-path handling after it, and no kernel. What a
/// benchmark subtracts from a measured syscall, as sel4bench does with its no-op sequence.
#[inline]
pub fn syscall_dry(number: u64, regs: &mut Registers) -> u64 {
    // SAFETY: a register-only instruction in place of the syscall, with the same operands.
    unsafe { register_asm!("xor eax, eax", number, regs) }
}

/// `ThreadExit` with `code`. Never returns: should the kernel return anyway, `ud2` faults
/// the thread.
pub fn thread_exit(code: u64) -> ! {
    let [rdi, ..] = abi::args::ThreadExit { code }.encode();
    // SAFETY: ThreadExit reads only `rax` and `rdi`; control does not come back (and if it
    // did, `ud2` raises #UD before any Rust code runs with a wrong assumption).
    unsafe {
        asm!(
            "syscall",
            "ud2",
            in("rax") Sysno::ThreadExit.as_u64(),
            in("rdi") rdi,
            options(noreturn, nostack),
        );
    }
}

/// The ELF entry point.
///
/// Entry state (what the kernel provides): `rsp` points into a mapped, writable stack; `rdi`
/// and `rsi` are the start arguments (see [`start_args`]). `_start` clears `rbp` (so frame
/// walkers stop here), aligns `rsp` down to 16 bytes (so the `call` below leaves `rsp + 8`
/// 16-byte aligned in [`entry`], as the SysV ABI requires) and calls [`entry`] with `rdi`
/// and `rsi` untouched: they are its two arguments. `entry` never returns; `ud2` is there in
/// case it ever does.
#[cfg(feature = "runtime")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    naked_asm!(
        "xor ebp, ebp",
        "mov rdx, rsp",
        "and rsp, -16",
        "call {entry}",
        "ud2",
        entry = sym entry,
    )
}

// Written once, by `entry`, before any other Rust code of the program runs; only read after.
static START_ARG0: AtomicU64 = AtomicU64::new(0);
static START_ARG1: AtomicU64 = AtomicU64::new(0);
static START_STACK: AtomicU64 = AtomicU64::new(0);

/// Records the entry values of `rdi`, `rsi` and `rsp` (passed in `rdx` by `_start`), then
/// runs the program ([`crate::rt::start`]). Private to this module, so nothing else can
/// change what [`initrd`] and [`ipc_buffer`] trust.
#[cfg(feature = "runtime")]
extern "C" fn entry(arg0: u64, arg1: u64, stack_top: u64) -> ! {
    START_ARG0.store(arg0, Ordering::Relaxed);
    START_ARG1.store(arg1, Ordering::Relaxed);
    START_STACK.store(stack_top, Ordering::Relaxed);
    crate::rt::start()
}

/// The values of `rdi` and `rsi` at entry.
///
/// The kernel starts init with (address, length) of the initrd, mapped read-only in init's
/// space. Every thread started with `ThreadStart` begins with all registers zero, so for
/// every other program both words are 0.
pub fn start_args() -> (u64, u64) {
    (START_ARG0.load(Ordering::Relaxed), START_ARG1.load(Ordering::Relaxed))
}

/// The initrd, if the kernel passed one at entry (init only); `None` for every other program.
pub fn initrd() -> Option<&'static [u8]> {
    let (address, length) = start_args();
    if address == 0 || length == 0 || length > isize::MAX as u64 {
        return None;
    }
    // Lower half only: a kernel address here would be a kernel bug, not something to read.
    if address.checked_add(length)? > LOWER_HALF_END {
        return None;
    }
    let start = address as *const u8;
    // SAFETY: non-zero start arguments come only from the kernel, and only to init (threads
    // started by ThreadStart get zeros; `entry` is the only writer of the words). The
    // kernel's contract for them: `length` bytes at `address` are mapped readable for the
    // life of the process, and no mapping in any space can write them (the kernel maps the
    // initrd read-only and hands out no frame cap to it), so an immutable `'static` slice
    // is never changed under us. The range is checked non-null, within isize::MAX and in
    // the lower half above; `u8` has no alignment.
    Some(unsafe { core::slice::from_raw_parts(start, length as usize) })
}

/// The address of this thread's IPC buffer: by the convention both loaders keep (the
/// kernel's for init, `crate::loader` for everything init starts), the page above the gap
/// page above the stack, that is the entry `rsp` + 4096. `None` if the entry `rsp` was not
/// page aligned (then the program was not started by either loader and the convention
/// says nothing).
pub fn ipc_buffer() -> Option<u64> {
    let top = START_STACK.load(Ordering::Relaxed);
    (top != 0 && top.is_multiple_of(PAGE_SIZE as u64) && top < LOWER_HALF_END - PAGE_SIZE as u64).then(|| top + PAGE_SIZE as u64)
}

/// Writes word `index` (a byte offset divided by 8) of this thread's IPC buffer.
/// `InvalidArgument` past the buffer's end, `IllegalOperation` without a known buffer.
pub fn ipc_buffer_write(index: usize, value: u64) -> Result<(), ErrorCode> {
    let word = ipc_buffer_word(index)?;
    // SAFETY: `ipc_buffer_word` gives an 8-aligned address inside the IPC buffer page,
    // which the loader mapped read-write for the life of the thread (the convention in
    // `ipc_buffer`). No Rust reference to the buffer exists anywhere (libcap forms none, and
    // safe code cannot), and the kernel writes it only during a syscall of this thread, so a
    // volatile write here races with nothing. Were the convention broken, the address would
    // be unmapped or read-only (nothing else is placed there) and the write would fault the
    // thread, not change other memory.
    unsafe { core::ptr::write_volatile(word, value) };
    Ok(())
}

/// Reads word `index` of this thread's IPC buffer (what the kernel copied there with the
/// last message received). Errors as [`ipc_buffer_write`].
pub fn ipc_buffer_read(index: usize) -> Result<u64, ErrorCode> {
    let word = ipc_buffer_word(index)?;
    // SAFETY: as in `ipc_buffer_write`: an aligned word of the mapped buffer page that no
    // Rust reference covers and the kernel writes only during this thread's syscalls.
    Ok(unsafe { core::ptr::read_volatile(word) })
}

fn ipc_buffer_word(index: usize) -> Result<*mut u64, ErrorCode> {
    let base = ipc_buffer().ok_or(ErrorCode::IllegalOperation)?;
    if index >= abi::ipc_buffer::SIZE / abi::ipc_buffer::WORD {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok((base + (index * abi::ipc_buffer::WORD) as u64) as *mut u64)
}

/// The window of this process's own address space where it maps memory it was given (a
/// memory server's frames, shared regions): [`WINDOW_LOW`] .. [`WINDOW_HIGH`], 96 TiB to
/// 112 TiB. Reserved like `SCRATCH_PAGE`: `crate::loader` places images below 64 TiB and
/// stacks from 112 TiB, and Rust code never forms a reference into the window, so what is
/// mapped there is reached only through [`window_read`] and [`window_write`]. (The kernel
/// places init's stack anywhere in 64..127 TiB, so init does not use the window.)
pub const WINDOW_LOW: u64 = 0x0000_6000_0000_0000;
/// The end (exclusive) of the window.
pub const WINDOW_HIGH: u64 = 0x0000_7000_0000_0000;

fn window_range(address: u64, length: usize) -> Result<(), ErrorCode> {
    let end = address.checked_add(length as u64).ok_or(ErrorCode::InvalidArgument)?;
    if address < WINDOW_LOW || end > WINDOW_HIGH {
        return Err(ErrorCode::InvalidArgument);
    }
    Ok(())
}

/// Copies `into.len()` bytes from `address` in the window. `InvalidArgument` if the range
/// is not inside the window. An unmapped page faults the thread (its supervisor hears of
/// it), as any bad access does.
pub fn window_read(address: u64, into: &mut [u8]) -> Result<(), ErrorCode> {
    window_range(address, into.len())?;
    for (offset, byte) in into.iter_mut().enumerate() {
        // SAFETY: the address is inside the window (checked above), where no Rust object
        // lives and no reference is ever formed (see WINDOW_LOW), so a volatile read can
        // alias nothing the compiler reasons about; another process writing the same shared
        // frame meanwhile changes only the bytes read. If the page is not mapped, or not
        // readable, the access faults the thread: it stops, and no wrong value is used.
        *byte = unsafe { core::ptr::read_volatile((address + offset as u64) as *const u8) };
    }
    Ok(())
}

/// Copies `from` to `address` in the window (errors and faults as [`window_read`]; a
/// read-only mapping faults on the first byte).
pub fn window_write(address: u64, from: &[u8]) -> Result<(), ErrorCode> {
    window_range(address, from.len())?;
    for (offset, byte) in from.iter().enumerate() {
        // SAFETY: as in `window_read`: inside the window, which holds no Rust object and no
        // reference; a missing or read-only mapping faults the thread.
        unsafe { core::ptr::write_volatile((address + offset as u64) as *mut u8, *byte) };
    }
    Ok(())
}

/// The end of the user half of the address space (exclusive).
const LOWER_HALF_END: u64 = 0x0000_8000_0000_0000;

/// Where [`map_immutable`] places read-only boot files: 80 TiB to 96 TiB, below the window
/// and above every image (`crate::loader` and the kernel place images below 64 TiB).
/// Reserved like the window: only `map_immutable` maps here, each address once.
const FILES_LOW: u64 = 0x0000_5000_0000_0000;
const FILES_HIGH: u64 = WINDOW_LOW;
/// The next free address of the files area (a bump: nothing mapped there is ever unmapped
/// by libcap, so no address is reused).
static FILES_NEXT: AtomicU64 = AtomicU64::new(FILES_LOW);

/// Maps `frame`, which must be immutable (`FrameInfo` says no mapping anywhere may write
/// it: a slice of the boot image), read-only into `space` (this process's own address
/// space) for the life of the process, and returns its `bytes` bytes.
/// `IllegalOperation` if the frame is not immutable; `OutOfResources` when the files area
/// is used up; the kernel's error if the map fails.
pub fn map_immutable(space: crate::CapSlot, frame: crate::CapSlot) -> Result<&'static [u8], ErrorCode> {
    let info = crate::sys::frame_info(frame)?;
    if !info.immutable {
        return Err(ErrorCode::IllegalOperation);
    }
    let span = info.bytes.div_ceil(PAGE_SIZE as u64).max(1) * PAGE_SIZE as u64;
    let address = FILES_NEXT
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
            next.checked_add(span).filter(|&end| end <= FILES_HIGH)
        })
        .map_err(|_| ErrorCode::OutOfResources)?;
    crate::process::map(space, frame, address, crate::process::Access::Read)?;
    let length = usize::try_from(info.bytes).map_err(|_| ErrorCode::InvalidArgument)?;
    // SAFETY: `bytes` bytes from `address` are mapped readable in this process (the map just
    // succeeded over the whole frame, which covers them), at an address of the files area
    // that nothing else maps and no Rust object occupies (the bump hands each address out
    // once, and the area is outside images, stacks, the heap and the window). The frame is
    // immutable: the kernel refuses every writable mapping of it in every space, so the
    // bytes never change under the `'static` shared slice. If the program later deletes
    // the frame's cap, the kernel unmaps it and a read faults the thread (no other memory
    // is ever mapped at this address), so no wrong value is read. `u8` needs no alignment,
    // and `length` fits the area, far below isize::MAX.
    Ok(unsafe { core::slice::from_raw_parts(address as *const u8, length) })
}

/// The CPU's time-stamp counter: a cheap, always-changing number, used as entropy for the
/// load addresses of programs. Not a secure random source.
pub fn cycle_counter() -> u64 {
    // SAFETY: RDTSC only reads the counter; the kernel leaves CR4.TSD clear, so it is
    // allowed in user mode (with TSD set it would raise #GP: a fault, not memory unsafety).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Size of a page and of a frame.
pub const PAGE_SIZE: usize = 4096;

/// The address in this process's own space where [`with_scratch_page`] maps a frame: the
/// middle of the last TiB of the lower half (127.5 TiB). It is reserved: nothing else in
/// the process maps anything there. The kernel places init's image and initrd below 64 TiB
/// and its stack and IPC buffer below 127 TiB (kernel/src/process.rs), and the loader
/// places children's likewise (`crate::loader`).
pub const SCRATCH_PAGE: u64 = 0x0000_7f80_0000_0000;

static SCRATCH_BUSY: AtomicBool = AtomicBool::new(false);

/// Maps the frame in `frame` writable at [`SCRATCH_PAGE`] in `own_space`, lets `fill` write
/// it through a `&mut [u8; 4096]`, then unmaps it.
///
/// `own_space` must name this process's own address space (for init: slot 3, the kernel's
/// contract). This is how a loader fills a child's pages: it cannot form a slice from an
/// address in safe Rust, and its own heap cannot be mapped elsewhere.
///
/// Errors: `IllegalOperation` if called again from inside `fill`; the kernel's error if the
/// `Map` fails (for example a frame cap without `WRITE`); after `fill`, the kernel's error
/// if the `Unmap` fails (then the scratch page stays mapped, with no reference to it, and
/// every later call fails at the `Map`).
pub fn with_scratch_page<R>(
    own_space: CapSlot,
    frame: CapSlot,
    fill: impl FnOnce(&mut [u8; PAGE_SIZE]) -> R,
) -> Result<R, ErrorCode> {
    if SCRATCH_BUSY.swap(true, Ordering::Acquire) {
        return Err(ErrorCode::IllegalOperation);
    }
    let result = map_fill_unmap(own_space, frame, fill);
    SCRATCH_BUSY.store(false, Ordering::Release);
    result
}

fn map_fill_unmap<R>(
    own_space: CapSlot,
    frame: CapSlot,
    fill: impl FnOnce(&mut [u8; PAGE_SIZE]) -> R,
) -> Result<R, ErrorCode> {
    let map = abi::args::Map {
        space: own_space.into(),
        frame: frame.into(),
        address: SCRATCH_PAGE,
        perms: abi::syscall::map_perms::WRITE,
    };
    crate::sys::check(syscall_args(&map).0)?;
    let page = SCRATCH_PAGE as *mut [u8; PAGE_SIZE];
    // SAFETY: the `Map` above succeeded, so 4096 bytes at SCRATCH_PAGE (page aligned, so
    // aligned for `[u8; N]`) are mapped readable and writable in the space `own_space`
    // names, which is this process's own (the caller's obligation, see the doc; were it
    // another space, the scratch page here would be unmapped, as nothing else maps into it,
    // and the first access would fault the thread rather than touch other memory). The
    // frame is fresh to this mapping: SCRATCH_BUSY lets one call at a time get here, and
    // the reference does not outlive `fill` (no lifetime lets it escape the closure call),
    // so it is the only Rust reference to these bytes. Another mapping of the same frame,
    // if any, is not reachable from safe Rust (no safe code dereferences an address).
    let result = fill(unsafe { &mut *page });
    let unmap = abi::args::Unmap { space: own_space.into(), address: SCRATCH_PAGE };
    crate::sys::check(syscall_args(&unmap).0)?;
    Ok(result)
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

/// The allocator state (`crate::heap`), behind a spin lock: programs are single-threaded
/// today, and the lock keeps them correct when they are not.
static HEAP: spin::Mutex<crate::heap::State> = spin::Mutex::new(crate::heap::State::new());

/// Runs `f` with the heap locked.
pub(crate) fn with_heap<R>(f: impl FnOnce(&mut crate::heap::State) -> R) -> R {
    f(&mut HEAP.lock())
}

/// The highest address the grown heap has been given so far (0: nothing yet).
static GROWN_TOP: AtomicU64 = AtomicU64::new(0);

/// Gives `heap` the `len` bytes at `start`, which the caller has just mapped read-write in
/// this process: the first call makes them the grown heap, later ones extend it. Refuses
/// (false) unless the range is inside `crate::heap`'s reserved range and starts exactly at
/// the grown heap's top, so no byte is ever handed out twice.
pub(crate) fn add_heap_memory(heap: &mut linked_list_allocator::Heap, start: u64, len: usize) -> bool {
    use crate::heap::{GROWTH_HIGH, GROWTH_LOW};
    let Some(end) = start.checked_add(len as u64) else { return false };
    if start < GROWTH_LOW || end > GROWTH_HIGH || len == 0 {
        return false;
    }
    let top = GROWN_TOP.load(Ordering::Acquire);
    if top == 0 {
        if heap.size() != 0 {
            return false;
        }
        GROWN_TOP.store(end, Ordering::Release);
        let pointer = start as *mut MaybeUninit<u8>;
        // SAFETY: the range is mapped read-write (the caller's contract: `map_region` just
        // mapped it), lies in the reserved growth range where nothing else is ever placed
        // or referenced, and GROWN_TOP moves past it before the slice exists, so this is
        // the only reference to these bytes there will ever be.
        heap.init_from_slice(unsafe { core::slice::from_raw_parts_mut(pointer, len) });
        return true;
    }
    if start != top || heap.top() as u64 != top {
        return false;
    }
    GROWN_TOP.store(end, Ordering::Release);
    // SAFETY: as above, for the bytes right above the heap's top, which extend it.
    unsafe { heap.extend(len) };
    true
}

/// The global allocator: `crate::heap`'s policy behind [`HEAP`].
struct Allocator;

#[cfg(feature = "runtime")]
#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

// SAFETY: `alloc` returns blocks from `linked_list_allocator`, which never hands out
// overlapping live blocks and honours the layout; `dealloc` returns a block to the region
// it came from (`State::owner`, by address), with the layout it was allocated with, as
// `GlobalAlloc`'s contract promises the caller passes.
unsafe impl core::alloc::GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        with_heap(|state| state.allocate(layout)).map_or(core::ptr::null_mut(), core::ptr::NonNull::as_ptr)
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: core::alloc::Layout) {
        let Some(block) = core::ptr::NonNull::new(pointer) else { return };
        // SAFETY: the caller passes a block this allocator returned, with its layout.
        with_heap(|state| unsafe { state.owner(block).deallocate(block, layout) });
    }
}

/// The personality routine named by `core`'s unwind tables. With `panic = "abort"` nothing
/// unwinds, so nothing calls it.
#[cfg(feature = "runtime")]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// The unwinder's resume routine, named by the landing pads of the precompiled `alloc`
/// (for example in `alloc::fmt::format`, which `format!` uses). With `panic = "abort"`
/// nothing unwinds, so no landing pad runs and nothing calls it; should one ever run, the
/// thread ends as a panic does.
#[cfg(feature = "runtime")]
#[unsafe(no_mangle)]
extern "C" fn _Unwind_Resume() -> ! {
    thread_exit(crate::rt::PANIC_EXIT_CODE)
}

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
#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
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
#[cfg(feature = "runtime")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same condition as memcmp's, passed on unchanged.
    unsafe { memcmp(a, b, n) }
}
