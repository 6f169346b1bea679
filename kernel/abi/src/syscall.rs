//! Syscall numbers and the register convention of the `SYSCALL` entry.
//!
//! # Register convention (x86_64, `SYSCALL`/`SYSRET`)
//!
//! The hardware uses `rcx` (user `rip`) and `r11` (user `rflags`), so neither carries an
//! argument; both are clobbered by every syscall. `rbx` and `rbp` are not used either, because
//! LLVM reserves them and Rust inline assembly cannot name them as operands. Every register not
//! listed as a result below is preserved.
//!
//! | register | on entry                              | on return                            |
//! |----------|---------------------------------------|--------------------------------------|
//! | `rax`    | [`Sysno`]                             | 0 on success, else an [`ErrorCode`]  |
//! | `rdi`    | `a0`: the invoked cap's slot          | badge (receive) / signal word (wait) |
//! | `rsi`    | `a1`: message-info word or 2nd operand| message-info word (receive)          |
//! | `rdx`    | `a2` = message word 0                 | message word 0                       |
//! | `r10`    | `a3` = message word 1                 | message word 1                       |
//! | `r8`     | `a4` = message word 2                 | message word 2                       |
//! | `r9`     | `a5` = message word 3                 | message word 3                       |
//! | `r12`    | message word 4                        | message word 4                       |
//! | `r13`    | message word 5                        | message word 5                       |
//! | `r14`    | message word 6                        | message word 6                       |
//! | `r15`    | message word 7                        | message word 7                       |
//!
//! The register order is also [`MESSAGE_REGISTERS`]. Message words beyond the first
//! [`crate::msg::REGISTER_WORDS`] travel in the IPC buffer (see [`crate::ipc_buffer`]).
//! Which argument register means what is defined once, per syscall, by its struct in
//! [`crate::args`], which libcap encodes and the kernel decodes; each [`Sysno`] variant
//! documents the registers it writes back.
//!
//! [`ErrorCode`]: crate::ErrorCode

/// A register that carries part of a syscall, by its architectural name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    Rax,
    Rdi,
    Rsi,
    Rdx,
    R10,
    R8,
    R9,
    R12,
    R13,
    R14,
    R15,
}

/// The register carrying the syscall number on entry and the result on return.
pub const NUMBER_REGISTER: Reg = Reg::Rax;
/// The six argument registers `a0..a5`, in order.
pub const ARGUMENT_REGISTERS: [Reg; 6] = [Reg::Rdi, Reg::Rsi, Reg::Rdx, Reg::R10, Reg::R8, Reg::R9];
/// The registers carrying message words `0..REGISTER_WORDS`, in order.
pub const MESSAGE_REGISTERS: [Reg; crate::msg::REGISTER_WORDS] =
    [Reg::Rdx, Reg::R10, Reg::R8, Reg::R9, Reg::R12, Reg::R13, Reg::R14, Reg::R15];

/// The value of `rax` on return from a syscall that succeeded.
pub const SUCCESS: u64 = 0;

/// "No slot" where a syscall takes an optional slot.
pub const NO_SLOT: u64 = u64::MAX;

/// Permission bits of a `Map` (readable is implied).
pub mod map_perms {
    pub const WRITE: u64 = 1 << 0;
    pub const EXECUTE: u64 = 1 << 1;
    pub const ALL: u64 = WRITE | EXECUTE;
}
pub use map_perms as MapPerms;

/// Frames made by `ObjectCreate`: the size and these flags
/// ([`args::ObjectCreate`](crate::args::ObjectCreate)).
pub mod frame_create {
    /// The largest frame: 2 MiB. Sizes are powers of two from 4 KiB up to this.
    pub const MAX_BYTES: u64 = 2 << 20;
    /// All of the frame lies below physical address 4 GiB (for 32-bit DMA).
    pub const BELOW_4GIB: u64 = 1 << 0;
    /// Every flag this version knows.
    pub const ALL_FLAGS: u64 = BELOW_4GIB;
}

/// What `FrameInfo` returns in `r8`: flags.
pub mod frame_info {
    /// The frame is immutable: a slice of the boot image, which the kernel maps nowhere
    /// writable, so its bytes never change.
    pub const IMMUTABLE: u64 = 1 << 0;
    /// The frame is device memory (PCI BAR space), not RAM: mapped uncached, never
    /// executable, may be writable; its bytes change as the device likes.
    pub const DEVICE: u64 = 1 << 1;
}

/// Labels of the messages the kernel sends to a thread's fault endpoint when it ends.
/// Words: a fault carries [vector, error code, faulting address, RIP]; an exit [code];
/// a kill nothing. The badge is that of the fault-endpoint cap given in `ThreadConfigure`.
pub mod fault_label {
    pub const FAULT: u32 = 1;
    pub const EXIT: u32 = 2;
    pub const KILLED: u32 = 3;
}

/// CPU budgets (`ThreadConfigure`), in microseconds.
pub mod budget {
    /// The smallest budget the kernel accepts: it enforces budgets with a one-shot timer
    /// to within a few microseconds, so a smaller one could not mean what it says.
    pub const MIN_US: u64 = 100;
    /// The longest period.
    pub const MAX_PERIOD_US: u64 = 10_000_000;
}

/// The most bytes one `ConsoleWrite` takes.
pub const CONSOLE_WRITE_MAX: usize = 4096;

/// The most bytes one `ConsoleRead` returns.
pub const CONSOLE_READ_MAX: usize = 256;

/// A syscall number, passed in `rax`.
///
/// The arguments of each syscall, with their registers and types, are its struct in
/// [`crate::args`] (same name); the order in which they are checked is documented there and
/// here. What a syscall returns in registers besides `rax` is documented here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum Sysno {
    /// Send a message on an endpoint, blocking until a receiver takes it
    /// ([`args::Send`](crate::args::Send)): the message words in registers then IPC buffer.
    ///
    /// A message arrives whole or not at all. The receiver must have an IPC buffer for
    /// words beyond the registers and for caps (`MessageTooLong`), both buffers must be
    /// readable/writable (`InvalidArgument`), and each receive slot the receiver names must
    /// be valid, not 0, not named twice (`InvalidSlot`) and empty (`SlotOccupied`); any
    /// refusal is returned to the sender and the receiver keeps waiting. A send that waits
    /// in the queue is cancelled with `Revoked` if its cap is revoked, deleted or moved
    /// before a receiver takes it.
    Send = 1,
    /// As [`Sysno::Send`], but fail with `WouldBlock` instead of waiting
    /// ([`args::NbSend`](crate::args::NbSend)).
    NbSend = 2,
    /// Send, then wait for the reply ([`args::Call`](crate::args::Call)). Returns the reply
    /// as a receive does (`rdi` is 0: replies carry no badge). `PeerGone` if the server
    /// dies before replying.
    Call = 3,
    /// Wait for a message on an endpoint, with a timeout ([`args::Recv`](crate::args::Recv)).
    /// Returns `rdi` the sender's badge, `rsi` info, message words. If the sender used
    /// [`Sysno::Call`], the receiver now owes it a reply (an implicit, one-shot reply
    /// right held by the receiving thread until it replies or another call reaches it; a
    /// plain message received meanwhile does not end it).
    Recv = 4,
    /// As [`Sysno::Recv`], but fail with `WouldBlock` if no sender is waiting
    /// ([`args::NbRecv`](crate::args::NbRecv)).
    NbRecv = 5,
    /// Answer the call this thread received last ([`args::Reply`](crate::args::Reply): info
    /// and message words). `IllegalOperation` if no call is pending (a second reply),
    /// `PeerGone` if the caller died. A reply the caller cannot take (the refusals of
    /// [`Sysno::Send`]) returns that error and the call stays pending.
    Reply = 6,
    /// Reply to the pending call if there is one, then receive on the endpoint, with no
    /// timeout ([`args::ReplyRecv`](crate::args::ReplyRecv)). With nobody to release (no
    /// call pending, or the caller died) it just receives; a reply the caller cannot take
    /// returns that error at once, without receiving, and the call stays pending.
    ReplyRecv = 7,
    /// OR the cap's badge into a notification's signal word
    /// ([`args::Signal`](crate::args::Signal)).
    Signal = 8,
    /// Wait until a notification's signal word is non-zero, take and clear it
    /// ([`args::Wait`](crate::args::Wait)). Returns `rdi` the signal word.
    Wait = 9,
    /// As [`Sysno::Wait`], but return a zero signal word instead of blocking
    /// ([`args::Poll`](crate::args::Poll)).
    Poll = 10,
    /// Give up the rest of the current time slice ([`args::Yield`](crate::args::Yield): no
    /// arguments).
    Yield = 11,
    /// Describe a cap ([`args::CapIdentify`](crate::args::CapIdentify)). Returns `rdx` the
    /// [`crate::ObjectType`], `r10` the [`crate::Rights`] bits, `r8` the [`crate::Badge`],
    /// and `r9`, for a thread or cspace cap, the index the authority audit knows it by
    /// (`AuditThread`'s thread index, `AuditCap`'s space index), else 0: a supervisor can
    /// tell an auditor which thread and space are which program's.
    CapIdentify = 12,
    /// Copy a cap, same rights and badge; the copy is derived from the original
    /// ([`args::CapCopy`](crate::args::CapCopy)).
    CapCopy = 13,
    /// Derive a cap with fewer rights and/or a badge ([`args::CapMint`](crate::args::CapMint)).
    CapMint = 14,
    /// Move a cap to another slot, keeping its place in the derivation tree
    /// ([`args::CapMove`](crate::args::CapMove)).
    CapMove = 15,
    /// Delete a cap ([`args::CapDelete`](crate::args::CapDelete)). Its derived caps stay
    /// valid (they are re-parented). Deleting the last cap to an object destroys it and
    /// refunds its quota.
    CapDelete = 16,
    /// Delete every cap derived from a cap, in every capability space
    /// ([`args::CapRevoke`](crate::args::CapRevoke)).
    CapRevoke = 17,
    /// Create a kernel object, charged to the caller's kernel-memory quota
    /// ([`args::ObjectCreate`](crate::args::ObjectCreate)): an endpoint, notification,
    /// frame, address space, thread or cspace. The new cap has [`crate::Rights::ALL`]. A
    /// frame is zeroed, physically contiguous, aligned to its size, and costs its size of
    /// quota; `OutOfResources` if no such run of memory is free.
    ObjectCreate = 18,
    /// Write bytes to the console ([`args::ConsoleWrite`](crate::args::ConsoleWrite)).
    ConsoleWrite = 19,
    /// End the calling thread ([`args::ThreadExit`](crate::args::ThreadExit)); the exit code
    /// is reported to its fault/exit endpoint.
    ThreadExit = 20,
    /// Map all of a frame ([`args::Map`](crate::args::Map)). Writable and executable
    /// together is refused, and so is any mapping that would make a frame writable
    /// somewhere and executable somewhere else. `SlotOccupied` if any page of the range is
    /// mapped already.
    Map = 21,
    /// Unmap a mapping, all of which goes ([`args::Unmap`](crate::args::Unmap)).
    /// `InvalidArgument` for an address inside a mapping.
    Unmap = 22,
    /// Start a created thread ([`args::ThreadStart`](crate::args::ThreadStart)). The thread
    /// starts with every register zero but `rsp` and `rip`.
    ThreadStart = 23,
    /// Configure a thread before or after start: priority (at most the caller's), budget
    /// and fault endpoint ([`args::ThreadConfigure`](crate::args::ThreadConfigure)).
    ///
    /// Budgets are enforced to the microsecond ([`budget`]): `InvalidArgument` for a budget
    /// under [`budget::MIN_US`], over its period, or a period over [`budget::MAX_PERIOD_US`].
    /// CPU time cannot be created: a caller with a budget gives the target a share of its
    /// own (the same fraction of the CPU is taken out of the caller's budget, and goes back
    /// when the target ends or is configured again), must keep at least [`budget::MIN_US`]
    /// itself, and can never give "no budget" (`InsufficientRights` for either). A thread
    /// created by a caller with a budget has none to run on until it is given a share.
    ThreadConfigure = 24,
    /// Mint into another space ([`args::CapGive`](crate::args::CapGive)).
    CapGive = 25,
    /// Stop a thread for good ([`args::ThreadKill`](crate::args::ThreadKill)). Its fault
    /// endpoint hears of it.
    ThreadKill = 26,
    /// Read an I/O port ([`args::IoPortRead`](crate::args::IoPortRead)). The value comes
    /// back in `rdx`.
    IoPortRead = 27,
    /// Write an I/O port ([`args::IoPortWrite`](crate::args::IoPortWrite)).
    IoPortWrite = 28,
    /// Deliver an IRQ line as a notification
    /// ([`args::IrqSetNotification`](crate::args::IrqSetNotification)). Unmasks the line.
    IrqSetNotification = 29,
    /// The driver has handled the interrupt ([`args::IrqAck`](crate::args::IrqAck)).
    /// Unmasks the line, which the kernel masks each time it signals.
    IrqAck = 30,
    /// Authority audit of one slot of any capability space
    /// ([`args::AuditCap`](crate::args::AuditCap)). Returns kind in `rdx`, rights in `r10`,
    /// badge in `r8`, and in `r9` the kernel object's identity (equal for caps to the same
    /// object). `InvalidSlot` past the last space or slot and for a space that is not live,
    /// `EmptySlot` for an empty slot.
    AuditCap = 31,
    /// Authority audit of threads ([`args::AuditThread`](crate::args::AuditThread)). Returns
    /// in `rdx` the capability-space index + 1 of a live thread (0: no space), in `r10` its
    /// state (0 free, 1 inactive, 2 ready, 3 running, 4 blocked, 5 throttled, 6 dead), in
    /// `r8` the CPU time it has used since it was created, in microseconds, and in `r9`
    /// the kernel memory its capability space's quota has paid for, in bytes (0: no space).
    /// `InvalidArgument` past the last thread.
    AuditThread = 32,
    /// Describe a frame ([`args::FrameInfo`](crate::args::FrameInfo)). Returns `rdx` its
    /// size in bytes, `r10` its first physical address (for device DMA; the frame is
    /// contiguous) and `r8` its flags ([`frame_info`]). For a borrowed frame
    /// ([`Sysno::FrameSlice`], the initrd frame) the size is its byte length exactly as
    /// asked, which need not be a whole number of pages; the frame still maps whole pages,
    /// and its flags say [`frame_info::IMMUTABLE`]; for a device frame (init's
    /// `INIT_DEVICE_FRAME_SLOT` and its slices) the physical address is the device's and the
    /// flags say [`frame_info::DEVICE`], never `IMMUTABLE` (the device writes it).
    FrameInfo = 33,
    /// Read what was typed on the console ([`args::ConsoleRead`](crate::args::ConsoleRead):
    /// console cap, buffer, length). Never blocks: returns in `rdx`
    /// the number of bytes copied, 0 if none is waiting. Finding none re-arms the console's
    /// input notification (see [`Sysno::ConsoleSetNotification`]), so a reader loops
    /// "read until 0, then wait".
    ConsoleRead = 34,
    /// Deliver console input as a notification
    /// ([`args::ConsoleSetNotification`](crate::args::ConsoleSetNotification); the
    /// notification cap's badge is the bit pattern signalled). Each time input
    /// arrives the kernel signals it once, and again only after a `ConsoleRead` found
    /// nothing left. One reader at a time: a second call moves the delivery.
    ConsoleSetNotification = 35,
    /// Authority audit of physical memory ([`args::AuditMemory`](crate::args::AuditMemory)).
    /// Returns in `rdx` the frames (4 KiB) the kernel's allocator has free and in `r10` all
    /// it manages: what every quota in the system draws from.
    AuditMemory = 36,
    /// The kernel's record of refused authority
    /// ([`args::AuditDenial`](crate::args::AuditDenial): audit cap, record number): syscalls
    /// refused because the caller named an invalid or empty slot or a cap of the wrong kind
    /// or rights, and budget overruns (a thread throttled for the rest of its period). The
    /// kernel keeps the last [`denial::RECORDS`] in a ring, numbered from 0; asking for a
    /// number already overwritten answers the oldest still held, so the reader sees how
    /// many it lost. Returns `r9` = 1 and the record: `rdx` its number, `r10` the time in
    /// µs since boot, `r8` packed ([`denial::Packed`]): kind, syscall number, error code, the
    /// thread's audit index and how many of its process's records were not kept before this one
    /// (each process may add [`denial::BURST_PER_SECOND`] a second); or `r9` = 0 and `rdx` the
    /// number the next record will get.
    AuditDenial = 37,
    /// Make a borrowed frame over part of a borrowed frame
    /// ([`args::FrameSlice`](crate::args::FrameSlice): source frame, offset, length,
    /// destination slot), charged to the caller's kernel-memory quota like an
    /// `ObjectCreate` ([`frame_slice::COST`] bytes and an entry of the object table,
    /// refunded when its last cap goes).
    ///
    /// A *borrowed* frame names memory the kernel did not allocate and never frees or zeroes:
    /// the boot module (init's initrd frame, `INIT_INITRD_FRAME_SLOT`) and slices of it, or
    /// device memory (init's device frame over the PCI device window,
    /// `INIT_DEVICE_FRAME_SLOT`) and slices of it; a slice is of its source's kind. The
    /// slice covers the source's pages `[offset, offset + length)`, rounded up to whole
    /// pages; [`Sysno::FrameInfo`] reports `length` and the physical address of its first
    /// page. Its cap has exactly the source cap's rights (never more). Boot memory is never
    /// mapped writable or executable, device memory never executable and always uncached,
    /// whatever the cap says (`InvalidArgument`).
    /// Slices of slices are allowed, bounded by the inner slice. Destroying a slice unmaps
    /// it everywhere and leaves the memory and the source as they were.
    ///
    /// Errors, in this order: the source cap's (`InvalidSlot`, `EmptySlot`,
    /// `WrongObjectType` for a cap that is not a frame, `InsufficientRights` without
    /// `READ`); `IllegalOperation` if the source is an ordinary (allocated) frame, since a
    /// slice of RAM could outlive the allocation and reach whoever reuses the pages;
    /// `InvalidArgument` for an `offset` that is not a multiple of 4096, a `length` of 0,
    /// or `offset + length` past the source's length (overflow included); then the
    /// destination's (`InvalidSlot` above the space or for slot 0, `SlotOccupied`), then
    /// the quota's (`OutOfQuota` for bytes or the object-table share), then
    /// `OutOfResources` if the kernel's frame or object table is full.
    FrameSlice = 38,
    /// Read a PCI function's configuration space
    /// ([`args::PciConfigRead`](crate::args::PciConfigRead): PCI cap, function, offset,
    /// width), through ports 0xCF8/0xCFC, which the kernel keeps. Returns the value in
    /// `rdx` (all ones for a function that does not exist, as the hardware answers).
    ///
    /// Errors, in this order: the cap's (`InvalidSlot`, `EmptySlot`, `WrongObjectType` for a
    /// cap that is not a PCI cap, `InsufficientRights` without `READ`); `InvalidArgument`
    /// for a width other than 1, 2 or 4, an offset of 256 or more, or an offset that is not
    /// a multiple of the width; `InsufficientRights` for a function past the cap's range.
    PciConfigRead = 39,
    /// Write a PCI function's configuration space
    /// ([`args::PciConfigWrite`](crate::args::PciConfigWrite)). The errors of
    /// [`Sysno::PciConfigRead`] (the cap needs `WRITE`), then `IllegalOperation` for a write
    /// that touches a base-address register (0x10..=0x27) or the expansion-ROM BAR
    /// (0x30..=0x33): the kernel placed the BARs at boot inside the device window, and a
    /// driver that moved one could lay device registers over RAM or another device; and
    /// `IllegalOperation` for a write that sets the command register's I/O-space bit (bit 0
    /// of offset 4): the kernel places no I/O BAR, so an enabled one would decode at
    /// whatever port it holds (0 after reset), over ports the kernel uses.
    ///
    /// Everything else is the driver's, the rest of the command register included: setting its
    /// bus-master bit lets the device DMA to any physical address, since there is no IOMMU
    /// (SECURITY.md).
    PciConfigWrite = 40,
    /// Where the kernel placed one of a function's memory BARs
    /// ([`args::PciBar`](crate::args::PciBar): PCI cap, function, BAR index). Returns
    /// `rdx` its physical address, `r10` its size in bytes and `r8` flags ([`pci_bar`]);
    /// size 0 for an I/O BAR, an unimplemented one, the upper half of a 64-bit BAR, a
    /// function that does not exist, or a BAR that did not fit the window. The range lies
    /// inside init's device frame (`INIT_DEVICE_FRAME_SLOT`), at the offset
    /// `address - that frame's FrameInfo address`.
    ///
    /// Errors: the cap's (needs `READ`), `InvalidArgument` for a BAR index above 5,
    /// `InsufficientRights` for a function past the cap's range.
    PciBar = 41,
    /// Make a PCI cap over one function of a PCI cap's range
    /// ([`args::PciSlice`](crate::args::PciSlice): source, function, destination slot),
    /// with the source cap's rights, charged to the caller's quota like
    /// [`Sysno::FrameSlice`] ([`pci_slice::COST`] bytes and an object-table entry).
    ///
    /// Errors, in this order: the source cap's (needs `READ`), `InsufficientRights` for a
    /// function past its range, then the destination's (`InvalidSlot`, `SlotOccupied`), the
    /// quota's (`OutOfQuota`), `OutOfResources`.
    PciSlice = 42,
    /// Bound this thread's later calls ([`args::SetCallTimeout`](crate::args::SetCallTimeout):
    /// ticks, 10 ms each; 0 waits forever, the default). A `Call` that has not been
    /// answered `ticks` ticks after it was made (whether still waiting to be received or
    /// waiting for the reply) ends with `TimedOut`; a server that answers it afterwards gets
    /// `PeerGone`, as for a caller that died. Never fails. The bound is the thread's own:
    /// what it may do with its own time, so no right is needed.
    SetCallTimeout = 43,
}

/// What [`Sysno::PciBar`] returns in `r8`.
pub mod pci_bar {
    /// The BAR is 64-bit (it uses the next BAR register too); the kernel places it below
    /// 4 GiB all the same.
    pub const BITS_64: u64 = 1 << 0;
    /// The BAR is prefetchable.
    pub const PREFETCHABLE: u64 = 1 << 1;
}

/// PCI caps made by [`Sysno::PciSlice`].
pub mod pci_slice {
    /// What a one-function cap costs its creator's quota: its bookkeeping.
    pub const COST: u64 = 64;
}

/// Borrowed frames made by [`Sysno::FrameSlice`].
pub mod frame_slice {
    /// What a slice costs its creator's quota: its bookkeeping (the memory is borrowed, not
    /// allocated).
    pub const COST: u64 = 64;
}

/// The records of [`Sysno::AuditDenial`].
pub mod denial {
    /// How many records the kernel keeps.
    pub const RECORDS: usize = 64;
    /// A syscall refused for the cap it named ([`crate::ErrorCode`] `InvalidSlot`,
    /// `EmptySlot`, `WrongObjectType` or `InsufficientRights`).
    pub const REFUSED_SYSCALL: u8 = 1;
    /// A thread used its CPU budget and waits for its next period.
    pub const BUDGET_OVERRUN: u8 = 2;

    /// Records one process (capability space) may add per second, whatever number of
    /// threads it runs; past them the kernel counts, and the process's next record carries
    /// the count, so one process cannot flush the others' records out.
    pub const BURST_PER_SECOND: u8 = 4;

    /// One record's fields, as `r8` carries them.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Packed {
        /// [`REFUSED_SYSCALL`] or [`BUDGET_OVERRUN`].
        pub kind: u8,
        /// The refused syscall's number (0 for a budget overrun).
        pub syscall: u16,
        /// Its `ErrorCode` number (0 for a budget overrun).
        pub code: u16,
        /// The thread's audit index.
        pub thread: u16,
        /// Records of this thread's process the kernel did not keep (past
        /// [`BURST_PER_SECOND`]) since its previous record, at most 255.
        pub suppressed: u8,
    }

    impl Packed {
        /// `r8`: suppressed in bits 56..64, kind 48..56, syscall 32..48, code 16..32, thread
        /// 0..16.
        pub const fn pack(self) -> u64 {
            (self.suppressed as u64) << 56 | (self.kind as u64) << 48 | (self.syscall as u64) << 32 | (self.code as u64) << 16 | self.thread as u64
        }

        /// The fields of `r8`.
        pub const fn unpack(word: u64) -> Packed {
            Packed { suppressed: (word >> 56) as u8, kind: (word >> 48) as u8, syscall: (word >> 32) as u16, code: (word >> 16) as u16, thread: word as u16 }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn packing_round_trips_every_field() {
            let record = Packed { kind: BUDGET_OVERRUN, syscall: 0xabcd, code: 0x1234, thread: 0xfedc, suppressed: 0x99 };
            assert_eq!(Packed::unpack(record.pack()), record);
            assert_eq!(Packed::unpack(0), Packed { kind: 0, syscall: 0, code: 0, thread: 0, suppressed: 0 });
        }
    }
}

impl Sysno {
    /// Every syscall, in numeric order.
    pub const ALL: [Sysno; 43] = [
        Sysno::Send,
        Sysno::NbSend,
        Sysno::Call,
        Sysno::Recv,
        Sysno::NbRecv,
        Sysno::Reply,
        Sysno::ReplyRecv,
        Sysno::Signal,
        Sysno::Wait,
        Sysno::Poll,
        Sysno::Yield,
        Sysno::CapIdentify,
        Sysno::CapCopy,
        Sysno::CapMint,
        Sysno::CapMove,
        Sysno::CapDelete,
        Sysno::CapRevoke,
        Sysno::ObjectCreate,
        Sysno::ConsoleWrite,
        Sysno::ThreadExit,
        Sysno::Map,
        Sysno::Unmap,
        Sysno::ThreadStart,
        Sysno::ThreadConfigure,
        Sysno::CapGive,
        Sysno::ThreadKill,
        Sysno::IoPortRead,
        Sysno::IoPortWrite,
        Sysno::IrqSetNotification,
        Sysno::IrqAck,
        Sysno::AuditCap,
        Sysno::AuditThread,
        Sysno::FrameInfo,
        Sysno::ConsoleRead,
        Sysno::ConsoleSetNotification,
        Sysno::AuditMemory,
        Sysno::AuditDenial,
        Sysno::FrameSlice,
        Sysno::PciConfigRead,
        Sysno::PciConfigWrite,
        Sysno::PciBar,
        Sysno::PciSlice,
        Sysno::SetCallTimeout,
    ];

    /// The number as it travels in `rax`.
    pub const fn as_u64(self) -> u64 {
        self as u64
    }
}

impl TryFrom<u64> for Sysno {
    /// The value of `rax` that is not a syscall; the kernel answers `InvalidSyscall`.
    type Error = u64;

    fn try_from(value: u64) -> Result<Sysno, u64> {
        let index = value.checked_sub(1).ok_or(value)?;
        let index = usize::try_from(index).map_err(|_| value)?;
        Sysno::ALL.get(index).copied().ok_or(value)
    }
}

#[cfg(test)]
mod tests {
    use super::{ARGUMENT_REGISTERS, MESSAGE_REGISTERS, Reg, Sysno};

    #[test]
    fn numbers_are_dense_from_one_and_round_trip() {
        for (i, s) in Sysno::ALL.iter().enumerate() {
            assert_eq!(s.as_u64(), i as u64 + 1);
            assert_eq!(Sysno::try_from(s.as_u64()), Ok(*s));
        }
        assert_eq!(Sysno::try_from(0), Err(0));
        let past = Sysno::ALL.len() as u64 + 1;
        assert_eq!(Sysno::try_from(past), Err(past));
        assert_eq!(Sysno::try_from(u64::MAX), Err(u64::MAX));
    }

    #[test]
    fn no_convention_register_is_clobbered_by_syscall_or_reserved_by_llvm() {
        // rcx/r11 are overwritten by SYSCALL; rbx/rbp/rsp cannot be asm operands. The Reg
        // enum has no variant for any of them, so this is a check on the tables' overlap.
        for r in MESSAGE_REGISTERS {
            assert_ne!(r, Reg::Rax);
            assert_ne!(r, Reg::Rdi);
            assert_ne!(r, Reg::Rsi);
        }
        assert_eq!(&ARGUMENT_REGISTERS[2..], &MESSAGE_REGISTERS[..4]);
    }
}
