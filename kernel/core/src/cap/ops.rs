//! The capability operations, each as decode (checks, no effects) and perform (effects, no
//! failure).
//!
//! `decode_*` takes `&mut CapStore` only so that the decoded operation can hold the borrow
//! until `perform`: nothing can change the store between the checks and the mutation, so
//! `perform` may rely on every fact decode established. Decode changes nothing.
//!
//! Checks run in a fixed order, so each failure has one exact [`ErrorCode`]:
//! slot validity (`InvalidSlot`, source before destination), source occupied (`EmptySlot`),
//! destination empty (`SlotOccupied`), then the operation's own checks.

use super::{Badge, Cap, CapStore, ErrorCode, ObjectId, ObjectType, Pos, Reaper, Rights, SlotRef};
use super::{Object, Slot};

/// A checked copy or mint: place `cap` in `dst` as a child of `src`.
#[must_use = "a decoded operation does nothing until performed"]
pub struct CapMint<'s, O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize> {
    store: &'s mut CapStore<O, SPACES, SLOTS, OBJECTS>,
    src: Pos,
    dst: Pos,
    cap: Cap,
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CapMint<'_, O, SPACES, SLOTS, OBJECTS>
{
    /// The cap that will be placed.
    pub fn cap(&self) -> Cap {
        self.cap
    }

    pub fn perform(self) {
        self.store.place(self.dst, self.cap);
        self.store.link_child(self.src, self.dst);
    }
}

/// A checked move: `src`'s cap and its place in the derivation tree go to `dst`.
#[must_use = "a decoded operation does nothing until performed"]
pub struct CapMove<'s, O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize> {
    store: &'s mut CapStore<O, SPACES, SLOTS, OBJECTS>,
    src: Pos,
    dst: Pos,
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CapMove<'_, O, SPACES, SLOTS, OBJECTS>
{
    pub fn perform(self) {
        // The object's reference count is unchanged: one cap leaves, one arrives.
        let cap = self.store.slot_mut(self.src).cap.take();
        self.store.slot_mut(self.dst).cap = cap;
        self.store.relocate(self.src, self.dst);
    }
}

/// A checked delete of the cap in `slot`.
#[must_use = "a decoded operation does nothing until performed"]
pub struct CapDelete<'s, O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize> {
    store: &'s mut CapStore<O, SPACES, SLOTS, OBJECTS>,
    slot: Pos,
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CapDelete<'_, O, SPACES, SLOTS, OBJECTS>
{
    /// Delete the cap; its children are re-parented to its parent. If it was the last cap to
    /// its object, the object is destroyed: its payer is refunded and `reaper` gets its handle.
    pub fn perform(self, reaper: &mut impl Reaper<O>) {
        self.store.delete_at(self.slot, reaper);
    }
}

/// A checked revoke of the cap in `slot`.
#[must_use = "a decoded operation does nothing until performed"]
pub struct CapRevoke<'s, O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize> {
    store: &'s mut CapStore<O, SPACES, SLOTS, OBJECTS>,
    slot: Pos,
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CapRevoke<'_, O, SPACES, SLOTS, OBJECTS>
{
    /// Delete every cap derived from the cap in `slot`, in every space; the cap itself stays.
    ///
    /// Derived caps name the same object as the revoked cap (invariant 3), which survives, so
    /// revoke never destroys an object and needs no [`Reaper`]. (In seL4, revoking an untyped
    /// cap destroys the objects retyped from it; with quotas, that reclamation is
    /// `DestroySpace`'s job instead.)
    pub fn perform(self) {
        self.store.delete_descendants(self.slot, &mut |_, _| {});
    }
}

/// A checked object creation: quota, table entry and destination slot are all available.
#[must_use = "a decoded operation does nothing until performed"]
pub struct ObjectCreate<'s, O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize> {
    store: &'s mut CapStore<O, SPACES, SLOTS, OBJECTS>,
    dst: Pos,
    kind: ObjectType,
    cost: u64,
    entry: u32,
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    ObjectCreate<'_, O, SPACES, SLOTS, OBJECTS>
{
    /// Record the object the kernel built as `handle`, charge the destination space's quota,
    /// and place a root cap with all rights and no badge in the destination slot.
    ///
    /// The kernel builds the object between decode and perform (it knows, from decode, that
    /// the caller can pay for it).
    pub fn perform(self, handle: O) -> ObjectId {
        self.perform_with_rights(handle, Rights::ALL)
    }

    /// As [`ObjectCreate::perform`], but the root cap carries only `rights`: for an object
    /// made from another (a frame slice), whose cap must not have more rights than the cap
    /// it was made through.
    pub fn perform_with_rights(self, handle: O, rights: Rights) -> ObjectId {
        let payer = super::SpaceId(self.dst.space);
        let id = ObjectId(self.entry);
        if let Some(entry) = self.store.objects.get_mut(self.entry as usize) {
            *entry = Some(Object { handle, kind: self.kind, refs: 0, cost: self.cost, payer });
        }
        if let Some(space) = self.store.space_mut(payer) {
            space.quota.charge(self.cost);
            space.quota.take(super::Shares::for_object(self.kind));
        }
        self.store.place(self.dst, Cap { object: id, rights, badge: Badge::NONE });
        id
    }
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CapStore<O, SPACES, SLOTS, OBJECTS>
{
    /// A source and destination for copy, mint or move: both valid, source occupied,
    /// destination empty.
    fn src_dst(&self, src: SlotRef, dst: SlotRef) -> Result<(Pos, Pos, Cap), ErrorCode> {
        let (s, d) = (self.pos(src)?, self.pos(dst)?);
        let cap = self.cap_at(s)?;
        self.empty(d)?;
        Ok((s, d, cap))
    }

    fn empty(&self, p: Pos) -> Result<(), ErrorCode> {
        match self.slot(p) {
            Slot { cap: None, .. } => Ok(()),
            Slot { cap: Some(_), .. } => Err(ErrorCode::SlotOccupied),
        }
    }

    /// `CapMint`: derive from `src` into empty `dst` a cap with rights `src.rights ∩ rights`.
    ///
    /// `badge` `NONE` keeps the source's badge. A non-zero badge needs a badgeable kind
    /// (else `InvalidArgument`) and an unbadged source (else `BadgeAlreadySet`). Reply caps
    /// are one-shot and cannot be derived (`IllegalOperation`).
    pub fn decode_mint(
        &mut self,
        src: SlotRef,
        dst: SlotRef,
        rights: Rights,
        badge: Badge,
    ) -> Result<CapMint<'_, O, SPACES, SLOTS, OBJECTS>, ErrorCode> {
        let (s, d, from) = self.src_dst(src, dst)?;
        let kind = self.kind_of(from);
        if kind == ObjectType::Reply {
            return Err(ErrorCode::IllegalOperation);
        }
        let badge = if badge.is_set() {
            if !kind.is_badgeable() {
                return Err(ErrorCode::InvalidArgument);
            }
            if from.badge.is_set() {
                return Err(ErrorCode::BadgeAlreadySet);
            }
            badge
        } else {
            from.badge
        };
        let cap = Cap { object: from.object, rights: from.rights.intersection(rights), badge };
        Ok(CapMint { store: self, src: s, dst: d, cap })
    }

    /// `CapCopy`: a mint that keeps all rights and the badge. Same errors as mint, minus
    /// the badge ones.
    pub fn decode_copy(
        &mut self,
        src: SlotRef,
        dst: SlotRef,
    ) -> Result<CapMint<'_, O, SPACES, SLOTS, OBJECTS>, ErrorCode> {
        self.decode_mint(src, dst, Rights::ALL, Badge::NONE)
    }

    /// `CapMove`: move the cap in `src` to empty `dst`. Moving a cap onto its own slot is
    /// `SlotOccupied`.
    pub fn decode_move(
        &mut self,
        src: SlotRef,
        dst: SlotRef,
    ) -> Result<CapMove<'_, O, SPACES, SLOTS, OBJECTS>, ErrorCode> {
        let (s, d, _) = self.src_dst(src, dst)?;
        Ok(CapMove { store: self, src: s, dst: d })
    }

    /// `CapDelete`: the slot must be valid and occupied.
    pub fn decode_delete(
        &mut self,
        slot: SlotRef,
    ) -> Result<CapDelete<'_, O, SPACES, SLOTS, OBJECTS>, ErrorCode> {
        let p = self.pos(slot)?;
        self.cap_at(p)?;
        Ok(CapDelete { store: self, slot: p })
    }

    /// `CapRevoke`: the slot must be valid and occupied. Revoking a cap with no derived caps
    /// succeeds and does nothing.
    pub fn decode_revoke(
        &mut self,
        slot: SlotRef,
    ) -> Result<CapRevoke<'_, O, SPACES, SLOTS, OBJECTS>, ErrorCode> {
        let p = self.pos(slot)?;
        self.cap_at(p)?;
        Ok(CapRevoke { store: self, slot: p })
    }

    /// `ObjectCreate`: an object of `kind` costing `cost` bytes of kernel memory, charged to
    /// the quota of `dst`'s space. Errors, in order: `InvalidSlot`, `SlotOccupied`,
    /// `OutOfQuota`, `OutOfResources` (object table full).
    pub fn decode_create(
        &mut self,
        dst: SlotRef,
        kind: ObjectType,
        cost: u64,
    ) -> Result<ObjectCreate<'_, O, SPACES, SLOTS, OBJECTS>, ErrorCode> {
        let d = self.pos(dst)?;
        self.empty(d)?;
        let quota = self.quota(dst.space).ok_or(ErrorCode::InvalidSlot)?;
        quota.check(cost)?;
        quota.check_entries(super::Shares::for_object(kind))?;
        let free = self.objects.iter().position(Option::is_none).ok_or(ErrorCode::OutOfResources)?;
        let entry = u32::try_from(free).map_err(|_| ErrorCode::OutOfResources)?;
        Ok(ObjectCreate { store: self, dst: d, kind, cost, entry })
    }
}
