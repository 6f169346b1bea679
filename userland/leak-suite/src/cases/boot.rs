//! The authority audit of the booted system against the manifest oracle.
//!
//! The harness booted the real system (init from the initrd, which started the programs of
//! `system.toml`) and waited until it settled; the suite then took its reference snapshot of
//! every capability space and thread (`World::reference`). These cases check that snapshot
//! against `etc/system.bin` decoded from the same initrd, and against what the kernel and
//! the harness are documented to hand out:
//!
//! - the kernel's own space: the console root and what the harness shares with the suite;
//! - init: the kernel's boot contract at fixed slots (`kernel/src/process.rs`), and
//!   otherwise only objects of kinds it can create itself;
//! - each program's space: *exactly* its manifest entry ([`manifest::Program::caps`]): same
//!   slots, kinds, rights and badges, nothing else; caps to the same manifest object name the
//!   same kernel object, which init holds with all rights;
//! - frame keepers (the loader's spaces holding program pages): frames only, no thread;
//! - the suite: exactly what the harness gave it.
//!
//! Spaces are told apart by what they hold (init: the audit cap in slot 120; programs: a
//! running thread), since the audit numbers spaces but does not name them; every space but
//! the kernel's and the suite's must be accounted for by one of init's cspace caps.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use libcap::{ObjectType, Rights};
use manifest::{CompiledManifest, ObjectRef, Program};

use crate::audit::{Snapshot, SpaceCaps};
use crate::world::{Case, Fail, Outcome, World};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "AUDIT-BOOT-001", what: "the manifest oracle decodes from etc/system.bin in the initrd init booted from", run: manifest_decodes },
    Case { id: "AUDIT-BOOT-002", what: "the kernel's own space holds the console root and the harness's shared objects, nothing else", run: kernel_space },
    Case { id: "AUDIT-BOOT-003", what: "the suite's space holds exactly what the harness gave it", run: suite_space },
    Case { id: "AUDIT-BOOT-004", what: "init holds the kernel's boot contract at its fixed slots (the initrd frame at 121 with read and grant only, the device frame at 122 and the PCI bus at 123 with read, write and grant), and otherwise only objects it can create or cut", run: init_space },
    Case { id: "AUDIT-BOOT-005", what: "each running program holds exactly its manifest entry: slots, kinds, rights, badges", run: programs_match },
    Case { id: "AUDIT-BOOT-006", what: "object identity: console caps name the kernel's console; each manifest object is one kernel object init holds with all rights", run: object_identity },
    Case { id: "AUDIT-BOOT-007", what: "every other space is a frame keeper (frames only, no thread), and init holds a cspace cap for each program and keeper", run: keepers },
    Case { id: "AUDIT-BOOT-008", what: "every live thread runs in init's, a program's (one each) or the suite's space, or is a kernel thread", run: threads },
    Case { id: "AUDIT-BOOT-009", what: "the audit cap, device caps (IRQ, I/O ports, PCI), init's initrd frame and its device frame are held only where the kernel contract, the manifest and the harness put them", run: sensitive_caps },
    Case { id: "SHELL-001", what: "the shell holds exactly its manifest entry: the console (read, write), its keyboard notification, a call cap to the AI server (badge 2), a status-only supervisor cap and the read-only audit; no program holds a control supervisor cap or the console's read right but the shell", run: shell_least_privilege },
];

/// init's slots, by the kernel's boot contract (`kernel/src/process.rs`).
const INIT_CONSOLE: u32 = 1;
const INIT_CSPACE: u32 = 2;
const INIT_ADDRESS_SPACE: u32 = 3;
const INIT_IRQS: [(u32, u32); 4] = [(100, 1), (101, 3), (102, 8), (103, 12)];
const INIT_PORTS: [u32; 3] = [110, 111, 112];
const INIT_AUDIT: u32 = 120;
const INIT_INITRD_FRAME: u32 = libcap::slots::INIT_INITRD_FRAME_SLOT.index();
const INIT_DEVICE_FRAME: u32 = libcap::slots::INIT_DEVICE_FRAME_SLOT.index();
const INIT_PCI: u32 = libcap::slots::INIT_PCI_SLOT.index();
/// Where the harness puts its copies of init's device frame and PCI bus cap in the suite.
const SUITE_DEVICE_FRAME: u32 = crate::world::DEVICE_FRAME.index();
const SUITE_PCI: u32 = crate::world::PCI.index();
/// Where the harness puts its copy of init's initrd frame cap in the suite.
const SUITE_INITRD_FRAME: u32 = crate::world::INITRD_FRAME.index();
/// The harness's slots in the kernel's space (`kernel/src/harness/ksuite.rs`).
const KERNEL_CONSOLE: u32 = 0;
const HARNESS_CODE: [u32; 4] = [60, 61, 62, 63];
const HARNESS_NOTIFICATIONS: [u32; 2] = [64, 65];
const HARNESS_AUDIT: u32 = 66;

fn bits(rights: Rights) -> u64 {
    u64::from(rights.bits())
}

fn kind(kind: ObjectType) -> u64 {
    u64::from(kind.as_u32())
}

fn manifest(world: &World) -> Result<&CompiledManifest, Fail> {
    match &world.manifest {
        Ok(manifest) => Ok(manifest),
        Err(why) => fail!("no manifest oracle: {why}"),
    }
}

/// The spaces of the booted system, told apart.
struct Roles<'s> {
    kernel: &'s SpaceCaps,
    init: &'s SpaceCaps,
    own: &'s SpaceCaps,
    /// Spaces with a running thread, other than init's and ours.
    programs: Vec<&'s SpaceCaps>,
    /// The rest.
    others: Vec<&'s SpaceCaps>,
}

fn roles(world: &World) -> Result<Roles<'_>, Fail> {
    let snapshot = &world.reference;
    let Some(kernel) = snapshot.space(0) else { fail!("the kernel's space 0 is not live") };
    let Some(own) = snapshot.space(world.own_space) else { fail!("our own space is not live") };
    let inits: Vec<&SpaceCaps> = snapshot
        .spaces
        .iter()
        .filter(|s| s.index != world.own_space && s.index != 0)
        .filter(|s| s.caps.iter().any(|(slot, cap)| *slot == INIT_AUDIT && cap.is(ObjectType::Audit)))
        .collect();
    let [init] = inits.as_slice() else { fail!("expected one space holding init's audit cap, found {}", inits.len()) };
    let mut programs = Vec::new();
    let mut others = Vec::new();
    for space in &snapshot.spaces {
        if [0, world.own_space, init.index].contains(&space.index) {
            continue;
        }
        if snapshot.threads_in(space.index) > 0 {
            programs.push(space);
        } else {
            others.push(space);
        }
    }
    Ok(Roles { kernel, init, own, programs, others })
}

/// Exactly these caps, no others, in this space.
fn expect_exact(what: &str, space: &SpaceCaps, want: &[(u32, u64, u64, u64)]) -> Outcome {
    let mut problems = Vec::new();
    for &(slot, kind, rights, badge) in want {
        match space.caps.iter().find(|(s, _)| *s == slot) {
            Some((_, cap)) if cap.kind == kind && cap.rights == rights && cap.badge == badge => {}
            other => problems.push(format!("slot {slot}: want kind {kind} rights {rights:#x} badge {badge:#x}, found {:?}", other.map(|(_, c)| c.describe()))),
        }
    }
    for (slot, cap) in &space.caps {
        if !want.iter().any(|w| w.0 == *slot) {
            problems.push(format!("slot {slot}: unexpected {}", cap.describe()));
        }
    }
    ensure!(problems.is_empty(), "{what} (space {}): {}", space.index, problems.join("; "));
    Ok(())
}

fn manifest_decodes(world: &mut World) -> Outcome {
    let manifest = manifest(world)?;
    ensure!(!manifest.programs.is_empty(), "the manifest starts no program");
    Ok(())
}

fn kernel_space(world: &mut World) -> Outcome {
    let roles = roles(world)?;
    let all = bits(Rights::ALL);
    let mut want = Vec::from([(KERNEL_CONSOLE, kind(ObjectType::Console), all, 0), (HARNESS_AUDIT, kind(ObjectType::Audit), all, 0)]);
    want.extend(HARNESS_CODE.iter().map(|&slot| (slot, kind(ObjectType::Frame), all, 0)));
    want.extend(HARNESS_NOTIFICATIONS.iter().map(|&slot| (slot, kind(ObjectType::Notification), all, 0)));
    expect_exact("the kernel's space", roles.kernel, &want)
}

fn suite_space(world: &mut World) -> Outcome {
    let roles = roles(world)?;
    let rx = bits(Rights::READ.union(Rights::EXECUTE));
    let r = bits(Rights::READ);
    let mut want = Vec::from([
        (1, kind(ObjectType::Console), bits(Rights::WRITE), 0),
        (2, kind(ObjectType::Audit), r, 0),
        (7, kind(ObjectType::Notification), r, 0),
        (8, kind(ObjectType::Notification), r, 0),
    ]);
    want.extend((3..=6).map(|slot| (slot, kind(ObjectType::Frame), rx, 0)));
    want.push((SUITE_INITRD_FRAME, kind(ObjectType::Frame), bits(Rights::READ.union(Rights::GRANT)), 0));
    let rwg = bits(Rights::READ.union(Rights::WRITE).union(Rights::GRANT));
    want.push((SUITE_DEVICE_FRAME, kind(ObjectType::Frame), rwg, 0));
    want.push((SUITE_PCI, kind(ObjectType::Pci), rwg, 0));
    expect_exact("the suite's space", roles.own, &want)
}

fn init_space(world: &mut World) -> Outcome {
    let roles = roles(world)?;
    let all = bits(Rights::ALL);
    let mut fixed = Vec::from([
        (INIT_CONSOLE, kind(ObjectType::Console), all, 0),
        (INIT_CSPACE, kind(ObjectType::CSpace), all, 0),
        (INIT_ADDRESS_SPACE, kind(ObjectType::AddressSpace), all, 0),
        (INIT_AUDIT, kind(ObjectType::Audit), all, 0),
        // The initrd as a borrowed frame: read and grant, never write or execute.
        (INIT_INITRD_FRAME, kind(ObjectType::Frame), bits(Rights::READ.union(Rights::GRANT)), 0),
        // The device window as a device frame, and the PCI bus: read, write, grant.
        (INIT_DEVICE_FRAME, kind(ObjectType::Frame), bits(Rights::READ.union(Rights::WRITE).union(Rights::GRANT)), 0),
        (INIT_PCI, kind(ObjectType::Pci), bits(Rights::READ.union(Rights::WRITE).union(Rights::GRANT)), 0),
    ]);
    fixed.extend(INIT_IRQS.iter().map(|&(slot, _)| (slot, kind(ObjectType::IrqHandler), all, 0)));
    fixed.extend(INIT_PORTS.iter().map(|&slot| (slot, kind(ObjectType::IoPortRange), all, 0)));
    let mut problems = Vec::new();
    for &(slot, kind, rights, badge) in &fixed {
        match roles.init.caps.iter().find(|(s, _)| *s == slot) {
            Some((_, cap)) if cap.kind == kind && cap.rights == rights && cap.badge == badge => {}
            other => problems.push(format!("slot {slot}: want kind {kind}, found {:?}", other.map(|(_, c)| c.describe()))),
        }
    }
    // PCI caps: the one-function caps init cuts for the manifest's drivers (`PciSlice`).
    let creatable = [ObjectType::Endpoint, ObjectType::Notification, ObjectType::Frame, ObjectType::AddressSpace, ObjectType::Thread, ObjectType::CSpace, ObjectType::Pci];
    for (slot, cap) in &roles.init.caps {
        if fixed.iter().any(|f| f.0 == *slot) {
            continue;
        }
        if !creatable.iter().any(|&k| cap.is(k)) {
            problems.push(format!("slot {slot}: {} is not a kind init creates", cap.describe()));
        }
    }
    ensure!(problems.is_empty(), "init (space {}): {}", roles.init.index, problems.join("; "));
    Ok(())
}

/// What a program's space must hold, slot by slot: (kind, rights, badge).
fn expected_caps(program: &Program) -> Vec<(u32, u64, u64, u64)> {
    let mut want: Vec<(u32, u64, u64, u64)> =
        program.caps.iter().map(|grant| (grant.slot, kind(grant.kind()), u64::from(grant.rights), grant.badge)).collect();
    if let Some(slot) = program.audit_slot() {
        // The test runner's audit cap, read-only, where init puts it.
        want.push((slot.index(), kind(ObjectType::Audit), bits(Rights::READ), 0));
    }
    want
}

/// What a program may hold beyond its manifest entry: a model sandbox, once loaded, its
/// container's frame (read) at [`manifest::SANDBOX_WEIGHTS_SLOT`] (which frame it is,
/// `object_identity` checks).
fn gained_caps(manifest: &CompiledManifest, program: &Program) -> Vec<(u32, u64, u64, u64)> {
    match manifest.models.iter().any(|m| m.sandbox == program.name) {
        true => Vec::from([(manifest::SANDBOX_WEIGHTS_SLOT, kind(ObjectType::Frame), bits(Rights::READ), 0)]),
        false => Vec::new(),
    }
}

/// `space` holds every cap of `want`, and beyond them only caps of `gained`.
fn matches(space: &SpaceCaps, want: &[(u32, u64, u64, u64)], gained: &[(u32, u64, u64, u64)]) -> bool {
    let held = |&(slot, kind, rights, badge): &(u32, u64, u64, u64)| {
        space.caps.iter().any(|(s, cap)| *s == slot && cap.kind == kind && cap.rights == rights && cap.badge == badge)
    };
    let extra = space.caps.len().checked_sub(want.len());
    want.iter().all(held) && extra.is_some_and(|n| n <= gained.iter().filter(|g| held(g)).count())
}

/// Which manifest program each program space is (its index in `manifest.programs`).
fn assign<'s>(world: &World, roles: &Roles<'s>) -> Result<Vec<(&'s SpaceCaps, usize)>, Fail> {
    let manifest = manifest(world)?;
    let mut assigned: Vec<(&SpaceCaps, usize)> = Vec::new();
    let mut problems = Vec::new();
    for space in &roles.programs {
        let candidates: Vec<usize> = manifest
            .programs
            .iter()
            .enumerate()
            .filter(|(index, program)| {
                matches(space, &expected_caps(program), &gained_caps(manifest, program)) && !assigned.iter().any(|(_, i)| i == index)
            })
            .map(|(index, _)| index)
            .collect();
        match candidates.first() {
            Some(&index) => assigned.push((space, index)),
            None => problems.push(format!(
                "space {} matches no manifest program: {}",
                space.index,
                space.caps.iter().map(|(slot, cap)| format!("{slot}: {}", cap.describe())).collect::<Vec<String>>().join(", ")
            )),
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("; "));
    Ok(assigned)
}

fn programs_match(world: &mut World) -> Outcome {
    let roles = roles(world)?;
    let assigned = assign(world, &roles)?;
    let manifest = manifest(world)?;
    let names: Vec<&str> = assigned.iter().map(|(_, index)| manifest.programs[*index].name.as_str()).collect();
    libcap::println!("leak-suite: running programs, each holding exactly its manifest entry: {names:?}");
    Ok(())
}

fn object_identity(world: &mut World) -> Outcome {
    let roles = roles(world)?;
    let assigned = assign(world, &roles)?;
    let manifest = manifest(world)?;
    let Some(console) = world.reference.cap(0, KERNEL_CONSOLE) else { fail!("no console root") };
    for (slot, cap) in world.reference.all_of(ObjectType::Console).iter().map(|(s, slot, c)| ((*s, *slot), *c)) {
        ensure!(cap.object == console.object, "the console cap at {slot:?} names object {}, not the console", cap.object);
    }
    // Manifest object -> kernel object, from every program holding a cap to it.
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for (space, index) in &assigned {
        for grant in &manifest.programs[*index].caps {
            let Some(cap) = space.caps.iter().find(|(s, _)| *s == grant.slot).map(|(_, c)| *c) else { continue };
            let name = match grant.object {
                ObjectRef::Endpoint(i) => format!("endpoint {i}"),
                ObjectRef::Notification(i) => format!("notification {i}"),
                ObjectRef::Irq(line) => {
                    let slot = INIT_IRQS.iter().find(|(_, l)| *l == line).map(|(s, _)| *s);
                    let held = slot.and_then(|s| roles.init.caps.iter().find(|(x, _)| *x == s)).map(|(_, c)| c.object);
                    ensure!(held == Some(cap.object), "irq {line} in space {} is not init's handler", space.index);
                    continue;
                }
                _ => continue,
            };
            if let Some(&object) = seen.get(&name) {
                ensure!(object == cap.object, "{name}: programs hold caps to two different objects");
            }
            seen.insert(name, cap.object);
        }
    }
    // A sandbox's weights are its own model's container, the very frame the AI server holds.
    let server = manifest.ai_server.as_deref().and_then(|name| assigned.iter().find(|(_, i)| manifest.programs[*i].name == name));
    for model in &manifest.models {
        let Some((sandbox, _)) = assigned.iter().find(|(_, i)| manifest.programs[*i].name == model.sandbox) else { continue };
        let Some(weights) = sandbox.caps.iter().find(|(s, _)| *s == manifest::SANDBOX_WEIGHTS_SLOT).map(|(_, c)| c.object) else {
            continue;
        };
        let container = server.and_then(|(space, _)| space.caps.iter().find(|(s, _)| *s == model.container_slot)).map(|(_, c)| c.object);
        ensure!(
            container == Some(weights),
            "{}'s weights (object {weights}) are not model {}'s container as the AI server holds it ({container:?})",
            model.sandbox,
            model.name
        );
    }
    let mut objects: Vec<u64> = seen.values().copied().collect();
    objects.sort_unstable();
    objects.dedup();
    ensure!(objects.len() == seen.len(), "two manifest objects are one kernel object: {seen:?}");
    for (name, object) in &seen {
        let held = roles.init.caps.iter().any(|(_, cap)| cap.object == *object && cap.rights == bits(Rights::ALL) && cap.badge == 0);
        ensure!(held, "init holds no all-rights original of {name} (object {object})");
    }
    Ok(())
}

fn keepers(world: &mut World) -> Outcome {
    let roles = roles(world)?;
    for space in &roles.others {
        let foreign: Vec<String> =
            space.caps.iter().filter(|(_, cap)| !cap.is(ObjectType::Frame)).map(|(slot, cap)| format!("{slot}: {}", cap.describe())).collect();
        ensure!(foreign.is_empty(), "space {} has no thread and holds more than frames: {}", space.index, foreign.join(", "));
    }
    let init_cspaces = roles.init.caps.iter().filter(|(slot, cap)| *slot != INIT_CSPACE && cap.is(ObjectType::CSpace)).count();
    let accounted = roles.programs.len() + roles.others.len();
    ensure!(init_cspaces == accounted, "init holds {init_cspaces} cspace caps, but {accounted} program and keeper spaces are live");
    Ok(())
}

fn threads(world: &mut World) -> Outcome {
    let roles = roles(world)?;
    let snapshot: &Snapshot = &world.reference;
    for thread in &snapshot.threads {
        let Some(space) = thread.space else { continue };
        let known = space == roles.init.index || space == world.own_space || roles.programs.iter().any(|p| p.index == space);
        ensure!(known, "thread {} runs in space {space}, which is no process's", thread.index);
    }
    for space in roles.programs.iter().chain([&roles.init, &roles.own]) {
        let count = snapshot.threads_in(space.index);
        ensure!(count == 1, "space {} has {count} threads", space.index);
    }
    Ok(())
}

fn sensitive_caps(world: &mut World) -> Outcome {
    let roles = roles(world)?;
    let assigned = assign(world, &roles)?;
    let manifest = manifest(world)?;
    let audits: Vec<(u16, u32)> = world.reference.all_of(ObjectType::Audit).iter().map(|(s, slot, _)| (*s, *slot)).collect();
    let mut allowed = Vec::from([(0, HARNESS_AUDIT), (roles.init.index, INIT_AUDIT), (world.own_space, 2)]);
    for (space, index) in &assigned {
        if manifest.programs[*index].audit {
            allowed.extend(expected_caps(&manifest.programs[*index]).iter().filter(|w| w.1 == kind(ObjectType::Audit)).map(|w| (space.index, w.0)));
        }
    }
    for holder in &audits {
        ensure!(allowed.contains(holder), "an audit cap at space {} slot {}", holder.0, holder.1);
    }
    // init's initrd frame: init and the suite (the harness's copy) hold it, nobody else.
    let Some(initrd) = roles.init.caps.iter().find(|(slot, _)| *slot == INIT_INITRD_FRAME).map(|(_, cap)| cap.object) else {
        fail!("init holds no initrd frame at slot {INIT_INITRD_FRAME}")
    };
    for (space, slot, _) in world.reference.all_of(ObjectType::Frame).into_iter().filter(|(_, _, cap)| cap.object == initrd) {
        let expected = (space == roles.init.index && slot == INIT_INITRD_FRAME) || (space == world.own_space && slot == SUITE_INITRD_FRAME);
        ensure!(expected, "the initrd frame at space {space} slot {slot}");
    }
    // init's device frame: init and the suite (the harness's copy) hold it, nobody else.
    let Some(window) = roles.init.caps.iter().find(|(slot, _)| *slot == INIT_DEVICE_FRAME).map(|(_, cap)| cap.object) else {
        fail!("init holds no device frame at slot {INIT_DEVICE_FRAME}")
    };
    for (space, slot, _) in world.reference.all_of(ObjectType::Frame).into_iter().filter(|(_, _, cap)| cap.object == window) {
        let expected = (space == roles.init.index && slot == INIT_DEVICE_FRAME) || (space == world.own_space && slot == SUITE_DEVICE_FRAME);
        ensure!(expected, "the device frame at space {space} slot {slot}");
    }
    for (space, slot, cap) in world.reference.all_of(ObjectType::Pci) {
        let in_init = space == roles.init.index;
        let suite = space == world.own_space && slot == SUITE_PCI;
        let granted = assigned.iter().any(|(s, index)| s.index == space && manifest.programs[*index].caps.iter().any(|g| g.slot == slot && g.kind() == ObjectType::Pci));
        ensure!(in_init || suite || granted, "a PCI cap at space {space} slot {slot}: {}", cap.describe());
    }
    for device in [ObjectType::IrqHandler, ObjectType::IoPortRange] {
        for (space, slot, cap) in world.reference.all_of(device) {
            let in_init = space == roles.init.index && (INIT_IRQS.iter().any(|(s, _)| *s == slot) || INIT_PORTS.contains(&slot));
            let granted = assigned.iter().any(|(s, index)| {
                s.index == space && manifest.programs[*index].caps.iter().any(|g| g.slot == slot && kind(g.kind()) == cap.kind)
            });
            ensure!(in_init || granted, "a {device:?} cap at space {space} slot {slot}: {}", cap.describe());
        }
    }
    Ok(())
}

/// The badge system.toml gives the shell's cap to the AI server.
const SHELL_AI_BADGE: u64 = 2;

fn shell_least_privilege(world: &mut World) -> Outcome {
    let roles = roles(world)?;
    let assigned = assign(world, &roles)?;
    let manifest = manifest(world)?;
    let Some(index) = manifest.programs.iter().position(|p| p.name == "shell") else { fail!("system.toml starts no shell") };
    let Some((space, _)) = assigned.iter().find(|(_, i)| *i == index) else { fail!("the shell is not running (or holds more or less than its entry)") };
    let console = bits(Rights::READ.union(Rights::WRITE));
    let notification = bits(Rights::READ.union(Rights::WRITE));
    let call = bits(Rights::WRITE.union(Rights::GRANT_REPLY));
    let want = [
        (1, kind(ObjectType::Console), console, 0),
        (2, kind(ObjectType::Notification), notification, 0),
        (3, kind(ObjectType::Endpoint), bits(Rights::WRITE), SHELL_AI_BADGE),
        (4, kind(ObjectType::Endpoint), call, init_api::STATUS_BADGE),
        (5, kind(ObjectType::Audit), bits(Rights::READ), 0),
    ];
    expect_exact("the shell", space, &want)?;
    for other in world.reference.spaces.iter().filter(|s| s.index != space.index && s.index != 0 && s.index != roles.init.index) {
        for (slot, cap) in &other.caps {
            ensure!(
                !(cap.is(ObjectType::Endpoint) && cap.badge == init_api::CONTROL_BADGE),
                "space {} slot {slot} holds a control supervisor cap",
                other.index
            );
            ensure!(
                !(cap.is(ObjectType::Console) && cap.rights & bits(Rights::READ) != 0),
                "space {} slot {slot} can read the console",
                other.index
            );
        }
    }
    Ok(())
}

/// For reports: a space's caps, one per line.
#[allow(dead_code, reason = "kept for debugging a failed audit")]
pub fn dump(snapshot: &Snapshot) {
    for space in &snapshot.spaces {
        for (slot, cap) in &space.caps {
            libcap::println!("leak-suite: space {} slot {slot}: {}", space.index, cap.describe());
        }
    }
}
