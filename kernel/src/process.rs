//! The boot loader for the first process: init, from the initrd, at a random address.
//!
//! Like seL4's root task, init is the one process the kernel builds itself. It gets its
//! image (static-PIE, validated by the host-tested `kcore::elf`), a stack with an unmapped
//! guard page below, an IPC buffer, the whole initrd mapped read-only, and the boot
//! authority: the console, a cap to its own capability space and one to its own address
//! space, the device caps, a read-only borrowed frame over the initrd
//! ([`INIT_INITRD_FRAME_SLOT`]), a device frame over the PCI device window
//! ([`INIT_DEVICE_FRAME_SLOT`]), the PCI bus ([`INIT_PCI_SLOT`]), and a kernel-memory quota of most of free memory.
//! Everything else is init's job.
//!
//! ASLR: the image base, the stack and the initrd mapping are each placed at a random
//! page-aligned address (RDRAND where the CPU has it, else the time-stamp counter mixed
//! through SplitMix64, which is predictable and reported as such at boot).

use abi::{ErrorCode, ObjectType, Rights};
use kcore::elf::{self, ElfError};

use crate::caps::{self, Object};
use crate::sched::{self, UserStart};
use crate::thread::ThreadId;
use crate::vspace::{self, Perms};

/// Image bases are drawn from [1 GiB, 64 TiB), stacks from [64 TiB, 127 TiB).
const IMAGE_LOW: u64 = 1 << 30;
const IMAGE_HIGH: u64 = 64 << 40;
const STACK_LOW: u64 = 64 << 40;
const STACK_HIGH: u64 = 127 << 40;
const STACK_PAGES: u64 = 16;
const PAGE: u64 = 4096;

/// init's slots, as libcap documents them.
pub const INIT_CONSOLE_SLOT: u32 = 1;
pub const INIT_CSPACE_SLOT: u32 = 2;
pub const INIT_ADDRESS_SPACE_SLOT: u32 = 3;
/// Device authority init receives, at fixed high slots (libcap's `slots` names them): ISA
/// IRQ lines and I/O port ranges the kernel does not use itself. The kernel keeps IRQ 0
/// (PIT), 2 (cascade), 4 and ports 0x3f8-0x3ff (its COM1 console), the PICs, the PIT and
/// the debug-exit port.
pub const INIT_DEVICE_CAPS: &[(u32, Object)] = &[
    (100, Object::Irq(1)),
    (101, Object::Irq(3)),
    (102, Object::Irq(8)),
    (103, Object::Irq(12)),
    (110, Object::IoPorts(0x60, 0x64)),
    (111, Object::IoPorts(0x70, 0x71)),
    (112, Object::IoPorts(0x2f8, 0x2ff)),
    // The authority audit, for init to pass to the test runner only (see system.toml).
    (120, Object::Audit),
];
/// init's cap to the initrd as a borrowed frame (`frame.rs`), beside the device caps: every
/// page of the boot module, from `initrd.start & !0xfff` to its end rounded up to a page;
/// `FrameInfo` reports the bytes from that first page to the module's end. Read and grant
/// only, so init can cut it with `FrameSlice` and pass the slices on, mapped read-only; it
/// is never writable or executable. (init's own boot mapping of the initrd is the kernel's,
/// made below page by page and kept whatever init does with this cap.)
pub const INIT_INITRD_FRAME_SLOT: u32 = 121;
pub const INIT_INITRD_FRAME_RIGHTS: Rights = Rights::READ.union(Rights::GRANT);
/// init's cap to the PCI device window as a device frame (`frame.rs`, `kcore::pci`): every
/// page where the kernel placed memory BARs, none of RAM or of the kernel's own device
/// registers. Read, write and grant (devices are written), never execute: init cuts each
/// driver's BARs from it with `FrameSlice` (`PciBar` says where they are). Absent if the
/// machine has no window below 4 GiB.
pub const INIT_DEVICE_FRAME_SLOT: u32 = 122;
pub const INIT_DEVICE_FRAME_RIGHTS: Rights = Rights::READ.union(Rights::WRITE).union(Rights::GRANT);
/// init's PCI bus cap (`pci.rs`): every function, `0x0000..=0xffff`, read (configuration
/// reads, `PciBar`, `PciSlice`), write (configuration writes) and grant.
pub const INIT_PCI_SLOT: u32 = 123;
pub const INIT_PCI_RIGHTS: Rights = Rights::READ.union(Rights::WRITE).union(Rights::GRANT);

#[derive(Debug)]
#[allow(dead_code, reason = "the fields are what the Debug report of a failed boot shows")]
pub enum LoadError {
    NotInInitrd,
    Elf(ElfError),
    Kernel(ErrorCode),
}

impl From<ErrorCode> for LoadError {
    fn from(code: ErrorCode) -> Self {
        LoadError::Kernel(code)
    }
}

/// A random 64-bit value, and whether it came from a hardware generator.
pub fn random_u64() -> (u64, bool) {
    if crate::FEATURES.get().is_some_and(|features| features.rdrand) {
        for _ in 0..10 {
            let value: u64;
            let ok: u8;
            // SAFETY: RDRAND exists (CPUID says so); it only writes the two registers.
            unsafe { core::arch::asm!("rdrand {}", "setc {}", out(reg) value, out(reg_byte) ok, options(nomem, nostack)) };
            if ok == 1 {
                return (value, true);
            }
        }
    }
    (kcore::rand::mix(crate::arch::cpu::rdtsc()), false)
}

/// A random page-aligned address in `[low, high - span)`.
fn random_address(low: u64, high: u64, span: u64) -> u64 {
    let pages = (high - low - span) / PAGE;
    low + (random_u64().0 % pages.max(1)) * PAGE
}

/// A program loaded into a fresh address space, not yet running.
pub struct Loaded {
    pub pml4: u64,
    pub base: u64,
    pub entry: u64,
    pub stack_top: u64,
    pub ipc_buffer: u64,
}

/// Loads the static-PIE `image` into a fresh address space at a random base, with a
/// guarded stack and an IPC buffer. The pages belong to the address space.
pub fn load(image: &[u8]) -> Result<Loaded, LoadError> {
    let plan = elf::parse(image).map_err(LoadError::Elf)?;
    let pml4 = vspace::create()?;
    let result = (|| -> Result<Loaded, LoadError> {
        let base = random_address(IMAGE_LOW, IMAGE_HIGH, plan.image_size());
        for segment in plan.segments() {
            let perms = segment.permissions();
            let perms = Perms { write: perms.writable(), execute: perms.executable() };
            let mut page = segment.page_start();
            while page < segment.page_end() {
                let frame = crate::mm::allocate_frame().map_err(|_| ErrorCode::OutOfResources)?;
                vspace::map(pml4, base + page, frame, perms)?;
                page += PAGE;
            }
            // The pages are fresh and zeroed; copy the file bytes in through the kernel's
            // direct map (the user mapping may be read-only).
            let data = segment.data();
            let mut done = 0usize;
            while done < data.len() {
                let address = base + segment.vaddr() + done as u64;
                let phys = vspace::translate_any(pml4, address).ok_or(ErrorCode::InvalidArgument)?;
                let chunk = ((PAGE - address % PAGE) as usize).min(data.len() - done);
                write_phys(phys, data.get(done..done + chunk).ok_or(ErrorCode::InvalidArgument)?);
                done += chunk;
            }
        }
        for relocation in plan.relocations() {
            let address = base + relocation.offset();
            let bytes = relocation.value(base).to_le_bytes();
            // `kcore::elf` checked the 8 bytes lie in one writable segment; they may still
            // straddle a page boundary, so write byte by byte through the translation.
            for (index, byte) in bytes.iter().enumerate() {
                let phys = vspace::translate_any(pml4, address + index as u64).ok_or(ErrorCode::InvalidArgument)?;
                write_phys(phys, core::slice::from_ref(byte));
            }
        }
        let stack_top = random_address(STACK_LOW, STACK_HIGH, (STACK_PAGES + 2) * PAGE) + (STACK_PAGES + 1) * PAGE;
        for index in 1..=STACK_PAGES {
            let frame = crate::mm::allocate_frame().map_err(|_| ErrorCode::OutOfResources)?;
            vspace::map(pml4, stack_top - index * PAGE, frame, Perms::READ_WRITE)?;
        }
        // The IPC buffer sits one unmapped page above the stack's top.
        let ipc_buffer = stack_top + PAGE;
        let frame = crate::mm::allocate_frame().map_err(|_| ErrorCode::OutOfResources)?;
        vspace::map(pml4, ipc_buffer, frame, Perms::READ_WRITE)?;
        Ok(Loaded { pml4, base, entry: base + plan.entry(), stack_top, ipc_buffer })
    })();
    if result.is_err() {
        vspace::destroy(pml4, true);
    }
    result
}

fn write_phys(phys: u64, bytes: &[u8]) {
    let target = crate::mm::phys_to_virt(phys) as *mut u8;
    // SAFETY: `phys` comes from a translation of a page the loader just mapped from a
    // fresh frame, and `bytes` does not cross that page (callers split at page ends).
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), target, bytes.len()) };
}

/// Loads and starts init with the boot authority. `initrd` is the boot module's physical
/// range; it is mapped read-only into init, whose `rdi`/`rsi` receive its address and size.
pub fn start_init(initrd: kcore::memmap::PhysRange) -> Result<ThreadId, LoadError> {
    let bytes = crate::module_bytes(initrd);
    let image = kcore::ustar::Archive::find(bytes, "bin/init").ok().flatten().ok_or(LoadError::NotInInitrd)?;
    let loaded = load(image)?;
    let first = initrd.start & !(PAGE - 1);
    let span = (initrd.end.next_multiple_of(PAGE)) - first;
    let initrd_base = random_address(IMAGE_HIGH - (1 << 40), IMAGE_HIGH, span);
    let mut offset = 0;
    while offset < span {
        vspace::map(loaded.pml4, initrd_base + offset, first + offset, Perms::READ)?;
        offset += PAGE;
    }
    let (free, _) = crate::mm::frame_stats();
    let quota = free * PAGE / 4 * 3;
    let space = caps::create_init_space(quota)?;
    caps::grant_console(space, INIT_CONSOLE_SLOT, Rights::ALL)?;
    caps::install(space, INIT_CSPACE_SLOT, ObjectType::CSpace, Object::CSpace(space.index()))?;
    let address_space = vspace::register(loaded.pml4, true)?;
    caps::install(space, INIT_ADDRESS_SPACE_SLOT, ObjectType::AddressSpace, Object::AddressSpace(address_space))?;
    for &(slot, object) in INIT_DEVICE_CAPS {
        let kind = match object {
            Object::Irq(_) => ObjectType::IrqHandler,
            Object::Audit => ObjectType::Audit,
            _ => ObjectType::IoPortRange,
        };
        caps::install(space, slot, kind, object)?;
    }
    let extent = crate::frame::Borrowed::boot_module(first, initrd.end - first)?;
    let initrd_frame = Object::Frame(crate::frame::create_borrowed(extent)?);
    if let Err(error) = caps::install_with_rights(space, INIT_INITRD_FRAME_SLOT, ObjectType::Frame, initrd_frame, INIT_INITRD_FRAME_RIGHTS) {
        crate::object::destroy(initrd_frame);
        return Err(error.into());
    }
    if let Some(Some(window)) = crate::DEVICE_WINDOW.get() {
        let extent = crate::frame::Borrowed::device_window(window.start, window.bytes())?;
        let device_frame = Object::Frame(crate::frame::create_borrowed(extent)?);
        if let Err(error) = caps::install_with_rights(space, INIT_DEVICE_FRAME_SLOT, ObjectType::Frame, device_frame, INIT_DEVICE_FRAME_RIGHTS) {
            crate::object::destroy(device_frame);
            return Err(error.into());
        }
    }
    caps::install_with_rights(space, INIT_PCI_SLOT, ObjectType::Pci, Object::Pci(0, u16::MAX), INIT_PCI_RIGHTS)?;
    let (_, hardware) = random_u64();
    log::info!(
        "init: image at {:#x}, stack top {:#x}, initrd at {:#x} ({} bytes), quota {} MiB; ASLR entropy from {}",
        loaded.base,
        loaded.stack_top,
        initrd_base,
        initrd.len(),
        quota >> 20,
        if hardware { "RDRAND" } else { "the TSC (RDRAND absent: predictable)" }
    );
    let id = sched::spawn_user("init", UserStart {
        pml4: loaded.pml4,
        owns_space: false,
        cspace: Some(space),
        entry: loaded.entry,
        stack: loaded.stack_top,
        argument: initrd_base + (initrd.start - first),
        argument2: initrd.len(),
        priority: 31,
        budget: None,
        ipc_buffer: loaded.ipc_buffer,
    })
    .map_err(|_| LoadError::Kernel(ErrorCode::OutOfResources))?;
    // init's cspace is a CSpace object (its own cap to it lives in slot 2), not the thread's.
    sched::with_sched(|s| s.thread(id).owns_cspace = false);
    Ok(id)
}
