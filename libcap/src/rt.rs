//! The runtime: from `_start` to the program's `main` and back out through `ThreadExit`.
//!
//! ```text
//! kernel ──► _start (raw.rs: clear rbp, align rsp, save rdi/rsi: start_args)
//!              └─► rt::start: heap::init, then the program's main (via entry!)
//!                    └─► Termination::exit_code ──► ThreadExit(code)
//! ```
//!
//! A program names its `main` once with [`entry!`](crate::entry). `main` may return `()`
//! (exit code 0), a `u64` exit code, or `Result<(), ErrorCode>` (an error is printed to the
//! console and becomes exit code `0x100 + code`). A panic prints its message to the console
//! and exits with [`PANIC_EXIT_CODE`].

use core::sync::atomic::{AtomicBool, Ordering};

use abi::ErrorCode;

use crate::{console, heap, raw};

/// The exit code of a thread that panicked (as Rust's test harness uses).
pub const PANIC_EXIT_CODE: u64 = 101;

/// Exit codes of `main` returning `Err(code)`: `ERROR_EXIT_BASE + code`.
pub const ERROR_EXIT_BASE: u64 = 0x100;

/// Names the program's `main` function.
///
/// Write it once, at the top level of the program crate:
///
/// ```rust
/// #![no_std]
/// #![no_main]
/// #![forbid(unsafe_code)]
///
/// libcap::entry!(main);
///
/// fn main() {
///     libcap::println!("hello");
/// }
/// ```
///
/// `main` takes no arguments and returns a [`Termination`]. The macro defines the symbol
/// `libcap::raw` calls. It is the one place where libcap's `unsafe` reaches into the program
/// crate (an `export_name` attribute), and because the expansion comes from libcap's macro,
/// the program's `#![forbid(unsafe_code)]` stands.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[doc(hidden)]
        #[unsafe(export_name = "__libcap_main")]
        pub fn __libcap_main() -> u64 {
            $crate::rt::Termination::exit_code($main())
        }
    };
}

/// What `main` may return: anything that becomes an exit code.
pub trait Termination {
    /// The thread's exit code, reported to its exit endpoint by `ThreadExit`.
    fn exit_code(self) -> u64;
}

impl Termination for () {
    fn exit_code(self) -> u64 {
        0
    }
}

impl Termination for u64 {
    fn exit_code(self) -> u64 {
        self
    }
}

impl Termination for Result<(), ErrorCode> {
    fn exit_code(self) -> u64 {
        match self {
            Ok(()) => 0,
            Err(code) => {
                crate::println!("error: {}", code.as_str());
                ERROR_EXIT_BASE + u64::from(code.as_u32())
            }
        }
    }
}

/// The values of `rdi` and `rsi` when the program started, saved by `_start`.
///
/// init gets (address, length) of the initrd, mapped read-only (use [`initrd`] to read it);
/// every program started with `ThreadStart` gets `(0, 0)`.
pub fn start_args() -> (u64, u64) {
    raw::start_args()
}

/// The initrd (a ustar archive), if the kernel passed one at entry: init only.
pub fn initrd() -> Option<&'static [u8]> {
    raw::initrd()
}

/// Called by `_start` once it has saved the start arguments. Sets up the heap, runs `main`,
/// exits with its code.
pub(crate) fn start() -> ! {
    heap::init();
    let code = raw::program_main();
    raw::thread_exit(code)
}

static PANICKING: AtomicBool = AtomicBool::new(false);

/// Prints the panic to the console cap and exits with [`PANIC_EXIT_CODE`]. A panic while
/// printing a panic exits at once.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        let mut out = console::Buffered::<256>::new(crate::slots::CONSOLE);
        let _ = core::fmt::Write::write_fmt(&mut out, format_args!("panic: {info}\n"));
        let _ = out.flush();
    }
    raw::thread_exit(PANIC_EXIT_CODE)
}
