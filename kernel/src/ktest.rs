//! In-QEMU tests, compiled in only with the `ktest` feature and chosen by `ktest=NAME`.
//!
//! Each test ends the VM through `isa-debug-exit`, after printing `KTEST PASS name` or
//! `KTEST FAIL name: why`. Tests that provoke an exception register what they expect
//! first; the trap path hands the exception to [`on_exception`], which prints the normal
//! fault report and then checks vector, error code and CR2.
//!
//! The list of names lives in xtask (`xtask/src/test.rs`); an unknown name fails.

use spin::Mutex;

use crate::arch::x86_64::idt::{self, TrapFrame};
use crate::arch::x86_64::{apic, exit_qemu, gdt, paging, time::RefClock};
use crate::println;

#[derive(Clone, Copy)]
struct Expected {
    test: &'static str,
    vector: u64,
    error_code: Option<u64>,
    /// CR2 must lie in `[start, end)`.
    cr2: Option<(u64, u64)>,
    /// Resume here instead of ending the test (exceptions the kernel survives).
    resume: bool,
}

static EXPECTED: Mutex<Option<Expected>> = Mutex::new(None);

fn pass(test: &str) -> ! {
    println!("KTEST PASS {test}");
    exit_qemu(abi::qemu_exit::SUCCESS)
}

fn fail(test: &str, why: core::fmt::Arguments) -> ! {
    println!("KTEST FAIL {test}: {why}");
    exit_qemu(abi::qemu_exit::FAILURE)
}

fn expect(expected: Expected) {
    *EXPECTED.lock() = Some(expected);
}

/// Called by the trap path for every exception; true if the test consumed it.
pub fn on_exception(frame: &mut TrapFrame, cr2: u64) -> bool {
    let Some(expected) = EXPECTED.lock().take() else { return false };
    idt::report(frame, cr2);
    let test = expected.test;
    if frame.vector != expected.vector {
        fail(test, format_args!("expected vector {}, got {}", expected.vector, frame.vector));
    }
    if let Some(code) = expected.error_code {
        if frame.error_code != code {
            fail(test, format_args!("expected error code {code:#x}, got {:#x}", frame.error_code));
        }
    }
    if let Some((start, end)) = expected.cr2 {
        if !(start..end).contains(&cr2) {
            fail(test, format_args!("expected CR2 in {start:#x}..{end:#x}, got {cr2:#x}"));
        }
    }
    if expected.resume {
        println!("ktest: {test}: exception reported, resuming");
        return true;
    }
    pass(test)
}

static READ_ONLY: u64 = 0x5eed;

pub fn run(name: &str, clock: &RefClock) -> ! {
    println!("ktest: running {name}");
    match name {
        "boot" => boot(),
        "page_fault" => page_fault(),
        "write_rodata" => write_rodata(),
        "execute_data" => execute_data(),
        "stack_guard" => stack_guard(),
        "breakpoint" => breakpoint(),
        "invalid_opcode" => invalid_opcode(),
        "timer" => timer(clock),
        "wx_audit" => wx_audit(),
        other => fail(other, format_args!("no such kernel test")),
    }
}

/// Boot reached the end with a sane platform: memory, ACPI, clocks, features.
fn boot() -> ! {
    let (free, total) = crate::mm::frame_stats();
    if free == 0 || total == 0 {
        fail("boot", format_args!("frame allocator is empty"));
    }
    let platform = crate::PLATFORM.get().copied().unwrap_or_default();
    if platform.local_apic == 0 || platform.io_apic_count == 0 || platform.cpus == 0 {
        fail("boot", format_args!("ACPI did not find the LAPIC, an IOAPIC and a CPU"));
    }
    if crate::arch::x86_64::time::tsc_khz() == 0 {
        fail("boot", format_args!("TSC not calibrated"));
    }
    let features = crate::FEATURES.get().copied().unwrap_or_default();
    // Under `-cpu max` these must all be in force.
    if !(features.smep && features.smap && features.umip) {
        fail("boot", format_args!("SMEP/SMAP/UMIP expected under -cpu max"));
    }
    let cr4 = x86_64::registers::control::Cr4::read();
    use x86_64::registers::control::Cr4Flags;
    if !cr4.contains(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION | Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION | Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION | Cr4Flags::OSXSAVE) {
        fail("boot", format_args!("CR4 lacks SMEP/SMAP/UMIP/OSXSAVE: {cr4:?}"));
    }
    // xtask always boots the test kernel with an initrd holding etc/version.
    let info = crate::BOOT_INFO.get();
    let has_version = info.is_some_and(|info| {
        info.modules().iter().any(|module| {
            matches!(kcore::ustar::Archive::find(crate::module_bytes(module.range), "etc/version"), Ok(Some(_)))
        })
    });
    if !has_version {
        fail("boot", format_args!("the initrd (a ustar boot module holding etc/version) was not found"));
    }
    pass("boot")
}

/// A write to an unmapped kernel address: #PF, error code 0x2 (write, not present).
fn page_fault() -> ! {
    let address = paging::MMIO_REGION - 0x10_0000 + 0x123;
    expect(Expected { test: "page_fault", vector: 14, error_code: Some(0x2), cr2: Some((address, address + 1)), resume: false });
    // SAFETY: deliberately faults: nothing is mapped there; the fault ends the test.
    unsafe { core::ptr::write_volatile(address as *mut u8, 1) };
    fail("page_fault", format_args!("the write did not fault"))
}

/// A write to read-only data: #PF, error code 0x3 (write, protection violation).
fn write_rodata() -> ! {
    let address = (&raw const READ_ONLY) as u64;
    expect(Expected { test: "write_rodata", vector: 14, error_code: Some(0x3), cr2: Some((address, address + 8)), resume: false });
    // SAFETY: deliberately faults: the page is mapped read-only; the fault ends the test.
    unsafe { core::ptr::write_volatile(address as *mut u64, 1) };
    fail("write_rodata", format_args!("the write to rodata did not fault"))
}

/// A jump into writable data: #PF, error code 0x11 (instruction fetch, protection).
fn execute_data() -> ! {
    static mut CODE: [u8; 16] = [0xc3; 16]; // `ret`, in .data
    let address = (&raw mut CODE) as u64;
    expect(Expected { test: "execute_data", vector: 14, error_code: Some(0x11), cr2: Some((address, address + 1)), resume: false });
    // SAFETY: deliberately faults: .data is mapped no-execute; the fault ends the test.
    let function: extern "C" fn() = unsafe { core::mem::transmute(address as *const ()) };
    function();
    fail("execute_data", format_args!("executing .data did not fault"))
}

/// Unbounded recursion runs into the stack's guard page; the page fault cannot be
/// delivered on the overflowed stack, so the CPU raises a double fault, which runs on its
/// own IST stack and is reported.
fn stack_guard() -> ! {
    let rsp: u64;
    // SAFETY: reads RSP into a register; no memory is touched.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack)) };
    // Kernel stacks sit at the top of a 32-page slot whose pages below the stack are unmapped.
    let slot = rsp & !(32 * 4096 - 1);
    expect(Expected { test: "stack_guard", vector: 8, error_code: Some(0), cr2: Some((slot, rsp)), resume: false });
    recurse(0);
    fail("stack_guard", format_args!("recursion returned"))
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut buffer = [depth; 64];
    core::hint::black_box(&mut buffer);
    recurse(depth + 1) + buffer[3]
}

/// `int3` is reported and execution continues.
fn breakpoint() -> ! {
    expect(Expected { test: "breakpoint", vector: 3, error_code: None, cr2: None, resume: true });
    x86_64::instructions::interrupts::int3();
    if EXPECTED.lock().is_some() {
        fail("breakpoint", format_args!("int3 did not trap"));
    }
    pass("breakpoint")
}

/// `ud2` is reported as #UD with the registers.
fn invalid_opcode() -> ! {
    expect(Expected { test: "invalid_opcode", vector: 6, error_code: Some(0), cr2: None, resume: false });
    // SAFETY: deliberately raises #UD; the exception ends the test.
    unsafe { core::arch::asm!("ud2") };
    fail("invalid_opcode", format_args!("ud2 did not trap"))
}

/// Timer interrupts arrive, at the programmed rate measured by the reference clock.
fn timer(clock: &RefClock) -> ! {
    const TICKS: u64 = 20;
    let start = apic::ticks();
    if start == 0 && !x86_64::instructions::interrupts::are_enabled() {
        fail("timer", format_args!("interrupts are off"));
    }
    let begin = crate::arch::x86_64::time::micros_since_boot();
    // Give up after 100 periods' worth of wall time: interrupts are not arriving.
    while apic::ticks() < start + TICKS {
        if crate::arch::x86_64::time::micros_since_boot() - begin > 100 * TICKS * apic::tick_micros() {
            fail("timer", format_args!("only {} timer interrupts arrived", apic::ticks() - start));
        }
        crate::arch::x86_64::wait_for_interrupt();
    }
    let elapsed = crate::arch::x86_64::time::micros_since_boot() - begin;
    let expected = TICKS * apic::tick_micros();
    println!("ktest: {TICKS} ticks in {elapsed} us (expected about {expected} us, reference {})", clock.name());
    // Both clocks come from the same virtual clock; allow for scheduling noise on the host.
    if elapsed < expected / 2 || elapsed > expected * 3 {
        fail("timer", format_args!("tick rate off: {TICKS} ticks took {elapsed} us"));
    }
    pass("timer")
}

/// Walks the live page tables: nothing writable and executable, nothing user-accessible,
/// each kernel section with exactly its permissions, guard pages unmapped.
fn wx_audit() -> ! {
    let audit = paging::audit();
    println!("ktest: {} mappings checked", audit.leaves);
    if audit.writable_and_executable != 0 {
        fail("wx_audit", format_args!("{} W+X mappings, first at {:#x?}", audit.writable_and_executable, audit.first_violation));
    }
    if audit.user_accessible != 0 {
        fail("wx_audit", format_args!("{} user-accessible kernel mappings", audit.user_accessible));
    }
    for section in paging::kernel_sections() {
        let expected = (section.flags.contains(x86_64::structures::paging::PageTableFlags::WRITABLE), !section.flags.contains(x86_64::structures::paging::PageTableFlags::NO_EXECUTE));
        let mut page = section.start;
        while page < section.end {
            if paging::permissions(page) != Some(expected) {
                fail("wx_audit", format_args!("{} page {page:#x} has {:?}, expected {expected:?}", section.name, paging::permissions(page)));
            }
            page += 4096;
        }
    }
    if paging::permissions(0).is_some() {
        fail("wx_audit", format_args!("page 0 is mapped"));
    }
    for (bottom, _) in gdt::IST_STACKS.get().copied().unwrap_or_default() {
        if paging::permissions(bottom - 4096).is_some() {
            fail("wx_audit", format_args!("IST stack guard page below {bottom:#x} is mapped"));
        }
    }
    pass("wx_audit")
}
