//! ACPI static tables: where the interrupt controllers and the reference clocks are.
//!
//! Only static tables are read (MADT, HPET, FADT) with the `acpi` crate; no AML. Tables are
//! reached through the direct map, which covers the first 4 GiB where firmware puts them.

use core::ptr::NonNull;

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, HpetInfo, PhysicalMapping};
use acpi::fadt::Fadt;
use acpi::address::AddressSpace;

use crate::arch::hooks as mm;

#[derive(Clone, Copy)]
struct DirectMap;

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = mm::phys_to_virt(physical_address as u64) as *mut T;
        // The direct map lies in the upper half: never null.
        let pointer = NonNull::new(virt).unwrap_or(NonNull::dangling());
        // SAFETY: the pointer is the direct-map image of the region the crate asked for,
        // which stays mapped for the kernel's lifetime, so "unmapping" is a no-op.
        unsafe { PhysicalMapping::new(physical_address, pointer, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

pub const MAX_IO_APICS: usize = 4;

#[derive(Clone, Copy, Debug, Default)]
pub struct IoApic {
    pub id: u8,
    pub address: u32,
    pub gsi_base: u32,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Platform {
    pub oem_id: [u8; 6],
    pub revision: u8,
    pub local_apic: u64,
    pub cpus: u32,
    pub io_apics: [IoApic; MAX_IO_APICS],
    pub io_apic_count: usize,
    pub interrupt_overrides: u32,
    /// ISA IRQ → (global system interrupt, MPS INTI flags), for the lines with an override.
    pub overrides: [Option<(u8, u32, u16)>; 16],
    pub legacy_pics: bool,
    /// Physical base of the HPET registers.
    pub hpet: Option<u64>,
    /// I/O port of the ACPI power-management timer (3.579545 MHz).
    pub pm_timer: Option<u16>,
    pub pm_timer_32bit: bool,
    /// PCIe ECAM regions (MCFG), as physical `(start, end)`: never part of the device
    /// window (`kcore::pci`).
    pub ecam: [Option<(u64, u64)>; MAX_ECAM],
}

pub const MAX_ECAM: usize = 4;

#[derive(Debug)]
#[allow(dead_code, reason = "the fields are what the Debug report of a failed boot shows")]
pub enum AcpiFailure {
    NoRsdp,
    Tables(acpi::AcpiError),
    NoMadt(acpi::AcpiError),
}

/// Finds the tables from the boot protocol's RSDP, or by the BIOS search when it gave none.
pub fn discover(rsdp: Option<u64>) -> Result<Platform, AcpiFailure> {
    let tables = match rsdp {
        // SAFETY: the address is the RSDP the boot loader handed over (or its copy in the
        // Multiboot2 information, which stays intact); the crate validates its checksum.
        Some(address) => unsafe { AcpiTables::from_rsdp(DirectMap, address as usize) },
        // SAFETY: the BIOS areas the search reads (EBDA, 0xE0000-0xFFFFF) are below 4 GiB
        // and so in the direct map; the search only reads.
        None => unsafe { AcpiTables::search_for_rsdp_bios(DirectMap) },
    }
    .map_err(|error| match error {
        acpi::AcpiError::NoValidRsdp => AcpiFailure::NoRsdp,
        other => AcpiFailure::Tables(other),
    })?;

    let mut platform = Platform { revision: tables.revision(), ..Platform::default() };
    let madt = tables.find_table::<Madt>().map_err(AcpiFailure::NoMadt)?;
    let madt = madt.get();
    platform.oem_id = madt.header.oem_id;
    platform.local_apic = u64::from(madt.local_apic_address);
    platform.legacy_pics = madt.supports_8259();
    for entry in madt.entries() {
        match entry {
            MadtEntry::LocalApic(cpu) if { cpu.flags } & 1 != 0 => platform.cpus += 1,
            MadtEntry::LocalX2Apic(cpu) if { cpu.flags } & 1 != 0 => platform.cpus += 1,
            MadtEntry::IoApic(io) => {
                if let Some(slot) = platform.io_apics.get_mut(platform.io_apic_count) {
                    *slot = IoApic { id: io.io_apic_id, address: io.io_apic_address, gsi_base: io.global_system_interrupt_base };
                    platform.io_apic_count += 1;
                }
            }
            MadtEntry::InterruptSourceOverride(over) => {
                if let Some(slot) = platform.overrides.get_mut(platform.interrupt_overrides as usize) {
                    *slot = Some((over.irq, over.global_system_interrupt, over.flags));
                }
                platform.interrupt_overrides += 1;
            }
            MadtEntry::LocalApicAddressOverride(over) => platform.local_apic = over.local_apic_address,
            _ => {}
        }
    }
    if let Ok(mcfg) = tables.find_table::<acpi::mcfg::Mcfg>() {
        for (slot, entry) in platform.ecam.iter_mut().zip(mcfg.get().entries()) {
            let buses = u64::from(entry.bus_number_end.saturating_sub(entry.bus_number_start)) + 1;
            let start = { entry.base_address } + (u64::from(entry.bus_number_start) << 20);
            *slot = Some((start, start.saturating_add(buses << 20)));
        }
    }
    if let Ok(hpet) = HpetInfo::new(&tables) {
        platform.hpet = Some(hpet.base_address as u64);
    }
    if let Ok(fadt) = tables.find_table::<Fadt>()
        && let Ok(Some(block)) = fadt.pm_timer_block()
            && block.address_space == AddressSpace::SystemIo {
                platform.pm_timer = u16::try_from(block.address).ok();
                platform.pm_timer_32bit = { fadt.flags }.pm_timer_is_32_bit();
            }
    Ok(platform)
}
