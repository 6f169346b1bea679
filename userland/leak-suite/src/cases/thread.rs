//! Threads, and processes that end holding caps: configure, start and kill with their error
//! paths; and exit, kill or fault while holding copies, mints, grants and objects of their
//! own: after the supervisor tears the process down, none of it survives anywhere (the
//! audit), and every object it paid for is gone (the census).

use libcap::process::{self, NewObject, StartState};
use libcap::sys;
use libcap::{Badge, CapSlot, ErrorCode, ObjectType, Sysno};

use crate::audit::Snapshot;
use crate::puppet::{CODE, End, IPC_BUFFER, Puppet, STACK_TOP, STEP_TICKS, Step, expect_ret};
use crate::world::{ALL, Case, Fail, G, Outcome, R, RW, W, World, create, expect_err, expect_ok};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "THREAD-CFG-001", what: "a priority above the caller's: InsufficientRights; 32 or more: InvalidArgument; its own: fine", run: configure_priority },
    Case { id: "THREAD-CFG-002", what: "budget above period, zero budget, period over 10 s: InvalidArgument", run: configure_budget },
    Case { id: "THREAD-CFG-003", what: "a fault endpoint that is empty, not an endpoint, or not writable: EmptySlot, WrongObjectType, InsufficientRights", run: configure_fault_endpoint },
    Case { id: "THREAD-CFG-004", what: "configure through a read-only thread cap or a non-thread: InsufficientRights, WrongObjectType", run: configure_caps },
    Case { id: "THREAD-START-001", what: "starting a running thread again: IllegalOperation", run: start_twice },
    Case { id: "THREAD-START-002", what: "entry, stack or IPC buffer in the kernel half: InvalidArgument, the thread stays unstarted", run: start_kernel_addresses },
    Case { id: "THREAD-START-003", what: "start with caps of the wrong kinds or without write: WrongObjectType, InsufficientRights", run: start_wrong_caps },
    Case { id: "THREAD-KILL-001", what: "killing a blocked thread: its supervisor hears KILLED; through a read-only cap: InsufficientRights", run: kill_blocked },
    Case { id: "THREAD-KILL-002", what: "killing a thread that never started, or one already dead, succeeds and changes nothing", run: kill_idle },
    Case { id: "THREAD-EXIT-001", what: "an exit code reaches the supervisor on the fault endpoint, with the fault cap's badge", run: exit_code },
    Case { id: "EXIT-001", what: "a process that exits holding copies, mints, a given cap and objects of its own: after teardown none of it exists anywhere", run: exit_holding },
    Case { id: "EXIT-002", what: "the same for a process killed while blocked in a receive", run: killed_holding },
    Case { id: "EXIT-003", what: "the same for a process that faults", run: faulted_holding },
    Case { id: "EXIT-004", what: "a cap a dying process granted to another survives it (it was granted), still derived from the original: revoke removes it", run: granted_survives },
];

fn configure(puppet: &Puppet, thread: u64, priority: u64, budget: u64, period: u64, fault: u64) -> Result<crate::puppet::Ret, Fail> {
    puppet.sys(Sysno::ThreadConfigure, &[thread, priority, budget, period, fault])
}

fn expect_code(what: &str, ret: crate::puppet::Ret, want: Result<(), ErrorCode>) -> Outcome {
    let got = crate::audit::code(ret.rax);
    ensure!(got == want, "{what}: expected {want:?}, got {got:?}");
    Ok(())
}

const NONE: u64 = u64::MAX;

/// A puppet with a thread of its own (not started) in slot 6.
fn with_thread(world: &mut World) -> Result<Puppet, Fail> {
    let p = Puppet::new(world)?;
    p.sys_ok("create a thread", Sysno::ObjectCreate, &[u64::from(ObjectType::Thread.as_u32()), 6, 0])?;
    Ok(p)
}

fn configure_priority(world: &mut World) -> Outcome {
    let p = with_thread(world)?;
    expect_code("priority 11 from 10", configure(&p, 6, 11, 0, 0, NONE)?, Err(ErrorCode::InsufficientRights))?;
    expect_code("priority 31", configure(&p, 6, 31, 0, 0, NONE)?, Err(ErrorCode::InsufficientRights))?;
    expect_code("priority 32", configure(&p, 6, 32, 0, 0, NONE)?, Err(ErrorCode::InvalidArgument))?;
    expect_code("priority 2^64-1", configure(&p, 6, u64::MAX, 0, 0, NONE)?, Err(ErrorCode::InvalidArgument))?;
    expect_code("priority 10", configure(&p, 6, 10, 0, 0, NONE)?, Ok(()))?;
    expect_code("priority 1", configure(&p, 6, 1, 0, 0, NONE)?, Ok(()))?;
    p.teardown(world)
}

fn configure_budget(world: &mut World) -> Outcome {
    let p = with_thread(world)?;
    expect_code("budget above period", configure(&p, 6, 5, 2000, 1000, NONE)?, Err(ErrorCode::InvalidArgument))?;
    expect_code("zero budget", configure(&p, 6, 5, 0, 1000, NONE)?, Err(ErrorCode::InvalidArgument))?;
    expect_code("period over 10 s", configure(&p, 6, 5, 1000, 10_000_001, NONE)?, Err(ErrorCode::InvalidArgument))?;
    expect_code("a sane budget", configure(&p, 6, 5, 1000, 10_000, NONE)?, Ok(()))?;
    p.teardown(world)
}

fn configure_fault_endpoint(world: &mut World) -> Outcome {
    let e = create(world, ObjectType::Endpoint)?;
    let n = create(world, ObjectType::Notification)?;
    let p = with_thread(world)?;
    expect_ok("R endpoint", p.give(e, 7, R, 0))?;
    expect_ok("notification", p.give(n, 8, ALL, 0))?;
    expect_code("empty", configure(&p, 6, 5, 0, 0, 9)?, Err(ErrorCode::EmptySlot))?;
    expect_code("a notification", configure(&p, 6, 5, 0, 0, 8)?, Err(ErrorCode::WrongObjectType))?;
    expect_code("read-only endpoint", configure(&p, 6, 5, 0, 0, 7)?, Err(ErrorCode::InsufficientRights))?;
    expect_code("slot 2^32", configure(&p, 6, 5, 0, 0, 1 << 32)?, Err(ErrorCode::InvalidSlot))?;
    expect_code("its control endpoint (writable)", configure(&p, 6, 5, 0, 0, 2)?, Ok(()))?;
    p.teardown(world)
}

fn configure_caps(world: &mut World) -> Outcome {
    let p = with_thread(world)?;
    p.sys_ok("a read-only copy", Sysno::CapMint, &[6, 7, u64::from(R.bits()), 0])?;
    expect_code("through R", configure(&p, 7, 5, 0, 0, NONE)?, Err(ErrorCode::InsufficientRights))?;
    expect_code("through an endpoint", configure(&p, 2, 5, 0, 0, NONE)?, Err(ErrorCode::WrongObjectType))?;
    p.sys_err("kill through R", Sysno::ThreadKill, &[7], ErrorCode::InsufficientRights)?;
    p.sys_err("kill through an endpoint", Sysno::ThreadKill, &[2], ErrorCode::WrongObjectType)?;
    p.teardown(world)
}

fn start_twice(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    let state = StartState { entry: CODE, stack_pointer: STACK_TOP, ipc_buffer: Some(IPC_BUFFER) };
    expect_err("start again", process::thread_start(p.thread, p.aspace, p.cspace, state), ErrorCode::IllegalOperation)?;
    p.sys_ok("it still runs as before", Sysno::Yield, &[])?;
    p.teardown(world)
}

fn start_raw(thread: CapSlot, aspace: CapSlot, cspace: CapSlot, entry: u64, stack: u64, buffer: u64) -> Result<(), ErrorCode> {
    let (rax, _) = sys::syscall_raw(
        Sysno::ThreadStart.as_u64(),
        [u64::from(thread.index()), u64::from(aspace.index()), u64::from(cspace.index()), entry, stack, buffer, 0, 0, 0, 0],
    );
    crate::audit::code(rax)
}

fn start_kernel_addresses(world: &mut World) -> Outcome {
    let [thread, aspace, cspace] = world.slots::<3>()?;
    expect_ok("thread", process::create(thread, NewObject::Thread))?;
    expect_ok("address space", process::create(aspace, NewObject::AddressSpace))?;
    expect_ok("cspace", process::create(cspace, NewObject::CSpace { quota: 0 }))?;
    let kernel = 0xffff_ffff_8020_0000;
    expect_err("entry", start_raw(thread, aspace, cspace, kernel, STACK_TOP, 0), ErrorCode::InvalidArgument)?;
    expect_err("stack", start_raw(thread, aspace, cspace, CODE, kernel, 0), ErrorCode::InvalidArgument)?;
    expect_err("IPC buffer", start_raw(thread, aspace, cspace, CODE, STACK_TOP, kernel), ErrorCode::InvalidArgument)?;
    expect_err("non-canonical entry", start_raw(thread, aspace, cspace, 1 << 47, STACK_TOP, 0), ErrorCode::InvalidArgument)?;
    let threads = Snapshot::take()?.threads.iter().filter(|t| t.state == crate::audit::state::INACTIVE).count();
    ensure!(threads == 1, "{threads} inactive threads, expected ours only");
    Ok(())
}

fn start_wrong_caps(world: &mut World) -> Outcome {
    let [thread, aspace, cspace, read_only] = world.slots::<4>()?;
    let e = create(world, ObjectType::Endpoint)?;
    expect_ok("thread", process::create(thread, NewObject::Thread))?;
    expect_ok("address space", process::create(aspace, NewObject::AddressSpace))?;
    expect_ok("cspace", process::create(cspace, NewObject::CSpace { quota: 0 }))?;
    expect_err("an endpoint as the thread", start_raw(e, aspace, cspace, CODE, STACK_TOP, 0), ErrorCode::WrongObjectType)?;
    expect_err("an endpoint as the address space", start_raw(thread, e, cspace, CODE, STACK_TOP, 0), ErrorCode::WrongObjectType)?;
    expect_err("an address space as the cspace", start_raw(thread, aspace, aspace, CODE, STACK_TOP, 0), ErrorCode::WrongObjectType)?;
    expect_ok("a read-only thread cap", sys::cap_mint(thread, read_only, R, Badge::NONE))?;
    expect_err("through it", start_raw(read_only, aspace, cspace, CODE, STACK_TOP, 0), ErrorCode::InsufficientRights)
}

fn kill_blocked(world: &mut World) -> Outcome {
    let e = create(world, ObjectType::Endpoint)?;
    let p = Puppet::new(world)?;
    expect_ok("give", p.give(e, 5, R, 0))?;
    p.begin(Sysno::Recv.as_u64() as u32, [5, 0, 0, 0, 0, 0, 0, 0])?;
    ensure!(p.finish(5)? == Step::Blocked, "the puppet did not block");
    let read_only = world.slot()?;
    expect_ok("mint R", sys::cap_mint(p.thread, read_only, R, Badge::NONE))?;
    expect_err("kill through R", process::thread_kill(read_only), ErrorCode::InsufficientRights)?;
    expect_ok("kill", process::thread_kill(p.thread))?;
    match p.finish(STEP_TICKS)? {
        Step::Ended(End::Killed) => {}
        other => fail!("expected KILLED, got {other:?}"),
    }
    p.teardown(world)
}

fn kill_idle(world: &mut World) -> Outcome {
    let thread = world.slot()?;
    expect_ok("thread", process::create(thread, NewObject::Thread))?;
    expect_ok("kill an unstarted thread", process::thread_kill(thread))?;
    expect_ok("and again", process::thread_kill(thread))?;
    let p = Puppet::new(world)?;
    match p.op(Sysno::ThreadExit.as_u64() as u32, [0; 8])? {
        Step::Ended(End::Exit(0)) => {}
        other => fail!("expected an exit, got {other:?}"),
    }
    expect_ok("kill the dead", process::thread_kill(p.thread))?;
    ensure!(p.finish(5)? == Step::Blocked, "killing the dead sent another report");
    p.teardown(world)
}

fn exit_code(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    match p.op(Sysno::ThreadExit.as_u64() as u32, [0x77, 0, 0, 0, 0, 0, 0, 0])? {
        Step::Ended(End::Exit(0x77)) => {}
        other => fail!("expected exit 0x77, got {other:?}"),
    }
    p.teardown(world)
}

/// Gives a puppet a pile of authority: two caps from us (slots 5, 6), a copy and a badged
/// mint of them (7, 8), objects of its own (9 endpoint, 10 frame, 11 cspace, 12 thread),
/// and a cap given into its child cspace. Returns the object identities it held.
fn load_up(world: &mut World, p: &Puppet) -> Result<alloc::vec::Vec<u64>, Fail> {
    let e = create(world, ObjectType::Endpoint)?;
    let f = create(world, ObjectType::Frame)?;
    expect_ok("endpoint", p.give(e, 5, RW.union(G), 0))?;
    expect_ok("frame", p.give(f, 6, RW, 0))?;
    p.sys_ok("copy", Sysno::CapCopy, &[5, 7])?;
    p.sys_ok("mint", Sysno::CapMint, &[5, 8, u64::from(W.bits()), 0x99])?;
    for (slot, kind, size) in [(9, ObjectType::Endpoint, 0), (10, ObjectType::Frame, 0), (11, ObjectType::CSpace, 0), (12, ObjectType::Thread, 0)] {
        p.sys_ok("create", Sysno::ObjectCreate, &[u64::from(kind.as_u32()), slot, size])?;
    }
    p.sys_ok("give into its child", Sysno::CapGive, &[9, 11, 1, u64::from(ALL.bits()), 0])?;
    let mut objects = alloc::vec::Vec::new();
    for (_, cap) in p.caps()? {
        objects.push(cap.object);
    }
    Ok(objects)
}

/// After teardown: our originals are the only holders of what we gave, and the puppet's own
/// objects are gone.
fn nothing_survives(world: &World, objects: &[u64], ours: &[CapSlot]) -> Outcome {
    let snapshot = Snapshot::take()?;
    for &object in objects {
        let holders = snapshot.holders(object);
        let only_ours = holders.iter().all(|&(space, slot)| space == world.own_space && ours.iter().any(|o| o.index() == slot));
        ensure!(only_ours, "object {object} is still held at {holders:?}");
    }
    Ok(())
}

fn originals() -> Result<alloc::vec::Vec<CapSlot>, Fail> {
    // Every cap we hold in the free slots: the cases' originals.
    Ok((crate::world::FIRST_FREE..crate::world::SLOTS).map(CapSlot::new).filter(|&slot| sys::cap_identify(slot).is_ok()).collect())
}

fn exit_holding(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    let objects = load_up(world, &p)?;
    match p.op(Sysno::ThreadExit.as_u64() as u32, [0; 8])? {
        Step::Ended(End::Exit(0)) => {}
        other => fail!("expected an exit, got {other:?}"),
    }
    p.teardown(world)?;
    nothing_survives(world, &objects, &originals()?)
}

fn killed_holding(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    let objects = load_up(world, &p)?;
    p.begin(Sysno::Recv.as_u64() as u32, [5, 0, 0, 0, 0, 0, 0, 0])?;
    ensure!(p.finish(5)? == Step::Blocked, "the puppet did not block");
    expect_ok("kill", process::thread_kill(p.thread))?;
    ensure!(p.finish(STEP_TICKS)? == Step::Ended(End::Killed), "no KILLED report");
    p.teardown(world)?;
    nothing_survives(world, &objects, &originals()?)
}

fn faulted_holding(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    let objects = load_up(world, &p)?;
    match p.load(0)? {
        Step::Ended(End::Fault { vector: 14, .. }) => {}
        other => fail!("expected a page fault, got {other:?}"),
    }
    p.teardown(world)?;
    nothing_survives(world, &objects, &originals()?)
}

fn granted_survives(world: &mut World) -> Outcome {
    let e = create(world, ObjectType::Endpoint)?;
    let n = create(world, ObjectType::Notification)?;
    let giver = Puppet::new(world)?;
    let keeper = Puppet::new(world)?;
    expect_ok("giver's endpoint", giver.give(e, 5, W.union(G), 0))?;
    expect_ok("keeper's endpoint", keeper.give(e, 5, R, 0))?;
    expect_ok("the cap to pass", giver.give(n, 6, RW, 0))?;
    expect_ret("send-cap slot", giver.store(IPC_BUFFER + 0xF00, 6)?)?;
    expect_ret("receive-cap slot", keeper.store(IPC_BUFFER + 0xF20, 9)?)?;
    keeper.begin(Sysno::Recv.as_u64() as u32, [5, 0, 0, 0, 0, 0, 0, 0])?;
    giver.sys_ok("send", Sysno::Send, &[5, 1 << 10])?;
    expect_ret("receive", keeper.finish(STEP_TICKS)?)?;
    giver.teardown(world)?;
    ensure!(keeper.slot(9)?.is_some(), "the granted cap died with its giver");
    keeper.sys_ok("it works", Sysno::Signal, &[9])?;
    expect_ok("revoke the original", sys::cap_revoke(n))?;
    ensure!(keeper.slot(9)?.is_none(), "the revoke missed the granted cap");
    keeper.teardown(world)
}
