//! The scheduler: fixed priorities, round-robin within a priority, CPU budgets, and the
//! thread lifecycle (spawn, block, wake, exit, fault).
//!
//! Priorities run from 0 (lowest) to 31 (highest); the highest ready thread runs. Threads
//! of equal priority share the CPU in time slices of [`SLICE_TICKS`] timer ticks. A thread
//! with a [`Budget`] may run `budget_us` per `period_us`; when it has used them it is
//! throttled (not runnable) until its period ends, whatever its priority. The idle thread
//! (slot 0, the boot context) runs when nothing else can and halts the CPU.
//!
//! # CPU time, to the microsecond
//! The running thread is charged the TSC time since it was last charged at every switch
//! and every timer interrupt, so blocking just before a tick saves it nothing. The LAPIC
//! timer is one-shot, armed for the next periodic tick or for the moment the running
//! thread's budget runs out, whichever is sooner ([`Scheduler::arm_timer`]): a budget is
//! overrun by the time one interrupt takes, not by a tick. Budgets cannot be created: a
//! budgeted thread gives others a share of its own ([`configure`]), and a thread it creates
//! has none until then.
//!
//! The kernel is not preemptible: it runs with interrupts off except in the idle loop, so
//! one lock over the scheduler state suffices on one CPU. Switching happens outside it.

use spin::Mutex;

use crate::arch::context::{self, switch_to};
use crate::arch::idt::{TrapFrame, trap_return};
use crate::arch::{gdt, paging, syscall};
use crate::mm;
use crate::arch::{apic, time};
use crate::thread::{BlockedOn, Budget, Donation, Exit, MAX_THREADS, PRIORITIES, State, Thread, ThreadId, KERNEL_STACK_PAGES};
use abi::syscall::budget::{MAX_PERIOD_US, MIN_US as MIN_BUDGET_US};
use kcore::queue::{Links, WaitQueue};

/// The run queues' links: each thread's `next_ready`.
pub(crate) struct ReadyLinks<'a>(pub(crate) &'a mut [Thread; MAX_THREADS]);

impl Links for ReadyLinks<'_> {
    fn next(&self, id: u16) -> Option<u16> {
        self.0.get(usize::from(id)).and_then(|thread| thread.next_ready).map(|next| next.0)
    }
    fn set_next(&mut self, id: u16, next: Option<u16>) {
        if let Some(thread) = self.0.get_mut(usize::from(id)) {
            thread.next_ready = next.map(ThreadId);
        }
    }
}

/// Endpoint and notification queues' links: each thread's `next_waiting`.
pub(crate) struct WaitLinks<'a>(pub(crate) &'a mut [Thread; MAX_THREADS]);

impl Links for WaitLinks<'_> {
    fn next(&self, id: u16) -> Option<u16> {
        self.0.get(usize::from(id)).and_then(|thread| thread.next_waiting).map(|next| next.0)
    }
    fn set_next(&mut self, id: u16, next: Option<u16>) {
        if let Some(thread) = self.0.get_mut(usize::from(id)) {
            thread.next_waiting = next.map(ThreadId);
        }
    }
}

/// The running thread's capability space index (`NO_CSPACE`: none), kept beside the
/// scheduler so that every syscall's cap lookup takes one lock, not two.
static CURRENT_CSPACE: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(NO_CSPACE);
const NO_CSPACE: u32 = u32::MAX;

/// The running thread's capability space.
pub fn current_cspace() -> Option<kcore::cap::SpaceId> {
    let index = CURRENT_CSPACE.load(core::sync::atomic::Ordering::Relaxed);
    u16::try_from(index).ok().map(kcore::cap::SpaceId::new)
}

fn set_current_cspace(space: Option<kcore::cap::SpaceId>) {
    CURRENT_CSPACE.store(space.map_or(NO_CSPACE, |s| u32::from(s.index())), core::sync::atomic::Ordering::Relaxed);
}

/// Timer ticks a thread runs before others of its priority get a turn.
pub const SLICE_TICKS: u32 = 5;

pub struct Scheduler {
    pub(crate) threads: [Thread; MAX_THREADS],
    pub(crate) endpoints: crate::ipc::Endpoints,
    pub(crate) notifications: crate::ipc::Notifications,
    /// The ready threads of each priority, linked through `Thread::next_ready`.
    run_queues: [WaitQueue; PRIORITIES],
    /// Bit `p` is set exactly when the queue of priority `p` is not empty.
    ready: u32,
    current: ThreadId,
    ticks: u64,
    kernel_pml4: u64,
    /// When the next periodic tick is due (µs since boot; 0 until the first interrupt).
    next_tick_us: u64,
    /// When the running thread was last charged for its CPU time (µs since boot).
    charged_until_us: u64,
    /// The moment the one-shot timer is armed for (µs since boot; 0: not armed, it fired).
    armed_until_us: u64,
}

static SCHED: Mutex<Scheduler> = Mutex::new(Scheduler {
    threads: [Thread::EMPTY; MAX_THREADS],
    endpoints: crate::ipc::Endpoints::EMPTY,
    notifications: crate::ipc::Notifications::EMPTY,
    run_queues: [WaitQueue::EMPTY; PRIORITIES],
    ready: 0,
    current: ThreadId::IDLE,
    ticks: 0,
    kernel_pml4: 0,
    next_tick_us: 0,
    charged_until_us: 0,
    armed_until_us: 0,
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnError {
    NoFreeThread,
    OutOfMemory,
    BadPriority,
}

impl Scheduler {
    pub(crate) fn current(&self) -> ThreadId {
        self.current
    }

    #[allow(clippy::indexing_slicing, reason = "id % MAX_THREADS is in range")]
    pub(crate) fn thread(&mut self, id: ThreadId) -> &mut Thread {
        // Thread ids are only made from indices below MAX_THREADS.
        &mut self.threads[id.index() % MAX_THREADS]
    }

    pub(crate) fn enqueue(&mut self, id: ThreadId) {
        let priority = usize::from(self.thread(id).priority) % PRIORITIES;
        self.thread(id).state = State::Ready;
        let Scheduler { threads, run_queues, ready, .. } = self;
        if let Some(queue) = run_queues.get_mut(priority) {
            queue.push_back(&mut ReadyLinks(threads), id.0);
            *ready |= 1 << priority;
        }
    }

    fn dequeue_highest(&mut self) -> Option<ThreadId> {
        let priority = self.highest_ready_priority()?;
        let Scheduler { threads, run_queues, ready, .. } = self;
        let queue = run_queues.get_mut(priority)?;
        let head = queue.pop_front(&mut ReadyLinks(threads));
        if queue.is_empty() {
            *ready &= !(1 << priority);
        }
        head.map(ThreadId)
    }

    /// One instruction (`lzcnt`/`bsr`) instead of a scan over 32 queues.
    fn highest_ready_priority(&self) -> Option<usize> {
        (self.ready != 0).then(|| 31 - self.ready.leading_zeros() as usize)
    }

    /// Charges the running thread for the CPU time since it was last charged.
    fn charge_current(&mut self, now: u64) {
        let elapsed = now.saturating_sub(self.charged_until_us);
        self.charged_until_us = now;
        let current = self.current;
        let thread = self.thread(current);
        thread.cpu_used_us = thread.cpu_used_us.saturating_add(elapsed);
        if thread.budget.is_some() {
            thread.used_us = thread.used_us.saturating_add(elapsed);
        }
    }

    /// Whether thread `id` has used its budget for this period (never, without one).
    fn exhausted(&mut self, id: ThreadId) -> bool {
        let thread = self.thread(id);
        thread.budget.is_some_and(|budget| thread.used_us >= budget.budget_us)
    }

    /// Whether thread `id` has lent part of its budget to a thread that is still alive.
    fn has_live_borrowers(&mut self, id: ThreadId) -> bool {
        let generation = self.thread(id).generation;
        self.threads.iter().any(|thread| {
            !matches!(thread.state, State::Free | State::Dead)
                && thread.donation.is_some_and(|d| d.donor == id && d.generation == generation)
        })
    }

    /// Arms the timer for the running thread: the next periodic tick, or the moment its
    /// budget runs out if that is sooner.
    fn arm_timer(&mut self, now: u64) {
        let current = self.current;
        let next_tick = self.next_tick_us;
        let thread = self.thread(current);
        let mut deadline = next_tick;
        if let Some(budget) = thread.budget {
            deadline = deadline.min(now.saturating_add(budget.budget_us.saturating_sub(thread.used_us)));
        }
        // Already armed for this very moment (a switch between threads without budgets: the
        // next tick either way): the LAPIC write would change nothing, and on hardware (a VM
        // exit, under a hypervisor) it is the dearest instruction of a switch.
        if deadline == self.armed_until_us && deadline > now {
            return;
        }
        self.armed_until_us = deadline;
        apic::arm_in(deadline.saturating_sub(now));
    }

    /// Thread `id` ends or gets another budget: the share it was given goes back to its
    /// donor, if the donor is still the same thread and still has a budget; only the part
    /// `id` still holds, in proportion (what it lent on stays with its borrowers, whose
    /// loans then go nowhere when they end: `id`'s slot is dead or has a new generation).
    fn return_donation(&mut self, id: ThreadId) {
        let held = self.thread(id).budget.map_or(0, |budget| budget.budget_us);
        let Some(Donation { donor, generation, budget_us, granted_us }) = self.thread(id).donation.take() else { return };
        let kept = u128::from(budget_us) * u128::from(held.min(granted_us)) / u128::from(granted_us.max(1));
        let budget_us = u64::try_from(kept).unwrap_or(0).min(budget_us);
        if donor.index() >= MAX_THREADS || donor == id {
            return;
        }
        let giver = self.thread(donor);
        if giver.generation != generation || matches!(giver.state, State::Free | State::Dead) {
            return; // the donor is gone: the time goes nowhere, it is never created
        }
        if let Some(budget) = &mut giver.budget {
            budget.budget_us = budget.budget_us.saturating_add(budget_us);
        }
    }
}

/// Makes the running boot context the idle thread.
pub fn init(kernel_pml4: u64, xsave: bool) {
    context::init(xsave);
    let mut sched = SCHED.lock();
    sched.kernel_pml4 = kernel_pml4;
    let idle = sched.thread(ThreadId::IDLE);
    idle.state = State::Running;
    idle.set_name("idle");
}

/// Runs `f` on the scheduler state (threads, endpoints, notifications).
pub fn with_sched<R>(f: impl FnOnce(&mut Scheduler) -> R) -> R {
    f(&mut SCHED.lock())
}

pub fn current() -> ThreadId {
    SCHED.lock().current
}

/// Runs `f` on the current thread's record.
pub fn with_current<R>(f: impl FnOnce(&mut Thread) -> R) -> R {
    let mut sched = SCHED.lock();
    let current = sched.current;
    f(sched.thread(current))
}

fn free_slot(sched: &mut Scheduler) -> Result<ThreadId, SpawnError> {
    let current = sched.current;
    let reusable = |thread: &Thread| {
        thread.state == State::Free || (thread.state == State::Dead && thread.orphaned && !thread.dying)
    };
    let index = (1..MAX_THREADS)
        .find(|&index| index != current.index() && sched.threads.get(index).is_some_and(reusable))
        .ok_or(SpawnError::NoFreeThread)?;
    let id = ThreadId(index as u16);
    let stale_fpu = core::mem::take(&mut sched.thread(id).fpu_frame);
    if stale_fpu != 0 {
        // An orphaned dead thread's state: nothing will restore it again.
        let _ = mm::free_frame(stale_fpu);
    }
    if sched.thread(id).kernel_stack_top == 0 {
        let (_, top) = paging::allocate_stack(KERNEL_STACK_PAGES).map_err(|_| SpawnError::OutOfMemory)?;
        sched.thread(id).kernel_stack_top = top;
    }
    Ok(id)
}

pub struct UserStart {
    pub pml4: u64,
    pub owns_space: bool,
    pub cspace: Option<kcore::cap::SpaceId>,
    pub entry: u64,
    pub stack: u64,
    pub argument: u64,
    pub argument2: u64,
    pub priority: u8,
    pub budget: Option<Budget>,
    /// User address of the IPC buffer page (0: none).
    pub ipc_buffer: u64,
}

/// A new user thread, ready to run.
pub fn spawn_user(name: &str, start: UserStart) -> Result<ThreadId, SpawnError> {
    if usize::from(start.priority) >= PRIORITIES {
        return Err(SpawnError::BadPriority);
    }
    let fpu_frame = mm::allocate_frame().map_err(|_| SpawnError::OutOfMemory)?;
    let mut sched = SCHED.lock();
    let id = match free_slot(&mut sched) {
        Ok(id) => id,
        Err(error) => {
            drop(sched);
            let _ = mm::free_frame(fpu_frame);
            return Err(error);
        }
    };
    // SAFETY: a fresh zeroed frame, reachable through the direct map, owned by this thread.
    unsafe { context::init_fpu_area(mm::phys_to_virt(fpu_frame) as *mut u8) };
    let now = time::micros_since_boot();
    let thread = sched.thread(id);
    let top = thread.kernel_stack_top;
    let generation = thread.generation.wrapping_add(1);
    let frame_address = top - core::mem::size_of::<TrapFrame>() as u64;
    let frame = TrapFrame {
        rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: start.argument2, rdi: start.argument, rbp: 0,
        r8: 0, r9: 0, r10: 0, r11: 0, r12: 0, r13: 0, r14: 0, r15: 0,
        vector: 0, error_code: 0,
        rip: start.entry,
        cs: gdt::USER_CODE_SELECTOR,
        rflags: syscall::sanitize_user_flags(0),
        rsp: start.stack,
        ss: gdt::USER_DATA_SELECTOR,
    };
    // SAFETY: the top of this slot's kernel stack is mapped, and the slot is free, so
    // nothing else uses the stack.
    unsafe { core::ptr::write(frame_address as *mut TrapFrame, frame) };
    // SAFETY: as above, for the seven words below the frame.
    let saved_rsp = unsafe { context::prepare_stack(frame_address, trap_return as *const () as u64) };
    *thread = Thread {
        state: State::Free,
        kernel_stack_top: top,
        saved_rsp,
        pml4: start.pml4,
        owns_space: start.owns_space,
        cspace: start.cspace,
        fpu_frame,
        priority: start.priority,
        budget: start.budget,
        period_start_us: now,
        ipc_buffer: start.ipc_buffer,
        owns_cspace: true,
        generation,
        ..Thread::EMPTY
    };
    thread.set_name(name);
    sched.enqueue(id);
    Ok(id)
}

/// A new kernel thread running `entry`, ready to run.
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn spawn_kernel(name: &str, entry: extern "C" fn() -> !, priority: u8) -> Result<ThreadId, SpawnError> {
    let mut sched = SCHED.lock();
    let id = free_slot(&mut sched)?;
    let thread = sched.thread(id);
    let top = thread.kernel_stack_top;
    // Entered by `ret`, so the stack must look as after a `call`: rsp = 8 mod 16.
    // SAFETY: the slot is free, so its kernel stack is unused and mapped.
    let saved_rsp = unsafe { context::prepare_stack(top - 8, entry as usize as u64) };
    let generation = thread.generation.wrapping_add(1);
    *thread = Thread { state: State::Free, kernel_stack_top: top, saved_rsp, priority: priority % PRIORITIES as u8, generation, ..Thread::EMPTY };
    thread.set_name(name);
    sched.enqueue(id);
    Ok(id)
}

/// Gives up the CPU to the best ready thread (possibly the caller again).
pub fn yield_now() {
    {
        let mut sched = SCHED.lock();
        let current = sched.current;
        if current != ThreadId::IDLE && sched.thread(current).state == State::Running {
            sched.enqueue(current);
        }
        sched.thread(current).slice_used = 0;
    }
    schedule();
}

/// Switches to the best ready thread. The caller has already put the current thread where
/// it belongs (ready queue, blocked, dead); if it is still `Running` it keeps the CPU
/// unless a higher-priority thread is ready.
pub fn schedule() {
    let switch = {
        let mut sched = SCHED.lock();
        let current = sched.current;
        if sched.thread(current).state == State::Running {
            let mine = usize::from(sched.thread(current).priority);
            match sched.highest_ready_priority() {
                // Preempted by a better thread: it keeps its place at the head of its queue.
                Some(best) if best > mine || current == ThreadId::IDLE => sched.enqueue_front_unless_idle(current),
                _ => return,
            }
        }
        // A thread whose budget ran out waits for its next period, however high its priority.
        let mut next = ThreadId::IDLE;
        for _ in 0..MAX_THREADS {
            let Some(candidate) = sched.dequeue_highest() else { break };
            if sched.exhausted(candidate) {
                sched.thread(candidate).state = State::Throttled;
                crate::denials::budget_overrun(candidate, sched.thread(candidate).cspace);
                continue;
            }
            next = candidate;
            break;
        }
        sched.thread(next).state = State::Running;
        sched.prepare_switch(next)
    };
    if let Some(switch) = switch {
        perform_switch(switch);
    }
}

/// What a context switch needs, gathered under the scheduler lock and used after it.
#[derive(Clone, Copy)]
struct Switch {
    save: *mut u64,
    resume: u64,
    next_top: u64,
    next_pml4: u64,
    old_fpu: u64,
    new_fpu: u64,
}

impl Scheduler {
    /// Makes `next` (already marked running, not queued) the current thread. The caller
    /// has put the outgoing thread where it belongs. `None` if `next` is the current one.
    fn prepare_switch(&mut self, next: ThreadId) -> Option<Switch> {
        if next == self.current {
            return None;
        }
        Some(self.begin_switch(next))
    }

    /// [`Scheduler::prepare_switch`] to a thread that is not the current one.
    fn begin_switch(&mut self, next: ThreadId) -> Switch {
        let current = self.current;
        let now = time::micros_since_boot();
        self.charge_current(now);
        self.current = next;
        self.arm_timer(now);
        let kernel_pml4 = self.kernel_pml4;
        let old_fpu = self.thread(current).fpu_frame;
        let save = &raw mut self.thread(current).saved_rsp;
        let thread = self.thread(next);
        set_current_cspace(thread.cspace);
        let next_pml4 = if thread.pml4 != 0 { thread.pml4 } else { kernel_pml4 };
        Switch { save, resume: thread.saved_rsp, next_top: thread.kernel_stack_top, next_pml4, old_fpu, new_fpu: thread.fpu_frame }
    }
}

/// A switch the IPC fast path decided (see [`Scheduler::switch_directly`]).
pub struct DirectSwitch(Switch);

impl Scheduler {
    /// Whether running `target` next, once it is woken and the current thread blocks, is
    /// what [`schedule`] would choose: it has budget left, and no ready thread has its
    /// priority or a higher one (one of the same priority would be ahead of it).
    pub(crate) fn can_switch_directly(&mut self, target: ThreadId) -> bool {
        let priority = usize::from(self.thread(target).priority);
        !self.exhausted(target) && self.highest_ready_priority().is_none_or(|best| best < priority)
    }

    /// Makes `target` the running thread without the run queue (the caller has blocked the
    /// current thread, and checked that `target` is another thread and
    /// [`Scheduler::can_switch_directly`]): the same charge,
    /// timer and cspace bookkeeping as [`schedule`].
    pub(crate) fn switch_directly(&mut self, target: ThreadId) -> DirectSwitch {
        self.thread(target).state = State::Running;
        DirectSwitch(self.begin_switch(target))
    }
}

/// Enters the thread [`Scheduler::switch_directly`] chose through its trap frame, parking
/// the current thread so that it resumes in `trap_return` on `own_frame` (its syscall is
/// over: the outcome will be written into that frame). Call without the scheduler lock.
pub fn perform_direct_switch(switch: DirectSwitch, own_frame: &mut TrapFrame) -> ! {
    let DirectSwitch(switch) = switch;
    let save = switch.save;
    let target_frame = switch.next_top - core::mem::size_of::<TrapFrame>() as u64;
    enter_thread(&switch);
    // SAFETY: `save` is the current thread's record in the static table; `own_frame` is
    // its trap frame at the top of its kernel stack, whose seven words below are part of
    // this syscall's own call chain, abandoned here; `target_frame` is the target's trap
    // frame, a syscall frame holding its outcome, on its own kernel stack (now loaded as
    // the interrupt and syscall stack), in the address space just loaded.
    unsafe { context::switch_to_user(save, own_frame as *mut TrapFrame as u64, target_frame, trap_return as *const () as u64) }
}

/// Switches to the thread `prepare_switch` chose. Call without the scheduler lock held.
fn perform_switch(switch: Switch) {
    enter_thread(&switch);
    // SAFETY: `save` points into the static thread table (stable, and only this thread's
    // record); `resume` was parked by `switch_to` or prepared by a spawn, on the next
    // thread's own kernel stack.
    unsafe { switch_to(switch.save, switch.resume) };
}

/// Everything of a switch but the stack: kernel stacks, address space, FPU state.
fn enter_thread(switch: &Switch) {
    let Switch { next_top, next_pml4, old_fpu, new_fpu, .. } = *switch;
    if next_top != 0 {
        gdt::set_interrupt_stack(next_top);
        syscall::set_kernel_stack(next_top);
    }
    if crate::arch::active_address_space() != next_pml4 {
        // SAFETY: every address space maps the kernel identically in its upper half, so
        // the kernel keeps running across the switch; `next_pml4` is a live space (spaces
        // are destroyed only after their last thread is switched away from).
        unsafe { crate::arch::load_address_space(next_pml4) };
    }
    if old_fpu != 0 {
        // SAFETY: a frame owned by the outgoing thread, page aligned, in the direct map.
        unsafe { context::save_fpu(mm::phys_to_virt(old_fpu) as *mut u8) };
    }
    if new_fpu != 0 {
        // SAFETY: the incoming thread's frame, holding state saved by `save_fpu` or made by
        // `init_fpu_area`.
        unsafe { context::restore_fpu(mm::phys_to_virt(new_fpu) as *const u8) };
    }
}

impl Scheduler {
    fn enqueue_front_unless_idle(&mut self, id: ThreadId) {
        if id == ThreadId::IDLE {
            return;
        }
        let priority = usize::from(self.thread(id).priority) % PRIORITIES;
        self.thread(id).state = State::Ready;
        let Scheduler { threads, run_queues, ready, .. } = self;
        if let Some(queue) = run_queues.get_mut(priority) {
            queue.push_front(&mut ReadyLinks(threads), id.0);
            *ready |= 1 << priority;
        }
    }
}

/// The timer interrupt: charge the running thread, account the periodic ticks that are
/// due, replenish budgets, and preempt when the slice is over, the budget is spent or a
/// better thread is ready. Re-arms the one-shot timer before anything else can switch.
pub fn on_timer() {
    let reschedule = {
        let mut sched = SCHED.lock();
        // The one-shot timer fired: nothing is armed until `arm_timer` below.
        sched.armed_until_us = 0;
        let now = time::micros_since_boot();
        sched.charge_current(now);
        let period = apic::tick_micros().max(1);
        if sched.next_tick_us == 0 {
            sched.next_tick_us = now;
        }
        // Ticks due (more than one if interrupts were off for long; bounded all the same).
        let mut due = 0u64;
        while now >= sched.next_tick_us && due < 1000 {
            sched.next_tick_us = sched.next_tick_us.saturating_add(period);
            due += 1;
        }
        if now >= sched.next_tick_us {
            sched.next_tick_us = now.saturating_add(period);
        }
        let mut reschedule = due > 0 && tick(&mut sched, now, due);
        let current = sched.current;
        if current != ThreadId::IDLE && sched.thread(current).state == State::Running && sched.exhausted(current) {
            sched.thread(current).state = State::Throttled;
            crate::denials::budget_overrun(current, sched.thread(current).cspace);
            reschedule = true;
        }
        sched.arm_timer(now);
        reschedule || (due > 0 && sched.highest_ready_priority().is_some())
    };
    if reschedule {
        schedule();
    }
}

/// `due` periodic ticks have passed (`now` µs since boot): sleepers and timeouts wake,
/// periods end and budgets refill, the running thread's slice advances. True if the
/// running thread must give up the CPU.
fn tick(sched: &mut Scheduler, now: u64, due: u64) -> bool {
    apic::count_ticks(due);
    sched.ticks = sched.ticks.saturating_add(due);
    let ticks = sched.ticks;
    let current = sched.current;
    let mut reschedule = false;
    sched.thread(current).ticks_run += due;
    for index in 1..MAX_THREADS {
        let id = ThreadId(index as u16);
        let thread = sched.thread(id);
        if thread.state == State::Blocked && matches!(thread.blocked_on, BlockedOn::Tick(at) if at <= ticks) {
            thread.blocked_on = BlockedOn::Nothing;
            sched.enqueue(id);
            continue;
        }
        if thread.state == State::Blocked && thread.deadline.is_some_and(|at| at <= ticks) {
            crate::ipc::time_out(sched, id);
            continue;
        }
        let Some(budget) = thread.budget else { continue };
        if now.saturating_sub(thread.period_start_us) >= budget.period_us.max(1) {
            thread.period_start_us = now;
            thread.used_us = 0;
            if thread.state == State::Throttled && id != current && budget.budget_us > 0 {
                sched.enqueue(id);
            }
        }
    }
    if sched.thread(current).state == State::Throttled && !sched.exhausted(current) {
        // Its new period began at this very interrupt: it may go on.
        sched.thread(current).state = State::Running;
    }
    // The slice belongs to the thread, not the CPU: direct IPC switches do not reset it,
    // so two threads calling each other cannot starve their peers.
    let thread = sched.thread(current);
    thread.slice_used = thread.slice_used.saturating_add(due as u32);
    if thread.slice_used >= SLICE_TICKS && current != ThreadId::IDLE && thread.state == State::Running {
        thread.slice_used = 0;
        sched.enqueue(current);
        reschedule = true;
    }
    reschedule
}

/// Ends the current thread with `exit`, waking whoever waits for it. Never returns.
pub fn exit_current(exit: Exit) -> ! {
    let current = current();
    let kernel_pml4 = SCHED.lock().kernel_pml4;
    // Leave the dying space first: the kernel half is the same everywhere.
    // SAFETY: the kernel's own tables map everything the kernel uses, and live forever.
    unsafe { crate::arch::load_address_space(kernel_pml4) };
    end_thread(current, exit);
    schedule();
    // A dead thread is never scheduled again.
    crate::arch::halt_forever()
}

/// Ends thread `id` (the caller, or one that is not running): it leaves every queue, its
/// own space and cspace go, waiters and its fault endpoint hear of it.
fn end_thread(id: ThreadId, exit: Exit) {
    let (pml4, owns_space, cspace) = {
        let mut sched = SCHED.lock();
        remove_ready(&mut sched, id);
        crate::ipc::forget_thread(&mut sched, id);
        let is_current = id == sched.current;
        sched.return_donation(id);
        let thread = sched.thread(id);
        thread.state = State::Dead;
        thread.exit = Some(exit);
        thread.blocked_on = BlockedOn::Nothing;
        thread.deadline = None;
        let owned = (thread.pml4, thread.owns_space, if thread.owns_cspace { thread.cspace.take() } else { None });
        thread.cspace = None;
        if is_current {
            set_current_cspace(None);
        }
        if owned.1 {
            thread.pml4 = 0;
        }
        for index in 1..MAX_THREADS {
            let waiter = ThreadId(index as u16);
            if sched.thread(waiter).state == State::Blocked && sched.thread(waiter).blocked_on == BlockedOn::Exit(id) {
                sched.thread(waiter).blocked_on = BlockedOn::Nothing;
                sched.enqueue(waiter);
            }
        }
        if let Some((endpoint, badge)) = sched.thread(id).fault_endpoint {
            crate::ipc::report_end(&mut sched, id, endpoint, badge, exit);
        }
        owned
    };
    if owns_space && pml4 != 0 && !crate::vspace::is_object(pml4) {
        crate::vspace::destroy(pml4, true);
    }
    if let Some(cspace) = cspace {
        crate::object::destroy_space(cspace);
    }
}

fn remove_ready(sched: &mut Scheduler, id: ThreadId) {
    if sched.thread(id).state != State::Ready {
        return;
    }
    let priority = usize::from(sched.thread(id).priority) % PRIORITIES;
    let Scheduler { threads, run_queues, ready, .. } = sched;
    if let Some(queue) = run_queues.get_mut(priority) {
        queue.remove(&mut ReadyLinks(threads), id.0);
        if queue.is_empty() {
            *ready &= !(1 << priority);
        }
    }
}

/// `ObjectCreate(Thread)`: a thread slot, not started.
pub fn create_thread() -> Result<ThreadId, abi::ErrorCode> {
    let fpu_frame = mm::allocate_frame().map_err(|_| abi::ErrorCode::OutOfResources)?;
    let mut sched = SCHED.lock();
    let id = match free_slot(&mut sched) {
        Ok(id) => id,
        Err(_) => {
            drop(sched);
            let _ = mm::free_frame(fpu_frame);
            return Err(abi::ErrorCode::OutOfResources);
        }
    };
    // SAFETY: a fresh zeroed frame in the direct map, owned by this thread from now on.
    unsafe { context::init_fpu_area(mm::phys_to_virt(fpu_frame) as *mut u8) };
    let me = sched.current;
    let priority = sched.thread(me).priority;
    // A thread made by a budgeted thread has no CPU of its own until it is given a share
    // (`configure`): otherwise every thread could make unlimited ones.
    let budget = sched.thread(me).budget.map(|own| Budget { budget_us: 0, period_us: own.period_us });
    let thread = sched.thread(id);
    let top = thread.kernel_stack_top;
    let generation = thread.generation.wrapping_add(1);
    *thread = Thread { state: State::Inactive, kernel_stack_top: top, fpu_frame, priority, budget, generation, ..Thread::EMPTY };
    thread.set_name("thread");
    Ok(id)
}

/// `ThreadStart`: gives an inactive thread its spaces and registers and makes it ready.
pub fn start_thread(id: ThreadId, pml4: u64, cspace: kcore::cap::SpaceId, entry: u64, stack: u64, ipc_buffer: u64) -> Result<(), abi::ErrorCode> {
    let mut sched = SCHED.lock();
    if id.index() >= MAX_THREADS || sched.thread(id).state != State::Inactive {
        return Err(abi::ErrorCode::IllegalOperation);
    }
    let now = time::micros_since_boot();
    let thread = sched.thread(id);
    let frame_address = thread.kernel_stack_top - core::mem::size_of::<TrapFrame>() as u64;
    let frame = TrapFrame {
        rax: 0, rbx: 0, rcx: 0, rdx: 0, rsi: 0, rdi: 0, rbp: 0,
        r8: 0, r9: 0, r10: 0, r11: 0, r12: 0, r13: 0, r14: 0, r15: 0,
        vector: 0, error_code: 0,
        rip: entry,
        cs: gdt::USER_CODE_SELECTOR,
        rflags: syscall::sanitize_user_flags(0),
        rsp: stack,
        ss: gdt::USER_DATA_SELECTOR,
    };
    // SAFETY: an inactive thread's kernel stack is mapped and unused.
    unsafe { core::ptr::write(frame_address as *mut TrapFrame, frame) };
    // SAFETY: as above, for the seven words below the frame.
    thread.saved_rsp = unsafe { context::prepare_stack(frame_address, trap_return as *const () as u64) };
    thread.pml4 = pml4;
    thread.owns_space = false;
    thread.cspace = Some(cspace);
    thread.owns_cspace = false;
    thread.ipc_buffer = ipc_buffer;
    thread.period_start_us = now;
    sched.enqueue(id);
    Ok(())
}

/// `ThreadConfigure`: priority (at most the caller's), budget, fault endpoint.
///
/// Budgets are in microseconds and mean what they say (see the module documentation). A
/// caller without a budget (init, the kernel's own threads) may give any budget or none. A
/// caller with one gives the target a share of its own: the same fraction of the CPU, in
/// the caller's period and rounded up, is taken out of the caller's budget, which must keep
/// at least the minimum (`InsufficientRights` otherwise), and goes back when the target
/// ends or is configured again. Such a caller can never give "no budget"
/// (`InsufficientRights`), and may configure itself only to a smaller fraction, nor give a
/// new budget to a thread whose borrowers are alive. When a thread ends, its donor gets
/// back only the part of the share it still holds (not what it lent on).
pub fn configure(id: ThreadId, priority: u64, budget_micros: u64, period_micros: u64, fault: Option<(u16, u64)>) -> Result<(), abi::ErrorCode> {
    use abi::ErrorCode;
    let mut sched = SCHED.lock();
    if id.index() >= MAX_THREADS || matches!(sched.thread(id).state, State::Free | State::Dead) {
        return Err(ErrorCode::IllegalOperation);
    }
    let me = sched.current;
    let mine = u64::from(sched.thread(me).priority);
    if priority >= PRIORITIES as u64 {
        return Err(ErrorCode::InvalidArgument);
    }
    if priority > mine {
        return Err(ErrorCode::InsufficientRights);
    }
    let requested = match (budget_micros, period_micros) {
        (0, 0) => None,
        (budget, period) if budget < MIN_BUDGET_US || budget > period || period > MAX_PERIOD_US => {
            return Err(ErrorCode::InvalidArgument);
        }
        (budget_us, period_us) => Some(Budget { budget_us, period_us }),
    };
    // What the caller gives out of its own budget (checks only; nothing changes yet).
    let own = sched.thread(me).budget;
    let my_generation = sched.thread(me).generation;
    let cost = match (own, requested) {
        (None, _) => None,
        (Some(_), None) => return Err(ErrorCode::InsufficientRights),
        (Some(own), Some(wanted)) if id == me => {
            // Only down: a smaller fraction of the CPU than it has.
            let more = u128::from(wanted.budget_us) * u128::from(own.period_us) > u128::from(own.budget_us) * u128::from(wanted.period_us);
            if more {
                return Err(ErrorCode::InsufficientRights);
            }
            None
        }
        (Some(own), Some(wanted)) => {
            let cost = (u128::from(wanted.budget_us) * u128::from(own.period_us)).div_ceil(u128::from(wanted.period_us));
            let cost = u64::try_from(cost).map_err(|_| ErrorCode::InsufficientRights)?;
            let held = sched.thread(id).budget.map_or(0, |budget| budget.budget_us);
            let back = sched.thread(id).donation.filter(|d| d.donor == me && d.generation == my_generation).map_or(0, |d| {
                let kept = u128::from(d.budget_us) * u128::from(held.min(d.granted_us)) / u128::from(d.granted_us.max(1));
                u64::try_from(kept).unwrap_or(0).min(d.budget_us)
            });
            if cost.saturating_add(MIN_BUDGET_US) > own.budget_us.saturating_add(back) {
                return Err(ErrorCode::InsufficientRights);
            }
            Some(cost)
        }
    };
    // A thread that lent part of its budget on cannot be given a fresh one by a budgeted
    // caller while its borrowers live: they would keep what they had on top of it.
    if own.is_some() && id != me && sched.has_live_borrowers(id) {
        return Err(ErrorCode::InsufficientRights);
    }
    if id != me {
        sched.return_donation(id);
    }
    if let Some(cost) = cost {
        if let Some(budget) = &mut sched.thread(me).budget {
            budget.budget_us = budget.budget_us.saturating_sub(cost);
        }
        let granted_us = requested.map_or(0, |budget| budget.budget_us);
        sched.thread(id).donation = Some(Donation { donor: me, generation: my_generation, budget_us: cost, granted_us });
    }
    let was_ready = sched.thread(id).state == State::Ready;
    if was_ready {
        remove_ready(&mut sched, id);
    }
    let now = time::micros_since_boot();
    let thread = sched.thread(id);
    thread.priority = priority as u8;
    if thread.budget.is_none() {
        thread.used_us = 0;
        thread.period_start_us = now;
    }
    // A thread that had a budget keeps what it used this period: configuring it again
    // must not hand it a fresh budget within the same period.
    thread.budget = requested;
    thread.fault_endpoint = fault;
    if thread.state == State::Throttled && id != me {
        // A new budget (a share, say, for a thread made with none): it may run again.
        sched.enqueue(id);
    } else if was_ready {
        sched.enqueue(id);
    }
    Ok(())
}

/// For the authority audit: thread `index`'s capability space (index + 1, or 0) and state.
pub fn audit_thread(index: u64) -> Option<(u64, u64, u64)> {
    let index = usize::try_from(index).ok().filter(|&index| index < MAX_THREADS)?;
    let mut sched = SCHED.lock();
    let thread = sched.thread(ThreadId(index as u16));
    let state = match thread.state {
        State::Free => 0,
        State::Inactive => 1,
        State::Ready => 2,
        State::Running => 3,
        State::Blocked => 4,
        State::Throttled => 5,
        State::Dead => 6,
    };
    let space = if matches!(thread.state, State::Free | State::Dead) { 0 } else { thread.cspace.map_or(0, |s| u64::from(s.index()) + 1) };
    Some((space, state, thread.cpu_used_us))
}

/// Stops thread `id` for good. Killing oneself does not return.
pub fn kill(id: ThreadId) -> Result<(), abi::ErrorCode> {
    let state = {
        let mut sched = SCHED.lock();
        if id.index() >= MAX_THREADS || id == ThreadId::IDLE {
            return Err(abi::ErrorCode::InvalidArgument);
        }
        sched.thread(id).state
    };
    match state {
        State::Free | State::Dead => Ok(()),
        _ if id == current() => exit_current(Exit::Killed),
        State::Inactive => {
            let mut sched = SCHED.lock();
            sched.return_donation(id);
            let thread = sched.thread(id);
            thread.state = State::Dead;
            thread.exit = Some(Exit::Killed);
            Ok(())
        }
        _ => {
            end_thread(id, Exit::Killed);
            Ok(())
        }
    }
}

/// Kills every thread running in `pml4` but the caller; true if the caller runs there.
pub fn kill_threads_in(pml4: u64) -> bool {
    let me = current();
    let mut current_dies = false;
    for index in 1..MAX_THREADS {
        let id = ThreadId(index as u16);
        let (state, root) = {
            let mut sched = SCHED.lock();
            let thread = sched.thread(id);
            (thread.state, thread.pml4)
        };
        if root != pml4 || matches!(state, State::Free | State::Dead) {
            continue;
        }
        if id == me {
            current_dies = true;
            let kernel_pml4 = SCHED.lock().kernel_pml4;
            // SAFETY: the kernel's tables map all the kernel uses and live forever; the
            // caller's own space is about to be freed, so it must not stay loaded.
            unsafe { crate::arch::load_address_space(kernel_pml4) };
            continue;
        }
        let _ = kill(id);
    }
    if current_dies {
        with_current(|thread| thread.pml4 = 0);
    }
    current_dies
}

/// Capability space `space` is being destroyed: every thread that runs in it stops first,
/// so that no thread ever names caps through an index a new space may be given. If the
/// caller runs there, it loses the space at once and ends when its syscall has finished.
pub fn kill_threads_in_cspace(space: kcore::cap::SpaceId) {
    let me = current();
    for index in 1..MAX_THREADS {
        let id = ThreadId(index as u16);
        let (state, cspace) = {
            let mut sched = SCHED.lock();
            let thread = sched.thread(id);
            (thread.state, thread.cspace)
        };
        if cspace != Some(space) || matches!(state, State::Free | State::Dead) {
            continue;
        }
        if id == me {
            with_current(|thread| thread.cspace = None);
            set_current_cspace(None);
            doom_current();
            continue;
        }
        let _ = kill(id);
    }
}

/// Set when the running thread's own syscall destroyed its address space or its thread
/// object: the thread ends once that syscall has finished its clean-up. An atomic beside the
/// scheduler, not a thread field, so the check at the end of every syscall takes no lock.
static CURRENT_DOOMED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

pub fn doom_current() {
    CURRENT_DOOMED.store(true, core::sync::atomic::Ordering::Relaxed);
}

/// Whether the running thread must end now (and clears the mark: it is about to).
pub fn take_current_doom() -> bool {
    CURRENT_DOOMED.swap(false, core::sync::atomic::Ordering::Relaxed)
}

/// The thread object's last cap is gone: stop it and free its slot.
pub fn release(id: ThreadId) {
    if id == current() {
        // Deleting one's own last thread cap: the thread ends when its syscall has finished
        // cleaning up (its slot then stays dead until reused).
        with_current(|thread| thread.orphaned = true);
        doom_current();
        return;
    }
    let _ = kill(id);
    let mut sched = SCHED.lock();
    if id.index() >= MAX_THREADS {
        return;
    }
    crate::ipc::forget_thread(&mut sched, id);
    let thread = sched.thread(id);
    if thread.state == State::Dead {
        let fpu = core::mem::take(&mut thread.fpu_frame);
        thread.state = State::Free;
        thread.dying = false;
        drop(sched);
        if fpu != 0 {
            let _ = mm::free_frame(fpu);
        }
    }
}

/// A CPU exception in user mode: it stops only the faulting thread.
pub fn user_exception(frame: &mut TrapFrame, cr2: u64) {
    let name_buffer = with_current(|thread| thread.name);
    let len = name_buffer.iter().position(|&b| b == 0).unwrap_or(16);
    let name = core::str::from_utf8(name_buffer.get(..len).unwrap_or(&[])).unwrap_or("?");
    log::warn!(
        "user fault: thread \"{name}\": {} (vector {}), error code {:#x}, address {:#x}, RIP {:#x}",
        crate::arch::idt::vector_name(frame.vector),
        frame.vector,
        frame.error_code,
        cr2,
        frame.rip
    );
    let address = if frame.vector == 14 { cr2 } else { 0 };
    exit_current(Exit::Fault { vector: frame.vector, error_code: frame.error_code, address, rip: frame.rip })
}

/// Blocks until thread `id` is dead, then frees its slot and returns how it ended.
/// `None` if `id` names no thread.
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn join(id: ThreadId) -> Option<Exit> {
    loop {
        {
            let mut sched = SCHED.lock();
            if id.index() >= MAX_THREADS || id == ThreadId::IDLE {
                return None;
            }
            let current = sched.current;
            match sched.thread(id).state {
                State::Free => return None,
                State::Dead => {
                    crate::ipc::forget_thread(&mut sched, id);
                    let thread = sched.thread(id);
                    thread.dying = false;
                    let exit = thread.exit.take();
                    let fpu = thread.fpu_frame;
                    thread.fpu_frame = 0;
                    thread.state = State::Free;
                    drop(sched);
                    if fpu != 0 {
                        let _ = mm::free_frame(fpu);
                    }
                    return exit;
                }
                _ => {
                    let me = sched.thread(current);
                    me.state = State::Blocked;
                    me.blocked_on = BlockedOn::Exit(id);
                }
            }
        }
        schedule();
    }
}

/// How many timer ticks thread `id` has been charged with.
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn ticks_run(id: ThreadId) -> u64 {
    let mut sched = SCHED.lock();
    if id.index() >= MAX_THREADS {
        return 0;
    }
    sched.thread(id).ticks_run
}

/// Blocks the current thread for `ticks` timer ticks.
#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn sleep_ticks(ticks: u64) {
    {
        let mut sched = SCHED.lock();
        let due = sched.ticks + ticks.max(1);
        let current = sched.current;
        let me = sched.thread(current);
        me.state = State::Blocked;
        me.blocked_on = BlockedOn::Tick(due);
    }
    schedule();
}

pub(crate) fn ticks_locked(sched: &Scheduler) -> u64 {
    sched.ticks
}

#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn ticks() -> u64 {
    SCHED.lock().ticks
}

