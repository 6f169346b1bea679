//! PCI objects: configuration space by capability, and the BARs the kernel places at boot.
//!
//! A PCI cap names a range of functions (`bus << 8 | device << 3 | function`), like an
//! I/O-port cap names a range of ports: init holds all of them (`INIT_PCI_SLOT`) and cuts a
//! one-function cap for a driver with `PciSlice`. Its holder reads and writes the
//! function's 256-byte configuration space through the kernel, which keeps ports
//! 0xCF8/0xCFC (one access per syscall, so no process sees the address/data pair half
//! done), refusing writes to the BARs and the ROM BAR, and turning on I/O decoding (no I/O
//! BAR is placed, so it would decode wherever it points, port 0 after reset, over the
//! kernel's own ports) (`kcore::pci::check_config_write`).
//!
//! BARs are the kernel's: at boot it sizes every memory BAR of every function on bus 0 and
//! places it in the device window (`kcore::pci::device_window`, which is also the extent of
//! init's device frame), each aligned to its size and in pages of its own, whatever the
//! firmware did (qboot assigns none; moving one that SeaBIOS placed elsewhere is harmless
//! before any driver runs). 64-bit BARs are placed below 4 GiB too. Devices behind bridges
//! (other buses) keep the firmware's BARs and are not in the BAR table: bridge windows are
//! not programmed, and nothing on QEMU's q35 needs them. I/O BARs are left alone: no cap
//! reaches their ports. `PciBar` answers from the table, so a driver (or init, to cut the
//! device-frame slice) learns a BAR's place and size without writing the BAR.

use abi::ErrorCode;
use kcore::pci::{ConfigRefusal, Placer, Window};
use spin::Mutex;
use x86_64::instructions::port::Port;

/// The most functions whose BARs the kernel records (bus 0 has at most 256).
const MAX_FUNCTIONS: usize = 64;
pub const BARS: usize = 6;

/// One memory BAR as placed: address, size in bytes, `abi::syscall::pci_bar` flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bar {
    pub address: u64,
    pub bytes: u64,
    pub flags: u64,
}

#[derive(Clone, Copy, Debug)]
struct Function {
    id: u16,
    bars: [Bar; BARS],
}

/// The ports: the address word at 0xCF8, the data dword at 0xCFC.
static PORTS: Mutex<()> = Mutex::new(());
static FUNCTIONS: Mutex<[Option<Function>; MAX_FUNCTIONS]> = Mutex::new([None; MAX_FUNCTIONS]);

/// Reads `width` bytes at `offset` of function `id` (offset checked by the caller).
fn read(id: u16, offset: u8, width: u64) -> u32 {
    let _ports = PORTS.lock();
    let shift = u32::from(offset & 3) * 8;
    // SAFETY: ports 0xCF8/0xCFC are the PCI configuration mechanism #1, which only the
    // kernel uses (no I/O-port cap covers them); the lock keeps the address/data pair whole.
    unsafe { Port::<u32>::new(0xcf8).write(kcore::pci::config_address(id, offset)) };
    // SAFETY: as above; reading the data port has no effect beyond the device's register.
    let dword = unsafe { Port::<u32>::new(0xcfc).read() };
    match width {
        1 => (dword >> shift) & 0xff,
        2 => (dword >> shift) & 0xffff,
        _ => dword,
    }
}

/// Writes `width` bytes of `value` at `offset` of function `id` (offset checked by the
/// caller). Narrow writes use the data port's matching byte lanes, so no other register
/// of the dword is written.
fn write(id: u16, offset: u8, width: u64, value: u32) {
    let _ports = PORTS.lock();
    let lane = u16::from(offset & 3);
    // SAFETY: as in `read`.
    unsafe { Port::<u32>::new(0xcf8).write(kcore::pci::config_address(id, offset)) };
    match width {
        // SAFETY: as in `read`; port 0xCFC + lane is the data port's byte lane.
        1 => unsafe { Port::<u8>::new(0xcfc + lane).write(value as u8) },
        // SAFETY: as above (lane is 0 or 2: the offset is aligned to the width).
        2 => unsafe { Port::<u16>::new(0xcfc + lane).write(value as u16) },
        // SAFETY: as above.
        _ => unsafe { Port::<u32>::new(0xcfc).write(value) },
    }
}

/// The absolute function of `function` counted from `first`, if it is in `[first, last]`.
fn absolute(first: u16, last: u16, function: u64) -> Result<u16, ErrorCode> {
    let id = u64::from(first).checked_add(function).ok_or(ErrorCode::InsufficientRights)?;
    if id > u64::from(last) {
        return Err(ErrorCode::InsufficientRights);
    }
    u16::try_from(id).map_err(|_| ErrorCode::InsufficientRights)
}

fn refusal(refused: ConfigRefusal) -> ErrorCode {
    match refused {
        ConfigRefusal::Malformed => ErrorCode::InvalidArgument,
        ConfigRefusal::Bar | ConfigRefusal::IoDecode => ErrorCode::IllegalOperation,
    }
}

/// `PciConfigRead` for a cap over `[first, last]` (its rights checked by the dispatcher).
pub fn config_read(first: u16, last: u16, function: u64, offset: u64, width: u64) -> Result<u64, ErrorCode> {
    kcore::pci::check_config(offset, width, false).map_err(refusal)?;
    let offset = u8::try_from(offset).map_err(|_| ErrorCode::InvalidArgument)?;
    let id = absolute(first, last, function)?;
    Ok(u64::from(read(id, offset, width)))
}

/// `PciConfigWrite` for a cap over `[first, last]`: the read checks, then no BAR, no ROM
/// BAR and no I/O decoding (`kcore::pci::check_config_write`).
pub fn config_write(first: u16, last: u16, function: u64, offset: u64, width: u64, value: u64) -> Result<(), ErrorCode> {
    kcore::pci::check_config(offset, width, false).map_err(refusal)?;
    let id = absolute(first, last, function)?;
    kcore::pci::check_config_write(offset, width, value).map_err(refusal)?;
    let offset = u8::try_from(offset).map_err(|_| ErrorCode::InvalidArgument)?;
    write(id, offset, width, value as u32);
    Ok(())
}

/// `PciBar`: BAR `bar` of the function, from the boot table (size 0 if none).
pub fn bar(first: u16, last: u16, function: u64, bar: u64) -> Result<Bar, ErrorCode> {
    let index = usize::try_from(bar).ok().filter(|&b| b < BARS).ok_or(ErrorCode::InvalidArgument)?;
    let id = absolute(first, last, function)?;
    let functions = FUNCTIONS.lock();
    let found = functions.iter().flatten().find(|f| f.id == id);
    Ok(found.and_then(|f| f.bars.get(index).copied()).unwrap_or_default())
}

/// The function `id` of a `PciSlice`, checked against the source's range.
pub fn slice(first: u16, last: u16, function: u64) -> Result<u16, ErrorCode> {
    absolute(first, last, function)
}

/// Boot: sizes and places every memory BAR on bus 0 inside `window`. Returns how many
/// functions it found.
pub fn init(window: Window) -> usize {
    let mut placer = Placer::new(window);
    let mut functions = FUNCTIONS.lock();
    let mut found = 0;
    for device in 0..32u16 {
        let functions_of = if read(device << 3, 0x0e, 1) & 0x80 != 0 { 8 } else { 1 };
        for function in 0..functions_of {
            let id = device << 3 | function;
            let vendor = read(id, 0, 2);
            if vendor == 0xffff {
                continue;
            }
            let mut record = Function { id, bars: [Bar::default(); BARS] };
            // Header type 0 only: a bridge's BAR layout differs and its windows are not ours.
            if read(id, 0x0e, 1) & 0x7f == 0 {
                place_bars(id, &mut placer, &mut record.bars);
            }
            let device_id = read(id, 2, 2);
            let line = read(id, 0x3c, 1);
            for (index, bar) in record.bars.iter().enumerate().filter(|(_, b)| b.bytes > 0) {
                log::info!("pci {:02x}:{:02x}.{} {vendor:04x}:{device_id:04x} BAR{index} at {:#x} ({} KiB), irq line {line}", id >> 8, (id >> 3) & 31, id & 7, bar.address, bar.bytes >> 10);
            }
            if let Some(slot) = functions.iter_mut().find(|f| f.is_none()) {
                *slot = Some(record);
            }
            found += 1;
        }
    }
    found
}

/// Sizes and places function `id`'s memory BARs, decoding off meanwhile.
fn place_bars(id: u16, placer: &mut Placer, bars: &mut [Bar; BARS]) {
    let command = read(id, 0x04, 2);
    write(id, 0x04, 2, command & !0b11);
    let mut index = 0;
    while index < BARS {
        let offset = 0x10 + 4 * index as u8;
        let original = read(id, offset, 4);
        let wide = original & 0b111 == 0b100;
        if original & 1 == 1 || (wide && index + 1 >= BARS) {
            index += 1;
            continue;
        }
        write(id, offset, 4, u32::MAX);
        let mut mask = u64::from(read(id, offset, 4));
        if wide {
            write(id, offset + 4, 4, u32::MAX);
            mask |= u64::from(read(id, offset + 4, 4)) << 32;
        } else if mask != 0 {
            mask |= 0xffff_ffff_0000_0000;
        }
        let placed = kcore::pci::bar_size(mask).and_then(|size| placer.place(size).map(|address| (address, size)));
        let (address, size) = placed.unwrap_or((0, 0));
        write(id, offset, 4, (address as u32) | (original & 0xf));
        if wide {
            write(id, offset + 4, 4, (address >> 32) as u32);
        }
        if let (Some(bar), true) = (bars.get_mut(index), size > 0) {
            let mut flags = if wide { abi::syscall::pci_bar::BITS_64 } else { 0 };
            if original & 0b1000 != 0 {
                flags |= abi::syscall::pci_bar::PREFETCHABLE;
            }
            *bar = Bar { address, bytes: size, flags };
        } else if mask & !0xf != 0 {
            log::warn!("pci {id:#06x} BAR{index}: does not fit the device window; left unassigned");
        }
        index += if wide { 2 } else { 1 };
    }
    write(id, 0x04, 2, command);
}
