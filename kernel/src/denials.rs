//! The kernel's record of refused authority: the last [`RECORDS`] syscalls refused for the
//! cap they named and budget overruns, for the security log (init drains it through its
//! audit cap, `AuditDenial`).
//!
//! A fixed ring: recording never blocks or allocates, a flood overwrites the oldest records,
//! and the numbers keep counting, so a reader learns how many it lost; nothing is lost
//! silently. Each process (capability space, whatever number of threads it runs) may add
//! [`BURST_PER_SECOND`] records a second; past that the kernel only counts them, and the
//! process's next record says how many, so a process that floods (a spinner overrunning its
//! budget every period, a loop of refused calls, many threads doing either) cannot push the
//! others' records out. Static tables, the same size whatever user space does: no kernel
//! memory grows with them.

use abi::ErrorCode;
use abi::syscall::denial::{BUDGET_OVERRUN, BURST_PER_SECOND, Packed, RECORDS, REFUSED_SYSCALL};
use spin::Mutex;

use kcore::cap::SpaceId;

use crate::thread::ThreadId;

/// Capability spaces the kernel can have; one more allowance for threads without one.
const SPACES: usize = abi::tables::Table::CSpaces.capacity() as usize;

#[derive(Clone, Copy)]
struct Record {
    time_us: u64,
    packed: u64,
}

/// Each process's share of the ring this second.
#[derive(Clone, Copy)]
struct Allowance {
    second_started_us: u64,
    used: u8,
    /// Records not kept since this process's last kept one.
    suppressed: u32,
}

impl Allowance {
    const FULL: Allowance = Allowance { second_started_us: 0, used: 0, suppressed: 0 };
}

struct Ring {
    records: [Record; RECORDS],
    /// The number the next record gets; how many were ever recorded.
    next: u64,
    /// By capability space index; the last for threads without a space.
    allowances: [Allowance; SPACES + 1],
}

static RING: Mutex<Ring> = Mutex::new(Ring {
    records: [Record { time_us: 0, packed: 0 }; RECORDS],
    next: 0,
    allowances: [Allowance::FULL; SPACES + 1],
});

fn push(kind: u8, syscall: u16, code: u16, thread: ThreadId, space: Option<SpaceId>) {
    let time_us = crate::arch::time::micros_since_boot();
    let mut ring = RING.lock();
    let Some(allowance) = ring.allowances.get_mut(space.map_or(SPACES, |space| usize::from(space.index()))) else { return };
    if time_us.saturating_sub(allowance.second_started_us) >= 1_000_000 {
        *allowance = Allowance { second_started_us: time_us, used: 0, ..*allowance };
    }
    if allowance.used >= BURST_PER_SECOND {
        allowance.suppressed = allowance.suppressed.saturating_add(1);
        return;
    }
    allowance.used += 1;
    let suppressed = u8::try_from(core::mem::take(&mut allowance.suppressed)).unwrap_or(u8::MAX);
    let packed = Packed { kind, syscall, code, thread: thread.0, suppressed }.pack();
    let index = (ring.next % RECORDS as u64) as usize;
    if let Some(slot) = ring.records.get_mut(index) {
        *slot = Record { time_us, packed };
    }
    ring.next = ring.next.wrapping_add(1);
}

/// Whether syscall `number`'s error `code` is a refusal of authority: the caller named a
/// slot, or used a cap, it does not hold as it claimed. Not the answers of the queries that
/// exist to look at slots: `CapIdentify` ("what is in my slot?") and `AuditCap` reporting an
/// empty or out-of-range slot of the space it audits (its own cap's refusals still count).
pub fn is_denial(number: u64, code: ErrorCode) -> bool {
    use abi::Sysno;
    let refusal = matches!(code, ErrorCode::InvalidSlot | ErrorCode::EmptySlot | ErrorCode::WrongObjectType | ErrorCode::InsufficientRights);
    let answer = match Sysno::try_from(number) {
        Ok(Sysno::CapIdentify) => true,
        Ok(Sysno::AuditCap) => matches!(code, ErrorCode::EmptySlot | ErrorCode::InvalidSlot),
        _ => false,
    };
    refusal && !answer
}

/// The running thread's syscall `number` was refused with `code`.
pub fn refused_syscall(number: u64, code: ErrorCode) {
    let (thread, space) = crate::sched::with_sched(|sched| {
        let current = sched.current();
        (current, sched.thread(current).cspace)
    });
    push(REFUSED_SYSCALL, u16::try_from(number).unwrap_or(u16::MAX), code.as_u32() as u16, thread, space);
}

/// Thread `thread`, running in `space`, used its budget and is throttled until its next
/// period.
pub fn budget_overrun(thread: ThreadId, space: Option<SpaceId>) {
    push(BUDGET_OVERRUN, 0, 0, thread, space);
}

/// Capability space `space` is gone: the process that reuses its index starts with a whole
/// allowance.
pub fn forget_space(space: SpaceId) {
    if let Some(allowance) = RING.lock().allowances.get_mut(usize::from(space.index())) {
        *allowance = Allowance::FULL;
    }
}

/// Record `number`, or the oldest still held if it was overwritten: (its number, time in
/// µs, packed); `Err(next)` if there is none yet.
pub fn read(number: u64) -> Result<(u64, u64, u64), u64> {
    let ring = RING.lock();
    if number >= ring.next {
        return Err(ring.next);
    }
    let number = number.max(ring.next.saturating_sub(RECORDS as u64));
    let record = ring.records.get((number % RECORDS as u64) as usize).copied().unwrap_or(Record { time_us: 0, packed: 0 });
    Ok((number, record.time_us, record.packed))
}
