//! Democratizing AI OS: a capability microkernel for x86_64.
//!
//! # Design principles
//! 1. The kernel provides capabilities, IPC and scheduling, plus the least address-space,
//!    interrupt and fault handling needed to enforce them. Everything else is a process.
//! 2. No user input can panic the kernel: user data is checked before it is believed, and
//!    every failure is an `abi::ErrorCode`.
//! 3. Pure decisions live in `kcore`, tested on the host; this crate is glue and hardware.
//! 4. W^X everywhere: no page is ever both writable and executable.
//! 5. Every `unsafe` block is one operation with a `// SAFETY:` argument.
//!
//! Boot order: `kernel_entry` (on the boot stack: console, boot information, frames, page
//! tables) then `kernel_main` (on a guarded stack: segments, traps, CPU features, ACPI,
//! interrupt controllers, clocks, timer).
#![no_std]
#![no_main]
// An `unsafe fn` is a promise about its callers, not a licence for its body.
#![forbid(unsafe_op_in_unsafe_fn)]
// No kernel panic is reachable from user input (design principle 2), checked by a tool
// rather than by review: `cargo xtask lint` runs clippy with these denied. An index that is
// proven in range carries an `#[allow]` with the proof as its reason.
#![deny(clippy::unwrap_used, reason = "a failure is an ErrorCode, never a panic")]
#![deny(clippy::expect_used, reason = "a failure is an ErrorCode, never a panic")]
#![deny(clippy::panic, reason = "the kernel reports and carries on, or halts with a report")]
#![deny(clippy::indexing_slicing, reason = "an index out of range would panic the kernel")]

mod arch;
mod caps;
mod console;
mod denials;
mod frame;
mod ipc;
mod irq;
// The in-QEMU test harnesses: built only into the test kernel, beside the kernel proper.
#[cfg(feature = "ktest")]
mod harness;
mod mm;
mod object;
mod pci;
mod process;
mod sched;
mod syscall;
mod thread;
mod vspace;

use arch as arch_impl;
use arch_impl::{acpi, apic, boot::BootHandoff, cpu, gdt, idt, paging, time};
use kcore::bootinfo::BootInfo;
use kcore::memmap::PhysRange;
use spin::Once;

/// The boot information, parsed once.
pub static BOOT_INFO: Once<BootInfo> = Once::new();
/// What the CPU and platform turned out to have, for reports and tests.
pub static FEATURES: Once<cpu::Features> = Once::new();
pub static PLATFORM: Once<acpi::Platform> = Once::new();
/// The PCI device window (`kcore::pci::device_window`): where the kernel placed the BARs,
/// and the extent of init's device frame.
pub static DEVICE_WINDOW: Once<Option<kcore::pci::Window>> = Once::new();
pub static CLOCK: Once<time::RefClock> = Once::new();

const BOOT_STACK_PAGES: u64 = 16;
const TIMER_PERIOD_MICROS: u64 = 10_000;

unsafe extern "C" {
    static __boot_start: u8;
    static __kernel_end_phys: u8;
}

#[unsafe(no_mangle)]
extern "C" fn kernel_entry(handoff: &BootHandoff) -> ! {
    let (magic, info_address) = (handoff.magic, handoff.info);
    time::set_boot_tsc(handoff.entry_tsc);
    console::init();
    println!();
    println!("Democratizing AI OS {} — capability microkernel for x86_64", env!("CARGO_PKG_VERSION"));

    let info = match BootInfo::parse(&mm::BootMemory, magic, u64::from(info_address)) {
        Ok(info) => BOOT_INFO.call_once(|| info),
        Err(error) => fatal(format_args!("cannot read the boot information: {error:?}")),
    };
    log::info!(
        "boot: {:?}, command line \"{}\"",
        info.protocol,
        info.cmdline.as_str()
    );
    ipc::fastpath::configure(info.cmdline.as_str());
    log::info!("ipc fast path: {} (ipc_fastpath=off turns it off)", if ipc::fastpath::enabled() { "on" } else { "off" });
    log::info!(
        "memory: {} MiB usable in {} ranges ({} firmware entries, {} KiB reserved by firmware)",
        info.memory.total_bytes() >> 20,
        info.memory.ranges().len(),
        info.firmware_entries,
        info.reserved_bytes >> 10,
    );
    for range in info.memory.ranges() {
        log::info!("  usable {:#012x}..{:#012x} ({} KiB)", range.start, range.end, range.len() >> 10);
    }

    let mut usable = info.memory.clone();
    usable.reserve(0, 0x10_0000); // real-mode and firmware area: never handed out
    let kernel_start = (&raw const __boot_start) as u64;
    let kernel_end = (&raw const __kernel_end_phys) as u64;
    usable.reserve(kernel_start, kernel_end - kernel_start);
    usable.reserve(info.info_range.start, info.info_range.len());
    for module in info.modules() {
        usable.reserve(module.range.start, module.range.len());
    }
    if let Err(error) = mm::init_frames(&mut usable) {
        fatal(format_args!("cannot build the frame allocator: {error:?}"));
    }
    let (free, total) = mm::frame_stats();
    log::info!("frames: {free} free of {total} ({} MiB); kernel image {:#x}..{:#x}", free >> 8, kernel_start, kernel_end);

    let features = cpu::detect();
    if let Err(error) = paging::init(info.memory.end(), features.gigabyte_pages) {
        fatal(format_args!("cannot build the kernel page tables: {error:?}"));
    }
    let stack_top = match paging::allocate_stack(BOOT_STACK_PAGES) {
        Ok((_, top)) => top,
        Err(error) => fatal(format_args!("cannot allocate the kernel stack: {error:?}")),
    };
    FEATURES.call_once(|| features);
    // SAFETY: `allocate_stack` returned the page-aligned top of a fresh mapped stack that
    // nothing else uses.
    unsafe { arch_impl::switch_stack(stack_top, kernel_main) }
}

extern "C" fn kernel_main() -> ! {
    let info = BOOT_INFO.get().unwrap_or_else(|| fatal(format_args!("boot information vanished")));
    if let Err(error) = gdt::init() {
        fatal(format_args!("cannot set up the GDT and TSS: {error:?}"));
    }
    idt::init();
    let detected = FEATURES.get().copied().unwrap_or_default();
    let features = cpu::enable(detected);
    report_features(&features);

    let platform = match acpi::discover(info.rsdp) {
        Ok(platform) => *PLATFORM.call_once(|| platform),
        Err(error) => fatal(format_args!("ACPI: {error:?}")),
    };
    log::info!(
        "ACPI rev {}, OEM \"{}\": {} CPU(s), LAPIC at {:#x}, {} IOAPIC(s) (first at {:#x}), {} interrupt override(s)",
        platform.revision,
        core::str::from_utf8(&platform.oem_id).unwrap_or("?").trim_end(),
        platform.cpus,
        platform.local_apic,
        platform.io_apic_count,
        platform.io_apics.first().filter(|_| platform.io_apic_count > 0).map_or(0, |io| io.address),
        platform.interrupt_overrides,
    );
    log::info!(
        "ACPI clocks: HPET {}, PM timer {}",
        platform.hpet.map_or("absent", |_| "present"),
        platform.pm_timer.map_or("absent", |_| "present"),
    );

    apic::disable_legacy_pics();
    if let Err(error) = apic::init(platform.local_apic) {
        fatal(format_args!("cannot map the local APIC: {error:?}"));
    }
    let clock = time::RefClock::new(platform.hpet, platform.pm_timer.map(|port| (port, platform.pm_timer_32bit)))
        .unwrap_or_else(|| fatal(format_args!("no reference clock (neither HPET nor PM timer)")));
    let tsc_khz = clock.calibrate_tsc(10_000);
    let lapic_per_ms = apic::calibrate_timer(&clock);
    log::info!(
        "clocks: reference {} at {} Hz; TSC {}.{:03} MHz; LAPIC timer {} ticks/ms (divide 16)",
        clock.name(),
        clock.hz(),
        tsc_khz / 1000,
        tsc_khz % 1000,
        lapic_per_ms
    );
    apic::start_timer(lapic_per_ms, TIMER_PERIOD_MICROS);
    irq::init(&platform);
    let window = device_window(info, &platform);
    if let Some(window) = window {
        let functions = pci::init(window);
        log::info!("pci: device window {:#x}..{:#x} ({} MiB), {functions} function(s) on bus 0", window.start, window.end, window.bytes() >> 20);
    } else {
        log::warn!("pci: no device window below 4 GiB; no device memory for drivers");
    }
    DEVICE_WINDOW.call_once(|| window);
    if let Err(why) = arch_impl::syscall::init() {
        fatal(format_args!("cannot enable SYSCALL: {why}"));
    }
    if let Err(error) = caps::init() {
        fatal(format_args!("cannot create the boot capability space: {error:?}"));
    }
    let (kernel_root, _) = x86_64::registers::control::Cr3::read();
    sched::init(kernel_root.start_address().as_u64(), features.xsave);
    CLOCK.call_once(|| clock);

    report_initrd(info);
    let wx = paging::audit();
    log::info!(
        "paging: {} mappings, {} writable+executable, {} user-accessible",
        wx.leaves,
        wx.writable_and_executable,
        wx.user_accessible
    );
    let micros = time::micros_since_boot();
    log::info!("boot complete in {}.{:03} ms (entry to here)", micros / 1000, micros % 1000);

    #[cfg(feature = "ktest")]
    let testing = kcore::cmdline::value(info.cmdline.as_str(), "ktest").is_some();
    #[cfg(not(feature = "ktest"))]
    let testing = false;
    #[cfg(feature = "ktest")]
    if testing
        && let Err(error) = sched::spawn_kernel("ktest", harness::ktest::thread_main, 31) {
            fatal(format_args!("cannot start the test thread: {error:?}"));
        }
    if !testing {
        match info.modules().first() {
            Some(initrd) => {
                if let Err(error) = process::start_init(initrd.range) {
                    log::error!("cannot start init: {error:?}; the system has nothing to run");
                }
            }
            None => log::error!("no initrd: there is no init to start"),
        }
    }

    idle()
}

/// The idle thread: halt until an interrupt, run whatever became ready, and, with `tick`
/// on the command line, report the tick once a second (off by default: the console is
/// the shell's).
fn idle() -> ! {
    let per_second = 1_000_000 / apic::tick_micros().max(1);
    let mut reported = 0;
    loop {
        x86_64::instructions::interrupts::disable();
        sched::schedule();
        arch_impl::wait_for_interrupt();
        let seconds = apic::ticks() / per_second.max(1);
        if seconds > reported && kcore::cmdline::value(BOOT_INFO.get().map_or("", |info| info.cmdline.as_str()), "tick").is_some() {
            reported = seconds;
            log::info!("tick: {seconds} s ({} timer interrupts)", apic::ticks());
        }
    }
}

fn report_features(features: &cpu::Features) {
    let on = |flag: bool| if flag { "on" } else { "absent" };
    log::info!(
        "CPU protection: NX on, WP on, SMEP {}, SMAP {}, UMIP {}",
        on(features.smep),
        on(features.smap),
        on(features.umip)
    );
    log::info!(
        "CPU floating point: SSE on, XSAVE {} (area {} bytes, XCR0 {:#x}), AVX {}, AVX2 {}, FMA {}, AVX-512 {}",
        on(features.xsave),
        features.xsave_area,
        features.xcr0,
        on(features.avx),
        on(features.avx2),
        on(features.fma),
        on(features.avx512f),
    );
    log::info!(
        "CPU other: RDRAND {}, RDSEED {}, PCID {}, 1 GiB pages {}, invariant TSC {}, hypervisor {}",
        on(features.rdrand),
        on(features.rdseed),
        on(features.pcid),
        on(features.gigabyte_pages),
        on(features.invariant_tsc),
        on(features.hypervisor)
    );
}

/// The device window from the firmware's RAM ranges, ECAM and the kernel's own device
/// registers (I/O APICs, HPET, local APIC).
fn device_window(info: &BootInfo, platform: &acpi::Platform) -> Option<kcore::pci::Window> {
    let mut ram = [(0u64, 0u64); kcore::memmap::MAX_RANGES];
    for (slot, range) in ram.iter_mut().zip(info.memory.ranges()) {
        *slot = (range.start, range.end);
    }
    let mut ecam = [(0u64, 0u64); acpi::MAX_ECAM];
    for (slot, region) in ecam.iter_mut().zip(platform.ecam.iter()) {
        *slot = region.unwrap_or((0, 0));
    }
    // 0xFEC0_0000 bounds it even if ACPI names no I/O APIC there (the PC chipset block).
    let mut devices = [0u64; acpi::MAX_IO_APICS + 3];
    let io_apics = platform.io_apics.iter().take(platform.io_apic_count).map(|io| u64::from(io.address));
    let others = [platform.local_apic, platform.hpet.unwrap_or(0), 0xfec0_0000];
    for (slot, address) in devices.iter_mut().zip(io_apics.chain(others)) {
        *slot = address;
    }
    kcore::pci::device_window(&ram, &ecam, &devices)
}

/// The boot module's bytes through the direct map.
pub fn module_bytes(range: PhysRange) -> &'static [u8] {
    let pointer = mm::phys_to_virt(range.start) as *const u8;
    // SAFETY: module ranges were reserved from the frame allocator before it was built, so
    // nothing else ever writes them; they are RAM, which the direct map covers.
    unsafe { core::slice::from_raw_parts(pointer, range.len() as usize) }
}

fn report_initrd(info: &BootInfo) {
    if info.modules().is_empty() {
        log::info!("initrd: none");
    }
    for module in info.modules() {
        let bytes = module_bytes(module.range);
        let mut files = 0;
        for entry in kcore::ustar::Archive::new(bytes) {
            match entry {
                Ok(entry) => {
                    files += 1;
                    log::info!("  module file {}{}{} ({} bytes)", entry.prefix, if entry.prefix.is_empty() { "" } else { "/" }, entry.name, entry.data.len());
                }
                Err(error) => log::warn!("  module \"{}\": bad archive: {error:?}", module.name.as_str()),
            }
        }
        log::info!("initrd: module \"{}\" at {:#x}, {} bytes, {} file(s)", module.name.as_str(), module.range.start, bytes.len(), files);
    }
}

fn fatal(args: core::fmt::Arguments) -> ! {
    console::print_emergency(format_args!("\n!!! FATAL: {args}\n"));
    #[cfg(feature = "ktest")]
    arch_impl::exit_qemu(abi::qemu_exit::FAILURE);
    #[cfg(not(feature = "ktest"))]
    arch_impl::halt_forever()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fatal(format_args!("kernel panic: {info}"))
}
