//! The kernel's fixed tables, and the share of each that a quota holds.
//!
//! Objects live in fixed-size kernel tables (threads, endpoints, ...), far smaller than
//! memory: a byte quota alone would let one holder fill a table while others still have
//! bytes left. So every capability space also holds a *share* of each table, and creating an
//! object takes one entry from its creator's share of the object table and, for the kinds
//! below, one from its share of that kind's table. A share is carved out of the parent's
//! when a space is made, like its bytes, so the shares of all spaces never add up to more
//! than a table holds: whatever one holder does, every other holder keeps the entries its
//! share promised. Running out of a share is `OutOfQuota`, as running out of bytes is.
//!
//! A space made with a quota of `q` bytes gets [`share`]`(table, q)` entries of each table:
//! the table's capacity in proportion to `q / SHARE_BASIS`, rounded up (so any non-zero
//! quota gets at least one entry of each table). A space with no quota gets no shares.

use crate::ObjectType;

/// The quota that buys a whole share of every table (64 MiB). A 1 MiB space gets 1/64 of
/// each: 2 capability spaces, 2 address spaces, 4 threads, 16 endpoints, 16 notifications
/// and 128 objects.
pub const SHARE_BASIS: u64 = 64 << 20;

/// A kernel table whose entries are shared out by quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Table {
    /// Capability spaces.
    CSpaces = 0,
    /// Address spaces.
    AddressSpaces = 1,
    /// Threads.
    Threads = 2,
    /// Endpoints.
    Endpoints = 3,
    /// Notifications.
    Notifications = 4,
    /// The object table: every object of every kind takes one entry.
    Objects = 5,
}

impl Table {
    /// Every table, in index order.
    pub const ALL: [Table; 6] =
        [Table::CSpaces, Table::AddressSpaces, Table::Threads, Table::Endpoints, Table::Notifications, Table::Objects];

    /// Entries the table holds, for the whole system.
    pub const fn capacity(self) -> u32 {
        match self {
            Table::CSpaces | Table::AddressSpaces => 128,
            Table::Threads => 256,
            Table::Endpoints | Table::Notifications => 1024,
            Table::Objects => 8192,
        }
    }

    /// The table an object of `kind` takes an entry of, besides the object table. `None`
    /// for kinds that take only an object entry (frames, and the boot-made kinds). A
    /// capability space's entry is taken with the space itself, by its parent.
    pub const fn of(kind: ObjectType) -> Option<Table> {
        match kind {
            ObjectType::AddressSpace => Some(Table::AddressSpaces),
            ObjectType::Thread => Some(Table::Threads),
            ObjectType::Endpoint => Some(Table::Endpoints),
            ObjectType::Notification => Some(Table::Notifications),
            _ => None,
        }
    }

    /// A short name for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Table::CSpaces => "capability spaces",
            Table::AddressSpaces => "address spaces",
            Table::Threads => "threads",
            Table::Endpoints => "endpoints",
            Table::Notifications => "notifications",
            Table::Objects => "objects",
        }
    }
}

/// The entries of `table` a space made with `quota` bytes holds: `capacity * quota /
/// SHARE_BASIS`, rounded up, at most the whole table.
pub const fn share(table: Table, quota: u64) -> u32 {
    let capacity = table.capacity() as u64;
    let scaled = (capacity as u128 * quota as u128).div_ceil(SHARE_BASIS as u128);
    if scaled > capacity as u128 { capacity as u32 } else { scaled as u32 }
}

#[cfg(test)]
mod tests {
    use super::{SHARE_BASIS, Table, share};

    #[test]
    fn shares_scale_with_quota_and_round_up() {
        assert_eq!(share(Table::Threads, 0), 0);
        assert_eq!(share(Table::Threads, 1), 1);
        assert_eq!(share(Table::Threads, 1 << 20), 4);
        assert_eq!(share(Table::Endpoints, 1 << 20), 16);
        assert_eq!(share(Table::Objects, 1 << 20), 128);
        assert_eq!(share(Table::CSpaces, SHARE_BASIS), 128);
        assert_eq!(share(Table::CSpaces, u64::MAX), 128, "never more than the table");
    }
}
