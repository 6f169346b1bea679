//! Object lifetimes and kernel memory under attack: what a destroyed object's index reaches
//! once it is reused, page tables paid for by the address space's quota, and slot 0.
//!
//! Each case is an attack that worked on the kernel before the fix it names, and fails if
//! the fix is undone (tests/README.md lists them with the class of bug they catch).

use libcap::process::{self, ThreadConfig};
use libcap::sys;
use libcap::{Badge, CapSlot, ErrorCode, ObjectType, Rights, Sysno};

use crate::audit;
use crate::puppet::{DATA, End, Options, Puppet, Step};
use crate::world::{Case, Fail, Outcome, W, World, create, expect_err, expect_ok, expect_slot};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "LIFE-CSPACE-001", what: "deleting a capability space's last cap kills the threads running in it (reported Killed): none keeps running on an index the next space is given, where it would name that space's caps", run: cspace_threads_die },
    Case { id: "LIFE-ENDPOINT-001", what: "a fault endpoint whose last cap is deleted is unbound: the thread's exit report never reaches the endpoint that reuses its index", run: fault_endpoint_unbound },
    Case { id: "LIFE-SLOT0-001", what: "slot 0 is never filled: CapCopy, CapMint, CapMove, CapGive and ObjectCreate into it, and a cap sent by message into it, are InvalidSlot", run: slot_zero },
    Case { id: "KMEM-PT-001", what: "page tables are charged to the address space's payer: a process with quota for five tables is refused the sixth (OutOfQuota, nothing mapped), and unmapping frees and refunds them, so 64 map/unmap cycles at 1 GiB strides fit in the same quota", run: page_tables_charged },
];

fn code(rax: u64) -> Result<(), ErrorCode> {
    audit::code(rax)
}

fn cspace_threads_die(world: &mut World) -> Outcome {
    let victim_of_reuse = Puppet::new(world)?;
    let attacker = Puppet::new(world)?;
    attacker.sys_ok("the attacker runs", Sysno::CapIdentify, &[2])?;
    let old_space = attacker.space;
    // The attacker's thread and address space stay; only its capability space goes.
    expect_ok("delete the attacker's cspace", sys::cap_delete(attacker.cspace))?;
    // A new process is built now: on a kernel that reuses the lowest free index, it gets
    // the attacker's old one.
    let newcomer = Puppet::new(world)?;
    libcap::println!(
        "leak-suite: LIFE-CSPACE-001: the attacker's space was {old_space}, the newcomer's is {} (reused: {})",
        newcomer.space,
        newcomer.space == old_space
    );
    // The attacker asks for its next operation through slot 2: if it still ran, that is
    // the newcomer's control endpoint now, under the newcomer's badge.
    match attacker.op(Sysno::CapIdentify.as_u64() as u32, [2, 0, 0, 0, 0, 0, 0, 0])? {
        Step::Ended(End::Killed) => {}
        other => fail!("the attacker's thread outlived its capability space: {other:x?}"),
    }
    match sys::nb_recv(newcomer.control) {
        Err(ErrorCode::WouldBlock) => {}
        other => fail!("the newcomer's control endpoint received {other:?} (not from the newcomer)"),
    }
    newcomer.sys_ok("the newcomer is unharmed", Sysno::CapIdentify, &[2])?;
    victim_of_reuse.sys_ok("and so is a bystander", Sysno::CapIdentify, &[2])?;
    // The attacker's remaining slots (its thread, address space, frames) go with the case.
    newcomer.teardown(world)?;
    victim_of_reuse.teardown(world)
}

fn fault_endpoint_unbound(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    let reports = create(world, ObjectType::Endpoint)?;
    let fault = world.slot()?;
    expect_ok("a badged fault cap", sys::cap_mint(reports, fault, W, Badge::new(0xfa17)))?;
    let config = ThreadConfig { priority: 10, budget: None, fault_endpoint: Some(fault) };
    expect_ok("make it the puppet's fault endpoint", process::thread_configure(p.thread, config))?;
    expect_ok("delete the fault cap", sys::cap_delete(fault))?;
    expect_ok("delete the endpoint's last cap", sys::cap_delete(reports))?;
    // The next endpoint made takes the lowest free index: the dead one's.
    let private = create(world, ObjectType::Endpoint)?;
    if let Some(end) = p.begin(Sysno::ThreadExit.as_u64() as u32, [0x0bad_c0de, 0, 0, 0, 0, 0, 0, 0])? {
        fail!("the puppet ended early: {end:?}");
    }
    ensure!(p.finish(20)? == Step::Blocked, "a report reached the suite's control endpoint");
    match sys::nb_recv(private) {
        Err(ErrorCode::WouldBlock) => {}
        Ok(received) => fail!("an exit report with badge {:#x} reached an endpoint it was never given: {received:?}", received.badge.value()),
        Err(other) => fail!("receiving on the new endpoint: {other:?}"),
    }
    p.teardown(world)
}

fn slot_zero(world: &mut World) -> Outcome {
    let zero = CapSlot::new(0);
    let e = create(world, ObjectType::Endpoint)?;
    expect_err("CapCopy into 0", sys::cap_copy(e, zero), ErrorCode::InvalidSlot)?;
    expect_err("CapMint into 0", sys::cap_mint(e, zero, W, Badge::new(3)), ErrorCode::InvalidSlot)?;
    expect_err("CapMove into 0", sys::cap_move(e, zero), ErrorCode::InvalidSlot)?;
    expect_err("ObjectCreate into 0", sys::object_create(zero, ObjectType::Endpoint, 0), ErrorCode::InvalidSlot)?;
    expect_slot("our slot 0", zero, None)?;
    expect_slot("the endpoint stayed", e, Some((ObjectType::Endpoint, Rights::ALL, 0)))?;
    let server = Puppet::new(world)?;
    let client = Puppet::new(world)?;
    expect_err("CapGive into a puppet's 0", server.give(e, 0, W, 0), ErrorCode::InvalidSlot)?;
    ensure!(server.slot(0)?.is_none(), "CapGive filled the puppet's slot 0");
    expect_ok("the server's endpoint", server.give(e, 5, Rights::READ, 0))?;
    expect_ok("the client's endpoint", client.give(e, 5, W.union(Rights::GRANT), 0))?;
    expect_ok("a cap to send", client.give(e, 6, W, 0))?;
    client.store(crate::puppet::IPC_BUFFER + libcap::abi::ipc_buffer::SEND_CAPS_OFFSET as u64, 6)?;
    server.store(crate::puppet::IPC_BUFFER + libcap::abi::ipc_buffer::RECV_CAPS_OFFSET as u64, 0)?;
    server.begin(Sysno::Recv.as_u64() as u32, [5, 0, 0, 0, 0, 0, 0, 0])?;
    let info = libcap::MessageInfo::new(0, 0, 1).map_or(0, libcap::MessageInfo::encode);
    client.sys_err("a cap sent into slot 0", Sysno::Send, &[5, info], ErrorCode::InvalidSlot)?;
    ensure!(server.finish(20)? == Step::Blocked, "the refused message arrived");
    ensure!(server.slot(0)?.is_none(), "a message filled the receiver's slot 0");
    server.teardown(world)?;
    client.teardown(world)
}

/// Maps `frame` (its slot 11) in the hog's own address space (slot 10) at 1 GiB stride `n`.
fn map_at(hog: &Puppet, n: u64) -> Result<Result<(), ErrorCode>, Fail> {
    Ok(code(hog.sys(Sysno::Map, &[10, 11, DATA + (n << 30), 0])?.rax))
}

fn unmap_at(hog: &Puppet, n: u64) -> Result<Result<(), ErrorCode>, Fail> {
    Ok(code(hog.sys(Sysno::Unmap, &[10, DATA + (n << 30)])?.rax))
}

fn page_tables_charged(world: &mut World) -> Outcome {
    const PAGE: u64 = 4096;
    const SPACE_COST: u64 = 4 * PAGE;
    // Its own address space and one frame, then five tables: PDPT, PD and PT for the first
    // mapping, a PD and a PT for the second (each in its own GiB); the third needs two more.
    let hog = Puppet::with(world, Options { quota: SPACE_COST + PAGE + 5 * PAGE, ..Options::default() })?;
    hog.sys_ok("its own address space", Sysno::ObjectCreate, &[u64::from(ObjectType::AddressSpace.as_u32()), 10, 0])?;
    hog.sys_ok("one frame", Sysno::ObjectCreate, &[u64::from(ObjectType::Frame.as_u32()), 11, 0])?;
    expect_ok("first mapping (three tables)", map_at(&hog, 0)?)?;
    expect_ok("second mapping (two tables)", map_at(&hog, 1)?)?;
    expect_err("third mapping: its tables are not paid for", map_at(&hog, 2)?, ErrorCode::OutOfQuota)?;
    expect_err("and nothing of it was mapped", unmap_at(&hog, 2)?, ErrorCode::InvalidArgument)?;
    expect_ok("unmap the second (its two tables go)", unmap_at(&hog, 1)?)?;
    for n in 2..66 {
        expect_ok("map at the next GiB", map_at(&hog, n)?)?;
        expect_ok("and unmap it", unmap_at(&hog, n)?)?;
    }
    expect_ok("the quota still pays for a second GiB", map_at(&hog, 1)?)?;
    expect_err("and no more", map_at(&hog, 3)?, ErrorCode::OutOfQuota)?;
    hog.teardown(world)
}
