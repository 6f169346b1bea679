//! Layout of the per-thread IPC buffer: one 4 KiB page, mapped in the thread's address space.
//!
//! All fields are little-endian `u64` words at fixed byte offsets:
//!
//! | offset  | field          | meaning                                                  |
//! |---------|----------------|----------------------------------------------------------|
//! | 0x000   | `msg[480]`     | message words; `msg[i]` for `i >= REGISTER_WORDS` is word `i` (the first 8 are unused: those words are in registers) |
//! | 0xF00   | `send_caps[4]` | slots of the caps to transfer (sender; needs `GRANT`)     |
//! | 0xF20   | `recv_caps[4]` | empty slots where received caps are placed (receiver)    |
//! | 0xF40   | `reply_slot`   | empty slot where `Recv` places a reply cap, and the slot `ReplyRecv` replies through |
//! | 0xF48   | reserved       | zero; room for later fields                              |
//!
//! The kernel reads and writes the buffer only through its checked user-copy routines; a
//! thread without a mapped IPC buffer can still use the register fast path.

/// Size and alignment of the buffer, in bytes.
pub const SIZE: usize = 4096;
/// Bytes per word.
pub const WORD: usize = 8;
/// Message words in the buffer (indices `0..MSG_WORDS`).
pub const MSG_WORDS: usize = 480;
/// Capability slots per direction.
pub const CAP_SLOTS: usize = 4;

/// Byte offset of `msg[0]`.
pub const MSG_OFFSET: usize = 0;
/// Byte offset of `send_caps[0]`.
pub const SEND_CAPS_OFFSET: usize = MSG_OFFSET + MSG_WORDS * WORD;
/// Byte offset of `recv_caps[0]`.
pub const RECV_CAPS_OFFSET: usize = SEND_CAPS_OFFSET + CAP_SLOTS * WORD;
/// Byte offset of `reply_slot`.
pub const REPLY_SLOT_OFFSET: usize = RECV_CAPS_OFFSET + CAP_SLOTS * WORD;
/// Byte offset of the first reserved byte.
pub const RESERVED_OFFSET: usize = REPLY_SLOT_OFFSET + WORD;

const _: () = assert!(SIZE >= 4096, "the issue asks for at least 4 KiB");
const _: () = assert!(RESERVED_OFFSET <= SIZE);
const _: () = assert!(SEND_CAPS_OFFSET == 0xF00 && REPLY_SLOT_OFFSET == 0xF40);

/// Byte offset of message word `index`, or `None` if the buffer has no such word.
pub const fn msg_offset(index: usize) -> Option<usize> {
    if index < MSG_WORDS { Some(MSG_OFFSET + index * WORD) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_as_documented() {
        assert_eq!(msg_offset(0), Some(0));
        assert_eq!(msg_offset(MSG_WORDS - 1), Some(0xEF8));
        assert_eq!(msg_offset(MSG_WORDS), None);
        assert_eq!(RECV_CAPS_OFFSET, 0xF20);
        assert_eq!(RESERVED_OFFSET, 0xF48);
    }
}
