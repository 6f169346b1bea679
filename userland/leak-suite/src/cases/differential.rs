//! Differential testing against the reference model (`kcore::model`): a hostile puppet runs
//! a seeded random sequence of creates (endpoints, notifications, frames, threads, address
//! spaces, child capability spaces), thread starts (in its children's spaces), kills and
//! budgets (out of its own), signals and polls (the words compared), non-blocking sends and
//! receives, copies, mints, moves, deletes, revokes and gives into its children, and after
//! every step the suite compares the kernel with the model: the error code, and every slot
//! of the puppet's pool and of each of its live child spaces (kind, rights, badge, and
//! which object: the model never reuses a name, the kernel reuses indices, so a reference
//! that outlived its object shows as a slot naming another object). A dead child's space
//! index must be dead too, until a new child gets it. The table shares are small, so
//! OutOfQuota and the entries given back are exercised; deleting a child's last cap destroys it with everything in it.

use alloc::vec::Vec;

use kcore::cap::{ObjectType, Rights};
use kcore::model::{CHILDREN, Effect, Model, Op, POOL, Place};
use libcap::process::{self, Budget, ThreadConfig};
use libcap::{ErrorCode, Sysno};

use crate::audit::{self, CapRecord};
use crate::puppet::{Options, Puppet};
use crate::world::{Case, Fail, Outcome, World};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[Case {
    id: "DIFF-001",
    what: "100,000 random steps by a hostile process (create every kind, copy/mint, move, delete, revoke, give into child spaces it makes and destroys, start and kill threads there, give them budgets, signal and poll, non-blocking IPC) match the reference model after every step: error codes, poll words, every slot of every space, object identity across index reuse, dead spaces dead, the threads each space runs",
    run: differential,
}];

/// Steps of the CI run (`cargo xtask test`); `cargo xtask fuzz --differential` runs
/// campaigns of other seeds and lengths.
const STEPS: u64 = 100_000;
/// The puppet's first pool slot.
const BASE: u64 = 4;
/// The puppet's quota: 528 KiB, whose table shares (`abi::tables::share`) bind long before
/// its bytes: 9 endpoints, 9 notifications, 3 threads, 2 address spaces and 2 child spaces
/// alive at once.
const QUOTA: u64 = (512 + 16) * 1024;

/// The puppet's own CPU budget, out of which it gives its threads theirs.
const PUPPET_BUDGET_US: u32 = 9_000;
const PUPPET_PERIOD_US: u32 = 10_000;

struct Rng(libcap::rand::SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
}

fn random_op(rng: &mut Rng, model: &Model) -> Op {
    let slot = |rng: &mut Rng| rng.below(POOL as u64) as usize;
    let rights = |rng: &mut Rng| if rng.below(3) == 0 { Rights::ALL } else { Rights::from_bits(rng.below(32) as u32).unwrap_or(Rights::ALL) };
    let badge = |rng: &mut Rng| if rng.below(3) == 0 { 1 + rng.below(7) } else { 0 };
    match rng.below(28) {
        0..=4 => {
            let free_child = (0..CHILDREN).any(|child| !model.child_live(child));
            let kind = match rng.below(6) {
                0 => ObjectType::Endpoint,
                1 => ObjectType::Notification,
                2 => ObjectType::Frame,
                3 => ObjectType::Thread,
                4 => ObjectType::AddressSpace,
                _ if free_child => ObjectType::CSpace,
                _ => ObjectType::Endpoint,
            };
            Op::Create { kind, at: slot(rng) }
        }
        5..=8 => Op::Mint { from: slot(rng), to: slot(rng), rights: rights(rng), badge: badge(rng) },
        9..=10 => Op::Move { from: slot(rng), to: slot(rng) },
        11..=13 => Op::Delete { at: slot(rng) },
        14..=15 => Op::Revoke { at: slot(rng) },
        16..=19 => Op::Give { from: slot(rng), child: slot(rng), to: slot(rng), rights: rights(rng), badge: badge(rng) },
        20 => {
            // Mostly slots that hold the right kinds, or starts would almost never succeed.
            let holding = |rng: &mut Rng, kind: ObjectType| {
                let slots: Vec<usize> = model.pool_slots_holding(kind).collect();
                match slots.len() {
                    0 => slot(rng),
                    n if rng.below(8) > 0 => slots[rng.below(n as u64) as usize],
                    _ => slot(rng),
                }
            };
            let thread = holding(rng, ObjectType::Thread);
            // A thread with a budget would run (and fault, when the kernel gets to it): the
            // model cannot say when, so those are never started.
            if model.thread_at(thread).is_some_and(|(_, budgeted)| budgeted) {
                return Op::Kill { thread };
            }
            Op::Start { thread, aspace: holding(rng, ObjectType::AddressSpace), child: holding(rng, ObjectType::CSpace) }
        }
        21 => Op::Kill { thread: slot(rng) },
        22 => Op::Signal { at: slot(rng) },
        23 => Op::Poll { at: slot(rng) },
        24 => Op::NbSend { at: slot(rng) },
        25 => Op::NbRecv { at: slot(rng) },
        _ => {
            let threads: Vec<usize> = model.pool_slots_holding(ObjectType::Thread).collect();
            let thread = if threads.is_empty() || rng.below(8) == 0 { slot(rng) } else { threads[rng.below(threads.len() as u64) as usize] };
            // Likewise a running thread is never given a budget.
            if model.thread_at(thread).is_some_and(|(running, _)| running) {
                return Op::Kill { thread };
            }
            const BUDGETS: [(u64, u64); 8] = [(0, 0), (50, 10_000), (1_000, 10_000), (3_000, 10_000), (2_500, 5_000), (100, 1_000), (20_000, 10_000), (8_000, 10_000)];
            let (budget_us, period_us) = BUDGETS[rng.below(BUDGETS.len() as u64) as usize];
            Op::Configure { thread, budget_us, period_us }
        }
    }
}

fn kind(kind: ObjectType) -> u64 {
    u64::from(kind.as_u32())
}

/// Performs `op` in the puppet: the result, and `rdi` (a poll's word).
fn perform(p: &Puppet, op: Op) -> Result<(Result<(), ErrorCode>, u64), Fail> {
    let at = |slot: usize| BASE + slot as u64;
    let ret = match op {
        Op::Create { kind: k, at: slot } => p.sys(Sysno::ObjectCreate, &[kind(k), at(slot), 0])?,
        Op::Mint { from, to, rights, badge } => p.sys(Sysno::CapMint, &[at(from), at(to), u64::from(rights.bits()), badge])?,
        Op::Move { from, to } => p.sys(Sysno::CapMove, &[at(from), at(to)])?,
        Op::Delete { at: slot } => p.sys(Sysno::CapDelete, &[at(slot)])?,
        Op::Revoke { at: slot } => p.sys(Sysno::CapRevoke, &[at(slot)])?,
        Op::Give { from, child, to, rights, badge } => p.sys(Sysno::CapGive, &[at(from), at(child), to as u64 + 1, u64::from(rights.bits()), badge])?,
        // Entry and stack are never reached: the puppet's threads get no CPU (its budget).
        Op::Start { thread, aspace, child } => p.sys(Sysno::ThreadStart, &[at(thread), at(aspace), at(child), 0x40_0000, 0x80_0000, 0])?,
        Op::Kill { thread } => p.sys(Sysno::ThreadKill, &[at(thread)])?,
        Op::Configure { thread, budget_us, period_us } => p.sys(Sysno::ThreadConfigure, &[at(thread), 10, budget_us, period_us, libcap::abi::syscall::NO_SLOT])?,
        Op::Signal { at: slot } => p.sys(Sysno::Signal, &[at(slot)])?,
        Op::Poll { at: slot } => p.sys(Sysno::Poll, &[at(slot)])?,
        Op::NbSend { at: slot } => p.sys(Sysno::NbSend, &[at(slot), 0])?,
        Op::NbRecv { at: slot } => p.sys(Sysno::NbRecv, &[at(slot)])?,
    };
    Ok((audit::code(ret.rax), ret.rdi()))
}

/// Which capability spaces are live (AuditCap answers anything but InvalidSlot).
fn live_spaces() -> Vec<bool> {
    (0..u64::from(libcap::abi::tables::Table::CSpaces.capacity())).map(|space| audit::audit_cap(space, 0) != Err(ErrorCode::InvalidSlot)).collect()
}

/// The kernel's names for the model's objects: (model object, kernel object index).
struct Names(Vec<(u32, u64)>);

impl Names {
    fn learn(&mut self, model: &Model, object: u32, kernel: u64) -> Outcome {
        self.0.retain(|&(id, _)| model.object_live(id));
        if let Some(&(other, _)) = self.0.iter().find(|&&(_, index)| index == kernel) {
            fail!("a new object got kernel index {kernel}, which still names live model object {other}");
        }
        self.0.push((object, kernel));
        Ok(())
    }

    fn of(&self, object: u32) -> Option<u64> {
        self.0.iter().find(|&&(id, _)| id == object).map(|&(_, index)| index)
    }
}

fn compare(what: &str, got: Option<CapRecord>, want: Option<kcore::model::ModelCap>, names: &Names) -> Outcome {
    match (got, want) {
        (None, None) => Ok(()),
        (Some(got), Some(want)) => {
            let same = got.kind == kind(want.kind)
                && got.rights == u64::from(want.rights.bits())
                && got.badge == want.badge
                && names.of(want.object) == Some(got.object);
            ensure!(same, "{what}: the kernel has {}, the model {want:?} (kernel name {:?})", got.describe(), names.of(want.object));
            Ok(())
        }
        (got, want) => fail!("{what}: the kernel has {got:?}, the model {want:?}"),
    }
}

fn audit_slot(space: u16, slot: u64) -> Result<Option<CapRecord>, Fail> {
    match audit::audit_cap(u64::from(space), slot) {
        Ok(record) => Ok(Some(record)),
        Err(ErrorCode::EmptySlot) => Ok(None),
        Err(code) => fail!("auditing space {space} slot {slot}: {code:?}"),
    }
}

fn differential(world: &mut World) -> Outcome {
    let (seed, steps) = world.campaign.unwrap_or((world.seed ^ 0xd1ff, STEPS));
    run(world, seed, steps)
}

/// Threads the kernel runs in capability space `space`: a scan of every thread slot.
fn threads_in(space: u16) -> Result<usize, Fail> {
    let mut count = 0;
    for index in 0..u64::from(libcap::abi::tables::Table::Threads.capacity()) {
        match audit::audit_thread(index) {
            Ok((in_space, _)) if in_space == u64::from(space) + 1 => count += 1,
            Ok(_) => {}
            Err(code) => fail!("auditing thread {index}: {code:?}"),
        }
    }
    Ok(count)
}

fn run(world: &mut World, seed: u64, steps: u64) -> Outcome {
    let mut rng = Rng(libcap::rand::SplitMix64::new(seed));
    let p = Puppet::with(world, Options { quota: QUOTA, ..Options::default() })?;
    // With a budget of its own, the puppet makes threads that get no CPU until given a
    // share (BUDGET-002), so a started thread's state changes only by the steps.
    let config = ThreadConfig { priority: 10, budget: Some(Budget { budget_us: PUPPET_BUDGET_US, period_us: PUPPET_PERIOD_US }), fault_endpoint: Some(p.fault) };
    crate::world::expect_ok("give the puppet a budget", process::thread_configure(p.thread, config))?;
    // What the model said of threads after the last scan: (child live, threads in it).
    let mut seen: [(bool, usize); CHILDREN] = [(false, 0); CHILDREN];
    let mut model = Model::new(QUOTA).with_budget(u64::from(PUPPET_BUDGET_US), u64::from(PUPPET_PERIOD_US));
    let mut names = Names(Vec::new());
    // Kernel space index of each model child (the last it had, live or dead).
    let mut child_space: [Option<u16>; CHILDREN] = [None; CHILDREN];
    let (mut creates, mut refusals, mut children_made) = (0u64, 0u64, 0u64);
    for step in 0..steps {
        let op = random_op(&mut rng, &model);
        let before = matches!(op, Op::Create { kind: ObjectType::CSpace, .. }).then(live_spaces);
        let (got, word) = perform(&p, op)?;
        let want = model.apply(op);
        let context = |why: core::fmt::Arguments| Fail(alloc::format!("seed {seed:#x} step {step}: {op:?}: {why}"));
        if got != want.map(drop) {
            return Err(context(format_args!("the kernel said {got:?}, the model {:?}", want.map(drop))));
        }
        if let Ok(Effect { word: Some(want_word), .. }) = want
            && word != want_word
        {
            return Err(context(format_args!("the poll returned {word:#x}, the model {want_word:#x}")));
        }
        match want {
            Err(_) => refusals += 1,
            Ok(effect) => {
                if let (Some((object, child)), Op::Create { at, .. }) = (effect.created, op) {
                    creates += 1;
                    let Some(record) = audit_slot(p.space, BASE + at as u64)? else {
                        return Err(context(format_args!("the created object is not in its slot")));
                    };
                    names.learn(&model, object, record.object).map_err(|Fail(why)| context(format_args!("{why}")))?;
                    if let (Some(child), Some(before)) = (child, &before) {
                        children_made += 1;
                        let now = live_spaces();
                        let new = (0..now.len()).find(|&index| now[index] && !before[index]);
                        let Some(new) = new else { return Err(context(format_args!("no new capability space appeared"))) };
                        child_space[child] = Some(new as u16);
                    }
                }
            }
        }
        // Threads: scanned whenever the model's view of them changed. A child's space runs
        // exactly the threads the model started in it; a dead child's index runs none (until
        // a new child gets it), so no thread outlives the space its caps are named in.
        let now: [(bool, usize); CHILDREN] = core::array::from_fn(|child| (model.child_live(child), model.running_in(child)));
        if now != seen {
            for child in 0..CHILDREN {
                let Some(space) = child_space[child] else { continue };
                let reused = (0..CHILDREN).any(|other| other != child && model.child_live(other) && child_space[other] == Some(space));
                if reused {
                    continue;
                }
                let want = if model.child_live(child) { model.running_in(child) } else { 0 };
                let got = threads_in(space)?;
                if got != want {
                    return Err(context(format_args!("child {child} (space {space}) runs {got} threads, the model {want}")));
                }
            }
            seen = now;
        }
        // Every slot of the pool and of every live child; every dead child's space dead.
        for slot in 0..POOL {
            let got = audit_slot(p.space, BASE + slot as u64)?;
            compare(&alloc::format!("pool slot {slot}"), got, model.cap(Place { space: 0, slot }), &names).map_err(|Fail(why)| context(format_args!("{why}")))?;
        }
        for child in 0..CHILDREN {
            let Some(space) = child_space[child] else { continue };
            if model.child_live(child) {
                for slot in 0..POOL {
                    let got = audit_slot(space, slot as u64 + 1)?;
                    compare(&alloc::format!("child {child} (space {space}) slot {}", slot + 1), got, model.cap(Place { space: child + 1, slot }), &names)
                        .map_err(|Fail(why)| context(format_args!("{why}")))?;
                }
            } else {
                let reused = (0..CHILDREN).any(|other| other != child && model.child_live(other) && child_space[other] == Some(space));
                if !reused && audit::audit_cap(u64::from(space), 0) != Err(ErrorCode::InvalidSlot) {
                    return Err(context(format_args!("model child {child} is dead but its space {space} is live")));
                }
            }
        }
    }
    libcap::println!("leak-suite: DIFF-001: seed {seed:#x}: {steps} steps, {creates} objects created ({children_made} child spaces), {refusals} refused as the model said; the kernel matched the model after every step");
    p.teardown(world)
}
