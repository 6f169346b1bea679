//! Capability spaces, the derivation tree and kernel-memory quotas: the kernel's authority model.
//!
//! A *cap* is (kernel object, rights, badge). Each process has a capability space of *slots*;
//! all spaces live in one [`CapStore`], addressed by ([`SpaceId`], [`CapSlot`]). The store
//! does not know what an object *is*: it is generic over the kernel's object handle `O` and
//! only keeps, per object, its [`ObjectType`], a reference count and who paid for it.
//!
//! # Operations
//!
//! identify, copy, mint, move, delete, revoke, create (an object, charged to a quota), and
//! create/destroy a space. Each mutating operation is split into `decode_*` (every check; may
//! fail; takes `&mut self` but changes nothing) and the decoded operation's `perform` (mutates;
//! cannot fail). The decoded operation borrows the store mutably, so the borrow checker
//! guarantees that nothing changes between the checks and the mutation.
//!
//! # Design, compared with seL4
//!
//! - **Storage.** seL4 keeps caps in CNode objects that user space allocates from untyped
//!   memory and arranges into a guarded radix tree. We keep a fixed number of flat spaces,
//!   each a fixed-size array of slots, in one statically sized store (const generics: the
//!   kernel has no heap). A process addresses its caps by a flat index, not a CPtr with
//!   guard bits. Simpler to check and to test; the cost is that space sizes are fixed at
//!   build time.
//! - **Derivation tree.** seL4's mapping database (MDB) is a doubly linked list in tree
//!   pre-order, with parenthood recomputed from object addresses and badge/`firstBadged`
//!   bits. We store the tree explicitly (parent, first child, siblings) in each slot.
//!   Copy and mint always make the new cap a *child* of its source, so revoking a cap deletes
//!   every copy made from it, badged or not (seL4 makes copies of badged endpoint caps
//!   siblings; we found "revoke removes everything derived" easier to state and test).
//!   Deleting a cap re-parents its children to its parent, as deleting from the MDB does, so
//!   an ancestor's revoke still reaches them.
//! - **Kernel memory.** seL4 makes user space pay for every kernel object by retyping untyped
//!   memory, and reclaims it by revoking the untyped cap. We use a per-space kernel-memory
//!   [`Quota`] instead: creating an object charges the creator's quota, and destroying it
//!   (deleting its last cap) refunds the same account, wherever the caps went. A child space's
//!   limit is charged to its parent. Why: untyped retype needs user-level allocators, watermark
//!   bookkeeping and alignment rules before the first process can make an endpoint; a quota
//!   gives the same guarantee (no user action grows kernel memory without paying for it, and
//!   running out is `OutOfQuota`, never a panic) with a fraction of the mechanism. What we
//!   give up: seL4's "revoke the untyped and every object in it is gone" bulk reclamation,
//!   and user control of physical placement. Frames and untyped objects are charged to the
//!   same quota for now.
//! - **Reference counts.** seL4 finds "last cap to this object" by looking at MDB neighbours.
//!   We count caps per object; when the count reaches zero the store refunds the payer and
//!   hands the object's handle to a [`Reaper`] supplied by the kernel, which frees its memory.
//!
//! # Invariants
//!
//! Kept by [`CapStore`] and checked by [`CapStore::check_invariants`] after every operation in
//! the property tests:
//!
//! 1. A derived cap's rights are a subset of its parent's (so, transitively, of its original).
//! 2. If a parent is badged, its children carry the same badge; only endpoint and
//!    notification caps are ever badged. No operation changes the badge of a cap.
//! 3. Derivation links are consistent: every link names an occupied slot, parent and child
//!    lists agree, sibling lists are doubly linked, a parent chain ends at a root, empty
//!    slots have no links.
//! 4. Every cap names a live object, and each object's count equals the caps naming it.
//! 5. Each live space's quota `used` equals the costs of the live objects it paid for plus the
//!    charges of its live child spaces, and `used <= limit`; likewise the table entries it
//!    holds are those of the live objects it paid for plus those held for its live child
//!    spaces, and never more than its shares.
#![deny(
    clippy::indexing_slicing,
    reason = "no kernel panic reachable from user input; indexing is confined to the accessors"
)]
#![deny(clippy::unwrap_used, reason = "no kernel panic reachable from user input")]
#![deny(clippy::arithmetic_side_effects, reason = "no overflow panics in the kernel")]

mod cdt;
mod check;
mod cost;
mod ops;
mod quota;
mod space;
#[cfg(test)]
mod tests;

pub use abi::{Badge, CapSlot, ErrorCode, ObjectType, Rights};
pub use check::Violation;
pub use ops::{CapDelete, CapMint, CapMove, CapRevoke, ObjectCreate};
pub use quota::{Quota, Shares};
pub use space::{CreateSpace, DestroySpace};

/// Names one capability space in a [`CapStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpaceId(u16);

impl SpaceId {
    /// The space at `index` in the store (whether it is live is checked at use).
    pub const fn new(index: u16) -> SpaceId {
        SpaceId(index)
    }

    /// The index in the store.
    pub const fn index(self) -> u16 {
        self.0
    }
}

/// A slot in some space, as named by an operation's caller (not yet checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotRef {
    pub space: SpaceId,
    pub slot: CapSlot,
}

impl SlotRef {
    /// Slot `slot` of space `space`.
    pub const fn new(space: SpaceId, slot: u32) -> SlotRef {
        SlotRef { space, slot: CapSlot::new(slot) }
    }
}

/// Names one object in a [`CapStore`]'s object table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId(u32);

impl ObjectId {
    /// The index in the object table.
    pub const fn index(self) -> u32 {
        self.0
    }
}

/// A capability: which object, with what rights, under which badge.
///
/// # Invariants
/// Fields are private and only the store makes caps: `object` names a live entry of the store
/// that holds the cap, and `badge` is `NONE` unless the object's kind is badgeable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    object: ObjectId,
    rights: Rights,
    badge: Badge,
}

impl Cap {
    /// The object the cap names.
    pub const fn object(&self) -> ObjectId {
        self.object
    }
    /// What the cap allows.
    pub const fn rights(&self) -> Rights {
        self.rights
    }
    /// The cap's badge (`Badge::NONE` if unbadged).
    pub const fn badge(&self) -> Badge {
        self.badge
    }
}

/// What `CapIdentify` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapInfo {
    pub kind: ObjectType,
    pub rights: Rights,
    pub badge: Badge,
}

/// What the kernel needs to invoke the object behind a cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup<O> {
    pub kind: ObjectType,
    pub handle: O,
    pub object: ObjectId,
    pub rights: Rights,
    pub badge: Badge,
}

/// Told about each object whose last cap was deleted, so the kernel can free its memory.
///
/// Called from `perform` steps, which cannot fail, so reaping cannot fail either. By the time
/// it is called the store has forgotten the object and refunded its payer.
pub trait Reaper<O> {
    fn reap(&mut self, kind: ObjectType, handle: O);
}

impl<O, F: FnMut(ObjectType, O)> Reaper<O> for F {
    fn reap(&mut self, kind: ObjectType, handle: O) {
        self(kind, handle)
    }
}

/// A checked slot position in a store: `space < SPACES`, `slot < SLOTS`.
///
/// Private to this module, and only made by [`CapStore::pos`] (and by `check_invariants` and
/// the `for_each_*` loops from in-range counters), so the accessors' indexing cannot panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    space: u16,
    slot: u32,
}

/// Derivation-tree links of one slot. All `None` for an empty slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Links {
    parent: Option<Pos>,
    first_child: Option<Pos>,
    prev: Option<Pos>,
    next: Option<Pos>,
}

impl Links {
    const NONE: Links = Links { parent: None, first_child: None, prev: None, next: None };
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    cap: Option<Cap>,
    links: Links,
}

impl Slot {
    const EMPTY: Slot = Slot { cap: None, links: Links::NONE };
}

/// One entry of the object table.
#[derive(Clone, Copy, Debug)]
struct Object<O> {
    handle: O,
    kind: ObjectType,
    /// Caps naming this object, in any space. Never 0 for a live entry.
    refs: u32,
    /// Bytes charged to `payer` for this object.
    cost: u64,
    payer: SpaceId,
}

#[derive(Clone, Copy, Debug)]
struct Space {
    live: bool,
    /// The space whose quota paid `charged` for this one; `None` for a root space.
    parent: Option<SpaceId>,
    /// What the parent was charged: this space's limit plus its own cost.
    charged: u64,
    /// The table entries the parent holds for this space: its shares and its own entry.
    charged_shares: Shares,
    quota: Quota,
}

impl Space {
    const DEAD: Space =
        Space { live: false, parent: None, charged: 0, charged_shares: Shares::NONE, quota: Quota::EMPTY };
}

/// Every capability space, every cap, the derivation tree and the object table.
///
/// `SPACES` spaces of `SLOTS` slots each; at most `OBJECTS` live objects. `O` is the kernel's
/// handle for an object (an index into its per-kind storage, say); the store only copies it.
///
/// See the module documentation for the invariants this type keeps.
pub struct CapStore<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize> {
    spaces: [Space; SPACES],
    slots: [[Slot; SLOTS]; SPACES],
    objects: [Option<Object<O>>; OBJECTS],
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize> Default
    for CapStore<O, SPACES, SLOTS, OBJECTS>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CapStore<O, SPACES, SLOTS, OBJECTS>
{
    const NO_OBJECT: Option<Object<O>> = None;

    /// An empty store with no live spaces. `const`, so the kernel can put it in a `static`.
    pub const fn new() -> Self {
        // Slot indices and space ids must fit their types, and refcounts must fit u32.
        const { assert!(SPACES <= u16::MAX as usize && SLOTS <= u32::MAX as usize) };
        const { assert!(OBJECTS <= u32::MAX as usize) };
        CapStore {
            spaces: [Space::DEAD; SPACES],
            slots: [[Slot::EMPTY; SLOTS]; SPACES],
            objects: [Self::NO_OBJECT; OBJECTS],
        }
    }

    // ---- checked positions and the only indexing in the module ----

    /// Check a caller's slot reference: `InvalidSlot` if the space is not live or the index
    /// is outside it.
    fn pos(&self, r: SlotRef) -> Result<Pos, ErrorCode> {
        let live = self.spaces.get(usize::from(r.space.0)).is_some_and(|s| s.live);
        if live && (r.slot.index() as usize) < SLOTS {
            Ok(Pos { space: r.space.0, slot: r.slot.index() })
        } else {
            Err(ErrorCode::InvalidSlot)
        }
    }

    #[allow(clippy::indexing_slicing, reason = "Pos is in range by construction")]
    fn slot(&self, p: Pos) -> &Slot {
        &self.slots[usize::from(p.space)][p.slot as usize]
    }

    #[allow(clippy::indexing_slicing, reason = "Pos is in range by construction")]
    fn slot_mut(&mut self, p: Pos) -> &mut Slot {
        &mut self.slots[usize::from(p.space)][p.slot as usize]
    }

    fn links_mut(&mut self, p: Pos) -> &mut Links {
        &mut self.slot_mut(p).links
    }

    fn object(&self, id: ObjectId) -> Option<&Object<O>> {
        self.objects.get(id.0 as usize).and_then(Option::as_ref)
    }

    fn space_mut(&mut self, id: SpaceId) -> Option<&mut Space> {
        self.spaces.get_mut(usize::from(id.0))
    }

    /// The cap in a checked, occupied slot, or `EmptySlot`.
    fn cap_at(&self, p: Pos) -> Result<Cap, ErrorCode> {
        self.slot(p).cap.ok_or(ErrorCode::EmptySlot)
    }

    /// The kind of the object a cap names. Caps name live objects (invariant 4); the
    /// fallback is never taken.
    fn kind_of(&self, cap: Cap) -> ObjectType {
        self.object(cap.object).map_or(ObjectType::Reply, |o| o.kind)
    }

    // ---- queries ----

    /// `CapIdentify`: the kind, rights and badge of the cap in `r`.
    pub fn identify(&self, r: SlotRef) -> Result<CapInfo, ErrorCode> {
        let cap = self.cap_at(self.pos(r)?)?;
        Ok(CapInfo { kind: self.kind_of(cap), rights: cap.rights, badge: cap.badge })
    }

    /// Resolve the cap in `r` for invoking its object.
    pub fn lookup(&self, r: SlotRef) -> Result<Lookup<O>, ErrorCode> {
        let cap = self.cap_at(self.pos(r)?)?;
        let object = self.object(cap.object).ok_or(ErrorCode::EmptySlot)?;
        Ok(Lookup {
            kind: object.kind,
            handle: object.handle,
            object: cap.object,
            rights: cap.rights,
            badge: cap.badge,
        })
    }

    /// The cap in `r`, if the slot is valid and occupied.
    pub fn cap(&self, r: SlotRef) -> Option<Cap> {
        self.pos(r).ok().and_then(|p| self.slot(p).cap)
    }

    /// The slot `r`'s cap was derived from, if any.
    pub fn parent_of(&self, r: SlotRef) -> Option<SlotRef> {
        let p = self.pos(r).ok()?;
        self.slot(p).links.parent.map(Pos::to_ref)
    }

    /// A live space's quota.
    pub fn quota(&self, space: SpaceId) -> Option<Quota> {
        self.spaces.get(usize::from(space.0)).filter(|s| s.live).map(|s| s.quota)
    }

    /// Whether `ancestor` is a strict ancestor of `space` in the quota tree (its parent,
    /// its parent's parent, ...). Both must be live.
    ///
    /// The kernel lets a cap to space `S` live only in a strict ancestor of `S`: then no
    /// space can hold, directly or through others, the only cap to itself, which would
    /// keep it and everything in it alive forever (a leak the syscall fuzzer found).
    pub fn is_strict_ancestor(&self, ancestor: SpaceId, space: SpaceId) -> bool {
        let mut cursor = self.spaces.get(usize::from(space.0)).filter(|s| s.live).and_then(|s| s.parent);
        // The tree has at most SPACES levels; the bound keeps a corrupted tree from looping.
        for _ in 0..SPACES {
            match cursor {
                Some(parent) if parent == ancestor => return true,
                Some(parent) => cursor = self.spaces.get(usize::from(parent.0)).filter(|s| s.live).and_then(|s| s.parent),
                None => return false,
            }
        }
        false
    }

    /// Number of caps naming `object` (0 if it is not live).
    pub fn refs(&self, object: ObjectId) -> u32 {
        self.object(object).map_or(0, |o| o.refs)
    }

    /// Number of live objects.
    pub fn live_objects(&self) -> usize {
        self.objects.iter().filter(|o| o.is_some()).count()
    }

    // ---- internal mutation shared by the operations ----

    /// Place `cap` in empty slot `p`, counting the new reference. Precondition: the slot is
    /// empty and the object is live.
    fn place(&mut self, p: Pos, cap: Cap) {
        if let Some(Some(o)) = self.objects.get_mut(cap.object.0 as usize) {
            o.refs = o.refs.saturating_add(1);
        }
        self.slot_mut(p).cap = Some(cap);
    }

    /// Empty slot `p` (which must have no links left), dropping its reference; if it was
    /// the last, forget the object, refund its payer and tell the reaper.
    fn clear(&mut self, p: Pos, reaper: &mut impl Reaper<O>) {
        let Some(cap) = self.slot_mut(p).cap.take() else { return };
        let Some(entry) = self.objects.get_mut(cap.object.0 as usize) else { return };
        let Some(o) = entry.as_mut() else { return };
        o.refs = o.refs.saturating_sub(1);
        if o.refs > 0 {
            return;
        }
        let dead = *o;
        *entry = None;
        if let Some(payer) = self.space_mut(dead.payer) {
            payer.quota.refund(dead.cost);
            payer.quota.give_back(Shares::for_object(dead.kind));
        }
        reaper.reap(dead.kind, dead.handle);
    }

    /// Delete the cap in occupied slot `p`: re-parent its children, unlink it, clear it.
    fn delete_at(&mut self, p: Pos, reaper: &mut impl Reaper<O>) {
        self.unlink(p);
        self.clear(p, reaper);
    }
}

impl Pos {
    fn to_ref(self) -> SlotRef {
        SlotRef { space: SpaceId(self.space), slot: CapSlot::new(self.slot) }
    }
}
