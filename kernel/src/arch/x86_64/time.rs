//! Time: the reference clock (HPET, or the ACPI PM timer) and the calibrated TSC.
//!
//! The reference clock has a known frequency; everything else (the TSC, the LAPIC timer)
//! is measured against it once at boot.

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;

use super::{cpu, paging};

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static TSC_PER_MICRO_MILLIS: AtomicU64 = AtomicU64::new(0); // TSC ticks per µs, times 1000
/// 1000 / the rate above, for converting without a 128-bit division at every switch.
static TSC_TO_MICROS: spin::Once<kcore::scale::Scale> = spin::Once::new();

pub fn set_boot_tsc(tsc: u64) {
    BOOT_TSC.store(tsc, Ordering::Relaxed);
}

/// Microseconds since the first boot instruction; 0 until the TSC is calibrated.
pub fn micros_since_boot() -> u64 {
    let rate = TSC_PER_MICRO_MILLIS.load(Ordering::Relaxed);
    if rate == 0 {
        return 0;
    }
    let elapsed = cpu::rdtsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed));
    match TSC_TO_MICROS.get() {
        Some(scale) => scale.apply(elapsed),
        // A TSC of 1 MHz or less: no fixed-point scale; the division is exact all the same.
        None => (u128::from(elapsed) * 1000 / u128::from(rate)) as u64,
    }
}

#[cfg_attr(not(feature = "ktest"), allow(dead_code, reason = "used by the in-QEMU tests"))]
pub fn tsc_khz() -> u64 {
    TSC_PER_MICRO_MILLIS.load(Ordering::Relaxed)
}

#[derive(Clone, Copy, Debug)]
pub enum RefClock {
    Hpet { registers: u64, femtos_per_tick: u64 },
    PmTimer { port: u16, wide: bool },
}

const PM_TIMER_HZ: u64 = 3_579_545;

impl RefClock {
    /// Prefers the HPET; falls back to the PM timer.
    pub fn new(hpet: Option<u64>, pm_timer: Option<(u16, bool)>) -> Option<Self> {
        if let Some(base) = hpet
            && let Ok(registers) = paging::map_mmio(base, 0x400) {
                let capabilities = read_hpet(registers, 0);
                let femtos_per_tick = capabilities >> 32;
                // The specification bounds the period by 100 ns.
                if femtos_per_tick != 0 && femtos_per_tick <= 100_000_000 {
                    let config = read_hpet(registers, 0x10);
                    write_hpet(registers, 0x10, config | 1); // ENABLE_CNF
                    return Some(RefClock::Hpet { registers, femtos_per_tick });
                }
            }
        pm_timer.map(|(port, wide)| RefClock::PmTimer { port, wide })
    }

    pub fn name(&self) -> &'static str {
        match self {
            RefClock::Hpet { .. } => "HPET",
            RefClock::PmTimer { .. } => "ACPI PM timer",
        }
    }

    /// The clock's frequency in Hz.
    pub fn hz(&self) -> u64 {
        match *self {
            RefClock::Hpet { femtos_per_tick, .. } => 1_000_000_000_000_000 / femtos_per_tick,
            RefClock::PmTimer { .. } => PM_TIMER_HZ,
        }
    }

    fn counter(&self) -> u64 {
        match *self {
            RefClock::Hpet { registers, .. } => read_hpet(registers, 0xf0),
            RefClock::PmTimer { port, wide } => {
                let mut port = Port::<u32>::new(port);
                // SAFETY: the FADT names this port as the PM timer; reading it has no side
                // effects.
                let value = unsafe { port.read() };
                u64::from(if wide { value } else { value & 0x00ff_ffff })
            }
        }
    }

    fn mask(&self) -> u64 {
        match *self {
            RefClock::Hpet { .. } => u64::MAX,
            RefClock::PmTimer { wide: true, .. } => 0xffff_ffff,
            RefClock::PmTimer { wide: false, .. } => 0x00ff_ffff,
        }
    }

    /// Busy-waits for `micros`, calling `during` once at the start, and returns the exact
    /// elapsed time in reference ticks (at least `micros` worth).
    pub fn wait_micros(&self, micros: u64) -> u64 {
        let ticks = self.hz() * micros / 1_000_000;
        let start = self.counter();
        loop {
            let elapsed = self.counter().wrapping_sub(start) & self.mask();
            if elapsed >= ticks {
                return elapsed;
            }
            core::hint::spin_loop();
        }
    }

    /// Measures the TSC against this clock over `micros`, and stores the rate.
    pub fn calibrate_tsc(&self, micros: u64) -> u64 {
        let tsc_start = cpu::rdtsc();
        let elapsed = self.wait_micros(micros);
        let tsc = cpu::rdtsc() - tsc_start;
        let elapsed_micros_x1000 = elapsed * 1_000_000_000 / self.hz();
        let rate = (u128::from(tsc) * 1_000_000 / u128::from(elapsed_micros_x1000.max(1))) as u64;
        TSC_PER_MICRO_MILLIS.store(rate.max(1), Ordering::Relaxed);
        if let Some(scale) = kcore::scale::Scale::new(1000, rate) {
            TSC_TO_MICROS.call_once(|| scale);
        }
        rate
    }
}

fn read_hpet(registers: u64, offset: u64) -> u64 {
    // SAFETY: `registers` maps the HPET's 1 KiB register block (uncached); `offset` is one
    // of its 8-byte-aligned registers, and reading it has no side effects.
    unsafe { core::ptr::read_volatile((registers + offset) as *const u64) }
}

fn write_hpet(registers: u64, offset: u64, value: u64) {
    // SAFETY: as in `read_hpet`; the only write is the general configuration register.
    unsafe { core::ptr::write_volatile((registers + offset) as *mut u64, value) }
}
