//! `CapStore::check_invariants`: the module's invariants, checked exhaustively.
//!
//! Quadratic in the store's size: meant for tests and debug builds, not the syscall path.

use super::{CapStore, Pos, Shares};

/// Which invariant (numbered as in the module documentation) was found broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: u8,
    pub what: &'static str,
}

const fn broken(invariant: u8, what: &'static str) -> Result<(), Violation> {
    Err(Violation { invariant, what })
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CapStore<O, SPACES, SLOTS, OBJECTS>
{
    /// Every position in the store, live space or not.
    fn all_positions() -> impl Iterator<Item = Pos> {
        (0..SPACES).flat_map(|space| {
            (0..SLOTS).map(move |slot| Pos {
                // In range: asserted in `CapStore::new`.
                space: u16::try_from(space).unwrap_or(u16::MAX),
                slot: u32::try_from(slot).unwrap_or(u32::MAX),
            })
        })
    }

    fn occupied(&self, p: Pos) -> bool {
        self.spaces.get(usize::from(p.space)).is_some_and(|s| s.live) && self.slot(p).cap.is_some()
    }

    /// Check invariants 1-5 of the module documentation.
    pub fn check_invariants(&self) -> Result<(), Violation> {
        for p in Self::all_positions() {
            self.check_slot(p)?;
        }
        self.check_objects()?;
        self.check_quotas()
    }

    fn check_slot(&self, p: Pos) -> Result<(), Violation> {
        let slot = self.slot(p);
        let Some(cap) = slot.cap else {
            if slot.links != super::Links::NONE {
                return broken(3, "empty slot has links");
            }
            return Ok(());
        };
        if !self.occupied(p) {
            return broken(3, "cap in a dead space");
        }
        let Some(object) = self.object(cap.object) else { return broken(4, "cap names a dead object") };
        if cap.badge.is_set() && !object.kind.is_badgeable() {
            return broken(2, "badge on an unbadgeable kind");
        }
        let links = slot.links;
        for l in [links.parent, links.first_child, links.prev, links.next].into_iter().flatten() {
            if !self.occupied(l) {
                return broken(3, "link to an empty slot");
            }
        }
        if let Some(parent) = links.parent.and_then(|q| self.slot(q).cap) {
            if !cap.rights.is_subset_of(parent.rights) {
                return broken(1, "derived cap has a right its parent lacks");
            }
            if parent.badge.is_set() && cap.badge != parent.badge {
                return broken(2, "badged parent, differently badged child");
            }
            if parent.object != cap.object {
                return broken(3, "derived cap names another object");
            }
        }
        match (links.parent, links.prev) {
            (None, Some(_)) => return broken(3, "root with siblings"),
            (_, Some(prev)) if self.slot(prev).links.next != Some(p) => {
                return broken(3, "prev.next is not self");
            }
            (Some(parent), None) if self.slot(parent).links.first_child != Some(p) => {
                return broken(3, "first sibling is not parent's first child");
            }
            _ => {}
        }
        if links.parent.is_none() && links.next.is_some() {
            return broken(3, "root with siblings");
        }
        if let Some(next) = links.next {
            let n = self.slot(next).links;
            if n.prev != Some(p) || n.parent != links.parent {
                return broken(3, "next.prev is not self, or siblings disagree on parent");
            }
        }
        if let Some(child) = links.first_child {
            let c = self.slot(child).links;
            if c.parent != Some(p) || c.prev.is_some() {
                return broken(3, "first child does not point back");
            }
        }
        // The child list holds every slot that names this one as parent, and nothing else.
        let mut listed = 0usize;
        let mut child = links.first_child;
        while let Some(c) = child {
            listed = listed.saturating_add(1);
            if listed > SPACES.saturating_mul(SLOTS) {
                return broken(3, "cycle in a child list");
            }
            child = self.slot(c).links.next;
        }
        let claiming = Self::all_positions()
            .filter(|&q| self.occupied(q) && self.slot(q).links.parent == Some(p))
            .count();
        if listed != claiming {
            return broken(3, "child list and parent links disagree");
        }
        // The parent chain ends at a root.
        let mut cur = links.parent;
        for _ in 0..=SPACES.saturating_mul(SLOTS) {
            match cur {
                None => return Ok(()),
                Some(q) => cur = self.slot(q).links.parent,
            }
        }
        broken(3, "cycle in a parent chain")
    }

    fn check_objects(&self) -> Result<(), Violation> {
        for (index, object) in self.objects.iter().enumerate() {
            let Some(object) = object else { continue };
            let naming = Self::all_positions()
                .filter(|&p| self.occupied(p))
                .filter(|&p| self.slot(p).cap.is_some_and(|c| c.object.0 as usize == index))
                .count();
            if object.refs as usize != naming || naming == 0 {
                return broken(4, "reference count is not the number of caps");
            }
            if !self.spaces.get(usize::from(object.payer.0)).is_some_and(|s| s.live) {
                return broken(5, "object paid for by a dead space");
            }
        }
        Ok(())
    }

    fn check_quotas(&self) -> Result<(), Violation> {
        for (index, space) in self.spaces.iter().enumerate() {
            if !space.live {
                continue;
            }
            if let Some(parent) = space.parent
                && !self.spaces.get(usize::from(parent.0)).is_some_and(|s| s.live)
            {
                return broken(5, "space's parent is dead");
            }
            let objects: u64 = self
                .objects
                .iter()
                .flatten()
                .filter(|o| usize::from(o.payer.0) == index)
                .fold(0, |sum, o| sum.saturating_add(o.cost));
            let children: u64 = self
                .spaces
                .iter()
                .filter(|s| s.live && s.parent.is_some_and(|p| usize::from(p.0) == index))
                .fold(0, |sum, s| sum.saturating_add(s.charged));
            if space.quota.used() != objects.saturating_add(children) {
                return broken(5, "quota used is not the sum of what it paid for");
            }
            if space.quota.used() > space.quota.limit() {
                return broken(5, "quota over its limit");
            }
            let entries = self
                .objects
                .iter()
                .flatten()
                .filter(|o| usize::from(o.payer.0) == index)
                .fold(Shares::NONE, |sum, o| sum.and(Shares::for_object(o.kind)));
            let held_for_children = self
                .spaces
                .iter()
                .filter(|s| s.live && s.parent.is_some_and(|p| usize::from(p.0) == index))
                .fold(Shares::NONE, |sum, s| sum.and(s.charged_shares));
            if space.quota.held() != entries.and(held_for_children) {
                return broken(5, "table entries held are not those of what it paid for");
            }
            if space.quota.held().exceeding(&space.quota.shares()).is_some() {
                return broken(5, "table entries over its shares");
            }
        }
        Ok(())
    }
}
