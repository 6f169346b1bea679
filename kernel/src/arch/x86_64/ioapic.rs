//! The I/O APIC: routes device interrupt lines (GSIs) to vectors on this CPU.
//!
//! Every line starts masked. A line is unmasked only when a user-space driver binds its
//! IRQ-handler cap to a notification, and masked again each time it fires until the driver
//! acknowledges it, so a misbehaving device cannot flood the kernel.

use spin::Once;

use super::paging;

static BASE: Once<u64> = Once::new();

fn write(register: u32, value: u32) {
    if let Some(&base) = BASE.get() {
        // SAFETY: `base` maps the I/O APIC's register window (uncached); IOREGSEL at +0
        // selects, IOWIN at +0x10 carries the data. Single CPU, interrupts off: the
        // select/write pair is not interleaved.
        unsafe { core::ptr::write_volatile(base as *mut u32, register) };
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile((base + 0x10) as *mut u32, value) };
    }
}

fn read(register: u32) -> u32 {
    let Some(&base) = BASE.get() else { return 0 };
    // SAFETY: as in `write`.
    unsafe { core::ptr::write_volatile(base as *mut u32, register) };
    // SAFETY: as in `write`; reading IOWIN has no side effects.
    unsafe { core::ptr::read_volatile((base + 0x10) as *const u32) }
}

/// Maps the I/O APIC and masks every line. Returns how many lines it has.
pub fn init(physical_base: u64) -> Result<u32, paging::PagingError> {
    let base = paging::map_mmio(physical_base, 0x20)?;
    BASE.call_once(|| base);
    let lines = ((read(1) >> 16) & 0xff) + 1;
    for line in 0..lines {
        write(0x10 + 2 * line, 1 << 16);
        write(0x11 + 2 * line, 0);
    }
    Ok(lines)
}

/// Routes `gsi` to `vector` on the CPU with LAPIC id `apic_id`, masked.
pub fn route(gsi: u32, vector: u8, level_triggered: bool, active_low: bool, apic_id: u8) {
    let mut low = u32::from(vector) | (1 << 16);
    if level_triggered {
        low |= 1 << 15;
    }
    if active_low {
        low |= 1 << 13;
    }
    write(0x11 + 2 * gsi, u32::from(apic_id) << 24);
    write(0x10 + 2 * gsi, low);
}

pub fn set_masked(gsi: u32, masked: bool) {
    let low = read(0x10 + 2 * gsi);
    write(0x10 + 2 * gsi, if masked { low | (1 << 16) } else { low & !(1 << 16) });
}
