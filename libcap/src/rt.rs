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
//! console as `NAME: error: ...` and becomes exit code `0x100 + code`). A panic prints
//! `NAME: panic: ...` and exits with [`PANIC_EXIT_CODE`]. `NAME` is the program's crate
//! ([`program_name`]); [`ExitReason`] reads an exit code back.

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
/// ```rust,no_run
/// // The crate root also says #![no_std], #![no_main] and #![forbid(unsafe_code)].
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
///
/// `libcap::entry!(main, caps)` first checks the named caps of [`caps!`](macro@crate::caps)
/// (`caps::EXPECTED`): a slot that does not hold the kind its constant was generated for
/// ends the program with that error, naming the cap, before `main` runs.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[doc(hidden)]
        #[unsafe(export_name = "__libcap_main")]
        pub fn __libcap_main() -> u64 {
            $crate::rt::set_program_name(env!("CARGO_PKG_NAME"));
            $crate::rt::Termination::exit_code($main())
        }
    };
    ($main:path, $caps:path) => {
        #[doc(hidden)]
        #[unsafe(export_name = "__libcap_main")]
        pub fn __libcap_main() -> u64 {
            $crate::rt::set_program_name(env!("CARGO_PKG_NAME"));
            if let Err(code) = $crate::caps::check({ use $caps as generated; generated::EXPECTED }) {
                return $crate::rt::Termination::exit_code(Err::<(), _>(code));
            }
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
                crate::println!("{}: error: {}", program_name(), code.as_str());
                ERROR_EXIT_BASE + u64::from(code.as_u32())
            }
        }
    }
}

/// What an exit code says about how a program built on libcap ended, when it says anything:
/// `main` returned an error, or the program panicked. For supervisors (init) and shells, so
/// that `exited (code 262)` reads as the error it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// `main` returned `Err(code)`: the exit code is [`ERROR_EXIT_BASE`] + the error's number.
    Error(ErrorCode),
    /// The program panicked: [`PANIC_EXIT_CODE`].
    Panicked,
}

impl ExitReason {
    /// The reason behind `code`, or `None` for 0, a program's own codes and unknown errors.
    ///
    /// ```
    /// use libcap::rt::{ExitReason, ERROR_EXIT_BASE};
    /// use libcap::ErrorCode;
    ///
    /// let code = ERROR_EXIT_BASE + u64::from(ErrorCode::WrongObjectType.as_u32());
    /// assert_eq!(ExitReason::of(code), Some(ExitReason::Error(ErrorCode::WrongObjectType)));
    /// assert_eq!(
    ///     ExitReason::of(code).unwrap().to_string(),
    ///     "main returned WrongObjectType: capability names the wrong kind of object"
    /// );
    /// assert_eq!(ExitReason::of(101), Some(ExitReason::Panicked));
    /// assert_eq!(ExitReason::of(0), None);
    /// assert_eq!(ExitReason::of(ERROR_EXIT_BASE + 9999), None);
    /// ```
    pub fn of(code: u64) -> Option<ExitReason> {
        if code == PANIC_EXIT_CODE {
            return Some(ExitReason::Panicked);
        }
        let number = u32::try_from(code.checked_sub(ERROR_EXIT_BASE)?).ok()?;
        ErrorCode::try_from(number).ok().map(ExitReason::Error)
    }
}

impl core::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExitReason::Error(code) => write!(f, "main returned {code:?}: {}", code.as_str()),
            ExitReason::Panicked => f.write_str("panicked"),
        }
    }
}

static PROGRAM_NAME: spin::Once<&'static str> = spin::Once::new();

/// Records the program's name (its crate's); [`entry!`](crate::entry) does, before `main`.
#[doc(hidden)]
pub fn set_program_name(name: &'static str) {
    PROGRAM_NAME.call_once(|| name);
}

/// The program's name, as `entry!` recorded it from its crate (`"program"` before that):
/// the prefix of the errors and panics libcap prints, so the console says who failed.
pub fn program_name() -> &'static str {
    PROGRAM_NAME.get().copied().unwrap_or("program")
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
#[cfg(feature = "runtime")]
pub(crate) fn start() -> ! {
    heap::init();
    let code = raw::program_main();
    raw::thread_exit(code)
}

static PANICKING: AtomicBool = AtomicBool::new(false);

/// Prints the panic to the console cap and exits with [`PANIC_EXIT_CODE`]. A panic while
/// printing a panic exits at once.
#[cfg(feature = "runtime")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    if !PANICKING.swap(true, Ordering::Relaxed) {
        let mut out = console::Buffered::<256>::new(crate::slots::CONSOLE);
        let _ = core::fmt::Write::write_fmt(&mut out, format_args!("{}: panic: {info}\n", program_name()));
        let _ = out.flush();
    }
    raw::thread_exit(PANIC_EXIT_CODE)
}
