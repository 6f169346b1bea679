//! The IPC fast path: `Call` and `ReplyRecv` when everything about them is simple.
//!
//! Most IPC is a client calling a server that waits for it, and the server answering and
//! waiting for the next call, with a few words in registers. For exactly that case this
//! path runs before the general decode, does the slow path's own state writes, copies the
//! words sent straight from the sender's trap frame into the receiver's, and enters the
//! receiver's user frame directly: no run queue, no `schedule()`, no unwinding through the
//! receiver's parked kernel stack. Anything else (a long message, caps, nobody waiting, a
//! better thread ready, a receiver out of budget, any error) returns here untouched and
//! the slow path handles it, errors included, so the fast path never decides an outcome
//! the slow path would not.
//!
//! # Taken only when the scheduling decision is the slow path's
//! The slow path makes the woken thread ready and blocks the sender; `schedule()` then runs
//! the best ready thread. The fast path switches to the woken thread only when that is what
//! `schedule()` would choose: no ready thread of its priority or higher (one of its own
//! priority would be ahead of it in its queue), and budget left (an exhausted one would be
//! throttled). So budgets, the audit queries and the census see the same states either way;
//! `qemu::fastpath_agrees` compares the fuzzer's and the leak suite's results with the fast
//! path on and off (`ipc_fastpath=off` on the kernel command line).
//!
//! # Parking the sender
//! The sender blocks without unwinding: its saved kernel stack is rebuilt to resume in
//! `trap_return` on its own trap frame ([`crate::arch::context::switch_to_user`]), which
//! is all its syscall had left to do (its flags are sanitised here, as `dispatch` would).
//! The slow path resumes it like any parked thread.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use abi::args::{self, SyscallArgs};
use abi::msg::{MessageInfo, REGISTER_WORDS};
use abi::{Rights, Sysno};

use super::{Waiting, frame_of, message_registers, pop_endpoint, push_endpoint};
use crate::arch::idt::TrapFrame;
use crate::arch::syscall::{SYSCALL_VECTOR, sanitize_user_flags};
use crate::sched::{self, DirectSwitch, Scheduler};
use crate::thread::{BlockedOn, State, ThreadId};

static ENABLED: AtomicBool = AtomicBool::new(true);
static TAKEN: AtomicU64 = AtomicU64::new(0);

/// Reads `ipc_fastpath=off` from the kernel command line (anything else leaves it on).
pub fn configure(cmdline: &str) {
    let off = kcore::cmdline::value(cmdline, "ipc_fastpath") == Some("off");
    ENABLED.store(!off, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// How many IPCs took the fast path since boot.
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "reported by the in-QEMU test harnesses"))]
pub fn taken() -> u64 {
    TAKEN.load(Ordering::Relaxed)
}

/// Takes the fast path if the syscall in `frame` is a simple `Call` or `ReplyRecv`: then
/// this does not return (the CPU continues in the receiver). Otherwise it changes nothing.
pub fn attempt(frame: &mut TrapFrame) {
    if !enabled() {
        return;
    }
    let switch = if frame.rax == Sysno::Call as u64 {
        call(frame)
    } else if frame.rax == Sysno::ReplyRecv as u64 {
        reply_recv(frame)
    } else {
        None
    };
    if let Some(switch) = switch {
        TAKEN.fetch_add(1, Ordering::Relaxed);
        frame.rflags = sanitize_user_flags(frame.rflags);
        sched::perform_direct_switch(switch, frame);
    }
}

/// The message in `frame`, if it is registers only and carries no caps.
fn simple_message(frame: &TrapFrame) -> Option<MessageInfo> {
    let info = MessageInfo::decode(frame.rsi).ok()?;
    (info.length() <= REGISTER_WORDS && info.caps() == 0).then_some(info)
}

fn argument_registers(frame: &TrapFrame) -> [u64; 6] {
    [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9]
}

/// Whether `target` can be entered straight through its trap frame: a live user thread
/// blocked in a syscall (whose frame is therefore a syscall frame), and not the caller.
fn enterable(sched: &mut Scheduler, target: ThreadId) -> bool {
    let me = sched.current();
    let thread = sched.thread(target);
    let blocked_user = target != me && thread.state == State::Blocked && !thread.dying && thread.pml4 != 0 && thread.kernel_stack_top != 0;
    blocked_user && frame_of(sched, target).vector == SYSCALL_VECTOR && sched.can_switch_directly(target)
}

/// The words sent, the badge and the info word into the receiver's frame; the registers
/// past the message's length are zeroed, as on the slow path.
fn deliver(from: &TrapFrame, info: MessageInfo, badge: u64, to: &mut TrapFrame) {
    let mut registers = message_registers(from);
    for register in registers.iter_mut().skip(info.length()) {
        *register = 0;
    }
    [to.rdx, to.r10, to.r8, to.r9, to.r12, to.r13, to.r14, to.r15] = registers;
    to.rax = 0;
    to.rdi = badge;
    // Registers only and no caps: the delivered info is the word sent (reserved bits zero).
    to.rsi = info.encode();
    to.rflags = sanitize_user_flags(to.rflags);
}

/// `Call` to a server waiting in its receive: what `ipc::send` does with a waiting
/// receiver, then straight into it.
fn call(frame: &mut TrapFrame) -> Option<DirectSwitch> {
    let info = simple_message(frame)?;
    let endpoint = args::Call::decode(argument_registers(frame)).endpoint;
    let cap = crate::syscall::endpoint_cap(endpoint, Rights::WRITE).ok()?;
    sched::with_sched(|sched| {
        // A bounded call needs its deadline set: the slow path's business.
        if sched.endpoints.waiting(cap.index) != Waiting::Receivers || sched.thread(sched.current()).call_timeout_ticks != 0 {
            return None;
        }
        let receiver = sched.endpoints.head(cap.index)?;
        if !enterable(sched, receiver) {
            return None;
        }
        let me = sched.current();
        pop_endpoint(sched, cap.index);
        deliver(frame, info, cap.badge, frame_of(sched, receiver));
        let thread = sched.thread(receiver);
        thread.blocked_on = BlockedOn::Nothing;
        thread.deadline = None;
        thread.reply_to = Some(me);
        thread.reply_lost = false;
        thread.reply_grant = cap.grant_reply;
        let thread = sched.thread(me);
        thread.state = State::Blocked;
        thread.blocked_on = BlockedOn::Reply { server: receiver };
        Some(sched.switch_directly(receiver))
    })
}

/// `ReplyRecv` answering a caller that waits for this reply, on an endpoint with no
/// sender queued: what `ipc::reply` then `ipc::receive` do, then straight into the caller.
fn reply_recv(frame: &mut TrapFrame) -> Option<DirectSwitch> {
    let info = simple_message(frame)?;
    let endpoint = args::ReplyRecv::decode(argument_registers(frame)).endpoint;
    let index = crate::syscall::endpoint_cap(endpoint, Rights::READ).ok()?.index;
    sched::with_sched(|sched| {
        let me = sched.current();
        let caller = sched.thread(me).reply_to?;
        if sched.thread(caller).blocked_on != (BlockedOn::Reply { server: me })
            || sched.endpoints.waiting(index) == Waiting::Senders
            || !enterable(sched, caller)
        {
            return None;
        }
        sched.thread(me).reply_to = None;
        deliver(frame, info, 0, frame_of(sched, caller));
        sched.thread(caller).blocked_on = BlockedOn::Nothing;
        sched.thread(caller).deadline = None;
        let thread = sched.thread(me);
        thread.state = State::Blocked;
        thread.blocked_on = BlockedOn::Receive { endpoint: index };
        thread.deadline = None;
        push_endpoint(sched, index, me, Waiting::Receivers);
        Some(sched.switch_directly(caller))
    })
}
