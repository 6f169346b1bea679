//! The in-QEMU test harnesses (`--features ktest`): not part of the kernel users boot.
//!
//! - `ktest`: the kernel tests, chosen by `ktest=NAME` on the command line, and the
//!   dispatcher to the harnesses below;
//! - `ksuite`: the capability-leak and isolation suite's harness (`userland/leak-suite`);
//! - `kfuzz`: the syscall fuzzer's run, its consistency checks;
//! - `kbench`: the benchmark programs;
//! - `klifecycle`: the 1,000-process churn;
//! - `census`: the resource count all of them compare before and after a run.

pub mod census;
pub mod kbench;
pub mod kfuzz;
pub mod klifecycle;
pub mod ksuite;
pub mod ktest;

/// The line every harness prints before its verdict: whether the IPC fast path was on and
/// how often it was taken (`qemu::fastpath_agrees` and the slow-path reruns check it).
pub fn report_fastpath() {
    let state = if crate::ipc::fastpath::enabled() { "on" } else { "off" };
    crate::println!("ipc fast path: {state}, taken {} times", crate::ipc::fastpath::taken());
}
