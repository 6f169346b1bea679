//! init's supervisor interface: what the holder of a supervisor cap may ask init.
//!
//! A supervisor cap is a cap to init's fault endpoint (where the kernel reports every
//! program's end) with a badge of its own, [`STATUS_BADGE`] or [`CONTROL_BADGE`], which
//! no program's end report carries (those are badged with the program's index + 1). The
//! manifest gives it (`supervisor = "status"` or `"control"` in a program's entry); init
//! answers by the badge, never by a claim in the message:
//!
//! - status: each program's manifest entry (priority, budget, quota, caps) with what init
//!   knows of it now (running or not, restarts, and the audit's numbers for its thread and
//!   space, so an auditor can look at exactly that program);
//!   and the `[security.*]` policy, key by key, with each key's state in this boot; and
//!   the security log, record by record ([`Request::Log`]);
//! - control, in addition: restart or stop a program;
//! - report (the AI server's): status, and the record of a model it refused.
//!
//! Every reply fits one register message (`libcap::ipc::MAX_BYTES`, checked by the tests
//! below), so init answers without an IPC buffer and without allocating.
#![no_std]
#![forbid(unsafe_code)]

use heapless::String;
use serde::{Deserialize, Serialize};

/// The label every supervisor request is sent with.
pub const LABEL: u32 = 0x1417;
/// The badge of a status-only supervisor cap. Above every program's end-report badge
/// (index + 1, and a manifest has far fewer than 2^48 programs).
pub const STATUS_BADGE: u64 = 1 << 48;
/// The badge of a supervisor cap that may also restart and stop programs.
pub const CONTROL_BADGE: u64 = STATUS_BADGE | 1;
/// The badge of the AI server's supervisor cap (`supervisor = "report"`, which the manifest
/// allows the AI server alone): status, and [`Request::ReportModelRefused`].
pub const REPORT_BADGE: u64 = STATUS_BADGE | 2;
/// The longest check name a [`LogEvent::ModelRefused`] carries.
pub const CHECK_MAX: usize = 20;
/// Longest program or object name a reply carries (longer ones are cut, on a character
/// boundary).
pub const NAME_MAX: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The program at `index` in the manifest's order.
    Program { index: u16 },
    /// The `cap`-th cap of the program at `program`'s manifest entry.
    Cap { program: u16, cap: u16 },
    /// Stop the program now and start a fresh incarnation (control only).
    Restart { program: u16 },
    /// Stop the program for good; it is not restarted whatever its `on_crash` (control only).
    Stop { program: u16 },
    /// The `index`-th key of the `[security.*]` policy (in `manifest::policy::Key::ALL`
    /// order) and its state in this boot.
    PolicyKey { index: u16 },
    /// Security-log record number `number` (numbers count from 0 since boot).
    Log { number: u64 },
    /// The AI server refused the manifest's model `model` (its index in
    /// `CompiledManifest::models`) because check `check` failed (report badge only).
    /// `check` is the check's name, ASCII, zero-padded ([`check_bytes`]).
    ReportModelRefused { model: u16, check: [u8; CHECK_MAX] },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Program(ProgramInfo),
    Cap(CapInfo),
    PolicyKey(PolicyKeyInfo),
    /// The record asked for, or if it was overwritten, the oldest one still held.
    Log(LogRecord),
    /// No record with that number yet: `next` is the next one's, and `dropped` how many
    /// records the log overwrote since boot (`security_log::Ring::dropped`).
    LogEnd { next: u64, dropped: u64 },
    /// A restart or stop was done.
    Done,
    /// No program (or cap) at that index.
    NoSuch,
    /// Restart and stop need the control badge; this cap has only status.
    NotPermitted,
}

/// A program as init runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramInfo {
    pub name: String<NAME_MAX>,
    pub priority: u8,
    pub budget_us: u32,
    pub period_us: u32,
    /// Kernel-memory quota, bytes.
    pub memory_quota: u64,
    /// `on_crash = "restart"`.
    pub restarts_on_crash: bool,
    /// How many times init started it again after a crash or a restart request.
    pub restarts: u32,
    /// How many caps its manifest entry lists ([`Request::Cap`] takes `0..caps`).
    pub caps: u16,
    /// Whether it has the audit cap, and at which slot (slots are below 128).
    pub audit_slot: Option<u8>,
    /// The running incarnation, if any.
    pub running: Option<Running>,
}

/// The audit's numbers for a running incarnation (`AuditThread`, `AuditCap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    pub thread: u16,
    pub space: u16,
}

/// One cap of a manifest entry, as init gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapInfo {
    pub slot: u32,
    /// `abi::ObjectType` number.
    pub kind: u32,
    /// `abi::Rights` bits.
    pub rights: u32,
    pub badge: u64,
    /// The object as the manifest names it (`endpoint "memory"`).
    pub object: String<NAME_MAX>,
}

/// One key of the policy as init holds it (strings, since the manifest crate, which names
/// the keys, depends on this one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyKeyInfo {
    /// `hardware`, `process`, `network` or `ai`.
    pub section: String<NAME_MAX>,
    /// The key, as system.toml spells it.
    pub key: String<NAME_MAX>,
    /// `enforced`, `allowed-unenforced` or `off` (never `refused`: that never boots).
    pub state: String<NAME_MAX>,
}

/// One record of the security log, as init answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Its number (may be above the one asked for, if that one was overwritten).
    pub number: u64,
    /// The time-stamp counter when init recorded it (under QEMU's `-icount`, instructions).
    pub tsc: u64,
    /// The program it concerns, by name.
    pub program: String<NAME_MAX>,
    /// Whether that program is a model sandbox (`sandbox = true`).
    pub sandbox: bool,
    pub event: LogEvent,
}

/// What the security log records: every denial and end init sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogEvent {
    /// A CPU fault stopped the program (a page fault on memory it holds no mapping for, a
    /// protection fault, ...): the kernel's report, as init received it.
    Fault { vector: u8, address: u64 },
    /// It exited with a non-zero code.
    Exited { code: u64 },
    /// It was killed.
    Killed,
    /// init restarted it (after a crash, `delay_ms` later; or because a supervisor asked,
    /// `delay_ms` 0).
    Restarted { delay_ms: u32 },
    /// Its crash was fatal (`on_crash = "fatal"`).
    Fatal,
    /// It asked init to restart or stop program `target` (an index) with a status-only
    /// supervisor cap: refused.
    SupervisorRefused { target: u16 },
    /// The kernel refused its syscall `syscall` (a number of `abi::Sysno`) for the cap it
    /// named: `code` is the `abi::ErrorCode` number (invalid or empty slot, wrong kind,
    /// missing rights).
    /// `suppressed`: how many records of this program the kernel counted but did not keep
    /// just before this one (a program may add a few a second).
    RefusedSyscall { syscall: u16, code: u16, suppressed: u8 },
    /// It used its CPU budget; the kernel holds it until its next period. `suppressed` as
    /// above.
    BudgetOverrun { suppressed: u8 },
    /// The kernel's own ring overwrote this many records before init read them.
    KernelLost { count: u64 },
    /// The AI server refused model `model` (index in the manifest's models; the record's
    /// program is the AI server) at boot: check `check` (its name, ASCII, zero-padded) failed.
    ModelRefused { model: u16, check: [u8; CHECK_MAX] },
}

/// A check's name as [`Request::ReportModelRefused`] carries it: cut to [`CHECK_MAX`]
/// bytes (check names are ASCII), zero-padded.
pub fn check_bytes(name: &str) -> [u8; CHECK_MAX] {
    let mut bytes = [0u8; CHECK_MAX];
    for (to, from) in bytes.iter_mut().zip(name.bytes()) {
        *to = from;
    }
    bytes
}

/// A [`LogEvent::ModelRefused`] check name as text.
pub fn check_name(check: &[u8; CHECK_MAX]) -> &str {
    let end = check.iter().position(|&b| b == 0).unwrap_or(CHECK_MAX);
    core::str::from_utf8(&check[..end]).unwrap_or("?")
}

/// `text`, cut to [`NAME_MAX`] bytes on a character boundary.
pub fn name(text: &str) -> String<NAME_MAX> {
    let mut out = String::new();
    for c in text.chars() {
        if out.push(c).is_err() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `libcap::ipc::MAX_BYTES`: eight register words.
    const MAX_BYTES: usize = 64;

    #[test]
    fn the_largest_replies_fit_one_register_message() {
        let long = name("a-program-name-longer-than-the-limit");
        assert_eq!(long.len(), NAME_MAX);
        // The largest values a checked manifest allows (periods up to 1 s, 128 slots),
        // and a quota of 1 TiB.
        let program = Reply::Program(ProgramInfo {
            name: long.clone(),
            priority: 30,
            budget_us: 1_000_000,
            period_us: 1_000_000,
            memory_quota: 1 << 40,
            restarts_on_crash: true,
            restarts: u32::MAX,
            caps: 128,
            audit_slot: Some(127),
            running: Some(Running { thread: u16::MAX, space: u16::MAX }),
        });
        let cap = Reply::Cap(CapInfo { slot: u32::MAX, kind: u32::MAX, rights: u32::MAX, badge: u64::MAX, object: long });
        let policy = Reply::PolicyKey(PolicyKeyInfo {
            section: name("hardware"),
            key: name("encrypted_protocols_only"),
            state: name("allowed-unenforced"),
        });
        let log = Reply::Log(LogRecord {
            number: u64::MAX,
            tsc: u64::MAX,
            program: name("a-program-name-longer-than-the-limit"),
            sandbox: true,
            event: LogEvent::Fault { vector: 255, address: u64::MAX },
        });
        let end = Reply::LogEnd { next: u64::MAX, dropped: u64::MAX };
        for reply in [program, cap, policy, log, end] {
            let bytes = postcard::to_allocvec(&reply).unwrap_or_default();
            assert!(!bytes.is_empty() && bytes.len() <= MAX_BYTES, "{} bytes: {reply:?}", bytes.len());
        }
    }

    #[test]
    fn names_are_cut_on_character_boundaries() {
        assert_eq!(name("memory").as_str(), "memory");
        let cut = name("ééééééééééééééééééééé");
        assert!(cut.len() <= NAME_MAX && cut.chars().all(|c| c == 'é'));
    }
}
