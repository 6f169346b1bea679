//! Capability-space operations (identify, copy, mint, move, delete, revoke, create, give),
//! after seL4's `cnodeops.c`: the happy path, then every error path with its exact code and
//! what the slots hold afterwards. After revoke, absence is checked everywhere (the audit).

use libcap::process::{self, NewObject};
use libcap::sys;
use libcap::{Badge, CapSlot, ErrorCode, ObjectType, Rights, Sysno};

use crate::audit::{self, Snapshot};
use crate::puppet::Puppet;
use crate::world::{ALL, Case, Outcome, R, RW, W, World, create, expect_err, expect_ok, expect_slot};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "CAP-IDENTIFY-001", what: "identify reports the console cap's kind, rights and badge", run: identify_console },
    Case { id: "CAP-IDENTIFY-002", what: "identify of an empty slot (and the null slot 0) is EmptySlot", run: identify_empty },
    Case { id: "CAP-IDENTIFY-003", what: "identify past the space (128, u32::MAX, 2^32) is InvalidSlot", run: identify_invalid },
    Case { id: "CAP-COPY-001", what: "copy: same kind, rights, badge and object; the source is unchanged", run: copy_happy },
    Case { id: "CAP-COPY-002", what: "copy from an empty slot: EmptySlot, destination still empty", run: copy_empty_source },
    Case { id: "CAP-COPY-003", what: "copy onto an occupied slot (or onto itself): SlotOccupied, both unchanged", run: copy_occupied },
    Case { id: "CAP-COPY-004", what: "copy with a slot outside the space: InvalidSlot, nothing changes", run: copy_invalid },
    Case { id: "CAP-COPY-005", what: "a copy keeps the badge and the (reduced) rights of its source", run: copy_keeps_badge },
    Case { id: "CAP-COPY-006", what: "a copy is derived: revoking the source deletes it, the source stays", run: copy_derived },
    Case { id: "CAP-MINT-001", what: "mint attenuates: rights are the intersection", run: mint_attenuates },
    Case { id: "CAP-MINT-002", what: "mint badges an unbadged endpoint or notification cap", run: mint_badges },
    Case { id: "CAP-MINT-003", what: "re-badging a badged cap: BadgeAlreadySet, destination empty, source unchanged", run: mint_rebadge },
    Case { id: "CAP-MINT-004", what: "a badge on a kind that takes none (frame, cspace, thread, console, audit): InvalidArgument", run: mint_badge_wrong_kind },
    Case { id: "CAP-MINT-005", what: "unknown rights bits (bit 5, bit 40): InvalidArgument", run: mint_unknown_rights },
    Case { id: "CAP-MINT-006", what: "no mint sequence adds a right: R then ALL stays R", run: mint_no_amplify },
    Case { id: "CAP-MINT-007", what: "badge 0 keeps the source's badge", run: mint_keeps_badge },
    Case { id: "CAP-MINT-008", what: "mint from an empty slot, onto an occupied one, outside the space: exact codes", run: mint_errors },
    Case { id: "CAP-MINT-009", what: "a cap with no rights can be identified, moved and deleted, but not used", run: mint_no_rights },
    Case { id: "CAP-MOVE-001", what: "move: the source is empty, the destination holds the same cap and object", run: move_happy },
    Case { id: "CAP-MOVE-002", what: "a moved copy is still derived from its source (revoke reaches it)", run: move_keeps_parent },
    Case { id: "CAP-MOVE-003", what: "a moved cap keeps its children (revoking it at the new slot reaches them)", run: move_keeps_children },
    Case { id: "CAP-MOVE-004", what: "move errors: empty source, occupied or own destination, outside the space", run: move_errors },
    Case { id: "CAP-DELETE-001", what: "delete empties the slot; the last cap's object is destroyed (census)", run: delete_happy },
    Case { id: "CAP-DELETE-002", what: "delete of an empty slot or outside the space: EmptySlot, InvalidSlot", run: delete_errors },
    Case { id: "CAP-DELETE-003", what: "deleting a parent leaves its children working, naming the same object", run: delete_parent },
    Case { id: "CAP-DELETE-004", what: "children of a deleted cap are re-parented: the grandparent's revoke reaches them", run: delete_reparents },
    Case { id: "CAP-REVOKE-001", what: "revoke deletes every derived cap in the space (copies, mints, mints of mints)", run: revoke_own },
    Case { id: "CAP-REVOKE-002", what: "revoke reaches caps given to another process and copied there: none remain anywhere", run: revoke_other_space },
    Case { id: "CAP-REVOKE-003", what: "revoke with nothing derived succeeds and changes nothing", run: revoke_nothing },
    Case { id: "CAP-REVOKE-004", what: "revoke of an empty slot or outside the space: EmptySlot, InvalidSlot", run: revoke_errors },
    Case { id: "CAP-REVOKE-005", what: "revoking a child spares its parent and siblings", run: revoke_child },
    Case { id: "CAP-REVOKE-006", what: "the revoked cap itself stays usable; the object lives", run: revoke_keeps_object },
    Case { id: "OBJ-CREATE-001", what: "create an endpoint: all rights, no badge", run: create_endpoint },
    Case { id: "OBJ-CREATE-002", what: "create a notification: all rights, no badge", run: create_notification },
    Case { id: "OBJ-CREATE-003", what: "create a frame: all rights, no badge", run: create_frame },
    Case { id: "OBJ-CREATE-004", what: "create an address space: all rights, no badge", run: create_address_space },
    Case { id: "OBJ-CREATE-005", what: "create a thread: all rights, no badge", run: create_thread },
    Case { id: "OBJ-CREATE-006", what: "create a capability space: all rights, no badge", run: create_cspace },
    Case { id: "OBJ-CREATE-007", what: "kinds that cannot be created (reply, untyped, irq, ports, budget, console, audit, 0, 14, 2^64-1): InvalidArgument, slot empty", run: create_wrong_kind },
    Case { id: "OBJ-CREATE-008", what: "create onto an occupied slot: SlotOccupied, nothing allocated", run: create_occupied },
    Case { id: "OBJ-CREATE-009", what: "create outside the space: InvalidSlot", run: create_invalid },
    Case { id: "CAP-GIVE-001", what: "give: the cap lands in the other space's slot, attenuated and badged, same object", run: give_happy },
    Case { id: "CAP-GIVE-002", what: "give never adds rights: an R cap given with ALL arrives R", run: give_attenuates },
    Case { id: "CAP-GIVE-003", what: "give with a badge from a badged cap: BadgeAlreadySet, nothing arrives", run: give_rebadge },
    Case { id: "CAP-GIVE-004", what: "give onto an occupied slot or outside the target space: SlotOccupied, InvalidSlot", run: give_target_slot },
    Case { id: "CAP-GIVE-005", what: "give through a non-cspace cap: WrongObjectType", run: give_not_cspace },
    Case { id: "CAP-GIVE-006", what: "give through a cspace cap without write: InsufficientRights", run: give_no_write },
    Case { id: "CAP-GIVE-007", what: "a cspace cap into itself or into a sibling: IllegalOperation (no space can keep itself alive)", run: give_cspace_placement },
    Case { id: "CAP-GIVE-008", what: "give with unknown rights bits: InvalidArgument", run: give_unknown_rights },
];

/// An endpoint cap with all rights in a fresh slot.
fn endpoint(world: &mut World) -> Result<CapSlot, crate::world::Fail> {
    create(world, ObjectType::Endpoint)
}

const EP_ALL: Option<(ObjectType, Rights, u64)> = Some((ObjectType::Endpoint, ALL, 0));

/// The object identity of a cap in our own space.
fn object(world: &World, slot: CapSlot) -> Result<u64, crate::world::Fail> {
    Ok(audit::audit_cap(u64::from(world.own_space), u64::from(slot.index()))?.object)
}

fn raw(number: Sysno, args: [u64; 4]) -> Result<(), ErrorCode> {
    let (rax, _) = sys::syscall_raw(number.as_u64(), [args[0], args[1], args[2], args[3], 0, 0, 0, 0, 0, 0]);
    audit::code(rax)
}

fn identify_console(_: &mut World) -> Outcome {
    expect_slot("console", libcap::slots::CONSOLE, Some((ObjectType::Console, W, 0)))
}

fn identify_empty(world: &mut World) -> Outcome {
    let free = world.slot()?;
    expect_err("identify empty", sys::cap_identify(free), ErrorCode::EmptySlot)?;
    expect_err("identify slot 0", sys::cap_identify(CapSlot::new(0)), ErrorCode::EmptySlot)
}

fn identify_invalid(_: &mut World) -> Outcome {
    expect_err("identify 128", sys::cap_identify(CapSlot::new(128)), ErrorCode::InvalidSlot)?;
    expect_err("identify u32::MAX", sys::cap_identify(CapSlot::new(u32::MAX)), ErrorCode::InvalidSlot)?;
    expect_err("identify 2^32 + 1", raw(Sysno::CapIdentify, [(1 << 32) + 1, 0, 0, 0]), ErrorCode::InvalidSlot)
}

fn copy_happy(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let c = world.slot()?;
    expect_ok("copy", sys::cap_copy(e, c))?;
    expect_slot("source", e, EP_ALL)?;
    expect_slot("copy", c, EP_ALL)?;
    ensure!(object(world, e)? == object(world, c)?, "the copy names another object");
    Ok(())
}

fn copy_empty_source(world: &mut World) -> Outcome {
    let [from, to] = world.slots::<2>()?;
    expect_err("copy empty", sys::cap_copy(from, to), ErrorCode::EmptySlot)?;
    expect_slot("destination", to, None)
}

fn copy_occupied(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let n = create(world, ObjectType::Notification)?;
    expect_err("copy onto occupied", sys::cap_copy(e, n), ErrorCode::SlotOccupied)?;
    expect_err("copy onto itself", sys::cap_copy(e, e), ErrorCode::SlotOccupied)?;
    expect_slot("source", e, EP_ALL)?;
    expect_slot("destination", n, Some((ObjectType::Notification, ALL, 0)))
}

fn copy_invalid(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let to = world.slot()?;
    expect_err("copy from 128", sys::cap_copy(CapSlot::new(128), to), ErrorCode::InvalidSlot)?;
    expect_err("copy to 300", sys::cap_copy(e, CapSlot::new(300)), ErrorCode::InvalidSlot)?;
    expect_err("copy to 2^32", raw(Sysno::CapCopy, [u64::from(e.index()), 1 << 32, 0, 0]), ErrorCode::InvalidSlot)?;
    expect_slot("source", e, EP_ALL)?;
    expect_slot("destination", to, None)
}

fn copy_keeps_badge(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let [b, c] = world.slots::<2>()?;
    expect_ok("mint", sys::cap_mint(e, b, W, Badge::new(5)))?;
    expect_ok("copy", sys::cap_copy(b, c))?;
    expect_slot("copy", c, Some((ObjectType::Endpoint, W, 5)))
}

fn copy_derived(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let c = world.slot()?;
    expect_ok("copy", sys::cap_copy(e, c))?;
    expect_ok("revoke", sys::cap_revoke(e))?;
    expect_slot("copy after revoke", c, None)?;
    expect_slot("source after revoke", e, EP_ALL)
}

fn mint_attenuates(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let [m, n] = world.slots::<2>()?;
    expect_ok("mint R", sys::cap_mint(e, m, R, Badge::NONE))?;
    expect_slot("minted", m, Some((ObjectType::Endpoint, R, 0)))?;
    expect_ok("mint W|G from R", sys::cap_mint(m, n, W.union(Rights::GRANT), Badge::NONE))?;
    expect_slot("minted from R", n, Some((ObjectType::Endpoint, Rights::NONE, 0)))?;
    expect_slot("source", e, EP_ALL)
}

fn mint_badges(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let n = create(world, ObjectType::Notification)?;
    let [m, p] = world.slots::<2>()?;
    expect_ok("badge endpoint", sys::cap_mint(e, m, ALL, Badge::new(0x77)))?;
    expect_slot("badged endpoint", m, Some((ObjectType::Endpoint, ALL, 0x77)))?;
    expect_ok("badge notification", sys::cap_mint(n, p, W, Badge::new(u64::MAX)))?;
    expect_slot("badged notification", p, Some((ObjectType::Notification, W, u64::MAX)))
}

fn mint_rebadge(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let [m, n] = world.slots::<2>()?;
    expect_ok("badge", sys::cap_mint(e, m, ALL, Badge::new(0x77)))?;
    expect_err("re-badge", sys::cap_mint(m, n, ALL, Badge::new(0x78)), ErrorCode::BadgeAlreadySet)?;
    expect_slot("destination", n, None)?;
    expect_slot("source", m, Some((ObjectType::Endpoint, ALL, 0x77)))
}

fn mint_badge_wrong_kind(world: &mut World) -> Outcome {
    for kind in [ObjectType::Frame, ObjectType::CSpace, ObjectType::Thread, ObjectType::AddressSpace] {
        let object = create(world, kind)?;
        let to = world.slot()?;
        expect_err("badge on {kind:?}", sys::cap_mint(object, to, ALL, Badge::new(1)), ErrorCode::InvalidArgument)?;
        expect_slot("destination", to, None)?;
    }
    let to = world.slot()?;
    expect_err("badge on the console", sys::cap_mint(libcap::slots::CONSOLE, to, ALL, Badge::new(1)), ErrorCode::InvalidArgument)?;
    expect_err("badge on the audit cap", sys::cap_mint(crate::world::AUDIT, to, ALL, Badge::new(1)), ErrorCode::InvalidArgument)?;
    expect_slot("destination", to, None)
}

fn mint_unknown_rights(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let to = world.slot()?;
    expect_err("rights bit 5", raw(Sysno::CapMint, [u64::from(e.index()), u64::from(to.index()), 1 << 5, 0]), ErrorCode::InvalidArgument)?;
    expect_err("rights bit 40", raw(Sysno::CapMint, [u64::from(e.index()), u64::from(to.index()), 1 << 40, 0]), ErrorCode::InvalidArgument)?;
    expect_slot("destination", to, None)
}

fn mint_no_amplify(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let [a, b, c] = world.slots::<3>()?;
    expect_ok("mint R", sys::cap_mint(e, a, R, Badge::NONE))?;
    expect_ok("mint ALL from R", sys::cap_mint(a, b, ALL, Badge::NONE))?;
    expect_ok("copy", sys::cap_copy(b, c))?;
    expect_slot("mint of R", b, Some((ObjectType::Endpoint, R, 0)))?;
    expect_slot("copy of that", c, Some((ObjectType::Endpoint, R, 0)))?;
    expect_err("send through it", sys::nb_send(c, &sys::Message::new(0, &[])?), ErrorCode::InsufficientRights)
}

fn mint_keeps_badge(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let [a, b] = world.slots::<2>()?;
    expect_ok("badge 9", sys::cap_mint(e, a, ALL, Badge::new(9)))?;
    expect_ok("mint badge 0", sys::cap_mint(a, b, W, Badge::NONE))?;
    expect_slot("minted", b, Some((ObjectType::Endpoint, W, 9)))
}

fn mint_errors(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let n = create(world, ObjectType::Notification)?;
    let [empty, to] = world.slots::<2>()?;
    expect_err("from empty", sys::cap_mint(empty, to, ALL, Badge::NONE), ErrorCode::EmptySlot)?;
    expect_err("onto occupied", sys::cap_mint(e, n, R, Badge::NONE), ErrorCode::SlotOccupied)?;
    expect_err("from 128", sys::cap_mint(CapSlot::new(128), to, R, Badge::NONE), ErrorCode::InvalidSlot)?;
    expect_err("to 128", sys::cap_mint(e, CapSlot::new(128), R, Badge::NONE), ErrorCode::InvalidSlot)?;
    expect_slot("destination", to, None)?;
    expect_slot("source", e, EP_ALL)?;
    expect_slot("occupied", n, Some((ObjectType::Notification, ALL, 0)))
}

fn mint_no_rights(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let [z, moved] = world.slots::<2>()?;
    expect_ok("mint none", sys::cap_mint(e, z, Rights::NONE, Badge::NONE))?;
    expect_slot("no rights", z, Some((ObjectType::Endpoint, Rights::NONE, 0)))?;
    expect_err("send", sys::nb_send(z, &sys::Message::new(0, &[])?), ErrorCode::InsufficientRights)?;
    expect_err("receive", sys::nb_recv(z), ErrorCode::InsufficientRights)?;
    expect_ok("move", sys::cap_move(z, moved))?;
    expect_ok("delete", sys::cap_delete(moved))?;
    expect_slot("deleted", moved, None)
}

fn move_happy(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let before = object(world, e)?;
    let d = world.slot()?;
    expect_ok("move", sys::cap_move(e, d))?;
    expect_slot("source", e, None)?;
    expect_slot("destination", d, EP_ALL)?;
    ensure!(object(world, d)? == before, "the moved cap names another object");
    Ok(())
}

fn move_keeps_parent(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let [c, d] = world.slots::<2>()?;
    expect_ok("copy", sys::cap_copy(e, c))?;
    expect_ok("move", sys::cap_move(c, d))?;
    expect_ok("revoke", sys::cap_revoke(e))?;
    expect_slot("moved copy", d, None)?;
    expect_slot("source", e, EP_ALL)
}

fn move_keeps_children(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let [c, d] = world.slots::<2>()?;
    expect_ok("copy", sys::cap_copy(e, c))?;
    expect_ok("move", sys::cap_move(e, d))?;
    expect_ok("revoke at the new slot", sys::cap_revoke(d))?;
    expect_slot("child", c, None)?;
    expect_slot("moved", d, EP_ALL)
}

fn move_errors(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let n = create(world, ObjectType::Notification)?;
    let [empty, to] = world.slots::<2>()?;
    expect_err("from empty", sys::cap_move(empty, to), ErrorCode::EmptySlot)?;
    expect_err("onto occupied", sys::cap_move(e, n), ErrorCode::SlotOccupied)?;
    expect_err("onto itself", sys::cap_move(e, e), ErrorCode::SlotOccupied)?;
    expect_err("to 128", sys::cap_move(e, CapSlot::new(128)), ErrorCode::InvalidSlot)?;
    expect_slot("source", e, EP_ALL)?;
    expect_slot("destination", to, None)
}

fn delete_happy(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    expect_ok("delete", sys::cap_delete(e))?;
    expect_slot("deleted", e, None)
}

fn delete_errors(world: &mut World) -> Outcome {
    let empty = world.slot()?;
    expect_err("delete empty", sys::cap_delete(empty), ErrorCode::EmptySlot)?;
    expect_err("delete 128", sys::cap_delete(CapSlot::new(128)), ErrorCode::InvalidSlot)?;
    expect_err("delete 2^32", raw(Sysno::CapDelete, [1 << 32, 0, 0, 0]), ErrorCode::InvalidSlot)
}

fn delete_parent(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let object_before = object(world, e)?;
    let c = world.slot()?;
    expect_ok("copy", sys::cap_copy(e, c))?;
    expect_ok("delete parent", sys::cap_delete(e))?;
    expect_slot("child", c, EP_ALL)?;
    ensure!(object(world, c)? == object_before, "the child names another object");
    expect_err("the child still works", sys::nb_recv(c), ErrorCode::WouldBlock)
}

fn delete_reparents(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let [c, d] = world.slots::<2>()?;
    expect_ok("copy", sys::cap_copy(e, c))?;
    expect_ok("copy of copy", sys::cap_copy(c, d))?;
    expect_ok("delete the middle", sys::cap_delete(c))?;
    expect_ok("revoke the top", sys::cap_revoke(e))?;
    expect_slot("grandchild", d, None)
}

fn revoke_own(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let object_id = object(world, e)?;
    let [c1, m1, m2, c2] = world.slots::<4>()?;
    expect_ok("copy", sys::cap_copy(e, c1))?;
    expect_ok("mint", sys::cap_mint(e, m1, R, Badge::new(3)))?;
    expect_ok("mint of mint", sys::cap_mint(m1, m2, R, Badge::NONE))?;
    expect_ok("copy of that", sys::cap_copy(m2, c2))?;
    expect_ok("revoke", sys::cap_revoke(e))?;
    for slot in [c1, m1, m2, c2] {
        expect_slot("derived", slot, None)?;
    }
    let holders = Snapshot::take()?.holders(object_id);
    ensure!(holders == [(world.own_space, e.index())], "after revoke the object is held at {holders:?}");
    expect_slot("revoked", e, EP_ALL)
}

fn revoke_other_space(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let object_id = object(world, e)?;
    let p = Puppet::new(world)?;
    expect_ok("give", p.give(e, 5, W, 0))?;
    p.sys_ok("copy in the puppet", Sysno::CapCopy, &[5, 6])?;
    p.sys_ok("mint in the puppet", Sysno::CapMint, &[5, 7, 0, 0x55])?;
    ensure!(p.slot(6)?.is_some() && p.slot(7)?.is_some(), "the puppet's copies are missing");
    expect_ok("revoke", sys::cap_revoke(e))?;
    for slot in [5, 6, 7] {
        ensure!(p.slot(slot)?.is_none(), "puppet slot {slot} survived the revoke");
    }
    p.sys_err("use after revoke", Sysno::NbSend, &[5, 0], ErrorCode::EmptySlot)?;
    let holders = Snapshot::take()?.holders(object_id);
    ensure!(holders == [(world.own_space, e.index())], "after revoke the object is held at {holders:?}");
    p.teardown(world)
}

fn revoke_nothing(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let before = Snapshot::take()?;
    expect_ok("revoke", sys::cap_revoke(e))?;
    let diff = before.diff(&Snapshot::take()?);
    ensure!(diff.is_empty(), "revoke with nothing derived changed: {diff:?}");
    expect_slot("revoked", e, EP_ALL)
}

fn revoke_errors(world: &mut World) -> Outcome {
    let empty = world.slot()?;
    expect_err("revoke empty", sys::cap_revoke(empty), ErrorCode::EmptySlot)?;
    expect_err("revoke 128", sys::cap_revoke(CapSlot::new(128)), ErrorCode::InvalidSlot)
}

fn revoke_child(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let [c1, c2, d] = world.slots::<3>()?;
    expect_ok("copy 1", sys::cap_copy(e, c1))?;
    expect_ok("copy 2", sys::cap_copy(e, c2))?;
    expect_ok("grandchild", sys::cap_copy(c1, d))?;
    expect_ok("revoke child", sys::cap_revoke(c1))?;
    expect_slot("grandchild", d, None)?;
    expect_slot("child", c1, EP_ALL)?;
    expect_slot("sibling", c2, EP_ALL)?;
    expect_slot("parent", e, EP_ALL)
}

fn revoke_keeps_object(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let c = world.slot()?;
    expect_ok("copy", sys::cap_copy(e, c))?;
    expect_ok("revoke", sys::cap_revoke(e))?;
    expect_err("the object still works", sys::nb_recv(e), ErrorCode::WouldBlock)
}

fn create_kind(world: &mut World, kind: ObjectType) -> Outcome {
    let slot = create(world, kind)?;
    expect_slot("created", slot, Some((kind, ALL, 0)))?;
    expect_ok("delete", sys::cap_delete(slot))
}

fn create_endpoint(world: &mut World) -> Outcome {
    create_kind(world, ObjectType::Endpoint)
}
fn create_notification(world: &mut World) -> Outcome {
    create_kind(world, ObjectType::Notification)
}
fn create_frame(world: &mut World) -> Outcome {
    create_kind(world, ObjectType::Frame)
}
fn create_address_space(world: &mut World) -> Outcome {
    create_kind(world, ObjectType::AddressSpace)
}
fn create_thread(world: &mut World) -> Outcome {
    create_kind(world, ObjectType::Thread)
}
fn create_cspace(world: &mut World) -> Outcome {
    create_kind(world, ObjectType::CSpace)
}

fn create_wrong_kind(world: &mut World) -> Outcome {
    let slot = world.slot()?;
    for kind in [6, 7, 9, 10, 11, 12, 13, 0, 14, u64::MAX] {
        expect_err("create kind {kind}", raw(Sysno::ObjectCreate, [kind, u64::from(slot.index()), 0, 0]), ErrorCode::InvalidArgument)?;
        expect_slot("destination", slot, None)?;
    }
    Ok(())
}

fn create_occupied(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    for kind in [ObjectType::Endpoint, ObjectType::Frame, ObjectType::Thread, ObjectType::AddressSpace, ObjectType::CSpace] {
        expect_err("create onto occupied", sys::object_create(e, kind, 4096), ErrorCode::SlotOccupied)?;
    }
    expect_slot("occupied", e, EP_ALL)
}

fn create_invalid(_: &mut World) -> Outcome {
    expect_err("create at 128", sys::object_create(CapSlot::new(128), ObjectType::Endpoint, 0), ErrorCode::InvalidSlot)?;
    expect_err("create at 2^32", raw(Sysno::ObjectCreate, [4, 1 << 32, 0, 0]), ErrorCode::InvalidSlot)
}

fn give_happy(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let p = Puppet::new(world)?;
    expect_ok("give", p.give(e, 5, R.union(W), 3))?;
    let got = p.slot(5)?;
    let ours = object(world, e)?;
    match got {
        Some(record) if record.is(ObjectType::Endpoint) && record.rights == u64::from(RW.bits()) && record.badge == 3 && record.object == ours => {}
        other => fail!("the puppet's slot 5 holds {other:?}"),
    }
    expect_slot("source", e, EP_ALL)?;
    p.teardown(world)
}

fn give_attenuates(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let r = world.slot()?;
    expect_ok("mint R", sys::cap_mint(e, r, R, Badge::NONE))?;
    let p = Puppet::new(world)?;
    expect_ok("give ALL", p.give(r, 5, ALL, 0))?;
    ensure!(p.slot(5)?.is_some_and(|c| c.rights == u64::from(R.bits())), "arrived as {:?}", p.slot(5)?);
    p.teardown(world)
}

fn give_rebadge(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let b = world.slot()?;
    expect_ok("badge", sys::cap_mint(e, b, ALL, Badge::new(4)))?;
    let p = Puppet::new(world)?;
    expect_err("give with a new badge", p.give(b, 5, ALL, 5), ErrorCode::BadgeAlreadySet)?;
    ensure!(p.slot(5)?.is_none(), "something arrived");
    p.teardown(world)
}

fn give_target_slot(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let p = Puppet::new(world)?;
    expect_err("onto the control slot", p.give(e, crate::puppet::CONTROL, ALL, 0), ErrorCode::SlotOccupied)?;
    expect_err("slot 128", p.give(e, 128, ALL, 0), ErrorCode::InvalidSlot)?;
    let control = p.slot(crate::puppet::CONTROL)?;
    ensure!(control.is_some_and(|c| c.rights == u64::from(W.bits())), "the occupied slot changed: {control:?}");
    p.teardown(world)
}

fn give_not_cspace(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let n = create(world, ObjectType::Notification)?;
    expect_err("through an endpoint", process::cap_give(n, e, CapSlot::new(5), ALL, Badge::NONE), ErrorCode::WrongObjectType)?;
    expect_err("through an empty slot", process::cap_give(n, world.slot()?, CapSlot::new(5), ALL, Badge::NONE), ErrorCode::EmptySlot)
}

fn give_no_write(world: &mut World) -> Outcome {
    let n = create(world, ObjectType::Notification)?;
    let cspace = create(world, ObjectType::CSpace)?;
    let read_only = world.slot()?;
    expect_ok("mint R", sys::cap_mint(cspace, read_only, R, Badge::NONE))?;
    expect_err("give through R", process::cap_give(n, read_only, CapSlot::new(5), ALL, Badge::NONE), ErrorCode::InsufficientRights)
}

fn give_cspace_placement(world: &mut World) -> Outcome {
    let a = world.slot()?;
    let b = world.slot()?;
    expect_ok("cspace a", process::create(a, NewObject::CSpace { quota: 0 }))?;
    expect_ok("cspace b", process::create(b, NewObject::CSpace { quota: 0 }))?;
    expect_err("a into itself", process::cap_give(a, a, CapSlot::new(5), ALL, Badge::NONE), ErrorCode::IllegalOperation)?;
    expect_err("a into its sibling b", process::cap_give(a, b, CapSlot::new(5), ALL, Badge::NONE), ErrorCode::IllegalOperation)?;
    let c = world.slot()?;
    expect_ok("copy within our own space (we are its parent)", sys::cap_copy(a, c))?;
    expect_ok("delete", sys::cap_delete(c))
}

fn give_unknown_rights(world: &mut World) -> Outcome {
    let e = endpoint(world)?;
    let cspace = create(world, ObjectType::CSpace)?;
    let (rax, _) = sys::syscall_raw(Sysno::CapGive.as_u64(), [u64::from(e.index()), u64::from(cspace.index()), 5, 1 << 5, 0, 0, 0, 0, 0, 0]);
    expect_err("rights bit 5", audit::code(rax), ErrorCode::InvalidArgument)
}
