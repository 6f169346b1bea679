//! leak-suite: the capability-leak and isolation suite (issue 5).
//!
//! Started by the kernel's `ktest=suite` harness (`kernel/src/harness/ksuite.rs`) beside the real
//! system (init and the programs of `system.toml`), it runs every case of [`cases`] in
//! order. A case has a stable ID (`CNODE-COPY-003`), states one claim, and checks it from
//! user space: the happy path, then each error path with its exact error code and the state
//! of the slots afterwards. Hostile processes are puppets (`puppet`) built from caps here
//! and driven step by step, each acting with nothing but the caps it was given.
//!
//! After every case, whatever passed or failed:
//! 1. the suite deletes what the case left in its own slots;
//! 2. the authority audit (`audit`) must find every capability space and every thread
//!    exactly as after boot: a cap anywhere that was not there before is a leak;
//! 3. the harness's census must find kernel memory exactly as before: objects, spaces,
//!    quotas, thread slots and physical frames, and the kernel's consistency check passes.
//!
//! Output: `CASE PASS <id>` or `CASE FAIL <id>: why`, one line per case, which xtask counts;
//! the exit code is the number of failed cases. tests/README.md lists the cases by area and
//! says which deliberate kernel bugs each catches.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod audit;
mod cases;
mod puppet;
mod world;

use alloc::string::String;
use alloc::vec::Vec;

use libcap::{CapSlot, println};

use crate::audit::Snapshot;
use crate::world::{FIRST_FREE, Fail, World};

libcap::entry!(main);

/// The seed of the property-style cases (printed, so a failure can be replayed).
const SEED: u64 = 0x1ea4_5eed_0005;

fn main() -> u64 {
    // Started by init (system.toml `audit = true`) rather than by the kernel harness: no
    // initrd, no census; check only what init handed over.
    if libcap::rt::initrd().is_none() {
        return match started_by_init() {
            Ok(()) => 0,
            Err(Fail(why)) => {
                println!("leak-suite: FAILED: {why}");
                1
            }
        };
    }
    match run() {
        Ok(failed) => failed,
        Err(Fail(why)) => {
            println!("leak-suite: cannot run: {why}");
            1000
        }
    }
}

fn run() -> Result<u64, Fail> {
    let own_space = audit::find_own_space(CapSlot::new(FIRST_FREE))?;
    let reference = Snapshot::take()?;
    println!(
        "leak-suite: own capability space {own_space}; after boot: {} live spaces, {} live threads; seed {SEED:#x}",
        reference.spaces.len(),
        reference.threads.len()
    );
    let mut world = World::new(own_space, reference, SEED);
    world::census_baseline()?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let campaign = world.campaign;
    if let Some((seed, steps)) = campaign {
        println!("leak-suite: differential campaign: seed {seed:#x}, {steps} steps (DIFF-001 alone)");
    }
    for case in cases::all().into_iter().filter(|case| campaign.is_none() || case.id == "DIFF-001") {
        let outcome = (case.run)(&mut world);
        world.clean();
        let mut problems: Vec<String> = Vec::new();
        if let Err(Fail(why)) = outcome {
            problems.push(why);
        }
        let now = Snapshot::take()?;
        let diff = world.reference.diff(&now);
        if !diff.is_empty() {
            problems.push(alloc::format!("audit: authority changed: {}", diff.join("; ")));
            // Judge the next case on its own.
            world.reference = now;
        }
        if !world::census_check()? {
            problems.push("census: kernel memory is not back where it was (see the census lines above)".into());
        }
        if problems.is_empty() {
            passed += 1;
            println!("CASE PASS {}", case.id);
        } else {
            failed += 1;
            println!("CASE FAIL {}: {} ({})", case.id, problems.join(" | "), case.what);
        }
    }
    println!("leak-suite: {passed} passed, {failed} failed");
    Ok(failed)
}

/// The audit cap as init passes it to the program with `audit = true`
/// (`manifest::Program::audit_slot`): read-only, in the slot after the program's caps (here,
/// with only a console, slot 2), and held by nobody else but init.
fn started_by_init() -> Result<(), Fail> {
    let mut held = Vec::new();
    for slot in 0..world::SLOTS {
        if let Ok(info) = libcap::sys::cap_identify(CapSlot::new(slot)) {
            held.push((slot, info.object_type, info.rights));
        }
    }
    let expected = [(1, libcap::ObjectType::Console, libcap::Rights::WRITE), (2, libcap::ObjectType::Audit, libcap::Rights::READ)];
    if held != expected {
        return Err(Fail(alloc::format!("init gave me {held:?}, expected {expected:?}")));
    }
    println!("leak-suite: started by init: console in slot 1, the audit cap (read) in slot 2, nothing else");
    let own = audit::find_own_space(CapSlot::new(FIRST_FREE))?;
    let snapshot = Snapshot::take()?;
    let holders: Vec<(u16, u32)> = snapshot.all_of(libcap::ObjectType::Audit).iter().map(|(space, slot, _)| (*space, *slot)).collect();
    let by_init = holders.iter().filter(|(space, slot)| *space != own && *slot == 120).count();
    if holders.len() != 2 || by_init != 1 || !holders.contains(&(own, 2)) {
        return Err(Fail(alloc::format!("audit caps are held at {holders:?} (I am space {own})")));
    }
    println!(
        "leak-suite: the audit cap is held only by init (slot 120) and by me; {} live spaces, {} live threads",
        snapshot.spaces.len(),
        snapshot.threads.len()
    );
    Ok(())
}
