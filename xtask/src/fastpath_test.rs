//! The IPC fast path's tests (issue 14): the IPC tests rerun with it off, and
//! `qemu::fastpath_agrees`, which compares what the fuzzer and the leak suite report with it
//! on and off.
//!
//! The kernel (`kernel/src/ipc/fastpath.rs`) takes the fast path only where its outcome is
//! the slow path's, so every result must be the same either way: the fuzzer's tally of
//! result codes (its calls are seeded, so the tally is a fingerprint of all 100,000
//! outcomes), its consistency verdict, each leak-suite case's verdict, and what each case
//! did to the kernel-memory census. Not compared: figures that depend on how many
//! instructions a run takes (timestamps, round trips made beside the fuzzer, the budget
//! case's counts), and absolute free-frame counts, which ASLR moves by the page tables the
//! random layout needs; the census is compared as each case's change, field by field.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::qemu::{self, Accel, Boot};
use crate::test::Tally;

/// Appended to a kernel test's name for its rerun with `ipc_fastpath=off`.
pub const SLOW_PATH_SUFFIX: &str = "_slowpath";

/// Kernel tests rerun with the fast path off: the IPC, timeout, PeerGone, grant and kill
/// paths (process teardown kills), and the syscall error paths.
pub const SLOW_PATH_TESTS: &[&str] =
    &["ipc_call_reply", "ipc_errors", "notification", "peer_gone", "ipc_grant", "process_objects", "user_syscall_errors", "scheduling"];

/// The runs `fastpath_agrees` compares.
pub const COMPARED: &[&str] = &["fuzz", "suite"];

/// Kernel tests that must have taken the fast path when it is on (they make simple calls).
const EXERCISES_FAST_PATH: &[&str] = &["ipc_call_reply", "fuzz", "suite"];

/// The kernel's last word before a verdict: `ipc fast path: on|off, taken N times`.
fn report(serial: &str) -> Option<(bool, u64)> {
    let line = serial.lines().rev().find_map(|line| line.split_once("ipc fast path: ").map(|(_, rest)| rest))?;
    let (state, rest) = line.split_once(", taken ")?;
    let taken = rest.strip_suffix(" times")?.trim().parse().ok()?;
    Some((state == "on", taken))
}

/// A test's fast-path report is what its mode requires: off and never taken for a
/// slow-path rerun; on, and taken, for a test that makes simple calls.
pub fn check_report(name: &str, serial: &str) -> Result<(), String> {
    let slow = name.ends_with(SLOW_PATH_SUFFIX);
    if !slow && !EXERCISES_FAST_PATH.contains(&name) {
        return Ok(());
    }
    match report(serial) {
        None => Err("no \"ipc fast path: ..., taken N times\" line before the verdict".into()),
        Some((true, _)) if slow => Err("the fast path is on although the command line said ipc_fastpath=off".into()),
        Some((false, taken)) if slow && taken > 0 => Err(format!("the fast path is off but was taken {taken} times")),
        Some((false, _)) if !slow => Err("the fast path is off in a normal boot".into()),
        Some((true, 0)) => Err("the fast path was never taken, though this test makes simple calls".into()),
        Some(_) => Ok(()),
    }
}

/// What must be the same with the fast path on and off, one line per result.
pub fn results(serial: &str) -> Vec<String> {
    const KEPT: &[&str] = &["fuzzer: results by code", "FUZZ DONE", "kfuzz: cap store", "kfuzz: thread", "census: frames:", "CASE PASS", "CASE FAIL", "KTEST"];
    let mut results = Vec::new();
    let mut before = None;
    for line in serial.lines() {
        if let Some((_, census)) = line.split_once("census: before ") {
            before = Some(census_fields(census));
        } else if let Some((_, census)) = line.split_once("census: after ") {
            let after = census_fields(census);
            let change: Vec<String> = match before.take() {
                Some(before) => after
                    .iter()
                    .zip(before.iter())
                    .map(|((name, new), (_, old))| format!("{name} {:+}", i128::from(*new) - i128::from(*old)))
                    .collect(),
                None => vec!["no census before".into()],
            };
            results.push(format!("census change: {}", change.join(", ")));
        } else if let Some(kept) = KEPT.iter().find_map(|prefix| line.find(prefix).map(|at| &line[at..])) {
            results.push(kept.trim_end().to_string());
        } else if line.contains("consistent, every resource returned") {
            results.push(line.trim_end().to_string());
        }
    }
    results
}

/// `Census { name: hex, ... }` as (name, value) pairs, in order.
fn census_fields(text: &str) -> Vec<(String, u64)> {
    let inner = text.trim().trim_start_matches("Census").trim().trim_start_matches('{').trim_end_matches('}');
    inner
        .split(',')
        .filter_map(|field| {
            let (name, value) = field.split_once(':')?;
            Some((name.trim().to_string(), u64::from_str_radix(value.trim(), 16).ok()?))
        })
        .collect()
}

/// `qemu::fastpath_agrees`: the fuzzer and the leak suite with the fast path off give the
/// same results as `fast` (their serial logs with it on, where this run had them).
pub fn agrees(kernel: &Path, initrd: &Path, accel: Accel, fast: Vec<(&str, String)>, tally: &mut Tally) -> Result<()> {
    let what = "the fuzzer's result tally and verdicts, each leak-suite case's verdict and census change: the same with the IPC fast path on and off";
    let mut differences = Vec::new();
    let mut compared = 0;
    for name in COMPARED {
        let on = match fast.iter().find(|(run, _)| run == name) {
            Some((_, serial)) => serial.clone(),
            None => boot(kernel, initrd, accel, name, "")?,
        };
        let off = boot(kernel, initrd, accel, name, " ipc_fastpath=off")?;
        let (on, off) = (results(&on), results(&off));
        compared += on.len();
        if on.is_empty() {
            differences.push(format!("{name}: no results at all with the fast path on"));
        }
        if on != off {
            let first = on.iter().zip(off.iter()).position(|(a, b)| a != b).unwrap_or(on.len().min(off.len()));
            differences.push(format!(
                "{name}: result {} differs (on: {:?}, off: {:?}; {} and {} results)",
                first + 1,
                on.get(first),
                off.get(first),
                on.len(),
                off.len()
            ));
        }
    }
    if differences.is_empty() {
        tally.passed += 1;
        println!("test qemu::fastpath_agrees ... ok ({compared} results compared) — {what}");
    } else {
        tally.failed += 1;
        tally.failures.push(format!("qemu::fastpath_agrees ({})", differences.join("; ")));
        println!("test qemu::fastpath_agrees ... FAILED — {what}");
        for difference in differences {
            println!("  {difference}");
        }
    }
    Ok(())
}

fn boot(kernel: &Path, initrd: &Path, accel: Accel, name: &str, extra: &str) -> Result<String> {
    let cmdline = format!("ktest={name} quiet{extra}");
    let boot = Boot::Direct { kernel, initrd, cmdline: &cmdline };
    let outcome = qemu::run_captured(qemu::test_command(&boot, accel), Duration::from_secs(600))?;
    Ok(outcome.serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "census: before Census { cap_objects: 167, free_frames: 1f445, slots_with_stacks: 7 }";

    #[test]
    fn census_is_compared_as_each_runs_change_not_its_absolute_frames() {
        let on = format!("{BEFORE}\ncensus: after  Census {{ cap_objects: 167, free_frames: 1f441, slots_with_stacks: 8 }}\nCASE PASS A-1\n");
        let moved = on.replace("1f445", "1f443").replace("1f441", "1f43f");
        assert_eq!(results(&on), results(&moved));
        assert_eq!(results(&on)[0], "census change: cap_objects +0, free_frames -4, slots_with_stacks +1");
        let leaked = on.replace("1f441", "1f440");
        assert_ne!(results(&on), results(&leaked));
    }

    #[test]
    fn verdicts_and_the_fuzz_tally_are_kept_and_timings_are_not() {
        let serial = "[ 1.0] fuzzer: results by code (...): [1, 2]\nkfuzz: echo client made 43227 correct round trips\nCASE FAIL B-2: why\n";
        assert_eq!(results(serial), ["fuzzer: results by code (...): [1, 2]", "CASE FAIL B-2: why"]);
    }

    #[test]
    fn a_rerun_must_be_off_and_never_take_the_fast_path() {
        assert!(check_report("ipc_call_reply_slowpath", "ipc fast path: off, taken 0 times\nKTEST PASS x").is_ok());
        assert!(check_report("ipc_call_reply_slowpath", "ipc fast path: on, taken 5 times").is_err());
        assert!(check_report("ipc_call_reply_slowpath", "no report").is_err());
        assert!(check_report("ipc_call_reply", "ipc fast path: on, taken 0 times").is_err());
        assert!(check_report("ipc_call_reply", "ipc fast path: on, taken 200 times").is_ok());
        assert!(check_report("boot", "").is_ok());
    }
}
