//! `Quota`: a capability space's kernel-memory account.
//!
//! Every kernel object is paid for by exactly one account, the *payer*: the space whose
//! holder created it. The cost is charged when the object is created and refunded to the
//! payer when the object is destroyed (its last cap deleted), wherever its caps have travelled
//! in between. A child space's whole limit is itself a charge on its parent, so the sum of
//! the limits granted never exceeds what the root was given at boot.
//!
//! An account also holds [`Shares`] of the kernel's fixed tables (`abi::tables`), kept the
//! same way: an object takes its entries from its payer's shares, a child space's shares are
//! taken from its parent's, and everything goes back when the object or space goes. So no
//! account can use table entries that another account's shares promise.

use abi::ErrorCode;
use abi::tables::{self, Table};

/// A count of entries of each kernel table (`abi::tables::Table`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shares {
    cspaces: u32,
    address_spaces: u32,
    threads: u32,
    endpoints: u32,
    notifications: u32,
    objects: u32,
}

impl Shares {
    /// No entries of anything.
    pub const NONE: Shares =
        Shares { cspaces: 0, address_spaces: 0, threads: 0, endpoints: 0, notifications: 0, objects: 0 };

    /// Every entry of every table.
    pub const ALL: Shares = Shares::for_quota(u64::MAX);

    /// What a space made with `quota` bytes holds (`abi::tables::share`).
    pub const fn for_quota(quota: u64) -> Shares {
        Shares {
            cspaces: tables::share(Table::CSpaces, quota),
            address_spaces: tables::share(Table::AddressSpaces, quota),
            threads: tables::share(Table::Threads, quota),
            endpoints: tables::share(Table::Endpoints, quota),
            notifications: tables::share(Table::Notifications, quota),
            objects: tables::share(Table::Objects, quota),
        }
    }

    /// One entry of `table`.
    pub const fn one(table: Table) -> Shares {
        Shares::NONE.plus(table, 1)
    }

    /// What an object of `kind` takes: an object entry, and one of its kind's table.
    pub const fn for_object(kind: abi::ObjectType) -> Shares {
        let object = Shares::one(Table::Objects);
        match Table::of(kind) {
            Some(table) => object.plus(table, 1),
            None => object,
        }
    }

    /// Entries of `table`.
    pub const fn get(&self, table: Table) -> u32 {
        match table {
            Table::CSpaces => self.cspaces,
            Table::AddressSpaces => self.address_spaces,
            Table::Threads => self.threads,
            Table::Endpoints => self.endpoints,
            Table::Notifications => self.notifications,
            Table::Objects => self.objects,
        }
    }

    /// These with `count` more of `table` (saturating).
    pub const fn plus(self, table: Table, count: u32) -> Shares {
        self.with(table, self.get(table).saturating_add(count))
    }

    /// These with exactly `count` of `table`.
    const fn with(mut self, table: Table, count: u32) -> Shares {
        match table {
            Table::CSpaces => self.cspaces = count,
            Table::AddressSpaces => self.address_spaces = count,
            Table::Threads => self.threads = count,
            Table::Endpoints => self.endpoints = count,
            Table::Notifications => self.notifications = count,
            Table::Objects => self.objects = count,
        }
        self
    }

    /// The sum, table by table (saturating).
    pub fn and(self, other: Shares) -> Shares {
        Table::ALL.into_iter().fold(self, |sum, t| sum.with(t, sum.get(t).saturating_add(other.get(t))))
    }

    /// The difference, table by table, floored at 0.
    pub const fn less(self, other: Shares) -> Shares {
        Shares {
            cspaces: self.cspaces.saturating_sub(other.cspaces),
            address_spaces: self.address_spaces.saturating_sub(other.address_spaces),
            threads: self.threads.saturating_sub(other.threads),
            endpoints: self.endpoints.saturating_sub(other.endpoints),
            notifications: self.notifications.saturating_sub(other.notifications),
            objects: self.objects.saturating_sub(other.objects),
        }
    }

    /// The first table in which `self` holds more than `other`, if any.
    pub fn exceeding(&self, other: &Shares) -> Option<Table> {
        Table::ALL.into_iter().find(|&t| self.get(t) > other.get(t))
    }
}

/// A kernel-memory account, in bytes.
///
/// # Invariants
/// `used <= limit`, and `held <= shares` in every table. The fields are private;
/// [`Quota::check`] and [`Quota::check_entries`] are the only ways to learn that a charge
/// fits, and the store only calls [`Quota::charge`] and [`Quota::take`] after them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    limit: u64,
    used: u64,
    shares: Shares,
    held: Shares,
}

impl Quota {
    /// A fresh account with nothing used, holding the table shares `limit` buys.
    pub const fn new(limit: u64) -> Quota {
        Quota::with_shares(limit, Shares::for_quota(limit))
    }

    /// A fresh account with nothing used and the given table shares.
    pub const fn with_shares(limit: u64, shares: Shares) -> Quota {
        Quota { limit, used: 0, shares, held: Shares::NONE }
    }

    /// An account that can pay for nothing (the state of a dead space).
    pub const EMPTY: Quota = Quota::new(0);

    /// The table entries this account may hold at once.
    pub const fn shares(&self) -> Shares {
        self.shares
    }

    /// The table entries held now (by its objects and given to its child spaces).
    pub const fn held(&self) -> Shares {
        self.held
    }

    /// The table entries it can still take.
    pub const fn unheld(&self) -> Shares {
        self.shares.less(self.held)
    }

    /// `Ok` if `entries` can be taken; else `OutOfQuota`. No side effects (decode step).
    pub fn check_entries(&self, entries: Shares) -> Result<(), ErrorCode> {
        match entries.exceeding(&self.unheld()) {
            None => Ok(()),
            Some(_) => Err(ErrorCode::OutOfQuota),
        }
    }

    /// Take `entries`. Precondition: `self.check_entries(entries)` returned `Ok` and nothing
    /// was taken since (saturating, so a broken precondition shows in the invariant check).
    pub(super) fn take(&mut self, entries: Shares) {
        self.held = self.held.and(entries);
    }

    /// Give back `entries` taken earlier.
    pub(super) fn give_back(&mut self, entries: Shares) {
        self.held = self.held.less(entries);
    }

    /// The most this account can have charged to it at once.
    pub const fn limit(&self) -> u64 {
        self.limit
    }

    /// What is charged to this account now.
    pub const fn used(&self) -> u64 {
        self.used
    }

    /// What can still be charged.
    pub const fn available(&self) -> u64 {
        // Cannot underflow: used <= limit.
        self.limit.saturating_sub(self.used)
    }

    /// `Ok` if `cost` can be charged; else `OutOfQuota`. No side effects (decode step).
    pub const fn check(&self, cost: u64) -> Result<(), ErrorCode> {
        if cost <= self.available() { Ok(()) } else { Err(ErrorCode::OutOfQuota) }
    }

    /// Charge `cost`. Precondition: `self.check(cost)` returned `Ok` and nothing was charged
    /// since. Saturating, so a broken precondition cannot wrap (it would break the invariant
    /// and be caught by `CapStore::check_invariants`, not panic).
    pub(super) fn charge(&mut self, cost: u64) {
        self.used = self.used.saturating_add(cost);
    }

    /// Give back `cost` charged earlier.
    pub(super) fn refund(&mut self, cost: u64) {
        self.used = self.used.saturating_sub(cost);
    }
}

#[cfg(test)]
mod tests {
    use super::Quota;
    use abi::ErrorCode;

    #[test]
    fn charge_and_refund() {
        let mut q = Quota::new(100);
        assert_eq!(q.check(100), Ok(()));
        assert_eq!(q.check(101), Err(ErrorCode::OutOfQuota));
        q.charge(60);
        assert_eq!((q.used(), q.available()), (60, 40));
        assert_eq!(q.check(41), Err(ErrorCode::OutOfQuota));
        assert_eq!(q.check(40), Ok(()));
        q.refund(60);
        assert_eq!(q, Quota::new(100));
        assert_eq!(Quota::EMPTY.check(1), Err(ErrorCode::OutOfQuota));
        assert_eq!(Quota::EMPTY.check(0), Ok(()));
    }
}
