//! `ErrorCode`: the closed set of errors a syscall can return to user space.
//!
//! This is the ABI tier of the kernel's two-tier error scheme. The kernel-internal tier
//! (`kcore::err::KernelError`) adds "fault the caller", which never reaches user space as a
//! code. Every variant has a fixed number; numbers are never reused. Success is not an error:
//! a syscall that succeeds returns 0 in `rax` (see [`crate::syscall`]), so codes start at 1.

/// Why a syscall failed. Returned in `rax` as its `u32` value (zero-extended).
///
/// The set is closed: user code can match on it exhaustively, and [`ErrorCode::try_from`]
/// rejects any other number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// `rax` held a number that is not a [`crate::Sysno`].
    InvalidSyscall = 1,
    /// An argument is malformed: unknown rights bits, reserved bits set in a message-info
    /// word, a badge given for an object kind that has no badges, and the like.
    InvalidArgument = 2,
    /// A slot index is outside the capability space.
    InvalidSlot = 3,
    /// The slot named as a source (or the invoked cap) holds no capability.
    EmptySlot = 4,
    /// The slot named as a destination already holds a capability.
    SlotOccupied = 5,
    /// The capability names a kind of object this operation does not apply to.
    WrongObjectType = 6,
    /// The capability lacks a right the operation needs.
    InsufficientRights = 7,
    /// Mint asked for a badge on a capability that already has one. Badges are set once.
    BadgeAlreadySet = 8,
    /// The operation is well-formed but not allowed on this object in its current state
    /// (for example destroying a root capability space).
    IllegalOperation = 9,
    /// Creating the object would exceed the caller's kernel-memory quota: its bytes, or its
    /// share of a kernel table ([`crate::tables`]).
    OutOfQuota = 10,
    /// The kernel ran out of something no quota covers: physical memory of the right kind
    /// (a frame below 4 GiB, say), or a table entry for an object the kernel made itself.
    /// Never because another quota holder used up its share of a table.
    OutOfResources = 11,
    /// A non-blocking operation would have had to block.
    WouldBlock = 12,
    /// The message-info length or capability count exceeds what the ABI allows.
    MessageTooLong = 13,
    /// The peer went away (its object was destroyed or its reply capability deleted) while
    /// the operation was in progress.
    PeerGone = 14,
    /// A blocking receive or wait reached its timeout with nothing to receive.
    TimedOut = 15,
    /// The capability a blocked operation was using was revoked or deleted while it waited
    /// (a queued send whose cap is gone is cancelled, never delivered).
    Revoked = 16,
}

impl ErrorCode {
    /// Every code, in numeric order. Used by tests and by user-space pretty-printers.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::InvalidSyscall,
        ErrorCode::InvalidArgument,
        ErrorCode::InvalidSlot,
        ErrorCode::EmptySlot,
        ErrorCode::SlotOccupied,
        ErrorCode::WrongObjectType,
        ErrorCode::InsufficientRights,
        ErrorCode::BadgeAlreadySet,
        ErrorCode::IllegalOperation,
        ErrorCode::OutOfQuota,
        ErrorCode::OutOfResources,
        ErrorCode::WouldBlock,
        ErrorCode::MessageTooLong,
        ErrorCode::PeerGone,
        ErrorCode::TimedOut,
        ErrorCode::Revoked,
    ];

    /// The code as it travels in `rax`.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// A short, stable, lower-case description (no `Display`: no formatting machinery needed).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidSyscall => "invalid syscall number",
            ErrorCode::InvalidArgument => "invalid argument",
            ErrorCode::InvalidSlot => "slot index outside the capability space",
            ErrorCode::EmptySlot => "slot holds no capability",
            ErrorCode::SlotOccupied => "destination slot is occupied",
            ErrorCode::WrongObjectType => "capability names the wrong kind of object",
            ErrorCode::InsufficientRights => "capability lacks a required right",
            ErrorCode::BadgeAlreadySet => "capability is already badged",
            ErrorCode::IllegalOperation => "operation not allowed on this object",
            ErrorCode::OutOfQuota => "kernel-memory quota or table share exhausted",
            ErrorCode::OutOfResources => "kernel resources exhausted",
            ErrorCode::WouldBlock => "operation would block",
            ErrorCode::MessageTooLong => "message too long",
            ErrorCode::PeerGone => "peer gone",
            ErrorCode::TimedOut => "timed out",
            ErrorCode::Revoked => "capability revoked while in use",
        }
    }
}

impl TryFrom<u32> for ErrorCode {
    /// The number that is not a code.
    type Error = u32;

    fn try_from(value: u32) -> Result<Self, u32> {
        // Codes are dense from 1, so the table lookup is the whole decoder.
        let index = value.checked_sub(1).ok_or(value)?;
        match ErrorCode::ALL.get(index as usize) {
            Some(code) => Ok(*code),
            None => Err(value),
        }
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> u32 {
        code.as_u32()
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_are_dense_from_one_and_round_trip() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(code.as_u32() as usize, i + 1);
            assert_eq!(ErrorCode::try_from(code.as_u32()), Ok(*code));
            assert!(!code.as_str().is_empty());
        }
    }

    #[test]
    fn zero_and_unknown_numbers_are_rejected() {
        assert_eq!(ErrorCode::try_from(0), Err(0));
        assert_eq!(ErrorCode::try_from(17), Err(17));
        assert_eq!(ErrorCode::try_from(u32::MAX), Err(u32::MAX));
    }

    #[test]
    fn descriptions_are_distinct() {
        for a in ErrorCode::ALL {
            for b in ErrorCode::ALL {
                assert_eq!(a == b, a.as_str() == b.as_str());
            }
        }
    }
}
