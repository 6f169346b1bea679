//! The echo service's interface: what a client may ask and what it gets back.
//!
//! One crate for both sides (Hubris's `*-api` pattern), so the server and its clients cannot
//! disagree about the protocol. Written once with `libcap::interface!`, which generates the
//! request and reply types, the client stub (`echo::Client`) and the server's dispatch
//! (`echo::Server`, `echo::serve`). Messages travel through `libcap::ipc`: postcard in the
//! message registers, long ones (a `reverse` of 1 KiB) through the IPC buffer.
#![no_std]
#![forbid(unsafe_code)]

use libcap::heapless::String;

/// The longest text `reverse` carries: far past the 64 bytes of the message registers, so
/// the call and its reply go through the IPC buffers.
pub const MAX_TEXT: usize = 1024;

libcap::interface! {
    /// The echo service.
    pub interface echo (label = 1) {
        /// Sends these numbers back.
        fn echo(round: u32, values: [u64; 3]) -> (u32, [u64; 3]);
        /// Who am I? The badge the kernel delivered with the request: the caller's identity
        /// as the server sees it, which the caller cannot forge.
        fn who_am_i() -> u64;
        /// Sends this text back reversed.
        fn reverse(text: String<MAX_TEXT>) -> String<MAX_TEXT>;
        /// Sends the caps that came with the request back with the reply (copies derived
        /// from the server's, which it then deletes); answers how many came.
        fn bounce() -> u32, with caps;
    }
}
