//! CPU budgets lent on: a budgeted process's own thread, shares in other units, and chains
//! of loans (a process that gives part of its share to a process that gives part of that on
//! to a thread). CPU time must not be created by any of them: whatever a lender gets back
//! when a borrower ends, the threads still running on its bandwidth keep theirs, so the sum
//! never exceeds what the first lender was given.

use libcap::process::{self, Budget, ThreadConfig};
use libcap::{ErrorCode, ObjectType, Sysno};

use crate::puppet::{Puppet, Ret};
use crate::world::{Case, Fail, Outcome, W, World, expect_ok};
use crate::ensure;

pub const CASES: &[Case] = &[
    Case { id: "BUDGET-004", what: "a budgeted process cannot raise its own budget through a cap to its own thread, nor make itself unlimited; a share is a fraction of the CPU in any period (2000/20000 µs from a 1000/10000 µs holder is all of it): InsufficientRights", run: own_and_units },
    Case { id: "BUDGET-005", what: "a chain of loans creates no CPU: when a process that lent part of its share on ends, its lender gets back only what it still held, and a budgeted caller cannot give a new budget to a thread whose borrowers live (InsufficientRights)", run: chain },
];

const PRIORITY: u8 = 10;

fn configure(p: &Puppet, thread: u64, budget: u64, period: u64) -> Result<Ret, Fail> {
    p.sys(Sysno::ThreadConfigure, &[thread, u64::from(PRIORITY), budget, period, libcap::abi::syscall::NO_SLOT])
}

fn expect_code(what: &str, ret: Ret, want: Result<(), ErrorCode>) -> Outcome {
    let got = crate::audit::code(ret.rax);
    ensure!(got == want, "{what}: expected {want:?}, got {got:?}");
    Ok(())
}

/// A puppet with 1000 µs in every 10 ms, given by the suite (which has no budget).
fn budgeted(world: &mut World) -> Result<Puppet, Fail> {
    let p = Puppet::new(world)?;
    let config = ThreadConfig { priority: PRIORITY, budget: Some(Budget { budget_us: 1_000, period_us: 10_000 }), fault_endpoint: Some(p.fault) };
    expect_ok("give the puppet 1000/10000 µs", process::thread_configure(p.thread, config))?;
    Ok(p)
}

fn create_thread(p: &Puppet, slot: u64) -> Outcome {
    p.sys_ok("create a thread", Sysno::ObjectCreate, &[u64::from(ObjectType::Thread.as_u32()), slot, 0]).map(|_| ())
}

fn own_and_units(world: &mut World) -> Outcome {
    let p = budgeted(world)?;
    let no = Err(ErrorCode::InsufficientRights);
    expect_ok("give it a cap to its own thread", p.give(p.thread, 8, W, 0))?;
    expect_code("itself at 2000/10000", configure(&p, 8, 2_000, 10_000)?, no)?;
    expect_code("itself at 1500/10000", configure(&p, 8, 1_500, 10_000)?, no)?;
    expect_code("itself unlimited", configure(&p, 8, 0, 0)?, no)?;
    create_thread(&p, 6)?;
    expect_code("all of its 10% over a longer period, 2000/20000", configure(&p, 6, 2_000, 20_000)?, no)?;
    expect_code("more than its 10% over a shorter one, 200/1000", configure(&p, 6, 200, 1_000)?, no)?;
    expect_code("5% over a longer period, 1000/20000", configure(&p, 6, 1_000, 20_000)?, Ok(()))?;
    p.teardown(world)
}

/// Kills a puppet waiting for its next operation. Its KILLED report is not awaited: the
/// lender configured it with no fault endpoint (`NO_SLOT`), so none is sent.
fn stop(p: &Puppet) -> Outcome {
    expect_ok("kill", process::thread_kill(p.thread))
}

fn chain(world: &mut World) -> Outcome {
    let lender = budgeted(world)?;
    let middle = Puppet::new(world)?;
    // lender (1000/10000) -> middle 600, middle -> its thread 400.
    expect_ok("give the lender a cap to the middle's thread", lender.give(middle.thread, 5, W, 0))?;
    expect_code("the lender gives the middle 600/10000", configure(&lender, 5, 600, 10_000)?, Ok(()))?;
    create_thread(&middle, 6)?;
    expect_code("the middle gives its thread 400/10000", configure(&middle, 6, 400, 10_000)?, Ok(()))?;
    let no = Err(ErrorCode::InsufficientRights);
    expect_code("a fresh budget for the middle while its thread holds 400 of it", configure(&lender, 5, 500, 10_000)?, no)?;
    // The middle ends; its cspace (and so its thread) lives on: the suite holds it.
    stop(&middle)?;
    create_thread(&lender, 7)?;
    // The lender kept 400 and gets back the 200 the middle still held: 600, of which it must
    // keep the 100 µs minimum. 400 kept + 600 lent again + the thread's 400 would be 1400 of
    // the 1000 it was given.
    expect_code("the lender gives 600/10000 again while the middle's thread still holds 400", configure(&lender, 7, 600, 10_000)?, no)?;
    expect_code("but 400 it has", configure(&lender, 7, 400, 10_000)?, Ok(()))?;
    middle.teardown(world)?;
    lender.teardown(world)
}
