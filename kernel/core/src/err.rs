//! The kernel-internal error: the second tier under the ABI's `ErrorCode`.
//!
//! Most failures are the caller's to handle and become an [`ErrorCode`] in `rax`. Some are
//! not recoverable by the caller at all (it handed the kernel a bad IPC-buffer address, say):
//! those *fault* a thread instead, and for IPC the error says which side was at fault, so the
//! innocent side can be given `PeerGone` rather than being faulted too.
//! (Modelled on Hubris `sys/kern/src/err.rs` `UserError::{Recoverable, Unrecoverable}`.)
//!
//! Capability-space operations (`cap`) only ever produce the recoverable tier: every check
//! they make is against kernel state, never against user memory.

use abi::ErrorCode;

/// Which thread an unrecoverable error is blamed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Culprit {
    /// The thread that made the syscall.
    Caller,
    /// The other side of an IPC: the receiver when the caller sent, the sender when it
    /// received.
    Peer,
}

/// Why a thread is faulted rather than given an error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultReason {
    /// A user address the kernel had to read or write was not mapped with the needed access.
    BadUserMemory { address: u64 },
    /// The thread has no IPC buffer but the message needed one.
    NoIpcBuffer,
}

/// Every way a kernel operation on behalf of a thread can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// Return this code to the caller in `rax`.
    Error(ErrorCode),
    /// Fault `who`; if that is the peer, the caller gets `ErrorCode::PeerGone`.
    Fault { who: Culprit, reason: FaultReason },
}

impl From<ErrorCode> for KernelError {
    fn from(code: ErrorCode) -> KernelError {
        KernelError::Error(code)
    }
}
