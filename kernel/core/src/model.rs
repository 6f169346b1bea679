//! An executable reference model of what a process can name: caps, the objects they name,
//! and the capability spaces it makes, with their lifetimes.
//!
//! The model is written from the ABI's rules, not from the kernel's code (it shares no data
//! structure with `cap::CapStore`), so that running the same random sequence against the
//! kernel and the model and comparing, after every step, every error code and every slot of
//! every space (`userland/leak-suite`, case DIFF-001) is a differential test of the kernel:
//!
//! - a *driver* space (index 0 here) holds a pool of [`POOL`] slots and a kernel-memory
//!   quota; it creates endpoints, notifications, frames, threads, address spaces and child
//!   capability spaces, copies, mints, moves, deletes and revokes in its pool, and gives
//!   (mints) caps into its children's slots;
//! - rights only shrink, a badge is set once and only on endpoints and notifications;
//!   copy, mint and give make a child in the derivation tree; delete re-parents its
//!   children; revoke deletes every descendant in every space;
//! - a cap to a capability space lives only in a strict ancestor of that space, so the
//!   driver can never give one to a child (`IllegalOperation`);
//! - the driver's quota also buys it a share of each kernel table (`abi::tables::share`):
//!   live objects, live endpoints, live notifications and live child spaces (each its own
//!   entry; with no quota of their own, children hold no shares) never exceed their share,
//!   and a create that would is `OutOfQuota`, as one beyond the bytes is;
//! - a thread starts once (`IllegalOperation` after), in a child space and an address space
//!   the driver holds caps to, and stops when killed, when its last cap goes, when its
//!   address space dies or when its capability space does: no thread outlives the space its
//!   caps are named in (the driver has a budget, so the threads it makes never get CPU and
//!   their state changes only by these steps);
//! - a driver with a CPU budget gives a thread a budget out of its own: the same fraction
//!   of the CPU in the driver's period, rounded up, keeping at least the minimum
//!   (`InsufficientRights` otherwise; "no budget" is never its to give), and gets it back
//!   when the thread is configured again or dies; so CPU time is never created;
//! - a notification's word gathers the badges signalled on it (1 for an unbadged cap)
//!   until a poll takes it, and a new notification starts at 0 whatever index it gets; the
//!   driver is the only thread that runs, so a non-blocking send or receive on an endpoint
//!   finds nobody (`WouldBlock`);
//! - an object dies with its last cap and its cost goes back to the quota; a child space
//!   dies with the last cap to it, and every cap in it goes (their objects too, when those
//!   were their last caps). Indices of dead objects and spaces are reused by the kernel;
//!   the model's are not, so a kernel reference that outlived its object shows as a slot
//!   naming the wrong object.
//!
//! Error codes follow the kernel's documented check order (`kcore::cap::ops`, the syscall
//! handlers): slots, then the cspace cap of a give, then placement, then source and
//! destination occupancy, then badges, then quota.

use crate::cap::{ErrorCode, ObjectType, Rights};
use abi::tables::{Table, share};

/// Slots of the driver's pool, and of each child space (slots `1..=POOL` there).
pub const POOL: usize = 8;
/// Child capability spaces alive at once.
pub const CHILDREN: usize = 3;
/// Caps the model can hold: every slot of every space.
const CAPS: usize = POOL * (1 + CHILDREN);
/// Objects alive at once: one per cap at most, plus the dead-but-recorded ones.
const OBJECTS: usize = CAPS;

/// What the kernel charges for each kind the model creates (a child space gets no quota of
/// its own: it costs its 4 KiB).
pub const fn cost(kind: ObjectType) -> u64 {
    match kind {
        ObjectType::Endpoint | ObjectType::Notification => 64,
        ObjectType::Thread => 2 * 4096,
        ObjectType::AddressSpace => 4 * 4096,
        _ => 4096,
    }
}

/// A slot of the model: the driver's pool (`space` 0) or a child's (`space` 1..=CHILDREN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub space: usize,
    pub slot: usize,
}

/// One step of a sequence. Slots are pool indices; `child` is the pool slot of the
/// cspace cap a give goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create { kind: ObjectType, at: usize },
    Mint { from: usize, to: usize, rights: Rights, badge: u64 },
    Move { from: usize, to: usize },
    Delete { at: usize },
    Revoke { at: usize },
    Give { from: usize, child: usize, to: usize, rights: Rights, badge: u64 },
    /// `ThreadStart` of the thread in `thread` in the address space in `aspace`, with the
    /// child capability space in `child` as its caps.
    Start { thread: usize, aspace: usize, child: usize },
    /// `ThreadKill` of the thread in `thread`.
    Kill { thread: usize },
    /// `Signal` through the notification cap in `at`.
    Signal { at: usize },
    /// `Poll` through the notification cap in `at`: its word, cleared.
    Poll { at: usize },
    /// `NbSend` of an empty message through the endpoint cap in `at`.
    NbSend { at: usize },
    /// `NbRecv` through the endpoint cap in `at`.
    NbRecv { at: usize },
    /// `ThreadConfigure` of the thread in `thread` at the driver's priority, with a budget
    /// of `budget_us` per `period_us` (both 0: none) and no fault endpoint.
    Configure { thread: usize, budget_us: u64, period_us: u64 },
}

/// Where a thread object is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Inactive,
    /// Started in model child `child`'s space and address-space object `aspace`.
    Running { child: usize, aspace: u32 },
    Dead,
}

/// A cap as the model holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelCap {
    /// The model object it names (never reused, so a stale name cannot alias).
    pub object: u32,
    pub kind: ObjectType,
    pub rights: Rights,
    pub badge: u64,
    parent: Option<usize>,
}

#[derive(Clone, Copy, Debug)]
struct Object {
    id: u32,
    kind: ObjectType,
    /// For a capability space: the model child it is.
    child: Option<usize>,
    /// For a thread: where it is in its life.
    life: Life,
    /// For a thread: its budget (µs per period) if it was given one, and the µs of the
    /// driver's budget that went into it.
    budget: Option<(u64, u64)>,
    donated_us: u64,
    /// For a notification: its word.
    word: u64,
}

/// The model's whole state.
pub struct Model {
    quota: u64,
    /// The driver's own budget (µs per period), if it has one.
    budget: Option<(u64, u64)>,
    used: u64,
    /// The cap in each slot: index into `caps`.
    slots: [[Option<usize>; POOL]; 1 + CHILDREN],
    caps: [Option<ModelCap>; CAPS],
    objects: [Option<Object>; OBJECTS],
    live_children: [bool; CHILDREN],
    next_object: u32,
}

/// What an operation did, besides its result: the object a create made (and, for a
/// capability space, which child it is), so the caller can learn the kernel's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effect {
    pub created: Option<(u32, Option<usize>)>,
    /// What a poll returned.
    pub word: Option<u64>,
}

impl Model {
    /// A driver with `quota` bytes, nothing created yet.
    pub const fn new(quota: u64) -> Model {
        Model {
            quota,
            budget: None,
            used: 0,
            slots: [[None; POOL]; 1 + CHILDREN],
            caps: [None; CAPS],
            objects: [None; OBJECTS],
            live_children: [false; CHILDREN],
            next_object: 1,
        }
    }

    /// This model with a driver whose own budget is `budget_us` per `period_us`.
    pub const fn with_budget(mut self, budget_us: u64, period_us: u64) -> Model {
        self.budget = Some((budget_us, period_us));
        self
    }

    /// The cap in `place`, if any.
    pub fn cap(&self, place: Place) -> Option<ModelCap> {
        let index = (*self.slots.get(place.space)?.get(place.slot)?)?;
        *self.caps.get(index)?
    }

    /// Whether model child `child` is alive.
    pub fn child_live(&self, child: usize) -> bool {
        self.live_children.get(child).copied().unwrap_or(false)
    }

    /// Whether model object `id` is alive.
    pub fn object_live(&self, id: u32) -> bool {
        self.object_index(id).is_some()
    }

    /// Bytes of quota in use.
    pub const fn used(&self) -> u64 {
        self.used
    }

    /// Whether the driver's table shares have room for one more object of `kind`.
    fn share_left(&self, kind: ObjectType) -> bool {
        let live = |of: &dyn Fn(ObjectType) -> bool| self.objects.iter().flatten().filter(|o| of(o.kind)).count() as u64;
        let table = match kind {
            ObjectType::CSpace => Some(Table::CSpaces),
            _ => Table::of(kind),
        };
        let room = |table: Table, live: u64| live < u64::from(share(table, self.quota));
        room(Table::Objects, live(&|_| true)) && table.is_none_or(|table| room(table, live(&|other| other == kind)))
    }

    fn cap_at(&self, space: usize, slot: usize) -> Option<(usize, ModelCap)> {
        let index = (*self.slots.get(space)?.get(slot)?)?;
        Some((index, (*self.caps.get(index)?)?))
    }

    fn object_index(&self, id: u32) -> Option<usize> {
        self.objects.iter().position(|o| o.is_some_and(|o| o.id == id))
    }

    fn refs(&self, id: u32) -> usize {
        self.caps.iter().flatten().filter(|c| c.object == id).count()
    }

    fn place_cap(&mut self, space: usize, slot: usize, cap: ModelCap) {
        let Some(free) = self.caps.iter().position(Option::is_none) else { return };
        if let Some(entry) = self.caps.get_mut(free) {
            *entry = Some(cap);
        }
        if let Some(entry) = self.slots.get_mut(space).and_then(|s| s.get_mut(slot)) {
            *entry = Some(free);
        }
    }

    /// Applies `op`: the error the kernel must answer, or what it did.
    pub fn apply(&mut self, op: Op) -> Result<Effect, ErrorCode> {
        let none = Effect { created: None, word: None };
        match op {
            Op::Create { kind, at } => {
                if self.cap_at(0, at).is_some() {
                    return Err(ErrorCode::SlotOccupied);
                }
                if self.used.saturating_add(cost(kind)) > self.quota || !self.share_left(kind) {
                    return Err(ErrorCode::OutOfQuota);
                }
                let child = if kind == ObjectType::CSpace {
                    let free = self.live_children.iter().position(|live| !live).ok_or(ErrorCode::OutOfResources)?;
                    Some(free)
                } else {
                    None
                };
                let Some(entry) = self.objects.iter().position(Option::is_none) else { return Err(ErrorCode::OutOfResources) };
                let id = self.next_object;
                self.next_object = self.next_object.saturating_add(1);
                if let Some(object) = self.objects.get_mut(entry) {
                    *object = Some(Object { id, kind, child, life: Life::Inactive, budget: None, donated_us: 0, word: 0 });
                }
                if let Some(child) = child
                    && let Some(live) = self.live_children.get_mut(child)
                {
                    *live = true;
                    if let Some(slots) = self.slots.get_mut(child + 1) {
                        *slots = [None; POOL];
                    }
                }
                self.used = self.used.saturating_add(cost(kind));
                self.place_cap(0, at, ModelCap { object: id, kind, rights: Rights::ALL, badge: 0, parent: None });
                Ok(Effect { created: Some((id, child)), word: None })
            }
            Op::Mint { from, to, rights, badge } => {
                self.derive(from, 0, to, rights, badge)?;
                Ok(none)
            }
            Op::Give { from, child, to, rights, badge } => {
                let Some((_, through)) = self.cap_at(0, child) else { return Err(ErrorCode::EmptySlot) };
                if through.kind != ObjectType::CSpace {
                    return Err(ErrorCode::WrongObjectType);
                }
                if !Rights::WRITE.is_subset_of(through.rights) {
                    return Err(ErrorCode::InsufficientRights);
                }
                let space = self.objects.iter().flatten().find(|o| o.id == through.object).and_then(|o| o.child).ok_or(ErrorCode::PeerGone)?;
                self.derive(from, space + 1, to, rights, badge)?;
                Ok(none)
            }
            Op::Move { from, to } => {
                let Some((index, _)) = self.cap_at(0, from) else { return Err(ErrorCode::EmptySlot) };
                if self.cap_at(0, to).is_some() {
                    return Err(ErrorCode::SlotOccupied);
                }
                if let Some(pool) = self.slots.get_mut(0) {
                    if let Some(entry) = pool.get_mut(from) {
                        *entry = None;
                    }
                    if let Some(entry) = pool.get_mut(to) {
                        *entry = Some(index);
                    }
                }
                Ok(none)
            }
            Op::Delete { at } => {
                let Some((index, _)) = self.cap_at(0, at) else { return Err(ErrorCode::EmptySlot) };
                self.remove(index);
                Ok(none)
            }
            Op::Start { thread, aspace, child } => {
                let thread = self.invoke(thread, ObjectType::Thread)?;
                let aspace = self.invoke(aspace, ObjectType::AddressSpace)?;
                let space = self.invoke(child, ObjectType::CSpace)?;
                let child = self.objects.iter().flatten().find(|o| o.id == space).and_then(|o| o.child).ok_or(ErrorCode::PeerGone)?;
                let object = self.objects.iter_mut().flatten().find(|o| o.id == thread).ok_or(ErrorCode::PeerGone)?;
                if object.life != Life::Inactive {
                    return Err(ErrorCode::IllegalOperation);
                }
                object.life = Life::Running { child, aspace };
                Ok(none)
            }
            Op::Signal { at } => {
                let (notification, badge) = self.invoke_with(at, ObjectType::Notification, Rights::WRITE)?;
                if let Some(object) = self.objects.iter_mut().flatten().find(|o| o.id == notification) {
                    object.word |= if badge == 0 { 1 } else { badge };
                }
                Ok(none)
            }
            Op::Poll { at } => {
                let (notification, _) = self.invoke_with(at, ObjectType::Notification, Rights::READ)?;
                let word = self.objects.iter_mut().flatten().find(|o| o.id == notification).map_or(0, |o| core::mem::take(&mut o.word));
                Ok(Effect { created: None, word: Some(word) })
            }
            Op::NbSend { at } => {
                self.invoke_with(at, ObjectType::Endpoint, Rights::WRITE)?;
                Err(ErrorCode::WouldBlock)
            }
            Op::NbRecv { at } => {
                self.invoke_with(at, ObjectType::Endpoint, Rights::READ)?;
                Err(ErrorCode::WouldBlock)
            }
            Op::Kill { thread } => {
                let thread = self.invoke(thread, ObjectType::Thread)?;
                self.end_thread(thread);
                Ok(none)
            }
            Op::Configure { thread, budget_us, period_us } => {
                use abi::syscall::budget::{MAX_PERIOD_US, MIN_US};
                let thread = self.invoke(thread, ObjectType::Thread)?;
                let Some(object) = self.objects.iter().flatten().find(|o| o.id == thread).copied() else { return Err(ErrorCode::PeerGone) };
                if object.life == Life::Dead {
                    return Err(ErrorCode::IllegalOperation);
                }
                let requested = match (budget_us, period_us) {
                    (0, 0) => None,
                    (budget, period) if budget < MIN_US || budget > period || period > MAX_PERIOD_US => return Err(ErrorCode::InvalidArgument),
                    wanted => Some(wanted),
                };
                let donated_us = match (self.budget, requested) {
                    (None, _) => 0,
                    (Some(_), None) => return Err(ErrorCode::InsufficientRights),
                    (Some((own, own_period)), Some((budget, period))) => {
                        let cost = (u128::from(budget) * u128::from(own_period)).div_ceil(u128::from(period));
                        let cost = u64::try_from(cost).map_err(|_| ErrorCode::InsufficientRights)?;
                        if cost.saturating_add(MIN_US) > own.saturating_add(object.donated_us) {
                            return Err(ErrorCode::InsufficientRights);
                        }
                        self.budget = Some((own + object.donated_us - cost, own_period));
                        cost
                    }
                };
                if let Some(object) = self.objects.iter_mut().flatten().find(|o| o.id == thread) {
                    object.budget = requested;
                    object.donated_us = donated_us;
                }
                Ok(none)
            }
            Op::Revoke { at } => {
                let Some((index, _)) = self.cap_at(0, at) else { return Err(ErrorCode::EmptySlot) };
                // Descendants only; the revoked cap keeps the object alive, so none dies.
                let doomed: [bool; CAPS] = core::array::from_fn(|other| other != index && self.descends(other, index));
                for (other, dies) in doomed.iter().enumerate() {
                    if *dies {
                        self.remove(other);
                    }
                }
                Ok(none)
            }
        }
    }

    /// The object a pool cap names, to invoke it as `kind` (which needs `WRITE`): the
    /// kernel's lookup order, empty slot, then kind, then rights.
    fn invoke(&self, slot: usize, kind: ObjectType) -> Result<u32, ErrorCode> {
        self.invoke_with(slot, kind, Rights::WRITE).map(|(object, _)| object)
    }

    /// The object and badge of a pool cap, to invoke it as `kind` with `rights`.
    fn invoke_with(&self, slot: usize, kind: ObjectType, rights: Rights) -> Result<(u32, u64), ErrorCode> {
        let Some((_, cap)) = self.cap_at(0, slot) else { return Err(ErrorCode::EmptySlot) };
        if cap.kind != kind {
            return Err(ErrorCode::WrongObjectType);
        }
        if !rights.is_subset_of(cap.rights) {
            return Err(ErrorCode::InsufficientRights);
        }
        Ok((cap.object, cap.badge))
    }

    /// A thread dies (killed, its space or address space gone, its last cap deleted): what
    /// the driver's budget gave it comes back.
    fn end_thread(&mut self, id: u32) {
        let Some(object) = self.objects.iter_mut().flatten().find(|o| o.id == id) else { return };
        object.life = Life::Dead;
        let back = core::mem::take(&mut object.donated_us);
        if let Some((own, period)) = self.budget {
            self.budget = Some((own.saturating_add(back), period));
        }
    }

    /// The driver's budget left, µs per period (`None`: it has none).
    pub const fn budget(&self) -> Option<(u64, u64)> {
        self.budget
    }

    /// For the thread cap in pool slot `slot`: whether the thread is running, and whether
    /// it was given a budget. `None` if the slot holds no thread cap.
    pub fn thread_at(&self, slot: usize) -> Option<(bool, bool)> {
        let cap = self.cap(Place { space: 0, slot }).filter(|cap| cap.kind == ObjectType::Thread)?;
        let object = self.objects.iter().flatten().find(|o| o.id == cap.object)?;
        Some((matches!(object.life, Life::Running { .. }), object.budget.is_some()))
    }

    /// The driver's pool slots holding a cap of `kind`.
    pub fn pool_slots_holding(&self, kind: ObjectType) -> impl Iterator<Item = usize> + '_ {
        (0..POOL).filter(move |&slot| self.cap(Place { space: 0, slot }).is_some_and(|cap| cap.kind == kind))
    }

    /// Threads running in model child `child`'s space.
    pub fn running_in(&self, child: usize) -> usize {
        self.objects.iter().flatten().filter(|o| matches!(o.life, Life::Running { child: c, .. } if c == child)).count()
    }

    /// Copy, mint or give: the checks in the kernel's order, then a child cap.
    fn derive(&mut self, from: usize, space: usize, to: usize, rights: Rights, badge: u64) -> Result<(), ErrorCode> {
        let source = self.cap_at(0, from);
        if let Some((_, cap)) = source
            && cap.kind == ObjectType::CSpace
            && space != 0
        {
            // The placement rule: a cspace cap only in a strict ancestor of its space.
            return Err(ErrorCode::IllegalOperation);
        }
        let Some((parent, cap)) = source else { return Err(ErrorCode::EmptySlot) };
        if self.cap_at(space, to).is_some() {
            return Err(ErrorCode::SlotOccupied);
        }
        let badge = if badge != 0 {
            if !matches!(cap.kind, ObjectType::Endpoint | ObjectType::Notification) {
                return Err(ErrorCode::InvalidArgument);
            }
            if cap.badge != 0 {
                return Err(ErrorCode::BadgeAlreadySet);
            }
            badge
        } else {
            cap.badge
        };
        let child = ModelCap { object: cap.object, kind: cap.kind, rights: cap.rights.intersection(rights), badge, parent: Some(parent) };
        self.place_cap(space, to, child);
        Ok(())
    }

    fn descends(&self, cap: usize, ancestor: usize) -> bool {
        let mut cursor = self.caps.get(cap).copied().flatten().and_then(|c| c.parent);
        for _ in 0..CAPS {
            match cursor {
                Some(parent) if parent == ancestor => return true,
                Some(parent) => cursor = self.caps.get(parent).copied().flatten().and_then(|c| c.parent),
                None => return false,
            }
        }
        false
    }

    /// Takes cap `index` out of its slot and the tree (children go to its parent); if it
    /// was its object's last, the object dies.
    fn remove(&mut self, index: usize) {
        let Some(cap) = self.caps.get(index).copied().flatten() else { return };
        for other in self.caps.iter_mut().flatten() {
            if other.parent == Some(index) {
                other.parent = cap.parent;
            }
        }
        if let Some(entry) = self.caps.get_mut(index) {
            *entry = None;
        }
        for slots in self.slots.iter_mut() {
            for slot in slots.iter_mut() {
                if *slot == Some(index) {
                    *slot = None;
                }
            }
        }
        if self.refs(cap.object) == 0 {
            self.destroy(cap.object);
        }
    }

    fn destroy(&mut self, id: u32) {
        let Some(entry) = self.object_index(id) else { return };
        let Some(object) = self.objects.get_mut(entry).and_then(Option::take) else { return };
        self.used = self.used.saturating_sub(cost(object.kind));
        // A dying thread gives its budget back; a dying space or address space stops every
        // thread running in it.
        if object.kind == ObjectType::Thread && object.life != Life::Dead && let Some((own, period)) = self.budget {
            self.budget = Some((own.saturating_add(object.donated_us), period));
        }
        let stopped: [Option<u32>; OBJECTS] = core::array::from_fn(|index| {
            let other = self.objects.get(index).copied().flatten()?;
            match other.life {
                Life::Running { child, aspace } if object.child == Some(child) || (object.kind == ObjectType::AddressSpace && aspace == id) => Some(other.id),
                _ => None,
            }
        });
        for thread in stopped.into_iter().flatten() {
            self.end_thread(thread);
        }
        if let Some(child) = object.child {
            if let Some(live) = self.live_children.get_mut(child) {
                *live = false;
            }
            // Every cap in the dead space goes (its objects die with their last caps).
            let held: [Option<usize>; POOL] = self.slots.get(child + 1).copied().unwrap_or([None; POOL]);
            for index in held.into_iter().flatten() {
                self.remove(index);
            }
        }
    }

    /// The model's own invariants (checked by the host property test): every cap names a
    /// live object, sits in exactly one slot of a live space, and derives from a live cap
    /// with at least its rights; quota use is the cost of the live objects.
    pub fn check(&self) -> Result<(), &'static str> {
        let mut placed = [0usize; CAPS];
        for (space, slots) in self.slots.iter().enumerate() {
            for slot in slots.iter().flatten() {
                if space > 0 && !self.child_live(space - 1) {
                    return Err("a cap in a dead space");
                }
                if let Some(count) = placed.get_mut(*slot) {
                    *count += 1;
                }
            }
        }
        for (index, cap) in self.caps.iter().enumerate() {
            let Some(cap) = cap else { continue };
            if placed.get(index) != Some(&1) {
                return Err("a cap in no slot or in two");
            }
            if self.object_index(cap.object).is_none() {
                return Err("a cap names a dead object");
            }
            if let Some(parent) = cap.parent {
                let Some(parent) = self.caps.get(parent).copied().flatten() else { return Err("a dangling parent") };
                if !cap.rights.is_subset_of(parent.rights) || (parent.badge != 0 && parent.badge != cap.badge) {
                    return Err("a cap with more than its parent");
                }
            }
        }
        let live: u64 = self.objects.iter().flatten().map(|o| cost(o.kind)).sum();
        if live != self.used || self.used > self.quota {
            return Err("quota use is not the cost of the live objects");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = Op> {
        let kind = prop_oneof![
            Just(ObjectType::Endpoint),
            Just(ObjectType::Notification),
            Just(ObjectType::Frame),
            Just(ObjectType::Thread),
            Just(ObjectType::AddressSpace),
            Just(ObjectType::CSpace)
        ];
        let rights = (0u32..32).prop_map(|bits| Rights::from_bits(bits).unwrap_or(Rights::ALL));
        let slot = 0..POOL;
        prop_oneof![
            (kind, slot.clone()).prop_map(|(kind, at)| Op::Create { kind, at }),
            (slot.clone(), slot.clone(), rights.clone(), prop_oneof![Just(0u64), 1u64..4]).prop_map(|(from, to, rights, badge)| Op::Mint { from, to, rights, badge }),
            (slot.clone(), slot.clone()).prop_map(|(from, to)| Op::Move { from, to }),
            slot.clone().prop_map(|at| Op::Delete { at }),
            slot.clone().prop_map(|at| Op::Revoke { at }),
            (slot.clone(), slot.clone(), slot.clone()).prop_map(|(thread, aspace, child)| Op::Start { thread, aspace, child }),
            slot.clone().prop_map(|thread| Op::Kill { thread }),
            slot.clone().prop_map(|at| Op::Signal { at }),
            slot.clone().prop_map(|at| Op::Poll { at }),
            slot.clone().prop_map(|at| Op::NbSend { at }),
            slot.clone().prop_map(|at| Op::NbRecv { at }),
            (slot.clone(), prop_oneof![Just(0u64), 50u64..12_000], prop_oneof![Just(0u64), Just(10_000u64), 1u64..30_000])
                .prop_map(|(thread, budget_us, period_us)| Op::Configure { thread, budget_us, period_us }),
            (slot.clone(), slot.clone(), slot, rights, prop_oneof![Just(0u64), 1u64..4]).prop_map(|(from, child, to, rights, badge)| Op::Give { from, child, to, rights, badge }),
        ]
    }

    proptest! {
        #[test]
        fn sequences_keep_the_model_consistent(ops in prop::collection::vec(op(), 1..200)) {
            let mut model = Model::new(12 * 1024).with_budget(5_000, 10_000);
            for op in ops {
                let _ = model.apply(op);
                prop_assert_eq!(model.check(), Ok(()));
            }
        }
    }

    #[test]
    fn a_child_space_dies_with_its_last_cap_and_takes_its_caps() {
        let mut model = Model::new(1 << 20);
        model.apply(Op::Create { kind: ObjectType::CSpace, at: 0 }).unwrap();
        model.apply(Op::Create { kind: ObjectType::Endpoint, at: 1 }).unwrap();
        model.apply(Op::Give { from: 1, child: 0, to: 2, rights: Rights::ALL, badge: 5 }).unwrap();
        assert_eq!(model.cap(Place { space: 1, slot: 2 }).map(|c| c.badge), Some(5));
        assert_eq!(model.apply(Op::Give { from: 0, child: 0, to: 3, rights: Rights::ALL, badge: 0 }), Err(ErrorCode::IllegalOperation));
        model.apply(Op::Delete { at: 0 }).unwrap();
        assert!(!model.child_live(0));
        assert_eq!(model.cap(Place { space: 1, slot: 2 }), None);
        assert_eq!(model.used(), 64, "the endpoint lives on in the pool");
        model.apply(Op::Delete { at: 1 }).unwrap();
        assert_eq!(model.used(), 0);
        model.check().unwrap();
    }

    #[test]
    fn creates_stop_at_each_share() {
        // 16 KiB + 64 buys three objects, one endpoint, one child space (bytes for more).
        let mut model = Model::new(4 * 4096 + 64);
        model.apply(Op::Create { kind: ObjectType::Endpoint, at: 0 }).unwrap();
        assert_eq!(model.apply(Op::Create { kind: ObjectType::Endpoint, at: 1 }), Err(ErrorCode::OutOfQuota));
        model.apply(Op::Create { kind: ObjectType::CSpace, at: 1 }).unwrap();
        assert_eq!(model.apply(Op::Create { kind: ObjectType::CSpace, at: 2 }), Err(ErrorCode::OutOfQuota));
        model.apply(Op::Create { kind: ObjectType::Frame, at: 2 }).unwrap();
        assert_eq!(model.apply(Op::Create { kind: ObjectType::Frame, at: 3 }), Err(ErrorCode::OutOfQuota), "the object share");
        model.apply(Op::Delete { at: 0 }).unwrap();
        model.apply(Op::Create { kind: ObjectType::Endpoint, at: 0 }).unwrap();
        model.check().unwrap();
    }

    #[test]
    fn a_thread_stops_with_its_space_and_starts_once() {
        let mut model = Model::new(1 << 20);
        for (at, kind) in [(0, ObjectType::Thread), (1, ObjectType::AddressSpace), (2, ObjectType::CSpace), (3, ObjectType::Thread)] {
            model.apply(Op::Create { kind, at }).unwrap();
        }
        assert_eq!(model.apply(Op::Start { thread: 1, aspace: 1, child: 2 }), Err(ErrorCode::WrongObjectType));
        assert_eq!(model.apply(Op::Start { thread: 0, aspace: 1, child: 4 }), Err(ErrorCode::EmptySlot));
        model.apply(Op::Start { thread: 0, aspace: 1, child: 2 }).unwrap();
        model.apply(Op::Start { thread: 3, aspace: 1, child: 2 }).unwrap();
        assert_eq!(model.running_in(0), 2);
        assert_eq!(model.apply(Op::Start { thread: 0, aspace: 1, child: 2 }), Err(ErrorCode::IllegalOperation), "once");
        model.apply(Op::Kill { thread: 3 }).unwrap();
        assert_eq!(model.running_in(0), 1);
        model.apply(Op::Delete { at: 2 }).unwrap();
        assert_eq!(model.running_in(0), 0, "the space died, and its thread with it");
        assert_eq!(model.apply(Op::Start { thread: 0, aspace: 1, child: 2 }), Err(ErrorCode::EmptySlot));
        model.check().unwrap();
    }

    #[test]
    fn budgets_come_out_of_the_drivers_and_go_back() {
        let mut model = Model::new(1 << 20).with_budget(2000, 10_000);
        model.apply(Op::Create { kind: ObjectType::Thread, at: 0 }).unwrap();
        let configure = |budget_us, period_us| Op::Configure { thread: 0, budget_us, period_us };
        assert_eq!(model.apply(configure(50, 10_000)), Err(ErrorCode::InvalidArgument), "under the minimum");
        assert_eq!(model.apply(configure(0, 0)), Err(ErrorCode::InsufficientRights), "no budget is not its to give");
        assert_eq!(model.apply(configure(1950, 10_000)), Err(ErrorCode::InsufficientRights), "it must keep 100");
        model.apply(configure(250, 5_000)).unwrap();
        assert_eq!(model.budget(), Some((1500, 10_000)), "the same fraction in its own period");
        model.apply(configure(1900, 10_000)).unwrap();
        assert_eq!(model.budget(), Some((100, 10_000)), "the 500 came back first");
        model.apply(Op::Kill { thread: 0 }).unwrap();
        assert_eq!(model.budget(), Some((2000, 10_000)));
        assert_eq!(model.apply(configure(100, 10_000)), Err(ErrorCode::IllegalOperation), "dead");
        model.check().unwrap();
    }

    #[test]
    fn a_notification_gathers_badges_until_polled_and_starts_at_zero() {
        let mut model = Model::new(1 << 20);
        model.apply(Op::Create { kind: ObjectType::Notification, at: 0 }).unwrap();
        model.apply(Op::Mint { from: 0, to: 1, rights: Rights::ALL, badge: 4 }).unwrap();
        model.apply(Op::Signal { at: 0 }).unwrap();
        model.apply(Op::Signal { at: 1 }).unwrap();
        assert_eq!(model.apply(Op::Poll { at: 0 }).map(|e| e.word), Ok(Some(5)));
        assert_eq!(model.apply(Op::Poll { at: 1 }).map(|e| e.word), Ok(Some(0)));
        model.apply(Op::Signal { at: 1 }).unwrap();
        model.apply(Op::Delete { at: 0 }).unwrap();
        model.apply(Op::Delete { at: 1 }).unwrap();
        model.apply(Op::Create { kind: ObjectType::Notification, at: 0 }).unwrap();
        assert_eq!(model.apply(Op::Poll { at: 0 }).map(|e| e.word), Ok(Some(0)), "a new notification starts at 0");
        model.check().unwrap();
    }

    #[test]
    fn revoke_reaches_children_spaces() {
        let mut model = Model::new(1 << 20);
        model.apply(Op::Create { kind: ObjectType::CSpace, at: 0 }).unwrap();
        model.apply(Op::Create { kind: ObjectType::Endpoint, at: 1 }).unwrap();
        model.apply(Op::Give { from: 1, child: 0, to: 4, rights: Rights::READ, badge: 0 }).unwrap();
        model.apply(Op::Revoke { at: 1 }).unwrap();
        assert_eq!(model.cap(Place { space: 1, slot: 4 }), None);
        assert!(model.cap(Place { space: 0, slot: 1 }).is_some());
        model.check().unwrap();
    }
}
