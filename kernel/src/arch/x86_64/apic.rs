//! Interrupt controllers: the legacy PICs switched off, the local APIC and its timer.
//!
//! The LAPIC timer is calibrated against the reference clock and then runs one-shot: the
//! scheduler arms it for the next periodic tick or for the moment the running thread's CPU
//! budget runs out, whichever comes first (`sched::on_timer`). It is the scheduler's
//! preemption source. The IOAPIC is found (ACPI) but device
//! interrupts are routed only when a user-space driver holds an IRQ capability.

use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;
use x86_64::instructions::port::Port;

use super::idt::{SPURIOUS_VECTOR, TIMER_VECTOR};
use super::{paging, time::RefClock};

const SPURIOUS: u64 = 0xf0;
const TASK_PRIORITY: u64 = 0x80;
const EOI: u64 = 0xb0;
const LVT_TIMER: u64 = 0x320;
const TIMER_INITIAL: u64 = 0x380;
const TIMER_CURRENT: u64 = 0x390;
const TIMER_DIVIDE: u64 = 0x3e0;
const LVT_MASKED: u32 = 1 << 16;

static LAPIC: Once<u64> = Once::new();
static TICKS: AtomicU64 = AtomicU64::new(0);
static TICK_MICROS: AtomicU64 = AtomicU64::new(0);
/// LAPIC timer counts (divide by 16) per millisecond, from the calibration.
static COUNTS_PER_MS: AtomicU64 = AtomicU64::new(0);

fn write(register: u64, value: u32) {
    if let Some(&base) = LAPIC.get() {
        // SAFETY: `base` maps the LAPIC's 4 KiB register page uncached; `register` is one
        // of its 32-bit registers.
        unsafe { core::ptr::write_volatile((base + register) as *mut u32, value) }
    }
}

fn read(register: u64) -> u32 {
    match LAPIC.get() {
        // SAFETY: as in `write`; reading these registers has no side effects.
        Some(&base) => unsafe { core::ptr::read_volatile((base + register) as *const u32) },
        None => 0,
    }
}

/// Remaps the 8259 PICs away from the exception vectors and masks every line.
pub fn disable_legacy_pics() {
    let writes: [(u16, u8); 10] = [
        (0x20, 0x11), (0xa0, 0x11), // initialise, expect ICW4
        (0x21, 0xe0), (0xa1, 0xe8), // vector bases, far from anything we use
        (0x21, 0x04), (0xa1, 0x02), // cascade
        (0x21, 0x01), (0xa1, 0x01), // 8086 mode
        (0x21, 0xff), (0xa1, 0xff), // mask everything
    ];
    for (port, value) in writes {
        // SAFETY: ports 0x20/0x21/0xa0/0xa1 are the legacy PICs; this sequence only
        // reprograms and masks them.
        unsafe { Port::<u8>::new(port).write(value) };
    }
}

/// Maps and enables the local APIC.
pub fn init(physical_base: u64) -> Result<(), paging::PagingError> {
    let base = paging::map_mmio(physical_base, 0x1000)?;
    LAPIC.call_once(|| base);
    write(TASK_PRIORITY, 0);
    write(SPURIOUS, 0x100 | u32::from(SPURIOUS_VECTOR));
    Ok(())
}

/// Measures the LAPIC timer (divide by 16) against `clock`; returns ticks per millisecond.
pub fn calibrate_timer(clock: &RefClock) -> u64 {
    write(TIMER_DIVIDE, 0x3);
    write(LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(TIMER_INITIAL, u32::MAX);
    let elapsed = clock.wait_micros(10_000);
    let counted = u64::from(u32::MAX - read(TIMER_CURRENT));
    write(TIMER_INITIAL, 0);
    let micros = elapsed * 1_000_000 / clock.hz();
    counted * 1000 / micros.max(1)
}

/// Starts the timer: one-shot, first due one tick period from now. The tick length is
/// `period_micros`; the scheduler re-arms the timer at every interrupt ([`arm_in`]).
pub fn start_timer(counts_per_ms: u64, period_micros: u64) {
    COUNTS_PER_MS.store(counts_per_ms, Ordering::Relaxed);
    TICK_MICROS.store(period_micros, Ordering::Relaxed);
    write(TIMER_DIVIDE, 0x3);
    write(LVT_TIMER, u32::from(TIMER_VECTOR));
    arm_in(period_micros);
}

/// The timer interrupts once, `micros` from now (at least one count).
pub fn arm_in(micros: u64) {
    let per_ms = COUNTS_PER_MS.load(Ordering::Relaxed);
    // 64-bit arithmetic (a division by a constant is a multiply): a product that does not
    // fit is far beyond the 32-bit counter anyway.
    let counts = micros.checked_mul(per_ms).map_or(u64::MAX, |product| product / 1000);
    write(TIMER_INITIAL, counts.clamp(1, u64::from(u32::MAX)) as u32);
}

/// One periodic tick of the scheduler's clock has passed (for [`ticks`]).
pub fn count_ticks(ticks: u64) {
    TICKS.fetch_add(ticks, Ordering::Relaxed);
}

/// This CPU's local APIC id.
pub fn id() -> u8 {
    (read(0x20) >> 24) as u8
}

pub fn end_of_interrupt() {
    write(EOI, 0);
}

pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

pub fn tick_micros() -> u64 {
    TICK_MICROS.load(Ordering::Relaxed)
}
