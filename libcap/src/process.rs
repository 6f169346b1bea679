//! Building processes: typed wrappers for the calls that create, map, give, configure,
//! start and kill, plus a slot allocator for the caller's own capability space.
//!
//! A process is three objects: a capability space (what it may name), an address space (what
//! it may touch) and a thread (what runs). Whoever builds one (init, later a process server)
//! creates the three with [`create`], fills the address space with [`map`] (see
//! [`crate::loader`]), hands out caps with [`cap_give`], sets priority, budget and fault
//! endpoint with [`thread_configure`] and runs it with [`thread_start`]. It keeps its own
//! caps to the three objects: deleting them tears the process down.
//!
//! # A caveat on your own address space
//!
//! [`map`] and [`unmap`] are safe functions, like the kernel calls they wrap. Used on *your
//! own* address space they can pull memory out from under live Rust references (unmap your
//! heap, map a zeroed frame in its place), which the kernel cannot tell from a legitimate
//! request. Only init holds a cap to its own address space, and it uses it only through
//! the raw layer's scratch window (the loader's `with_scratch_page`); everything else it
//! maps goes into children's spaces. Code that holds its own address-space cap must keep
//! to that discipline.

use abi::args::{self, SyscallArgs};
use abi::syscall::map_perms;
use abi::{Badge, CapSlot, ErrorCode, ObjectType, Rights};

use crate::raw;
use crate::sys;

fn invoke<A: SyscallArgs>(args: A) -> Result<(), ErrorCode> {
    sys::invoke(args).map(drop)
}

// ---- Creating objects -----------------------------------------------------------------

/// A kernel object [`create`] can make, with its size argument where it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewObject {
    /// One zeroed 4 KiB page of memory.
    Frame,
    /// An empty address space.
    AddressSpace,
    /// A thread, created stopped (see [`thread_start`]).
    Thread,
    /// A capability space whose holder may create objects worth `quota` bytes of kernel
    /// memory; the quota is carved out of the caller's.
    CSpace {
        /// Kernel-memory quota in bytes.
        quota: u64,
    },
    /// An endpoint.
    Endpoint,
    /// A notification.
    Notification,
}

impl NewObject {
    fn kind_and_size(self) -> (ObjectType, u64) {
        match self {
            NewObject::Frame => (ObjectType::Frame, raw::PAGE_SIZE as u64),
            NewObject::AddressSpace => (ObjectType::AddressSpace, 0),
            NewObject::Thread => (ObjectType::Thread, 0),
            NewObject::CSpace { quota } => (ObjectType::CSpace, quota),
            NewObject::Endpoint => (ObjectType::Endpoint, 0),
            NewObject::Notification => (ObjectType::Notification, 0),
        }
    }
}

/// Creates `object`, charged to the caller's quota, with a cap of all rights in the empty
/// slot `dest`.
pub fn create(dest: CapSlot, object: NewObject) -> Result<(), ErrorCode> {
    let (kind, size) = object.kind_and_size();
    sys::object_create(dest, kind, size)
}

// ---- Address spaces -------------------------------------------------------------------

/// How a page is mapped. Readable always; writable and executable together is not a value
/// of this type (the kernel refuses it too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read-only data.
    Read,
    /// Data and stack.
    ReadWrite,
    /// Code.
    ReadExecute,
}

impl Access {
    fn bits(self) -> u64 {
        match self {
            Access::Read => 0,
            Access::ReadWrite => map_perms::WRITE,
            Access::ReadExecute => map_perms::EXECUTE,
        }
    }
}

/// Maps the frame in `frame` at `address` (page aligned, lower half) in the address space
/// `space`, with `access`. See the module docs before mapping into your own space.
pub fn map(space: CapSlot, frame: CapSlot, address: u64, access: Access) -> Result<(), ErrorCode> {
    invoke(args::Map { space: space.into(), frame: frame.into(), address, perms: access.bits() })
}

/// Removes the mapping at `address` from the address space `space`.
pub fn unmap(space: CapSlot, address: u64) -> Result<(), ErrorCode> {
    invoke(args::Unmap { space: space.into(), address })
}

// ---- Threads --------------------------------------------------------------------------

/// Where a new thread begins: addresses in its own address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartState {
    /// First instruction.
    pub entry: u64,
    /// Initial `rsp`: the top of its stack.
    pub stack_pointer: u64,
    /// Its IPC buffer page, if it has one.
    pub ipc_buffer: Option<u64>,
}

/// Starts the created thread `thread` in address space `space` with capability space
/// `cspace`, at `state`. Every register but `rsp` and `rip` starts at zero.
pub fn thread_start(thread: CapSlot, space: CapSlot, cspace: CapSlot, state: StartState) -> Result<(), ErrorCode> {
    invoke(args::ThreadStart {
        thread: thread.into(),
        space: space.into(),
        cspace: cspace.into(),
        entry: state.entry,
        stack_pointer: state.stack_pointer,
        ipc_buffer: state.ipc_buffer.unwrap_or(0),
    })
}

/// A CPU budget: `budget_us` of CPU time in every `period_us`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Microseconds of CPU time per period.
    pub budget_us: u32,
    /// The period, in microseconds.
    pub period_us: u32,
}

/// How a thread is scheduled and who hears of its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadConfig {
    /// Priority; at most the caller's own.
    pub priority: u8,
    /// CPU budget, enforced to the microsecond (at least
    /// [`abi::syscall::budget::MIN_US`]); `None`: unlimited within its priority. A caller
    /// with a budget of its own gives a share of it (taken from its own budget until the
    /// thread ends) and cannot give `None`; the threads it creates have no CPU until it
    /// does (see `Sysno::ThreadConfigure`).
    pub budget: Option<Budget>,
    /// The endpoint (a slot of the caller's) the kernel sends the thread's fault, exit and
    /// kill messages to (labels in [`abi::syscall::fault_label`]), with that cap's badge.
    pub fault_endpoint: Option<CapSlot>,
}

/// Configures `thread`, before or after it starts.
pub fn thread_configure(thread: CapSlot, config: ThreadConfig) -> Result<(), ErrorCode> {
    let (budget, period) = config.budget.map_or((0, 0), |b| (b.budget_us, b.period_us));
    invoke(args::ThreadConfigure {
        thread: thread.into(),
        priority: u64::from(config.priority),
        budget_us: u64::from(budget),
        period_us: u64::from(period),
        fault_endpoint: config.fault_endpoint.into(),
    })
}

/// Stops `thread` for good; its fault endpoint hears of it (label `KILLED`).
pub fn thread_kill(thread: CapSlot) -> Result<(), ErrorCode> {
    invoke(args::ThreadKill { thread: thread.into() })
}

// ---- Giving caps ----------------------------------------------------------------------

/// Mints the cap in `src` into slot `dest` of the capability space `cspace` names, with
/// `src`'s rights intersected with `rights`, and `badge` ([`Badge::NONE`] keeps `src`'s).
/// The new cap is derived from `src`: revoking `src` takes it back.
pub fn cap_give(src: CapSlot, cspace: CapSlot, dest: CapSlot, rights: Rights, badge: Badge) -> Result<(), ErrorCode> {
    invoke(args::CapGive { src: src.into(), cspace: cspace.into(), dest: dest.into(), rights: rights.into(), badge })
}

// ---- Slots ----------------------------------------------------------------------------

/// Hands out the empty slots of the caller's own capability space.
///
/// # Invariants
/// A slot is handed out by [`SlotAllocator::take`] at most once until it is given back with
/// [`SlotAllocator::give_back`], and only slots in `first..end` are ever handed out. The
/// allocator only knows what it handed out: it trusts its owner to keep every other slot in
/// `first..end` empty.
#[derive(Clone, Debug)]
pub struct SlotAllocator {
    /// Bit `i` set: slot `i` is in `first..end`.
    managed: u128,
    /// Bit `i` set: slot `i` is handed out.
    taken: u128,
}

impl SlotAllocator {
    /// The most slots one allocator manages.
    pub const MAX_SLOTS: u32 = 128;

    /// An allocator over the slots `first..end`; `end` is clamped to [`Self::MAX_SLOTS`].
    pub fn new(first: CapSlot, end: u32) -> SlotAllocator {
        let end = end.min(Self::MAX_SLOTS);
        let managed = (first.index()..end).fold(0u128, |mask, index| mask | (1u128 << index));
        SlotAllocator { managed, taken: 0 }
    }

    /// An empty slot, or `OutOfResources` if all are in use.
    pub fn take(&mut self) -> Result<CapSlot, ErrorCode> {
        let index = (self.managed & !self.taken).trailing_zeros();
        if index >= Self::MAX_SLOTS {
            return Err(ErrorCode::OutOfResources);
        }
        self.taken |= 1u128 << index;
        Ok(CapSlot::new(index))
    }

    /// Returns `slot`, which must be empty again, to the pool.
    pub fn give_back(&mut self, slot: CapSlot) {
        if slot.index() < Self::MAX_SLOTS {
            self.taken &= !(1u128 << slot.index());
        }
    }

    /// Deletes the cap in `slot` and gives the slot back once it is empty. A slot whose cap
    /// cannot be deleted stays taken (so it is never handed out full); that is reported.
    pub fn delete(&mut self, slot: CapSlot) -> Result<(), ErrorCode> {
        match sys::cap_delete(slot) {
            Ok(()) | Err(ErrorCode::EmptySlot) => {
                self.give_back(slot);
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// How many slots are free.
    pub fn free(&self) -> u32 {
        (self.managed & !self.taken).count_ones()
    }
}
