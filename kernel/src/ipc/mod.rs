//! IPC objects: endpoints (synchronous messages) and notifications (asynchronous signals).
//!
//! Their tables are `endpoint.rs` and `notification.rs` (which is live, who waits); this
//! module is what the operations do with them and with the threads.
//!
//! # Endpoints
//! A message is a label, up to [`abi::msg::MAX_MESSAGE_WORDS`] words and up to
//! [`abi::msg::MAX_CAPS`] caps. The first [`abi::msg::REGISTER_WORDS`] words travel in
//! registers (the sender's `rdx r10 r8 r9 r12..r15` land in the receiver's); the rest are
//! copied between the two threads' IPC buffers. Caps travel only if the sender's endpoint
//! cap has Grant; the sender names them in its buffer's send-cap area, the receiver names
//! the empty slots they land in in its receive-cap area, and each arrives as a copy derived
//! from the sender's (so the sender's revoke reaches it).
//!
//! The receiver learns the badge of the cap the sender used (`rdi`) and the message info
//! (`rsi`). A `Call` leaves the caller waiting for a reply; the receiver holds the one-shot
//! right to answer it (the implicit reply cap, seL4's non-MCS model): `Reply` consumes it,
//! a second `Reply` finds none. If either side of a pending call dies, the other side gets
//! `PeerGone` instead of waiting forever.
//!
//! # Notifications
//! A word of bits. `Signal` ORs in the badge of the signalling cap (1 if unbadged) and
//! wakes one waiter, which receives and clears the word; `Wait` blocks until the word is
//! non-zero; `Poll` takes the word without blocking. IRQs will arrive this way.

use abi::ipc_buffer;
use abi::msg::{MessageInfo, REGISTER_WORDS};
use abi::ErrorCode;
use kcore::cap::SlotRef;

use crate::arch::idt::TrapFrame;
use crate::sched::{self, Scheduler, WaitLinks};
use crate::thread::{BlockedOn, State, ThreadId, MAX_THREADS};

mod endpoint;
pub mod fastpath;
mod notification;

use endpoint::Waiting;
pub use endpoint::Endpoints;
pub use notification::Notifications;

/// What an endpoint or a notification costs its creator's quota, in bytes.
pub const OBJECT_COST: u64 = 64;

/// The trap frame at the top of a thread's kernel stack: its user registers while it is
/// in the kernel or not running.
fn frame_of(sched: &mut Scheduler, id: ThreadId) -> &'static mut TrapFrame {
    let top = sched.thread(id).kernel_stack_top;
    let pointer = (top - core::mem::size_of::<TrapFrame>() as u64) as *mut TrapFrame;
    // SAFETY: every user thread's kernel stack holds its trap frame at the top from spawn
    // on; the thread is blocked or is the caller (whose frame is this one), so nothing
    // else touches it while the kernel, single-threaded with interrupts off, edits it.
    unsafe { &mut *pointer }
}

// ----- allocation ----------------------------------------------------------------------

pub fn allocate_endpoint() -> Result<u16, ErrorCode> {
    sched::with_sched(|sched| sched.endpoints.allocate())
}

pub fn allocate_notification() -> Result<u16, ErrorCode> {
    sched::with_sched(|sched| sched.notifications.allocate())
}

/// The endpoint's last cap is gone: everyone queued on it learns `PeerGone`, and no
/// thread keeps it as its fault endpoint (the index will name another endpoint one day).
pub fn destroy_endpoint(index: u16) {
    sched::with_sched(|sched| {
        while let Some(id) = pop_endpoint(sched, index) {
            fail_waiter(sched, id, ErrorCode::PeerGone);
        }
        for other in 1..MAX_THREADS {
            let thread = sched.thread(ThreadId(other as u16));
            if thread.fault_endpoint.is_some_and(|(endpoint, _)| endpoint == index) {
                thread.fault_endpoint = None;
            }
        }
        sched.endpoints.free(index);
    });
}

/// The notification's last cap is gone: its waiters learn `PeerGone`, and no IRQ line stays
/// bound to it (the index will name another notification one day).
pub fn destroy_notification(index: u16) {
    crate::irq::unbind_notification(index);
    sched::with_sched(|sched| {
        while let Some(id) = pop_notification(sched, index) {
            fail_waiter(sched, id, ErrorCode::PeerGone);
        }
        sched.notifications.free(index);
    });
}

fn fail_waiter(sched: &mut Scheduler, id: ThreadId, code: ErrorCode) {
    let thread = sched.thread(id);
    thread.blocked_on = BlockedOn::Nothing;
    thread.deadline = None;
    if thread.dying {
        // A dead thread's report that nobody will receive: it just stays dead.
        thread.dying = false;
        return;
    }
    frame_of(sched, id).rax = u64::from(code.as_u32());
    sched.enqueue(id);
}

/// Thread `id` ended: tell its fault endpoint, as a message from the thread itself. If no
/// supervisor is waiting, the dead thread waits in the endpoint's send queue, so the news
/// is never lost and costs no kernel memory beyond the thread's own slot.
pub fn report_end(sched: &mut Scheduler, id: ThreadId, endpoint: u16, badge: u64, exit: crate::thread::Exit) {
    use abi::syscall::fault_label;
    use crate::thread::Exit;
    if !sched.endpoints.is_live(endpoint) {
        return;
    }
    let (label, words, length) = match exit {
        Exit::Fault { vector, error_code, address, rip } => (fault_label::FAULT, [vector, error_code, address, rip], 4),
        Exit::Code(code) => (fault_label::EXIT, [code, 0, 0, 0], 1),
        Exit::Killed => (fault_label::KILLED, [0; 4], 0),
    };
    let Ok(info) = MessageInfo::new(label, length, 0) else { return };
    let mut registers = [0u64; REGISTER_WORDS];
    registers[..4].copy_from_slice(&words);
    if sched.endpoints.waiting(endpoint) == Waiting::Receivers {
        // A report is registers only, so its transfer cannot be refused.
        if let Some(receiver) = pop_endpoint(sched, endpoint) {
            let delivery = transfer(sched, Sender { id, badge, info }, registers, receiver).unwrap_or(Delivery { registers, badge, info: info.encode() });
            delivery.apply(frame_of(sched, receiver));
            let thread = sched.thread(receiver);
            thread.blocked_on = BlockedOn::Nothing;
            thread.deadline = None;
            sched.enqueue(receiver);
            return;
        }
    }
    let frame = frame_of(sched, id);
    [frame.rdx, frame.r10, frame.r8, frame.r9, frame.r12, frame.r13, frame.r14, frame.r15] = registers;
    frame.rsi = info.encode();
    let thread = sched.thread(id);
    thread.dying = true;
    thread.blocked_on = BlockedOn::Send { endpoint, badge, grant: false, call: false, grant_reply: false, cap: None };
    push_endpoint(sched, endpoint, id, Waiting::Senders);
}

// ----- queues --------------------------------------------------------------------------

fn push_endpoint(sched: &mut Scheduler, index: u16, id: ThreadId, waiting: Waiting) {
    let Scheduler { threads, endpoints, .. } = sched;
    endpoints.push(&mut WaitLinks(threads), index, id, waiting);
}

fn pop_endpoint(sched: &mut Scheduler, index: u16) -> Option<ThreadId> {
    let Scheduler { threads, endpoints, .. } = sched;
    endpoints.pop(&mut WaitLinks(threads), index)
}

fn push_notification(sched: &mut Scheduler, index: u16, id: ThreadId) {
    let Scheduler { threads, notifications, .. } = sched;
    notifications.push(&mut WaitLinks(threads), index, id);
}

fn pop_notification(sched: &mut Scheduler, index: u16) -> Option<ThreadId> {
    let Scheduler { threads, notifications, .. } = sched;
    notifications.pop(&mut WaitLinks(threads), index)
}

/// Takes `id` out of whatever endpoint or notification queue it waits in.
fn unlink(sched: &mut Scheduler, id: ThreadId) {
    let blocked_on = sched.thread(id).blocked_on;
    let Scheduler { threads, endpoints, notifications, .. } = sched;
    match blocked_on {
        BlockedOn::Send { endpoint, .. } | BlockedOn::Receive { endpoint } => {
            endpoints.remove(&mut WaitLinks(threads), endpoint, id);
        }
        BlockedOn::Notification { notification } => notifications.remove(&mut WaitLinks(threads), notification, id),
        _ => {}
    }
}

/// A blocked receive, wait or call reached its deadline. A call given up while its server
/// holds it leaves the server owing nobody: its answer gets `PeerGone`, as for a dead caller.
pub fn time_out(sched: &mut Scheduler, id: ThreadId) {
    if let BlockedOn::Reply { server } = sched.thread(id).blocked_on
        && sched.thread(server).reply_to == Some(id)
    {
        sched.thread(server).reply_to = None;
        sched.thread(server).reply_lost = true;
    }
    unlink(sched, id);
    fail_waiter(sched, id, ErrorCode::TimedOut);
}

/// Thread `id` is dying: leave every queue, and release whoever waits on it for a reply
/// (or whom it owes one).
pub fn forget_thread(sched: &mut Scheduler, id: ThreadId) {
    unlink(sched, id);
    if let Some(caller) = sched.thread(id).reply_to.take()
        && sched.thread(caller).blocked_on == (BlockedOn::Reply { server: id }) {
            fail_waiter(sched, caller, ErrorCode::PeerGone);
        }
    for index in 1..MAX_THREADS {
        let other = ThreadId(index as u16);
        if sched.thread(other).reply_to == Some(id) {
            sched.thread(other).reply_to = None;
            sched.thread(other).reply_lost = true;
        }
        if sched.thread(other).state == State::Blocked && sched.thread(other).blocked_on == (BlockedOn::Reply { server: id }) {
            fail_waiter(sched, other, ErrorCode::PeerGone);
        }
    }
}

// ----- message transfer ----------------------------------------------------------------

/// Who sends (whose registers and buffer), under which badge, which message. Grant was
/// checked when the message was decoded.
#[derive(Clone, Copy)]
struct Sender {
    id: ThreadId,
    badge: u64,
    info: MessageInfo,
}

/// Checks a message before anything happens: its info word, that long messages have an
/// IPC buffer, that caps need Grant and name occupied slots.
fn decode_message(sched: &mut Scheduler, id: ThreadId, info_word: u64, grant: bool) -> Result<MessageInfo, ErrorCode> {
    let info = MessageInfo::decode(info_word)?;
    if info.length() <= REGISTER_WORDS && info.caps() == 0 {
        return Ok(info); // the fast path: registers only, nothing else to check
    }
    let thread = sched.thread(id);
    let (ipc_buffer, pml4, cspace) = (thread.ipc_buffer, thread.pml4, thread.cspace);
    if ipc_buffer == 0 {
        return Err(ErrorCode::MessageTooLong);
    }
    if info.caps() > 0 {
        if !grant {
            return Err(ErrorCode::InsufficientRights);
        }
        let space = cspace.ok_or(ErrorCode::IllegalOperation)?;
        for index in 0..info.caps() {
            let slot = read_buffer_word(pml4, ipc_buffer, ipc_buffer::SEND_CAPS_OFFSET + index * 8)?;
            let slot = u32::try_from(slot).map_err(|_| ErrorCode::InvalidSlot)?;
            crate::caps::with(|store| store.identify(SlotRef::new(space, slot)))?;
        }
    }
    Ok(info)
}

fn read_buffer_word(pml4: u64, buffer: u64, offset: usize) -> Result<u64, ErrorCode> {
    let mut word = [0u8; 8];
    crate::vspace::copy_from_user(pml4, buffer + offset as u64, &mut word)?;
    Ok(u64::from_le_bytes(word))
}

/// What the slow path of a transfer needs to know about each side.
#[derive(Clone, Copy)]
struct Party {
    pml4: u64,
    ipc_buffer: u64,
    cspace: Option<kcore::cap::SpaceId>,
}

/// A message as the receiver gets it: the values for its `rdx r10 r8 r9 r12..r15`, `rdi`
/// (badge) and `rsi` (info as delivered).
#[derive(Clone, Copy)]
struct Delivery {
    registers: [u64; REGISTER_WORDS],
    badge: u64,
    info: u64,
}

impl Delivery {
    fn apply(self, frame: &mut TrapFrame) {
        [frame.rdx, frame.r10, frame.r8, frame.r9, frame.r12, frame.r13, frame.r14, frame.r15] = self.registers;
        frame.rax = 0;
        frame.rdi = self.badge;
        frame.rsi = self.info;
    }
}

fn message_registers(frame: &TrapFrame) -> [u64; REGISTER_WORDS] {
    [frame.rdx, frame.r10, frame.r8, frame.r9, frame.r12, frame.r13, frame.r14, frame.r15]
}

/// Moves the message from `sender` (whose message registers are `registers`) to
/// `receiver`: buffer words and caps now, registers in the returned [`Delivery`], which
/// the caller applies to the receiver's frame.
///
/// A message arrives whole or not at all: every check comes first, and a refusal changes
/// nothing and is the sender's error. `MessageTooLong` if the receiver has no IPC buffer
/// for the words beyond the registers or for caps; `InvalidArgument` if either buffer
/// cannot be read or written; for each cap, the store's error for the sender's slot
/// (emptied since the send was queued: `EmptySlot`) or the receiver's (`InvalidSlot` for
/// slot 0, one outside its space or one named twice, `SlotOccupied`), or `IllegalOperation`
/// if the placement rule refuses it.
fn transfer(sched: &mut Scheduler, sender: Sender, registers: [u64; REGISTER_WORDS], receiver: ThreadId) -> Result<Delivery, ErrorCode> {
    let length = sender.info.length();
    // Registers beyond the message's length are zeroed: the sender's other register
    // contents are none of the receiver's business.
    let mut registers = registers;
    for register in registers.iter_mut().skip(length) {
        *register = 0;
    }
    if length <= REGISTER_WORDS && sender.info.caps() == 0 {
        // The fast path: registers only.
        let info = MessageInfo::new(sender.info.label(), length, 0)?;
        return Ok(Delivery { registers, badge: sender.badge, info: info.encode() });
    }
    let view = |thread: &crate::thread::Thread| Party { pml4: thread.pml4, ipc_buffer: thread.ipc_buffer, cspace: thread.cspace };
    let source = view(sched.thread(sender.id));
    let target = view(sched.thread(receiver));
    if target.ipc_buffer == 0 {
        return Err(ErrorCode::MessageTooLong);
    }
    // 1. Read everything the sender names, check everything the receiver offers.
    let mut words = [0u8; ipc_buffer::MSG_WORDS * 8];
    let offset = (ipc_buffer::MSG_OFFSET + REGISTER_WORDS * 8) as u64;
    let long = words.get_mut(REGISTER_WORDS * 8..length.max(REGISTER_WORDS) * 8).ok_or(ErrorCode::MessageTooLong)?;
    crate::vspace::copy_from_user(source.pml4, source.ipc_buffer + offset, long)?;
    let mut moves = [(SlotRef::new(kcore::cap::SpaceId::new(0), 0), SlotRef::new(kcore::cap::SpaceId::new(0), 0)); abi::msg::MAX_CAPS];
    let caps = sender.info.caps();
    if caps > 0 {
        let (Some(from_space), Some(to_space)) = (source.cspace, target.cspace) else { return Err(ErrorCode::IllegalOperation) };
        for index in 0..caps {
            let from = read_buffer_word(source.pml4, source.ipc_buffer, ipc_buffer::SEND_CAPS_OFFSET + index * 8)?;
            let to = read_buffer_word(target.pml4, target.ipc_buffer, ipc_buffer::RECV_CAPS_OFFSET + index * 8)?;
            let from = u32::try_from(from).map_err(|_| ErrorCode::InvalidSlot)?;
            let to = u32::try_from(to).ok().filter(|&slot| slot != 0).ok_or(ErrorCode::InvalidSlot)?;
            let pair = (SlotRef::new(from_space, from), SlotRef::new(to_space, to));
            let earlier = moves.get(..index).unwrap_or(&[]);
            if earlier.iter().any(|(_, named)| *named == pair.1) {
                return Err(ErrorCode::InvalidSlot);
            }
            crate::caps::with(|store| {
                crate::caps::check_placement(store, pair.0, pair.1.space)?;
                store.decode_mint(pair.0, pair.1, abi::Rights::ALL, abi::Badge::NONE).map(drop)
            })?;
            if let Some(entry) = moves.get_mut(index) {
                *entry = pair;
            }
        }
    }
    // 2. Nothing can be refused any more (one CPU, interrupts off): deliver.
    let long = words.get(REGISTER_WORDS * 8..length.max(REGISTER_WORDS) * 8).unwrap_or(&[]);
    crate::vspace::copy_to_user(target.pml4, target.ipc_buffer + offset, long)?;
    for (from, to) in moves.iter().take(caps) {
        crate::caps::derive(*from, *to, abi::Rights::ALL, abi::Badge::NONE)?;
    }
    let delivered = MessageInfo::new(sender.info.label(), length, caps)?;
    Ok(Delivery { registers, badge: sender.badge, info: delivered.encode() })
}

/// Whether the cap a queued sender used is still in its slot (same endpoint, same badge).
/// Reports of ended threads were sent by the kernel and name no slot.
fn send_cap_intact(endpoint: u16, badge: u64, cap: Option<SlotRef>) -> bool {
    let Some(slot) = cap else { return true };
    crate::caps::with(|store| store.lookup(slot))
        .is_ok_and(|found| found.handle == crate::caps::Object::Endpoint(endpoint) && found.badge.value() == badge)
}

/// After a revoke, delete or move: every queued send whose cap is gone is cancelled
/// (`Revoked`), so a revoked badge never delivers another message.
pub fn cancel_revoked_sends() {
    sched::with_sched(|sched| {
        for index in 1..MAX_THREADS {
            let id = ThreadId(index as u16);
            let thread = sched.thread(id);
            if thread.state != State::Blocked {
                continue;
            }
            let BlockedOn::Send { endpoint, badge, cap, .. } = thread.blocked_on else { continue };
            if !send_cap_intact(endpoint, badge, cap) {
                unlink(sched, id);
                fail_waiter(sched, id, ErrorCode::Revoked);
            }
        }
    });
}

// ----- endpoint operations (called with the caller's frame) ------------------------------

/// The cap the caller named: endpoint index, badge, what its rights allow, and where it is.
#[derive(Clone, Copy)]
pub struct EndpointCap {
    pub index: u16,
    pub badge: u64,
    pub grant: bool,
    pub grant_reply: bool,
    pub slot: SlotRef,
}

/// Send or Call. Returns with the caller's frame already holding the outcome.
pub fn send(frame: &mut TrapFrame, cap: EndpointCap, call: bool, blocking: bool) -> Result<(), ErrorCode> {
    let outcome = sched::with_sched(|sched| {
        let me = sched.current();
        let info = decode_message(sched, me, frame.rsi, cap.grant)?;
        if sched.endpoints.waiting(cap.index) == Waiting::Receivers {
            let receiver = sched.endpoints.head(cap.index).ok_or(ErrorCode::PeerGone)?;
            // Refused: the receiver keeps waiting, the sender learns why.
            let delivery = transfer(sched, Sender { id: me, badge: cap.badge, info }, message_registers(frame), receiver)?;
            pop_endpoint(sched, cap.index);
            let thread = sched.thread(receiver);
            thread.blocked_on = BlockedOn::Nothing;
            thread.deadline = None;
            delivery.apply(frame_of(sched, receiver));
            sched.enqueue(receiver);
            if call {
                sched.thread(receiver).reply_to = Some(me);
                sched.thread(receiver).reply_lost = false;
                sched.thread(receiver).reply_grant = cap.grant_reply;
                let deadline = call_deadline(sched, me);
                let thread = sched.thread(me);
                thread.state = State::Blocked;
                thread.blocked_on = BlockedOn::Reply { server: receiver };
                thread.deadline = deadline;
                return Ok(true);
            }
            frame.rax = 0;
            return Ok(true);
        }
        if !blocking {
            return Err(ErrorCode::WouldBlock);
        }
        let deadline = if call { call_deadline(sched, me) } else { None };
        let thread = sched.thread(me);
        thread.state = State::Blocked;
        thread.deadline = deadline;
        thread.blocked_on = BlockedOn::Send {
            endpoint: cap.index,
            badge: cap.badge,
            grant: cap.grant,
            call,
            grant_reply: cap.grant_reply,
            cap: Some(cap.slot),
        };
        push_endpoint(sched, cap.index, me, Waiting::Senders);
        Ok(true)
    })?;
    if outcome {
        sched::schedule();
    }
    Ok(())
}

/// When a call thread `id` makes now must be answered by, if it set a bound
/// (`SetCallTimeout`). One deadline covers both phases: a call received late has less time
/// left for its reply.
fn call_deadline(sched: &mut Scheduler, id: ThreadId) -> Option<u64> {
    let ticks = sched.thread(id).call_timeout_ticks;
    (ticks > 0).then(|| sched::ticks_locked(sched).saturating_add(ticks))
}

/// Receive, blocking (with an optional timeout in ticks) or not.
///
/// A queued sender whose cap was revoked since it queued is released with `Revoked`, one
/// whose message this receiver cannot take with that refusal (see [`transfer`]); either
/// way the receiver goes on to the next sender.
pub fn receive(frame: &mut TrapFrame, index: u16, blocking: bool, timeout_ticks: u64) -> Result<(), ErrorCode> {
    let block = sched::with_sched(|sched| {
        let me = sched.current();
        while sched.endpoints.waiting(index) == Waiting::Senders {
            let sender = pop_endpoint(sched, index).ok_or(ErrorCode::PeerGone)?;
            let BlockedOn::Send { endpoint, badge, grant: _, call, grant_reply, cap } = sched.thread(sender).blocked_on else {
                return Err(ErrorCode::PeerGone);
            };
            if !send_cap_intact(endpoint, badge, cap) {
                fail_waiter(sched, sender, ErrorCode::Revoked);
                continue;
            }
            let sender_frame = frame_of(sched, sender);
            let (info_word, registers) = (sender_frame.rsi, message_registers(sender_frame));
            // Decoded when it was queued.
            let Ok(info) = MessageInfo::decode(info_word) else {
                fail_waiter(sched, sender, ErrorCode::InvalidArgument);
                continue;
            };
            let delivery = match transfer(sched, Sender { id: sender, badge, info }, registers, me) {
                Ok(delivery) => delivery,
                Err(code) => {
                    fail_waiter(sched, sender, code);
                    continue;
                }
            };
            delivery.apply(frame);
            if call {
                sched.thread(sender).blocked_on = BlockedOn::Reply { server: me };
                sched.thread(me).reply_to = Some(sender);
                sched.thread(me).reply_lost = false;
                sched.thread(me).reply_grant = grant_reply;
            } else if sched.thread(sender).dying {
                // A fault or exit report: the thread stays dead.
                let thread = sched.thread(sender);
                thread.dying = false;
                thread.blocked_on = BlockedOn::Nothing;
            } else {
                frame_of(sched, sender).rax = 0;
                sched.thread(sender).blocked_on = BlockedOn::Nothing;
                sched.enqueue(sender);
            }
            return Ok(false);
        }
        if !blocking {
            return Err(ErrorCode::WouldBlock);
        }
        let now = sched::ticks_locked(sched);
        let thread = sched.thread(me);
        thread.state = State::Blocked;
        thread.blocked_on = BlockedOn::Receive { endpoint: index };
        thread.deadline = (timeout_ticks > 0).then(|| now + timeout_ticks);
        push_endpoint(sched, index, me, Waiting::Receivers);
        Ok(true)
    })?;
    if block {
        sched::schedule();
    }
    Ok(())
}

/// Answers the pending call with the message in the caller's registers.
///
/// A reply the caller cannot take (see [`transfer`]) is refused with that error and the
/// call stays pending, so the server can answer again (without the caps, say).
pub fn reply(frame: &mut TrapFrame) -> Result<(), ErrorCode> {
    sched::with_sched(|sched| {
        let me = sched.current();
        let Some(caller) = sched.thread(me).reply_to else {
            // No call pending: either none came, or the caller died before the answer.
            let lost = core::mem::take(&mut sched.thread(me).reply_lost);
            return Err(if lost { ErrorCode::PeerGone } else { ErrorCode::IllegalOperation });
        };
        let grant = sched.thread(me).reply_grant;
        let info = decode_message(sched, me, frame.rsi, grant)?;
        if sched.thread(caller).blocked_on != (BlockedOn::Reply { server: me }) {
            sched.thread(me).reply_to = None;
            return Err(ErrorCode::PeerGone);
        }
        let delivery = transfer(sched, Sender { id: me, badge: 0, info }, message_registers(frame), caller)?;
        sched.thread(me).reply_to = None;
        delivery.apply(frame_of(sched, caller));
        sched.thread(caller).blocked_on = BlockedOn::Nothing;
        sched.thread(caller).deadline = None;
        sched.enqueue(caller);
        Ok(())
    })
}

// ----- notification operations ---------------------------------------------------------

pub fn signal(index: u16, badge: u64) {
    sched::with_sched(|sched| {
        if !sched.notifications.is_live(index) {
            return;
        }
        let bits = if badge == 0 { 1 } else { badge };
        sched.notifications.raise(index, bits);
        if let Some(waiter) = pop_notification(sched, index) {
            let word = sched.notifications.take_word(index);
            let frame = frame_of(sched, waiter);
            frame.rax = 0;
            frame.rdi = word;
            let thread = sched.thread(waiter);
            thread.blocked_on = BlockedOn::Nothing;
            thread.deadline = None;
            sched.enqueue(waiter);
        }
    });
}

pub fn wait(frame: &mut TrapFrame, index: u16, blocking: bool, timeout_ticks: u64) -> Result<(), ErrorCode> {
    let block = sched::with_sched(|sched| {
        let word = sched.notifications.take_word(index);
        if word != 0 || !blocking {
            frame.rax = 0;
            frame.rdi = word;
            return false;
        }
        let now = sched::ticks_locked(sched);
        let me = sched.current();
        let thread = sched.thread(me);
        thread.state = State::Blocked;
        thread.blocked_on = BlockedOn::Notification { notification: index };
        thread.deadline = (timeout_ticks > 0).then(|| now + timeout_ticks);
        push_notification(sched, index, me);
        true
    });
    if block {
        sched::schedule();
    }
    Ok(())
}
