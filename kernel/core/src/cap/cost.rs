//! Kernel memory an object grows into after creation, and what is left of it.
//!
//! Most objects cost a fixed amount, charged once by `ObjectCreate`. An address space's
//! page tables are made by `Map` and freed by `Unmap`, long after creation: the kernel
//! charges each table to the address-space object with [`CapStore::charge_object`] and
//! gives it back with [`CapStore::refund_object`]. The object's recorded cost grows and
//! shrinks with it, so destroying the object refunds exactly what is still charged
//! (invariant 5 keeps holding), and the payer is whoever paid for the object, wherever its
//! caps went.

use super::{CapStore, ErrorCode, ObjectId};

impl<O: Copy, const SPACES: usize, const SLOTS: usize, const OBJECTS: usize>
    CapStore<O, SPACES, SLOTS, OBJECTS>
{
    /// Charges `bytes` more to live object `id`'s payer and records them in its cost.
    /// `OutOfQuota` if the payer cannot pay (nothing changes), `InvalidArgument` if `id` is
    /// not live.
    pub fn charge_object(&mut self, id: ObjectId, bytes: u64) -> Result<(), ErrorCode> {
        let (payer, cost) = self.object(id).map(|o| (o.payer, o.cost)).ok_or(ErrorCode::InvalidArgument)?;
        let new_cost = cost.checked_add(bytes).ok_or(ErrorCode::OutOfQuota)?;
        self.quota(payer).ok_or(ErrorCode::InvalidArgument)?.check(bytes)?;
        if let Some(space) = self.space_mut(payer) {
            space.quota.charge(bytes);
        }
        if let Some(Some(object)) = self.objects.get_mut(id.0 as usize) {
            object.cost = new_cost;
        }
        Ok(())
    }

    /// Gives back up to `bytes` of what [`CapStore::charge_object`] charged to `id` (never
    /// more than its cost: boot-made spaces were never charged for their first tables).
    /// Nothing happens if `id` is not live.
    pub fn refund_object(&mut self, id: ObjectId, bytes: u64) {
        let Some(Some(object)) = self.objects.get_mut(id.0 as usize) else { return };
        let refund = bytes.min(object.cost);
        object.cost = object.cost.saturating_sub(refund);
        let payer = object.payer;
        if let Some(space) = self.space_mut(payer) {
            space.quota.refund(refund);
        }
    }

    /// What live object `id`'s payer can still be charged (0 if `id` is not live).
    pub fn available_to(&self, id: ObjectId) -> u64 {
        self.object(id).and_then(|o| self.quota(o.payer)).map_or(0, |q| q.available())
    }

    /// What live object `id` is charged now (0 if it is not live).
    pub fn cost_of(&self, id: ObjectId) -> u64 {
        self.object(id).map_or(0, |o| o.cost)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use crate::cap::{CapStore, ErrorCode, ObjectType, SlotRef, SpaceId};

    type Store = CapStore<u32, 4, 8, 16>;
    const ROOT: SpaceId = SpaceId::new(0);

    fn store_with_object(limit: u64) -> (Store, crate::cap::ObjectId) {
        let mut store = Store::new();
        store.create_root_space(ROOT, limit).unwrap();
        let id = store.decode_create(SlotRef::new(ROOT, 1), ObjectType::AddressSpace, 100).unwrap().perform(7);
        (store, id)
    }

    #[test]
    fn charges_and_refunds_follow_the_payer_and_never_exceed_the_cost() {
        let (mut store, id) = store_with_object(1000);
        store.charge_object(id, 400).unwrap();
        assert_eq!(store.cost_of(id), 500);
        assert_eq!(store.quota(ROOT).unwrap().used(), 500);
        assert_eq!(store.charge_object(id, 501), Err(ErrorCode::OutOfQuota));
        assert_eq!(store.cost_of(id), 500, "a refused charge changes nothing");
        store.refund_object(id, 10_000);
        assert_eq!((store.cost_of(id), store.quota(ROOT).unwrap().used()), (0, 0));
        store.check_invariants().unwrap();
    }

    #[test]
    fn destroying_the_object_refunds_what_it_grew_into() {
        let (mut store, id) = store_with_object(1000);
        store.charge_object(id, 300).unwrap();
        store.decode_delete(SlotRef::new(ROOT, 1)).unwrap().perform(&mut |_, _| {});
        assert_eq!(store.quota(ROOT).unwrap().used(), 0);
        assert_eq!(store.charge_object(id, 1), Err(ErrorCode::InvalidArgument));
        store.check_invariants().unwrap();
    }
}
