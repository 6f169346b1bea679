//! `Quota`: a capability space's kernel-memory account.
//!
//! Every kernel object is paid for by exactly one account, the *payer*: the space whose
//! holder created it. The cost is charged when the object is created and refunded to the
//! payer when the object is destroyed (its last cap deleted), wherever its caps have travelled
//! in between. A child space's whole limit is itself a charge on its parent, so the sum of
//! the limits granted never exceeds what the root was given at boot.

use abi::ErrorCode;

/// A kernel-memory account, in bytes.
///
/// # Invariants
/// `used <= limit`. The fields are private; [`Quota::check`] is the only way to learn that a
/// charge fits, and the store only calls [`Quota::charge`] after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    limit: u64,
    used: u64,
}

impl Quota {
    /// A fresh account with nothing used.
    pub const fn new(limit: u64) -> Quota {
        Quota { limit, used: 0 }
    }

    /// An account that can pay for nothing (the state of a dead space).
    pub const EMPTY: Quota = Quota::new(0);

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
