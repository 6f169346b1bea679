//! CPU budgets under attack: budgets in microseconds as the manifest writes them, threads a
//! budgeted process makes, and budgets a budgeted process gives away.
//!
//! The spinners run a ten-byte loop (`inc qword [DATA]; jmp back`) from a frame written
//! by one puppet and mapped read-execute in others, so each spinner's counter at `DATA`
//! says how much CPU it got; a reader puppet maps the counters read-only and reports them.
//! Shares are compared as ratios with wide margins (the QEMU tests run in virtual time, but
//! a ratio holds either way).

use libcap::process::{self, Access, Budget, ThreadConfig};
use libcap::sys;
use libcap::{CapSlot, ErrorCode, ObjectType, Sysno};

use crate::puppet::{DATA, OP_JUMP, Options, Puppet, expect_ret};
use crate::world::{Case, Fail, Outcome, R, World, create, expect_err, expect_ok};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "BUDGET-001", what: "a 1000/10000 µs budget (as system.toml writes them) holds a higher-priority spinner to about 10% of the CPU: a lower-priority spinner gets the rest", run: budget_bounds_spinner },
    Case { id: "BUDGET-002", what: "a thread made and started by a budgeted process has no CPU until it is given a share; the share comes out of the maker's budget, which can give neither more than it has nor 'no budget' (InsufficientRights)", run: budget_cannot_be_created },
    Case { id: "BUDGET-003", what: "budgets the kernel cannot enforce are refused (InvalidArgument): under 100 µs, zero with a period, over the period, a period over 10 s, a budget without a period", run: budget_bad_values },
];

/// Where the spin loop is mapped.
const SPIN: u64 = 0x30_0000;
/// `inc qword ptr [DATA]` (absolute 32-bit address) then `jmp` back 10 bytes.
const SPIN_CODE: [u8; 10] = [0x48, 0xff, 0x04, 0x25, 0x00, 0x00, 0x20, 0x00, 0xeb, 0xf6];
const _: () = assert!(DATA == 0x20_0000, "SPIN_CODE encodes DATA");

/// A frame holding the spin loop, written by a puppet and then unmapped from it (W^X per
/// frame: it may be mapped executable only once no writable mapping is left).
fn spin_frame(world: &mut World) -> Result<CapSlot, Fail> {
    let frame = create(world, ObjectType::Frame)?;
    let writer = Puppet::new(world)?;
    expect_ok("map the code frame writable", process::map(writer.aspace, frame, DATA, Access::ReadWrite))?;
    let mut words = [0u8; 16];
    words[..SPIN_CODE.len()].copy_from_slice(&SPIN_CODE);
    for (index, chunk) in words.chunks(8).enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        expect_ret("write the spin loop", writer.store(DATA + index as u64 * 8, word)?)?;
    }
    expect_ok("unmap it from the writer", process::unmap(writer.aspace, DATA))?;
    writer.teardown(world)?;
    Ok(frame)
}

/// A puppet that will spin: the loop at `SPIN`, its counter frame at `DATA`.
fn spinner(world: &mut World, code: CapSlot, priority: u8) -> Result<(Puppet, CapSlot), Fail> {
    let p = Puppet::with(world, Options { priority, ..Options::default() })?;
    let counter = create(world, ObjectType::Frame)?;
    expect_ok("map the spin loop", process::map(p.aspace, code, SPIN, Access::ReadExecute))?;
    expect_ok("map the counter", process::map(p.aspace, counter, DATA, Access::ReadWrite))?;
    Ok((p, counter))
}

fn start_spinning(p: &Puppet) -> Outcome {
    if let Some(end) = p.begin(OP_JUMP, [SPIN, 0, 0, 0, 0, 0, 0, 0])? {
        fail!("the spinner ended before it spun: {end:?}");
    }
    Ok(())
}

/// Reads counter `index` (mapped at `DATA + index * 4 KiB` in the reader).
fn read(reader: &Puppet, index: u64) -> Result<u64, Fail> {
    Ok(expect_ret("read a counter", reader.load(DATA + index * 0x1000)?)?.rdi())
}

/// Lets the spinners run `ticks` timer ticks (the suite waits where nobody sends).
fn let_run(world: &mut World, ticks: u64) -> Outcome {
    let idle = create(world, ObjectType::Endpoint)?;
    match sys::recv_timeout(idle, ticks) {
        Err(ErrorCode::TimedOut) => Ok(()),
        other => fail!("waiting {ticks} ticks: {other:?}"),
    }
}

fn budget_bounds_spinner(world: &mut World) -> Outcome {
    let code = spin_frame(world)?;
    let (hog, hog_counter) = spinner(world, code, 9)?;
    let (victim, victim_counter) = spinner(world, code, 8)?;
    let config = ThreadConfig { priority: 9, budget: Some(Budget { budget_us: 1000, period_us: 10_000 }), fault_endpoint: Some(hog.fault) };
    expect_ok("give the hog 1000 µs per 10 ms", process::thread_configure(hog.thread, config))?;
    let reader = Puppet::new(world)?;
    expect_ok("the reader sees the hog's counter", process::map(reader.aspace, hog_counter, DATA, Access::Read))?;
    expect_ok("and the victim's", process::map(reader.aspace, victim_counter, DATA + 0x1000, Access::Read))?;
    start_spinning(&hog)?;
    start_spinning(&victim)?;
    let_run(world, 10)?;
    let (hog_0, victim_0) = (read(&reader, 0)?, read(&reader, 1)?);
    let_run(world, 100)?;
    let (hog_1, victim_1) = (read(&reader, 0)?, read(&reader, 1)?);
    let (hog_ran, victim_ran) = (hog_1.saturating_sub(hog_0), victim_1.saturating_sub(victim_0));
    let total = hog_ran.saturating_add(victim_ran).max(1);
    let hog_permille = hog_ran.saturating_mul(1000) / total;
    libcap::println!("leak-suite: BUDGET-001: in 100 ticks the hog (1000/10000 µs, priority 9) counted {hog_ran}, the victim (priority 8, no budget) {victim_ran}: the hog had {hog_permille}‰ of what they shared");
    ensure!(victim_ran > 0, "the victim never ran: the hog's budget did not bound it (hog counted {hog_ran})");
    ensure!((20..=200).contains(&hog_permille), "the hog had {hog_permille}‰ of the CPU the two shared; its budget is 100‰");
    for p in [hog, victim, reader] {
        p.teardown(world)?;
    }
    Ok(())
}

/// The puppet configures its thread cap in `thread` with `budget`/`period` µs.
fn thread_configure(p: &Puppet, thread: u64, budget: u64, period: u64) -> Result<Result<(), ErrorCode>, Fail> {
    let ret = p.sys(Sysno::ThreadConfigure, &[thread, 9, budget, period, libcap::abi::syscall::NO_SLOT])?;
    Ok(crate::audit::code(ret.rax))
}

fn budget_cannot_be_created(world: &mut World) -> Outcome {
    let code = spin_frame(world)?;
    let counter = create(world, ObjectType::Frame)?;
    // 1 MiB: a share of the thread table for two threads of its own (`abi::tables`).
    let maker = Puppet::with(world, Options { priority: 9, quota: 1 << 20, ..Options::default() })?;
    let config = ThreadConfig { priority: 9, budget: Some(Budget { budget_us: 2000, period_us: 10_000 }), fault_endpoint: Some(maker.fault) };
    expect_ok("give the maker 2000 µs per 10 ms", process::thread_configure(maker.thread, config))?;
    expect_ok("the maker's copy of the spin loop", maker.give(code, 10, R.union(libcap::Rights::EXECUTE), 0))?;
    expect_ok("and of the counter", maker.give(counter, 11, libcap::Rights::ALL, 0))?;
    let kind = |kind: ObjectType| u64::from(kind.as_u32());
    maker.sys_ok("a thread", Sysno::ObjectCreate, &[kind(ObjectType::Thread), 20, 0])?;
    maker.sys_ok("a cspace for it", Sysno::ObjectCreate, &[kind(ObjectType::CSpace), 21, 0])?;
    maker.sys_ok("an address space for it", Sysno::ObjectCreate, &[kind(ObjectType::AddressSpace), 22, 0])?;
    maker.sys_ok("map the loop", Sysno::Map, &[22, 10, SPIN, 2])?;
    maker.sys_ok("map the counter", Sysno::Map, &[22, 11, DATA, 1])?;
    maker.sys_ok("start the thread, never configured", Sysno::ThreadStart, &[20, 22, 21, SPIN, 0, 0])?;
    let reader = Puppet::new(world)?;
    expect_ok("the reader sees the counter", process::map(reader.aspace, counter, DATA, Access::Read))?;
    let_run(world, 30)?;
    let unconfigured = read(&reader, 0)?;
    ensure!(unconfigured == 0, "a thread made by a budgeted process ran {unconfigured} loops with no budget given");
    let refused = |what: &str, got: Result<(), ErrorCode>, want: ErrorCode| expect_err(what, got, want);
    refused("a share bigger than the maker's", thread_configure(&maker, 20, 5000, 10_000)?, ErrorCode::InsufficientRights)?;
    refused("all of the maker's (it must keep some)", thread_configure(&maker, 20, 2000, 10_000)?, ErrorCode::InsufficientRights)?;
    refused("no budget at all", thread_configure(&maker, 20, 0, 0)?, ErrorCode::InsufficientRights)?;
    expect_ok("a share of 500 µs out of the maker's 2000", thread_configure(&maker, 20, 500, 10_000)?)?;
    let_run(world, 30)?;
    let configured = read(&reader, 0)?;
    ensure!(configured > 0, "the thread never ran with its share");
    // The maker has 1500 µs left; the thread's 500 come back first, so it can give it
    // 1800 (keeping 200), but not 1950 (it must keep the 100 µs minimum).
    expect_ok("reconfigure to 1800 (its 500 come back first)", thread_configure(&maker, 20, 1800, 10_000)?)?;
    refused("but not 1950", thread_configure(&maker, 20, 1950, 10_000)?, ErrorCode::InsufficientRights)?;
    maker.sys_ok("the maker kills its thread", Sysno::ThreadKill, &[20])?;
    maker.sys_ok("another thread", Sysno::ObjectCreate, &[kind(ObjectType::Thread), 23, 0])?;
    expect_ok("its share came back: the maker may give 1800 again", thread_configure(&maker, 23, 1800, 10_000)?)?;
    maker.teardown(world)?;
    reader.teardown(world)
}

fn budget_bad_values(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    for (budget_us, period_us) in [(50, 1000), (99, 100_000), (2000, 1000), (1000, 20_000_000), (1000, 0), (0, 1000)] {
        let config = ThreadConfig { priority: 10, budget: Some(Budget { budget_us, period_us }), fault_endpoint: Some(p.fault) };
        expect_err("an unenforceable budget", process::thread_configure(p.thread, config), ErrorCode::InvalidArgument)?;
    }
    let config = ThreadConfig { priority: 10, budget: Some(Budget { budget_us: 100, period_us: 10_000_000 }), fault_endpoint: Some(p.fault) };
    expect_ok("100 µs per 10 s is enforceable", process::thread_configure(p.thread, config))?;
    p.sys_ok("and the puppet still runs on it", Sysno::CapIdentify, &[2])?;
    p.teardown(world)
}
