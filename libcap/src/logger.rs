//! A [`log::Log`] that writes each record as one line to the console cap.
//!
//! ```rust,no_run
//! libcap::logger::init(libcap::log::LevelFilter::Info);
//! libcap::log::info!("started");   // prints "[INFO  hello] started"
//! ```

use log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

use abi::CapSlot;

use crate::console;

/// Writes log records to a console cap, one `ConsoleWrite` per record.
pub struct ConsoleLogger {
    console: CapSlot,
}

impl ConsoleLogger {
    /// A logger writing to the console cap in `console`.
    pub const fn new(console: CapSlot) -> Self {
        ConsoleLogger { console }
    }
}

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            // A failed log write has nowhere to be reported.
            let _ = console::write_fmt(
                self.console,
                format_args!("[{:<5} {}] {}\n", record.level(), record.target(), record.args()),
            );
        }
    }

    fn flush(&self) {}
}

static LOGGER: ConsoleLogger = ConsoleLogger::new(crate::slots::CONSOLE);

/// Installs the console logger for [`slots::CONSOLE`](crate::slots::CONSOLE) with
/// `level` as the maximum level. Fails if a logger is already installed.
pub fn init(level: LevelFilter) -> Result<(), SetLoggerError> {
    log::set_logger(&LOGGER)?;
    log::set_max_level(level);
    Ok(())
}
