//! `Rights`: what a capability allows its holder to do with the object it names.
//!
//! A hand-written bitflags newtype (the ABI crate has no dependencies). Rights are attenuated
//! by intersection only: there is no operation in the kernel that adds a right to an existing
//! capability, and [`Rights::intersection`] is how mint derives a weaker one.
//!
//! Meaning per object kind (modelled on seL4's `seL4_CapRights`):
//!
//! | right         | endpoint                  | notification | frame / address space |
//! |---------------|---------------------------|--------------|-----------------------|
//! | `READ`        | receive                   | wait, poll   | map readable          |
//! | `WRITE`       | send                      | signal       | map writable          |
//! | `GRANT`       | send capabilities         | -            | -                     |
//! | `GRANT_REPLY` | caps back in the reply    | -            | -                     |
//! | `EXECUTE`     | -                         | -            | map executable        |
//!
//! On the console, `WRITE` prints and `READ` reads what is typed (`ConsoleRead`,
//! `ConsoleSetNotification`): the terminal's keyboard is a right of its own.
//!
//! Operations on the capability space itself (copy, mint, move, delete, revoke, identify)
//! need no right on the capability they act on: holding it in your own space is enough.
//! Sending a capability to another space needs `GRANT` on the endpoint it travels through.

/// A set of rights.
///
/// # Invariants
/// Only the bits in [`Rights::ALL`] are ever set; the field is private and every constructor
/// either checks or masks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rights(u32);

impl Rights {
    /// Receive on an endpoint, wait on a notification, map a frame readable.
    pub const READ: Rights = Rights(1 << 0);
    /// Send on an endpoint, signal a notification, map a frame writable.
    pub const WRITE: Rights = Rights(1 << 1);
    /// Transfer capabilities in a message sent through this endpoint.
    pub const GRANT: Rights = Rights(1 << 2);
    /// The reply to a `Call` made through this cap may carry capabilities back to the
    /// caller (a reply with caps to a caller without it is `InsufficientRights`). `Call`
    /// itself needs only `WRITE`: every caller gets its reply.
    pub const GRANT_REPLY: Rights = Rights(1 << 3);
    /// Map a frame executable.
    pub const EXECUTE: Rights = Rights(1 << 4);

    /// No rights at all. A capability with no rights can still be identified, moved,
    /// deleted and revoked by its holder.
    pub const NONE: Rights = Rights(0);
    /// Every right the ABI defines.
    pub const ALL: Rights = Rights(0b1_1111);

    /// The raw bits, as they travel in a register.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Checked constructor: `None` if any bit outside [`Rights::ALL`] is set.
    pub const fn from_bits(bits: u32) -> Option<Rights> {
        if bits & !Rights::ALL.0 == 0 {
            Some(Rights(bits))
        } else {
            None
        }
    }

    /// Constructor that drops unknown bits.
    pub const fn from_bits_truncate(bits: u32) -> Rights {
        Rights(bits & Rights::ALL.0)
    }

    /// True if every right in `other` is also in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if `self` has no right that `other` lacks.
    pub const fn is_subset_of(self, other: Rights) -> bool {
        other.contains(self)
    }

    /// The rights in both sets: how a derived capability's rights are computed.
    pub const fn intersection(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// The rights in either set. Only for building masks; the kernel never widens a
    /// capability's rights with it.
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// The rights in `self` but not in `other`.
    pub const fn difference(self, other: Rights) -> Rights {
        Rights(self.0 & !other.0)
    }

    /// True if no right is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl TryFrom<u64> for Rights {
    /// The register value that is not a rights word.
    type Error = u64;

    /// Decode a rights word from a syscall register; any unknown bit is an error.
    fn try_from(value: u64) -> Result<Rights, u64> {
        let bits = u32::try_from(value).map_err(|_| value)?;
        Rights::from_bits(bits).ok_or(value)
    }
}

impl core::fmt::Debug for Rights {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [(Rights, char); 5] = [
            (Rights::READ, 'R'),
            (Rights::WRITE, 'W'),
            (Rights::GRANT, 'G'),
            (Rights::GRANT_REPLY, 'g'),
            (Rights::EXECUTE, 'X'),
        ];
        f.write_str("Rights(")?;
        for (right, name) in NAMES {
            let c = if self.contains(right) { name } else { '-' };
            core::fmt::Write::write_char(f, c)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::Rights;

    #[test]
    fn checked_constructor_rejects_unknown_bits() {
        assert_eq!(Rights::from_bits(0b1_1111), Some(Rights::ALL));
        assert_eq!(Rights::from_bits(1 << 5), None);
        assert_eq!(Rights::try_from(1u64 << 40), Err(1u64 << 40));
        assert_eq!(Rights::try_from(0b11u64), Ok(Rights::READ.union(Rights::WRITE)));
        assert_eq!(Rights::from_bits_truncate(u32::MAX), Rights::ALL);
    }

    #[test]
    fn intersection_never_widens() {
        for a in 0..32 {
            for b in 0..32 {
                let (a, b) = (Rights::from_bits_truncate(a), Rights::from_bits_truncate(b));
                let i = a.intersection(b);
                assert!(i.is_subset_of(a) && i.is_subset_of(b));
                assert_eq!(a.contains(b), b.is_subset_of(a));
                assert!(a.difference(b).intersection(b).is_empty());
            }
        }
    }

    #[test]
    fn debug_names_each_right() {
        extern crate std;
        use std::format;
        assert_eq!(format!("{:?}", Rights::ALL), "Rights(RWGgX)");
        assert_eq!(format!("{:?}", Rights::READ), "Rights(R----)");
    }
}
