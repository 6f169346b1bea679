//! Typed syscalls: one safe function per [`abi::Sysno`], encoding its arguments through the
//! syscall's struct in [`abi::args`] (the one definition of the register layout, which the
//! kernel decodes) and decoding the registers of [`abi::syscall`] into ABI types.
//!
//! Every function returns `Err(ErrorCode)` when the kernel does (`rax != 0`). A register
//! value that is not valid ABI (an unknown error number, object kind or rights bit) means
//! the kernel and libcap disagree about the ABI; that is a bug, and it panics.
//!
//! Messages travel in registers only for now: a [`Message`] carries at most
//! [`REGISTER_WORDS`] words and no caps. Longer messages and cap transfer use the IPC
//! buffer, which comes with thread setup.

use abi::args::{self, Arg, SyscallArgs};
use abi::msg::REGISTER_WORDS;
use abi::{Badge, CapSlot, ErrorCode, MessageInfo, ObjectType, Rights};

use crate::raw::{self, Registers};

pub(crate) fn check(rax: u64) -> Result<(), ErrorCode> {
    if rax == abi::syscall::SUCCESS {
        return Ok(());
    }
    match u32::try_from(rax).ok().and_then(|n| ErrorCode::try_from(n).ok()) {
        Some(code) => Err(code),
        None => abi_violation("error code", rax),
    }
}

#[cold]
fn abi_violation(what: &str, value: u64) -> ! {
    panic!("kernel returned an invalid {what}: {value:#x}")
}

/// Invokes the syscall of `args` and checks the result.
pub(crate) fn invoke<A: SyscallArgs>(args: A) -> Result<Registers, ErrorCode> {
    let (rax, regs) = raw::syscall_args(&args);
    check(rax).map(|()| regs)
}

// ---- Console and thread -------------------------------------------------------------

/// Reads what was typed on the console (the cap in `console` needs `READ`) into `buffer`,
/// at most [`CONSOLE_READ_MAX`](abi::syscall::CONSOLE_READ_MAX) bytes; never blocks.
/// Returns how many bytes came (0: none waiting, and the input notification is re-armed).
pub fn console_read(console: CapSlot, buffer: &mut [u8]) -> Result<usize, ErrorCode> {
    let len = buffer.len().min(abi::syscall::CONSOLE_READ_MAX);
    let regs = invoke(args::ConsoleRead { console: console.into(), buffer: buffer.as_mut_ptr() as u64, len: len as u64 })?;
    Ok(usize::try_from(regs.rdx).unwrap_or(0).min(len))
}

/// Console input signals the notification in `notification` (needs `WRITE`; its badge is
/// the bits signalled) whenever bytes arrive for [`console_read`].
pub fn console_set_notification(console: CapSlot, notification: CapSlot) -> Result<(), ErrorCode> {
    invoke(args::ConsoleSetNotification { console: console.into(), notification: notification.into() }).map(drop)
}

/// Writes `bytes` to the console cap in `console`, in pieces of at most
/// [`CONSOLE_WRITE_MAX`](abi::syscall::CONSOLE_WRITE_MAX) bytes. Stops at the first error.
pub fn console_write(console: CapSlot, bytes: &[u8]) -> Result<(), ErrorCode> {
    for piece in bytes.chunks(abi::syscall::CONSOLE_WRITE_MAX) {
        invoke(args::ConsoleWrite { console: console.into(), bytes: piece.as_ptr() as u64, len: piece.len() as u64 })?;
    }
    Ok(())
}

/// Ends the calling thread with `code`, reported to its exit endpoint.
pub fn thread_exit(code: u64) -> ! {
    raw::thread_exit(code)
}

/// Gives up the rest of the time slice.
pub fn yield_now() -> Result<(), ErrorCode> {
    invoke(args::Yield {}).map(drop)
}

// ---- Capability space ---------------------------------------------------------------

/// What [`cap_identify`] reports about a cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapInfo {
    /// The kind of object the cap names.
    pub object_type: ObjectType,
    /// What the cap allows.
    pub rights: Rights,
    /// The cap's badge ([`Badge::NONE`] if unbadged).
    pub badge: Badge,
    /// For a thread or cspace cap, the index the authority audit knows it by
    /// ([`audit_thread`], [`audit_cap`]); 0 otherwise.
    pub audit_index: u64,
}

/// Describes the cap in `cap`.
pub fn cap_identify(cap: CapSlot) -> Result<CapInfo, ErrorCode> {
    let regs = invoke(args::CapIdentify { slot: cap.into() })?;
    let object_type =
        ObjectType::try_from(regs.rdx).unwrap_or_else(|v| abi_violation("object type", v));
    let rights = Rights::try_from(regs.r10).unwrap_or_else(|v| abi_violation("rights word", v));
    Ok(CapInfo { object_type, rights, badge: Badge::new(regs.r8), audit_index: regs.r9 })
}

/// Copies the cap in `src` to the empty slot `dest` (same rights and badge, derived from
/// `src`).
pub fn cap_copy(src: CapSlot, dest: CapSlot) -> Result<(), ErrorCode> {
    invoke(args::CapCopy { src: src.into(), dest: dest.into() }).map(drop)
}

/// Derives into `dest` a cap with `src`'s rights intersected with `rights`, and `badge`
/// ([`Badge::NONE`] keeps `src`'s badge).
pub fn cap_mint(src: CapSlot, dest: CapSlot, rights: Rights, badge: Badge) -> Result<(), ErrorCode> {
    invoke(args::CapMint { src: src.into(), dest: dest.into(), rights: rights.into(), badge }).map(drop)
}

/// Moves the cap in `src` to the empty slot `dest`.
pub fn cap_move(src: CapSlot, dest: CapSlot) -> Result<(), ErrorCode> {
    invoke(args::CapMove { src: src.into(), dest: dest.into() }).map(drop)
}

/// Deletes the cap in `cap`; caps derived from it stay valid.
pub fn cap_delete(cap: CapSlot) -> Result<(), ErrorCode> {
    invoke(args::CapDelete { slot: cap.into() }).map(drop)
}

/// Deletes every cap derived from the cap in `cap`, in every capability space.
pub fn cap_revoke(cap: CapSlot) -> Result<(), ErrorCode> {
    invoke(args::CapRevoke { slot: cap.into() }).map(drop)
}

/// Creates an object of kind `object_type` (with `size` bytes for frames and untyped, else
/// 0), charged to the caller's quota, and places a cap with all rights in the empty slot
/// `dest` ([`args::ObjectCreate`]; for a CSpace `size` is its quota in bytes).
pub fn object_create(dest: CapSlot, object_type: ObjectType, size: u64) -> Result<(), ErrorCode> {
    invoke(args::ObjectCreate { kind: object_type.into(), dest: dest.into(), size, flags: 0 }).map(drop)
}

/// Creates a frame of `bytes` (a power of two from 4 KiB to
/// [`abi::syscall::frame_create::MAX_BYTES`]; 0 means 4 KiB) in the empty slot `dest`:
/// zeroed, physically contiguous, aligned to its size, with `flags` from
/// [`abi::syscall::frame_create`]. It costs `bytes` of the caller's quota.
pub fn frame_create(dest: CapSlot, bytes: u64, flags: u64) -> Result<(), ErrorCode> {
    invoke(args::ObjectCreate { kind: ObjectType::Frame.into(), dest: dest.into(), size: bytes, flags }).map(drop)
}

/// Makes in the empty slot `dest` a borrowed frame over bytes `[offset, offset + length)`
/// of the borrowed frame in `source` (it needs `READ`; the new cap has exactly its rights),
/// rounded up to whole pages, charged to the caller's quota like a created object
/// ([`abi::syscall::frame_slice::COST`]). No memory is copied or allocated.
///
/// Errors ([`abi::Sysno::FrameSlice`] gives their order): the source cap's;
/// `IllegalOperation` for an ordinary frame from [`frame_create`]; `InvalidArgument` for an
/// `offset` that is not a multiple of 4096, a `length` of 0, or a range past the source's
/// length; the destination slot's; `OutOfQuota`.
pub fn frame_slice(source: CapSlot, offset: u64, length: u64, dest: CapSlot) -> Result<(), ErrorCode> {
    invoke(args::FrameSlice { source: source.into(), offset, length, dest: dest.into() }).map(drop)
}

// ---- Authority audit (read-only, through an audit cap) -----------------------------

/// One cap as [`audit_cap`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditedCap {
    /// The [`ObjectType`] number (kept raw: an auditor reports kinds it does not know).
    pub kind: u64,
    /// What the cap allows.
    pub rights: Rights,
    /// Its badge ([`Badge::NONE`] if unbadged).
    pub badge: Badge,
    /// The kernel object's identity: equal for caps to the same object.
    pub object: u64,
}

/// The cap at `slot` of capability space `space`, read through the audit cap in `audit`.
/// `InvalidSlot` past the last space or slot or for a space that is not live, `EmptySlot`
/// for an empty slot.
pub fn audit_cap(audit: CapSlot, space: u64, slot_index: u64) -> Result<AuditedCap, ErrorCode> {
    let regs = invoke(args::AuditCap { audit: audit.into(), space, slot: Arg::from_word(slot_index) })?;
    let rights = Rights::try_from(regs.r10).unwrap_or_else(|v| abi_violation("rights word", v));
    Ok(AuditedCap { kind: regs.rdx, rights, badge: Badge::new(regs.r8), object: regs.r9 })
}

/// What [`audit_thread`] reports of one thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditedThread {
    /// Its capability space's index + 1 (0: none).
    pub space: u64,
    /// 0 free, 1 inactive, 2 ready, 3 running, 4 blocked, 5 throttled, 6 dead.
    pub state: u64,
    /// CPU time used since it was created, in microseconds.
    pub cpu_us: u64,
    /// Kernel memory its space's quota has paid for, in bytes.
    pub quota_used: u64,
}

/// Thread `index` as the audit sees it; `InvalidArgument` past the last thread.
pub fn audit_thread(audit: CapSlot, index: u64) -> Result<AuditedThread, ErrorCode> {
    let regs = invoke(args::AuditThread { audit: audit.into(), thread: index })?;
    Ok(AuditedThread { space: regs.rdx, state: regs.r10, cpu_us: regs.r8, quota_used: regs.r9 })
}

/// Physical memory as the audit sees it ([`audit_memory`]), in 4 KiB frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditedMemory {
    /// Frames the kernel's allocator has free.
    pub free_frames: u64,
    /// Frames it manages, free or not.
    pub managed_frames: u64,
}

/// The kernel's free and managed frames, through the audit cap in `audit`.
pub fn audit_memory(audit: CapSlot) -> Result<AuditedMemory, ErrorCode> {
    let regs = invoke(args::AuditMemory { audit: audit.into() })?;
    Ok(AuditedMemory { free_frames: regs.rdx, managed_frames: regs.r10 })
}

/// One record of the kernel's denials ([`audit_denial`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditedDenial {
    /// Its number (records are numbered from 0; a gap before it is what was overwritten).
    pub number: u64,
    /// When, in µs since boot.
    pub time_us: u64,
    /// `abi::syscall::denial::REFUSED_SYSCALL` or `BUDGET_OVERRUN`.
    pub kind: u8,
    /// The refused syscall's number (0 for a budget overrun).
    pub syscall: u16,
    /// Its error (`None` for a budget overrun).
    pub code: Option<ErrorCode>,
    /// The thread's audit index (as [`CapInfo::audit_index`] reports it for a thread cap).
    pub thread: u16,
    /// This thread's records the kernel did not keep since its previous one (past its
    /// allowance per second), at most 255.
    pub suppressed: u8,
}

/// Record `number` of the kernel's denials, or the oldest still held if it was overwritten,
/// through the audit cap in `audit`; `Err(next)` (inside `Ok`) when there is none yet.
pub fn audit_denial(audit: CapSlot, number: u64) -> Result<Result<AuditedDenial, u64>, ErrorCode> {
    let regs = invoke(args::AuditDenial { audit: audit.into(), number })?;
    if regs.r9 == 0 {
        return Ok(Err(regs.rdx));
    }
    let packed = abi::syscall::denial::Packed::unpack(regs.r8);
    let code = ErrorCode::try_from(u32::from(packed.code)).ok();
    Ok(Ok(AuditedDenial {
        number: regs.rdx,
        time_us: regs.r10,
        kind: packed.kind,
        syscall: packed.syscall,
        code,
        thread: packed.thread,
        suppressed: packed.suppressed,
    }))
}

/// What [`frame_info`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Size in bytes: for a frame made by [`frame_create`] a power of two, 4 KiB to 2 MiB;
    /// for a borrowed frame (a [`frame_slice`], the initrd frame) its byte length exactly,
    /// while it maps whole pages.
    pub bytes: u64,
    /// The first physical address (the frame is contiguous): what a device's DMA needs.
    pub phys: u64,
    /// No mapping of it anywhere may be writable (boot-image slices): its bytes never change.
    pub immutable: bool,
    /// Device memory (init's device frame, a driver's BAR slices): mapped uncached, never
    /// executable; never `immutable` (the device writes it).
    pub device: bool,
}

/// Bounds this thread's later calls: a call not answered within `ticks` ticks (10 ms each)
/// of being made ends with `TimedOut` (`Sysno::SetCallTimeout`); 0 lifts the bound.
pub fn set_call_timeout(ticks: u64) {
    let _ = invoke(args::SetCallTimeout { ticks });
}

/// Describes the frame whose cap is in `frame` (it needs `READ`).
pub fn frame_info(frame: CapSlot) -> Result<FrameInfo, ErrorCode> {
    let regs = invoke(args::FrameInfo { frame: frame.into() })?;
    let immutable = regs.r8 & abi::syscall::frame_info::IMMUTABLE != 0;
    let device = regs.r8 & abi::syscall::frame_info::DEVICE != 0;
    Ok(FrameInfo { bytes: regs.rdx, phys: regs.r10, immutable, device })
}

// ---- PCI (through a PCI cap) ----------------------------------------------------------

/// Reads `width` (1, 2 or 4) bytes at `offset` of the configuration space of `function`
/// (counted from the first of the cap's range: 0 for a driver's one-function cap) through
/// the PCI cap in `pci` (needs `READ`). Errors: [`abi::Sysno::PciConfigRead`].
pub fn pci_config_read(pci: CapSlot, function: u16, offset: u8, width: u8) -> Result<u32, ErrorCode> {
    let regs = invoke(args::PciConfigRead { pci: pci.into(), function: u64::from(function), offset: u64::from(offset), width: u64::from(width) })?;
    Ok(regs.rdx as u32)
}

/// Writes `width` bytes of `value` at `offset` (never a BAR: `IllegalOperation`) through the
/// PCI cap in `pci` (needs `WRITE`). Errors: [`abi::Sysno::PciConfigWrite`].
pub fn pci_config_write(pci: CapSlot, function: u16, offset: u8, width: u8, value: u32) -> Result<(), ErrorCode> {
    invoke(args::PciConfigWrite {
        pci: pci.into(),
        function: u64::from(function),
        offset: u64::from(offset),
        width: u64::from(width),
        value: u64::from(value),
    })
    .map(drop)
}

/// A memory BAR as the kernel placed it ([`pci_bar`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciBar {
    /// Physical address (inside init's device frame).
    pub address: u64,
    /// Size in bytes; 0 for no memory BAR.
    pub bytes: u64,
    /// 64-bit BAR (it takes the next register too).
    pub wide: bool,
    /// Prefetchable memory.
    pub prefetchable: bool,
}

/// BAR `bar` (0..=5) of `function` through the PCI cap in `pci` (needs `READ`).
pub fn pci_bar(pci: CapSlot, function: u16, bar: u8) -> Result<PciBar, ErrorCode> {
    let regs = invoke(args::PciBar { pci: pci.into(), function: u64::from(function), bar: u64::from(bar) })?;
    Ok(PciBar {
        address: regs.rdx,
        bytes: regs.r10,
        wide: regs.r8 & abi::syscall::pci_bar::BITS_64 != 0,
        prefetchable: regs.r8 & abi::syscall::pci_bar::PREFETCHABLE != 0,
    })
}

/// Makes in the empty slot `dest` a PCI cap over `function` alone of the cap in `source`
/// (needs `READ`; the new cap has its rights). Errors: [`abi::Sysno::PciSlice`].
pub fn pci_slice(source: CapSlot, function: u16, dest: CapSlot) -> Result<(), ErrorCode> {
    invoke(args::PciSlice { source: source.into(), function: u64::from(function), dest: dest.into() }).map(drop)
}

// ---- IPC ----------------------------------------------------------------------------

/// A message that fits in registers: a label and up to [`REGISTER_WORDS`] words.
///
/// # Invariants
/// `info.length() <= REGISTER_WORDS`, `info.caps() <= MAX_CAPS` (0 unless made by
/// [`Message::with_caps`] or received with caps), and `words[info.length()..]` are zero.
/// Private fields; the constructors check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    info: MessageInfo,
    words: [u64; REGISTER_WORDS],
}

impl Message {
    /// A message with `label` and `words`. `MessageTooLong` if there are more than
    /// [`REGISTER_WORDS`] words (typed messages through [`crate::ipc`] go further, through
    /// the IPC buffer).
    pub fn new(label: u32, words: &[u64]) -> Result<Message, ErrorCode> {
        if words.len() > REGISTER_WORDS {
            return Err(ErrorCode::MessageTooLong);
        }
        let info = MessageInfo::new(label, words.len(), 0)?;
        let mut all = [0; REGISTER_WORDS];
        all.get_mut(..words.len()).ok_or(ErrorCode::MessageTooLong)?.copy_from_slice(words);
        Ok(Message { info, words: all })
    }

    /// A message of `length` words (up to [`abi::msg::MAX_MESSAGE_WORDS`]) whose first
    /// [`REGISTER_WORDS`] are `registers` and whose rest the caller has written to this
    /// thread's IPC buffer (`crate::ipc::encode` does).
    pub(crate) fn long(label: u32, registers: [u64; REGISTER_WORDS], length: usize) -> Result<Message, ErrorCode> {
        let info = MessageInfo::new(label, length, 0)?;
        let mut words = registers;
        for word in words.iter_mut().skip(length) {
            *word = 0;
        }
        Ok(Message { info, words })
    }

    /// As [`Message::new`], announcing `caps` caps to transfer (their slots go in the IPC
    /// buffer: see [`call_with_caps`] and [`reply_recv_with_caps`]).
    pub fn with_caps(label: u32, words: &[u64], caps: usize) -> Result<Message, ErrorCode> {
        let message = Message::new(label, words)?;
        Ok(Message { info: MessageInfo::new(label, words.len(), caps)?, ..message })
    }

    /// The protocol label.
    pub fn label(&self) -> u32 {
        self.info.label()
    }

    /// The message-info word as the kernel reported or will see it. Its length may exceed
    /// [`REGISTER_WORDS`]: the rest is in the IPC buffer (`crate::ipc::decode` reads it).
    pub fn info(&self) -> MessageInfo {
        self.info
    }

    /// The message words carried in registers.
    pub fn words(&self) -> &[u64] {
        let n = self.info.length().min(REGISTER_WORDS);
        self.words.get(..n).unwrap_or(&[])
    }

    /// Puts the message words in their registers (`abi::syscall::MESSAGE_REGISTERS`) over
    /// `regs`; the info word is an argument of each IPC struct.
    fn load(&self, regs: &mut Registers) {
        let [w0, w1, w2, w3, w4, w5, w6, w7] = self.words;
        (regs.rdx, regs.r10, regs.r8, regs.r9) = (w0, w1, w2, w3);
        (regs.r12, regs.r13, regs.r14, regs.r15) = (w4, w5, w6, w7);
    }

    fn store(regs: &Registers) -> Message {
        let info = MessageInfo::decode(regs.rsi).unwrap_or_else(|_| abi_violation("message info", regs.rsi));
        let mut words =
            [regs.rdx, regs.r10, regs.r8, regs.r9, regs.r12, regs.r13, regs.r14, regs.r15];
        // Keep the invariant: words past the length are zero.
        for word in words.iter_mut().skip(info.length()) {
            *word = 0;
        }
        Message { info, words }
    }
}

/// A received message and the badge of the cap it was sent through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The badge of the sender's cap ([`Badge::NONE`] for replies and unbadged caps).
    pub badge: Badge,
    /// The message.
    pub message: Message,
}

/// Invokes the IPC syscall of `args` with the words of `message` (whose info word `args`
/// carries).
fn send_with<A: SyscallArgs>(args: A, message: &Message) -> Result<Registers, ErrorCode> {
    let mut regs = Registers::from_args(&args);
    message.load(&mut regs);
    let rax = raw::syscall(A::SYSNO, &mut regs);
    check(rax).map(|()| regs)
}

fn received(regs: &Registers) -> Received {
    Received { badge: Badge::new(regs.rdi), message: Message::store(regs) }
}

/// Sends `message` on the endpoint in `endpoint`, blocking until a receiver takes it.
pub fn send(endpoint: CapSlot, message: &Message) -> Result<(), ErrorCode> {
    send_with(args::Send { endpoint: endpoint.into(), info: message.info.into() }, message).map(drop)
}

/// As [`send`], but `WouldBlock` instead of waiting for a receiver.
pub fn nb_send(endpoint: CapSlot, message: &Message) -> Result<(), ErrorCode> {
    send_with(args::NbSend { endpoint: endpoint.into(), info: message.info.into() }, message).map(drop)
}

/// Sends `message` and waits for the reply.
pub fn call(endpoint: CapSlot, message: &Message) -> Result<Message, ErrorCode> {
    send_with(args::Call { endpoint: endpoint.into(), info: message.info.into() }, message).map(|regs| Message::store(&regs))
}

/// Waits for a message on the endpoint in `endpoint`.
pub fn recv(endpoint: CapSlot) -> Result<Received, ErrorCode> {
    invoke(args::Recv { endpoint: endpoint.into(), timeout: 0 }).map(|regs| received(&regs))
}

/// As [`recv`], but `TimedOut` after `ticks` timer ticks with no message (0: wait forever).
pub fn recv_timeout(endpoint: CapSlot, ticks: u64) -> Result<Received, ErrorCode> {
    invoke(args::Recv { endpoint: endpoint.into(), timeout: ticks }).map(|regs| received(&regs))
}

/// As [`recv`], but `WouldBlock` if no sender is waiting.
pub fn nb_recv(endpoint: CapSlot) -> Result<Received, ErrorCode> {
    invoke(args::NbRecv { endpoint: endpoint.into() }).map(|regs| received(&regs))
}

/// Answers the call this thread received last (the kernel's implicit one-shot reply; the
/// `reply` slot is ignored, as the kernel ignores `rdi` ([`args::Reply`]), and kept only
/// for source compatibility). `IllegalOperation` if no call is pending, `PeerGone` if the
/// caller died.
pub fn reply(_reply: CapSlot, message: &Message) -> Result<(), ErrorCode> {
    send_with(args::Reply { info: message.info.into() }, message).map(drop)
}

/// Replies with `message` to the pending call (if any), then waits on `endpoint`.
pub fn reply_recv(endpoint: CapSlot, message: &Message) -> Result<Received, ErrorCode> {
    send_with(args::ReplyRecv { endpoint: endpoint.into(), info: message.info.into() }, message).map(|regs| received(&regs))
}

// ---- Caps in messages (through the IPC buffer) ---------------------------------------

/// Writes `send` as the slots of the caps the next message carries and `receive` as the
/// empty slots where caps of the next message received land (`abi::ipc_buffer`).
/// `MessageTooLong` for more than [`abi::msg::MAX_CAPS`] of either; `IllegalOperation` if
/// this thread's IPC buffer is unknown (see the raw layer's `ipc_buffer`).
pub fn set_transfer_slots(send: &[CapSlot], receive: &[CapSlot]) -> Result<(), ErrorCode> {
    use abi::ipc_buffer::{CAP_SLOTS, RECV_CAPS_OFFSET, SEND_CAPS_OFFSET, WORD};
    if send.len() > CAP_SLOTS || receive.len() > CAP_SLOTS {
        return Err(ErrorCode::MessageTooLong);
    }
    for (offset, slots) in [(SEND_CAPS_OFFSET, send), (RECV_CAPS_OFFSET, receive)] {
        for (index, slot) in slots.iter().enumerate() {
            raw::ipc_buffer_write(offset / WORD + index, u64::from(slot.index()))?;
        }
    }
    Ok(())
}

/// Calls with `message` carrying the caps in `send` (needs `GRANT` on the endpoint cap; the
/// receiver gets copies, derived from them); caps in the reply land in `receive` (needs
/// `GRANT_REPLY`). The reply's [`Message::info`] says how many arrived.
pub fn call_with_caps(endpoint: CapSlot, message: &Message, send: &[CapSlot], receive: &[CapSlot]) -> Result<Message, ErrorCode> {
    set_transfer_slots(send, receive)?;
    let message = Message { info: MessageInfo::new(message.label(), message.info.length(), send.len())?, ..*message };
    call(endpoint, &message)
}

/// Replies with `message` carrying the caps in `send` (the caller's cap needs
/// `GRANT_REPLY`), then receives on `endpoint`; caps in the message received land in
/// `receive`.
pub fn reply_recv_with_caps(endpoint: CapSlot, message: &Message, send: &[CapSlot], receive: &[CapSlot]) -> Result<Received, ErrorCode> {
    set_transfer_slots(send, receive)?;
    let message = Message { info: MessageInfo::new(message.label(), message.info.length(), send.len())?, ..*message };
    reply_recv(endpoint, &message)
}

/// Answers the pending call with `message` carrying the caps in `send` (the caller's cap
/// needs `GRANT_REPLY`). A reply the caller cannot take (no receive slots for the caps, say)
/// is refused and the call stays pending, as with [`reply`].
pub fn reply_with_caps(message: &Message, send: &[CapSlot]) -> Result<(), ErrorCode> {
    set_transfer_slots(send, &[])?;
    let message = Message { info: MessageInfo::new(message.label(), message.info.length(), send.len())?, ..*message };
    reply(crate::slots::NULL, &message)
}

// ---- Notifications ------------------------------------------------------------------

/// ORs the cap's badge into the notification in `notification`.
pub fn signal(notification: CapSlot) -> Result<(), ErrorCode> {
    invoke(args::Signal { notification: notification.into() }).map(drop)
}

/// Waits until the notification's signal word is non-zero; returns and clears it.
pub fn wait(notification: CapSlot) -> Result<u64, ErrorCode> {
    invoke(args::Wait { notification: notification.into(), timeout: 0 }).map(|regs| regs.rdi)
}

/// As [`wait`], but `TimedOut` after `ticks` timer ticks with no signal (0: wait forever).
pub fn wait_timeout(notification: CapSlot, ticks: u64) -> Result<u64, ErrorCode> {
    invoke(args::Wait { notification: notification.into(), timeout: ticks }).map(|regs| regs.rdi)
}

/// As [`wait`], but returns 0 at once when no signal is pending.
pub fn poll(notification: CapSlot) -> Result<u64, ErrorCode> {
    invoke(args::Poll { notification: notification.into() }).map(|regs| regs.rdi)
}

// ---- Raw ----------------------------------------------------------------------------

/// Any value in `rax` with any values in `rdi rsi rdx r10 r8 r9 r12 r13 r14 r15` (in that
/// order); returns `rax` and those registers as the kernel left them. For the syscall
/// fuzzer and ABI tests: no typing, no checks. Safe for the reason [`crate`]'s raw layer
/// gives (the kernel writes no memory but the IPC buffer); `ThreadExit` does not return.
pub fn syscall_raw(number: u64, registers: [u64; 10]) -> (u64, [u64; 10]) {
    let [rdi, rsi, rdx, r10, r8, r9, r12, r13, r14, r15] = registers;
    let mut regs = Registers { rdi, rsi, rdx, r10, r8, r9, r12, r13, r14, r15 };
    let rax = raw::syscall_number(number, &mut regs);
    (rax, [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9, regs.r12, regs.r13, regs.r14, regs.r15])
}
