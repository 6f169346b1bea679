//! The kernel's capability store: `kcore::cap` over the kernel's object handles.
//!
//! All capability spaces live in one statically sized store. The decisions (rights only
//! shrink, badges fixed, revoke reaches every derived cap, quotas) are made by the
//! host-tested `kcore::cap`; this module names the kernel objects caps point at, and hands
//! those whose last cap went to `object::destroy`. Making and destroying the objects
//! themselves is `object.rs`.

use abi::{Badge, CapSlot, ErrorCode, ObjectType, Rights};
use abi::tables::Table;
use kcore::cap::{CapStore, Shares, SlotRef, SpaceId};
use spin::Mutex;

/// What a cap points at, as the kernel finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Object {
    /// The kernel console (debug output).
    Console,
    /// An index into the scheduler's endpoint table.
    Endpoint(u16),
    /// An index into the scheduler's notification table.
    Notification(u16),
    /// An index into the frame table.
    Frame(u32),
    /// An index into the address-space table.
    AddressSpace(u16),
    /// A thread slot.
    Thread(u16),
    /// A capability space.
    CSpace(u16),
    /// An ISA interrupt line.
    Irq(u8),
    /// The I/O ports `first..=last`.
    IoPorts(u16, u16),
    /// The authority-audit right.
    Audit,
    /// The PCI functions `first..=last` (`bus << 8 | device << 3 | function`).
    Pci(u16, u16),
}

pub const SPACES: usize = Table::CSpaces.capacity() as usize;
pub const SLOTS: usize = 128;
pub const OBJECTS: usize = Table::Objects.capacity() as usize;

/// Table entries outside every quota's shares, for the objects the kernel makes without a
/// cap: the idle thread, init's thread, the in-QEMU harnesses' programs (threads and address
/// spaces), and the kernel's own root space.
const KERNEL_MADE: Shares = Shares::NONE.plus(Table::CSpaces, 1).plus(Table::Threads, 16).plus(Table::AddressSpaces, 16);

/// The shares the kernel's root space keeps when init takes the rest: what 10 MiB of quota
/// buys (about a sixth of each table), for the spaces and objects the in-QEMU harnesses make
/// beside init (the leak suite's space carries 8 MiB).
const KERNEL_KEEPS: Shares = Shares::for_quota(10 << 20);

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
        store.create_root_space_with(CONSOLE_SPACE, u64::MAX, Shares::ALL.less(KERNEL_MADE))?;
        store.decode_create(SlotRef::new(CONSOLE_SPACE, 0), ObjectType::Console, 0)?.perform(Object::Console);
        Ok(())
    })
}

/// A new top-level capability space with `quota` bytes of kernel memory and the table
/// shares they buy (the in-QEMU harnesses' programs).
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU harnesses"))]
pub fn create_space(quota: u64) -> Result<SpaceId, ErrorCode> {
    with(|store| Ok(store.decode_create_space(CONSOLE_SPACE, quota, 0)?.perform()))
}

/// init's capability space: `quota` bytes, and every table entry the kernel does not keep.
pub fn create_init_space(quota: u64) -> Result<SpaceId, ErrorCode> {
    with(|store| {
        let unheld = store.quota(CONSOLE_SPACE).map_or(Shares::NONE, |q| q.unheld());
        let rest = unheld.less(KERNEL_KEEPS).less(Shares::one(Table::CSpaces));
        Ok(store.decode_create_space_with(CONSOLE_SPACE, quota, 0, rest)?.perform())
    })
}

/// Gives `space` a console cap in `slot`, with `rights` (at most the kernel's).
pub fn grant_console(space: SpaceId, slot: u32, rights: Rights) -> Result<(), ErrorCode> {
    with(|store| {
        store.decode_mint(SlotRef::new(CONSOLE_SPACE, 0), SlotRef::new(space, slot), rights, Badge::NONE)?.perform();
        Ok(())
    })
}

/// Objects whose last cap went while the store was locked. They are destroyed after the
/// lock is released, because destroying an endpoint wakes threads (the scheduler lock is
/// always taken before the store's, never after).
pub struct Reaped {
    objects: [Option<Object>; SLOTS],
    count: usize,
}

impl Reaped {
    pub const fn new() -> Self {
        Reaped { objects: [None; SLOTS], count: 0 }
    }

    /// Destroys what was collected (`object::destroy`).
    pub fn finish(self) {
        for object in self.objects.iter().take(self.count).flatten() {
            crate::object::destroy(*object);
        }
    }
}

impl kcore::cap::Reaper<Object> for Reaped {
    fn reap(&mut self, _kind: ObjectType, object: Object) {
        // A space holds at most SLOTS caps, so one destroy reaps at most SLOTS objects.
        if let Some(slot) = self.objects.get_mut(self.count) {
            *slot = Some(object);
            self.count += 1;
        }
    }
}

/// Installs an existing kernel object in `space`'s `slot` with all rights (boot only:
/// init's caps to its own space and address space).
pub fn install(space: SpaceId, slot: u32, kind: ObjectType, object: Object) -> Result<(), ErrorCode> {
    install_with_rights(space, slot, kind, object, Rights::ALL)
}

/// As [`install`], with only `rights` (boot only: init's read-only initrd frame).
pub fn install_with_rights(space: SpaceId, slot: u32, kind: ObjectType, object: Object, rights: Rights) -> Result<(), ErrorCode> {
    let id = with(|store| store.decode_create(SlotRef::new(space, slot), kind, 0).map(|op| op.perform_with_rights(object, rights)))?;
    if let Object::AddressSpace(index) = object {
        // The tables the kernel built it with were free; those it makes from now on are not.
        crate::vspace::set_payer(index, id);
    }
    Ok(())
}

/// Mints from `space`'s `from` slot into `to_space`'s `to` slot (kernel use: boot and tests).
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn mint(space: SpaceId, from: u32, to_space: SpaceId, to: u32, rights: Rights, badge: Badge) -> Result<(), ErrorCode> {
    derive(SlotRef::new(space, from), SlotRef::new(to_space, to), rights, badge)
}

/// Every way a cap gets a new home goes through here (copy, mint, give, IPC transfer):
/// the placement rule, then the store's own checks, then the derivation.
pub fn derive(from: SlotRef, to: SlotRef, rights: Rights, badge: Badge) -> Result<(), ErrorCode> {
    with(|store| {
        check_placement(store, from, to.space)?;
        store.decode_mint(from, to, rights, badge).map(|op| op.perform())
    })
}

/// Moves a cap (placement rule, then the store's checks).
pub fn relocate(from: SlotRef, to: SlotRef) -> Result<(), ErrorCode> {
    with(|store| {
        check_placement(store, from, to.space)?;
        store.decode_move(from, to).map(|op| op.perform())
    })
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

/// A cap to a capability space may be placed only in a strict ancestor (in the quota tree)
/// of the space it names, so no space can ever hold the only cap to itself, directly or
/// through a ring of spaces, and live forever. `IllegalOperation` otherwise.
pub fn check_placement(store: &Store, source: SlotRef, destination: SpaceId) -> Result<(), ErrorCode> {
    if let Ok(found) = store.lookup(source)
        && let Object::CSpace(index) = found.handle
            && !store.is_strict_ancestor(destination, SpaceId::new(index)) {
                return Err(ErrorCode::IllegalOperation);
            }
    Ok(())
}
