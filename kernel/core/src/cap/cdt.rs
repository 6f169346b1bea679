//! The capability derivation tree: link maintenance for copy, mint, move, delete and revoke.
//!
//! Each slot stores its cap's links: `parent`, `first_child`, and `prev`/`next` among its
//! siblings. Roots (caps made by object creation) have no parent and no siblings. All of these
//! are O(1) except re-parenting on delete and relocation on move, which walk the children of
//! one cap, and revoke, which visits each descendant once.
//!
//! None of these functions can fail: they run in `perform` steps, after decode has checked
//! that the slots involved are valid and (as required) occupied or empty.

use super::{CapStore, Links, Pos, Reaper};

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CapStore<O, SPACES, SLOTS, OBJECTS>
{
    /// Make `child` (which has no parent or siblings, but may have children of its own) the
    /// first child of `parent`. The child's own children stay its children.
    pub(super) fn link_child(&mut self, parent: Pos, child: Pos) {
        let old_first = self.slot(parent).links.first_child;
        let grandchildren = self.slot(child).links.first_child;
        *self.links_mut(child) =
            Links { parent: Some(parent), first_child: grandchildren, prev: None, next: old_first };
        if let Some(f) = old_first {
            self.links_mut(f).prev = Some(child);
        }
        self.links_mut(parent).first_child = Some(child);
    }

    /// Take `p` out of its parent's child list (no-op for a root). Leaves `p.parent` set.
    fn detach_from_siblings(&mut self, p: Pos) {
        let Links { parent, prev, next, .. } = self.slot(p).links;
        match prev {
            Some(prev) => self.links_mut(prev).next = next,
            None => {
                if let Some(parent) = parent {
                    self.links_mut(parent).first_child = next;
                }
            }
        }
        if let Some(next) = next {
            self.links_mut(next).prev = prev;
        }
        let links = self.links_mut(p);
        links.prev = None;
        links.next = None;
    }

    /// Remove `p` from the tree, giving its children to its parent (or making them roots if
    /// `p` is a root). Afterwards `p` has no links. Rights and badges stay consistent because
    /// each child's rights are a subset of `p`'s, which are a subset of the parent's, and a
    /// badged parent's badge is also `p`'s and hence the children's.
    pub(super) fn unlink(&mut self, p: Pos) {
        let grandparent = self.slot(p).links.parent;
        self.detach_from_siblings(p);
        let mut child = self.slot(p).links.first_child;
        while let Some(c) = child {
            child = self.slot(c).links.next;
            let grandchildren = self.slot(c).links.first_child;
            *self.links_mut(c) = Links { first_child: grandchildren, ..Links::NONE };
            if let Some(g) = grandparent {
                self.link_child(g, c);
            }
        }
        *self.links_mut(p) = Links::NONE;
    }

    /// Move `from`'s links to `to` (which has none) and point every neighbour at `to`.
    pub(super) fn relocate(&mut self, from: Pos, to: Pos) {
        let links = self.slot(from).links;
        *self.links_mut(to) = links;
        *self.links_mut(from) = Links::NONE;
        match links.prev {
            Some(prev) => self.links_mut(prev).next = Some(to),
            None => {
                if let Some(parent) = links.parent {
                    self.links_mut(parent).first_child = Some(to);
                }
            }
        }
        if let Some(next) = links.next {
            self.links_mut(next).prev = Some(to);
        }
        let mut child = links.first_child;
        while let Some(c) = child {
            self.links_mut(c).parent = Some(to);
            child = self.slot(c).links.next;
        }
    }

    /// Delete every descendant of `root` (not `root` itself), deepest first, in every space.
    ///
    /// Iterative post-order walk: descend through first children to a leaf, delete it, step
    /// back to its parent. Each descendant is visited a bounded number of times, with no
    /// recursion (the kernel stack is small) and no allocation.
    pub(super) fn delete_descendants(&mut self, root: Pos, reaper: &mut impl Reaper<O>) {
        let mut cur = root;
        loop {
            if let Some(child) = self.slot(cur).links.first_child {
                cur = child;
                continue;
            }
            if cur == root {
                return;
            }
            let Some(parent) = self.slot(cur).links.parent else {
                // Unreachable while invariant 3 holds: every descendant has a parent.
                return;
            };
            self.delete_at(cur, reaper);
            cur = parent;
        }
    }
}
