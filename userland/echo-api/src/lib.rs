//! The echo service's interface: what a client may ask and what it gets back.
//!
//! One crate for both sides (Hubris's `*-api` pattern), so the server and its clients cannot
//! disagree about the protocol. Messages travel through `libcap::ipc` (postcard in the
//! message registers, at most `libcap::ipc::MAX_BYTES`).
#![no_std]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// The label every echo request is sent with.
pub const LABEL: u32 = 1;

/// The longest text `Reverse` carries: far past the 64 bytes of the message registers, so
/// the call and its reply go through the IPC buffers.
pub const MAX_TEXT: usize = 1024;

// Messages are values on the stack, not boxes: a large variant is the point of `Reverse`.
#[allow(clippy::large_enum_variant, reason = "a bounded message type, decoded without an allocator")]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Send these numbers back.
    Echo { round: u32, values: [u64; 3] },
    /// Send this text back reversed.
    Reverse { text: heapless::String<MAX_TEXT> },
    /// Who am I? The server answers with the badge on the caller's cap.
    WhoAmI,
}

#[allow(clippy::large_enum_variant, reason = "a bounded message type, decoded without an allocator")]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Echo { round: u32, values: [u64; 3] },
    Reversed { text: heapless::String<MAX_TEXT> },
    /// The badge the kernel delivered with the request: the caller's identity as the
    /// server sees it, which the caller cannot forge.
    You { badge: u64 },
}
