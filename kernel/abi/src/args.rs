//! One typed argument struct per syscall: the register layout, defined once.
//!
//! Each struct is named after its [`Sysno`] variant and names every argument register the
//! syscall reads, with its type and its register ([`SyscallArgs::REGISTERS`], in field
//! order). libcap builds a struct and [`encode`](SyscallArgs::encode)s it into the six
//! argument registers; the kernel [`decode`](SyscallArgs::decode)s the same six registers
//! into the same struct. A register no field names is ignored by the kernel and encoded as 0.
//!
//! # Where validation lives
//!
//! Decoding never fails. A field whose register can hold a value that is not a valid
//! argument is an [`Arg<T>`]: it keeps the word as it came, and [`Arg::get`] turns it into a
//! `T` or the [`ErrorCode`] the ABI defines for that kind of argument (`InvalidSlot` for a
//! slot above `u32::MAX`, `InvalidArgument` for an unknown object type or rights bit, and
//! so on: see each [`RegisterValue`] implementation). The kernel calls `get` at the point
//! where it checks that argument, after the checks that come before it (the caller's
//! capability space, the caps named in earlier arguments), so the order of checks, and with
//! it the error a malformed call gets, is the kernel's and is documented on each syscall.
//! Decoding in this crate therefore decides nothing the kernel would decide differently.
//!
//! Arguments whose valid range is the kernel's business (addresses below the end of the user
//! half, priorities, budgets, port widths, table indices) are plain `u64` words, with the
//! rule in their doc comment.
//!
//! The IPC calls ([`Send`], [`Call`], [`Reply`], ...) name the invoked cap and the
//! message-info word; the message words themselves travel in
//! [`MESSAGE_REGISTERS`](crate::syscall::MESSAGE_REGISTERS) (`rdx` `r10` `r8` `r9`
//! `r12`..`r15`, then the IPC buffer), which the kernel's IPC path copies from the sender's
//! saved registers when the message is delivered, so they are not fields here.

use core::marker::PhantomData;

use crate::syscall::{NO_SLOT, Reg, Sysno};
use crate::{Badge, CapSlot, ErrorCode, MessageInfo, ObjectType, Rights};

/// A value that travels in one argument register and may be invalid there.
pub trait RegisterValue: Sized + Copy {
    /// The value the word stands for, or the error the kernel answers for a word that is
    /// not one.
    fn decode(word: u64) -> Result<Self, ErrorCode>;
    /// The word for the register.
    fn encode(self) -> u64;
}

/// A slot: `InvalidSlot` above `u32::MAX`.
impl RegisterValue for CapSlot {
    #[inline]
    fn decode(word: u64) -> Result<CapSlot, ErrorCode> {
        CapSlot::try_from(word).map_err(|_| ErrorCode::InvalidSlot)
    }
    #[inline]
    fn encode(self) -> u64 {
        u64::from(self.index())
    }
}

/// An optional slot: [`NO_SLOT`] is `None`, else as [`CapSlot`] (`InvalidSlot` above
/// `u32::MAX`).
impl RegisterValue for Option<CapSlot> {
    #[inline]
    fn decode(word: u64) -> Result<Option<CapSlot>, ErrorCode> {
        if word == NO_SLOT { Ok(None) } else { CapSlot::decode(word).map(Some) }
    }
    #[inline]
    fn encode(self) -> u64 {
        self.map_or(NO_SLOT, CapSlot::encode)
    }
}

/// A rights mask: `InvalidArgument` for any bit outside [`Rights::ALL`] (above bit 31
/// included).
impl RegisterValue for Rights {
    #[inline]
    fn decode(word: u64) -> Result<Rights, ErrorCode> {
        Rights::try_from(word).map_err(|_| ErrorCode::InvalidArgument)
    }
    #[inline]
    fn encode(self) -> u64 {
        u64::from(self.bits())
    }
}

/// An object kind: `InvalidArgument` for a number that is not one.
impl RegisterValue for ObjectType {
    #[inline]
    fn decode(word: u64) -> Result<ObjectType, ErrorCode> {
        ObjectType::try_from(word).map_err(|_| ErrorCode::InvalidArgument)
    }
    #[inline]
    fn encode(self) -> u64 {
        u64::from(self.as_u32())
    }
}

/// A message-info word: [`MessageInfo::decode`]'s errors (`InvalidArgument` for reserved
/// bits, `MessageTooLong` for a length or cap count over the maxima).
impl RegisterValue for MessageInfo {
    #[inline]
    fn decode(word: u64) -> Result<MessageInfo, ErrorCode> {
        MessageInfo::decode(word)
    }
    #[inline]
    fn encode(self) -> u64 {
        MessageInfo::encode(self)
    }
}

/// An argument register that should hold a `T`, as the caller passed it.
///
/// Made from a `T` (libcap: [`Arg::new`], `From`), or from any word ([`Arg::from_word`]: what
/// decoding does, and what tests of malformed calls use). [`Arg::get`] checks it.
pub struct Arg<T> {
    word: u64,
    kind: PhantomData<fn() -> T>,
}

impl<T> Arg<T> {
    /// The argument as whatever word the caller passed.
    #[inline]
    pub const fn from_word(word: u64) -> Arg<T> {
        Arg { word, kind: PhantomData }
    }

    /// The word as it travels in the register.
    #[inline]
    pub const fn word(self) -> u64 {
        self.word
    }
}

impl<T: RegisterValue> Arg<T> {
    /// The argument for `value`.
    #[inline]
    pub fn new(value: T) -> Arg<T> {
        Arg::from_word(value.encode())
    }

    /// The value, or the error the ABI defines for a word that is not a `T`
    /// ([`RegisterValue::decode`]).
    #[inline]
    pub fn get(self) -> Result<T, ErrorCode> {
        T::decode(self.word)
    }
}

impl Arg<CapSlot> {
    /// The slot as the place a new cap is to go: as [`Arg::get`], and slot 0 (never
    /// filled: see [`CapSlot`]) is `InvalidSlot` too.
    #[inline]
    pub fn destination(self) -> Result<CapSlot, ErrorCode> {
        self.get().and_then(|slot| if slot.index() == 0 { Err(ErrorCode::InvalidSlot) } else { Ok(slot) })
    }
}

impl Arg<Option<CapSlot>> {
    /// `None` for [`NO_SLOT`], else the slot, still unchecked (so its `InvalidSlot` comes
    /// where the kernel looks it up).
    #[inline]
    pub const fn slot(self) -> Option<Arg<CapSlot>> {
        if self.word == NO_SLOT { None } else { Some(Arg::from_word(self.word)) }
    }
}

impl<T: RegisterValue> From<T> for Arg<T> {
    #[inline]
    fn from(value: T) -> Arg<T> {
        Arg::new(value)
    }
}

impl<T> Clone for Arg<T> {
    #[inline]
    fn clone(&self) -> Arg<T> {
        *self
    }
}

impl<T> Copy for Arg<T> {}

impl<T> PartialEq for Arg<T> {
    #[inline]
    fn eq(&self, other: &Arg<T>) -> bool {
        self.word == other.word
    }
}

impl<T> Eq for Arg<T> {}

impl<T> core::fmt::Debug for Arg<T> {
    #[inline]
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Arg({:#x})", self.word)
    }
}

/// A field of an argument struct: one register word, in and out, every word allowed.
pub trait Field: Copy {
    /// The field for the word the caller passed (never fails: see the module docs).
    fn from_word(word: u64) -> Self;
    /// The word for the register.
    fn to_word(self) -> u64;
}

impl Field for u64 {
    #[inline]
    fn from_word(word: u64) -> u64 {
        word
    }
    #[inline]
    fn to_word(self) -> u64 {
        self
    }
}

impl Field for Badge {
    #[inline]
    fn from_word(word: u64) -> Badge {
        Badge::new(word)
    }
    #[inline]
    fn to_word(self) -> u64 {
        self.value()
    }
}

impl<T> Field for Arg<T> {
    #[inline]
    fn from_word(word: u64) -> Arg<T> {
        Arg::from_word(word)
    }
    #[inline]
    fn to_word(self) -> u64 {
        self.word
    }
}

/// The arguments of one syscall.
pub trait SyscallArgs: Copy {
    /// The syscall these are the arguments of.
    const SYSNO: Sysno;
    /// The registers the fields travel in, in field order.
    const REGISTERS: &'static [Reg];
    /// The argument registers `rdi rsi rdx r10 r8 r9`
    /// ([`ARGUMENT_REGISTERS`](crate::syscall::ARGUMENT_REGISTERS)); 0 where no field is.
    fn encode(&self) -> [u64; 6];
    /// The arguments in the argument registers `rdi rsi rdx r10 r8 r9`; registers no field
    /// names are ignored.
    fn decode(registers: [u64; 6]) -> Self;
}

/// The six argument registers by name.
#[derive(Clone, Copy, Default)]
struct Six {
    rdi: u64,
    rsi: u64,
    rdx: u64,
    r10: u64,
    r8: u64,
    r9: u64,
}

impl Six {
    #[inline]
    const fn from_array([rdi, rsi, rdx, r10, r8, r9]: [u64; 6]) -> Six {
        Six { rdi, rsi, rdx, r10, r8, r9 }
    }

    #[inline]
    const fn to_array(self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }
}

macro_rules! reg {
    (rdi) => {
        Reg::Rdi
    };
    (rsi) => {
        Reg::Rsi
    };
    (rdx) => {
        Reg::Rdx
    };
    (r10) => {
        Reg::R10
    };
    (r8) => {
        Reg::R8
    };
    (r9) => {
        Reg::R9
    };
}

macro_rules! syscall_args {
    ($(
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$field_meta:meta])* $field:ident: $ty:ty => $reg:ident, )*
        }
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub struct $name {
                $( $(#[$field_meta])* #[doc = concat!("\n\nRegister: `", stringify!($reg), "`.")] pub $field: $ty, )*
            }

            impl SyscallArgs for $name {
                const SYSNO: Sysno = Sysno::$name;
                const REGISTERS: &'static [Reg] = &[$( reg!($reg) ),*];

                #[inline]
                fn encode(&self) -> [u64; 6] {
                    #[allow(unused_mut)]
                    let mut registers = Six::default();
                    $( registers.$reg = Field::to_word(self.$field); )*
                    registers.to_array()
                }

                #[inline]
                fn decode(registers: [u64; 6]) -> $name {
                    #[allow(unused_variables)]
                    let registers = Six::from_array(registers);
                    $name { $( $field: Field::from_word(registers.$reg), )* }
                }
            }
        )*

        /// The argument registers `sysno` reads ([`SyscallArgs::REGISTERS`] of its struct).
        /// The match is exhaustive: every [`Sysno`] has its struct.
        #[inline]
        pub const fn registers(sysno: Sysno) -> &'static [Reg] {
            match sysno {
                $( Sysno::$name => $name::REGISTERS, )*
            }
        }

        /// Decodes `registers` as the arguments of every syscall and checks each struct
        /// round-trips (the host tests' property).
        #[cfg(test)]
        fn round_trip_every_struct(registers: [u64; 6]) {
            $( tests::round_trip::<$name>(registers); )*
        }
    };
}

syscall_args! {
    /// [`Sysno::Send`]: send a message, blocking until a receiver takes it.
    Send {
        /// The endpoint; needs `WRITE`, and `GRANT` if the message carries caps.
        endpoint: Arg<CapSlot> => rdi,
        /// What the message is: length, caps, label (checked after the endpoint cap).
        info: Arg<MessageInfo> => rsi,
    }
    /// [`Sysno::NbSend`]: as [`Send`], but `WouldBlock` instead of waiting.
    NbSend {
        /// The endpoint; needs `WRITE`, and `GRANT` if the message carries caps.
        endpoint: Arg<CapSlot> => rdi,
        /// What the message is (checked after the endpoint cap).
        info: Arg<MessageInfo> => rsi,
    }
    /// [`Sysno::Call`]: send, then wait for the reply.
    Call {
        /// The endpoint; needs `WRITE` (caps in the reply need `GRANT_REPLY`).
        endpoint: Arg<CapSlot> => rdi,
        /// What the message is (checked after the endpoint cap).
        info: Arg<MessageInfo> => rsi,
    }
    /// [`Sysno::Recv`]: wait for a message on an endpoint.
    Recv {
        /// The endpoint; needs `READ`.
        endpoint: Arg<CapSlot> => rdi,
        /// Timeout in timer ticks; 0 waits forever (`TimedOut` when it passes).
        timeout: u64 => rsi,
    }
    /// [`Sysno::NbRecv`]: as [`Recv`], but `WouldBlock` if no sender is waiting.
    NbRecv {
        /// The endpoint; needs `READ`.
        endpoint: Arg<CapSlot> => rdi,
    }
    /// [`Sysno::Reply`]: answer the call this thread received last (`rdi` is ignored).
    Reply {
        /// What the reply is (checked once a call is known to be pending).
        info: Arg<MessageInfo> => rsi,
    }
    /// [`Sysno::ReplyRecv`]: reply to the pending call if there is one, then receive on the
    /// endpoint (no timeout).
    ReplyRecv {
        /// The endpoint to receive on; needs `READ` (checked before the reply is sent).
        endpoint: Arg<CapSlot> => rdi,
        /// What the reply is.
        info: Arg<MessageInfo> => rsi,
    }
    /// [`Sysno::Signal`]: OR the cap's badge into a notification's signal word.
    Signal {
        /// The notification; needs `WRITE`.
        notification: Arg<CapSlot> => rdi,
    }
    /// [`Sysno::Wait`]: wait for a non-zero signal word, take and clear it.
    Wait {
        /// The notification; needs `READ`.
        notification: Arg<CapSlot> => rdi,
        /// Timeout in timer ticks; 0 waits forever.
        timeout: u64 => rsi,
    }
    /// [`Sysno::Poll`]: as [`Wait`], but a zero signal word instead of blocking.
    Poll {
        /// The notification; needs `READ`.
        notification: Arg<CapSlot> => rdi,
    }
    /// [`Sysno::Yield`]: no arguments.
    Yield {}
    /// [`Sysno::CapIdentify`]: describe a cap.
    CapIdentify {
        /// The slot whose cap is described.
        slot: Arg<CapSlot> => rdi,
    }
    /// [`Sysno::CapCopy`]: copy a cap, same rights and badge.
    CapCopy {
        /// The cap to copy.
        src: Arg<CapSlot> => rdi,
        /// The empty slot the copy goes to ([`Arg::destination`]: not 0).
        dest: Arg<CapSlot> => rsi,
    }
    /// [`Sysno::CapMint`]: derive a cap with fewer rights and/or a badge.
    CapMint {
        /// The cap to derive from.
        src: Arg<CapSlot> => rdi,
        /// The empty slot the new cap goes to (not 0).
        dest: Arg<CapSlot> => rsi,
        /// Rights mask, intersected with the source's rights (checked after both slots).
        rights: Arg<Rights> => rdx,
        /// The badge; [`Badge::NONE`] keeps the source's.
        badge: Badge => r10,
    }
    /// [`Sysno::CapMove`]: move a cap, keeping its place in the derivation tree.
    CapMove {
        /// The cap to move.
        src: Arg<CapSlot> => rdi,
        /// The empty slot it goes to (not 0).
        dest: Arg<CapSlot> => rsi,
    }
    /// [`Sysno::CapDelete`]: delete a cap (its derived caps are re-parented).
    CapDelete {
        /// The cap to delete.
        slot: Arg<CapSlot> => rdi,
    }
    /// [`Sysno::CapRevoke`]: delete every cap derived from a cap, in every space.
    CapRevoke {
        /// The cap whose descendants go.
        slot: Arg<CapSlot> => rdi,
    }
    /// [`Sysno::ObjectCreate`]: create a kernel object, charged to the caller's quota.
    ObjectCreate {
        /// What to create: endpoint, notification, frame, address space, thread or cspace
        /// (checked first, before the caller's space and the slot).
        kind: Arg<ObjectType> => rdi,
        /// The empty slot the new cap (with [`Rights::ALL`]) goes to (not 0).
        dest: Arg<CapSlot> => rsi,
        /// For a cspace its quota in bytes; for a frame its size in bytes (0: 4 KiB; else a
        /// power of two from 4 KiB to
        /// [`frame_create::MAX_BYTES`](crate::syscall::frame_create::MAX_BYTES)); ignored by
        /// other kinds.
        size: u64 => rdx,
        /// For a frame, [`frame_create`](crate::syscall::frame_create) flags; ignored by
        /// other kinds.
        flags: u64 => r10,
    }
    /// [`Sysno::ConsoleWrite`]: write bytes to the console.
    ConsoleWrite {
        /// The console cap; needs `WRITE`.
        console: Arg<CapSlot> => rdi,
        /// User address of the bytes.
        bytes: u64 => rsi,
        /// How many bytes: at most
        /// [`CONSOLE_WRITE_MAX`](crate::syscall::CONSOLE_WRITE_MAX) (`MessageTooLong`).
        len: u64 => rdx,
    }
    /// [`Sysno::ThreadExit`]: end the calling thread.
    ThreadExit {
        /// The exit code, reported to the thread's fault/exit endpoint.
        code: u64 => rdi,
    }
    /// [`Sysno::Map`]: map all of a frame.
    Map {
        /// The address space; needs `WRITE`.
        space: Arg<CapSlot> => rdi,
        /// The frame; needs `READ`, plus `WRITE` or `EXECUTE` for such a mapping (looked up
        /// after `perms` is checked).
        frame: Arg<CapSlot> => rsi,
        /// User address: page aligned; the whole frame must fit in the lower half.
        address: u64 => rdx,
        /// [`map_perms`](crate::syscall::map_perms) bits (`InvalidArgument` for unknown bits
        /// and for writable and executable together; checked after `space`).
        perms: u64 => r10,
    }
    /// [`Sysno::Unmap`]: remove a whole mapping.
    Unmap {
        /// The address space; needs `WRITE`.
        space: Arg<CapSlot> => rdi,
        /// User address: the start of a mapping.
        address: u64 => rsi,
    }
    /// [`Sysno::ThreadStart`]: start a created thread.
    ThreadStart {
        /// The thread; needs `WRITE`.
        thread: Arg<CapSlot> => rdi,
        /// Its address space; needs `WRITE`.
        space: Arg<CapSlot> => rsi,
        /// Its capability space; needs `WRITE`.
        cspace: Arg<CapSlot> => rdx,
        /// First instruction (lower half; checked after the three caps).
        entry: u64 => r10,
        /// Initial `rsp` (lower half).
        stack_pointer: u64 => r8,
        /// IPC buffer address (lower half); 0: none.
        ipc_buffer: u64 => r9,
    }
    /// [`Sysno::ThreadConfigure`]: priority, budget and fault endpoint of a thread.
    ThreadConfigure {
        /// The thread; needs `WRITE`.
        thread: Arg<CapSlot> => rdi,
        /// Priority: at most the caller's.
        priority: u64 => rsi,
        /// CPU budget in µs per period ([`budget`](crate::syscall::budget)); with `period_us`
        /// 0 as well: no budget.
        budget_us: u64 => rdx,
        /// The period in µs.
        period_us: u64 => r10,
        /// The fault endpoint, a slot in the caller's space (needs `WRITE`); [`NO_SLOT`]:
        /// none. Looked up after `thread`, before the scheduling arguments are checked.
        fault_endpoint: Arg<Option<CapSlot>> => r8,
    }
    /// [`Sysno::CapGive`]: mint into another capability space.
    CapGive {
        /// The cap to derive from, in the caller's space (checked after `cspace` and
        /// `rights`).
        src: Arg<CapSlot> => rdi,
        /// The capability space to give into; needs `WRITE` (looked up first).
        cspace: Arg<CapSlot> => rsi,
        /// The empty slot there (not 0).
        dest: Arg<CapSlot> => rdx,
        /// Rights mask, intersected with the source's rights.
        rights: Arg<Rights> => r10,
        /// The badge; [`Badge::NONE`] keeps the source's.
        badge: Badge => r8,
    }
    /// [`Sysno::ThreadKill`]: stop a thread for good.
    ThreadKill {
        /// The thread; needs `WRITE`.
        thread: Arg<CapSlot> => rdi,
    }
    /// [`Sysno::IoPortRead`]: read an I/O port.
    IoPortRead {
        /// The I/O-port-range cap; needs `READ`.
        ports: Arg<CapSlot> => rdi,
        /// The port, inside the cap's range.
        port: u64 => rsi,
        /// Width in bytes: 1, 2 or 4.
        width: u64 => rdx,
    }
    /// [`Sysno::IoPortWrite`]: write an I/O port.
    IoPortWrite {
        /// The I/O-port-range cap; needs `WRITE`.
        ports: Arg<CapSlot> => rdi,
        /// The port, inside the cap's range.
        port: u64 => rsi,
        /// Width in bytes: 1, 2 or 4.
        width: u64 => rdx,
        /// The value written.
        value: u64 => r10,
    }
    /// [`Sysno::IrqSetNotification`]: deliver an IRQ line as a notification.
    IrqSetNotification {
        /// The IRQ-handler cap; needs `WRITE`.
        irq: Arg<CapSlot> => rdi,
        /// The notification; needs `WRITE`. Its badge is the bit pattern signalled.
        notification: Arg<CapSlot> => rsi,
    }
    /// [`Sysno::IrqAck`]: the driver has handled the interrupt.
    IrqAck {
        /// The IRQ-handler cap; needs `WRITE`.
        irq: Arg<CapSlot> => rdi,
    }
    /// [`Sysno::AuditCap`]: authority audit of one slot of any capability space.
    AuditCap {
        /// The audit cap; needs `READ`.
        audit: Arg<CapSlot> => rdi,
        /// The capability-space index (`InvalidSlot` past the last space).
        space: u64 => rsi,
        /// The slot in that space.
        slot: Arg<CapSlot> => rdx,
    }
    /// [`Sysno::AuditThread`]: authority audit of one thread.
    AuditThread {
        /// The audit cap; needs `READ`.
        audit: Arg<CapSlot> => rdi,
        /// The thread index (`InvalidArgument` past the last thread).
        thread: u64 => rsi,
    }
    /// [`Sysno::FrameInfo`]: describe a frame.
    FrameInfo {
        /// The frame; needs `READ`.
        frame: Arg<CapSlot> => rdi,
    }
    /// [`Sysno::ConsoleRead`]: take what was typed on the console, without blocking.
    ConsoleRead {
        /// The console cap; needs `READ`.
        console: Arg<CapSlot> => rdi,
        /// User address of the buffer the bytes go to.
        buffer: u64 => rsi,
        /// Its length: at most [`CONSOLE_READ_MAX`](crate::syscall::CONSOLE_READ_MAX)
        /// (`MessageTooLong`).
        len: u64 => rdx,
    }
    /// [`Sysno::ConsoleSetNotification`]: signal a notification when console input arrives.
    ConsoleSetNotification {
        /// The console cap; needs `READ`.
        console: Arg<CapSlot> => rdi,
        /// The notification signalled, with this cap's badge; needs `WRITE`.
        notification: Arg<CapSlot> => rsi,
    }
    /// [`Sysno::AuditMemory`]: authority audit of physical memory.
    AuditMemory {
        /// The audit cap; needs `READ`.
        audit: Arg<CapSlot> => rdi,
    }
    /// [`Sysno::AuditDenial`]: the kernel's record of refused authority.
    AuditDenial {
        /// The audit cap; needs `READ`.
        audit: Arg<CapSlot> => rdi,
        /// The record wanted (the oldest still held if it was overwritten).
        number: u64 => rsi,
    }
    /// [`Sysno::FrameSlice`]: a borrowed frame over part of a borrowed frame.
    FrameSlice {
        /// The source frame; needs `READ`, and must be borrowed (`IllegalOperation` for an
        /// allocated frame). Checked first.
        source: Arg<CapSlot> => rdi,
        /// Where the slice starts in the source, in bytes: a multiple of 4096
        /// (`InvalidArgument`; checked after `source`).
        offset: u64 => rsi,
        /// The slice's length in bytes: at least 1, and `offset + length` at most the
        /// source's length (`InvalidArgument`, overflow included). Any value: the slice
        /// maps whole pages, `FrameInfo` reports this length.
        length: u64 => rdx,
        /// The empty slot the slice's cap (with the source cap's rights) goes to (not 0;
        /// checked after the range).
        dest: Arg<CapSlot> => r10,
    }
    /// [`Sysno::PciConfigRead`]: read a PCI function's configuration space.
    PciConfigRead {
        /// The PCI cap; needs `READ`. Checked first.
        pci: Arg<CapSlot> => rdi,
        /// The function, counted from the first of the cap's range (0 for a one-function
        /// cap; `bus << 8 | device << 3 | function` for init's PCI bus cap).
        function: u64 => rsi,
        /// The register's offset: below 256 and a multiple of `width`.
        offset: u64 => rdx,
        /// Width in bytes: 1, 2 or 4.
        width: u64 => r10,
    }
    /// [`Sysno::PciConfigWrite`]: write a PCI function's configuration space.
    PciConfigWrite {
        /// The PCI cap; needs `WRITE`. Checked first.
        pci: Arg<CapSlot> => rdi,
        /// The function, as for [`PciConfigRead`].
        function: u64 => rsi,
        /// The register's offset, as for [`PciConfigRead`]; never a BAR or the ROM BAR.
        offset: u64 => rdx,
        /// Width in bytes: 1, 2 or 4.
        width: u64 => r10,
        /// The value written (its low `width` bytes).
        value: u64 => r8,
    }
    /// [`Sysno::PciBar`]: where the kernel placed one of a function's memory BARs.
    PciBar {
        /// The PCI cap; needs `READ`. Checked first.
        pci: Arg<CapSlot> => rdi,
        /// The function, as for [`PciConfigRead`].
        function: u64 => rsi,
        /// The BAR's index, 0..=5.
        bar: u64 => rdx,
    }
    /// [`Sysno::PciSlice`]: a PCI cap over one function of a PCI cap's range.
    PciSlice {
        /// The source PCI cap; needs `READ`. Checked first.
        source: Arg<CapSlot> => rdi,
        /// The function, as for [`PciConfigRead`].
        function: u64 => rsi,
        /// The empty slot the new cap (with the source cap's rights) goes to (not 0).
        dest: Arg<CapSlot> => rdx,
    }
    /// [`Sysno::SetCallTimeout`]: bound this thread's later calls.
    SetCallTimeout {
        /// Ticks (10 ms each) a call may wait, to be received and answered; 0: forever.
        ticks: u64 => rdi,
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;
    use crate::syscall::ARGUMENT_REGISTERS;

    /// Decoding any registers and encoding the struct gives back exactly the registers the
    /// struct names (the rest 0); decoding that again gives the same struct.
    pub(super) fn round_trip<A: SyscallArgs + core::fmt::Debug + PartialEq>(registers: [u64; 6]) {
        let decoded = A::decode(registers);
        let encoded = decoded.encode();
        for (i, reg) in ARGUMENT_REGISTERS.iter().enumerate() {
            let expected = if A::REGISTERS.contains(reg) { registers[i] } else { 0 };
            assert_eq!(encoded[i], expected, "{:?} register {reg:?}", A::SYSNO);
        }
        assert_eq!(A::decode(encoded), decoded, "{:?}", A::SYSNO);
    }

    proptest! {
        #[test]
        fn every_struct_round_trips(registers in any::<[u64; 6]>()) {
            round_trip_every_struct(registers);
        }

        #[test]
        fn typed_values_round_trip(slot in any::<u32>(), bits in 0u32..32, kind in 1u64..=13, badge in any::<u64>()) {
            let mint = CapMint { src: CapSlot::new(slot).into(), dest: CapSlot::new(slot ^ 1).into(), rights: Rights::from_bits_truncate(bits).into(), badge: Badge::new(badge) };
            let back = CapMint::decode(mint.encode());
            prop_assert_eq!(back.src.get(), Ok(CapSlot::new(slot)));
            prop_assert_eq!(back.dest.get(), Ok(CapSlot::new(slot ^ 1)));
            prop_assert_eq!(back.rights.get(), Ok(Rights::from_bits_truncate(bits)));
            prop_assert_eq!(back.badge, Badge::new(badge));
            let kind = ObjectType::try_from(kind).map_err(|_| TestCaseError::fail("kind"))?;
            let create = ObjectCreate::decode(ObjectCreate { kind: kind.into(), dest: CapSlot::new(slot).into(), size: badge, flags: 0 }.encode());
            prop_assert_eq!(create.kind.get(), Ok(kind));
            prop_assert_eq!(create.size, badge);
        }
    }

    #[test]
    fn every_syscall_names_each_register_at_most_once() {
        for sysno in Sysno::ALL {
            let registers = registers(sysno);
            let mut seen = Vec::new();
            for reg in registers {
                assert!(ARGUMENT_REGISTERS.contains(reg), "{sysno:?}: {reg:?} is not an argument register");
                assert!(!seen.contains(reg), "{sysno:?}: {reg:?} twice");
                seen.push(*reg);
            }
        }
    }

    fn slot(index: u32) -> Arg<CapSlot> {
        CapSlot::new(index).into()
    }

    /// The layout each syscall had when libcap wrote its registers by hand.
    #[test]
    fn layouts_are_as_documented() {
        let info = MessageInfo::new(9, 3, 1).unwrap();
        let w = info.encode();
        let rw = Rights::READ.union(Rights::WRITE);
        let cases: [(Sysno, [u64; 6], [u64; 6]); 43] = [
            (Send::SYSNO, Send { endpoint: slot(1), info: info.into() }.encode(), [1, w, 0, 0, 0, 0]),
            (NbSend::SYSNO, NbSend { endpoint: slot(1), info: info.into() }.encode(), [1, w, 0, 0, 0, 0]),
            (Call::SYSNO, Call { endpoint: slot(1), info: info.into() }.encode(), [1, w, 0, 0, 0, 0]),
            (Recv::SYSNO, Recv { endpoint: slot(2), timeout: 5 }.encode(), [2, 5, 0, 0, 0, 0]),
            (NbRecv::SYSNO, NbRecv { endpoint: slot(2) }.encode(), [2, 0, 0, 0, 0, 0]),
            (Reply::SYSNO, Reply { info: info.into() }.encode(), [0, w, 0, 0, 0, 0]),
            (ReplyRecv::SYSNO, ReplyRecv { endpoint: slot(3), info: info.into() }.encode(), [3, w, 0, 0, 0, 0]),
            (Signal::SYSNO, Signal { notification: slot(4) }.encode(), [4, 0, 0, 0, 0, 0]),
            (Wait::SYSNO, Wait { notification: slot(4), timeout: 6 }.encode(), [4, 6, 0, 0, 0, 0]),
            (Poll::SYSNO, Poll { notification: slot(4) }.encode(), [4, 0, 0, 0, 0, 0]),
            (Yield::SYSNO, Yield {}.encode(), [0; 6]),
            (CapIdentify::SYSNO, CapIdentify { slot: slot(5) }.encode(), [5, 0, 0, 0, 0, 0]),
            (CapCopy::SYSNO, CapCopy { src: slot(5), dest: slot(6) }.encode(), [5, 6, 0, 0, 0, 0]),
            (
                CapMint::SYSNO,
                CapMint { src: slot(5), dest: slot(6), rights: rw.into(), badge: Badge::new(7) }.encode(),
                [5, 6, 3, 7, 0, 0],
            ),
            (CapMove::SYSNO, CapMove { src: slot(5), dest: slot(6) }.encode(), [5, 6, 0, 0, 0, 0]),
            (CapDelete::SYSNO, CapDelete { slot: slot(5) }.encode(), [5, 0, 0, 0, 0, 0]),
            (CapRevoke::SYSNO, CapRevoke { slot: slot(5) }.encode(), [5, 0, 0, 0, 0, 0]),
            (
                ObjectCreate::SYSNO,
                ObjectCreate { kind: ObjectType::Frame.into(), dest: slot(6), size: 8192, flags: 1 }.encode(),
                [8, 6, 8192, 1, 0, 0],
            ),
            (
                ConsoleWrite::SYSNO,
                ConsoleWrite { console: slot(1), bytes: 0x1000, len: 12 }.encode(),
                [1, 0x1000, 12, 0, 0, 0],
            ),
            (ThreadExit::SYSNO, ThreadExit { code: 42 }.encode(), [42, 0, 0, 0, 0, 0]),
            (
                Map::SYSNO,
                Map { space: slot(3), frame: slot(8), address: 0x4000, perms: 1 }.encode(),
                [3, 8, 0x4000, 1, 0, 0],
            ),
            (Unmap::SYSNO, Unmap { space: slot(3), address: 0x4000 }.encode(), [3, 0x4000, 0, 0, 0, 0]),
            (
                ThreadStart::SYSNO,
                ThreadStart { thread: slot(1), space: slot(2), cspace: slot(3), entry: 4, stack_pointer: 5, ipc_buffer: 6 }
                    .encode(),
                [1, 2, 3, 4, 5, 6],
            ),
            (
                ThreadConfigure::SYSNO,
                ThreadConfigure { thread: slot(1), priority: 2, budget_us: 3, period_us: 4, fault_endpoint: None.into() }
                    .encode(),
                [1, 2, 3, 4, NO_SLOT, 0],
            ),
            (
                CapGive::SYSNO,
                CapGive { src: slot(1), cspace: slot(2), dest: slot(3), rights: rw.into(), badge: Badge::new(5) }.encode(),
                [1, 2, 3, 3, 5, 0],
            ),
            (ThreadKill::SYSNO, ThreadKill { thread: slot(1) }.encode(), [1, 0, 0, 0, 0, 0]),
            (IoPortRead::SYSNO, IoPortRead { ports: slot(1), port: 0x3f8, width: 1 }.encode(), [1, 0x3f8, 1, 0, 0, 0]),
            (
                IoPortWrite::SYSNO,
                IoPortWrite { ports: slot(1), port: 0x3f8, width: 1, value: 65 }.encode(),
                [1, 0x3f8, 1, 65, 0, 0],
            ),
            (
                IrqSetNotification::SYSNO,
                IrqSetNotification { irq: slot(1), notification: slot(2) }.encode(),
                [1, 2, 0, 0, 0, 0],
            ),
            (IrqAck::SYSNO, IrqAck { irq: slot(1) }.encode(), [1, 0, 0, 0, 0, 0]),
            (AuditCap::SYSNO, AuditCap { audit: slot(1), space: 2, slot: slot(3) }.encode(), [1, 2, 3, 0, 0, 0]),
            (AuditThread::SYSNO, AuditThread { audit: slot(1), thread: 2 }.encode(), [1, 2, 0, 0, 0, 0]),
            (FrameInfo::SYSNO, FrameInfo { frame: slot(1) }.encode(), [1, 0, 0, 0, 0, 0]),
            (
                ConsoleRead::SYSNO,
                ConsoleRead { console: slot(1), buffer: 0x2000, len: 64 }.encode(),
                [1, 0x2000, 64, 0, 0, 0],
            ),
            (
                ConsoleSetNotification::SYSNO,
                ConsoleSetNotification { console: slot(1), notification: slot(2) }.encode(),
                [1, 2, 0, 0, 0, 0],
            ),
            (AuditMemory::SYSNO, AuditMemory { audit: slot(1) }.encode(), [1, 0, 0, 0, 0, 0]),
            (AuditDenial::SYSNO, AuditDenial { audit: slot(1), number: 9 }.encode(), [1, 9, 0, 0, 0, 0]),
            (
                FrameSlice::SYSNO,
                FrameSlice { source: slot(121), offset: 0x3000, length: 5000, dest: slot(9) }.encode(),
                [121, 0x3000, 5000, 9, 0, 0],
            ),
            (
                PciConfigRead::SYSNO,
                PciConfigRead { pci: slot(123), function: 0x10, offset: 0x3c, width: 1 }.encode(),
                [123, 0x10, 0x3c, 1, 0, 0],
            ),
            (
                PciConfigWrite::SYSNO,
                PciConfigWrite { pci: slot(5), function: 0, offset: 4, width: 2, value: 6 }.encode(),
                [5, 0, 4, 2, 6, 0],
            ),
            (PciBar::SYSNO, PciBar { pci: slot(5), function: 0, bar: 4 }.encode(), [5, 0, 4, 0, 0, 0]),
            (PciSlice::SYSNO, PciSlice { source: slot(123), function: 0x10, dest: slot(9) }.encode(), [123, 0x10, 9, 0, 0, 0]),
            (SetCallTimeout::SYSNO, SetCallTimeout { ticks: 50 }.encode(), [50, 0, 0, 0, 0, 0]),
        ];
        for (i, (sysno, encoded, expected)) in cases.iter().enumerate() {
            assert_eq!(*sysno, Sysno::ALL[i], "cases are in syscall order");
            assert_eq!(encoded, expected, "{sysno:?}");
        }
        let configured = ThreadConfigure { thread: slot(1), priority: 0, budget_us: 0, period_us: 0, fault_endpoint: Some(CapSlot::new(9)).into() };
        assert_eq!(configured.encode()[4], 9);
    }

    #[test]
    fn out_of_range_words_give_the_documented_error() {
        let too_big = 1u64 << 32;
        assert_eq!(CapIdentify::decode([too_big, 0, 0, 0, 0, 0]).slot.get(), Err(ErrorCode::InvalidSlot));
        assert_eq!(CapIdentify::decode([u64::MAX, 0, 0, 0, 0, 0]).slot.get(), Err(ErrorCode::InvalidSlot));
        assert_eq!(CapIdentify::decode([u64::from(u32::MAX), 0, 0, 0, 0, 0]).slot.get(), Ok(CapSlot::new(u32::MAX)));

        let copy = CapCopy::decode([1, 0, 0, 0, 0, 0]);
        assert_eq!(copy.dest.get(), Ok(CapSlot::new(0)));
        assert_eq!(copy.dest.destination(), Err(ErrorCode::InvalidSlot), "slot 0 is never filled");
        assert_eq!(CapCopy::decode([1, too_big, 0, 0, 0, 0]).dest.destination(), Err(ErrorCode::InvalidSlot));
        assert_eq!(CapCopy::decode([1, 2, 0, 0, 0, 0]).dest.destination(), Ok(CapSlot::new(2)));

        for rights in [1u64 << 5, u64::from(u32::MAX), too_big | 1, u64::MAX] {
            assert_eq!(CapMint::decode([1, 2, rights, 0, 0, 0]).rights.get(), Err(ErrorCode::InvalidArgument));
            assert_eq!(CapGive::decode([1, 2, 3, rights, 0, 0]).rights.get(), Err(ErrorCode::InvalidArgument));
        }
        assert_eq!(CapMint::decode([1, 2, 0b1_1111, 0, 0, 0]).rights.get(), Ok(Rights::ALL));

        for kind in [0u64, 15, too_big + 1, u64::MAX] {
            assert_eq!(ObjectCreate::decode([kind, 1, 0, 0, 0, 0]).kind.get(), Err(ErrorCode::InvalidArgument));
        }

        let reserved = 1u64 << 13;
        assert_eq!(Send::decode([1, reserved, 0, 0, 0, 0]).info.get(), Err(ErrorCode::InvalidArgument));
        assert_eq!(Call::decode([1, 1023, 0, 0, 0, 0]).info.get(), Err(ErrorCode::MessageTooLong));

        let none = ThreadConfigure::decode([1, 0, 0, 0, NO_SLOT, 0]).fault_endpoint;
        assert_eq!(none.get(), Ok(None));
        assert_eq!(none.slot(), None);
        let bad = ThreadConfigure::decode([1, 0, 0, 0, too_big, 0]).fault_endpoint;
        assert_eq!(bad.get(), Err(ErrorCode::InvalidSlot));
        assert_eq!(bad.slot().map(Arg::get), Some(Err(ErrorCode::InvalidSlot)));
        let some = ThreadConfigure::decode([1, 0, 0, 0, 7, 0]).fault_endpoint;
        assert_eq!(some.slot().map(Arg::get), Some(Ok(CapSlot::new(7))));
    }
}
