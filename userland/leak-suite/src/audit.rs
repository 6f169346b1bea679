//! The authority audit: every capability space's caps and every thread's space, read
//! through the audit cap (`AuditCap`, `AuditThread`), as a [`Snapshot`] that can be
//! compared with another.
//!
//! A cap is recorded with its slot, kind, rights, badge and the kernel's object identity
//! (caps to the same object share it), so a snapshot says exactly who can do what to which
//! object. The suite takes one after the boot settled, checks it against the manifest
//! (`cases::boot`), and requires every later case to leave the system with exactly that
//! snapshot again: any cap anywhere that was not there before is a leak.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use libcap::{ErrorCode, ObjectType, Sysno};

use crate::world::{AUDIT, Fail, SLOTS};

/// The most capability spaces the audit looks at. The kernel has 128 (`abi::tables`); spaces past its last
/// answer `InvalidSlot` at once, so scanning further costs one call each.
pub const SPACES_SCANNED: u16 = 256;

/// One cap as the audit sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapRecord {
    pub kind: u64,
    pub rights: u64,
    pub badge: u64,
    /// The kernel object's identity.
    pub object: u64,
}

impl CapRecord {
    pub fn is(&self, kind: ObjectType) -> bool {
        self.kind == u64::from(kind.as_u32())
    }

    pub fn describe(&self) -> String {
        let kind = ObjectType::try_from(self.kind).map_or(format!("kind {}", self.kind), |k| format!("{k:?}"));
        format!("{kind} rights {:#x} badge {:#x} object {}", self.rights, self.badge, self.object)
    }
}

/// `AuditCap(space, slot)` through the suite's audit cap.
pub fn audit_cap(space: u64, slot: u64) -> Result<CapRecord, ErrorCode> {
    audit_cap_with(u64::from(AUDIT.index()), space, slot)
}

/// `AuditCap` through the cap in `audit` (for the error cases).
pub fn audit_cap_with(audit: u64, space: u64, slot: u64) -> Result<CapRecord, ErrorCode> {
    let (rax, regs) = libcap::sys::syscall_raw(Sysno::AuditCap.as_u64(), [audit, space, slot, 0, 0, 0, 0, 0, 0, 0]);
    code(rax)?;
    Ok(CapRecord { kind: regs[2], rights: regs[3], badge: regs[4], object: regs[5] })
}

/// `AuditThread(index)`: (capability-space index + 1 or 0, state).
pub fn audit_thread(index: u64) -> Result<(u64, u64), ErrorCode> {
    audit_thread_with(u64::from(AUDIT.index()), index)
}

pub fn audit_thread_with(audit: u64, index: u64) -> Result<(u64, u64), ErrorCode> {
    let (rax, regs) = libcap::sys::syscall_raw(Sysno::AuditThread.as_u64(), [audit, index, 0, 0, 0, 0, 0, 0, 0, 0]);
    code(rax)?;
    Ok((regs[2], regs[3]))
}

/// A syscall's `rax` as a result.
pub fn code(rax: u64) -> Result<(), ErrorCode> {
    if rax == 0 {
        return Ok(());
    }
    Err(u32::try_from(rax).ok().and_then(|n| ErrorCode::try_from(n).ok()).unwrap_or(ErrorCode::InvalidSyscall))
}

/// Thread states as `AuditThread` numbers them.
pub mod state {
    pub const FREE: u64 = 0;
    pub const INACTIVE: u64 = 1;
    pub const DEAD: u64 = 6;
}

/// The caps of one live capability space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceCaps {
    pub index: u16,
    pub caps: Vec<(u32, CapRecord)>,
}

/// A live thread and the space it runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadRecord {
    pub index: u16,
    /// `None` for a kernel thread (or one that has no space).
    pub space: Option<u16>,
    pub state: u64,
}

/// Every live space's caps and every live thread's space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub spaces: Vec<SpaceCaps>,
    pub threads: Vec<ThreadRecord>,
}

impl Snapshot {
    pub fn take() -> Result<Snapshot, Fail> {
        let mut spaces = Vec::new();
        for space in 0..SPACES_SCANNED {
            match audit_cap(u64::from(space), 0) {
                // A space that is not live (or past the kernel's last): see AUDIT-CAP-003.
                Err(ErrorCode::InvalidSlot) => continue,
                Ok(_) | Err(ErrorCode::EmptySlot) => {}
                Err(other) => return Err(Fail(format!("AuditCap({space}, 0): {other:?}"))),
            }
            let mut caps = Vec::new();
            for slot in 0..SLOTS {
                match audit_cap(u64::from(space), u64::from(slot)) {
                    Ok(record) => caps.push((slot, record)),
                    Err(ErrorCode::EmptySlot) => {}
                    // The space died while we looked (a thread ending elsewhere).
                    Err(ErrorCode::InvalidSlot) if slot > 0 => break,
                    Err(other) => return Err(Fail(format!("AuditCap({space}, {slot}): {other:?}"))),
                }
            }
            spaces.push(SpaceCaps { index: space, caps });
        }
        let mut threads = Vec::new();
        for index in 0u16.. {
            match audit_thread(u64::from(index)) {
                Ok((_, state::FREE | state::DEAD)) => {}
                Ok((space, state)) => threads.push(ThreadRecord { index, space: space.checked_sub(1).map(|s| s as u16), state }),
                Err(ErrorCode::InvalidArgument) => break,
                Err(other) => return Err(Fail(format!("AuditThread({index}): {other:?}"))),
            }
        }
        Ok(Snapshot { spaces, threads })
    }

    pub fn space(&self, index: u16) -> Option<&SpaceCaps> {
        self.spaces.iter().find(|space| space.index == index)
    }

    pub fn cap(&self, space: u16, slot: u32) -> Option<CapRecord> {
        self.space(space)?.caps.iter().find(|(s, _)| *s == slot).map(|(_, record)| *record)
    }

    /// Every (space, slot) holding a cap to `object`.
    pub fn holders(&self, object: u64) -> Vec<(u16, u32)> {
        let mut found = Vec::new();
        for space in &self.spaces {
            for (slot, record) in &space.caps {
                if record.object == object {
                    found.push((space.index, *slot));
                }
            }
        }
        found
    }

    /// Every cap of `kind`, anywhere.
    pub fn all_of(&self, kind: ObjectType) -> Vec<(u16, u32, CapRecord)> {
        let mut found = Vec::new();
        for space in &self.spaces {
            for (slot, record) in &space.caps {
                if record.is(kind) {
                    found.push((space.index, *slot, *record));
                }
            }
        }
        found
    }

    /// The threads running in `space`.
    pub fn threads_in(&self, space: u16) -> usize {
        self.threads.iter().filter(|thread| thread.space == Some(space)).count()
    }

    /// What changed from `self` to `now`, one line per difference (empty: nothing).
    /// Thread states may change (a server blocks, a thread becomes ready); which threads
    /// live, and in which space, may not.
    pub fn diff(&self, now: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for space in &self.spaces {
            if now.space(space.index).is_none() {
                out.push(format!("space {} is gone ({} caps)", space.index, space.caps.len()));
            }
        }
        for space in &now.spaces {
            let before = self.space(space.index);
            if before.is_none() {
                out.push(format!("space {} is new", space.index));
            }
            for (slot, record) in &space.caps {
                match before.and_then(|b| b.caps.iter().find(|(s, _)| s == slot)) {
                    None => out.push(format!("space {} slot {slot}: gained {}", space.index, record.describe())),
                    Some((_, old)) if old != record => {
                        out.push(format!("space {} slot {slot}: {} became {}", space.index, old.describe(), record.describe()))
                    }
                    Some(_) => {}
                }
            }
            if let Some(before) = before {
                for (slot, record) in &before.caps {
                    if !space.caps.iter().any(|(s, _)| s == slot) {
                        out.push(format!("space {} slot {slot}: lost {}", space.index, record.describe()));
                    }
                }
            }
        }
        for thread in &now.threads {
            match self.threads.iter().find(|t| t.index == thread.index) {
                None => out.push(format!("thread {} is new (space {:?})", thread.index, thread.space)),
                Some(old) if old.space != thread.space => {
                    out.push(format!("thread {} moved from space {:?} to {:?}", thread.index, old.space, thread.space))
                }
                Some(_) => {}
            }
        }
        for thread in &self.threads {
            if !now.threads.iter().any(|t| t.index == thread.index) {
                out.push(format!("thread {} (space {:?}) is gone", thread.index, thread.space));
            }
        }
        out
    }
}

/// The index of the suite's own capability space: the one space where a fresh endpoint
/// appears in `probe` (a free slot of ours) and disappears again when it is deleted.
pub fn find_own_space(probe: libcap::CapSlot) -> Result<u16, Fail> {
    let slot = u64::from(probe.index());
    let before: Vec<u16> = (0..SPACES_SCANNED).filter(|&s| audit_cap(u64::from(s), slot).is_ok()).collect();
    libcap::sys::object_create(probe, ObjectType::Endpoint, 0)?;
    let with: Vec<u16> = (0..SPACES_SCANNED).filter(|&s| audit_cap(u64::from(s), slot).is_ok()).collect();
    libcap::sys::cap_delete(probe)?;
    let mut new = with.iter().filter(|s| !before.contains(s));
    match (new.next(), new.next()) {
        (Some(&own), None) => Ok(own),
        _ => Err(Fail(format!("cannot tell the suite's own space: {before:?} -> {with:?}"))),
    }
}
