//! In-QEMU tests, compiled in only with the `ktest` feature and chosen by `ktest=NAME`.
//!
//! Each test ends the VM through `isa-debug-exit`, after printing `KTEST PASS name` or
//! `KTEST FAIL name: why`. Tests that provoke an exception register what they expect
//! first; the trap path hands the exception to [`on_exception`], which prints the normal
//! fault report and then checks vector, error code and CR2.
//!
//! The list of names lives in xtask (`xtask/src/test.rs`); an unknown name fails.

use spin::Mutex;

use crate::arch::idt::{self, TrapFrame};
use crate::arch::{apic, exit_qemu, gdt, paging, time::RefClock};
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
    super::report_fastpath();
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
    if let Some(code) = expected.error_code
        && frame.error_code != code {
            fail(test, format_args!("expected error code {code:#x}, got {:#x}", frame.error_code));
        }
    if let Some((start, end)) = expected.cr2
        && !(start..end).contains(&cr2) {
            fail(test, format_args!("expected CR2 in {start:#x}..{end:#x}, got {cr2:#x}"));
        }
    if expected.resume {
        println!("ktest: {test}: exception reported, resuming");
        return true;
    }
    pass(test)
}

static READ_ONLY: u64 = 0x5eed;

/// The test thread (a kernel thread at the highest priority): runs the test the command
/// line names.
pub extern "C" fn thread_main() -> ! {
    let name = crate::BOOT_INFO.get().and_then(|info| kcore::cmdline::value(info.cmdline.as_str(), "ktest")).unwrap_or("");
    match crate::CLOCK.get() {
        Some(clock) => run(name, clock),
        None => fail(name, format_args!("no reference clock")),
    }
}

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
        "user_hello" => user_hello(),
        "user_syscall_errors" => user_syscall_errors(),
        "user_faults" => user_faults(),
        "scheduling" => scheduling(),
        "fpu_isolation" => fpu_isolation(),
        "user_wx" => user_wx(),
        "ipc_call_reply" => ipc_call_reply(),
        "ipc_errors" => ipc_errors(),
        "notification" => notification(),
        "peer_gone" => peer_gone(),
        "ipc_grant" => ipc_grant(),
        "aslr" => aslr(),
        "process_objects" => process_objects(),
        "user_driver" => user_driver(),
        "fuzz" => crate::harness::kfuzz::run(),
        "suite" => crate::harness::ksuite::run(),
        "lifecycle" => crate::harness::klifecycle::run(),
        "audit" => audit(),
        "bench" => crate::harness::kbench::run(),
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
    if crate::arch::time::tsc_khz() == 0 {
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
#[allow(unconditional_recursion, reason = "the stack_guard test overflows the stack on purpose")]
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
    let begin = crate::arch::time::micros_since_boot();
    // Give up after 100 periods' worth of wall time: interrupts are not arriving.
    while apic::ticks() < start + TICKS {
        if crate::arch::time::micros_since_boot() - begin > 100 * TICKS * apic::tick_micros() {
            fail("timer", format_args!("only {} timer interrupts arrived", apic::ticks() - start));
        }
        crate::arch::wait_for_interrupt();
    }
    let elapsed = crate::arch::time::micros_since_boot() - begin;
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

// ---------------------------------------------------------------------------------------
// User-mode tests. Each runs a small position-independent machine-code blob as a user
// thread in its own address space, with a console cap in slot 1, and checks how it ended.

use crate::sched::{self, UserStart};
use crate::thread::{Budget, Exit};
use crate::vspace::{self, Perms};

const USER_CODE: u64 = 0x40_0000;
const USER_STACK_TOP: u64 = 0x7fff_0000_0000;
const USER_IPC_BUFFER: u64 = 0x10_0000;
const KERNEL_SPACE: kcore::cap::SpaceId = kcore::cap::SpaceId::new(0);

/// A cap the next `start_blob` gives its thread: minted from the kernel space's slot
/// `from` into the thread's slot `to`.
#[derive(Clone, Copy)]
struct Grant {
    from: u32,
    to: u32,
    rights: abi::Rights,
    badge: u64,
}

static NEXT_GRANTS: Mutex<([Option<Grant>; 4], usize)> = Mutex::new(([None; 4], 0));


fn give(grants: &[Grant]) {
    let mut next = NEXT_GRANTS.lock();
    *next = ([None; 4], 0);
    for (slot, grant) in next.0.iter_mut().zip(grants) {
        *slot = Some(*grant);
    }
}

fn extra_caps() -> impl Iterator<Item = Grant> {
    let grants = core::mem::take(&mut *NEXT_GRANTS.lock());
    grants.0.into_iter().flatten()
}

/// A new endpoint or notification in the kernel space's `slot`, for tests to hand out.
fn kernel_object(test: &str, slot: u32, kind: abi::ObjectType) {
    if let Err(error) = crate::object::create(KERNEL_SPACE, abi::CapSlot::new(slot), kind, 0, 0) {
        fail(test, format_args!("cannot create a {kind:?}: {error:?}"));
    }
}

core::arch::global_asm!(
    r#"
    .section .rodata.user_blobs, "a"
    .global user_hello_start, user_hello_end
user_hello_start:
    mov eax, 19                 /* ConsoleWrite(slot 1, message, 18) */
    mov edi, 1
    lea rsi, [rip + user_hello_message]
    mov edx, 18
    syscall
    mov eax, 20                 /* ThreadExit(42) */
    mov edi, 42
    syscall
    ud2
user_hello_message:
    .ascii "hello from ring 3\n"
user_hello_end:

    /* Each step checks one syscall's error code; a mismatch exits with the step number. */
    .global user_syscall_errors_start, user_syscall_errors_end
user_syscall_errors_start:
    mov eax, 19                 /* 1: ConsoleWrite from a kernel address: InvalidArgument (2) */
    mov edi, 1
    mov rsi, 0xffffffff80200000
    mov edx, 8
    syscall
    mov edi, 1
    cmp rax, 2
    jne 9f
    mov eax, 19                 /* 2: from an unmapped address: InvalidArgument */
    mov edi, 1
    mov rsi, 0x1000
    mov edx, 8
    syscall
    mov edi, 2
    cmp rax, 2
    jne 9f
    mov eax, 19                 /* 3: too long: MessageTooLong (13) */
    mov edi, 1
    lea rsi, [rip]
    mov edx, 4097
    syscall
    mov edi, 3
    cmp rax, 13
    jne 9f
    mov eax, 999                /* 4: no such syscall: InvalidSyscall (1) */
    syscall
    mov edi, 4
    cmp rax, 1
    jne 9f
    mov eax, 19                 /* 5: an empty slot: EmptySlot (4) */
    mov edi, 5
    lea rsi, [rip]
    mov edx, 1
    syscall
    mov edi, 5
    cmp rax, 4
    jne 9f
    mov eax, 19                 /* 6: a slot beyond the space: InvalidSlot (3) */
    mov edi, 100000
    lea rsi, [rip]
    mov edx, 1
    syscall
    mov edi, 6
    cmp rax, 3
    jne 9f
    mov eax, 19                 /* 7: a pointer range that wraps around: InvalidArgument */
    mov edi, 1
    mov rsi, -16
    mov edx, 64
    syscall
    mov edi, 7
    cmp rax, 2
    jne 9f
    mov eax, 19                 /* 8: the user/kernel boundary straddled: InvalidArgument */
    mov edi, 1
    mov rsi, 0x00007ffffffffff8
    mov edx, 64
    syscall
    mov edi, 8
    cmp rax, 2
    jne 9f
    xor edi, edi                /* all as expected */
9:
    mov eax, 20
    syscall
    ud2
user_syscall_errors_end:

    /* Spins forever. */
    .global user_spin_start, user_spin_end
user_spin_start:
    jmp user_spin_start
user_spin_end:

    /* Keeps rdi in xmm0 and ymm1's upper half across 200 yields; exits 0 if they
       survived, 1 if not. */
    .global user_fpu_start, user_fpu_end
user_fpu_start:
    movq xmm0, rdi
    vpbroadcastq ymm1, xmm0
    mov ebx, 200
1:
    mov eax, 11                 /* Yield */
    syscall
    movq rax, xmm0
    cmp rax, rdi
    jne 2f
    vextracti128 xmm2, ymm1, 1
    movq rax, xmm2
    cmp rax, rdi
    jne 2f
    dec ebx
    jnz 1b
    xor edi, edi
    mov eax, 20
    syscall
2:
    mov edi, 1
    mov eax, 20
    syscall
    ud2
user_fpu_end:
"#
);

unsafe extern "C" {
    static user_hello_start: u8;
    static user_hello_end: u8;
    static user_syscall_errors_start: u8;
    static user_syscall_errors_end: u8;
    static user_spin_start: u8;
    static user_spin_end: u8;
    static user_fpu_start: u8;
    static user_fpu_end: u8;
}

fn blob(start: *const u8, end: *const u8) -> &'static [u8] {
    // SAFETY: both symbols delimit one blob in .rodata, which is mapped for the kernel's
    // lifetime and never written.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

/// Loads `code` into a fresh address space (code RX, one stack page RW), with a console
/// cap in slot 1, and starts it.
fn start_blob(test: &str, name: &str, code: &[u8], argument: u64, priority: u8, budget: Option<Budget>) -> crate::thread::ThreadId {
    let result = (|| -> Result<crate::thread::ThreadId, abi::ErrorCode> {
        let pml4 = vspace::create()?;
        let code_frame = crate::mm::allocate_frame().map_err(|_| abi::ErrorCode::OutOfResources)?;
        let target = crate::mm::phys_to_virt(code_frame) as *mut u8;
        // SAFETY: a fresh frame of 4 KiB in the direct map; the blob is smaller.
        unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), target, code.len().min(4096)) };
        vspace::map(pml4, USER_CODE, code_frame, Perms::READ_EXECUTE)?;
        let stack_frame = crate::mm::allocate_frame().map_err(|_| abi::ErrorCode::OutOfResources)?;
        vspace::map(pml4, USER_STACK_TOP - 4096, stack_frame, Perms::READ_WRITE)?;
        let buffer_frame = crate::mm::allocate_frame().map_err(|_| abi::ErrorCode::OutOfResources)?;
        vspace::map(pml4, USER_IPC_BUFFER, buffer_frame, Perms::READ_WRITE)?;
        // 1 MiB: table shares for a child space of its own (`abi::tables`).
        let space = crate::caps::create_space(1 << 20)?;
        crate::caps::grant_console(space, 1, abi::Rights::WRITE)?;
        for grant in extra_caps() {
            crate::caps::mint(KERNEL_SPACE, grant.from, space, grant.to, grant.rights, abi::Badge::new(grant.badge))?;
        }
        sched::spawn_user(name, UserStart {
            pml4,
            owns_space: true,
            cspace: Some(space),
            entry: USER_CODE,
            stack: USER_STACK_TOP,
            argument,
            argument2: 0,
            priority,
            budget,
            ipc_buffer: USER_IPC_BUFFER,
        })
        .map_err(|_| abi::ErrorCode::OutOfResources)
    })();
    match result {
        Ok(id) => id,
        Err(error) => fail(test, format_args!("cannot start user thread {name}: {error:?}")),
    }
}

fn expect_exit(test: &str, id: crate::thread::ThreadId, expected: Exit) {
    match sched::join(id) {
        Some(exit) if exit == expected => println!("ktest: {test}: thread ended as expected: {exit:?}"),
        other => fail(test, format_args!("expected {expected:?}, got {other:?}")),
    }
}

/// A user thread prints through its console cap and exits with a code the kernel sees.
pub fn user_hello() -> ! {
    let code = blob(&raw const user_hello_start, &raw const user_hello_end);
    let id = start_blob("user_hello", "hello", code, 0, 10, None);
    expect_exit("user_hello", id, Exit::Code(42));
    pass("user_hello")
}

/// Bad syscall arguments get exact error codes and the kernel carries on.
pub fn user_syscall_errors() -> ! {
    let code = blob(&raw const user_syscall_errors_start, &raw const user_syscall_errors_end);
    let id = start_blob("user_syscall_errors", "errors", code, 0, 10, None);
    match sched::join(id) {
        Some(Exit::Code(0)) => pass("user_syscall_errors"),
        other => fail("user_syscall_errors", format_args!("step failed (exit code = step number): {other:?}")),
    }
}

/// Privileged instructions, kernel memory and a null pointer, each from its own user
/// thread: each fault stops only that thread, with the right vector and address.
pub fn user_faults() -> ! {
    let cases: &[(&str, &[u8], u64, Option<u64>)] = &[
        ("hlt", &[0xf4], 13, None),
        ("cli", &[0xfa], 13, None),
        ("in al, 0x60", &[0xe4, 0x60], 13, None),
        ("mov rax, cr3", &[0x0f, 0x20, 0xd8], 13, None),
        ("wrmsr", &[0x0f, 0x30], 13, None),
        ("sgdt [rax] (UMIP)", &[0x0f, 0x01, 0x00], 13, None),
        // mov rax, [0xffffffff80200000] via movabs: read kernel text
        ("read kernel memory", &[0x48, 0xa1, 0x00, 0x00, 0x20, 0x80, 0xff, 0xff, 0xff, 0xff], 14, Some(0xffff_ffff_8020_0000)),
        // mov byte ptr [0], 1: write to the null page
        ("write null", &[0xc6, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0x01], 14, Some(0)),
        // jmp to the stack page (RW, NX)
        ("execute stack", &[0x48, 0xb8, 0x00, 0xf0, 0xff, 0xff, 0xfe, 0x7f, 0x00, 0x00, 0xff, 0xe0], 14, Some(USER_STACK_TOP - 4096)),
        // write to its own code page (RX)
        ("write code", &[0xc6, 0x05, 0xf9, 0xff, 0xff, 0xff, 0x01], 14, Some(USER_CODE)),
        ("ud2", &[0x0f, 0x0b], 6, None),
        ("divide by zero", &[0x31, 0xc9, 0xf7, 0xf1], 0, None),
    ];
    for (what, code, vector, address) in cases {
        let id = start_blob("user_faults", "faulter", code, 0, 10, None);
        match sched::join(id) {
            Some(Exit::Fault { vector: v, address: a, .. }) if v == *vector && address.is_none_or(|expected| a == expected) => {
                println!("ktest: user_faults: {what}: vector {v}, address {a:#x}: stopped the thread only");
            }
            other => fail("user_faults", format_args!("{what}: expected vector {vector} at {address:x?}, got {other:x?}")),
        }
    }
    pass("user_faults")
}

/// Two spinning threads of equal priority both get the CPU (preemption, round robin),
/// and a third with a budget of 2 ticks per 10 gets about a fifth of what it would.
pub fn scheduling() -> ! {
    let spin = blob(&raw const user_spin_start, &raw const user_spin_end);
    let a = start_blob("scheduling", "spin-a", spin, 0, 5, None);
    let b = start_blob("scheduling", "spin-b", spin, 0, 5, None);
    let limited = start_blob("scheduling", "spin-budget", spin, 0, 20, Some(Budget { budget_us: 20_000, period_us: 100_000 }));
    sched::sleep_ticks(200);
    let (ta, tb, tl) = (sched::ticks_run(a), sched::ticks_run(b), sched::ticks_run(limited));
    println!("ktest: scheduling: in 200 ticks: spin-a ran {ta}, spin-b ran {tb}, spin-budget (2/10, higher priority) ran {tl}");
    if ta == 0 || tb == 0 {
        fail("scheduling", format_args!("a spinning thread starved another of equal priority"));
    }
    if !(30..=50).contains(&tl) {
        fail("scheduling", format_args!("the budgeted thread ran {tl} ticks of 200; its budget allows 40"));
    }
    if ta.abs_diff(tb) > (ta + tb) / 4 {
        fail("scheduling", format_args!("round robin is unfair: {ta} vs {tb}"));
    }
    pass("scheduling")
}

/// Vector registers are per thread: two threads keep different values in xmm0/ymm1
/// across 200 context switches each.
pub fn fpu_isolation() -> ! {
    let code = blob(&raw const user_fpu_start, &raw const user_fpu_end);
    let a = start_blob("fpu_isolation", "fpu-a", code, 0x1111_2222_3333_4444, 10, None);
    let b = start_blob("fpu_isolation", "fpu-b", code, 0x5555_6666_7777_8888, 10, None);
    expect_exit("fpu_isolation", a, Exit::Code(0));
    expect_exit("fpu_isolation", b, Exit::Code(0));
    pass("fpu_isolation")
}

/// The address-space API refuses writable+executable user pages and kernel addresses.
pub fn user_wx() -> ! {
    let pml4 = vspace::create().unwrap_or_else(|error| fail("user_wx", format_args!("{error:?}")));
    let frame = crate::mm::allocate_frame().unwrap_or_else(|error| fail("user_wx", format_args!("{error:?}")));
    let wx = vspace::map(pml4, USER_CODE, frame, Perms { write: true, execute: true });
    let kernel = vspace::map(pml4, 0xffff_ffff_8000_0000, frame, Perms::READ);
    if wx != Err(abi::ErrorCode::InvalidArgument) || kernel != Err(abi::ErrorCode::InvalidArgument) {
        fail("user_wx", format_args!("W+X mapping gave {wx:?}, kernel-half mapping gave {kernel:?}"));
    }
    vspace::destroy(pml4, false);
    pass("user_wx")
}

// ---------------------------------------------------------------------------------------
// IPC tests. Slot 2 holds an endpoint cap and slot 3 a notification cap, with the rights
// and badges each test mints. Exit codes name the failed step; 0 means every step passed.

core::arch::global_asm!(
    r#"
    .section .rodata.user_blobs, "a"
    /* Receives on slot 2 and answers every call with word0 + 1, label = the caller's badge. */
    .global user_echo_server_start, user_echo_server_end
user_echo_server_start:
    mov eax, 4
    mov edi, 2
    xor esi, esi
    syscall
1:
    add rdx, 1
    mov rsi, rdi
    shl rsi, 32
    or rsi, 1
    mov r10, 0xdead            /* beyond the reply's length: must not reach the caller */
    mov eax, 7
    mov edi, 2
    syscall
    jmp 1b
user_echo_server_end:

    /* 100 calls through slot 2; checks the answers, its badge, zeroed extra registers,
       then error paths. rdi at start = the badge it expects. */
    .global user_echo_client_start, user_echo_client_end
user_echo_client_start:
    mov rbp, rdi
    xor ebx, ebx
1:
    mov eax, 3
    mov edi, 2
    mov esi, 1
    mov rdx, rbx
    syscall
    mov edi, 1
    test rax, rax
    jnz 9f
    lea rcx, [rbx + 1]
    mov edi, 2
    cmp rdx, rcx
    jne 9f
    mov rax, rsi
    shr rax, 32
    mov edi, 3
    cmp rax, rbp
    jne 9f
    mov edi, 4
    test r10, r10
    jnz 9f
    inc rbx
    cmp rbx, 100
    jb 1b
    mov eax, 6                  /* Reply with no call pending: IllegalOperation */
    xor esi, esi
    syscall
    mov edi, 5
    cmp rax, 9
    jne 9f
    mov eax, 5                  /* NbRecv through a write-only cap: InsufficientRights */
    mov edi, 2
    syscall
    mov edi, 6
    cmp rax, 7
    jne 9f
    mov eax, 4                  /* Recv on the console cap: WrongObjectType */
    mov edi, 1
    xor esi, esi
    syscall
    mov edi, 7
    cmp rax, 6
    jne 9f
    xor edi, edi
9:
    mov eax, 20
    syscall
    ud2
user_echo_client_end:

    /* Non-blocking forms, timeouts, notifications, object creation and cap operations. */
    .global user_ipc_errors_start, user_ipc_errors_end
user_ipc_errors_start:
    mov eax, 5                  /* 1: NbRecv, no sender: WouldBlock */
    mov edi, 2
    syscall
    mov edi, 1
    cmp rax, 12
    jne 9f
    mov eax, 2                  /* 2: NbSend, no receiver: WouldBlock */
    mov edi, 2
    xor esi, esi
    syscall
    mov edi, 2
    cmp rax, 12
    jne 9f
    mov eax, 4                  /* 3: Recv with a 3-tick timeout: TimedOut */
    mov edi, 2
    mov esi, 3
    syscall
    mov edi, 3
    cmp rax, 15
    jne 9f
    mov eax, 9                  /* 4: Wait with a 3-tick timeout: TimedOut */
    mov edi, 3
    mov esi, 3
    syscall
    mov edi, 4
    cmp rax, 15
    jne 9f
    mov eax, 8                  /* 5: Signal through an unbadged cap */
    mov edi, 3
    syscall
    mov edi, 5
    test rax, rax
    jnz 9f
    mov eax, 10                 /* 6, 7: Poll takes the word: 1 */
    mov edi, 3
    syscall
    mov rcx, rdi
    mov edi, 6
    test rax, rax
    jnz 9f
    mov edi, 7
    cmp rcx, 1
    jne 9f
    mov eax, 10                 /* 8: and leaves 0 */
    mov edi, 3
    syscall
    mov rcx, rdi
    mov edi, 8
    test rcx, rcx
    jnz 9f
    mov eax, 1                  /* 9: reserved bits in the info word: InvalidArgument */
    mov edi, 2
    mov esi, 0x2000
    syscall
    mov edi, 9
    cmp rax, 2
    jne 9f
    mov eax, 1                  /* 10: 481 words: MessageTooLong */
    mov edi, 2
    mov esi, 481
    syscall
    mov edi, 10
    cmp rax, 13
    jne 9f
    mov eax, 18                 /* 11: ObjectCreate(Endpoint, slot 5) */
    mov edi, 4
    mov esi, 5
    syscall
    mov edi, 11
    test rax, rax
    jnz 9f
    mov eax, 18                 /* 12: again into slot 5: SlotOccupied */
    mov edi, 4
    mov esi, 5
    syscall
    mov edi, 12
    cmp rax, 5
    jne 9f
    mov eax, 18                 /* 13: a kind that cannot be created (Untyped): InvalidArgument */
    mov edi, 7
    mov esi, 6
    syscall
    mov edi, 13
    cmp rax, 2
    jne 9f
    mov eax, 12                 /* 14-16: identify slot 5: Endpoint, all rights */
    mov edi, 5
    syscall
    mov edi, 14
    test rax, rax
    jnz 9f
    mov edi, 15
    cmp rdx, 4
    jne 9f
    mov edi, 16
    cmp r10, 31
    jne 9f
    mov eax, 14                 /* 17: mint 5 -> 6, Read only, badge 77 */
    mov edi, 5
    mov esi, 6
    mov edx, 1
    mov r10d, 77
    syscall
    mov edi, 17
    test rax, rax
    jnz 9f
    mov eax, 14                 /* 18: re-badge 6 -> 7: BadgeAlreadySet */
    mov edi, 6
    mov esi, 7
    mov edx, 1
    mov r10d, 78
    syscall
    mov edi, 18
    cmp rax, 8
    jne 9f
    mov eax, 14                 /* 19: mint 6 -> 7 asking for Write: gets Read & Write = none */
    mov edi, 6
    mov esi, 7
    mov edx, 2
    xor r10d, r10d
    syscall
    mov edi, 19
    test rax, rax
    jnz 9f
    mov eax, 12                 /* 20, 21: identify 7: no rights, badge 77 kept */
    mov edi, 7
    syscall
    mov edi, 20
    test r10, r10
    jnz 9f
    mov edi, 21
    cmp r8, 77
    jne 9f
    mov eax, 17                 /* 22: revoke 5 */
    mov edi, 5
    syscall
    mov edi, 22
    test rax, rax
    jnz 9f
    mov eax, 12                 /* 23: slot 6 is empty now */
    mov edi, 6
    syscall
    mov edi, 23
    cmp rax, 4
    jne 9f
    mov eax, 12                 /* 24: and so is slot 7 (a grandchild) */
    mov edi, 7
    syscall
    mov edi, 24
    cmp rax, 4
    jne 9f
    mov eax, 16                 /* 25: delete 5, the last cap: the endpoint is destroyed */
    mov edi, 5
    syscall
    mov edi, 25
    test rax, rax
    jnz 9f
    mov eax, 16                 /* 26: delete 5 again: EmptySlot */
    mov edi, 5
    syscall
    mov edi, 26
    cmp rax, 4
    jne 9f
    mov eax, 15                 /* 27: move console 1 -> 8 */
    mov edi, 1
    mov esi, 8
    syscall
    mov edi, 27
    test rax, rax
    jnz 9f
    mov eax, 19                 /* 28: slot 1 is empty after the move */
    mov edi, 1
    lea rsi, [rip]
    mov edx, 1
    syscall
    mov edi, 28
    cmp rax, 4
    jne 9f
    mov eax, 14                 /* 29: mint the console with a badge: InvalidArgument */
    mov edi, 8
    mov esi, 9
    mov edx, 2
    mov r10d, 1
    syscall
    mov edi, 29
    cmp rax, 2
    jne 9f
    mov eax, 13                 /* 30: copy onto itself: SlotOccupied */
    mov edi, 8
    mov esi, 8
    syscall
    mov edi, 30
    cmp rax, 5
    jne 9f
    xor edi, edi
9:
    mov eax, 20
    syscall
    ud2
user_ipc_errors_end:

    /* Waits on slot 3 and exits with the word it got (1000 on an error). */
    .global user_waiter_start, user_waiter_end
user_waiter_start:
    mov eax, 9
    mov edi, 3
    xor esi, esi
    syscall
    test rax, rax
    jz 1f
    mov edi, 1000
1:
    mov eax, 20
    syscall
    ud2
user_waiter_end:

    /* Signals slot 3 and exits with the error code. */
    .global user_signaller_start, user_signaller_end
user_signaller_start:
    mov eax, 8
    mov edi, 3
    syscall
    mov rdi, rax
    mov eax, 20
    syscall
    ud2
user_signaller_end:

    /* Receives one message on slot 2 and exits without replying. */
    .global user_receive_once_start, user_receive_once_end
user_receive_once_start:
    mov eax, 4
    mov edi, 2
    xor esi, esi
    syscall
    xor edi, edi
    mov eax, 20
    syscall
    ud2
user_receive_once_end:

    /* Calls slot 2 once and exits with the error code. */
    .global user_call_once_start, user_call_once_end
user_call_once_start:
    mov eax, 3
    mov edi, 2
    xor esi, esi
    syscall
    mov rdi, rax
    mov eax, 20
    syscall
    ud2
user_call_once_end:

    /* Sends its console cap (slot 1) and a 20-word message (words 8..20 = 3 * index in
       the IPC buffer) through slot 2; exits with the error code. */
    .global user_grant_sender_start, user_grant_sender_end
user_grant_sender_start:
    mov ecx, 8
1:
    lea rax, [rcx + rcx * 2]
    mov [0x100000 + rcx * 8], rax
    inc ecx
    cmp ecx, 20
    jb 1b
    mov qword ptr [0x100000 + 3840], 1
    mov eax, 1
    mov edi, 2
    mov esi, 0x414              /* length 20, one cap */
    syscall
    mov rdi, rax
    mov eax, 20
    syscall
    ud2
user_grant_sender_end:

    /* Receives into slot 5 through slot 2; checks one cap arrived, the length and word 19,
       then writes through the received console cap. Exit code: the failed step. */
    .global user_grant_receiver_start, user_grant_receiver_end
user_grant_receiver_start:
    mov qword ptr [0x100000 + 3872], 5
    mov eax, 4
    mov edi, 2
    xor esi, esi
    syscall
    mov edi, 1
    test rax, rax
    jnz 9f
    mov rax, rsi
    shr rax, 10
    and eax, 7
    mov edi, 2
    cmp eax, 1
    jne 9f
    mov eax, esi
    and eax, 0x3ff
    mov edi, 3
    cmp eax, 20
    jne 9f
    mov edi, 4
    cmp qword ptr [0x100000 + 19 * 8], 57
    jne 9f
    mov eax, 19
    mov edi, 5
    lea rsi, [rip + 2f]
    mov edx, 19
    syscall
    mov edi, 5
    test rax, rax
    jnz 9f
    xor edi, edi
9:
    mov eax, 20
    syscall
    ud2
2:
    .ascii "granted cap works!\n"
user_grant_receiver_end:
"#
);

unsafe extern "C" {
    static user_echo_server_start: u8;
    static user_echo_server_end: u8;
    static user_echo_client_start: u8;
    static user_echo_client_end: u8;
    static user_ipc_errors_start: u8;
    static user_ipc_errors_end: u8;
    static user_waiter_start: u8;
    static user_waiter_end: u8;
    static user_signaller_start: u8;
    static user_signaller_end: u8;
    static user_receive_once_start: u8;
    static user_receive_once_end: u8;
    static user_call_once_start: u8;
    static user_call_once_end: u8;
    static user_grant_sender_start: u8;
    static user_grant_sender_end: u8;
    static user_grant_receiver_start: u8;
    static user_grant_receiver_end: u8;
}

const R: abi::Rights = abi::Rights::READ;
const W: abi::Rights = abi::Rights::WRITE;

/// Call and reply between two address spaces; each client sees its own badge; reply
/// registers beyond the length are zeroed; reply with none pending, receive through a
/// write-only cap and receive on a non-endpoint are refused.
pub fn ipc_call_reply() -> ! {
    const TEST: &str = "ipc_call_reply";
    kernel_object(TEST, 10, abi::ObjectType::Endpoint);
    give(&[Grant { from: 10, to: 2, rights: R, badge: 0 }]);
    let server = start_blob(TEST, "echo-server", blob(&raw const user_echo_server_start, &raw const user_echo_server_end), 0, 12, None);
    let client = blob(&raw const user_echo_client_start, &raw const user_echo_client_end);
    give(&[Grant { from: 10, to: 2, rights: W, badge: 7 }]);
    let a = start_blob(TEST, "client-7", client, 7, 10, None);
    give(&[Grant { from: 10, to: 2, rights: W, badge: 9 }]);
    let b = start_blob(TEST, "client-9", client, 9, 10, None);
    expect_exit(TEST, a, Exit::Code(0));
    expect_exit(TEST, b, Exit::Code(0));
    let _ = server;
    pass(TEST)
}

/// Non-blocking forms, timeouts, notification signal/poll, object creation and every cap
/// operation's main error paths, from user space.
pub fn ipc_errors() -> ! {
    const TEST: &str = "ipc_errors";
    kernel_object(TEST, 10, abi::ObjectType::Endpoint);
    kernel_object(TEST, 11, abi::ObjectType::Notification);
    give(&[Grant { from: 10, to: 2, rights: R.union(W), badge: 0 }, Grant { from: 11, to: 3, rights: R.union(W), badge: 0 }]);
    let id = start_blob(TEST, "errors", blob(&raw const user_ipc_errors_start, &raw const user_ipc_errors_end), 0, 10, None);
    match sched::join(id) {
        Some(Exit::Code(0)) => pass(TEST),
        other => fail(TEST, format_args!("step failed (exit code = step): {other:?}")),
    }
}

/// A badged signal wakes a waiter in another address space with the badge bits.
pub fn notification() -> ! {
    const TEST: &str = "notification";
    kernel_object(TEST, 11, abi::ObjectType::Notification);
    give(&[Grant { from: 11, to: 3, rights: R, badge: 0 }]);
    let waiter = start_blob(TEST, "waiter", blob(&raw const user_waiter_start, &raw const user_waiter_end), 0, 10, None);
    sched::sleep_ticks(2); // the waiter blocks first
    give(&[Grant { from: 11, to: 3, rights: W, badge: 0x5 }]);
    let signaller = start_blob(TEST, "signaller", blob(&raw const user_signaller_start, &raw const user_signaller_end), 0, 10, None);
    expect_exit(TEST, signaller, Exit::Code(0));
    expect_exit(TEST, waiter, Exit::Code(0x5));
    pass(TEST)
}

/// A server that dies holding a call answers it with PeerGone; so does a destroyed endpoint.
pub fn peer_gone() -> ! {
    const TEST: &str = "peer_gone";
    kernel_object(TEST, 10, abi::ObjectType::Endpoint);
    give(&[Grant { from: 10, to: 2, rights: R, badge: 0 }]);
    let server = start_blob(TEST, "dies", blob(&raw const user_receive_once_start, &raw const user_receive_once_end), 0, 10, None);
    give(&[Grant { from: 10, to: 2, rights: W, badge: 0 }]);
    let caller = start_blob(TEST, "caller", blob(&raw const user_call_once_start, &raw const user_call_once_end), 0, 10, None);
    expect_exit(TEST, server, Exit::Code(0));
    expect_exit(TEST, caller, Exit::Code(abi::ErrorCode::PeerGone as u64));
    // A caller queued on an endpoint whose last cap goes away.
    kernel_object(TEST, 12, abi::ObjectType::Endpoint);
    give(&[Grant { from: 12, to: 2, rights: W, badge: 0 }]);
    let queued = start_blob(TEST, "queued", blob(&raw const user_call_once_start, &raw const user_call_once_end), 0, 10, None);
    sched::sleep_ticks(2);
    let revoked = crate::caps::with(|store| store.decode_revoke(kcore::cap::SlotRef::new(KERNEL_SPACE, 12)).map(|op| op.perform()));
    let mut reaped = crate::caps::Reaped::new();
    let deleted = crate::caps::with(|store| store.decode_delete(kcore::cap::SlotRef::new(KERNEL_SPACE, 12)).map(|op| op.perform(&mut reaped)));
    reaped.finish();
    if revoked.is_err() || deleted.is_err() {
        fail(TEST, format_args!("revoke {revoked:?}, delete {deleted:?}"));
    }
    expect_exit(TEST, queued, Exit::Code(abi::ErrorCode::PeerGone as u64));
    pass(TEST)
}

/// Caps travel only with Grant: without it the send fails; with it the receiver gets a
/// working console cap in the slot it named, plus a 20-word message through the buffers.
pub fn ipc_grant() -> ! {
    const TEST: &str = "ipc_grant";
    kernel_object(TEST, 10, abi::ObjectType::Endpoint);
    give(&[Grant { from: 10, to: 2, rights: R, badge: 0 }]);
    let receiver = start_blob(TEST, "receiver", blob(&raw const user_grant_receiver_start, &raw const user_grant_receiver_end), 0, 10, None);
    let sender = blob(&raw const user_grant_sender_start, &raw const user_grant_sender_end);
    give(&[Grant { from: 10, to: 2, rights: W, badge: 0 }]);
    let without = start_blob(TEST, "no-grant", sender, 0, 10, None);
    expect_exit(TEST, without, Exit::Code(abi::ErrorCode::InsufficientRights as u64));
    give(&[Grant { from: 10, to: 2, rights: W.union(abi::Rights::GRANT), badge: 0 }]);
    let with = start_blob(TEST, "grant", sender, 0, 10, None);
    expect_exit(TEST, with, Exit::Code(0));
    expect_exit(TEST, receiver, Exit::Code(0));
    pass(TEST)
}

/// `bin/hello` (a real Rust program on libcap) loaded six times by the ELF loader: each
/// copy at a different random base and stack, each runs and exits 0.
pub fn aslr() -> ! {
    const TEST: &str = "aslr";
    let Some(initrd) = crate::BOOT_INFO.get().and_then(|info| info.modules().first().copied()) else {
        fail(TEST, format_args!("no initrd"));
    };
    let bytes = crate::module_bytes(initrd.range);
    let Ok(Some(image)) = kcore::ustar::Archive::find(bytes, "bin/hello") else {
        fail(TEST, format_args!("bin/hello is not in the initrd"));
    };
    let mut bases = [0u64; 6];
    let mut stacks = [0u64; 6];
    for (base, stack) in bases.iter_mut().zip(stacks.iter_mut()) {
        let loaded = crate::process::load(image).unwrap_or_else(|error| fail(TEST, format_args!("load: {error:?}")));
        *base = loaded.base;
        *stack = loaded.stack_top;
        let space = crate::caps::create_space(1 << 20).unwrap_or_else(|error| fail(TEST, format_args!("{error:?}")));
        if let Err(error) = crate::caps::grant_console(space, 1, abi::Rights::WRITE) {
            fail(TEST, format_args!("{error:?}"));
        }
        let id = sched::spawn_user("hello", UserStart {
            pml4: loaded.pml4,
            owns_space: true,
            cspace: Some(space),
            entry: loaded.entry,
            stack: loaded.stack_top,
            argument: 0,
            argument2: 0,
            priority: 10,
            budget: None,
            ipc_buffer: loaded.ipc_buffer,
        })
        .unwrap_or_else(|error| fail(TEST, format_args!("{error:?}")));
        expect_exit(TEST, id, Exit::Code(0));
    }
    println!("ktest: aslr: image bases {bases:x?}");
    println!("ktest: aslr: stack tops {stacks:x?}");
    for (i, (a, stack)) in bases.iter().zip(stacks.iter()).enumerate() {
        if a % 4096 != 0 || stack % 4096 != 0 {
            fail(TEST, format_args!("unaligned base or stack"));
        }
        for b in bases.iter().skip(i + 1) {
            if a == b {
                fail(TEST, format_args!("two loads share base {a:#x}"));
            }
        }
    }
    pass(TEST)
}

core::arch::global_asm!(
    r#"
    .section .rodata.user_blobs, "a"
    /* Builds a process from capabilities: frame, address space, cspace, thread, endpoint;
       checks the error paths; starts the thread on a zeroed code page, which faults at 0;
       receives the fault report on the endpoint; tears everything down. */
    .global user_process_start, user_process_end
user_process_start:
    mov eax, 18                 /* 1: Frame -> 10 */
    mov edi, 8
    mov esi, 10
    xor edx, edx
    syscall
    mov edi, 1
    test rax, rax
    jnz 9f
    mov eax, 18                 /* 2: AddressSpace -> 11 */
    mov edi, 2
    mov esi, 11
    syscall
    mov edi, 2
    test rax, rax
    jnz 9f
    mov eax, 18                 /* 3: CSpace with a 4 KiB quota -> 12 */
    mov edi, 1
    mov esi, 12
    mov edx, 4096
    syscall
    mov edi, 3
    test rax, rax
    jnz 9f
    mov eax, 25                 /* 26: give the cspace a cap to itself: IllegalOperation */
    mov edi, 12
    mov esi, 12
    mov edx, 5
    mov r10d, 31
    xor r8d, r8d
    syscall
    mov edi, 26
    cmp rax, 9
    jne 9f
    mov eax, 13                 /* 27: copy it within our own space: fine (we are its parent) */
    mov edi, 12
    mov esi, 17
    syscall
    mov edi, 27
    test rax, rax
    jnz 9f
    mov eax, 16
    mov edi, 17
    syscall
    mov eax, 18                 /* 4: Thread -> 13 */
    mov edi, 3
    mov esi, 13
    syscall
    mov edi, 4
    test rax, rax
    jnz 9f
    mov eax, 18                 /* 5: Endpoint -> 14 */
    mov edi, 4
    mov esi, 14
    syscall
    mov edi, 5
    test rax, rax
    jnz 9f
    mov eax, 18                 /* 6: a CSpace with a 1 TiB quota: OutOfQuota */
    mov edi, 1
    mov esi, 16
    mov rdx, 0x10000000000
    syscall
    mov edi, 6
    cmp rax, 10
    jne 9f
    mov eax, 21                 /* 7: map writable and executable: InvalidArgument */
    mov edi, 11
    mov esi, 10
    mov edx, 0x400000
    mov r10d, 3
    syscall
    mov edi, 7
    cmp rax, 2
    jne 9f
    mov eax, 14                 /* 8: mint a read-only frame cap 10 -> 15 */
    mov edi, 10
    mov esi, 15
    mov edx, 1
    xor r10d, r10d
    syscall
    mov edi, 8
    test rax, rax
    jnz 9f
    mov eax, 21                 /* 9: map it writable: InsufficientRights */
    mov edi, 11
    mov esi, 15
    mov edx, 0x600000
    mov r10d, 1
    syscall
    mov edi, 9
    cmp rax, 7
    jne 9f
    mov eax, 21                 /* 10: map into the kernel half: InvalidArgument */
    mov edi, 11
    mov esi, 10
    mov rdx, 0xffff800000000000
    xor r10d, r10d
    syscall
    mov edi, 10
    cmp rax, 2
    jne 9f
    mov eax, 21                 /* 11: map the frame executable at 0x400000 */
    mov edi, 11
    mov esi, 10
    mov edx, 0x400000
    mov r10d, 2
    syscall
    mov edi, 11
    test rax, rax
    jnz 9f
    mov eax, 21                 /* 12: map over it again: SlotOccupied */
    mov edi, 11
    mov esi, 10
    mov edx, 0x400000
    mov r10d, 2
    syscall
    mov edi, 12
    cmp rax, 5
    jne 9f
    mov eax, 24                 /* 13: a priority above ours: InsufficientRights */
    mov edi, 13
    mov esi, 20
    xor edx, edx
    xor r10d, r10d
    mov r8, -1
    syscall
    mov edi, 13
    cmp rax, 7
    jne 9f
    mov eax, 24                 /* 14: priority 5, faults reported to endpoint 14 */
    mov edi, 13
    mov esi, 5
    xor edx, edx
    xor r10d, r10d
    mov r8d, 14
    syscall
    mov edi, 14
    test rax, rax
    jnz 9f
    mov eax, 23                 /* 15: start it at 0x400000 */
    mov edi, 13
    mov esi, 11
    mov edx, 12
    mov r10d, 0x400000
    mov r8d, 0x500000
    xor r9d, r9d
    syscall
    mov edi, 15
    test rax, rax
    jnz 9f
    mov eax, 23                 /* 16: start it again: IllegalOperation */
    mov edi, 13
    mov esi, 11
    mov edx, 12
    mov r10d, 0x400000
    mov r8d, 0x500000
    xor r9d, r9d
    syscall
    mov edi, 16
    cmp rax, 9
    jne 9f
    mov eax, 4                  /* 17-20: the fault report: label 1, #PF (14) at 0 */
    mov edi, 14
    mov esi, 100
    syscall
    mov edi, 17
    test rax, rax
    jnz 9f
    shr rsi, 32
    mov edi, 18
    cmp rsi, 1
    jne 9f
    mov edi, 19
    cmp rdx, 14
    jne 9f
    mov edi, 20
    test r8, r8
    jnz 9f
    mov eax, 26                 /* 21: kill the dead thread: fine */
    mov edi, 13
    syscall
    mov edi, 21
    test rax, rax
    jnz 9f
    mov eax, 16                 /* 22-25: delete thread, address space, both frame caps */
    mov edi, 13
    syscall
    mov edi, 22
    test rax, rax
    jnz 9f
    mov eax, 16
    mov edi, 11
    syscall
    mov edi, 23
    test rax, rax
    jnz 9f
    mov eax, 16
    mov edi, 10
    syscall
    mov edi, 24
    test rax, rax
    jnz 9f
    mov eax, 16
    mov edi, 15
    syscall
    mov edi, 25
    test rax, rax
    jnz 9f
    xor edi, edi
9:
    mov eax, 20
    syscall
    ud2
user_process_end:
"#
);

unsafe extern "C" {
    static user_process_start: u8;
    static user_process_end: u8;
}

/// A user thread builds a process from capabilities, sees every error path, gets the
/// child's fault as a message on the fault endpoint, and tears it down; afterwards the
/// frame table and free memory are back where they started.
pub fn process_objects() -> ! {
    const TEST: &str = "process_objects";
    let frames_before = crate::frame::live();
    let code = blob(&raw const user_process_start, &raw const user_process_end);
    let id = start_blob(TEST, "builder", code, 0, 10, None);
    match sched::join(id) {
        Some(Exit::Code(0)) => {}
        other => fail(TEST, format_args!("step failed (exit code = step): {other:?}")),
    }
    let frames_after = crate::frame::live();
    if frames_after != frames_before {
        fail(TEST, format_args!("frame objects leaked: {frames_before} before, {frames_after} after"));
    }
    pass(TEST)
}

core::arch::global_asm!(
    r#"
    .section .rodata.user_blobs, "a"
    /* A user-space RTC driver: slot 2 = IRQ 8, slot 3 = notification, slot 4 = ports
       0x70-0x71. Turns on the periodic interrupt, takes three through the notification,
       turns it off, then checks the port-range error paths. */
    .global user_rtc_driver_start, user_rtc_driver_end
user_rtc_driver_start:
    mov eax, 29                 /* 1: bind IRQ 8 to the notification */
    mov edi, 2
    mov esi, 3
    syscall
    mov edi, 1
    test rax, rax
    jnz 9f
    mov eax, 28                 /* 2: select register B */
    mov edi, 4
    mov esi, 0x70
    mov edx, 1
    mov r10d, 0x8b
    syscall
    mov edi, 2
    test rax, rax
    jnz 9f
    mov eax, 27                 /* 3: read it */
    mov edi, 4
    mov esi, 0x71
    mov edx, 1
    syscall
    mov edi, 3
    test rax, rax
    jnz 9f
    mov rbx, rdx
    mov eax, 28
    mov edi, 4
    mov esi, 0x70
    mov edx, 1
    mov r10d, 0x8b
    syscall
    mov r10, rbx                /* 4: set PIE (periodic interrupt enable) */
    or r10, 0x40
    mov eax, 28
    mov edi, 4
    mov esi, 0x71
    mov edx, 1
    syscall
    mov edi, 4
    test rax, rax
    jnz 9f
    mov ebp, 3
1:
    mov eax, 28                 /* read register C: acknowledges the RTC */
    mov edi, 4
    mov esi, 0x70
    mov edx, 1
    mov r10d, 0x0c
    syscall
    mov eax, 27
    mov edi, 4
    mov esi, 0x71
    mov edx, 1
    syscall
    mov eax, 9                  /* 5, 6: wait (1 s at most) for the interrupt: word 1 */
    mov edi, 3
    mov esi, 100
    syscall
    mov rcx, rdi
    mov edi, 5
    test rax, rax
    jnz 9f
    mov edi, 6
    cmp rcx, 1
    jne 9f
    mov eax, 30                 /* 7: acknowledge the line */
    mov edi, 2
    syscall
    mov edi, 7
    test rax, rax
    jnz 9f
    dec ebp
    jnz 1b
    mov eax, 28                 /* turn PIE off again */
    mov edi, 4
    mov esi, 0x70
    mov edx, 1
    mov r10d, 0x8b
    syscall
    mov r10, rbx
    mov eax, 28
    mov edi, 4
    mov esi, 0x71
    mov edx, 1
    syscall
    mov eax, 27                 /* 8: a port outside the range: InsufficientRights */
    mov edi, 4
    mov esi, 0x80
    mov edx, 1
    syscall
    mov edi, 8
    cmp rax, 7
    jne 9f
    mov eax, 27                 /* 9: width 3: InvalidArgument */
    mov edi, 4
    mov esi, 0x70
    mov edx, 3
    syscall
    mov edi, 9
    cmp rax, 2
    jne 9f
    mov eax, 27                 /* 10: 0x71 as a 16-bit port runs past the range */
    mov edi, 4
    mov esi, 0x71
    mov edx, 2
    syscall
    mov edi, 10
    cmp rax, 7
    jne 9f
    mov eax, 30                 /* 11: IrqAck on the console cap: WrongObjectType */
    mov edi, 1
    syscall
    mov edi, 11
    cmp rax, 6
    jne 9f
    xor edi, edi
9:
    mov eax, 20
    syscall
    ud2
user_rtc_driver_end:
"#
);

unsafe extern "C" {
    static user_rtc_driver_start: u8;
    static user_rtc_driver_end: u8;
}

/// A user-space driver: the RTC's periodic interrupt arrives three times as notifications
/// through an IRQ-handler cap, the device is programmed through an I/O-port cap, and
/// ports outside the cap's range are refused.
pub fn user_driver() -> ! {
    const TEST: &str = "user_driver";
    kernel_object(TEST, 11, abi::ObjectType::Notification);
    let installed = crate::caps::install(KERNEL_SPACE, 20, abi::ObjectType::IrqHandler, crate::caps::Object::Irq(8))
        .and_then(|()| crate::caps::install(KERNEL_SPACE, 21, abi::ObjectType::IoPortRange, crate::caps::Object::IoPorts(0x70, 0x71)));
    if let Err(error) = installed {
        fail(TEST, format_args!("cannot make the device caps: {error:?}"));
    }
    give(&[
        Grant { from: 20, to: 2, rights: W, badge: 0 },
        Grant { from: 11, to: 3, rights: R.union(W), badge: 0 },
        Grant { from: 21, to: 4, rights: R.union(W), badge: 0 },
    ]);
    let id = start_blob(TEST, "rtc-driver", blob(&raw const user_rtc_driver_start, &raw const user_rtc_driver_end), 0, 10, None);
    match sched::join(id) {
        Some(Exit::Code(0)) => pass(TEST),
        other => fail(TEST, format_args!("step failed (exit code = step): {other:?}")),
    }
}

core::arch::global_asm!(
    r#"
    .section .rodata.user_blobs, "a"
    /* Slot 2 = audit cap. Reads the kernel space's slot 0 (the console object), checks
       the bounds, and that the console cap cannot be used for auditing. */
    .global user_audit_start, user_audit_end
user_audit_start:
    mov eax, 31                 /* 1, 2: the kernel space's slot 0 is the console */
    mov edi, 2
    xor esi, esi
    xor edx, edx
    syscall
    mov edi, 1
    test rax, rax
    jnz 9f
    mov edi, 2
    cmp rdx, 12
    jne 9f
    mov eax, 31                 /* 3: space 128 does not exist: InvalidSlot */
    mov edi, 2
    mov esi, 128
    xor edx, edx
    syscall
    mov edi, 3
    cmp rax, 3
    jne 9f
    mov eax, 31                 /* 4: slot 200: InvalidSlot */
    mov edi, 2
    xor esi, esi
    mov edx, 200
    syscall
    mov edi, 4
    cmp rax, 3
    jne 9f
    mov eax, 32                 /* 5: thread 256 does not exist: InvalidArgument */
    mov edi, 2
    mov esi, 256
    syscall
    mov edi, 5
    cmp rax, 2
    jne 9f
    mov eax, 31                 /* 6: auditing through the console cap: WrongObjectType */
    mov edi, 1
    xor esi, esi
    xor edx, edx
    syscall
    mov edi, 6
    cmp rax, 6
    jne 9f
    xor edi, edi
9:
    mov eax, 20
    syscall
    ud2
user_audit_end:
"#
);

unsafe extern "C" {
    static user_audit_start: u8;
    static user_audit_end: u8;
}

/// The authority-audit queries read any space's slots through an audit cap, and only
/// through one.
pub fn audit() -> ! {
    const TEST: &str = "audit";
    if let Err(error) = crate::caps::install(KERNEL_SPACE, 22, abi::ObjectType::Audit, crate::caps::Object::Audit) {
        fail(TEST, format_args!("{error:?}"));
    }
    give(&[Grant { from: 22, to: 2, rights: R, badge: 0 }]);
    let id = start_blob(TEST, "auditor", blob(&raw const user_audit_start, &raw const user_audit_end), 0, 10, None);
    match sched::join(id) {
        Some(Exit::Code(0)) => pass(TEST),
        other => fail(TEST, format_args!("step failed (exit code = step): {other:?}")),
    }
}
