//! Creating and destroying capability spaces, and moving quota between them.
//!
//! A root space is made once, at boot, from the system manifest, with a limit that is the
//! kernel memory the whole system may use on its behalf. Every other space is made by a live
//! space (its parent), which is charged the child's whole limit plus the child's own cost.
//!
//! Destroying a space deletes every cap in it (destroying objects whose last cap that was).
//! Objects it paid for that are still alive, because their caps were given away, become the
//! parent's: the parent is refunded what it was charged for the child and charged what is
//! still outstanding. Likewise its child spaces become the parent's children. So quota is
//! conserved, and the parent gets its memory back as soon as those objects die.
//!
//! In this foundation destroying a space is an explicit kernel call (process exit); caps of
//! kind `CSpace` do not yet drive it through their reference count.

use super::{CapStore, ErrorCode, Pos, Quota, Reaper, Shares, Space, SpaceId};
use abi::tables::Table;

/// A checked creation of a child space.
#[must_use = "a decoded operation does nothing until performed"]
pub struct CreateSpace<'s, O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize> {
    store: &'s mut CapStore<O, SPACES, SLOTS, OBJECTS>,
    parent: SpaceId,
    child: SpaceId,
    limit: u64,
    charged: u64,
    shares: Shares,
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CreateSpace<'_, O, SPACES, SLOTS, OBJECTS>
{
    /// Charge the parent and bring the child space to life, empty.
    pub fn perform(self) -> SpaceId {
        let charged_shares = held_for_child(self.shares);
        if let Some(p) = self.store.space_mut(self.parent) {
            p.quota.charge(self.charged);
            p.quota.take(charged_shares);
        }
        if let Some(c) = self.store.space_mut(self.child) {
            *c = Space {
                live: true,
                parent: Some(self.parent),
                charged: self.charged,
                charged_shares,
                quota: Quota::with_shares(self.limit, self.shares),
            };
        }
        self.child
    }
}

/// A checked destruction of a non-root space.
#[must_use = "a decoded operation does nothing until performed"]
pub struct DestroySpace<'s, O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize> {
    store: &'s mut CapStore<O, SPACES, SLOTS, OBJECTS>,
    space: SpaceId,
    parent: SpaceId,
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    DestroySpace<'_, O, SPACES, SLOTS, OBJECTS>
{
    /// Delete every cap in the space, hand what it still pays for to its parent, and free it.
    pub fn perform(self, reaper: &mut impl Reaper<O>) {
        let (store, dying, parent) = (self.store, self.space, self.parent);
        for slot in 0..SLOTS {
            // In range: slot < SLOTS <= u32::MAX (asserted in `CapStore::new`).
            let p = Pos { space: dying.0, slot: u32::try_from(slot).unwrap_or(u32::MAX) };
            if store.slot(p).cap.is_some() {
                store.delete_at(p, reaper);
            }
        }
        for o in store.objects.iter_mut().flatten() {
            if o.payer == dying {
                o.payer = parent;
            }
        }
        for s in store.spaces.iter_mut() {
            if s.live && s.parent == Some(dying) {
                s.parent = Some(parent);
            }
        }
        let (charged, outstanding, charged_shares, held) = match store.space_mut(dying) {
            Some(s) => {
                let was = (s.charged, s.quota.used(), s.charged_shares, s.quota.held());
                *s = Space::DEAD;
                was
            }
            None => (0, 0, Shares::NONE, Shares::NONE),
        };
        if let Some(p) = store.space_mut(parent) {
            // outstanding <= child limit <= charged, so the parent's use only falls; the
            // same for the entries (held <= the child's shares < charged_shares).
            p.quota.refund(charged);
            p.quota.charge(outstanding);
            p.quota.give_back(charged_shares);
            p.quota.take(held);
        }
    }
}

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CapStore<O, SPACES, SLOTS, OBJECTS>
{
    /// Boot only: bring space `id` to life as a root with kernel-memory limit `limit` and
    /// the table entries `shares`. `IllegalOperation` if it is already live,
    /// `InvalidArgument` if out of range.
    pub fn create_root_space_with(&mut self, id: SpaceId, limit: u64, shares: Shares) -> Result<(), ErrorCode> {
        let s = self.space_mut(id).ok_or(ErrorCode::InvalidArgument)?;
        if s.live {
            return Err(ErrorCode::IllegalOperation);
        }
        *s = Space {
            live: true,
            parent: None,
            charged: 0,
            charged_shares: Shares::NONE,
            quota: Quota::with_shares(limit, shares),
        };
        Ok(())
    }

    /// [`CapStore::create_root_space_with`] every entry of every table.
    pub fn create_root_space(&mut self, id: SpaceId, limit: u64) -> Result<(), ErrorCode> {
        self.create_root_space_with(id, limit, Shares::ALL)
    }

    /// A child of `parent` with quota `limit` and the table shares it buys
    /// (`abi::tables::share`); the parent pays `limit + cost` (`cost` is the kernel memory of
    /// the space itself) and holds the child's shares and its entry in the space table.
    /// Errors: `InvalidArgument` (parent not live), `OutOfQuota` (bytes or shares),
    /// `OutOfResources` (no free space).
    pub fn decode_create_space(
        &mut self,
        parent: SpaceId,
        limit: u64,
        cost: u64,
    ) -> Result<CreateSpace<'_, O, SPACES, SLOTS, OBJECTS>, ErrorCode> {
        self.decode_create_space_with(parent, limit, cost, Shares::for_quota(limit))
    }

    /// [`CapStore::decode_create_space`] with the child's table shares given.
    pub fn decode_create_space_with(
        &mut self,
        parent: SpaceId,
        limit: u64,
        cost: u64,
        shares: Shares,
    ) -> Result<CreateSpace<'_, O, SPACES, SLOTS, OBJECTS>, ErrorCode> {
        let quota = self.quota(parent).ok_or(ErrorCode::InvalidArgument)?;
        let charged = limit.checked_add(cost).ok_or(ErrorCode::OutOfQuota)?;
        quota.check(charged)?;
        quota.check_entries(held_for_child(shares))?;
        let free = self.spaces.iter().position(|s| !s.live).ok_or(ErrorCode::OutOfResources)?;
        let child = SpaceId(u16::try_from(free).map_err(|_| ErrorCode::OutOfResources)?);
        Ok(CreateSpace { store: self, parent, child, limit, charged, shares })
    }

    /// Destroy a live, non-root space. Errors: `InvalidArgument` (not live),
    /// `IllegalOperation` (a root space).
    pub fn decode_destroy_space(
        &mut self,
        space: SpaceId,
    ) -> Result<DestroySpace<'_, O, SPACES, SLOTS, OBJECTS>, ErrorCode> {
        let s = self.spaces.get(usize::from(space.0)).filter(|s| s.live);
        let s = s.ok_or(ErrorCode::InvalidArgument)?;
        let parent = s.parent.ok_or(ErrorCode::IllegalOperation)?;
        Ok(DestroySpace { store: self, space, parent })
    }
}

/// What a parent holds for a child space with `shares`: those, and the child's own entry in
/// the space table.
const fn held_for_child(shares: Shares) -> Shares {
    shares.plus(Table::CSpaces, 1)
}
