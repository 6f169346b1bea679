//! Kernel objects: making one for `ObjectCreate`, and destroying one when its last cap goes.
//!
//! Creation is split like the cap store's operations. [`decode_create`] makes every check
//! (the kind, a frame's size and flags, the destination slot, the creator's bytes and table
//! shares) and changes nothing; [`Create::perform`] builds the object and places its cap.
//! What perform can still run out of is only what no quota covers (physical memory of the
//! kind asked for, a table entry the kernel keeps for itself): `OutOfResources`, with
//! nothing left behind. The kernel object is built with the store unlocked, because making
//! an endpoint or a thread takes the scheduler lock, which is always taken before the
//! store's; so perform checks the slot and quota again under the lock (on one CPU with the
//! syscall not preempted, nothing can have changed) and takes the object apart if not.
//!
//! `FrameSlice` ([`decode_slice`], [`Slice::perform`]) makes a borrowed frame the same way:
//! same accounting path (cost, object-table share, refund on destruction), its cap with the
//! source cap's rights instead of all.
//!
//! Destruction ([`destroy`]) runs after the store has forgotten the object and refunded its
//! payer (`caps::Reaped`). A capability space is destroyed by [`destroy_space`], which
//! stops its threads first and never recurses.

use abi::args::Arg;
use abi::{CapSlot, ErrorCode, ObjectType, Rights};
use kcore::cap::{SlotRef, SpaceId};
use spin::Mutex;

use crate::caps::{self, Object};

/// Kernel memory a capability space costs beyond the quota it is given.
pub const CSPACE_COST: u64 = 4096;
/// Kernel memory a thread costs (FPU state and bookkeeping; its kernel stack belongs to
/// its slot).
pub const THREAD_COST: u64 = 2 * 4096;

/// What `ObjectCreate` is to build, from its registers.
#[derive(Clone, Copy, Debug)]
enum Plan {
    CSpace { quota: u64 },
    Endpoint,
    Notification,
    Frame(crate::frame::Spec),
    AddressSpace,
    Thread,
}

impl Plan {
    /// `argument` is the quota of a new capability space or the size of a frame, `flags` a
    /// frame's flags (`abi::syscall::frame_create`); other kinds ignore both. A frame's
    /// size and flags are checked before the kind (and before the slot).
    fn decode(kind: ObjectType, argument: u64, flags: u64) -> Result<Plan, ErrorCode> {
        Ok(match kind {
            ObjectType::CSpace => Plan::CSpace { quota: argument },
            ObjectType::Endpoint => Plan::Endpoint,
            ObjectType::Notification => Plan::Notification,
            ObjectType::Frame => Plan::Frame(crate::frame::Spec::decode(argument, flags)?),
            ObjectType::AddressSpace => Plan::AddressSpace,
            ObjectType::Thread => Plan::Thread,
            _ => return Err(ErrorCode::InvalidArgument),
        })
    }

    /// Bytes charged to the creator for the object itself (a space's quota is charged with
    /// the space, by `decode_create_space`).
    fn cost(self) -> u64 {
        match self {
            Plan::CSpace { .. } => 0,
            Plan::Endpoint | Plan::Notification => crate::ipc::OBJECT_COST,
            Plan::Frame(spec) => spec.bytes(),
            Plan::AddressSpace => crate::vspace::SPACE_COST,
            Plan::Thread => THREAD_COST,
        }
    }
}

/// A checked `ObjectCreate`: every check made, nothing changed yet.
#[must_use = "a decoded creation does nothing until performed"]
pub struct Create {
    space: SpaceId,
    target: SlotRef,
    kind: ObjectType,
    plan: Plan,
}

/// Checks an `ObjectCreate` of `kind` into `slot` of `space`, charged to `space`'s quota.
/// Errors, in this order: a bad frame size or flags, `InvalidArgument` for a kind that
/// cannot be created, then the store's (slot, bytes, shares; for a space, those of the space
/// too).
pub fn decode_create(space: SpaceId, slot: CapSlot, kind: ObjectType, argument: u64, flags: u64) -> Result<Create, ErrorCode> {
    let plan = Plan::decode(kind, argument, flags)?;
    let target = SlotRef::new(space, slot.index());
    caps::with(|store| match plan {
        Plan::CSpace { quota } => {
            drop(store.decode_create(target, kind, 0)?);
            drop(store.decode_create_space(space, quota, CSPACE_COST)?);
            Ok(())
        }
        _ => store.decode_create(target, kind, plan.cost()).map(drop),
    })?;
    Ok(Create { space, target, kind, plan })
}

impl Create {
    /// Builds the object and places a cap to it, with all rights, in the slot.
    pub fn perform(self) -> Result<(), ErrorCode> {
        let Create { space, target, kind, plan } = self;
        if let Plan::CSpace { quota } = plan {
            return caps::with(|store| {
                // Checked again under this lock: the slot must be empty before a space is
                // made for it.
                drop(store.decode_create(target, kind, 0)?);
                let child = store.decode_create_space(space, quota, CSPACE_COST)?.perform();
                match store.decode_create(target, kind, 0) {
                    Ok(create) => {
                        create.perform(Object::CSpace(child.index()));
                        Ok(())
                    }
                    // Unreachable (checked above under the same lock), but never leak a space.
                    Err(error) => {
                        if let Ok(destroy) = store.decode_destroy_space(child) {
                            destroy.perform(&mut caps::Reaped::new());
                        }
                        Err(error)
                    }
                }
            });
        }
        let object = match plan {
            Plan::Endpoint => Object::Endpoint(crate::ipc::allocate_endpoint()?),
            Plan::Notification => Object::Notification(crate::ipc::allocate_notification()?),
            Plan::Frame(spec) => Object::Frame(crate::frame::create(spec)?),
            Plan::AddressSpace => {
                let pml4 = crate::vspace::create()?;
                match crate::vspace::register(pml4, false) {
                    Ok(index) => Object::AddressSpace(index),
                    Err(error) => {
                        crate::vspace::destroy(pml4, false);
                        return Err(error);
                    }
                }
            }
            Plan::Thread => Object::Thread(crate::sched::create_thread()?.0),
            Plan::CSpace { .. } => return Err(ErrorCode::InvalidArgument),
        };
        let created = caps::with(|store| store.decode_create(target, kind, plan.cost()).map(|op| op.perform(object)));
        match (created, object) {
            // Its page tables are charged to whoever pays for the space.
            (Ok(id), Object::AddressSpace(index)) => crate::vspace::set_payer(index, id),
            (Ok(_), _) => {}
            (Err(_), _) => destroy(object),
        }
        created.map(drop)
    }
}

/// [`decode_create`] and perform in one (the syscall, and the harnesses' setup).
pub fn create(space: SpaceId, slot: CapSlot, kind: ObjectType, argument: u64, flags: u64) -> Result<(), ErrorCode> {
    decode_create(space, slot, kind, argument, flags)?.perform()
}

/// A checked `FrameSlice`: every check made, nothing changed yet.
#[must_use = "a decoded slice does nothing until performed"]
pub struct Slice {
    target: SlotRef,
    extent: crate::frame::Borrowed,
    rights: Rights,
}

/// Checks a `FrameSlice` of the frame cap in `source` (needs `READ`) into `dest` of
/// `space`, charged to `space`'s quota like an `ObjectCreate` of a frame
/// ([`abi::syscall::frame_slice::COST`] bytes and an object-table entry). Errors, in the
/// order `abi::syscall::Sysno::FrameSlice` documents: the source cap's, `IllegalOperation`
/// for an owned source, `InvalidArgument` for the range, then the destination slot's and
/// the quota's (the store's `decode_create`).
pub fn decode_slice(space: SpaceId, source: Arg<CapSlot>, offset: u64, length: u64, dest: Arg<CapSlot>) -> Result<Slice, ErrorCode> {
    let found = caps::with(|store| store.lookup(caps::slot(space, source.get()?)))?;
    let Object::Frame(index) = found.handle else { return Err(ErrorCode::WrongObjectType) };
    if !Rights::READ.is_subset_of(found.rights) {
        return Err(ErrorCode::InsufficientRights);
    }
    let extent = crate::frame::Borrowed::slice(index, offset, length)?;
    let target = SlotRef::new(space, dest.destination()?.index());
    caps::with(|store| store.decode_create(target, ObjectType::Frame, abi::syscall::frame_slice::COST).map(drop))?;
    // Rights never grow: exactly the source cap's.
    Ok(Slice { target, extent, rights: found.rights })
}

impl Slice {
    /// Registers the borrowed frame and places its cap, with the source cap's rights.
    /// `OutOfResources` (nothing left behind) only if the frame table is full.
    pub fn perform(self) -> Result<(), ErrorCode> {
        let Slice { target, extent, rights } = self;
        let object = Object::Frame(crate::frame::create_borrowed(extent)?);
        let created = caps::with(|store| {
            store.decode_create(target, ObjectType::Frame, abi::syscall::frame_slice::COST).map(|op| op.perform_with_rights(object, rights))
        });
        if created.is_err() {
            destroy(object);
        }
        created.map(drop)
    }
}

/// Checks and performs a `PciSlice` of the PCI cap in `source` (needs `READ`) into `dest`
/// of `space`: a PCI cap over the one function `function` of the source's range, with the
/// source cap's rights, charged [`abi::syscall::pci_slice::COST`] bytes and an object-table
/// entry. Errors in the order `abi::syscall::Sysno::PciSlice` documents; nothing changes
/// on any of them.
pub fn pci_slice(space: SpaceId, source: Arg<CapSlot>, function: u64, dest: Arg<CapSlot>) -> Result<(), ErrorCode> {
    let found = caps::with(|store| store.lookup(caps::slot(space, source.get()?)))?;
    let Object::Pci(first, last) = found.handle else { return Err(ErrorCode::WrongObjectType) };
    if !Rights::READ.is_subset_of(found.rights) {
        return Err(ErrorCode::InsufficientRights);
    }
    let id = crate::pci::slice(first, last, function)?;
    let target = SlotRef::new(space, dest.destination()?.index());
    caps::with(|store| {
        store.decode_create(target, ObjectType::Pci, abi::syscall::pci_slice::COST).map(|op| op.perform_with_rights(Object::Pci(id, id), found.rights))
    })
    .map(drop)
}

/// Frees a kernel object whose last cap is gone (the store has forgotten it already).
pub fn destroy(object: Object) {
    match object {
        Object::Console => {}
        Object::Endpoint(index) => crate::ipc::destroy_endpoint(index),
        Object::Notification(index) => crate::ipc::destroy_notification(index),
        Object::Frame(index) => crate::frame::destroy(index),
        Object::AddressSpace(index) => crate::vspace::destroy_object(index),
        Object::Thread(index) => crate::sched::release(crate::thread::ThreadId(index)),
        Object::CSpace(index) => destroy_space(SpaceId::new(index)),
        Object::Irq(line) => crate::irq::release(line),
        Object::IoPorts(..) | Object::Audit | Object::Pci(..) => {}
    }
}

/// Spaces waiting to be destroyed, and whether a `destroy_space` is already draining them.
static PENDING_SPACES: Mutex<([u16; caps::SPACES], usize)> = Mutex::new(([0; caps::SPACES], 0));
static DRAINING: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Destroys a space: every cap in it goes (and with the last caps, their objects).
///
/// Iterative, not recursive: destroying a space can reap the last cap of another space
/// (a chain of spaces holding each other's caps, as long as user space likes), and each
/// level would otherwise take kernel stack. Nested destructions queue up instead and the
/// outermost call drains the queue.
pub fn destroy_space(space: SpaceId) {
    {
        let mut pending = PENDING_SPACES.lock();
        let (queue, count) = &mut *pending;
        if !queue.get(..*count).unwrap_or(&[]).contains(&space.index())
            && let Some(place) = queue.get_mut(*count)
        {
            *place = space.index();
            *count += 1;
        }
    }
    if DRAINING.swap(true, core::sync::atomic::Ordering::Relaxed) {
        return;
    }
    loop {
        let next = {
            let mut pending = PENDING_SPACES.lock();
            let (queue, count) = &mut *pending;
            if *count == 0 {
                break;
            }
            *count -= 1;
            queue.get(*count).copied().unwrap_or(0)
        };
        // Nothing may run in a space whose index can be reused: its threads stop first.
        crate::sched::kill_threads_in_cspace(SpaceId::new(next));
        let mut reaped = caps::Reaped::new();
        caps::with(|store| {
            if let Ok(destroy) = store.decode_destroy_space(SpaceId::new(next)) {
                destroy.perform(&mut reaped);
            }
        });
        reaped.finish();
        crate::denials::forget_space(SpaceId::new(next));
    }
    DRAINING.store(false, core::sync::atomic::Ordering::Relaxed);
}

