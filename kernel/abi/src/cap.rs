//! Capability vocabulary shared by kernel and user: slots, badges and object kinds.
//!
//! A *cap* is (kernel object, rights, badge). A process names its caps by *slot* index in its
//! own capability space; it never sees kernel addresses. A *badge* is a word the minter stamps
//! on an endpoint or notification cap; receivers learn it, so a server can tell its clients
//! apart without trusting anything they send.

/// An index into the calling process's capability space.
///
/// A slot is only an index: whether it is in range, and what it holds, is for the kernel to
/// check against the caller's space (`ErrorCode::InvalidSlot`, `ErrorCode::EmptySlot`).
/// Slot 0 is always empty: as the destination of a copy, mint, move, give, create or
/// message transfer it is `ErrorCode::InvalidSlot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CapSlot(u32);

impl CapSlot {
    /// Name the slot at `index`.
    pub const fn new(index: u32) -> CapSlot {
        CapSlot(index)
    }

    /// The slot's index.
    pub const fn index(self) -> u32 {
        self.0
    }
}

impl TryFrom<u64> for CapSlot {
    /// The register value that cannot be a slot index.
    type Error = u64;

    /// Decode a slot from a syscall register. Values above `u32::MAX` are never valid
    /// slots; the kernel maps this error to `ErrorCode::InvalidSlot`.
    fn try_from(value: u64) -> Result<CapSlot, u64> {
        u32::try_from(value).map(CapSlot).map_err(|_| value)
    }
}

/// A badge: the word a receiver learns about the cap a message was sent through.
///
/// `Badge::NONE` (0) means "unbadged". Once a cap carries a non-zero badge, every cap derived
/// from it carries the same badge, and no operation changes or removes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Badge(u64);

impl Badge {
    /// No badge.
    pub const NONE: Badge = Badge(0);

    /// A badge with value `value`; `Badge::new(0)` is [`Badge::NONE`].
    pub const fn new(value: u64) -> Badge {
        Badge(value)
    }

    /// The badge as it travels in a register.
    pub const fn value(self) -> u64 {
        self.0
    }

    /// True for any badge but [`Badge::NONE`].
    pub const fn is_set(self) -> bool {
        self.0 != 0
    }
}

/// The kinds of kernel object a cap can name. Returned by `CapIdentify`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ObjectType {
    /// A capability space: the table of slots a process names its caps by.
    CSpace = 1,
    /// An address space (page-table root).
    AddressSpace = 2,
    /// A thread: registers, scheduling state, IPC buffer.
    Thread = 3,
    /// A synchronous rendezvous point for messages.
    Endpoint = 4,
    /// A word of signal bits; signals are OR-ed in, a wait takes and clears them.
    Notification = 5,
    /// A one-shot right to answer a `Call`; consumed by the reply.
    Reply = 6,
    /// Physical memory not yet typed; can be split into frames.
    Untyped = 7,
    /// Physical memory that can be mapped into an address space.
    Frame = 8,
    /// The right to receive one hardware interrupt line as notifications.
    IrqHandler = 9,
    /// A range of x86 I/O ports.
    IoPortRange = 10,
    /// A share of CPU time: budget per period.
    SchedBudget = 11,
    /// The right to write to the kernel console (debug output before a console server).
    Console = 12,
    /// The right to read every capability space and thread (the authority audit of the
    /// capability-leak suite). The manifest gives it to the test runner only.
    Audit = 13,
    /// A range of PCI functions (bus, device, function) whose configuration space the
    /// holder reads and writes through the kernel (`PciConfigRead`/`PciConfigWrite`), and
    /// whose BARs it can ask about (`PciBar`). init holds every function (the PCI bus cap,
    /// `INIT_PCI_SLOT`) and cuts one-function caps from it with `PciSlice`.
    Pci = 14,
}

impl ObjectType {
    /// Every kind, in numeric order.
    pub const ALL: [ObjectType; 14] = [
        ObjectType::CSpace,
        ObjectType::AddressSpace,
        ObjectType::Thread,
        ObjectType::Endpoint,
        ObjectType::Notification,
        ObjectType::Reply,
        ObjectType::Untyped,
        ObjectType::Frame,
        ObjectType::IrqHandler,
        ObjectType::IoPortRange,
        ObjectType::SchedBudget,
        ObjectType::Console,
        ObjectType::Audit,
        ObjectType::Pci,
    ];

    /// True for the kinds whose caps can carry a badge (endpoints and notifications).
    pub const fn is_badgeable(self) -> bool {
        matches!(self, ObjectType::Endpoint | ObjectType::Notification)
    }

    /// The number that travels in a register.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }
}

impl TryFrom<u64> for ObjectType {
    /// The register value that is not an object kind.
    type Error = u64;

    fn try_from(value: u64) -> Result<ObjectType, u64> {
        let index = value.checked_sub(1).ok_or(value)?;
        let index = usize::try_from(index).map_err(|_| value)?;
        ObjectType::ALL.get(index).copied().ok_or(value)
    }
}

#[cfg(test)]
mod tests {
    use super::{Badge, CapSlot, ObjectType};

    #[test]
    fn slot_decoding_rejects_values_above_u32() {
        assert_eq!(CapSlot::try_from(7u64), Ok(CapSlot::new(7)));
        assert_eq!(CapSlot::try_from(u64::from(u32::MAX)), Ok(CapSlot::new(u32::MAX)));
        assert_eq!(CapSlot::try_from(1u64 << 32), Err(1u64 << 32));
    }

    #[test]
    fn badge_zero_is_unbadged() {
        assert!(!Badge::NONE.is_set());
        assert_eq!(Badge::new(0), Badge::NONE);
        assert!(Badge::new(42).is_set());
        assert_eq!(Badge::new(42).value(), 42);
    }

    #[test]
    fn object_types_round_trip_and_reject_unknown() {
        for (i, t) in ObjectType::ALL.iter().enumerate() {
            assert_eq!(t.as_u32() as usize, i + 1);
            assert_eq!(ObjectType::try_from(u64::from(t.as_u32())), Ok(*t));
        }
        assert_eq!(ObjectType::try_from(0u64), Err(0));
        assert_eq!(ObjectType::try_from(15u64), Err(15));
        assert_eq!(ObjectType::try_from(u64::MAX), Err(u64::MAX));
    }

    #[test]
    fn only_endpoints_and_notifications_take_badges() {
        let badgeable: usize = ObjectType::ALL.iter().filter(|t| t.is_badgeable()).count();
        assert_eq!(badgeable, 2);
        assert!(ObjectType::Endpoint.is_badgeable());
        assert!(ObjectType::Notification.is_badgeable());
    }
}
