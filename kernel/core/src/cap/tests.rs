//! Capability tests: per operation, the happy path then every error path (exact code, slot
//! state afterwards), then property tests over random operation sequences.
//!
//! Test IDs (`CAP-<op>-<n>`) are stable: add new cases at the end of a table.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test code: a panic is a test failure, which is what we want"
)]

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::vec::Vec;

/// 3 spaces of 6 slots, 16 objects; handles are `u32`s, unique per test.
type Store = CapStore<u32, 3, 6, 16>;

const A: SpaceId = SpaceId::new(0);
const B: SpaceId = SpaceId::new(1);
const DEAD: SpaceId = SpaceId::new(2);
const RW: Rights = Rights::READ.union(Rights::WRITE);

fn at(space: SpaceId, slot: u32) -> SlotRef {
    SlotRef::new(space, slot)
}

/// Collects reaped objects.
#[derive(Default)]
struct Reaped(Vec<(ObjectType, u32)>);
impl Reaper<u32> for Reaped {
    fn reap(&mut self, kind: ObjectType, handle: u32) {
        self.0.push((kind, handle));
    }
}

/// Table shares for the child spaces of tests about bytes, so shares never bind there.
const ROOMY: Shares = Shares::for_quota(abi::tables::SHARE_BASIS / 16);
/// Shares a [`ROOMY`] child can give a child of its own.
const ROOMY_GRANDCHILD: Shares = Shares::for_quota(abi::tables::SHARE_BASIS / 64);

fn create(s: &mut Store, dst: SlotRef, kind: ObjectType, cost: u64, handle: u32) -> ObjectId {
    s.decode_create(dst, kind, cost).unwrap().perform(handle)
}

/// The fixture every table starts from:
///
/// - A: root, limit 1000. B: child of A, limit 300, cost 10 (A used 310 + objects).
/// - A0 endpoint (cost 100, handle 1, ALL)   A1 frame (cost 50, handle 2, ALL)
/// - A2 minted from A0: RW, badge 7          A3 reply (cost 10, handle 3)
/// - A4, A5 empty.   B0 notification created by B (cost 20, handle 4).   B1.. empty.
fn fixture() -> Store {
    let mut s = Store::new();
    s.create_root_space(A, 1000).unwrap();
    assert_eq!(s.decode_create_space_with(A, 300, 10, ROOMY).unwrap().perform(), B);
    create(&mut s, at(A, 0), ObjectType::Endpoint, 100, 1);
    create(&mut s, at(A, 1), ObjectType::Frame, 50, 2);
    s.decode_mint(at(A, 0), at(A, 2), RW, Badge::new(7)).unwrap().perform();
    create(&mut s, at(A, 3), ObjectType::Reply, 10, 3);
    create(&mut s, at(B, 0), ObjectType::Notification, 20, 4);
    s.check_invariants().unwrap();
    s
}

/// Every occupied slot's cap and parent, keyed by (space, slot).
type Snapshot = BTreeMap<(u16, u32), (Cap, Option<SlotRef>)>;

/// Every occupied slot's cap and parent, for before/after comparisons.
fn snapshot(s: &Store) -> Snapshot {
    let mut out = BTreeMap::new();
    for space in 0..3u16 {
        for slot in 0..6u32 {
            let r = at(SpaceId::new(space), slot);
            if let Some(cap) = s.cap(r) {
                out.insert((space, slot), (cap, s.parent_of(r)));
            }
        }
    }
    out
}

fn info(kind: ObjectType, rights: Rights, badge: u64) -> CapInfo {
    CapInfo { kind, rights, badge: Badge::new(badge) }
}

// ---- identify ----

#[test]
fn cap_identify() {
    let s = fixture();
    #[rustfmt::skip]
    let table: &[(&str, SlotRef, Result<CapInfo, ErrorCode>)] = &[
        ("CAP-ID-1 endpoint", at(A, 0), Ok(info(ObjectType::Endpoint, Rights::ALL, 0))),
        ("CAP-ID-2 badged",   at(A, 2), Ok(info(ObjectType::Endpoint, RW, 7))),
        ("CAP-ID-3 other space", at(B, 0), Ok(info(ObjectType::Notification, Rights::ALL, 0))),
        ("CAP-ID-4 empty",    at(A, 4), Err(ErrorCode::EmptySlot)),
        ("CAP-ID-5 out of range", at(A, 6), Err(ErrorCode::InvalidSlot)),
        ("CAP-ID-6 huge index", at(A, u32::MAX), Err(ErrorCode::InvalidSlot)),
        ("CAP-ID-7 dead space", at(DEAD, 0), Err(ErrorCode::InvalidSlot)),
        ("CAP-ID-8 no such space", at(SpaceId::new(9), 0), Err(ErrorCode::InvalidSlot)),
    ];
    for (id, slot, want) in table {
        assert_eq!(s.identify(*slot), *want, "{id}");
    }
}

// ---- copy and mint ----

/// Run one mint (or copy, with `None`) case; on success check the new cap and its parent,
/// on failure check that nothing changed. Either way, the invariants hold afterwards.
fn check_mint(
    id: &str,
    src: SlotRef,
    dst: SlotRef,
    args: Option<(Rights, u64)>,
    want: Result<CapInfo, ErrorCode>,
) {
    let mut s = fixture();
    let before = snapshot(&s);
    let decoded = match args {
        Some((rights, badge)) => s.decode_mint(src, dst, rights, Badge::new(badge)),
        None => s.decode_copy(src, dst),
    };
    match (decoded, want) {
        (Ok(op), Ok(want)) => {
            let object = op.cap().object();
            op.perform();
            assert_eq!(s.identify(dst), Ok(want), "{id}");
            assert_eq!(s.parent_of(dst), Some(src), "{id}: derived from its source");
            assert_eq!(s.cap(dst).unwrap().object(), s.cap(src).unwrap().object(), "{id}");
            assert_eq!(s.refs(object) as usize, snapshot(&s).values().filter(|(c, _)| c.object() == object).count());
            let mut after = snapshot(&s);
            after.remove(&(dst.space.index(), dst.slot.index()));
            assert_eq!(after, before, "{id}: only the destination changed");
        }
        (Err(got), Err(want)) => {
            assert_eq!(got, want, "{id}");
            assert_eq!(snapshot(&s), before, "{id}: failed decode changed nothing");
        }
        (got, want) => panic!("{id}: got {:?}, want {want:?}", got.map(|op| op.cap())),
    }
    s.check_invariants().unwrap();
}

/// (id, source, destination, rights mask, badge, expected identify of the new cap).
type MintCase = (&'static str, SlotRef, SlotRef, Rights, u64, Result<CapInfo, ErrorCode>);

#[test]
fn cap_mint() {
    use ErrorCode::*;
    use ObjectType::{Endpoint, Frame};
    #[rustfmt::skip]
    let table: &[MintCase] = &[
        ("CAP-MINT-1 badge and shrink",   at(A, 0), at(A, 4), RW, 9, Ok(info(Endpoint, RW, 9))),
        ("CAP-MINT-2 keeps badge",        at(A, 2), at(A, 4), Rights::ALL, 0, Ok(info(Endpoint, RW, 7))),
        ("CAP-MINT-3 rights never grow",  at(A, 2), at(A, 4), Rights::READ.union(Rights::GRANT), 0, Ok(info(Endpoint, Rights::READ, 7))),
        ("CAP-MINT-4 to another space",   at(A, 0), at(B, 5), Rights::READ, 0, Ok(info(Endpoint, Rights::READ, 0))),
        ("CAP-MINT-5 frame, no rights",   at(A, 1), at(A, 5), Rights::NONE, 0, Ok(info(Frame, Rights::NONE, 0))),
        ("CAP-MINT-6 src out of range",   at(A, 6), at(A, 4), RW, 0, Err(InvalidSlot)),
        ("CAP-MINT-7 dst out of range",   at(A, 0), at(A, 6), RW, 0, Err(InvalidSlot)),
        ("CAP-MINT-8 dst in dead space",  at(A, 0), at(DEAD, 0), RW, 0, Err(InvalidSlot)),
        ("CAP-MINT-9 src empty",          at(A, 4), at(A, 5), RW, 0, Err(EmptySlot)),
        ("CAP-MINT-10 dst occupied",      at(A, 0), at(A, 1), RW, 0, Err(SlotOccupied)),
        ("CAP-MINT-11 onto itself",       at(A, 0), at(A, 0), RW, 0, Err(SlotOccupied)),
        ("CAP-MINT-12 badge on a frame",  at(A, 1), at(A, 4), RW, 5, Err(InvalidArgument)),
        ("CAP-MINT-13 rebadge",           at(A, 2), at(A, 4), RW, 8, Err(BadgeAlreadySet)),
        ("CAP-MINT-14 same badge again",  at(A, 2), at(A, 4), RW, 7, Err(BadgeAlreadySet)),
        ("CAP-MINT-15 reply is one-shot", at(A, 3), at(A, 4), RW, 0, Err(IllegalOperation)),
        ("CAP-MINT-16 invalid beats empty", at(A, 9), at(A, 1), RW, 0, Err(InvalidSlot)),
        ("CAP-MINT-17 empty beats occupied", at(A, 4), at(A, 1), RW, 0, Err(EmptySlot)),
    ];
    for (id, src, dst, rights, badge, want) in table {
        check_mint(id, *src, *dst, Some((*rights, *badge)), *want);
    }
}

#[test]
fn cap_copy() {
    use ErrorCode::*;
    use ObjectType::*;
    #[rustfmt::skip]
    let table: &[(&str, SlotRef, SlotRef, Result<CapInfo, ErrorCode>)] = &[
        ("CAP-COPY-1 same rights",      at(A, 0), at(A, 4), Ok(info(Endpoint, Rights::ALL, 0))),
        ("CAP-COPY-2 keeps badge",      at(A, 2), at(B, 3), Ok(info(Endpoint, RW, 7))),
        ("CAP-COPY-3 src out of range", at(A, 6), at(A, 4), Err(InvalidSlot)),
        ("CAP-COPY-4 src empty",        at(A, 5), at(A, 4), Err(EmptySlot)),
        ("CAP-COPY-5 dst occupied",     at(A, 0), at(B, 0), Err(SlotOccupied)),
        ("CAP-COPY-6 reply",            at(A, 3), at(A, 4), Err(IllegalOperation)),
        ("CAP-COPY-7 dead space",       at(DEAD, 1), at(A, 4), Err(InvalidSlot)),
    ];
    for (id, src, dst, want) in table {
        check_mint(id, *src, *dst, None, *want);
    }
}

// ---- move ----

#[test]
fn cap_move() {
    use ErrorCode::*;
    #[rustfmt::skip]
    let table: &[(&str, SlotRef, SlotRef, Result<(), ErrorCode>)] = &[
        ("CAP-MOVE-1 parent with child", at(A, 0), at(A, 4), Ok(())),
        ("CAP-MOVE-2 child to another space", at(A, 2), at(B, 2), Ok(())),
        ("CAP-MOVE-3 reply may move", at(A, 3), at(A, 5), Ok(())),
        ("CAP-MOVE-4 src out of range", at(A, 6), at(A, 4), Err(InvalidSlot)),
        ("CAP-MOVE-5 dst dead space", at(A, 0), at(DEAD, 4), Err(InvalidSlot)),
        ("CAP-MOVE-6 src empty", at(A, 4), at(A, 5), Err(EmptySlot)),
        ("CAP-MOVE-7 dst occupied", at(A, 0), at(A, 1), Err(SlotOccupied)),
        ("CAP-MOVE-8 onto itself", at(A, 1), at(A, 1), Err(SlotOccupied)),
    ];
    for (id, src, dst, want) in table {
        let mut s = fixture();
        let before = snapshot(&s);
        let moved = s.cap(*src);
        let children: Vec<_> = before.keys().filter(|k| before[k].1 == Some(*src)).copied().collect();
        let parent = s.parent_of(*src);
        match (s.decode_move(*src, *dst), want) {
            (Ok(op), Ok(())) => {
                op.perform();
                assert_eq!(s.cap(*src), None, "{id}");
                assert_eq!(s.cap(*dst), moved, "{id}");
                assert_eq!(s.parent_of(*dst), parent, "{id}: keeps its place in the tree");
                for (space, slot) in children {
                    assert_eq!(s.parent_of(at(SpaceId::new(space), slot)), Some(*dst), "{id}");
                }
                let obj = moved.unwrap().object();
                assert_eq!(s.refs(obj), before.values().filter(|(c, _)| c.object() == obj).count() as u32);
            }
            (Err(got), Err(want)) => {
                assert_eq!(got, *want, "{id}");
                assert_eq!(snapshot(&s), before, "{id}");
            }
            (got, want) => panic!("{id}: got {:?}, want {want:?}", got.is_ok()),
        }
        s.check_invariants().unwrap();
    }
}

#[test]
fn cap_move_then_revoke_reaches_moved_child() {
    // CAP-MOVE-9
    let mut s = fixture();
    s.decode_move(at(A, 2), at(B, 4)).unwrap().perform();
    s.decode_revoke(at(A, 0)).unwrap().perform();
    assert_eq!(s.cap(at(B, 4)), None);
    s.check_invariants().unwrap();
}

// ---- delete ----

#[test]
fn cap_delete_errors() {
    use ErrorCode::*;
    #[rustfmt::skip]
    let table: &[(&str, SlotRef, ErrorCode)] = &[
        ("CAP-DEL-1 out of range", at(A, 6), InvalidSlot),
        ("CAP-DEL-2 dead space", at(DEAD, 0), InvalidSlot),
        ("CAP-DEL-3 empty", at(A, 4), EmptySlot),
    ];
    for (id, slot, want) in table {
        let mut s = fixture();
        let before = snapshot(&s);
        assert_eq!(s.decode_delete(*slot).err(), Some(*want), "{id}");
        assert_eq!(snapshot(&s), before, "{id}");
    }
}

#[test]
fn cap_delete_not_last_keeps_object() {
    // CAP-DEL-4: deleting the badged child leaves the endpoint alive.
    let mut s = fixture();
    let ep = s.cap(at(A, 0)).unwrap().object();
    let mut reaped = Reaped::default();
    s.decode_delete(at(A, 2)).unwrap().perform(&mut reaped);
    assert_eq!(s.cap(at(A, 2)), None);
    assert_eq!(s.refs(ep), 1);
    assert!(reaped.0.is_empty());
    assert_eq!(s.quota(A).unwrap().used(), 310 + 100 + 50 + 10);
    s.check_invariants().unwrap();
}

#[test]
fn cap_delete_last_destroys_and_refunds() {
    // CAP-DEL-5: the frame has one cap; deleting it reaps the frame and refunds A.
    let mut s = fixture();
    let mut reaped = Reaped::default();
    let used = s.quota(A).unwrap().used();
    s.decode_delete(at(A, 1)).unwrap().perform(&mut reaped);
    assert_eq!(reaped.0, [(ObjectType::Frame, 2)]);
    assert_eq!(s.quota(A).unwrap().used(), used - 50);
    assert_eq!(s.live_objects(), 3);
    s.check_invariants().unwrap();
}

#[test]
fn cap_delete_refunds_the_payer_not_the_holder() {
    // CAP-DEL-6: B's notification moved to A; deleting it in A refunds B.
    let mut s = fixture();
    let mut reaped = Reaped::default();
    s.decode_move(at(B, 0), at(A, 5)).unwrap().perform();
    let a_used = s.quota(A).unwrap().used();
    s.decode_delete(at(A, 5)).unwrap().perform(&mut reaped);
    assert_eq!(reaped.0, [(ObjectType::Notification, 4)]);
    assert_eq!(s.quota(B).unwrap().used(), 0);
    assert_eq!(s.quota(A).unwrap().used(), a_used);
    s.check_invariants().unwrap();
}

#[test]
fn cap_delete_middle_reparents_children() {
    // CAP-DEL-7: A0 -> A2 -> {B1, B2}; deleting A2 makes B1, B2 children of A0.
    let mut s = fixture();
    let mut reaped = Reaped::default();
    s.decode_copy(at(A, 2), at(B, 1)).unwrap().perform();
    s.decode_mint(at(A, 2), at(B, 2), Rights::READ, Badge::NONE).unwrap().perform();
    s.decode_delete(at(A, 2)).unwrap().perform(&mut reaped);
    assert_eq!(s.parent_of(at(B, 1)), Some(at(A, 0)));
    assert_eq!(s.parent_of(at(B, 2)), Some(at(A, 0)));
    assert_eq!(s.identify(at(B, 2)), Ok(info(ObjectType::Endpoint, Rights::READ, 7)));
    s.check_invariants().unwrap();
    s.decode_revoke(at(A, 0)).unwrap().perform();
    assert_eq!((s.cap(at(B, 1)), s.cap(at(B, 2))), (None, None));
    s.check_invariants().unwrap();
}

#[test]
fn cap_delete_keeps_grandchildren_under_reparented_child() {
    // CAP-DEL-9 (found by CAP-PROP-3): A0 -> A2 -> B1 -> B2; deleting A2 moves B1 under A0
    // and B1 must keep B2 as its child.
    let mut s = fixture();
    s.decode_copy(at(A, 2), at(B, 1)).unwrap().perform();
    s.decode_copy(at(B, 1), at(B, 2)).unwrap().perform();
    s.decode_delete(at(A, 2)).unwrap().perform(&mut Reaped::default());
    assert_eq!(s.parent_of(at(B, 1)), Some(at(A, 0)));
    assert_eq!(s.parent_of(at(B, 2)), Some(at(B, 1)));
    s.check_invariants().unwrap();
    s.decode_revoke(at(B, 1)).unwrap().perform();
    assert_eq!(s.cap(at(B, 2)), None);
    s.check_invariants().unwrap();
}

#[test]
fn cap_delete_root_with_children_makes_them_roots() {
    // CAP-DEL-8: deleting A0 leaves A2 alive as a root; the endpoint survives.
    let mut s = fixture();
    let mut reaped = Reaped::default();
    s.decode_delete(at(A, 0)).unwrap().perform(&mut reaped);
    assert!(reaped.0.is_empty());
    assert_eq!(s.parent_of(at(A, 2)), None);
    assert_eq!(s.identify(at(A, 2)), Ok(info(ObjectType::Endpoint, RW, 7)));
    s.check_invariants().unwrap();
}

// ---- revoke ----

#[test]
fn cap_revoke_errors() {
    use ErrorCode::*;
    #[rustfmt::skip]
    let table: &[(&str, SlotRef, ErrorCode)] = &[
        ("CAP-REV-1 out of range", at(B, 6), InvalidSlot),
        ("CAP-REV-2 dead space", at(DEAD, 3), InvalidSlot),
        ("CAP-REV-3 empty", at(B, 5), EmptySlot),
    ];
    for (id, slot, want) in table {
        let mut s = fixture();
        let before = snapshot(&s);
        assert_eq!(s.decode_revoke(*slot).err(), Some(*want), "{id}");
        assert_eq!(snapshot(&s), before, "{id}");
    }
}

#[test]
fn cap_revoke_removes_every_descendant_in_every_space() {
    // CAP-REV-4: a three-level tree spread over A and B.
    let mut s = fixture();
    s.decode_copy(at(A, 2), at(B, 1)).unwrap().perform();
    s.decode_mint(at(B, 1), at(B, 2), Rights::WRITE, Badge::NONE).unwrap().perform();
    s.decode_copy(at(A, 0), at(A, 4)).unwrap().perform();
    s.decode_copy(at(A, 4), at(B, 3)).unwrap().perform();
    let ep = s.cap(at(A, 0)).unwrap().object();
    assert_eq!(s.refs(ep), 6);
    let quotas = (s.quota(A), s.quota(B));
    s.decode_revoke(at(A, 0)).unwrap().perform();
    for r in [at(A, 2), at(A, 4), at(B, 1), at(B, 2), at(B, 3)] {
        assert_eq!(s.cap(r), None, "{r:?} survived revoke");
    }
    assert_eq!(s.identify(at(A, 0)), Ok(info(ObjectType::Endpoint, Rights::ALL, 0)));
    assert_eq!(s.refs(ep), 1);
    assert_eq!((s.quota(A), s.quota(B)), quotas, "revoke never changes quotas");
    assert_eq!(s.cap(at(B, 0)).map(|c| c.rights()), Some(Rights::ALL), "unrelated cap untouched");
    s.check_invariants().unwrap();
}

#[test]
fn cap_revoke_subtree_only() {
    // CAP-REV-5: revoking A2 removes A2's children but not A2, nor A0's other children.
    let mut s = fixture();
    s.decode_copy(at(A, 2), at(B, 1)).unwrap().perform();
    s.decode_copy(at(A, 0), at(A, 4)).unwrap().perform();
    s.decode_revoke(at(A, 2)).unwrap().perform();
    assert_eq!(s.cap(at(B, 1)), None);
    assert!(s.cap(at(A, 2)).is_some() && s.cap(at(A, 4)).is_some());
    s.check_invariants().unwrap();
    // CAP-REV-6: revoking a leaf is a successful no-op.
    let before = snapshot(&s);
    s.decode_revoke(at(A, 4)).unwrap().perform();
    assert_eq!(snapshot(&s), before);
}

// ---- object creation and quotas ----

#[test]
fn object_create() {
    use ErrorCode::*;
    // A: limit 1000, used 470 (B's 310 + 160 of objects): 530 available.
    #[rustfmt::skip]
    let table: &[(&str, SlotRef, u64, Result<(), ErrorCode>)] = &[
        ("OBJ-CREATE-1 fits",              at(A, 4), 100, Ok(())),
        ("OBJ-CREATE-2 exactly the rest",  at(A, 4), 530, Ok(())),
        ("OBJ-CREATE-3 free object",       at(A, 4), 0, Ok(())),
        ("OBJ-CREATE-4 B pays from its own", at(B, 1), 280, Ok(())),
        ("OBJ-CREATE-5 one byte too many", at(A, 4), 531, Err(OutOfQuota)),
        ("OBJ-CREATE-6 B over its limit",  at(B, 1), 281, Err(OutOfQuota)),
        ("OBJ-CREATE-7 out of range",      at(A, 6), 1, Err(InvalidSlot)),
        ("OBJ-CREATE-8 dead space",        at(DEAD, 0), 1, Err(InvalidSlot)),
        ("OBJ-CREATE-9 occupied",          at(A, 0), 1, Err(SlotOccupied)),
        ("OBJ-CREATE-10 occupied beats quota", at(A, 0), 10_000, Err(SlotOccupied)),
        ("OBJ-CREATE-11 huge cost",        at(A, 4), u64::MAX, Err(OutOfQuota)),
    ];
    for (id, dst, cost, want) in table {
        let mut s = fixture();
        let before = snapshot(&s);
        let used = s.quota(dst.space).map(|q| q.used());
        match (s.decode_create(*dst, ObjectType::Thread, *cost), want) {
            (Ok(op), Ok(())) => {
                let obj = op.perform(99);
                assert_eq!(s.identify(*dst), Ok(info(ObjectType::Thread, Rights::ALL, 0)), "{id}");
                assert_eq!(s.parent_of(*dst), None, "{id}: a new cap is a root");
                assert_eq!(s.refs(obj), 1, "{id}");
                assert_eq!(s.quota(dst.space).unwrap().used(), used.unwrap() + cost, "{id}");
            }
            (Err(got), Err(want)) => {
                assert_eq!(got, *want, "{id}");
                assert_eq!(snapshot(&s), before, "{id}");
                assert_eq!(s.quota(dst.space).map(|q| q.used()), used, "{id}: nothing charged");
            }
            (got, want) => panic!("{id}: got {:?}, want {want:?}", got.is_ok()),
        }
        s.check_invariants().unwrap();
    }
}

#[test]
fn object_create_with_rights_places_exactly_those_rights() {
    // OBJ-CREATE-13: a frame slice's cap carries its source cap's rights, never more; it is
    // charged, counted and refunded like any created object.
    let mut s = fixture();
    let used = s.quota(A).unwrap().used();
    let rg = Rights::READ.union(Rights::GRANT);
    let obj = s.decode_create(at(A, 4), ObjectType::Frame, 64).unwrap().perform_with_rights(98, rg);
    assert_eq!(s.identify(at(A, 4)), Ok(info(ObjectType::Frame, rg, 0)));
    assert_eq!(s.parent_of(at(A, 4)), None, "a new cap is a root");
    assert_eq!(s.refs(obj), 1);
    assert_eq!(s.quota(A).unwrap().used(), used + 64);
    // A copy cannot add what the root lacks.
    s.decode_copy(at(A, 4), at(A, 5)).unwrap().perform();
    assert_eq!(s.identify(at(A, 5)), Ok(info(ObjectType::Frame, rg, 0)));
    s.check_invariants().unwrap();
    let mut reaped = Reaped::default();
    s.decode_delete(at(A, 5)).unwrap().perform(&mut reaped);
    s.decode_delete(at(A, 4)).unwrap().perform(&mut reaped);
    assert_eq!(reaped.0, [(ObjectType::Frame, 98)]);
    assert_eq!(s.quota(A).unwrap().used(), used, "refunded");
    s.check_invariants().unwrap();
}

#[test]
fn object_table_full_is_out_of_resources() {
    // OBJ-CREATE-12: the store has 16 entries; the fixture uses 4.
    let mut s = Store::new();
    s.create_root_space(A, 1_000_000).unwrap();
    s.create_root_space(B, 1_000_000).unwrap();
    s.create_root_space(DEAD, 1_000_000).unwrap();
    let mut handle = 0;
    for space in [A, B, DEAD] {
        for slot in 0..6 {
            if handle < 16 {
                create(&mut s, at(space, slot), ObjectType::Endpoint, 1, handle);
                handle += 1;
            }
        }
    }
    assert_eq!(s.decode_create(at(DEAD, 5), ObjectType::Endpoint, 1).err(), Some(ErrorCode::OutOfResources));
    assert_eq!(s.quota(DEAD).unwrap().used(), 4);
    // Freeing one entry makes room again.
    s.decode_delete(at(A, 0)).unwrap().perform(&mut Reaped::default());
    create(&mut s, at(DEAD, 5), ObjectType::Endpoint, 1, 100);
    s.check_invariants().unwrap();
}

// ---- spaces ----

#[test]
fn space_create_errors() {
    // SPACE-CREATE-1..4. A has 530 available; one free space (index 2).
    let mut s = fixture();
    assert_eq!(s.decode_create_space(A, 521, 10).err(), Some(ErrorCode::OutOfQuota));
    assert_eq!(s.decode_create_space(A, u64::MAX, 1).err(), Some(ErrorCode::OutOfQuota));
    assert_eq!(s.decode_create_space(DEAD, 1, 0).err(), Some(ErrorCode::InvalidArgument));
    let c = s.decode_create_space_with(A, 520, 10, ROOMY).unwrap().perform();
    assert_eq!((c, s.quota(A).unwrap().available()), (DEAD, 0));
    assert_eq!(s.decode_create_space(B, 1, 0).err(), Some(ErrorCode::OutOfResources));
    assert_eq!(s.create_root_space(A, 5), Err(ErrorCode::IllegalOperation));
    assert_eq!(s.create_root_space(SpaceId::new(3), 5), Err(ErrorCode::InvalidArgument));
    s.check_invariants().unwrap();
}

#[test]
fn space_destroy_errors() {
    // SPACE-DESTROY-1..2
    let mut s = fixture();
    assert_eq!(s.decode_destroy_space(A).err(), Some(ErrorCode::IllegalOperation));
    assert_eq!(s.decode_destroy_space(DEAD).err(), Some(ErrorCode::InvalidArgument));
}

#[test]
fn space_destroy_returns_quota_and_hands_over_live_objects() {
    // SPACE-DESTROY-3: B holds a copy of A's endpoint, and gave its notification to A.
    let mut s = fixture();
    let mut reaped = Reaped::default();
    let a_before = s.quota(A).unwrap().used();
    s.decode_copy(at(A, 0), at(B, 1)).unwrap().perform();
    create(&mut s, at(B, 2), ObjectType::Thread, 30, 50);
    s.decode_copy(at(B, 0), at(A, 4)).unwrap().perform();
    s.decode_destroy_space(B).unwrap().perform(&mut reaped);
    // B's thread died with B; its notification lives on in A, now paid for by A.
    assert_eq!(reaped.0, [(ObjectType::Thread, 50)]);
    assert_eq!(s.identify(at(A, 4)), Ok(info(ObjectType::Notification, Rights::ALL, 0)));
    assert_eq!(s.parent_of(at(A, 4)), None, "its parent died with B");
    assert_eq!(s.quota(B), None);
    assert_eq!(s.quota(A).unwrap().used(), a_before - 310 + 20);
    assert_eq!(s.refs(s.cap(at(A, 0)).unwrap().object()), 2);
    s.check_invariants().unwrap();
    // Deleting the notification now refunds A; A is back to its objects only.
    s.decode_delete(at(A, 4)).unwrap().perform(&mut reaped);
    assert_eq!(s.quota(A).unwrap().used(), 100 + 50 + 10);
    // The space can be reused.
    assert_eq!(s.decode_create_space_with(A, 10, 0, ROOMY).unwrap().perform(), B);
    s.check_invariants().unwrap();
}

#[test]
fn space_destroy_hands_grandchildren_to_the_parent() {
    // SPACE-DESTROY-4
    let mut s = fixture();
    let c = s.decode_create_space_with(B, 100, 5, ROOMY_GRANDCHILD).unwrap().perform();
    create(&mut s, at(c, 0), ObjectType::Endpoint, 40, 60);
    assert_eq!(s.quota(B).unwrap().used(), 20 + 105);
    s.decode_destroy_space(B).unwrap().perform(&mut Reaped::default());
    assert_eq!(s.quota(A).unwrap().used(), 160 + 105);
    s.check_invariants().unwrap();
    s.decode_destroy_space(c).unwrap().perform(&mut Reaped::default());
    assert_eq!(s.quota(A).unwrap().used(), 160);
    s.check_invariants().unwrap();
}

// ---- property tests ----

#[derive(Clone, Debug)]
enum Op {
    Create { dst: (u16, u32), kind: ObjectType, cost: u64 },
    Copy { src: (u16, u32), dst: (u16, u32) },
    Mint { src: (u16, u32), dst: (u16, u32), rights: u32, badge: u64 },
    Move { src: (u16, u32), dst: (u16, u32) },
    Delete { slot: (u16, u32) },
    Revoke { slot: (u16, u32) },
    CreateSpace { parent: u16, limit: u64, cost: u64 },
    DestroySpace { space: u16 },
}

fn slot_strategy() -> impl Strategy<Value = (u16, u32)> {
    // Mostly valid slots, sometimes one past the end of each range (InvalidSlot).
    let space = prop_oneof![10 => 0u16..3, 1 => Just(3u16)];
    let slot = prop_oneof![10 => 0u32..6, 1 => Just(6u32)];
    (space, slot)
}

/// A root A with two children B and C, so every space starts live.
fn three_spaces() -> Store {
    let mut s = Store::new();
    s.create_root_space(A, 2000).unwrap();
    for _ in 0..2 {
        s.decode_create_space_with(A, 400, 10, ROOMY).unwrap().perform();
    }
    s
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let kind = prop::sample::select(ObjectType::ALL.to_vec());
    prop_oneof![
        2 => (slot_strategy(), kind, 0u64..60).prop_map(|(dst, kind, cost)| Op::Create { dst, kind, cost }),
        4 => (slot_strategy(), slot_strategy()).prop_map(|(src, dst)| Op::Copy { src, dst }),
        5 => (slot_strategy(), slot_strategy(), 0u32..32, prop_oneof![3 => Just(0u64), 1 => 1u64..4])
            .prop_map(|(src, dst, rights, badge)| Op::Mint { src, dst, rights, badge }),
        2 => (slot_strategy(), slot_strategy()).prop_map(|(src, dst)| Op::Move { src, dst }),
        2 => slot_strategy().prop_map(|slot| Op::Delete { slot }),
        2 => slot_strategy().prop_map(|slot| Op::Revoke { slot }),
        1 => (0u16..4, 0u64..400, 0u64..20).prop_map(|(parent, limit, cost)| Op::CreateSpace { parent, limit, cost }),
        1 => (0u16..4).prop_map(|space| Op::DestroySpace { space }),
    ]
}

fn r((space, slot): (u16, u32)) -> SlotRef {
    at(SpaceId::new(space), slot)
}

/// Slots below `root` in the derivation tree (not `root` itself), from the public view.
fn descendants(s: &Store, root: SlotRef) -> BTreeSet<(u16, u32)> {
    let snap = snapshot(s);
    let mut out = BTreeSet::new();
    for &k in snap.keys() {
        let mut cur = snap[&k].1;
        while let Some(p) = cur {
            if p == root {
                out.insert(k);
                break;
            }
            cur = snap.get(&(p.space.index(), p.slot.index())).and_then(|e| e.1);
        }
    }
    out
}

/// Apply `op`; return the changed-slot allowance for the stability check.
fn apply(s: &mut Store, op: &Op, next_handle: &mut u32, reaped: &mut Reaped) -> Result<(), ErrorCode> {
    match *op {
        Op::Create { dst, kind, cost } => {
            let o = s.decode_create(r(dst), kind, cost)?;
            *next_handle += 1;
            o.perform(*next_handle);
        }
        Op::Copy { src, dst } => s.decode_copy(r(src), r(dst))?.perform(),
        Op::Mint { src, dst, rights, badge } => s
            .decode_mint(r(src), r(dst), Rights::from_bits_truncate(rights), Badge::new(badge))?
            .perform(),
        Op::Move { src, dst } => s.decode_move(r(src), r(dst))?.perform(),
        Op::Delete { slot } => s.decode_delete(r(slot))?.perform(reaped),
        Op::Revoke { slot } => s.decode_revoke(r(slot))?.perform(),
        Op::CreateSpace { parent, limit, cost } => {
            s.decode_create_space(SpaceId::new(parent), limit, cost)?.perform();
        }
        Op::DestroySpace { space } => s.decode_destroy_space(SpaceId::new(space))?.perform(reaped),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// CAP-PROP-1: the module invariants hold after every operation of any sequence, and:
    /// caps in slots an operation did not target keep their object, rights and badge; a
    /// failed operation changes nothing; a move carries its cap unchanged; after revoke no
    /// descendant remains; reaped objects are never referenced again; every derived cap's
    /// rights are within every ancestor's.
    #[test]
    fn cap_operation_sequences_keep_invariants(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let mut s = three_spaces();
        let mut next_handle = 0u32;
        let mut reaped = Reaped::default();
        let mut dead_handles = BTreeSet::new();
        for op in &ops {
            let before = snapshot(&s);
            let revoked = match op {
                Op::Revoke { slot } => Some(descendants(&s, r(*slot))),
                _ => None,
            };
            let result = apply(&mut s, op, &mut next_handle, &mut reaped);
            prop_assert_eq!(s.check_invariants(), Ok(()), "after {:?}", op);
            let after = snapshot(&s);
            if result.is_err() {
                prop_assert_eq!(&after, &before, "failed {:?} changed state", op);
                continue;
            }
            // Caps that stayed put kept object, rights and badge (a move is the only op
            // that empties one slot and fills another with the same cap).
            for (k, (cap, _)) in &after {
                if let Some((old, _)) = before.get(k) {
                    prop_assert_eq!(cap, old, "cap at {:?} changed under {:?}", k, op);
                }
            }
            if let Op::Move { src, dst } = op {
                prop_assert_eq!(after.get(dst).map(|e| e.0), before.get(src).map(|e| e.0));
            }
            if let Some(gone) = revoked {
                for k in gone {
                    prop_assert!(!after.contains_key(&k), "{:?} survived revoke", k);
                }
                let Op::Revoke { slot } = op else { unreachable!() };
                prop_assert!(descendants(&s, r(*slot)).is_empty());
            }
            // Transitive attenuation: every ancestor's rights cover the cap's.
            for (k, (cap, parent)) in &after {
                let mut cur = *parent;
                while let Some(p) = cur {
                    let (pcap, pparent) = after[&(p.space.index(), p.slot.index())];
                    prop_assert!(cap.rights().is_subset_of(pcap.rights()), "{:?} exceeds ancestor", k);
                    prop_assert!(!pcap.badge().is_set() || pcap.badge() == cap.badge());
                    cur = pparent;
                }
            }
            for (_, h) in reaped.0.drain(..) {
                prop_assert!(dead_handles.insert(h), "handle {} reaped twice", h);
            }
            for space in 0..3u16 {
                for slot in 0..6u32 {
                    if let Ok(l) = s.lookup(at(SpaceId::new(space), slot)) {
                        prop_assert!(!dead_handles.contains(&l.handle), "destroyed object referenced");
                    }
                }
            }
        }
        // Everything created is either alive or was reaped exactly once.
        prop_assert_eq!(s.live_objects() + dead_handles.len(), next_handle as usize);
    }

    /// CAP-PROP-2: destroying every non-root space and deleting every root cap returns the
    /// root's quota to zero and reaps every object: nothing leaks.
    #[test]
    fn teardown_returns_all_quota(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let mut s = three_spaces();
        let mut next_handle = 0u32;
        let mut reaped = Reaped::default();
        for op in &ops {
            let _ = apply(&mut s, op, &mut next_handle, &mut reaped);
        }
        // Children before parents: destroy any space whose children are all gone, repeatedly.
        for _ in 0..3 {
            for space in [2u16, 1] {
                let _ = s.decode_destroy_space(SpaceId::new(space)).map(|op| op.perform(&mut reaped));
            }
        }
        for slot in 0..6 {
            if let Ok(op) = s.decode_delete(at(A, slot)) {
                op.perform(&mut reaped);
            }
        }
        prop_assert_eq!(s.check_invariants(), Ok(()));
        prop_assert_eq!(s.quota(A).unwrap().used(), 0);
        prop_assert_eq!(s.live_objects(), 0);
        prop_assert_eq!(reaped.0.len(), next_handle as usize);
    }
}

/// One step of building a derivation tree: derive from (or delete) the `pick`-th live cap.
#[derive(Clone, Debug)]
enum TreeStep {
    Mint { pick: usize, dst: (u16, u32), rights: u32, badge: u64 },
    Delete { pick: usize },
    Move { pick: usize, dst: (u16, u32) },
}

fn tree_step() -> impl Strategy<Value = TreeStep> {
    let dst = (0u16..3, 0u32..6);
    prop_oneof![
        6 => (any::<usize>(), dst.clone(), 0u32..32, prop_oneof![3 => Just(0u64), 1 => 1u64..4])
            .prop_map(|(pick, dst, rights, badge)| TreeStep::Mint { pick, dst, rights, badge }),
        1 => any::<usize>().prop_map(|pick| TreeStep::Delete { pick }),
        1 => (any::<usize>(), dst).prop_map(|(pick, dst)| TreeStep::Move { pick, dst }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// CAP-PROP-3: grow a random derivation tree over all three spaces (minting from,
    /// deleting and moving live caps), then revoke a random cap in it: no descendant remains
    /// anywhere, the revoked cap and everything outside its subtree are untouched, and the
    /// object's count equals its remaining caps.
    #[test]
    fn revoke_of_random_trees(steps in prop::collection::vec(tree_step(), 1..40), target in any::<usize>()) {
        let mut s = three_spaces();
        let mut reaped = Reaped::default();
        create(&mut s, at(A, 0), ObjectType::Endpoint, 10, 1);
        create(&mut s, at(B, 0), ObjectType::Frame, 10, 2);
        for step in &steps {
            let live: Vec<(u16, u32)> = snapshot(&s).keys().copied().collect();
            let pick = |i: usize| r(live[i % live.len()]);
            let _ = match *step {
                TreeStep::Mint { pick: i, dst, rights, badge } => s
                    .decode_mint(pick(i), r(dst), Rights::from_bits_truncate(rights), Badge::new(badge))
                    .map(|op| op.perform()),
                TreeStep::Delete { pick: i } if live.len() > 2 => {
                    s.decode_delete(pick(i)).map(|op| op.perform(&mut reaped))
                }
                TreeStep::Delete { .. } => Ok(()),
                TreeStep::Move { pick: i, dst } => s.decode_move(pick(i), r(dst)).map(|op| op.perform()),
            };
            prop_assert_eq!(s.check_invariants(), Ok(()), "after {:?}", step);
        }
        let before = snapshot(&s);
        let live: Vec<(u16, u32)> = before.keys().copied().collect();
        let root = r(live[target % live.len()]);
        let gone = descendants(&s, root);
        let object = s.cap(root).unwrap().object();
        s.decode_revoke(root).unwrap().perform();
        prop_assert_eq!(s.check_invariants(), Ok(()));
        let after = snapshot(&s);
        for (k, v) in &before {
            prop_assert_eq!(!after.contains_key(k), gone.contains(k), "slot {:?}", k);
            if let Some(a) = after.get(k) {
                prop_assert_eq!(a.0, v.0);
            }
        }
        prop_assert_eq!(s.refs(object) as usize, after.values().filter(|(c, _)| c.object() == object).count());
        prop_assert!(reaped.0.is_empty() || reaped.0.len() <= 2);
    }
}



#[test]
fn strict_ancestors_follow_the_quota_tree() {
    let mut store: CapStore<u32, 8, 8, 16> = CapStore::new();
    let root = SpaceId::new(0);
    store.create_root_space(root, 1 << 20).unwrap();
    let child = store.decode_create_space_with(root, 4096, 0, ROOMY).unwrap().perform();
    let grandchild = store.decode_create_space_with(child, 1024, 0, ROOMY_GRANDCHILD).unwrap().perform();
    assert!(store.is_strict_ancestor(root, child));
    assert!(store.is_strict_ancestor(root, grandchild));
    assert!(store.is_strict_ancestor(child, grandchild));
    assert!(!store.is_strict_ancestor(child, child), "a space is not its own ancestor");
    assert!(!store.is_strict_ancestor(grandchild, child));
    assert!(!store.is_strict_ancestor(child, root));
}

// ---- table shares ----

/// A root whose shares are those of `basis_fraction` of the share basis, and a store big
/// enough that only shares bind.
fn share_store(root_quota_for_shares: u64) -> CapStore<u32, 8, 16, 64> {
    let mut store = CapStore::new();
    let shares = Shares::for_quota(root_quota_for_shares);
    store.create_root_space_with(SpaceId::new(0), 1 << 30, shares).unwrap();
    store
}

#[test]
fn a_space_holds_the_table_entries_its_quota_buys_and_no_more() {
    // SHARE-1: 1 MiB buys 4 threads; a fifth is OutOfQuota though bytes are left, and
    // changes nothing; deleting one gives its entry back.
    let mut s = share_store(abi::tables::SHARE_BASIS);
    let child = s.decode_create_space(SpaceId::new(0), 1 << 20, 0).unwrap().perform();
    assert_eq!(s.quota(child).unwrap().shares().get(abi::tables::Table::Threads), 4);
    for slot in 1..=4 {
        s.decode_create(at(child, slot), ObjectType::Thread, 8192).unwrap().perform(slot);
    }
    let used = s.quota(child).unwrap().used();
    assert_eq!(s.decode_create(at(child, 5), ObjectType::Thread, 8192).err(), Some(ErrorCode::OutOfQuota));
    assert_eq!((s.cap(at(child, 5)), s.quota(child).unwrap().used()), (None, used), "a refusal changes nothing");
    // Other tables are separate shares: an endpoint still fits.
    s.decode_create(at(child, 5), ObjectType::Endpoint, 64).unwrap().perform(5);
    s.decode_delete(at(child, 1)).unwrap().perform(&mut Reaped::default());
    s.decode_create(at(child, 1), ObjectType::Thread, 8192).unwrap().perform(6);
    s.check_invariants().unwrap();
}

#[test]
fn a_sibling_cannot_take_the_entries_another_holds() {
    // SHARE-2: the root holds 32 threads; a hog (4 MiB: 16) fills its share, and a victim
    // made afterwards still gets all of its own (1 MiB: 4).
    let mut s = share_store(abi::tables::SHARE_BASIS / 8);
    let root = SpaceId::new(0);
    let hog = s.decode_create_space(root, 4 << 20, 0).unwrap().perform();
    for slot in 0..16 {
        s.decode_create(at(hog, slot), ObjectType::Thread, 0).unwrap().perform(slot);
    }
    assert_eq!(s.decode_create(at(hog, 15), ObjectType::Thread, 0).err(), Some(ErrorCode::SlotOccupied));
    let victim = s.decode_create_space(root, 1 << 20, 0).unwrap().perform();
    for slot in 0..4 {
        s.decode_create(at(victim, slot), ObjectType::Thread, 0).unwrap().perform(100 + slot);
    }
    s.check_invariants().unwrap();
}

#[test]
fn a_parent_gives_only_the_shares_it_has_left() {
    // SHARE-3: the root holds 2 capability spaces (1 MiB's worth). A 1 MiB child needs 2
    // plus its own entry: OutOfQuota. Two children with no quota take one entry each.
    let mut s = share_store(1 << 20);
    let root = SpaceId::new(0);
    assert_eq!(s.decode_create_space(root, 1 << 20, 0).err(), Some(ErrorCode::OutOfQuota));
    let a = s.decode_create_space(root, 0, 0).unwrap().perform();
    s.decode_create_space(root, 0, 0).unwrap().perform();
    assert_eq!(s.decode_create_space(root, 0, 0).err(), Some(ErrorCode::OutOfQuota));
    assert_eq!(s.quota(a).unwrap().shares(), Shares::NONE, "no quota, no shares");
    assert_eq!(s.decode_create(at(a, 0), ObjectType::Endpoint, 0).err(), Some(ErrorCode::OutOfQuota));
    s.check_invariants().unwrap();
}

#[test]
fn destroying_a_space_returns_its_entries_and_hands_over_live_objects() {
    // SHARE-4: a child's endpoint given to the root outlives the child; the root then holds
    // that endpoint's entries, and everything else of the child's comes back.
    let mut s = share_store(abi::tables::SHARE_BASIS);
    let root = SpaceId::new(0);
    let before = s.quota(root).unwrap().held();
    let child = s.decode_create_space(root, 1 << 20, 0).unwrap().perform();
    s.decode_create(at(child, 0), ObjectType::Endpoint, 64).unwrap().perform(1);
    s.decode_create(at(child, 1), ObjectType::Thread, 0).unwrap().perform(2);
    s.decode_copy(at(child, 0), at(root, 3)).unwrap().perform();
    s.decode_destroy_space(child).unwrap().perform(&mut Reaped::default());
    s.check_invariants().unwrap();
    assert_eq!(s.quota(root).unwrap().held(), before.and(Shares::for_object(ObjectType::Endpoint)));
    s.decode_delete(at(root, 3)).unwrap().perform(&mut Reaped::default());
    assert_eq!(s.quota(root).unwrap().held(), before);
    s.check_invariants().unwrap();
}
