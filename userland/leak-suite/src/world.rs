//! The suite's world: its own slots, the census and audit between cases, and the check
//! helpers every case uses.
//!
//! # The suite's authority (given by `kernel/src/harness/ksuite.rs`)
//! | slot | cap |
//! |------|-----|
//! | 1 | console (write) |
//! | 2 | [`AUDIT`]: the authority audit (read) |
//! | 3-6 | [`CODE_FRAMES`]: the puppet's code (read, execute) |
//! | 7 | [`CENSUS_BASELINE`]: wait here for the harness to take the reference census |
//! | 8 | [`CENSUS_CHECK`]: wait here for the harness to compare with it (1 same, 2 different) |
//! | 9 | [`INITRD_FRAME`]: init's initrd frame (read, grant), a borrowed frame to slice |
//! | 10 | [`DEVICE_FRAME`]: init's device frame (read, write, grant), device memory to slice |
//! | 11 | [`PCI`]: init's PCI bus cap (read, write, grant) |
//!
//! Slots from [`FIRST_FREE`] on are the cases' to use; after every case whatever is left
//! there is deleted (threads first), so a failed case cannot spoil the next.

use alloc::format;
use alloc::string::String;
use core::fmt::Debug;

use libcap::sys::{self, CapInfo};
use libcap::{CapSlot, ErrorCode, ObjectType, Rights};

use crate::audit::Snapshot;

pub const AUDIT: CapSlot = CapSlot::new(2);
pub const CODE_FRAMES: [CapSlot; 4] = [CapSlot::new(3), CapSlot::new(4), CapSlot::new(5), CapSlot::new(6)];
pub const CENSUS_BASELINE: CapSlot = CapSlot::new(7);
pub const CENSUS_CHECK: CapSlot = CapSlot::new(8);
pub const INITRD_FRAME: CapSlot = CapSlot::new(9);
pub const DEVICE_FRAME: CapSlot = CapSlot::new(10);
pub const PCI: CapSlot = CapSlot::new(11);
pub const FIRST_FREE: u32 = 12;
/// Slots in a capability space (the kernel's; `InvalidSlot` from here on).
pub const SLOTS: u32 = 128;

/// Why a case failed.
#[derive(Debug)]
pub struct Fail(pub String);

/// What a case returns.
pub type Outcome = Result<(), Fail>;

/// Fails the case with a formatted reason.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { return Err($crate::world::Fail(alloc::format!($($arg)*))) };
}

/// Fails the case unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => { if !$cond { $crate::fail!($($arg)*) } };
}

impl From<ErrorCode> for Fail {
    fn from(code: ErrorCode) -> Fail {
        Fail(format!("unexpected error: {code:?}"))
    }
}

/// One case: a stable ID, what it shows, and the code.
pub struct Case {
    pub id: &'static str,
    pub what: &'static str,
    pub run: fn(&mut World) -> Outcome,
}

pub struct World {
    /// This process's capability-space index (as the audit numbers spaces).
    pub own_space: u16,
    /// The audit state every case must leave behind (taken after the boot settled).
    pub reference: Snapshot,
    /// Slots handed out by [`World::slot`] in the current case.
    reserved: u128,
    /// Mappings in use per code frame (a frame has room for two).
    code_users: [u8; 4],
    /// Puppets made so far: each gets distinct badges.
    pub puppets_made: u64,
    /// The seed of the property-style cases.
    pub seed: u64,
    /// The oracle: `etc/system.bin` from the initrd, decoded as init decodes it.
    pub manifest: Result<manifest::CompiledManifest, String>,
    /// A differential campaign (`cargo xtask fuzz --differential`): `etc/diff-campaign` in
    /// the initrd, `seed=S steps=N`. When present the suite runs DIFF-001 alone, with these.
    pub campaign: Option<(u64, u64)>,
}

impl World {
    pub fn new(own_space: u16, reference: Snapshot, seed: u64) -> World {
        World { own_space, reference, reserved: 0, code_users: [0; 4], puppets_made: 0, seed, manifest: read_manifest(), campaign: read_campaign() }
    }

    /// An empty slot of the suite's space, not handed out before in this case.
    pub fn slot(&mut self) -> Result<CapSlot, Fail> {
        for index in FIRST_FREE..SLOTS {
            if self.reserved & (1u128 << index) != 0 {
                continue;
            }
            if sys::cap_identify(CapSlot::new(index)) == Err(ErrorCode::EmptySlot) {
                self.reserved |= 1u128 << index;
                return Ok(CapSlot::new(index));
            }
        }
        fail!("the suite's capability space is full")
    }

    /// Gives back a slot from [`World::slot`] whose cap is gone.
    pub fn unreserve(&mut self, slot: CapSlot) {
        if slot.index() < SLOTS {
            self.reserved &= !(1u128 << slot.index());
        }
    }

    /// `n` empty slots.
    pub fn slots<const N: usize>(&mut self) -> Result<[CapSlot; N], Fail> {
        let mut out = [CapSlot::new(0); N];
        for slot in out.iter_mut() {
            *slot = self.slot()?;
        }
        Ok(out)
    }

    /// A code frame with room for one more mapping; give it back with [`World::code_done`].
    pub fn code_frame(&mut self) -> Result<usize, Fail> {
        let Some(index) = self.code_users.iter().position(|&users| users < 2) else {
            fail!("more than eight puppets at once")
        };
        self.code_users[index] += 1;
        Ok(index)
    }

    pub fn code_done(&mut self, index: usize) {
        if let Some(users) = self.code_users.get_mut(index) {
            *users = users.saturating_sub(1);
        }
    }

    /// Deletes whatever a case left in the free slots (threads first, so nothing runs in a
    /// space that is going away) and forgets what it reserved. Returns how many were left.
    pub fn clean(&mut self) -> usize {
        let mut left = 0;
        for pass in 0..2 {
            for index in FIRST_FREE..SLOTS {
                let slot = CapSlot::new(index);
                let Ok(info) = sys::cap_identify(slot) else { continue };
                let thread = info.object_type == ObjectType::Thread;
                if (pass == 0) == thread {
                    let _ = sys::cap_delete(slot);
                    left += 1;
                }
            }
        }
        self.reserved = 0;
        self.code_users = [0; 4];
        left
    }
}

/// The boot manifest from the initrd copy the harness mapped for us (as init reads it).
fn read_campaign() -> Option<(u64, u64)> {
    let initrd = libcap::rt::initrd()?;
    let text = core::str::from_utf8(kcore::ustar::Archive::find(initrd, "etc/diff-campaign").ok()??).ok()?;
    let number = |key: &str| {
        let value = text.split_whitespace().find_map(|word| word.strip_prefix(key)?.strip_prefix('='))?;
        match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => value.parse().ok(),
        }
    };
    Some((number("seed")?, number("steps")?))
}

fn read_manifest() -> Result<manifest::CompiledManifest, String> {
    let initrd = libcap::rt::initrd().ok_or_else(|| String::from("the harness passed no initrd"))?;
    let blob = match kcore::ustar::Archive::find(initrd, "etc/system.bin") {
        Ok(Some(blob)) => blob,
        Ok(None) => return Err("no etc/system.bin in the initrd".into()),
        Err(error) => return Err(format!("the initrd is not a readable archive: {error:?}")),
    };
    manifest::decode(blob).map_err(|error| format!("etc/system.bin: {error}"))
}

// ---- the harness's census -------------------------------------------------------------

/// The harness takes its reference census of kernel memory.
pub fn census_baseline() -> Result<(), Fail> {
    match sys::wait(CENSUS_BASELINE) {
        Ok(1) => Ok(()),
        other => fail!("census baseline: {other:?}"),
    }
}

/// The harness compares kernel memory with its reference (and re-takes it): `Ok(true)` if
/// every object, space, quota byte, thread slot and frame is as it was.
pub fn census_check() -> Result<bool, Fail> {
    match sys::wait(CENSUS_CHECK) {
        Ok(1) => Ok(true),
        Ok(2) => Ok(false),
        other => fail!("census check: {other:?}"),
    }
}

// ---- checks ---------------------------------------------------------------------------

/// `got` must be the error `want`.
pub fn expect_err<T: Debug>(what: &str, got: Result<T, ErrorCode>, want: ErrorCode) -> Outcome {
    match got {
        Err(code) if code == want => Ok(()),
        other => fail!("{what}: expected {want:?}, got {other:?}"),
    }
}

/// `got` must be a success.
pub fn expect_ok<T: Debug>(what: &str, got: Result<T, ErrorCode>) -> Result<T, Fail> {
    match got {
        Ok(value) => Ok(value),
        Err(code) => fail!("{what}: expected success, got {code:?}"),
    }
}

/// What a slot of the suite's own space should hold: nothing, or a cap of this kind,
/// rights and badge.
pub fn expect_slot(what: &str, slot: CapSlot, want: Option<(ObjectType, Rights, u64)>) -> Outcome {
    let got = sys::cap_identify(slot);
    match (want, got) {
        (None, Err(ErrorCode::EmptySlot)) => Ok(()),
        (Some((kind, rights, badge)), Ok(CapInfo { object_type, rights: r, badge: b, .. }))
            if object_type == kind && r == rights && b.value() == badge =>
        {
            Ok(())
        }
        (want, got) => fail!("{what}: slot {} should hold {want:?}, holds {got:?}", slot.index()),
    }
}

/// Creates an object of `kind` in a fresh slot of the suite.
pub fn create(world: &mut World, kind: ObjectType) -> Result<CapSlot, Fail> {
    let slot = world.slot()?;
    let size = if kind == ObjectType::CSpace { 4096 } else { 0 };
    expect_ok("ObjectCreate", sys::object_create(slot, kind, size))?;
    Ok(slot)
}

/// All rights, read/write.
pub const ALL: Rights = Rights::ALL;
pub const R: Rights = Rights::READ;
pub const W: Rights = Rights::WRITE;
pub const RW: Rights = Rights::READ.union(Rights::WRITE);
pub const G: Rights = Rights::GRANT;
