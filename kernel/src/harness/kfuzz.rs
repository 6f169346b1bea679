//! `ktest=fuzz`: the syscall fuzzer's harness (issue 5).
//!
//! Loads `bin/fuzzer` (a hostile libcap program making seeded random syscalls) beside three
//! copies of `bin/fuzz-worker` doing real work (an echo server, a client that checks every
//! answer, a pinger that keeps the fuzzer's receive side busy), waits for the fuzzer to end,
//! stops the workers, tears everything down and checks that the kernel is consistent and
//! that every object and frame the run used came back.
//!
//! Command line: `ktest=fuzz [fuzz_seed=S] [fuzz_calls=N] [fuzz_trace]` (decimal or `0x`
//! hex; defaults [`DEFAULT_SEED`] and [`DEFAULT_CALLS`], which is what CI runs). The verdict
//! is `KTEST PASS fuzz` or `KTEST FAIL fuzz: seed=S ...`; `cargo xtask fuzz` drives it.
//!
//! A kernel panic or hang is what this exists to find: a panic ends the VM with the panic
//! message (no PASS line), a hang is detected here by a watchdog on the fuzzer's state.
//! A fault of the fuzzer itself is reported and does not fail the run (the kernel survived
//! it), but it is unexpected for a safe-Rust program and worth reading.
//!
//! # What is checked ([`check_consistency`] and [`Census`])
//! - The capability store's own invariants (`CapStore::check_invariants`: slots, derivation
//!   tree, object reference counts, quotas).
//! - Every cap names a live kernel object: frames in the frame table, address spaces in the
//!   address-space table, threads in a used thread slot, capability spaces live in the store.
//! - Every live user thread runs in a live capability space and a live address space; a
//!   thread that is not blocked waits on nothing; a thread queued on an endpoint or a
//!   notification (blocked, or dead and delivering its end report) names an object some cap
//!   still keeps alive; a caller waiting for a reply names a live server that owes it one.
//! - After teardown, against a census taken before the run: live cap objects, capability
//!   spaces, the kernel space's quota, frame objects, address-space objects, used thread
//!   slots, and free physical frames, the latter with an explicit, itemised allowance for
//!   what the kernel keeps on purpose (kernel stacks of thread slots used for the first time,
//!   the page tables mapping them, FPU frames of dead threads whose slot is not reused yet).
//!
//! Not checked (no public view of the state from here): endpoint and notification queues
//! themselves (only the threads' side), and the frame table's mapping records.

use abi::{Badge, CapSlot, ObjectType, Rights};
use kcore::cap::{SlotRef, SpaceId};

use crate::arch::exit_qemu;
use crate::caps::{self, Object};
use crate::harness::census::Census;
use crate::println;
use crate::sched::{self, UserStart};
use crate::thread::{BlockedOn, Exit, State, ThreadId, MAX_THREADS};

const TEST: &str = "fuzz";
/// What CI runs: `ktest=fuzz` with no parameters.
pub const DEFAULT_CALLS: u64 = 100_000;
pub const DEFAULT_SEED: u64 = 0x5eed_0005;

/// The fuzzer's kernel-memory quota.
const FUZZER_QUOTA: u64 = 1 << 20;
const WORKER_QUOTA: u64 = 64 * 1024;
/// The quota of the capability space handed to the fuzzer (slot 7).
const CHILD_CSPACE_QUOTA: u64 = 64 * 1024;
const PRIORITY: u8 = 10;

/// The fuzzer's console for progress lines, which it never deletes (userland/fuzzer).
const PROGRESS_SLOT: u32 = 127;
/// The fuzzer's start-argument bit that turns on per-call tracing (userland/fuzzer).
const TRACE: u64 = 1 << 63;
/// Badges that identify the workers' endpoints to the fuzzer (userland/fuzzer).
const ECHO_BADGE: u64 = 0xec40;
const PING_BADGE: u64 = 0x9146;
/// The client's badge, echoed by the server (userland/fuzz-worker).
const CLIENT_BADGE: u64 = 0xc11e;
/// Worker roles (userland/fuzz-worker).
const ECHO_SERVER: u64 = 1;
const ECHO_CLIENT: u64 = 2;
const PINGER: u64 = 3;
const WRONG_ANSWER: u64 = 0xbad0_0000;

/// Slots of the kernel's own space holding the shared objects while the run lasts.
const KERNEL_SPACE: SpaceId = SpaceId::new(0);
const ECHO_ENDPOINT: u32 = 40;
const PING_ENDPOINT: u32 = 41;
const SHARED_NOTIFICATION: u32 = 42;
const STOP_NOTIFICATION: u32 = 43;
const SHARED: [u32; 4] = [ECHO_ENDPOINT, PING_ENDPOINT, SHARED_NOTIFICATION, STOP_NOTIFICATION];

/// Watchdog: the fuzzer blocked in the same way this long is a hang (10 ms ticks).
const HANG_TICKS: u64 = 1000;
/// Workers must stop this soon after being told to.
const STOP_TICKS: u64 = 500;

/// A cap the harness mints from its own space into a program's: (kernel slot, slot there,
/// rights, badge).
type Grant = (u32, u32, Rights, u64);

struct Run {
    seed: u64,
    calls: u64,
    trace: bool,
}

fn parameters() -> Run {
    let cmdline = crate::BOOT_INFO.get().map_or("", |info| info.cmdline.as_str());
    let number = |key: &str| {
        kcore::cmdline::value(cmdline, key).and_then(|text| match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => text.parse().ok(),
        })
    };
    Run {
        seed: number("fuzz_seed").unwrap_or(DEFAULT_SEED),
        calls: number("fuzz_calls").unwrap_or(DEFAULT_CALLS) & !TRACE,
        trace: kcore::cmdline::value(cmdline, "fuzz_trace").is_some(),
    }
}

fn fail(run: &Run, why: core::fmt::Arguments) -> ! {
    println!("KTEST FAIL {TEST}: seed={:#x} calls={}: {why}", run.seed, run.calls);
    exit_qemu(abi::qemu_exit::FAILURE)
}

pub fn run() -> ! {
    let run = parameters();
    println!("kfuzz: seed={:#x} calls={} trace={}", run.seed, run.calls, run.trace);
    let before = Census::take();
    let started = sched::ticks();

    for slot in [ECHO_ENDPOINT, PING_ENDPOINT] {
        kernel_object(&run, slot, ObjectType::Endpoint);
    }
    for slot in [SHARED_NOTIFICATION, STOP_NOTIFICATION] {
        kernel_object(&run, slot, ObjectType::Notification);
    }
    let rw = Rights::READ.union(Rights::WRITE);
    let echo_rights = Rights::WRITE.union(Rights::GRANT).union(Rights::GRANT_REPLY);
    let server = start(&run, "fuzz-worker", "echo-server", &[(ECHO_ENDPOINT, 2, Rights::READ, 0)], ECHO_SERVER, 0, WORKER_QUOTA).0;
    let client = start(
        &run,
        "fuzz-worker",
        "echo-client",
        &[(ECHO_ENDPOINT, 2, Rights::WRITE.union(Rights::GRANT_REPLY), CLIENT_BADGE), (STOP_NOTIFICATION, 3, Rights::READ, 0)],
        ECHO_CLIENT,
        0,
        WORKER_QUOTA,
    )
    .0;
    let pinger = start(
        &run,
        "fuzz-worker",
        "pinger",
        &[(PING_ENDPOINT, 2, Rights::WRITE, 0), (SHARED_NOTIFICATION, 3, Rights::WRITE, 1)],
        PINGER,
        0,
        WORKER_QUOTA,
    )
    .0;
    let control = run.calls | if run.trace { TRACE } else { 0 };
    let grants: [Grant; 3] =
        [(ECHO_ENDPOINT, 2, echo_rights, ECHO_BADGE), (PING_ENDPOINT, 3, Rights::READ, PING_BADGE), (SHARED_NOTIFICATION, 4, rw, 2)];
    let (fuzzer, fuzzer_space) = start(&run, "fuzzer", "fuzzer", &grants, run.seed, control, FUZZER_QUOTA);
    if let Err(error) = caps::grant_console(fuzzer_space, PROGRESS_SLOT, Rights::WRITE) {
        fail(&run, format_args!("cannot give the fuzzer its progress console: {error:?}"));
    }
    // Objects of its own, charged to its quota: a frame, an address space, a capability
    // space and a thread. It starts running only at our next sleep, so they are there first.
    for (slot, kind, argument) in [
        (5, ObjectType::Frame, 0),
        (6, ObjectType::AddressSpace, 0),
        (7, ObjectType::CSpace, CHILD_CSPACE_QUOTA),
        (8, ObjectType::Thread, 0),
    ] {
        if let Err(error) = crate::object::create(fuzzer_space, CapSlot::new(slot), kind, argument, 0) {
            fail(&run, format_args!("cannot give the fuzzer a {kind:?}: {error:?}"));
        }
    }
    give_borrowed_frame(&run, fuzzer_space);

    // The fuzzer runs; watch for a hang.
    let ended = watch(&run, fuzzer, "fuzzer", None);
    let fuzz_ticks = sched::ticks() - started;
    match ended {
        Some(Exit::Code(made)) if made == run.calls => println!("kfuzz: fuzzer made all {made} calls in {fuzz_ticks} ticks"),
        Some(Exit::Code(made)) => fail(&run, format_args!("the fuzzer exited with {made}, not the {} calls asked", run.calls)),
        Some(Exit::Fault { vector, error_code, address, rip }) => println!(
            "kfuzz: NOTE: the fuzzer faulted (vector {vector}, error code {error_code:#x}, address {address:#x}, RIP {rip:#x}) \
             after {fuzz_ticks} ticks; the kernel survived it"
        ),
        Some(Exit::Killed) => println!("kfuzz: NOTE: the fuzzer was killed after {fuzz_ticks} ticks"),
        None => fail(&run, format_args!("the fuzzer's thread vanished without an exit")),
    }

    // The workers kept working: the client stops when told and has every answer right.
    let Some(stop) = notification_index(STOP_NOTIFICATION) else {
        fail(&run, format_args!("the stop notification is gone from the kernel's space"));
    };
    crate::ipc::signal(stop, 1);
    match watch(&run, client, "echo client", Some(STOP_TICKS)) {
        Some(Exit::Code(trips)) if trips > 0 && trips < WRONG_ANSWER => {
            println!("kfuzz: echo client made {trips} correct round trips beside the fuzzer");
        }
        other => fail(&run, format_args!("the echo client did not keep working: {other:x?}")),
    }
    for (id, what) in [(server, "echo server"), (pinger, "pinger")] {
        let state = sched::with_sched(|s| s.thread(id).state);
        if matches!(state, State::Dead | State::Free) {
            fail(&run, format_args!("the {what} died during the run: {:x?}", sched::join(id)));
        }
        let _ = sched::kill(id);
        match sched::join(id) {
            Some(Exit::Killed) => {}
            other => fail(&run, format_args!("the {what} ended as {other:x?}, not killed")),
        }
    }

    // Everything the run made is gone once the shared objects go.
    if let Err(why) = check_consistency() {
        fail(&run, format_args!("inconsistent after the workers stopped: {why}"));
    }
    for slot in SHARED {
        let mut reaped = caps::Reaped::new();
        let deleted = caps::with(|store| store.decode_delete(SlotRef::new(KERNEL_SPACE, slot)).map(|op| op.perform(&mut reaped)));
        reaped.finish();
        if let Err(error) = deleted {
            fail(&run, format_args!("cannot delete shared object in kernel slot {slot}: {error:?}"));
        }
    }
    if let Err(why) = check_consistency() {
        fail(&run, format_args!("inconsistent after teardown: {why}"));
    }
    // The kernel refuses to place a cspace cap anywhere but in a strict quota ancestor of
    // the space it names (`caps::check_placement`), so no space can keep itself alive; a
    // space left over now is a leak and fails the run.
    let cycles = reclaim_space_cycles(&before);
    if cycles > 0 {
        fail(&run, format_args!("{cycles} capability space(s) kept alive only by caps inside such spaces (a cycle)"));
    }
    let after = Census::take();
    if let Err(()) = before.compare(&after) {
        dump_caps();
        fail(&run, format_args!("resources not returned (see the census lines above)"));
    }
    println!("kfuzz: {} calls, seed {:#x}: consistent, every resource returned", run.calls, run.seed);
    super::report_fastpath();
    println!("KTEST PASS {TEST}");
    exit_qemu(abi::qemu_exit::SUCCESS)
}

/// The fuzzer's slot of a borrowed frame (userland/fuzzer), so `FrameSlice` gets past its
/// first checks; at most this many bytes of the initrd, so a `Map` of it stays quick.
const BORROWED_SLOT: u32 = 9;
const BORROWED_BYTES: u64 = 64 * 1024;

/// A borrowed frame over the first pages of the boot module, read and grant as init's
/// initrd frame, installed in the fuzzer's space (it goes with the space).
fn give_borrowed_frame(run: &Run, space: SpaceId) {
    let Some(initrd) = crate::BOOT_INFO.get().and_then(|info| info.modules().first().copied()) else {
        fail(run, format_args!("no boot module to lend the fuzzer"));
    };
    let first = initrd.range.start & !0xfff;
    let extent = crate::frame::Borrowed::boot_module(first, (initrd.range.end - first).min(BORROWED_BYTES));
    let given = extent.and_then(crate::frame::create_borrowed).and_then(|index| {
        let object = Object::Frame(index);
        let rights = crate::process::INIT_INITRD_FRAME_RIGHTS;
        caps::install_with_rights(space, BORROWED_SLOT, ObjectType::Frame, object, rights).inspect_err(|_| crate::object::destroy(object))
    });
    if let Err(error) = given {
        fail(run, format_args!("cannot lend the fuzzer a borrowed frame: {error:?}"));
    }
}

/// A new endpoint or notification in the kernel space's `slot`.
fn kernel_object(run: &Run, slot: u32, kind: ObjectType) {
    if let Err(error) = crate::object::create(KERNEL_SPACE, CapSlot::new(slot), kind, 0, 0) {
        fail(run, format_args!("cannot create a {kind:?}: {error:?}"));
    }
}

fn notification_index(slot: u32) -> Option<u16> {
    match caps::lookup(KERNEL_SPACE, CapSlot::new(slot), ObjectType::Notification, Rights::WRITE) {
        Ok((Object::Notification(index), _)) => Some(index),
        _ => None,
    }
}

/// Loads `bin/<program>` from the initrd into a fresh address space with a fresh
/// capability space (console in slot 1, then `grants`) and starts it.
fn start(run: &Run, program: &str, name: &str, grants: &[Grant], argument: u64, argument2: u64, quota: u64) -> (ThreadId, SpaceId) {
    let Some(initrd) = crate::BOOT_INFO.get().and_then(|info| info.modules().first().copied()) else {
        fail(run, format_args!("no initrd"));
    };
    let bytes = crate::module_bytes(initrd.range);
    let mut path = [0u8; 32];
    let path = {
        let full = [b"bin/".as_slice(), program.as_bytes()];
        let mut length = 0;
        for part in full {
            for &byte in part {
                if let Some(slot) = path.get_mut(length) {
                    *slot = byte;
                    length += 1;
                }
            }
        }
        core::str::from_utf8(path.get(..length).unwrap_or(&[])).unwrap_or("")
    };
    let Ok(Some(image)) = kcore::ustar::Archive::find(bytes, path) else {
        fail(run, format_args!("{path} is not in the initrd"));
    };
    let loaded = crate::process::load(image).unwrap_or_else(|error| fail(run, format_args!("load {path}: {error:?}")));
    let space = caps::create_space(quota).unwrap_or_else(|error| fail(run, format_args!("cspace for {name}: {error:?}")));
    if let Err(error) = caps::grant_console(space, 1, Rights::WRITE) {
        fail(run, format_args!("console for {name}: {error:?}"));
    }
    for &(from, to, rights, badge) in grants {
        if let Err(error) = caps::mint(KERNEL_SPACE, from, space, to, rights, Badge::new(badge)) {
            fail(run, format_args!("cap for {name} (kernel slot {from} to {to}): {error:?}"));
        }
    }
    let id = sched::spawn_user(name, UserStart {
        pml4: loaded.pml4,
        owns_space: true,
        cspace: Some(space),
        entry: loaded.entry,
        stack: loaded.stack_top,
        argument,
        argument2,
        priority: PRIORITY,
        budget: None,
        ipc_buffer: loaded.ipc_buffer,
    })
    .unwrap_or_else(|error| fail(run, format_args!("start {name}: {error:?}")));
    (id, space)
}

/// Waits for thread `id` to end and collects its exit. A watchdog fails the run if the
/// thread stays blocked on the same thing for [`HANG_TICKS`], or (with `limit`) if it has
/// not ended after `limit` ticks.
fn watch(run: &Run, id: ThreadId, what: &str, limit: Option<u64>) -> Option<Exit> {
    const STEP: u64 = 10;
    let mut waited = 0u64;
    let mut stuck = 0u64;
    let mut last = BlockedOn::Nothing;
    loop {
        let (state, blocked_on) = sched::with_sched(|s| {
            let thread = s.thread(id);
            (thread.state, thread.blocked_on)
        });
        if matches!(state, State::Dead | State::Free) {
            return sched::join(id);
        }
        if state == State::Blocked && blocked_on == last {
            stuck += STEP;
        } else {
            stuck = 0;
        }
        last = blocked_on;
        if stuck >= HANG_TICKS {
            dump_threads();
            fail(run, format_args!("hang: the {what} has been blocked on {blocked_on:?} for {stuck} ticks"));
        }
        if limit.is_some_and(|limit| waited >= limit) {
            dump_threads();
            fail(run, format_args!("the {what} did not end within {waited} ticks ({state:?}, {blocked_on:?})"));
        }
        sched::sleep_ticks(STEP);
        waited += STEP;
    }
}

/// Finds (and destroys, so the census can still report everything else) capability spaces
/// that outlived the run because only caps inside such spaces name them: the leak the
/// fuzzer found (seed 0x1: `ObjectCreate(CSpace, A, 0)`, `CapGive(A, A, 10, ..)`,
/// `CapDelete(A)`), which `caps::check_placement` now prevents. Only spaces that were not
/// live before the run and that no cap outside the set names count. Returns how many.
fn reclaim_space_cycles(before: &Census) -> usize {
    let leaked = |index: usize| {
        (1..128).contains(&index) && before.live_spaces & (1 << index) == 0 && caps::with(|store| store.quota(SpaceId::new(index as u16))).is_some()
    };
    let mut candidates = [false; caps::SPACES];
    for (index, candidate) in candidates.iter_mut().enumerate() {
        *candidate = leaked(index);
    }
    // Held from outside the leaked set: not a cycle, leave it for the census to report.
    for space in 0..caps::SPACES {
        if candidates.get(space).copied().unwrap_or(false) {
            continue;
        }
        for slot in 0..caps::SLOTS {
            let found = caps::with(|store| store.lookup(SlotRef::new(SpaceId::new(space as u16), slot as u32)));
            if let Ok(Object::CSpace(target)) = found.map(|found| found.handle)
                && let Some(candidate) = candidates.get_mut(usize::from(target))
            {
                *candidate = false;
            }
        }
    }
    let mut count = 0;
    for (index, candidate) in candidates.iter().enumerate() {
        if *candidate && caps::with(|store| store.quota(SpaceId::new(index as u16))).is_some() {
            println!("kfuzz: reclaiming unreachable capability space {index}:");
            dump_space(SpaceId::new(index as u16));
            crate::object::destroy_space(SpaceId::new(index as u16));
            count += 1;
        }
    }
    count
}

/// Every cap outside the kernel's own space: what a leak left behind.
fn dump_caps() {
    for space in 1..caps::SPACES {
        dump_space(SpaceId::new(space as u16));
    }
}

fn dump_space(space: SpaceId) {
    {
        let Some(quota) = caps::with(|store| store.quota(space)) else { return };
        println!("kfuzz: space {} is live: quota {} of {} used", space.index(), quota.used(), quota.limit());
        for slot in 0..caps::SLOTS {
            let at = SlotRef::new(space, slot as u32);
            let Ok(found) = caps::with(|store| store.lookup(at)) else { continue };
            let parent = caps::with(|store| store.parent_of(at));
            println!(
                "kfuzz:   slot {slot}: {:?} {:?} rights {:#x} badge {:#x}, object {}, derived from {parent:?}",
                found.kind,
                found.handle,
                found.rights.bits(),
                found.badge.value(),
                found.object.index()
            );
        }
    }
}

fn dump_threads() {
    for index in 1..MAX_THREADS {
        let thread = sched::with_sched(|s| *s.thread(ThreadId(index as u16)));
        if thread.state != State::Free {
            println!(
                "kfuzz: thread {index} \"{}\": {:?}, {:?}, prio {}, cspace {:?}, dying {}",
                thread.name(),
                thread.state,
                thread.blocked_on,
                thread.priority,
                thread.cspace.map(SpaceId::index),
                thread.dying
            );
        }
    }
}

// ----- consistency ---------------------------------------------------------------------

/// Cross-checks the cap store, the thread table and the object tables (see the module docs).
/// Usable at any quiet moment (from a kernel thread, between user syscalls).
pub fn check_consistency() -> Result<(), &'static str> {
    caps::with(|store| store.check_invariants()).map_err(|violation| {
        println!("kfuzz: cap store invariant {} broken: {}", violation.invariant, violation.what);
        "the capability store's invariants are broken"
    })?;
    // Every cap names a live kernel object.
    for space in 0..caps::SPACES {
        let space = SpaceId::new(space as u16);
        if caps::with(|store| store.quota(space)).is_none() {
            continue;
        }
        for slot in 0..caps::SLOTS {
            let Ok(found) = caps::with(|store| store.lookup(SlotRef::new(space, slot as u32))) else { continue };
            let live = match found.handle {
                Object::Frame(index) => crate::frame::phys(index).is_some(),
                Object::AddressSpace(index) => crate::vspace::root(index).is_some(),
                Object::Thread(index) => {
                    usize::from(index) < MAX_THREADS && sched::with_sched(|s| s.thread(ThreadId(index)).state) != State::Free
                }
                Object::CSpace(index) => caps::with(|store| store.quota(SpaceId::new(index))).is_some(),
                // Endpoints and notifications: their tables are private to `ipc` (see the
                // thread checks below); the rest are not allocated objects.
                _ => true,
            };
            if !live {
                println!("kfuzz: space {} slot {slot}: {:?} cap to a dead object", space.index(), found.handle);
                return Err("a cap names a dead kernel object");
            }
        }
    }
    // Threads.
    for index in 1..MAX_THREADS {
        let id = ThreadId(index as u16);
        let thread = sched::with_sched(|s| *s.thread(id));
        let report = |why: &'static str| {
            println!("kfuzz: thread {index} \"{}\" ({:?}, {:?}): {why}", thread.name(), thread.state, thread.blocked_on);
            Err(why)
        };
        if thread.state == State::Free {
            continue;
        }
        let alive = !matches!(thread.state, State::Dead | State::Inactive);
        if alive && thread.pml4 != 0 {
            if let Some(space) = thread.cspace
                && caps::with(|store| store.quota(space)).is_none()
            {
                return report("a live user thread's capability space is dead");
            }
            if !thread.owns_space && !crate::vspace::is_object(thread.pml4) {
                return report("a live user thread runs in an address space nobody owns");
            }
        }
        if thread.state != State::Blocked && !thread.dying && thread.blocked_on != BlockedOn::Nothing {
            return report("a thread that is not blocked waits on something");
        }
        if thread.state != State::Blocked && !thread.dying && thread.next_waiting.is_some() {
            return report("a thread that waits in no queue has a queue successor");
        }
        match thread.blocked_on {
            BlockedOn::Send { endpoint, .. } | BlockedOn::Receive { endpoint } if !any_cap_names(Object::Endpoint(endpoint)) => {
                return report("queued on an endpoint that no cap keeps alive");
            }
            BlockedOn::Notification { notification } if !any_cap_names(Object::Notification(notification)) => {
                return report("waits on a notification that no cap keeps alive");
            }
            BlockedOn::Reply { server } if thread.state == State::Blocked => {
                let owed = sched::with_sched(|s| {
                    let server = s.thread(server);
                    !matches!(server.state, State::Free | State::Dead) && server.reply_to == Some(id)
                });
                if !owed {
                    return report("waits for a reply nobody owes it");
                }
            }
            _ => {}
        }
        // Stored indices die with their objects (they are reused lowest-first).
        if let Some((endpoint, _)) = thread.fault_endpoint
            && !matches!(thread.state, State::Dead)
            && !any_cap_names(Object::Endpoint(endpoint))
        {
            return report("its fault endpoint is an endpoint no cap keeps alive");
        }
        if let BlockedOn::Send { endpoint, badge, cap: Some(slot), .. } = thread.blocked_on {
            let intact = caps::with(|store| store.lookup(slot))
                .is_ok_and(|found| found.handle == Object::Endpoint(endpoint) && found.badge.value() == badge);
            if !intact {
                return report("a queued send whose cap is gone");
            }
        }
    }
    if let Some(line) = crate::irq::bound_notifications().find(|&(_, notification)| !any_cap_names(Object::Notification(notification))) {
        println!("kfuzz: IRQ line {} is bound to notification {}, which no cap keeps alive", line.0, line.1);
        return Err("an IRQ line is bound to a dead notification");
    }
    if let Err((space, charged, tables)) = crate::vspace::check_table_charges() {
        println!("kfuzz: address space {space} is charged {charged} bytes but has {tables} page tables");
        return Err("an address space's page tables are not what its payer is charged");
    }
    Ok(())
}

fn any_cap_names(object: Object) -> bool {
    (0..caps::SPACES).any(|space| {
        let space = SpaceId::new(space as u16);
        (0..caps::SLOTS).any(|slot| {
            caps::with(|store| store.lookup(SlotRef::new(space, slot as u32))).is_ok_and(|found| found.handle == object)
        })
    })
}
