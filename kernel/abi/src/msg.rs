//! The message-info word: what a message's length, capability count and label are.
//!
//! # Layout of the 64-bit word (in `rsi`)
//!
//! | bits    | field    | meaning                                                    |
//! |---------|----------|------------------------------------------------------------|
//! | 0..=9   | `length` | message words, `0..=MAX_MESSAGE_WORDS`                     |
//! | 10..=12 | `caps`   | caps to transfer (sender) or transferred (receiver), `0..=MAX_CAPS` |
//! | 13..=31 | reserved | must be zero                                               |
//! | 32..=63 | `label`  | free for the protocol: typically the operation number      |
//!
//! Message words `0..REGISTER_WORDS` travel in registers (the fast path; see
//! [`crate::syscall`]); words `REGISTER_WORDS..length` in the IPC buffer at the same index.

use crate::ErrorCode;
use crate::ipc_buffer;

/// Message words carried in registers.
pub const REGISTER_WORDS: usize = 8;
/// The most message words one message can carry (registers plus IPC buffer).
pub const MAX_MESSAGE_WORDS: usize = ipc_buffer::MSG_WORDS;
/// The most caps one message can transfer.
pub const MAX_CAPS: usize = ipc_buffer::CAP_SLOTS;

const LENGTH_BITS: u32 = 10;
const CAPS_SHIFT: u32 = LENGTH_BITS;
const CAPS_BITS: u32 = 3;
const LABEL_SHIFT: u32 = 32;
const LENGTH_MASK: u64 = (1 << LENGTH_BITS) - 1;
const CAPS_MASK: u64 = (1 << CAPS_BITS) - 1;
const RESERVED_MASK: u64 = ((1 << LABEL_SHIFT) - 1) & !((1 << (CAPS_SHIFT + CAPS_BITS)) - 1);

// The fields must be wide enough for their maxima.
const _: () = assert!(MAX_MESSAGE_WORDS as u64 <= LENGTH_MASK);
const _: () = assert!(MAX_CAPS as u64 <= CAPS_MASK);
const _: () = assert!(REGISTER_WORDS <= MAX_MESSAGE_WORDS);

/// A decoded message-info word.
///
/// # Invariants
/// `length <= MAX_MESSAGE_WORDS` and `caps <= MAX_CAPS`; fields are private and both
/// constructors check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    label: u32,
    length: u16,
    caps: u8,
}

impl MessageInfo {
    /// Checked constructor. `MessageTooLong` if `length` or `caps` exceed the ABI's maxima.
    pub const fn new(label: u32, length: usize, caps: usize) -> Result<MessageInfo, ErrorCode> {
        if length > MAX_MESSAGE_WORDS || caps > MAX_CAPS {
            return Err(ErrorCode::MessageTooLong);
        }
        // Both fit: checked above against maxima that fit in u16 and u8.
        Ok(MessageInfo { label, length: length as u16, caps: caps as u8 })
    }

    /// Decode the word from `rsi`. Reserved bits set is `InvalidArgument`; a length or
    /// caps count above the maxima is `MessageTooLong`.
    pub const fn decode(word: u64) -> Result<MessageInfo, ErrorCode> {
        if word & RESERVED_MASK != 0 {
            return Err(ErrorCode::InvalidArgument);
        }
        let length = (word & LENGTH_MASK) as usize;
        let caps = ((word >> CAPS_SHIFT) & CAPS_MASK) as usize;
        let label = (word >> LABEL_SHIFT) as u32;
        MessageInfo::new(label, length, caps)
    }

    /// The word for `rsi`.
    pub const fn encode(self) -> u64 {
        (self.label as u64) << LABEL_SHIFT
            | (self.caps as u64) << CAPS_SHIFT
            | self.length as u64
    }

    /// The protocol label.
    pub const fn label(self) -> u32 {
        self.label
    }

    /// Number of message words.
    pub const fn length(self) -> usize {
        self.length as usize
    }

    /// Number of caps transferred.
    pub const fn caps(self) -> usize {
        self.caps as usize
    }

    /// Message words that travel in the IPC buffer rather than in registers.
    pub const fn buffer_words(self) -> usize {
        self.length().saturating_sub(REGISTER_WORDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_the_limits() {
        for (label, length, caps) in
            [(0, 0, 0), (u32::MAX, MAX_MESSAGE_WORDS, MAX_CAPS), (7, REGISTER_WORDS, 1)]
        {
            let info = MessageInfo::new(label, length, caps).unwrap();
            assert_eq!(MessageInfo::decode(info.encode()), Ok(info));
            assert_eq!((info.label(), info.length(), info.caps()), (label, length, caps));
        }
    }

    #[test]
    fn layout_is_as_documented() {
        let info = MessageInfo::new(0xABCD_1234, 3, 2).unwrap();
        assert_eq!(info.encode(), 0xABCD_1234_0000_0000 | (2 << 10) | 3);
        assert_eq!(info.buffer_words(), 0);
        assert_eq!(MessageInfo::new(0, 20, 0).unwrap().buffer_words(), 12);
    }

    #[test]
    fn errors_are_exact() {
        assert_eq!(MessageInfo::new(0, MAX_MESSAGE_WORDS + 1, 0), Err(ErrorCode::MessageTooLong));
        assert_eq!(MessageInfo::new(0, 0, MAX_CAPS + 1), Err(ErrorCode::MessageTooLong));
        assert_eq!(MessageInfo::decode(1 << 13), Err(ErrorCode::InvalidArgument));
        assert_eq!(MessageInfo::decode(1 << 31), Err(ErrorCode::InvalidArgument));
        assert_eq!(MessageInfo::decode(LENGTH_MASK), Err(ErrorCode::MessageTooLong));
        assert_eq!(MessageInfo::decode(CAPS_MASK << CAPS_SHIFT), Err(ErrorCode::MessageTooLong));
    }
}
