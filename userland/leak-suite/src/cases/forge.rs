//! Forging and guessing: there is nothing to forge. A cap is named by a slot index into the
//! caller's own capability space, so a hostile process can only ever name its own slots;
//! numbers it never received, slots emptied by delete, move or revoke, and indices that
//! look like they might encode another space all come back empty or invalid, for every
//! syscall that takes a cap.

use alloc::format;

use libcap::sys;
use libcap::{Badge, ErrorCode, ObjectType, Sysno};

use crate::puppet::{CONTROL, Puppet};
use crate::world::{ALL, AUDIT, Case, Outcome, RW, World, create, expect_ok};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "FORGE-001", what: "a fresh process holds exactly its one control cap: every other slot is empty, indices past the space are InvalidSlot", run: sweep_identify },
    Case { id: "FORGE-002", what: "every cap-taking syscall on every slot never received: EmptySlot", run: sweep_syscalls },
    Case { id: "FORGE-003", what: "another process's slot numbers mean nothing here: the victim's slots are empty in the attacker", run: victim_slots },
    Case { id: "FORGE-004", what: "slots after delete, move and revoke are empty for every use", run: stale_slots },
    Case { id: "FORGE-005", what: "no audit without an audit cap: WrongObjectType, EmptySlot; a rights-less audit cap: InsufficientRights", run: audit_needs_cap },
    Case { id: "FORGE-006", what: "indices that might encode another space (high bits, 2^32, 2^63) are InvalidSlot, never another space's slot", run: encoded_indices },
];

const SWEEP: [Sysno; 27] = [
    Sysno::Send,
    Sysno::NbSend,
    Sysno::Call,
    Sysno::Recv,
    Sysno::NbRecv,
    Sysno::Signal,
    Sysno::Wait,
    Sysno::Poll,
    Sysno::CapIdentify,
    Sysno::CapCopy,
    Sysno::CapMint,
    Sysno::CapMove,
    Sysno::CapDelete,
    Sysno::CapRevoke,
    Sysno::ConsoleWrite,
    Sysno::Map,
    Sysno::Unmap,
    Sysno::ThreadStart,
    Sysno::ThreadConfigure,
    Sysno::ThreadKill,
    Sysno::IoPortRead,
    Sysno::IrqAck,
    Sysno::FrameSlice,
    Sysno::PciConfigRead,
    Sysno::PciConfigWrite,
    Sysno::PciBar,
    Sysno::PciSlice,
];

fn sweep_identify(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    let caps = p.caps()?;
    ensure!(caps.len() == 1 && caps[0].0 == CONTROL, "a fresh puppet holds {caps:?}");
    for slot in 0..crate::world::SLOTS {
        let ret = p.sys(Sysno::CapIdentify, &[u64::from(slot)])?;
        let want = if slot == CONTROL { Ok(()) } else { Err(ErrorCode::EmptySlot) };
        ensure!(crate::audit::code(ret.rax) == want, "identify {slot}: {:?}", crate::audit::code(ret.rax));
    }
    for slot in [128, 129, 255, 1 << 16, u64::from(u32::MAX), 1 << 32, 1 << 63, u64::MAX] {
        p.sys_err("identify past the space", Sysno::CapIdentify, &[slot], ErrorCode::InvalidSlot)?;
    }
    p.teardown(world)
}

fn sweep_syscalls(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    for slot in 3..crate::world::SLOTS {
        let slot = u64::from(slot);
        for number in SWEEP {
            // Second operands that are valid where one is needed, so the first cap is what
            // is judged: a free destination slot, rights, an address.
            let args = match number {
                Sysno::CapCopy | Sysno::CapMint | Sysno::CapMove => [slot, 1, 0, 0],
                Sysno::ConsoleWrite => [slot, 0x40_0000, 1, 0],
                Sysno::Map => [slot, CONTROL.into(), 0x20_0000, 0],
                _ => [slot, 0, 0, 0],
            };
            let ret = p.sys(number, &args)?;
            let got = crate::audit::code(ret.rax);
            if got != Err(ErrorCode::EmptySlot) {
                fail!("{number:?} on never-received slot {slot}: {got:?}");
            }
        }
        // The cap-giving and audit calls, through the empty slot as their cap argument.
        p.sys_err(&format!("CapGive through slot {slot}"), Sysno::CapGive, &[CONTROL.into(), slot, 5, 0, 0], ErrorCode::EmptySlot)?;
        p.sys_err(&format!("AuditCap through slot {slot}"), Sysno::AuditCap, &[slot, 0, 0], ErrorCode::EmptySlot)?;
        p.sys_err(&format!("AuditThread through slot {slot}"), Sysno::AuditThread, &[slot, 0], ErrorCode::EmptySlot)?;
        p.sys_err(&format!("AuditMemory through slot {slot}"), Sysno::AuditMemory, &[slot], ErrorCode::EmptySlot)?;
        p.sys_err(&format!("AuditDenial through slot {slot}"), Sysno::AuditDenial, &[slot, 0], ErrorCode::EmptySlot)?;
        p.sys_err(&format!("IrqSetNotification through slot {slot}"), Sysno::IrqSetNotification, &[slot, 0], ErrorCode::EmptySlot)?;
        p.sys_err(&format!("IoPortWrite through slot {slot}"), Sysno::IoPortWrite, &[slot, 0x80, 1, 0], ErrorCode::EmptySlot)?;
    }
    p.teardown(world)
}

fn victim_slots(world: &mut World) -> Outcome {
    let e = create(world, ObjectType::Endpoint)?;
    let frame = create(world, ObjectType::Frame)?;
    let victim = Puppet::new(world)?;
    expect_ok("the victim's endpoint", victim.give(e, 9, ALL, 0))?;
    expect_ok("the victim's frame", victim.give(frame, 10, ALL, 0))?;
    let attacker = Puppet::new(world)?;
    attacker.sys_err("send on the victim's slot 9", Sysno::NbSend, &[9, 0], ErrorCode::EmptySlot)?;
    attacker.sys_err("copy the victim's slot 9", Sysno::CapCopy, &[9, 11], ErrorCode::EmptySlot)?;
    attacker.sys_err("use the victim's frame slot 10 as a cspace target", Sysno::CapGive, &[CONTROL.into(), 10, 1, 0, 0], ErrorCode::EmptySlot)?;
    ensure!(attacker.caps()?.len() == 1, "the attacker gained caps");
    victim.teardown(world)?;
    attacker.teardown(world)
}

fn stale_slots(world: &mut World) -> Outcome {
    let e = create(world, ObjectType::Endpoint)?;
    let p = Puppet::new(world)?;
    expect_ok("give", p.give(e, 5, RW, 0))?;
    p.sys_ok("copy 5 -> 6", Sysno::CapCopy, &[5, 6])?;
    p.sys_ok("move 6 -> 7", Sysno::CapMove, &[6, 7])?;
    p.sys_ok("copy 7 -> 8", Sysno::CapCopy, &[7, 8])?;
    p.sys_ok("delete 8", Sysno::CapDelete, &[8])?;
    for (slot, why) in [(6, "moved away"), (8, "deleted")] {
        p.sys_err(why, Sysno::NbSend, &[slot, 0], ErrorCode::EmptySlot)?;
        p.sys_err(why, Sysno::NbRecv, &[slot], ErrorCode::EmptySlot)?;
        p.sys_err(why, Sysno::CapCopy, &[slot, 9], ErrorCode::EmptySlot)?;
    }
    expect_ok("revoke ours", sys::cap_revoke(e))?;
    for slot in [5, 7] {
        p.sys_err("revoked", Sysno::NbSend, &[slot, 0], ErrorCode::EmptySlot)?;
        p.sys_err("revoked", Sysno::CapRevoke, &[slot], ErrorCode::EmptySlot)?;
    }
    ensure!(p.caps()?.len() == 1, "caps survived: {:?}", p.caps()?);
    p.teardown(world)
}

fn audit_needs_cap(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    p.sys_err("AuditCap through the control endpoint", Sysno::AuditCap, &[CONTROL.into(), 0, 0], ErrorCode::WrongObjectType)?;
    p.sys_err("AuditThread through the control endpoint", Sysno::AuditThread, &[CONTROL.into(), 0], ErrorCode::WrongObjectType)?;
    p.sys_err("AuditMemory through the control endpoint", Sysno::AuditMemory, &[CONTROL.into()], ErrorCode::WrongObjectType)?;
    p.sys_err("AuditDenial through the control endpoint", Sysno::AuditDenial, &[CONTROL.into(), 0], ErrorCode::WrongObjectType)?;
    let none = world.slot()?;
    expect_ok("a rights-less audit cap", sys::cap_mint(AUDIT, none, libcap::Rights::NONE, Badge::NONE))?;
    expect_ok("give it", p.give(none, 5, ALL, 0))?;
    p.sys_err("AuditCap without read", Sysno::AuditCap, &[5, 0, 0], ErrorCode::InsufficientRights)?;
    p.sys_err("AuditThread without read", Sysno::AuditThread, &[5, 0], ErrorCode::InsufficientRights)?;
    p.sys_err("AuditMemory without read", Sysno::AuditMemory, &[5], ErrorCode::InsufficientRights)?;
    // The denial record says what other programs were refused: only the audit cap reads it.
    p.sys_err("AuditDenial without read", Sysno::AuditDenial, &[5, 0], ErrorCode::InsufficientRights)?;
    p.teardown(world)
}

fn encoded_indices(world: &mut World) -> Outcome {
    let e = create(world, ObjectType::Endpoint)?;
    let p = Puppet::new(world)?;
    expect_ok("give", p.give(e, 5, ALL, 0))?;
    for slot in [(1u64 << 32) | 5, (2 << 32) | 5, (1 << 63) | 5, (1 << 16) | 5, (world.own_space as u64) << 32 | 5] {
        p.sys_err("an encoded index", Sysno::CapIdentify, &[slot], ErrorCode::InvalidSlot)?;
        p.sys_err("an encoded index", Sysno::NbSend, &[slot, 0], ErrorCode::InvalidSlot)?;
        p.sys_err("an encoded destination", Sysno::CapCopy, &[5, slot], ErrorCode::InvalidSlot)?;
    }
    ensure!(p.caps()?.len() == 2, "the puppet's caps changed");
    p.teardown(world)
}
