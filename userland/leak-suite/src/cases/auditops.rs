//! The audit syscalls themselves (`AuditCap`, `AuditThread`): bounds, and that they work
//! only through an audit cap with read.

use libcap::sys;
use libcap::{Badge, ErrorCode, Rights};

use crate::audit::{self, Snapshot, audit_cap, audit_cap_with, audit_thread, audit_thread_with};
use crate::puppet::Puppet;
use crate::world::{AUDIT, Case, Outcome, World, expect_err, expect_ok};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "AUDIT-CAP-001", what: "AuditCap past the last space or slot: InvalidSlot", run: cap_bounds },
    Case { id: "AUDIT-CAP-002", what: "AuditCap of a space that is not live: InvalidSlot (as the ABI says)", run: cap_dead_space },
    Case { id: "AUDIT-CAP-003", what: "AuditCap of an empty slot: EmptySlot; of a cap: its kind, rights, badge and object", run: cap_slots },
    Case { id: "AUDIT-CAP-004", what: "AuditCap through the console, an empty slot or a rights-less audit cap: WrongObjectType, EmptySlot, InsufficientRights", run: cap_needs_audit },
    Case { id: "AUDIT-THREAD-001", what: "AuditThread past the last thread: InvalidArgument; through anything but an audit cap with read: refused", run: thread_bounds },
    Case { id: "AUDIT-THREAD-002", what: "a process's thread shows in its space while it lives and is gone once it is torn down", run: thread_lifecycle },
    Case { id: "AUDIT-DENIAL-001", what: "a puppet's refused syscall is in the kernel's denial record with its syscall, error and thread; past its process's allowance of 4 a second the rest are not kept (a flood cannot push others' records out)", run: denial_record },
];

fn denial_record(world: &mut World) -> Outcome {
    use libcap::abi::syscall::denial::{BURST_PER_SECOND, REFUSED_SYSCALL};
    use libcap::Sysno;
    let p = Puppet::new(world)?;
    let thread = sys::cap_identify(p.thread).map_err(|e| crate::world::Fail(alloc::format!("identify the puppet's thread: {e:?}")))?.audit_index;
    let next = |number| match sys::audit_denial(AUDIT, number) {
        Ok(Err(next)) => Ok(next),
        other => Err(crate::world::Fail(alloc::format!("AuditDenial({number}) past the end: {other:?}"))),
    };
    let start = next(u64::MAX)?;
    // More than its allowance at once: the first BURST_PER_SECOND are kept.
    let refusals = u64::from(BURST_PER_SECOND) + 3;
    for _ in 0..refusals {
        p.sys_err("send on an empty slot", Sysno::NbSend, &[40, 0], ErrorCode::EmptySlot)?;
    }
    let mut kept = 0;
    let mut number = start;
    while let Ok(Ok(denial)) = sys::audit_denial(AUDIT, number) {
        number = denial.number + 1;
        if u64::from(denial.thread) != thread {
            continue;
        }
        ensure!(denial.kind == REFUSED_SYSCALL && denial.syscall == Sysno::NbSend as u16 && denial.code == Some(ErrorCode::EmptySlot), "the record is not the refusal: {denial:?}");
        kept += 1;
    }
    ensure!(kept == u64::from(BURST_PER_SECOND), "{kept} of the puppet's {refusals} refusals were kept within the second; the allowance is {BURST_PER_SECOND}");
    p.teardown(world)
}

fn cap_bounds(_: &mut World) -> Outcome {
    for space in [64, 255, 65_535, 65_536, u64::MAX] {
        expect_err("space past the last", audit_cap(space, 0), ErrorCode::InvalidSlot)?;
    }
    for slot in [128, 1 << 32, u64::MAX] {
        expect_err("slot past the last", audit_cap(0, slot), ErrorCode::InvalidSlot)?;
    }
    Ok(())
}

fn cap_dead_space(world: &mut World) -> Outcome {
    let live: alloc::vec::Vec<u16> = world.reference.spaces.iter().map(|s| s.index).collect();
    let Some(dead) = (0..64u16).find(|index| !live.contains(index)) else { fail!("all 64 spaces are live") };
    expect_err("a dead space", audit_cap(u64::from(dead), 1), ErrorCode::InvalidSlot)
}

fn cap_slots(world: &mut World) -> Outcome {
    expect_err("an empty slot of ours", audit_cap(u64::from(world.own_space), 100), ErrorCode::EmptySlot)?;
    let console = expect_ok("our console", audit_cap(u64::from(world.own_space), 1))?;
    let root = expect_ok("the console root", audit_cap(0, 0))?;
    ensure!(console.is(libcap::ObjectType::Console) && console.rights == u64::from(Rights::WRITE.bits()), "our console: {console:?}");
    ensure!(console.object == root.object, "our console names object {}, the root {}", console.object, root.object);
    Ok(())
}

fn cap_needs_audit(world: &mut World) -> Outcome {
    expect_err("through the console", audit_cap_with(1, 0, 0), ErrorCode::WrongObjectType)?;
    let empty = world.slot()?;
    expect_err("through an empty slot", audit_cap_with(u64::from(empty.index()), 0, 0), ErrorCode::EmptySlot)?;
    expect_ok("a rights-less audit cap", sys::cap_mint(AUDIT, empty, Rights::NONE, Badge::NONE))?;
    expect_err("through it", audit_cap_with(u64::from(empty.index()), 0, 0), ErrorCode::InsufficientRights)?;
    expect_err("AuditThread through it", audit_thread_with(u64::from(empty.index()), 0), ErrorCode::InsufficientRights)
}

fn thread_bounds(_: &mut World) -> Outcome {
    let last = u64::from(libcap::abi::tables::Table::Threads.capacity());
    for index in [last, last + 1, 1000, u64::MAX] {
        expect_err("past the last thread", audit_thread(index), ErrorCode::InvalidArgument)?;
    }
    expect_err("through the console", audit_thread_with(1, 0), ErrorCode::WrongObjectType)?;
    let (space, state) = expect_ok("the idle thread", audit_thread(0))?;
    ensure!(space == 0 && state != audit::state::FREE, "thread 0: space {space}, state {state}");
    Ok(())
}

fn thread_lifecycle(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    let running = Snapshot::take()?;
    ensure!(running.threads_in(p.space) == 1, "the puppet's space has {} threads", running.threads_in(p.space));
    let space = p.space;
    p.teardown(world)?;
    let after = Snapshot::take()?;
    ensure!(after.space(space).is_none(), "the puppet's space {space} is still live");
    ensure!(after.threads_in(space) == 0, "a thread still runs in space {space}");
    Ok(())
}
