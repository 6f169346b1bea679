//! Exhaustion: a hostile process creating objects until it cannot. What it may spend is its
//! quota: its bytes (exactly quota / cost objects when bytes bind), and its share of each
//! kernel table (`abi::tables::share` of its quota when a share binds), then `OutOfQuota`, a
//! refund when one goes, and the rest of the system working throughout. No process can use
//! the table entries another's share promises (EXH-007), and a child's share is carved from
//! its parent's, never added to it (EXH-008).

use libcap::abi::tables::{Table, share};
use libcap::{ErrorCode, MessageInfo, ObjectType, Sysno};

use crate::puppet::{Options, Puppet, STEP_TICKS, expect_ret};
use crate::world::{ALL, Case, Fail, Outcome, R, W, World, create, expect_ok};
use crate::ensure;

pub const CASES: &[Case] = &[
    Case { id: "EXH-001", what: "frames: exactly quota / frame size, then OutOfQuota; deleting one refunds it", run: frames },
    Case { id: "EXH-002", what: "threads: exactly the thread-table share the quota buys (1 MiB: 4), then OutOfQuota, though bytes are left", run: threads },
    Case { id: "EXH-003", what: "endpoints and notifications: each exactly its table share (256 KiB: 4 of each), then OutOfQuota; deleting one gives its entry back", run: endpoints },
    Case { id: "EXH-004", what: "capability spaces cost 4 KiB plus the quota they carry, and an entry of the space table; more than is left of either: OutOfQuota", run: cspaces },
    Case { id: "EXH-005", what: "a child space's quota is carved out of its parent's: the parent can spend only the rest", run: nested },
    Case { id: "EXH-006", what: "while one process sits at OutOfQuota, two others keep exchanging messages and new processes can be built", run: others_keep_running },
    Case { id: "EXH-007", what: "no process can fill a kernel table: a hog fills exactly its share of the endpoint, notification, thread, address-space, capability-space and object tables (OutOfQuota, never OutOfResources), and a process made before it and one made after it each still create every kind", run: table_shares },
    Case { id: "EXH-008", what: "a child's table shares are carved out of its parent's: with a child holding half its quota, a process can create only the rest of each share, and gets it all back when the child goes", run: carved_shares },
];

fn kind(kind: ObjectType) -> u64 {
    u64::from(kind.as_u32())
}

/// Creates `kind` in slots `first..` until the kernel refuses; returns how many it made and
/// the refusal.
fn fill(p: &Puppet, kind_: ObjectType, size: u64, first: u64, limit: u64) -> Result<(u64, Option<ErrorCode>), Fail> {
    for made in 0..limit {
        let ret = p.sys(Sysno::ObjectCreate, &[kind(kind_), first + made, size])?;
        if let Err(code) = crate::audit::code(ret.rax) {
            return Ok((made, Some(code)));
        }
    }
    Ok((limit, None))
}

fn quota(world: &mut World, quota: u64) -> Result<Puppet, Fail> {
    Puppet::with(world, Options { quota, ..Options::default() })
}

fn frames(world: &mut World) -> Outcome {
    // 64 KiB in 16 KiB frames: the bytes bind (the object share is 8).
    const FRAME: u64 = 16 * 1024;
    let p = quota(world, 4 * FRAME)?;
    let (made, refused) = fill(&p, ObjectType::Frame, FRAME, 10, 20)?;
    ensure!(made == 4 && refused == Some(ErrorCode::OutOfQuota), "made {made} frames, then {refused:?}");
    ensure!(p.slot(14)?.is_none(), "the refused create left a cap");
    p.sys_ok("delete one", Sysno::CapDelete, &[11])?;
    p.sys_ok("create again", Sysno::ObjectCreate, &[kind(ObjectType::Frame), 11, FRAME])?;
    p.sys_err("and no more", Sysno::ObjectCreate, &[kind(ObjectType::Frame), 14, FRAME], ErrorCode::OutOfQuota)?;
    p.teardown(world)
}

fn threads(world: &mut World) -> Outcome {
    let p = quota(world, 1 << 20)?;
    let (made, refused) = fill(&p, ObjectType::Thread, 0, 10, 20)?;
    ensure!(made == 4 && refused == Some(ErrorCode::OutOfQuota), "made {made} threads, then {refused:?}");
    p.teardown(world)
}

fn endpoints(world: &mut World) -> Outcome {
    let p = quota(world, 256 * 1024)?;
    let (made, refused) = fill(&p, ObjectType::Endpoint, 0, 10, 30)?;
    ensure!(made == 4 && refused == Some(ErrorCode::OutOfQuota), "made {made} endpoints, then {refused:?}");
    let (made, refused) = fill(&p, ObjectType::Notification, 0, 20, 30)?;
    ensure!(made == 4 && refused == Some(ErrorCode::OutOfQuota), "then made {made} notifications (a table of their own), then {refused:?}");
    p.sys_ok("delete an endpoint", Sysno::CapDelete, &[10])?;
    p.sys_err("its entry is not a notification's", Sysno::ObjectCreate, &[kind(ObjectType::Notification), 10, 0], ErrorCode::OutOfQuota)?;
    p.sys_ok("an endpoint in its place", Sysno::ObjectCreate, &[kind(ObjectType::Endpoint), 10, 0])?;
    p.sys_err("and no more", Sysno::ObjectCreate, &[kind(ObjectType::Endpoint), 40, 0], ErrorCode::OutOfQuota)?;
    p.teardown(world)
}

fn cspaces(world: &mut World) -> Outcome {
    // 1 MiB buys two entries of the space table; bytes would pay for 255 empty spaces.
    let p = quota(world, 1 << 20)?;
    p.sys_err("one carrying all of it", Sysno::ObjectCreate, &[kind(ObjectType::CSpace), 10, 1 << 20], ErrorCode::OutOfQuota)?;
    p.sys_err("2^64-1 bytes", Sysno::ObjectCreate, &[kind(ObjectType::CSpace), 20, u64::MAX], ErrorCode::OutOfQuota)?;
    let (made, refused) = fill(&p, ObjectType::CSpace, 0, 10, 10)?;
    ensure!(made == 2 && refused == Some(ErrorCode::OutOfQuota), "made {made} empty spaces, then {refused:?}");
    p.teardown(world)
}

fn nested(world: &mut World) -> Outcome {
    const FRAME: u64 = 64 * 1024;
    let p = quota(world, 1 << 20)?;
    p.sys_ok("a child carrying 512 KiB", Sysno::ObjectCreate, &[kind(ObjectType::CSpace), 10, 512 * 1024])?;
    // 1 MiB - (512 KiB + 4 KiB) = 508 KiB: seven 64 KiB frames.
    let (made, refused) = fill(&p, ObjectType::Frame, FRAME, 11, 20)?;
    ensure!(made == 7 && refused == Some(ErrorCode::OutOfQuota), "made {made} frames beside the child, then {refused:?}");
    p.sys_ok("delete the child", Sysno::CapDelete, &[10])?;
    let (more, refused) = fill(&p, ObjectType::Frame, FRAME, 30, 20)?;
    ensure!(more == 9 && refused == Some(ErrorCode::OutOfQuota), "the child's 516 KiB came back as {more} frames, then {refused:?}");
    p.teardown(world)
}

fn others_keep_running(world: &mut World) -> Outcome {
    let hog = quota(world, 8 * 4096)?;
    let (made, refused) = fill(&hog, ObjectType::Frame, 0, 10, 20)?;
    // 32 KiB buys four objects (`abi::tables`), before the bytes of eight pages.
    ensure!(made == 4 && refused == Some(ErrorCode::OutOfQuota), "the hog made {made}, then {refused:?}");
    let e = create(world, ObjectType::Endpoint)?;
    let server = Puppet::new(world)?;
    let client = Puppet::new(world)?;
    expect_ok("server", server.give(e, 5, R, 0))?;
    expect_ok("client", client.give(e, 5, W, 0))?;
    let info = MessageInfo::new(0, 1, 0).map_or(0, MessageInfo::encode);
    for round in 0..20u64 {
        server.begin(Sysno::Recv.as_u64() as u32, [5, 0, 0, 0, 0, 0, 0, 0])?;
        client.sys_ok("send", Sysno::Send, &[5, info, round])?;
        let got = expect_ret("receive", server.finish(STEP_TICKS)?)?;
        ensure!(got.word(0) == round, "round {round} arrived as {}", got.word(0));
    }
    hog.sys_err("the hog is still out of quota", Sysno::ObjectCreate, &[kind(ObjectType::Frame), 40, 0], ErrorCode::OutOfQuota)?;
    for puppet in [hog, server, client] {
        puppet.teardown(world)?;
    }
    Ok(())
}

/// The kinds with a kernel table of their own, and that table.
const TABLE_KINDS: [(ObjectType, Table); 5] = [
    (ObjectType::Endpoint, Table::Endpoints),
    (ObjectType::Notification, Table::Notifications),
    (ObjectType::Thread, Table::Threads),
    (ObjectType::AddressSpace, Table::AddressSpaces),
    (ObjectType::CSpace, Table::CSpaces),
];

/// Fills `p`'s share of each table in [`TABLE_KINDS`] (empty child spaces for the space
/// table) from slot 10 on, checking each stops at exactly `share(table, shares_of)` minus
/// `already` of it, with `OutOfQuota`. Returns the next free slot.
fn fill_shares(p: &Puppet, shares_of: u64, already: &dyn Fn(Table) -> u32) -> Result<u64, Fail> {
    let mut next = 10;
    for (kind_, table) in TABLE_KINDS {
        let want = u64::from(share(table, shares_of).saturating_sub(already(table)));
        let (made, refused) = fill(p, kind_, 0, next, want + 3)?;
        ensure!(
            made == want && refused == Some(ErrorCode::OutOfQuota),
            "{}: made {made} of a share of {want}, then {refused:?}",
            table.name()
        );
        next += made;
    }
    Ok(next)
}

/// One of each kind in [`TABLE_KINDS`], in slots 10.., must succeed.
fn create_each(who: &str, p: &Puppet) -> Outcome {
    for (slot, (kind_, table)) in (10u64..).zip(TABLE_KINDS) {
        let what = alloc::format!("{who}: one of its {} after the hog filled its share", table.name());
        p.sys_ok(&what, Sysno::ObjectCreate, &[kind(kind_), slot, 0])?;
    }
    Ok(())
}

fn table_shares(world: &mut World) -> Outcome {
    const HOG: u64 = 2 << 20;
    let before = quota(world, 64 * 1024)?;
    let hog = quota(world, HOG)?;
    let next = fill_shares(&hog, HOG, &|_| 0)?;
    // The object table too: frames up to the object share (the spaces and objects above
    // took some of it already).
    let objects = u64::from(share(Table::Objects, HOG));
    let held = next - 10;
    let mut made = 0;
    let mut refused = None;
    // The hog's own slots are few: park the frames in the empty child spaces it made last
    // (slots next-4..next), 120 to a space.
    while made + held < objects + 3 {
        let ret = hog.sys(Sysno::ObjectCreate, &[kind(ObjectType::Frame), 120, 0])?;
        if let Err(code) = crate::audit::code(ret.rax) {
            refused = Some(code);
            break;
        }
        let (parking, slot) = (next - 1 - made / 120, 1 + made % 120);
        made += 1;
        hog.sys_ok("park it", Sysno::CapGive, &[120, parking, slot, u64::from(ALL.bits()), 0])?;
        hog.sys_ok("drop ours", Sysno::CapDelete, &[120])?;
    }
    ensure!(
        made + held == objects && refused == Some(ErrorCode::OutOfQuota),
        "objects: {held} + {made} frames of a share of {objects}, then {refused:?}"
    );
    let after = quota(world, 64 * 1024)?;
    create_each("the process made before", &before)?;
    create_each("the process made after", &after)?;
    libcap::println!("leak-suite: EXH-007: a hog with {} KiB filled its shares ({held} table entries, {objects} objects) and stopped at OutOfQuota; two others still created every kind", HOG >> 10);
    for puppet in [hog, before, after] {
        puppet.teardown(world)?;
    }
    Ok(())
}

fn carved_shares(world: &mut World) -> Outcome {
    const PARENT: u64 = 2 << 20;
    const CHILD: u64 = 1 << 20;
    let p = quota(world, PARENT)?;
    p.sys_ok("a child carrying half", Sysno::ObjectCreate, &[kind(ObjectType::CSpace), 9, CHILD])?;
    // The child holds its shares, and the parent its entry in the space table.
    let given = |table: Table| share(table, CHILD) + u32::from(table == Table::CSpaces);
    fill_shares(&p, PARENT, &given)?;
    for slot in 10..127 {
        if p.slot(slot)?.is_some() {
            p.sys_ok("empty it", Sysno::CapDelete, &[u64::from(slot)])?;
        }
    }
    p.sys_ok("delete the child", Sysno::CapDelete, &[9])?;
    fill_shares(&p, PARENT, &|_| 0)?;
    p.teardown(world)
}
