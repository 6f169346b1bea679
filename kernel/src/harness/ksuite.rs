//! `ktest=suite`: the harness of the capability-leak and isolation suite (issue 5).
//!
//! The suite itself is a user program, `bin/leak-suite` (`userland/leak-suite`): it builds
//! hostile processes from capabilities, runs one case per operation and error path, and
//! audits every capability space after each. This harness gives it a world to run in and
//! the two things user space cannot do for itself:
//!
//! 1. **The real system beside it.** The harness starts init from the initrd exactly as
//!    `kernel_main` does on a normal boot, so init reads `etc/system.bin` and starts the
//!    manifest's programs, and waits until nothing is runnable any more. The suite's first
//!    cases audit that state against the manifest; every later case must leave it unchanged.
//! 2. **A census of kernel memory.** Between cases the suite blocks on one of two
//!    notifications it may only wait on (read right): the harness sees it blocked there,
//!    takes or compares a census of kernel objects, capability spaces, quotas, thread slots
//!    and free physical frames (`census::Census`), runs the kernel consistency check
//!    (`kfuzz::check_consistency`) and wakes it with the verdict. The suite cannot forge a
//!    verdict: it holds no right to signal either notification.
//!
//! # What the suite is given (slots of its capability space)
//! | slot | cap |
//! |------|-----|
//! | 1 | console (write) |
//! | 2 | the authority audit (read) |
//! | 3-6 | frames holding the puppet program ([`PUPPET`]), read and execute (two mappings each) |
//! | 7 | census "baseline" notification (read): take the reference census, word 1 |
//! | 8 | census "check" notification (read): compare with the reference, word 1 same, 2 leak (then re-baseline) |
//! | 9 | init's initrd frame (read, grant), minted from init's `INIT_INITRD_FRAME_SLOT`: the borrowed frame the `FrameSlice` cases cut |
//! | 10 | init's device frame (read, write, grant), minted from init's `INIT_DEVICE_FRAME_SLOT`: the device frame the DEVICE cases cut |
//! | 11 | init's PCI bus cap (read, write, grant), minted from init's `INIT_PCI_SLOT`: the PCI cases' |
//!
//! plus [`SUITE_QUOTA`] bytes of kernel-memory quota, and a read-only copy of the initrd
//! (the start arguments, as init gets it), from which it decodes the manifest oracle.
//!
//! # The puppet
//! Hostile processes are *puppets*: a small machine-code program (below) that the suite maps
//! into address spaces it builds, and drives over an endpoint. The puppet calls its control
//! endpoint (its slot 2) for an operation, performs it with nothing but its own authority,
//! and sends back the registers. Operations (the label of the reply): any other label is a
//! syscall with that number and the message words as `rdi rsi rdx r10 r8 r9 r12 r13`;
//! `0xf000_0001` load a word, `0xf000_0002` store a word, `0xf000_0003` jump, and
//! `0xf000_0004` run privileged instruction number *n*. Results come back as a message with
//! label `rax` and words `rdi rsi rdx r10 r8 r9 r12 r13`. A fault ends the puppet; its
//! supervisor (the suite) hears of it on the same endpoint through the fault cap's badge.
//!
//! # Output
//! The suite prints `CASE PASS <id>` or `CASE FAIL <id>: why` per case and exits with the
//! number of failed cases; the harness then checks that everything came back and ends with
//! `KTEST PASS suite` only if every case passed. xtask counts the case lines one by one.

use abi::{Badge, CapSlot, ObjectType, Rights};
use kcore::cap::{SlotRef, SpaceId};

use crate::arch::exit_qemu;
use crate::caps::{self, Object};
use crate::harness::census::Census;
use crate::harness::kfuzz;
use crate::println;
use crate::sched::{self, UserStart};
use crate::thread::{BlockedOn, Exit, State, ThreadId, MAX_THREADS};
use crate::vspace::{self, Perms};

const TEST: &str = "suite";
const KERNEL_SPACE: SpaceId = SpaceId::new(0);
/// The suite's kernel-memory quota: its puppets and every object its cases create.
const SUITE_QUOTA: u64 = 8 << 20;
const SUITE_PRIORITY: u8 = 10;
/// Where the copy of the initrd is mapped in the suite (above the loader's stack range,
/// below libcap's scratch page).
const INITRD_BASE: u64 = 0x0000_7f40_0000_0000;
const PAGE: u64 = 4096;

/// Kernel-space slots holding what the harness shares with the suite.
const CODE_SLOTS: [u32; 4] = [60, 61, 62, 63];
const BASELINE_SLOT: u32 = 64;
const CHECK_SLOT: u32 = 65;
const AUDIT_SLOT: u32 = 66;

/// The boot settles when no user thread has been runnable for this many ticks in a row.
const SETTLE_TICKS: u64 = 30;
const SETTLE_LIMIT: u64 = 3000;
/// The suite must ask for a census at least this often (10 ms ticks): a watchdog.
const QUIET_LIMIT: u64 = 6000;

core::arch::global_asm!(
    r#"
    .section .rodata.suite_puppet, "a"
    .global suite_puppet_start, suite_puppet_end
    /* The puppet. Slot 2 is its control endpoint. Registers are zero at start. */
suite_puppet_start:
    jmp 2f
1:  /* Report: Send(slot 2), label = rax, words = rdi rsi rdx r10 r8 r9 r12 r13. */
    mov r15, r13
    mov r14, r12
    mov r13, r9
    mov r12, r8
    mov r9, r10
    mov r8, rdx
    mov r10, rsi
    mov rdx, rdi
    mov rsi, rax
    shl rsi, 32
    or rsi, 8
    mov edi, 2
    mov eax, 1
    syscall
    test rax, rax
    jnz 8f
2:  /* Call(slot 2) for the next operation: the reply's label. */
    mov edi, 2
    xor esi, esi
    mov eax, 3
    syscall
    test rax, rax
    jnz 8f
    shr rsi, 32
    cmp esi, 0xf0000001
    je 3f
    cmp esi, 0xf0000002
    je 4f
    cmp esi, 0xf0000003
    je 5f
    cmp esi, 0xf0000004
    je 6f
    mov eax, esi        /* a syscall: number = label, arguments = words */
    mov rdi, rdx
    mov rsi, r10
    mov rdx, r8
    mov r10, r9
    mov r8, r12
    mov r9, r13
    mov r12, r14
    mov r13, r15
    xor r14d, r14d
    xor r15d, r15d
    syscall
    jmp 1b
3:  mov rdi, [rdx]      /* load */
    xor eax, eax
    jmp 1b
4:  mov [rdx], r10      /* store */
    xor eax, eax
    jmp 1b
5:  jmp rdx             /* jump */
6:  /* privileged instruction number rdx; each must fault, else 0xbad comes back */
    cmp edx, 0
    je 10f
    cmp edx, 1
    je 11f
    cmp edx, 2
    je 12f
    cmp edx, 3
    je 13f
    cmp edx, 4
    je 14f
    cmp edx, 5
    je 15f
    cmp edx, 6
    je 16f
    cmp edx, 7
    je 17f
    cmp edx, 8
    je 18f
    cmp edx, 9
    je 19f
    cmp edx, 10
    je 20f
    cmp edx, 11
    je 21f
    cmp edx, 12
    je 22f
    cmp edx, 13
    je 23f
    cmp edx, 14
    je 24f
    cmp edx, 15
    je 25f
    mov eax, 0xbad0
    jmp 1b
10: hlt
    jmp 7f
11: cli
    jmp 7f
12: sti
    jmp 7f
13: in al, 0x60
    jmp 7f
14: out 0x80, al
    jmp 7f
15: mov rax, cr3
    jmp 7f
16: xor eax, eax
    mov cr3, rax
    jmp 7f
17: xor ecx, ecx
    wrmsr
    jmp 7f
18: mov ecx, 0xc0000080
    rdmsr
    jmp 7f
19: sgdt [rsp - 16]
    jmp 7f
20: lidt [rsp - 16]
    jmp 7f
21: invlpg [rsp]
    jmp 7f
22: mov rax, dr7
    jmp 7f
23: swapgs
    jmp 7f
24: int 0x30
    jmp 7f
25: wbinvd
    jmp 7f
7:  mov eax, 0xbad
    jmp 1b
8:  /* The control link broke: exit with 0xdead0000 + the error. */
    mov rdi, rax
    mov ecx, 0xdead0000
    or rdi, rcx
    mov eax, 20
    syscall
    ud2
suite_puppet_end:
"#
);

unsafe extern "C" {
    static suite_puppet_start: u8;
    static suite_puppet_end: u8;
}

/// The puppet's machine code.
fn puppet() -> &'static [u8] {
    let start = &raw const suite_puppet_start;
    let end = &raw const suite_puppet_end;
    // SAFETY: both symbols delimit one blob in .rodata, mapped for the kernel's lifetime and
    // never written.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

fn fail(why: core::fmt::Arguments) -> ! {
    println!("KTEST FAIL {TEST}: {why}");
    exit_qemu(abi::qemu_exit::FAILURE)
}

pub fn run() -> ! {
    let Some(initrd) = crate::BOOT_INFO.get().and_then(|info| info.modules().first().copied()) else {
        fail(format_args!("no initrd"));
    };
    // 1. The real system: init from the initrd, as kernel_main starts it.
    let init = crate::process::start_init(initrd.range).unwrap_or_else(|error| fail(format_args!("cannot start init: {error:?}")));
    settle(init);

    // 2. What the suite is given.
    let Some(init_space) = sched::with_sched(|s| s.thread(init).cspace) else { fail(format_args!("init has no capability space")) };
    check_initrd_frame(init_space, initrd.range);
    check_device_frame(init_space);
    let before = Census::take();
    share_objects();
    let (runner, runner_space) = start_suite(initrd.range, init_space);

    // 3. Serve census requests until the suite ends.
    let baseline_index = notification_index(BASELINE_SLOT);
    let check_index = notification_index(CHECK_SLOT);
    let mut baseline = None;
    let mut quiet = 0u64;
    let mut checks = 0u64;
    let mut leaks = 0u64;
    let exit = loop {
        let (state, blocked_on) = sched::with_sched(|s| {
            let thread = s.thread(runner);
            (thread.state, thread.blocked_on)
        });
        if matches!(state, State::Dead | State::Free) {
            break sched::join(runner);
        }
        if state == State::Blocked && blocked_on == (BlockedOn::Notification { notification: baseline_index }) {
            baseline = Some(take(runner_space));
            crate::ipc::signal(baseline_index, 1);
            quiet = 0;
        } else if state == State::Blocked && blocked_on == (BlockedOn::Notification { notification: check_index }) {
            checks += 1;
            let now = take(runner_space);
            let same = match &baseline {
                Some(reference) => compare(reference, &now),
                None => {
                    println!("ksuite: a check before any baseline");
                    false
                }
            };
            if !same {
                leaks += 1;
            }
            baseline = Some(now);
            crate::ipc::signal(check_index, if same { 1 } else { 2 });
            quiet = 0;
        }
        quiet += 1;
        if quiet > QUIET_LIMIT {
            dump_threads();
            fail(format_args!("the suite asked for no census for {QUIET_LIMIT} ticks ({state:?}, {blocked_on:?})"));
        }
        sched::sleep_ticks(1);
    };

    // 4. Everything the suite used came back.
    for slot in CODE_SLOTS.into_iter().chain([BASELINE_SLOT, CHECK_SLOT, AUDIT_SLOT]) {
        delete(slot);
    }
    if let Err(why) = kfuzz::check_consistency() {
        fail(format_args!("inconsistent after the suite: {why}"));
    }
    let after = Census::take();
    let returned = before.compare(&after).is_ok();
    println!("ksuite: {checks} census checks, {leaks} found a difference; after the suite: {}", if returned { "every resource returned" } else { "RESOURCES NOT RETURNED" });
    match exit {
        Some(Exit::Code(0)) if returned && leaks == 0 => {
            super::report_fastpath();
            println!("KTEST PASS {TEST}");
            exit_qemu(abi::qemu_exit::SUCCESS)
        }
        Some(Exit::Code(code)) => fail(format_args!(
            "the suite exited with {code} (its failed cases; 101 is a panic, 1000 could not run), {leaks} census difference(s), resources returned: {returned}"
        )),
        other => fail(format_args!("the suite ended as {other:x?}")),
    }
}

/// Waits until init and the programs it started have nothing left to run.
fn settle(init: ThreadId) {
    let me = sched::current();
    let mut calm = 0;
    for waited in 0..SETTLE_LIMIT {
        let busy = sched::with_sched(|s| {
            (1..MAX_THREADS).any(|index| {
                let id = ThreadId(index as u16);
                id != me && matches!(s.thread(id).state, State::Ready | State::Running | State::Throttled)
            })
        });
        if sched::with_sched(|s| matches!(s.thread(init).state, State::Dead | State::Free)) {
            fail(format_args!("init ended during boot: {:x?}", sched::join(init)));
        }
        calm = if busy { 0 } else { calm + 1 };
        if calm >= SETTLE_TICKS {
            println!("ksuite: the system settled after {waited} ticks");
            return;
        }
        sched::sleep_ticks(1);
    }
    dump_threads();
    fail(format_args!("the system did not settle within {SETTLE_LIMIT} ticks"))
}

/// The puppet's code frames, the census notifications and the audit cap, in the kernel's
/// own space.
fn share_objects() {
    for slot in CODE_SLOTS {
        if let Err(error) = crate::object::create(KERNEL_SPACE, CapSlot::new(slot), ObjectType::Frame, 0, 0) {
            fail(format_args!("cannot create a code frame: {error:?}"));
        }
        let phys = match caps::lookup(KERNEL_SPACE, CapSlot::new(slot), ObjectType::Frame, Rights::READ) {
            Ok((Object::Frame(index), _)) => crate::frame::phys(index),
            _ => None,
        };
        let Some(phys) = phys else { fail(format_args!("the code frame vanished")) };
        let code = puppet();
        if code.len() > PAGE as usize {
            fail(format_args!("the puppet is larger than a page"));
        }
        let target = crate::mm::phys_to_virt(phys) as *mut u8;
        // SAFETY: a frame object's page, fresh and zeroed, reached through the direct map;
        // nothing maps it yet; the blob fits (checked above).
        unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), target, code.len()) };
    }
    for slot in [BASELINE_SLOT, CHECK_SLOT] {
        if let Err(error) = crate::object::create(KERNEL_SPACE, CapSlot::new(slot), ObjectType::Notification, 0, 0) {
            fail(format_args!("cannot create a census notification: {error:?}"));
        }
    }
    if let Err(error) = caps::install(KERNEL_SPACE, AUDIT_SLOT, ObjectType::Audit, Object::Audit) {
        fail(format_args!("cannot make the audit cap: {error:?}"));
    }
}

/// The suite's slot for init's initrd frame.
const SUITE_INITRD_FRAME_SLOT: u32 = 9;
/// The suite's slots for init's device frame and PCI bus cap.
const SUITE_DEVICE_FRAME_SLOT: u32 = 10;
const SUITE_PCI_SLOT: u32 = 11;

/// init's device frame is what the boot contract says (device memory over the window, read,
/// write and grant), and below the cap's rights the kernel refuses to map it executable,
/// maps it writable and uncached (PCD and PWT in every page-table entry), and refuses user
/// copies from it; destroying a slice of it frees no page.
fn check_device_frame(init: SpaceId) {
    use crate::process::{INIT_DEVICE_FRAME_RIGHTS, INIT_DEVICE_FRAME_SLOT};
    let Some(Some(window)) = crate::DEVICE_WINDOW.get() else { fail(format_args!("no device window on this machine")) };
    let found = caps::with(|store| store.lookup(SlotRef::new(init, INIT_DEVICE_FRAME_SLOT)));
    let index = match found {
        Ok(found) if found.rights == INIT_DEVICE_FRAME_RIGHTS => match found.handle {
            Object::Frame(index) => index,
            other => fail(format_args!("init's device frame slot holds {other:?}")),
        },
        other => fail(format_args!("init's device frame cap: {:?}", other.map(|found| found.rights))),
    };
    if crate::frame::is_device(index) != Some(true) || crate::frame::info(index) != Some((window.start, window.bytes())) {
        fail(format_args!("init's device frame is {:?} {:x?}, expected device {:#x}+{:#x}", crate::frame::is_device(index), crate::frame::info(index), window.start, window.bytes()));
    }
    let (free, _) = crate::mm::frame_stats();
    let Ok(slice) = crate::frame::Borrowed::slice(index, 0, 2 * PAGE) else { fail(format_args!("cannot slice the device frame")) };
    let Ok(slice) = crate::frame::create_borrowed(slice) else { fail(format_args!("cannot register the device slice")) };
    let Ok(pml4) = vspace::create() else { fail(format_args!("no scratch address space")) };
    let Ok(space) = vspace::register(pml4, false) else { fail(format_args!("cannot register the scratch address space")) };
    let at = 0x1000_0000;
    for (what, perms) in [("executable", Perms { write: false, execute: true }), ("read-execute", Perms::READ_EXECUTE)] {
        let mapped = crate::frame::map(slice, space, pml4, at, perms);
        if mapped != Err(abi::ErrorCode::InvalidArgument) {
            fail(format_args!("frame::map of a device slice {what}: {mapped:?}, expected InvalidArgument"));
        }
    }
    if let Err(error) = crate::frame::map(slice, space, pml4, at, Perms::READ_WRITE) {
        fail(format_args!("frame::map of a device slice writable: {error:?}"));
    }
    for page in [at, at + PAGE] {
        if vspace::is_uncached(pml4, page) != Some(true) {
            fail(format_args!("the device slice's page {page:#x} is not mapped uncached: {:?}", vspace::is_uncached(pml4, page)));
        }
    }
    let mut byte = [0u8; 1];
    if vspace::copy_from_user(pml4, at, &mut byte) != Err(abi::ErrorCode::InvalidArgument) {
        fail(format_args!("a user copy from device memory was not refused"));
    }
    crate::object::destroy(Object::Frame(slice));
    if crate::frame::info(slice).is_some() || vspace::translate_any(pml4, at).is_some() {
        fail(format_args!("the destroyed device slice is still registered or mapped"));
    }
    vspace::destroy_object(space);
    let (after, _) = crate::mm::frame_stats();
    if after != free {
        fail(format_args!("a device slice mapped and destroyed changed the free frames: {free} -> {after}"));
    }
    println!("ksuite: init's device frame: device memory over the window, read+write+grant, never executable, mapped uncached, no user copy, no page freed");
}

/// init's initrd frame is what the boot contract says (a borrowed frame over the module's
/// pages, read and grant), and the kernel refuses to map a borrowed frame writable or
/// executable even when asked directly, below the cap's rights (which user space cannot get
/// past: the leak suite's FRAME-SLICE cases see InsufficientRights there).
fn check_initrd_frame(init: SpaceId, initrd: kcore::memmap::PhysRange) {
    use crate::process::{INIT_INITRD_FRAME_RIGHTS, INIT_INITRD_FRAME_SLOT};
    let found = caps::with(|store| store.lookup(SlotRef::new(init, INIT_INITRD_FRAME_SLOT)));
    let index = match found {
        Ok(found) if found.rights == INIT_INITRD_FRAME_RIGHTS => match found.handle {
            Object::Frame(index) => index,
            other => fail(format_args!("init's initrd slot holds {other:?}")),
        },
        other => fail(format_args!("init's initrd frame cap: {:?}", other.map(|found| found.rights))),
    };
    let first = initrd.start & !(PAGE - 1);
    if crate::frame::is_borrowed(index) != Some(true) || crate::frame::info(index) != Some((first, initrd.end - first)) {
        fail(format_args!("init's initrd frame is {:?} {:x?}, expected borrowed {first:#x}+{:#x}", crate::frame::is_borrowed(index), crate::frame::info(index), initrd.end - first));
    }
    let (free, _) = crate::mm::frame_stats();
    let Ok(pml4) = vspace::create() else { fail(format_args!("no scratch address space")) };
    let Ok(space) = vspace::register(pml4, false) else { fail(format_args!("cannot register the scratch address space")) };
    let at = 0x1000_0000;
    for (what, perms) in [("writable", Perms::READ_WRITE), ("executable", Perms { write: false, execute: true })] {
        let mapped = crate::frame::map(index, space, pml4, at, perms);
        if mapped != Err(abi::ErrorCode::InvalidArgument) {
            fail(format_args!("frame::map of the borrowed initrd frame {what}: {mapped:?}, expected InvalidArgument"));
        }
    }
    if let Err(error) = crate::frame::map(index, space, pml4, at, Perms::READ) {
        fail(format_args!("frame::map of the initrd frame read-only: {error:?}"));
    }
    if let Err(error) = crate::frame::unmap(space, pml4, at) {
        fail(format_args!("unmap of the initrd frame: {error:?}"));
    }
    vspace::destroy_object(space);
    let (after, _) = crate::mm::frame_stats();
    if after != free {
        fail(format_args!("mapping the initrd frame and taking it down changed the free frames: {free} -> {after}"));
    }
    println!("ksuite: init's initrd frame: borrowed, read+grant, never mapped writable or executable");
}

/// Loads `bin/leak-suite` with its caps and a read-only copy of the initrd, and starts it.
fn start_suite(initrd: kcore::memmap::PhysRange, init: SpaceId) -> (ThreadId, SpaceId) {
    let bytes = crate::module_bytes(initrd);
    let Ok(Some(image)) = kcore::ustar::Archive::find(bytes, "bin/leak-suite") else {
        fail(format_args!("bin/leak-suite is not in the initrd"));
    };
    let loaded = crate::process::load(image).unwrap_or_else(|error| fail(format_args!("load bin/leak-suite: {error:?}")));
    // A copy, in pages the suite's address space owns (so they go with it): the initrd's
    // own pages must never be freed, and nothing but the suite's space maps these.
    let mut offset = 0u64;
    while offset < bytes.len() as u64 {
        let Ok(frame) = crate::mm::allocate_frame() else { fail(format_args!("out of frames for the initrd copy")) };
        let chunk = bytes.get(offset as usize..).unwrap_or(&[]);
        let chunk = chunk.get(..chunk.len().min(PAGE as usize)).unwrap_or(&[]);
        let target = crate::mm::phys_to_virt(frame) as *mut u8;
        // SAFETY: a fresh frame of one page in the direct map, not mapped anywhere else yet;
        // the chunk is at most a page.
        unsafe { core::ptr::copy_nonoverlapping(chunk.as_ptr(), target, chunk.len()) };
        if let Err(error) = vspace::map(loaded.pml4, INITRD_BASE + offset, frame, Perms::READ) {
            fail(format_args!("cannot map the initrd copy: {error:?}"));
        }
        offset += PAGE;
    }
    let space = caps::create_space(SUITE_QUOTA).unwrap_or_else(|error| fail(format_args!("suite cspace: {error:?}")));
    let rx = Rights::READ.union(Rights::EXECUTE);
    let mut grants = [(0u32, 0u32, Rights::NONE); 7];
    grants[0] = (AUDIT_SLOT, 2, Rights::READ);
    for ((index, &slot), grant) in CODE_SLOTS.iter().enumerate().zip(grants.iter_mut().skip(1)) {
        *grant = (slot, 3 + index as u32, rx);
    }
    grants[5] = (BASELINE_SLOT, 7, Rights::READ);
    grants[6] = (CHECK_SLOT, 8, Rights::READ);
    let given = caps::grant_console(space, 1, Rights::WRITE).and_then(|()| {
        grants.iter().try_for_each(|&(from, to, rights)| caps::mint(KERNEL_SPACE, from, space, to, rights, Badge::NONE))
    });
    let given = given.and_then(|()| {
        let slot = crate::process::INIT_INITRD_FRAME_SLOT;
        caps::mint(init, slot, space, SUITE_INITRD_FRAME_SLOT, crate::process::INIT_INITRD_FRAME_RIGHTS, Badge::NONE)
    });
    let given = given.and_then(|()| {
        use crate::process::{INIT_DEVICE_FRAME_RIGHTS, INIT_DEVICE_FRAME_SLOT, INIT_PCI_RIGHTS, INIT_PCI_SLOT};
        caps::mint(init, INIT_DEVICE_FRAME_SLOT, space, SUITE_DEVICE_FRAME_SLOT, INIT_DEVICE_FRAME_RIGHTS, Badge::NONE)
            .and_then(|()| caps::mint(init, INIT_PCI_SLOT, space, SUITE_PCI_SLOT, INIT_PCI_RIGHTS, Badge::NONE))
    });
    if let Err(error) = given {
        fail(format_args!("cannot give the suite its caps: {error:?}"));
    }
    let id = sched::spawn_user("leak-suite", UserStart {
        pml4: loaded.pml4,
        owns_space: true,
        cspace: Some(space),
        entry: loaded.entry,
        stack: loaded.stack_top,
        argument: INITRD_BASE,
        argument2: bytes.len() as u64,
        priority: SUITE_PRIORITY,
        budget: None,
        ipc_buffer: loaded.ipc_buffer,
    })
    .unwrap_or_else(|error| fail(format_args!("start the suite: {error:?}")));
    (id, space)
}

fn notification_index(slot: u32) -> u16 {
    match caps::lookup(KERNEL_SPACE, CapSlot::new(slot), ObjectType::Notification, Rights::WRITE) {
        Ok((Object::Notification(index), _)) => index,
        _ => fail(format_args!("the census notification in kernel slot {slot} is gone")),
    }
}

fn delete(slot: u32) {
    let mut reaped = caps::Reaped::new();
    let deleted = caps::with(|store| store.decode_delete(SlotRef::new(KERNEL_SPACE, slot)).map(|op| op.perform(&mut reaped)));
    reaped.finish();
    if let Err(error) = deleted {
        fail(format_args!("cannot delete kernel slot {slot}: {error:?}"));
    }
}

/// A census, plus the suite's own quota (its cases pay for what they create).
struct Snapshot {
    census: Census,
    suite_quota_used: u64,
    consistent: bool,
}

fn take(suite: SpaceId) -> Snapshot {
    let consistent = match kfuzz::check_consistency() {
        Ok(()) => true,
        Err(why) => {
            println!("ksuite: INCONSISTENT: {why}");
            false
        }
    };
    Snapshot { census: Census::take(), suite_quota_used: caps::with(|store| store.quota(suite)).map_or(u64::MAX, |q| q.used()), consistent }
}

fn compare(reference: &Snapshot, now: &Snapshot) -> bool {
    let mut same = now.consistent;
    // Identical censuses need no report; otherwise `compare` prints both and decides, with
    // its allowance for kernel stacks of thread slots used for the first time.
    if reference.census != now.census && reference.census.compare(&now.census).is_err() {
        same = false;
    }
    if reference.suite_quota_used != now.suite_quota_used {
        println!("ksuite: LEAK: the suite's quota: {} bytes used before, {} after", reference.suite_quota_used, now.suite_quota_used);
        same = false;
    }
    same
}

fn dump_threads() {
    for index in 1..MAX_THREADS {
        let thread = sched::with_sched(|s| *s.thread(ThreadId(index as u16)));
        if thread.state != State::Free {
            println!(
                "ksuite: thread {index} \"{}\": {:?}, {:?}, prio {}, cspace {:?}",
                thread.name(),
                thread.state,
                thread.blocked_on,
                thread.priority,
                thread.cspace.map(SpaceId::index)
            );
        }
    }
}
