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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Send these numbers back.
    Echo { round: u32, values: [u64; 3] },
    /// Who am I? The server answers with the badge on the caller's cap.
    WhoAmI,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Echo { round: u32, values: [u64; 3] },
    /// The badge the kernel delivered with the request: the caller's identity as the
    /// server sees it, which the caller cannot forge.
    You { badge: u64 },
}
