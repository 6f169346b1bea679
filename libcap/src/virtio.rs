//! The `virtio-drivers` crate on this system (feature `virtio`): its [`Hal`] over the memory
//! server and device frames, and its [`ConfigurationAccess`] over a PCI cap.
//!
//! Both traits have `unsafe` methods, so their implementations live here, in libcap, and a
//! driver (`servers/net-driver`) stays `#![forbid(unsafe_code)]`. The driver first hands
//! over its authority once: [`init`] with its PCI cap and the frame caps of its BARs (the
//! `device` caps of its manifest entry); then `virtio-drivers` calls the traits.
//!
//! - **DMA memory** ([`Hal::dma_alloc`]): a region of the memory server, contiguous and
//!   below 4 GiB (`memory_api::flags`), through the program's heap cap
//!   ([`slots::HEAP_MEMORY`](crate::slots::HEAP_MEMORY): the driver needs a `heap` entry),
//!   mapped read-write in the DMA area; its physical address is its frame's `FrameInfo`.
//!   Zeroed by the server. Freed (revoked everywhere) by [`Hal::dma_dealloc`].
//! - **Shared buffers** ([`Hal::share`]): bounced. The buffers `virtio-drivers` shares are
//!   on the heap, which is not contiguous nor known to be below 4 GiB, so each share takes
//!   a DMA region of its own and copies in (to the device) or back out at `unshare` (from
//!   the device). Costs a copy and three calls to the memory server per buffer.
//! - **MMIO** ([`Hal::mmio_phys_to_virt`]): the BAR frames, each mapped read-write (the
//!   kernel maps device frames uncached and never executable) in the MMIO area at
//!   [`init`]; a physical range outside every BAR the driver holds panics.
//! - **Configuration space** ([`PciConfig`]): `PciConfigRead`/`PciConfigWrite` on the
//!   one-function cap. The kernel refuses BAR writes, but `virtio-drivers` sizes BARs the
//!   classic way (write all ones, read, restore); [`PciConfig`] answers that protocol from
//!   the kernel's `PciBar` record instead of writing the BAR, so the driver sees the real
//!   size and the BAR never moves.
//!
//! # Address areas
//!
//! DMA regions go in [`DMA_LOW`]..[`MMIO_LOW`] (72..76 TiB) and BARs in
//! [`MMIO_LOW`]..[`MMIO_HIGH`] (76..80 TiB): below the files area (`raw`) and above every
//! image (below 64 TiB); nothing else maps there and Rust forms no reference into them
//! except through the pointers handed to `virtio-drivers`, which owns them until it gives
//! them back.

use core::ptr::NonNull;

use spin::Mutex;
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use crate::memory::{Memory, RegionId, flags};
use crate::process::Access;
use crate::{CapSlot, ErrorCode, process, slots, sys};

/// The DMA area's first address (72 TiB).
pub const DMA_LOW: u64 = 0x0000_4800_0000_0000;
/// The MMIO area's first address (76 TiB); the DMA area ends here.
pub const MMIO_LOW: u64 = 0x0000_4c00_0000_0000;
/// One past the MMIO area (80 TiB: the files area starts).
pub const MMIO_HIGH: u64 = 0x0000_5000_0000_0000;
const PAGE: u64 = 4096;
/// The most DMA regions (queues, bounce buffers) live at once, and the slots their frame
/// caps take: 64..96, above every manifest slot and below the heap's.
const DMA_SLOTS: core::ops::Range<u32> = 64..96;
const MAX_BARS: usize = 6;

#[derive(Clone, Copy)]
struct Dma {
    phys: u64,
    virt: u64,
    pages: u64,
    region: RegionId,
    slot: CapSlot,
}

#[derive(Clone, Copy)]
struct Mmio {
    phys: u64,
    bytes: u64,
    virt: u64,
}

struct State {
    dma: [Option<Dma>; DMA_SLOTS.end as usize - DMA_SLOTS.start as usize],
    next_dma: u64,
    bars: [Option<Mmio>; MAX_BARS],
}

static STATE: Mutex<State> = Mutex::new(State { dma: [None; 32], next_dma: DMA_LOW, bars: [None; MAX_BARS] });

/// Maps each BAR frame in `bars` (device frames: `FrameInfo` says `device`) into the MMIO
/// area of `space` (this process's own address space), for [`Hal::mmio_phys_to_virt`].
/// `IllegalOperation` for a frame that is not device memory.
pub fn init(space: CapSlot, bars: &[CapSlot]) -> Result<(), ErrorCode> {
    let mut state = STATE.lock();
    let mut next = MMIO_LOW;
    for (place, &frame) in state.bars.iter_mut().zip(bars) {
        let info = sys::frame_info(frame)?;
        if !info.device {
            return Err(ErrorCode::IllegalOperation);
        }
        let span = info.bytes.div_ceil(PAGE) * PAGE;
        if next + span > MMIO_HIGH {
            return Err(ErrorCode::OutOfResources);
        }
        process::map(space, frame, next, Access::ReadWrite)?;
        *place = Some(Mmio { phys: info.phys, bytes: info.bytes, virt: next });
        next += span + PAGE;
    }
    Ok(())
}

/// Allocates `pages` zeroed, contiguous pages below 4 GiB and maps them: (phys, virt).
fn allocate(pages: u64) -> Option<(u64, u64)> {
    let memory = Memory::new(slots::HEAP_MEMORY);
    let mut state = STATE.lock();
    let index = state.dma.iter().position(Option::is_none)?;
    let slot = CapSlot::new(DMA_SLOTS.start + index as u32);
    let virt = state.next_dma;
    let span = pages * PAGE;
    if virt + span > MMIO_LOW {
        return None;
    }
    let region = memory.create(u32::try_from(pages).ok()?, flags::CONTIGUOUS | flags::BELOW_4GIB).ok()?;
    if region.frames != 1 || memory.map_region(region, slots::HEAP_SPACE, virt, true, &[slot]).is_err() {
        let _ = memory.free(region.id);
        return None;
    }
    let phys = sys::frame_info(slot).ok()?.phys;
    // An unmapped page after each region: an overrun faults instead of reaching the next.
    state.next_dma = virt + span + PAGE;
    if let Some(place) = state.dma.get_mut(index) {
        *place = Some(Dma { phys, virt, pages, region: region.id, slot });
    }
    Some((phys, virt))
}

/// Frees the region at `phys` (unmapped everywhere by the server's revoke).
fn free(phys: u64) -> Option<Dma> {
    let mut state = STATE.lock();
    let found = state.dma.iter_mut().find(|d| d.is_some_and(|d| d.phys == phys))?.take()?;
    drop(state);
    let _ = Memory::new(slots::HEAP_MEMORY).free(found.region);
    let _ = sys::cap_delete(found.slot);
    Some(found)
}

/// The `Hal` of this system (module docs).
pub struct LibcapHal;

// SAFETY: `dma_alloc` returns memory mapped read-write in this process only at an address of
// the DMA area that nothing else uses (a bump, never reused), page-aligned, zeroed by the
// memory server, and physically contiguous below 4 GiB (one frame, `FrameInfo` phys);
// `mmio_phys_to_virt` returns addresses inside the BAR mappings `init` made, which nothing
// else uses; `share` returns the physical address of such a DMA region holding the buffer's
// bytes, and `unshare` copies them back and frees it.
unsafe impl Hal for LibcapHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match allocate(pages as u64) {
            Some((phys, virt)) => match NonNull::new(virt as *mut u8) {
                Some(pointer) => (phys, pointer),
                None => (0, NonNull::dangling()),
            },
            // `virtio_drivers::Dma::new` reads a zero physical address as the error.
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        if free(paddr).is_some() { 0 } else { -1 }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let state = STATE.lock();
        let end = paddr.saturating_add(size as u64);
        let bar = state.bars.iter().flatten().find(|bar| paddr >= bar.phys && end <= bar.phys + bar.bytes);
        match bar.and_then(|bar| NonNull::new((bar.virt + (paddr - bar.phys)) as *mut u8)) {
            Some(pointer) => pointer,
            None => panic!("virtio: {paddr:#x}+{size:#x} is in no BAR this driver holds"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let length = buffer.len();
        let pages = (length as u64).div_ceil(PAGE).max(1);
        let Some((phys, virt)) = allocate(pages) else { panic!("virtio: no DMA memory for a {length}-byte buffer") };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller vouches `buffer` is valid for `length` bytes and not
            // accessed meanwhile; `virt` is a fresh DMA region of at least `length` bytes
            // that nothing else references; the two do not overlap (the DMA area holds no
            // Rust object).
            unsafe { core::ptr::copy_nonoverlapping(buffer.as_ptr().cast::<u8>(), virt as *mut u8, length) };
        }
        phys
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let Some(dma) = STATE.lock().dma.iter().flatten().find(|d| d.phys == paddr).copied() else { return };
        if direction != BufferDirection::DriverToDevice {
            let length = buffer.len().min((dma.pages * PAGE) as usize);
            // SAFETY: the caller vouches `buffer` is valid and not accessed meanwhile; the
            // region at `dma.virt` is the bounce buffer `share` made for it (the device is
            // done with it: `unshare` comes after the used ring gave the buffer back).
            unsafe { core::ptr::copy_nonoverlapping(dma.virt as *const u8, buffer.as_ptr().cast::<u8>(), length) };
        }
        free(paddr);
    }
}

/// Configuration space through a one-function PCI cap (module docs): every
/// [`DeviceFunction`] means the cap's one function.
pub struct PciConfig {
    pci: CapSlot,
    /// The BAR registers written all ones (a size probe) and not yet restored.
    sizing: [bool; MAX_BARS],
    bars: [sys::PciBar; MAX_BARS],
}

impl PciConfig {
    /// The function behind the PCI cap in `pci` (read and write), with its BARs as the
    /// kernel placed them.
    pub fn new(pci: CapSlot) -> Result<PciConfig, ErrorCode> {
        let mut bars = [sys::PciBar::default(); MAX_BARS];
        for (index, bar) in bars.iter_mut().enumerate() {
            *bar = sys::pci_bar(pci, 0, index as u8)?;
        }
        Ok(PciConfig { pci, sizing: [false; MAX_BARS], bars })
    }

    /// What a BAR register reads back after all ones were written: the size mask.
    fn size_mask(&self, register: usize, real: u32) -> u32 {
        let upper_of = register.checked_sub(1).and_then(|below| self.bars.get(below)).filter(|bar| bar.wide && bar.bytes > 0);
        if let Some(bar) = upper_of {
            return ((!(bar.bytes - 1)) >> 32) as u32;
        }
        match self.bars.get(register) {
            Some(bar) if bar.bytes > 0 => (!(bar.bytes - 1)) as u32 | (real & 0xf),
            _ => 0,
        }
    }
}

impl ConfigurationAccess for PciConfig {
    fn read_word(&self, _function: DeviceFunction, offset: u8) -> u32 {
        let real = sys::pci_config_read(self.pci, 0, offset, 4).unwrap_or(u32::MAX);
        match usize::from(offset).checked_sub(0x10).map(|o| o / 4).filter(|&r| r < MAX_BARS) {
            Some(register) if self.sizing.get(register) == Some(&true) => self.size_mask(register, real),
            _ => real,
        }
    }

    fn write_word(&mut self, _function: DeviceFunction, offset: u8, data: u32) {
        if let Some(register) = usize::from(offset).checked_sub(0x10).map(|o| o / 4).filter(|&r| r < MAX_BARS) {
            // A BAR is the kernel's: all ones starts a size probe, anything else ends it
            // (the restore of the value read before). The register itself never changes.
            if let Some(sizing) = self.sizing.get_mut(register) {
                *sizing = data == u32::MAX;
            }
            return;
        }
        let _ = sys::pci_config_write(self.pci, 0, offset, 4, data);
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PciConfig { pci: self.pci, sizing: self.sizing, bars: self.bars }
    }
}
