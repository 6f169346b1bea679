//! The kernel console: `log` records to the serial port.
//!
//! Until the timer is calibrated, records carry no timestamp; afterwards each one carries
//! the time since the first boot instruction.

use core::fmt::Write;
use spin::Mutex;

use crate::arch::serial::Serial;

static SERIAL: Mutex<Option<Serial>> = Mutex::new(None);

struct Console;

static CONSOLE: Console = Console;

impl log::Log for Console {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let level = match record.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARN ",
            log::Level::Info => "INFO ",
            log::Level::Debug => "DEBUG",
            log::Level::Trace => "TRACE",
        };
        let micros = crate::arch::time::micros_since_boot();
        print(format_args!("[{:4}.{:06}] {level} {}\n", micros / 1_000_000, micros % 1_000_000, record.args()));
    }

    fn flush(&self) {}
}

pub fn init() {
    *SERIAL.lock() = Some(Serial::init());
    // A second call would only fail because a logger is set already, which is harmless.
    let _ = log::set_logger(&CONSOLE);
    log::set_max_level(log::LevelFilter::Info);
}

/// The serial line's IRQ: console input is delivered through it (`irq::set_notification`).
pub const INPUT_IRQ: u8 = 4;

/// Copies what has been typed into `buffer`; returns how many bytes.
pub fn read(buffer: &mut [u8]) -> usize {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut guard = SERIAL.lock();
        let Some(serial) = guard.as_mut() else { return 0 };
        let mut count = 0;
        for byte in buffer.iter_mut() {
            match serial.read_byte() {
                Some(value) => {
                    *byte = value;
                    count += 1;
                }
                None => break,
            }
        }
        count
    })
}

/// From now on a received byte raises [`INPUT_IRQ`].
pub fn enable_input_interrupt() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(serial) = SERIAL.lock().as_mut() {
            serial.enable_receive_interrupt();
        }
    });
}

/// Writes to the console without a log header (tables, test verdicts, fault reports).
pub fn print(args: core::fmt::Arguments) {
    // Interrupts off while holding the lock: a fault or timer handler that prints must not
    // find the console locked by the code it interrupted.
    crate::arch::without_interrupts(|| {
        let mut guard = SERIAL.lock();
        if let Some(serial) = guard.as_mut() {
            let _ = serial.write_fmt(args);
        }
    });
}

/// Prints for the fault and panic paths: takes the console even if the interrupted code
/// held it, since the alternative is dying silently.
pub fn print_emergency(args: core::fmt::Arguments) {
    // SAFETY: we are on a path that does not return to the interrupted code, or only
    // after printing; a garbled line is better than a deadlock on a fault.
    unsafe { SERIAL.force_unlock() };
    print(args);
}

#[macro_export]
macro_rules! println {
    () => { $crate::console::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
