//! The thread object: a schedulable context with its own kernel stack, optionally running
//! in a user address space with a capability space.

use kcore::cap::SpaceId;

pub const MAX_THREADS: usize = abi::tables::Table::Threads.capacity() as usize;
/// Kernel stack pages per thread (the slot reserves one more, unmapped, as the guard).
pub const KERNEL_STACK_PAGES: u64 = 4;
pub const PRIORITIES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadId(pub u16);

impl ThreadId {
    pub const IDLE: ThreadId = ThreadId(0);
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The slot holds no thread.
    Free,
    /// Created by `ObjectCreate(Thread)`, not started yet.
    Inactive,
    Ready,
    Running,
    /// Waiting for an event (see [`Thread::blocked_on`]).
    Blocked,
    /// Out of CPU budget until its next period.
    Throttled,
    /// Finished; waiting for someone to collect its [`Exit`].
    Dead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockedOn {
    Nothing,
    /// Another thread's exit.
    Exit(ThreadId),
    /// The timer tick with this number.
    Tick(u64),
    /// Queued on an endpoint to send (or call): the badge and rights of the cap it used, and
    /// the slot it is in (`None` for the kernel's end reports), checked again at delivery.
    Send { endpoint: u16, badge: u64, grant: bool, call: bool, grant_reply: bool, cap: Option<kcore::cap::SlotRef> },
    /// Queued on an endpoint to receive.
    Receive { endpoint: u16 },
    /// Called a server and waits for its reply.
    Reply { server: ThreadId },
    /// Waiting on a notification.
    Notification { notification: u16 },
}

/// How a thread ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It called `ThreadExit` with this code.
    Code(u64),
    /// A CPU exception in user mode: vector, error code, faulting address (CR2), RIP.
    Fault { vector: u64, error_code: u64, address: u64, rip: u64 },
    /// Killed by the kernel or a supervisor.
    Killed,
}

/// A budget of CPU time per period, in microseconds: the thread runs at most `budget_us`
/// in every `period_us`. A budget of 0 never runs (a thread made by a budgeted thread,
/// until it is given a share). `None` in a thread means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub budget_us: u64,
    pub period_us: u64,
}

/// CPU time a thread was given out of another's budget ([`crate::sched::configure`]): it
/// goes back to `donor` when this thread ends or is given another budget, if the donor is
/// still the thread it was (`generation`: thread slots are reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Donation {
    pub donor: ThreadId,
    pub generation: u32,
    /// Microseconds per the donor's period.
    pub budget_us: u64,
    /// The budget it bought (µs per the receiver's period): what the receiver keeps of it
    /// when it ends, in proportion, is what goes back; the rest it lent on.
    pub granted_us: u64,
}

#[derive(Clone, Copy, Debug)]
pub struct Thread {
    pub state: State,
    pub name: [u8; 16],
    pub priority: u8,
    /// Top of the kernel stack; 0 until the slot first gets one (slots keep theirs).
    pub kernel_stack_top: u64,
    /// Where `switch_to` parked this thread.
    pub saved_rsp: u64,
    /// Root of the user address space; 0 for a kernel thread.
    pub pml4: u64,
    /// Whether the address space belongs to this thread alone (freed when it dies).
    pub owns_space: bool,
    /// The capability space; `None` for kernel threads.
    pub cspace: Option<SpaceId>,
    /// Physical frame holding the FPU/vector state; 0 for kernel threads.
    pub fpu_frame: u64,
    pub next_ready: Option<ThreadId>,
    pub blocked_on: BlockedOn,
    pub exit: Option<Exit>,
    pub budget: Option<Budget>,
    /// Microseconds of CPU used in the current period, charged at every switch and
    /// timer interrupt (not sampled per tick: blocking just before a tick saves nothing).
    pub used_us: u64,
    /// Microseconds of CPU used since the thread was created, for the audit (`ps`).
    pub cpu_used_us: u64,
    /// When the current period began (µs since boot).
    pub period_start_us: u64,
    /// Where its budget came from, if out of another thread's.
    pub donation: Option<Donation>,
    /// Bumped each time the slot gets a new thread, so a stale [`Donation`] is refused.
    pub generation: u32,
    /// Total timer ticks this thread was running when they fired.
    pub ticks_run: u64,
    /// User address of this thread's IPC buffer (one page); 0 if it has none.
    pub ipc_buffer: u64,
    /// The caller waiting for this thread's reply (the implicit one-shot reply cap).
    pub reply_to: Option<ThreadId>,
    /// Whether that caller's cap allowed caps in the reply.
    pub reply_grant: bool,
    /// The caller this thread owed a reply died: the next `Reply` says `PeerGone`.
    pub reply_lost: bool,
    /// Next thread in the endpoint or notification queue this thread waits in.
    pub next_waiting: Option<ThreadId>,
    /// The tick at which a blocking receive, wait or call gives up.
    pub deadline: Option<u64>,
    /// How many ticks this thread's calls may wait (`SetCallTimeout`); 0: forever.
    pub call_timeout_ticks: u64,
    /// Whether the capability space dies with this thread (kernel-made threads) or belongs
    /// to a CSpace object (threads started by user space).
    pub owns_cspace: bool,
    /// Where its end is reported: (endpoint index, badge).
    pub fault_endpoint: Option<(u16, u64)>,
    /// Dead, but still queued on its fault endpoint to deliver the news.
    pub dying: bool,
    /// Its thread object is gone; once dead and switched away from, the slot is free.
    pub orphaned: bool,
    /// Timer ticks of its current time slice used so far.
    pub slice_used: u32,
}

impl Thread {
    pub const EMPTY: Thread = Thread {
        state: State::Free,
        name: [0; 16],
        priority: 0,
        kernel_stack_top: 0,
        saved_rsp: 0,
        pml4: 0,
        owns_space: false,
        cspace: None,
        fpu_frame: 0,
        next_ready: None,
        blocked_on: BlockedOn::Nothing,
        exit: None,
        budget: None,
        used_us: 0,
        cpu_used_us: 0,
        period_start_us: 0,
        donation: None,
        generation: 0,
        ticks_run: 0,
        ipc_buffer: 0,
        reply_to: None,
        reply_grant: false,
        reply_lost: false,
        next_waiting: None,
        deadline: None,
        call_timeout_ticks: 0,
        owns_cspace: false,
        fault_endpoint: None,
        dying: false,
        orphaned: false,
        slice_used: 0,
    };

    #[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
    pub fn name(&self) -> &str {
        let len = self.name.iter().position(|&byte| byte == 0).unwrap_or(self.name.len());
        core::str::from_utf8(self.name.get(..len).unwrap_or(&[])).unwrap_or("?")
    }

    pub fn set_name(&mut self, name: &str) {
        self.name = [0; 16];
        for (slot, byte) in self.name.iter_mut().zip(name.bytes()) {
            *slot = byte;
        }
    }
}
