//! The kernel's capability store: `kcore::cap` over the kernel's object handles.
//!
//! All capability spaces live in one statically sized store. The decisions (rights only
//! shrink, badges fixed, revoke reaches every derived cap, quotas) are made by the
//! host-tested `kcore::cap`; this module names the kernel objects caps point at and frees
//! them when their last cap goes.

use abi::{Badge, CapSlot, ErrorCode, ObjectType, Rights};
use kcore::cap::{CapStore, SlotRef, SpaceId};
use spin::Mutex;

/// What a cap points at, as the kernel finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// The kernel console (debug output).
    Console,
}

pub const SPACES: usize = 64;
pub const SLOTS: usize = 128;
pub const OBJECTS: usize = 1024;

pub type Store = CapStore<Object, SPACES, SLOTS, OBJECTS>;

static CAPS: Mutex<Store> = Mutex::new(Store::new());
/// The console object, created once at boot and shared by every console cap.
static CONSOLE_SPACE: SpaceId = SpaceId::new(0);

/// Runs `f` with the store locked.
pub fn with<R>(f: impl FnOnce(&mut Store) -> R) -> R {
    f(&mut CAPS.lock())
}

/// Boot: the kernel's own root space (space 0), holding the console object in slot 0, from
/// which every console cap is derived.
pub fn init() -> Result<(), ErrorCode> {
    with(|store| {
        store.create_root_space(CONSOLE_SPACE, u64::MAX)?;
        store.decode_create(SlotRef::new(CONSOLE_SPACE, 0), ObjectType::Console, 0)?.perform(Object::Console);
        Ok(())
    })
}

/// A new root capability space with `quota` bytes of kernel memory.
pub fn create_space(quota: u64) -> Result<SpaceId, ErrorCode> {
    with(|store| {
        let boot = store.decode_create_space(CONSOLE_SPACE, quota, 0)?;
        Ok(boot.perform())
    })
}

/// Gives `space` a console cap in `slot`, with `rights` (at most the kernel's).
pub fn grant_console(space: SpaceId, slot: u32, rights: Rights) -> Result<(), ErrorCode> {
    with(|store| {
        store.decode_mint(SlotRef::new(CONSOLE_SPACE, 0), SlotRef::new(space, slot), rights, Badge::NONE)?.perform();
        Ok(())
    })
}

/// Destroys a space: every cap in it goes (and with the last caps, their objects).
pub fn destroy_space(space: SpaceId) {
    with(|store| {
        if let Ok(destroy) = store.decode_destroy_space(space) {
            destroy.perform(&mut reap);
        }
    })
}

fn reap(_kind: ObjectType, object: Object) {
    match object {
        Object::Console => {}
    }
}

pub fn slot(space: SpaceId, slot: CapSlot) -> SlotRef {
    SlotRef::new(space, slot.index())
}

/// The object behind `slot` if it is a `kind` cap with at least `rights`.
pub fn lookup(space: SpaceId, slot: CapSlot, kind: ObjectType, rights: Rights) -> Result<(Object, Badge), ErrorCode> {
    with(|store| {
        let found = store.lookup(SlotRef::new(space, slot.index()))?;
        if found.kind != kind {
            return Err(ErrorCode::WrongObjectType);
        }
        if !rights.is_subset_of(found.rights) {
            return Err(ErrorCode::InsufficientRights);
        }
        Ok((found.handle, found.badge))
    })
}

pub fn reaper() -> impl FnMut(ObjectType, Object) {
    reap
}
