//! The kernel/user ABI: the single definition shared by the kernel and libcap.
//!
//! Nothing here depends on anything, and nothing here is `unsafe`. The kernel decodes
//! registers into these types; libcap re-exports them. Nothing else re-declares them.
//!
//! - [`syscall`]: syscall numbers ([`Sysno`]) and the `SYSCALL` register convention.
//! - [`args`]: one typed argument struct per syscall, which libcap encodes into the
//!   argument registers and the kernel decodes from them.
//! - [`error`]: [`ErrorCode`], the closed set of errors a syscall returns.
//! - [`rights`]: [`Rights`], what a cap allows.
//! - [`cap`]: [`CapSlot`], [`Badge`], [`ObjectType`].
//! - [`msg`]: [`MessageInfo`], the message-info word, and message size limits.
//! - [`ipc_buffer`]: byte layout of the per-thread IPC buffer.
//! - [`tables`]: the kernel's fixed tables and the share of each a quota holds.
#![no_std]
#![forbid(unsafe_code)]

pub mod args;
pub mod cap;
pub mod error;
pub mod ipc_buffer;
pub mod msg;
pub mod rights;
pub mod syscall;
pub mod tables;

pub use cap::{Badge, CapSlot, ObjectType};
pub use error::ErrorCode;
pub use msg::MessageInfo;
pub use rights::Rights;
pub use syscall::Sysno;

/// The `isa-debug-exit` port and the codes the kernel writes to it when a test run ends.
///
/// QEMU exits with status `(code << 1) | 1`, so these map to exit statuses 33 and 35.
pub mod qemu_exit {
    pub const PORT: u16 = 0xf4;
    pub const SUCCESS: u32 = 0x10;
    pub const FAILURE: u32 = 0x11;
    /// Process exit status QEMU reports for [`SUCCESS`].
    pub const SUCCESS_STATUS: i32 = ((SUCCESS << 1) | 1) as i32;
    /// Process exit status QEMU reports for [`FAILURE`].
    pub const FAILURE_STATUS: i32 = ((FAILURE << 1) | 1) as i32;
}
