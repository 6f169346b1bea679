//! Starting QEMU: machine, firmware, accelerator and the test exit device.
//!
//! The machine is q35 with qboot as firmware when QEMU ships it (it reaches the kernel in
//! tens of milliseconds; SeaBIOS takes seconds) and the kernel loaded by PVH (`-kernel`).
//! The GRUB image boots with the default SeaBIOS, or with OVMF for UEFI.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::setup;

const QBOOT: &str = "/usr/share/qemu/qboot.rom";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    Tcg,
    Kvm,
}

impl Accel {
    /// KVM only where /dev/kvm is hardware KVM: under the PVM hypervisor
    /// (`/sys/module/kvm_pvm`) SYSCALL from ring 3 misbehaves and real-mode firmware
    /// crawls, so TCG is the right default there.
    pub fn detect() -> Accel {
        let kvm_usable = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok();
        if kvm_usable && !Path::new("/sys/module/kvm_pvm").exists() { Accel::Kvm } else { Accel::Tcg }
    }
}

pub enum Boot<'a> {
    /// PVH: `-kernel`, `-initrd`, `-append`.
    Direct { kernel: &'a Path, initrd: &'a Path, cmdline: &'a str },
    /// The GRUB image, by BIOS or UEFI firmware.
    Iso { image: &'a Path, uefi: bool },
}

pub fn command(boot: &Boot, accel: Accel) -> Command {
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-machine", "q35", "-m", "512M", "-smp", "1", "-no-reboot", "-display", "none"]);
    qemu.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    match accel {
        Accel::Tcg => qemu.args(["-accel", "tcg", "-cpu", "max"]),
        Accel::Kvm => qemu.args(["-accel", "kvm", "-cpu", "host"]),
    };
    match boot {
        Boot::Direct { kernel, initrd, cmdline } => {
            if Path::new(QBOOT).exists() {
                qemu.args(["-bios", QBOOT]);
            }
            qemu.arg("-kernel").arg(kernel).arg("-initrd").arg(initrd).arg("-append").arg(cmdline);
        }
        Boot::Iso { image, uefi } => {
            if *uefi {
                qemu.arg("-drive").arg(format!("if=pflash,format=raw,readonly=on,file={}", setup::OVMF_CODE));
            }
            qemu.arg("-cdrom").arg(image);
        }
    }
    qemu
}

/// [`command`] for a test: under TCG the guest runs in virtual time (`-icount shift=0,sleep=off`:
/// one nanosecond of guest time per instruction, and idle time skipped to the next timer),
/// so nothing a test measures in guest time depends on how fast or how loaded the host is.
/// Under KVM there is no virtual time; timing checks there keep wide margins.
pub fn test_command(boot: &Boot, accel: Accel) -> Command {
    let mut qemu = command(boot, accel);
    if accel == Accel::Tcg {
        qemu.args(["-icount", "shift=0,sleep=off"]);
    }
    qemu
}

pub struct Outcome {
    /// QEMU's exit status, or `None` if it was killed at the timeout.
    pub status: Option<i32>,
    pub serial: String,
    pub elapsed: Duration,
}

/// Runs QEMU with the serial console captured, killing it after `timeout`.
pub fn run_captured(mut qemu: Command, timeout: Duration) -> Result<Outcome> {
    qemu.args(["-serial", "stdio", "-monitor", "none"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = qemu.spawn().context("starting qemu-system-x86_64")?;
    let mut stdout = child.stdout.take().context("qemu stdout")?;
    let mut stderr = child.stderr.take().context("qemu stderr")?;
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let error_reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status.code();
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let mut serial = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    let errors = error_reader.join().unwrap_or_default();
    if !errors.is_empty() {
        serial.push_str("\n[qemu stderr]\n");
        serial.push_str(&String::from_utf8_lossy(&errors));
    }
    Ok(Outcome { status, serial, elapsed })
}

pub fn ovmf_available() -> bool {
    PathBuf::from(setup::OVMF_CODE).exists()
}

/// Runs QEMU until its serial output contains every one of `wanted` (then stops it) or
/// `timeout` passes. For boots that do not end by themselves, such as a full system.
pub fn run_until(qemu: Command, wanted: &[&str], timeout: Duration) -> Result<(bool, Outcome)> {
    run_until_with(qemu, |text| wanted.iter().all(|want| text.contains(want)), timeout)
}

/// Runs QEMU until `done` holds of its serial output so far (then stops it) or `timeout`
/// passes. Returns whether `done` held.
pub fn run_until_with(qemu: Command, done: impl Fn(&str) -> bool, timeout: Duration) -> Result<(bool, Outcome)> {
    run_until_inner(qemu, done, timeout, false)
}

/// As [`run_until_with`], copying the serial output to this process's stdout as it comes
/// (`cargo xtask run --until`).
pub fn run_until_echoing(qemu: Command, done: impl Fn(&str) -> bool, timeout: Duration) -> Result<(bool, Outcome)> {
    run_until_inner(qemu, done, timeout, true)
}

fn run_until_inner(mut qemu: Command, done: impl Fn(&str) -> bool, timeout: Duration, echo: bool) -> Result<(bool, Outcome)> {
    use std::sync::{Arc, Mutex};
    qemu.args(["-serial", "stdio", "-monitor", "none"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let started = Instant::now();
    let mut child = qemu.spawn().context("starting qemu-system-x86_64")?;
    let mut stdout = child.stdout.take().context("qemu stdout")?;
    let serial = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&serial);
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(read) = stdout.read(&mut chunk) {
            if read == 0 {
                break;
            }
            if echo {
                use std::io::Write;
                let _ = std::io::stdout().write_all(&chunk[..read]);
                let _ = std::io::stdout().flush();
            }
            if let Ok(mut buffer) = sink.lock() {
                buffer.extend_from_slice(&chunk[..read]);
            }
        }
    });
    let found = |buffer: &[u8]| done(&String::from_utf8_lossy(buffer));
    let (matched, status) = loop {
        if serial.lock().map(|buffer| found(&buffer)).unwrap_or(false) {
            let _ = child.kill();
            let _ = child.wait();
            break (true, None);
        }
        if let Some(status) = child.try_wait()? {
            break (false, status.code());
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break (false, None);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    let text = serial.lock().map(|buffer| String::from_utf8_lossy(&buffer).into_owned()).unwrap_or_default();
    let matched = matched || found(text.as_bytes());
    Ok((matched, Outcome { status, serial: text, elapsed: started.elapsed() }))
}
