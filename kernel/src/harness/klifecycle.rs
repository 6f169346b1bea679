//! `ktest=lifecycle`: the 1,000-process churn test (issue 4), with an exact census.
//!
//! Takes a census of what the kernel holds, boots init as the kernel always does (from the
//! test's own initrd: tests/manifests/lifecycle.toml), and lets the real system run: init
//! builds `lifecycle-child` with its user-space loader, the child creates an endpoint, a
//! notification, a thread and a frame of its own, maps a page from the memory server and
//! frees it, and ends; init tears it down and restarts it, 1,000 times (the child counts by
//! the memory server's region numbers and exits cleanly the 1,000th time). When every user
//! thread has been blocked for [`QUIET_TICKS`], the harness stops init and the memory
//! server, destroys init's capability space (which holds, directly or through its
//! children's spaces, everything the system made) and takes the census again: every
//! capability object, capability space, address space, frame object, thread slot and
//! physical frame must be back, with only the allowance `kfuzz` also itemises (kernel
//! stacks of thread slots used for the first time, and the page tables that map them).
//!
//! The verdict is `KTEST PASS lifecycle`; xtask also checks that the child's 1,000th
//! incarnation said so (`lifecycle-child: incarnation 1000: done`).

use crate::harness::census::Census;

use crate::arch::exit_qemu;
use crate::println;
use crate::sched;
use crate::thread::{MAX_THREADS, State, ThreadId};

const TEST: &str = "lifecycle";
/// Every user thread blocked this long (10 ms ticks) means the churn is over.
const QUIET_TICKS: u64 = 100;
/// The churn must be over by then (10 ms ticks): 300 s, for TCG.
const LIMIT_TICKS: u64 = 30_000;

fn fail(why: core::fmt::Arguments) -> ! {
    println!("KTEST FAIL {TEST}: {why}");
    exit_qemu(abi::qemu_exit::FAILURE)
}

pub fn run() -> ! {
    let before = Census::take();
    let Some(initrd) = crate::BOOT_INFO.get().and_then(|info| info.modules().first().copied()) else {
        fail(format_args!("no initrd"));
    };
    let started = sched::ticks();
    let init = crate::process::start_init(initrd.range).unwrap_or_else(|error| fail(format_args!("cannot start init: {error:?}")));
    let Some(init_space) = sched::with_sched(|s| s.thread(init).cspace) else {
        fail(format_args!("init has no capability space"));
    };

    // Wait for the churn to end: no user thread has run for QUIET_TICKS.
    let mut quiet = 0;
    while quiet < QUIET_TICKS {
        if sched::ticks() - started > LIMIT_TICKS {
            fail(format_args!("the churn did not end within {LIMIT_TICKS} ticks"));
        }
        sched::sleep_ticks(1);
        quiet = if user_threads_busy() { 0 } else { quiet + 1 };
    }
    println!("klifecycle: the system is quiet after {} ticks; tearing it down", sched::ticks() - started);

    // init first, so that nothing reacts to the others' ends; its space holds the rest.
    let _ = sched::kill(init);
    let _ = sched::join(init);
    crate::object::destroy_space(init_space);
    for index in 1..MAX_THREADS {
        let id = ThreadId(index as u16);
        let user = sched::with_sched(|s| s.thread(id).cspace.is_some() && s.thread(id).state != State::Free);
        if user {
            println!("klifecycle: NOTE: thread {index} outlived its capability space; stopping it");
            let _ = sched::kill(id);
            let _ = sched::join(id);
        }
    }
    let after = Census::take();
    match before.compare(&after) {
        Ok(()) => {
            println!("klifecycle: every object, space, thread slot and frame the run used came back");
            super::report_fastpath();
            println!("KTEST PASS {TEST}");
            exit_qemu(abi::qemu_exit::SUCCESS)
        }
        Err(()) => fail(format_args!("resources not returned (see the census lines above)")),
    }
}

/// True if some user thread is ready or running (not blocked, dead or free).
fn user_threads_busy() -> bool {
    sched::with_sched(|s| {
        (1..MAX_THREADS).any(|index| {
            let thread = s.thread(ThreadId(index as u16));
            thread.cspace.is_some() && matches!(thread.state, State::Ready | State::Running | State::Throttled)
        })
    })
}
