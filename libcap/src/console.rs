//! Console output: bytes to a console cap, `print!`/`println!`, and a buffered writer.
//!
//! The console is the kernel's debug output (the serial port) until a console server
//! exists. Writing needs a cap to a `Console` object; every program gets one in
//! [`slots::CONSOLE`](crate::slots::CONSOLE). Output is buffered per `print!` call so one
//! call is one `ConsoleWrite` (up to the buffer size), and lines from different programs
//! interleave whole rather than character by character.

use core::fmt;

use abi::{CapSlot, ErrorCode};

use crate::sys;

/// A formatter that collects up to `N` bytes and sends them with one `ConsoleWrite`,
/// flushing early when full. Call [`Buffered::flush`] at the end (dropping it does not
/// flush, so that a failed write is never silently lost in a destructor).
pub struct Buffered<const N: usize> {
    slot: CapSlot,
    buffer: [u8; N],
    len: usize,
    error: Option<ErrorCode>,
}

impl<const N: usize> Buffered<N> {
    /// An empty buffer for the console cap in `slot`.
    pub const fn new(slot: CapSlot) -> Self {
        Buffered { slot, buffer: [0; N], len: 0, error: None }
    }

    /// Sends what is buffered. Returns the first error any write hit, if one did.
    pub fn flush(&mut self) -> Result<(), ErrorCode> {
        let pending = self.buffer.get(..self.len).unwrap_or(&[]);
        if !pending.is_empty()
            && let Err(error) = sys::console_write(self.slot, pending)
        {
            self.error.get_or_insert(error);
        }
        self.len = 0;
        match self.error.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.len == N
                && let Err(error) = self.flush()
            {
                self.error.get_or_insert(error);
            }
            let room = N - self.len;
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            if let Some(dest) = self.buffer.get_mut(self.len..self.len + now.len()) {
                dest.copy_from_slice(now);
            }
            self.len += now.len();
            bytes = rest;
        }
    }
}

impl<const N: usize> fmt::Write for Buffered<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// Formats `args` to the console cap in `slot` in one buffered write.
pub fn write_fmt(slot: CapSlot, args: fmt::Arguments<'_>) -> Result<(), ErrorCode> {
    let mut out = Buffered::<512>::new(slot);
    // Buffered never fails a write_str; errors surface from flush.
    let _ = fmt::Write::write_fmt(&mut out, args);
    out.flush()
}

/// Prints to the console cap in [`slots::CONSOLE`](crate::slots::CONSOLE). Errors are
/// ignored (a program without a console has nowhere to report them); use
/// [`console::write_fmt`](write_fmt) to see them.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        let _ = $crate::console::write_fmt($crate::slots::CONSOLE, format_args!($($arg)*));
    }};
}

/// [`print!`] with a newline.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{
        let _ = $crate::console::write_fmt(
            $crate::slots::CONSOLE,
            format_args!("{}\n", format_args!($($arg)*)),
        );
    }};
}
