//! PCI logic the kernel's `pci.rs` uses, host-tested: where device memory may live, how a
//! BAR is sized and placed, and which configuration accesses a driver may make.
//!
//! # The device window
//!
//! Memory BARs go in one physical range, the *device window*, which is also the extent of
//! init's device frame: from the end of RAM below 4 GiB (and past the PCIe ECAM regions
//! that end above it, whose configuration space would let a holder move BARs behind the
//! kernel's back), up to the lowest address below 4 GiB the kernel uses itself (the I/O
//! APIC at 0xFEC0_0000, the HPET, the local APIC: on PC-compatible machines this whole
//! 0xFEC0_0000..4 GiB block is chipset and firmware space). On QEMU q35 with 512 MiB that
//! is 0xC000_0000..0xFEC0_0000 (ECAM sits at 0xB000_0000..0xC000_0000), exactly where
//! SeaBIOS would put 32-bit BARs. Both ends are aligned to 1 MiB, inwards. Firmware-reserved
//! ranges in the hole other than ECAM are not known here (the boot information keeps only
//! usable RAM): SECURITY.md lists that gap for real machines.

/// One past the highest address of the 32-bit PCI hole.
pub const FOUR_GIB: u64 = 1 << 32;
/// The window's ends are aligned to this (inwards).
pub const WINDOW_ALIGN: u64 = 1 << 20;
/// The configuration space a driver reaches (the legacy 256 bytes of 0xCF8/0xCFC).
pub const CONFIG_BYTES: u64 = 256;
/// The base-address registers, 0x10..=0x27, and the expansion-ROM BAR, 0x30..=0x33.
pub const BAR_REGISTERS: core::ops::Range<u64> = 0x10..0x28;
pub const ROM_BAR: core::ops::Range<u64> = 0x30..0x34;

/// A half-open physical range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: u64,
    pub end: u64,
}

impl Window {
    pub fn bytes(self) -> u64 {
        self.end - self.start
    }
}

/// The device window (module docs): `ram` the RAM ranges `(start, end)`, `ecam` the ECAM
/// regions `(start, end)`, `kernel_devices` the physical addresses of the kernel's own
/// device registers. `None` if nothing is left.
pub fn device_window(ram: &[(u64, u64)], ecam: &[(u64, u64)], kernel_devices: &[u64]) -> Option<Window> {
    let ram_top = ram.iter().filter(|&&(start, _)| start < FOUR_GIB).map(|&(_, end)| end.min(FOUR_GIB)).max().unwrap_or(0);
    let mut start = ram_top;
    // An ECAM region that reaches past `start` pushes it past its end (ECAM below RAM's
    // top is inside RAM's hole already and cannot be in the window).
    for &(ecam_start, ecam_end) in ecam {
        if ecam_end > start && ecam_start < FOUR_GIB {
            start = start.max(ecam_end);
        }
    }
    let start = start.checked_next_multiple_of(WINDOW_ALIGN)?;
    let end = kernel_devices.iter().copied().filter(|&a| a >= start && a < FOUR_GIB).min().unwrap_or(FOUR_GIB);
    let end = end - end % WINDOW_ALIGN;
    (end > start).then_some(Window { start, end })
}

/// What a memory BAR's sizing read (after writing all ones) says: its size in bytes, or
/// `None` for an unimplemented BAR. `mask` is the 64-bit value read back (the upper half
/// all ones for a 32-bit BAR that is implemented).
pub fn bar_size(mask: u64) -> Option<u64> {
    let address_bits = mask & !0xf;
    if address_bits == 0 {
        return None;
    }
    let size = (!address_bits).wrapping_add(1);
    (size != 0 && size.is_power_of_two()).then_some(size)
}

/// Places BARs in a window, lowest first, each aligned to its size (as PCI requires).
#[derive(Clone, Copy, Debug)]
pub struct Placer {
    next: u64,
    end: u64,
}

impl Placer {
    pub fn new(window: Window) -> Placer {
        Placer { next: window.start, end: window.end }
    }

    /// The address of a BAR of `size` bytes (a power of two), or `None` if it does not fit.
    /// BARs under 4 KiB take a whole page, so that no two devices share a page and each
    /// device frame slice shows its own device only.
    pub fn place(&mut self, size: u64) -> Option<u64> {
        let size = size.max(4096);
        let address = self.next.checked_next_multiple_of(size)?;
        let end = address.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        Some(address)
    }
}

/// Why a configuration access is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigRefusal {
    /// A width other than 1, 2, 4; an offset past 256 or not a multiple of the width.
    Malformed,
    /// A write to a BAR or the ROM BAR.
    Bar,
    /// A write that turns on I/O-space decoding (command register bit 0): the kernel places
    /// no I/O BAR, so an enabled one would decode at whatever port it holds (0 after
    /// reset), over the PIC, the PIT or the kernel's console.
    IoDecode,
}

/// The command register's offset, and its I/O-space enable bit.
pub const COMMAND: u64 = 0x04;
pub const COMMAND_IO_SPACE: u64 = 1;

/// [`check_config`] for a write of `value`: the BARs, the ROM BAR, and I/O decoding refused.
pub fn check_config_write(offset: u64, width: u64, value: u64) -> Result<(), ConfigRefusal> {
    check_config(offset, width, true)?;
    // The command register's low byte is at offset 4: inside this write if it starts at or
    // below 4 and ends past it (dword at 4, word at 4, byte at 4).
    if offset <= COMMAND && COMMAND < offset + width && (value >> ((COMMAND - offset) * 8)) & COMMAND_IO_SPACE != 0 {
        return Err(ConfigRefusal::IoDecode);
    }
    Ok(())
}

/// Checks a configuration access of `width` bytes at `offset` (a write if `write`).
pub fn check_config(offset: u64, width: u64, write: bool) -> Result<(), ConfigRefusal> {
    if !matches!(width, 1 | 2 | 4) || offset >= CONFIG_BYTES || !offset.is_multiple_of(width) {
        return Err(ConfigRefusal::Malformed);
    }
    let end = offset + width;
    let touches = |range: core::ops::Range<u64>| offset < range.end && range.start < end;
    if write && (touches(BAR_REGISTERS) || touches(ROM_BAR)) {
        return Err(ConfigRefusal::Bar);
    }
    Ok(())
}

/// The 0xCF8 address word of a configuration access: enable bit, bus/device/function from
/// `function` (`bus << 8 | device << 3 | function`), the dword `offset` lies in.
pub fn config_address(function: u16, offset: u8) -> u32 {
    0x8000_0000 | (u32::from(function) << 8) | u32::from(offset & 0xfc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAPIC: u64 = 0xfee0_0000;
    const IOAPIC: u64 = 0xfec0_0000;
    const HPET: u64 = 0xfed0_0000;

    #[test]
    fn window_of_q35_with_512_mib_starts_past_ecam_and_ends_at_the_ioapic() {
        let ram = [(0, 0x9_fc00), (0x10_0000, 0x2000_0000)];
        let ecam = [(0xb000_0000, 0xc000_0000)];
        let window = device_window(&ram, &ecam, &[LAPIC, IOAPIC, HPET]).unwrap();
        assert_eq!(window, Window { start: 0xc000_0000, end: 0xfec0_0000 });
    }

    #[test]
    fn window_without_ecam_starts_at_ram_top_aligned_up() {
        let ram = [(0x10_0000, 0x1fff_f000), (1 << 32, 5 << 32)];
        let window = device_window(&ram, &[], &[LAPIC, IOAPIC]).unwrap();
        assert_eq!(window, Window { start: 0x2000_0000, end: 0xfec0_0000 });
    }

    #[test]
    fn window_ignores_ecam_inside_ram_and_devices_below_its_start() {
        let ram = [(0, 0xd000_0000)];
        let ecam = [(0x8000_0000, 0x9000_0000)];
        let window = device_window(&ram, &ecam, &[0x1000, HPET]).unwrap();
        assert_eq!(window, Window { start: 0xd000_0000, end: 0xfed0_0000 });
    }

    #[test]
    fn no_window_when_ram_fills_the_hole() {
        assert_eq!(device_window(&[(0, 0xfec0_0000)], &[], &[IOAPIC]), None);
    }

    #[test]
    fn bar_sizes() {
        assert_eq!(bar_size(0xffff_ffff_ffff_c00c), Some(0x4000), "64-bit prefetchable 16 KiB");
        assert_eq!(bar_size(0xffff_ffff_ffff_f000), Some(0x1000));
        assert_eq!(bar_size(0xffff_ffff_0000_0000 | 0xff00_0008), Some(0x100_0000));
        assert_eq!(bar_size(0), None, "unimplemented");
        assert_eq!(bar_size(0xf), None);
    }

    #[test]
    fn placer_aligns_and_refuses_what_does_not_fit() {
        let mut placer = Placer::new(Window { start: 0xc000_0000, end: 0xc100_0000 });
        assert_eq!(placer.place(0x1000), Some(0xc000_0000));
        assert_eq!(placer.place(0x4000), Some(0xc000_4000));
        assert_eq!(placer.place(0x100), Some(0xc000_8000), "a small BAR takes a page");
        assert_eq!(placer.place(0x80_0000), Some(0xc080_0000));
        assert_eq!(placer.place(0x80_0000), None);
        assert_eq!(placer.place(0x1000), None, "nothing past the last placed");
    }

    #[test]
    fn config_checks() {
        assert_eq!(check_config(0, 4, false), Ok(()));
        assert_eq!(check_config(0xfc, 4, true), Ok(()));
        assert_eq!(check_config(0x04, 2, true), Ok(()), "the command register is the driver's");
        assert_eq!(check_config(0x3c, 1, true), Ok(()));
        assert_eq!(check_config(0x0f, 1, true), Ok(()), "BIST, just below BAR0");
        assert_eq!(check_config(0x28, 4, true), Ok(()), "cardbus CIS, just past BAR5");
        assert_eq!(check_config(0x2c, 4, true), Ok(()));
        assert_eq!(check_config(0x34, 1, true), Ok(()), "just past the ROM BAR");
        for malformed in [(0x100, 1), (0, 3), (0, 8), (2, 4), (1, 2), (u64::MAX, 1), (0, 0)] {
            assert_eq!(check_config(malformed.0, malformed.1, false), Err(ConfigRefusal::Malformed), "{malformed:?}");
            assert_eq!(check_config(malformed.0, malformed.1, true), Err(ConfigRefusal::Malformed), "{malformed:?}");
        }
        for offset in 0x10..0x28 {
            assert_eq!(check_config(offset, 1, true), Err(ConfigRefusal::Bar), "{offset:#x}");
            assert_eq!(check_config(offset, 1, false), Ok(()), "reading a BAR is fine");
        }
        for offset in [0x30, 0x31, 0x32, 0x33] {
            assert_eq!(check_config(offset, 1, true), Err(ConfigRefusal::Bar));
        }
        assert_eq!(check_config(0x30, 4, true), Err(ConfigRefusal::Bar));
        assert_eq!(check_config(0x0e, 2, true), Ok(()));
        assert_eq!(check_config(0x24, 4, true), Err(ConfigRefusal::Bar));
    }

    #[test]
    fn io_decoding_is_refused() {
        assert_eq!(check_config_write(0x04, 2, 0b110), Ok(()), "memory space and bus master");
        assert_eq!(check_config_write(0x04, 2, 0b111), Err(ConfigRefusal::IoDecode));
        assert_eq!(check_config_write(0x04, 1, 1), Err(ConfigRefusal::IoDecode));
        assert_eq!(check_config_write(0x04, 4, 0xffff_0001), Err(ConfigRefusal::IoDecode));
        assert_eq!(check_config_write(0x04, 4, 0xffff_0006), Ok(()), "status bits are write-one-to-clear");
        assert_eq!(check_config_write(0x00, 4, 1), Ok(()), "vendor ID: read-only, bit 0 is not the command's");
        assert_eq!(check_config_write(0x05, 1, 1), Ok(()), "the command register's high byte");
        assert_eq!(check_config_write(0x06, 2, 1), Ok(()), "status");
        assert_eq!(check_config_write(0x10, 4, 0), Err(ConfigRefusal::Bar));
        assert_eq!(check_config_write(0x03, 4, 0), Err(ConfigRefusal::Malformed));
    }

    #[test]
    fn config_addresses() {
        assert_eq!(config_address(0x0010, 0x3c), 0x8000_103c);
        assert_eq!(config_address(0xffff, 0xff), 0x80ff_fffc);
    }
}
