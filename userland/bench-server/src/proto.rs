//! The benchmark protocol: which slot holds which cap, the request labels, the counts.
//!
//! The one definition, shared by three crates through `#[path]`: the server
//! (`userland/bench-server`), the client (`userland/bench-client`) and the kernel harness
//! that hands out the caps (`kernel/src/harness/kbench.rs`). Plain constants only, no dependencies,
//! so each of them can include it.
#![allow(dead_code)]

/// Where the harness puts each cap in the **server**'s capability space.
pub mod server_slots {
    /// The console (write), as in every program (`libcap::slots::CONSOLE`).
    pub const CONSOLE: u32 = 1;
    /// The benchmark endpoint (read: receive).
    pub const ENDPOINT: u32 = 2;
    /// Notification the client signals (read: wait).
    pub const PING: u32 = 3;
    /// Notification the server signals back (write).
    pub const PONG: u32 = 4;
    /// Empty: where a cap granted by the client lands (the server's IPC buffer names it in
    /// `recv_caps[0]`; the server deletes it after each call).
    pub const RECEIVED: u32 = 5;
}

/// Where the harness puts each cap in the **client**'s capability space.
pub mod client_slots {
    /// The console (write).
    pub const CONSOLE: u32 = 1;
    /// The benchmark endpoint (write, grant, grant-reply: call, and send caps).
    pub const ENDPOINT: u32 = 2;
    /// Notification the client signals (write).
    pub const PING: u32 = 3;
    /// Notification the client waits on (read).
    pub const PONG: u32 = 4;
    /// The cap the client grants with each `CAP` call (a notification, write); the client's
    /// IPC buffer names it in `send_caps[0]`.
    pub const GRANTED: u32 = 5;
    /// An address space the client does not run in (write: map, unmap).
    pub const ADDRESS_SPACE: u32 = 6;
    /// A 4 KiB frame (read, write).
    pub const FRAME: u32 = 7;
    /// Empty: scratch slot for the cap-copy/delete figure.
    pub const SCRATCH: u32 = 8;
}

/// Request labels (the label of the client's `Call`).
pub mod label {
    /// Register-only round trip: one word each way.
    pub const PING: u32 = 1;
    /// One-way timing: the server records [its `rdtscp` right after its receive returned,
    /// its `rdtsc` right before its `ReplyRecv`] (see `RESET_STAMPS`, `FETCH`) and replies
    /// with as many words as the call had (the words themselves are zero).
    pub const STAMPED: u32 = 2;
    /// The longest message each way: `abi::msg::MAX_MESSAGE_WORDS` words (8 in registers,
    /// the rest copied between the IPC buffers).
    pub const LONG: u32 = 3;
    /// One cap arrives with the call; the server deletes it, then replies register-only.
    pub const CAP: u32 = 4;
    /// Word 0 = n: reply, then n rounds of wait(PING), record `rdtscp`, signal(PONG).
    pub const NOTIFY: u32 = 5;
    /// Word 0 = n: reply, then yield n + 2 times (the client yields n times in between).
    pub const YIELD: u32 = 6;
    /// Word 0 = index: reply with the eight recorded timestamps from there (notification
    /// rounds, or `STAMPED` calls).
    pub const FETCH: u32 = 7;
    /// Reply, then exit 0.
    pub const DONE: u32 = 8;
    /// Reply with the call's own length and register words (0 to 10 words; words past the
    /// registers come from the server's IPC buffer, where the call's landed).
    pub const ECHO: u32 = 9;
    /// Word 0 = n: forget the recorded timestamps and make room for n more, so that
    /// recording allocates nothing while measuring.
    pub const RESET_STAMPS: u32 = 10;
}

/// Rounds thrown away before measuring (warm caches, TLB, lazily built state).
pub const WARMUP: usize = 1_000;
/// Measured rounds per figure.
pub const ITERATIONS: usize = 10_000;
