//! `cargo xtask bench linux`: the Linux peer, and the report that sets our figures beside it.
//!
//! The peer is Debian's own kernel (`linux-image-amd64`, resolved to the real
//! `linux-image-<version>-amd64` package) booted by the same QEMU, machine, accelerator and
//! `-icount` setting as our kernel, with an initramfs of Debian's `busybox-static` and the
//! static benchmark program `bench/linux-peer` (read its crate doc for what it measures and
//! how). The kernel runs with Debian's default command line, so its default mitigations are
//! on; the report records which the kernel says are in force.
//!
//! # Units
//!
//! Under TCG with `-icount shift=0` the guest TSC advances exactly one tick per executed
//! guest instruction, so every figure is an instruction count: a path length, not a hardware
//! cost (`rep` string instructions count once per iteration, a page-table switch counts as
//! one instruction). The peer checks this with a calibration loop, and this harness refuses
//! the run if the slope is not 1.000. Under KVM the figures are TSC cycles.
//!
//! # Caches
//!
//! The `.deb` files, the extracted `vmlinuz` and `busybox`, the last serial log and the last
//! run's guest description live in `target/bench/linux/`; nothing downloaded is committed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::build::{target_dir, workspace_root};
use crate::qemu::{self, Accel, Boot};
use crate::setup;

/// One measured figure: statistics over the iterations that followed the warm-up.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figure {
    /// What was measured, e.g. `null_syscall`, `futex_round_trip`, `futex_one_way`.
    pub name: String,
    /// `instructions` (TCG, `-icount shift=0`), `cycles` (KVM), or what a calibration
    /// figure is in.
    pub unit: String,
    pub median: f64,
    pub min: f64,
    pub p99: f64,
    pub stddev: f64,
    pub iterations: u64,
}

/// A figure measured elsewhere, not in this run: the reference rows.
struct Reference {
    group: Group,
    label: &'static str,
    unit: &'static str,
    value: f64,
    source: &'static str,
}

const SEL4_TCG: &str = "seL4 sel4bench, QEMU 7.2 TCG, -icount shift=0";
const LINUX61_TCG: &str = "Linux 6.1 guest, QEMU 7.2 TCG, -icount shift=0, same method";
const SEL4_HW: &str = "seL4 performance page 2024, i7-6700, no Meltdown mitigation";

const REFERENCES: &[Reference] = &[
    Reference {
        group: Group::Null,
        label: "seL4 null syscall",
        unit: "instructions",
        value: 89.0,
        source: SEL4_TCG,
    },
    Reference {
        group: Group::Null,
        label: "Linux 6.1 null syscall",
        unit: "instructions",
        value: 330.0,
        source: LINUX61_TCG,
    },
    Reference {
        group: Group::RoundTrip,
        label: "seL4 Call + ReplyRecv",
        unit: "instructions",
        value: 395.0,
        source: SEL4_TCG,
    },
    Reference {
        group: Group::RoundTrip,
        label: "Linux 6.1 futex ping-pong",
        unit: "instructions",
        value: 12_600.0,
        source: LINUX61_TCG,
    },
    Reference {
        group: Group::OneWay,
        label: "seL4 Call",
        unit: "instructions",
        value: 184.0,
        source: SEL4_TCG,
    },
    Reference {
        group: Group::OneWay,
        label: "seL4 ReplyRecv",
        unit: "instructions",
        value: 211.0,
        source: SEL4_TCG,
    },
    Reference {
        group: Group::OneWay,
        label: "seL4 Call, 10 words",
        unit: "instructions",
        value: 802.0,
        source: SEL4_TCG,
    },
    Reference {
        group: Group::OneWay,
        label: "seL4 ReplyRecv, 10 words",
        unit: "instructions",
        value: 770.0,
        source: SEL4_TCG,
    },
    Reference {
        group: Group::OneWay,
        label: "seL4 Call",
        unit: "cycles",
        value: 375.0,
        source: SEL4_HW,
    },
    Reference {
        group: Group::OneWay,
        label: "seL4 ReplyRecv",
        unit: "cycles",
        value: 382.0,
        source: SEL4_HW,
    },
];

/// Which of our figures is compared with which Linux figure (besides equal names).
const PAIRS: &[(&str, &str)] = &[
    ("ipc_round_trip", "futex_round_trip"),
    ("ipc_one_way", "futex_one_way"),
];

const PEER_TARGET: &str = "x86_64-unknown-linux-gnu";
const MARKER: &str = "LINUX-PEER";
const ITERATIONS: u32 = 10_000;
const WARMUP: u32 = 1_000;
/// A run takes about a minute under TCG; this only guards against a hung guest.
const TIMEOUT: Duration = Duration::from_secs(900);

/// `cargo xtask bench linux`: run the peer, print the table, write the report.
pub fn run() -> Result<()> {
    let linux = run_linux_peer()?;
    print_table(&[], &linux);
    let path = workspace_root()
        .join("target")
        .join("bench")
        .join("report.json");
    write_report(&[], &linux, &path)?;
    println!(
        "\nreport: {}\nchart:  {}",
        path.display(),
        path.with_extension("svg").display()
    );
    Ok(())
}

fn cache_dir() -> PathBuf {
    workspace_root().join("target").join("bench").join("linux")
}

/// Boots Debian's kernel with the benchmark initramfs and returns its figures (calibration
/// included, as `calibration_slope`).
pub fn run_linux_peer() -> Result<Vec<Figure>> {
    setup::ensure(setup::QEMU)?;
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let kernel = fetch_kernel(&dir)?;
    let busybox = fetch_busybox(&dir)?;
    let peer = build_peer()?;
    let initramfs = dir.join("initramfs.cpio");
    write_initramfs(&initramfs, &busybox.path, &peer)?;

    let accel = Accel::detect();
    let cmdline =
        format!("console=ttyS0 quiet panic=-1 peer_iters={ITERATIONS} peer_warmup={WARMUP}");
    let mut command = qemu::command(
        &Boot::Direct {
            kernel: &kernel.path,
            initrd: &initramfs,
            cmdline: &cmdline,
        },
        accel,
    );
    if accel == Accel::Tcg {
        command.args(["-icount", "shift=0"]);
    }
    // No network card: nothing in the guest uses one, and its option ROM only slows boot.
    command.args(["-nic", "none"]);
    let qemu_args = format!(
        "qemu-system-x86_64 {}",
        command
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!(
        "xtask: booting {} ({}) with the peer, {ITERATIONS} iterations after {WARMUP} warm-up, {accel:?}",
        kernel.package, kernel.version
    );

    let outcome = qemu::run_captured(command, TIMEOUT)?;
    let log = dir.join("serial.log");
    std::fs::write(&log, &outcome.serial).with_context(|| format!("writing {}", log.display()))?;
    let run = parse_serial(&outcome.serial).with_context(|| {
        let tail: Vec<&str> = outcome.serial.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
        format!("the Linux peer did not finish (QEMU status {:?}, after {:.1?}); full log in {}; last lines:\n{}", outcome.status, outcome.elapsed, log.display(), tail.join("\n"))
    })?;
    eprintln!(
        "xtask: the Linux peer ran in {:.1?} (boot to power-off)",
        outcome.elapsed
    );

    let calibration = &run.calibration;
    let unit = match accel {
        Accel::Tcg => {
            ensure!(
                (calibration.slope - 1.0).abs() <= 1e-3 && calibration.max_residual <= 2.0,
                "calibration failed: the TSC advanced {:.6} ticks per instruction (max residual {:.3}); \
                 with -icount shift=0 it must be 1.000, or the figures are not instruction counts",
                calibration.slope,
                calibration.max_residual
            );
            "instructions"
        }
        Accel::Kvm => "cycles",
    };

    let mut figures: Vec<Figure> = run
        .figures
        .iter()
        .map(|line| Figure {
            name: line.name.clone(),
            unit: unit.to_string(),
            median: line.median,
            min: line.min,
            p99: line.p99,
            stddev: line.stddev,
            iterations: line.iterations,
        })
        .collect();
    figures.push(Figure {
        name: "calibration_slope".into(),
        unit: "TSC ticks per instruction".into(),
        median: calibration.slope,
        min: calibration.slope,
        p99: calibration.slope,
        stddev: 0.0,
        iterations: calibration.points.len() as u64,
    });

    let description = serde_json::json!({
        "kernel_package": format!("{} {}", kernel.package, kernel.version),
        "busybox_package": format!("{} {}", busybox.package, busybox.version),
        "guest": run.environment,
        "calibration": calibration,
        "qemu_command": qemu_args,
        "accelerator": format!("{accel:?}"),
        "iterations": ITERATIONS,
        "warmup": WARMUP,
        "wall_seconds": outcome.elapsed.as_secs_f64(),
        "serial_max_values": run.figures.iter().map(|f| (f.name.clone(), f.max)).collect::<std::collections::BTreeMap<_, _>>(),
    });
    let path = dir.join("last-run.json");
    std::fs::write(&path, serde_json::to_string_pretty(&description)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(figures)
}

// ---------------------------------------------------------------------------------------
// Debian packages

struct Fetched {
    package: String,
    version: String,
    path: PathBuf,
}

/// Resolves `linux-image-amd64` to the kernel package it depends on, downloads it and
/// extracts `/boot/vmlinuz-*`.
fn fetch_kernel(dir: &Path) -> Result<Fetched> {
    let package = match resolve_kernel_package() {
        Ok(package) => package,
        Err(error) => match cached_deb(dir, "linux-image-") {
            Some(deb) => package_field(&deb, "Package")?,
            None => return Err(error),
        },
    };
    let deb = download(dir, &package)?;
    let version = package_field(&deb, "Version")?;
    let path = dir.join(format!("vmlinuz-{version}"));
    if !path.exists() {
        extract(&deb, "boot/vmlinuz-", &path)?;
    }
    Ok(Fetched {
        package,
        version,
        path,
    })
}

fn fetch_busybox(dir: &Path) -> Result<Fetched> {
    let package = "busybox-static".to_string();
    let deb = download(dir, &package)?;
    let version = package_field(&deb, "Version")?;
    let path = dir.join(format!("busybox-{}", version.replace(':', "_")));
    if !path.exists() {
        extract(&deb, "bin/busybox", &path)?;
    }
    Ok(Fetched {
        package,
        version,
        path,
    })
}

/// `apt-cache depends linux-image-amd64` names the versioned kernel package.
fn resolve_kernel_package() -> Result<String> {
    let query = || -> Result<Option<String>> {
        let output = Command::new("apt-cache")
            .args(["depends", "linux-image-amd64"])
            .output()
            .context("running apt-cache")?;
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix("Depends: ")
                    .filter(|p| p.starts_with("linux-image-"))
                    .map(str::to_string)
            }))
    };
    if let Some(package) = query()? {
        return Ok(package);
    }
    // No package lists yet (a fresh machine): fetch them once, as root.
    eprintln!("xtask: apt-cache does not know linux-image-amd64; running apt-get update");
    let status = Command::new("apt-get")
        .arg("update")
        .stdout(Stdio::null())
        .status()
        .context("running apt-get update")?;
    ensure!(
        status.success(),
        "apt-get update failed; run it (as root) and retry"
    );
    query()?.context("apt-cache depends linux-image-amd64 names no linux-image package")
}

fn cached_deb(dir: &Path, prefix: &str) -> Option<PathBuf> {
    let mut debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.starts_with(prefix) && name.ends_with(".deb")
        })
        .collect();
    debs.sort();
    debs.pop()
}

/// The cached `.deb` of `package`, or `apt-get download` into `dir`.
fn download(dir: &Path, package: &str) -> Result<PathBuf> {
    if let Some(deb) = cached_deb(dir, &format!("{package}_")) {
        return Ok(deb);
    }
    eprintln!("xtask: apt-get download {package}");
    let output = Command::new("apt-get")
        .arg("download")
        .arg(package)
        .current_dir(dir)
        .output()
        .context("running apt-get download")?;
    ensure!(
        output.status.success(),
        "apt-get download {package} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    cached_deb(dir, &format!("{package}_")).with_context(|| {
        format!(
            "apt-get download {package} left no .deb in {}",
            dir.display()
        )
    })
}

fn package_field(deb: &Path, field: &str) -> Result<String> {
    let output = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(field)
        .output()
        .context("running dpkg-deb -f")?;
    ensure!(
        output.status.success(),
        "dpkg-deb -f {} {field} failed",
        deb.display()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Copies the first file of `deb`'s data whose path starts with `prefix` to `to`
/// (`dpkg-deb --fsys-tarfile`, read with the tar crate: no root, no unpacking of the rest).
fn extract(deb: &Path, prefix: &str, to: &Path) -> Result<()> {
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("running dpkg-deb --fsys-tarfile")?;
    let stdout = child.stdout.take().context("dpkg-deb stdout")?;
    let mut archive = tar::Archive::new(stdout);
    let mut found = false;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if path.starts_with(prefix) && entry.header().entry_type().is_file() {
            let partial = to.with_extension("partial");
            let mut file = std::fs::File::create(&partial)?;
            std::io::copy(&mut entry, &mut file)?;
            std::fs::rename(&partial, to)?;
            found = true;
            break;
        }
    }
    drop(archive);
    let _ = child.kill();
    let _ = child.wait();
    ensure!(found, "{} holds no {prefix}*", deb.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The benchmark program and the initramfs

/// Builds `linux-peer` as a static executable and checks that it is one.
fn build_peer() -> Result<PathBuf> {
    let dir = target_dir().join("linux-peer");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "--quiet",
            "--package",
            "linux-peer",
            "--target",
            PEER_TARGET,
        ])
        .arg("--target-dir")
        .arg(&dir)
        // With `--target`, these flags reach only the peer, not build scripts.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            "-Ctarget-feature=+crt-static\x1f-Cstrip=debuginfo",
        )
        .status()
        .context("building linux-peer")?;
    ensure!(status.success(), "building linux-peer failed");
    let path = dir.join(PEER_TARGET).join("release").join("linux-peer");
    let elf = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    ensure!(
        !has_interpreter(&elf)?,
        "{} is dynamically linked (it has PT_INTERP); it must be static",
        path.display()
    );
    Ok(path)
}

/// Whether an ELF64 little-endian executable names a dynamic loader (a `PT_INTERP` header).
fn has_interpreter(elf: &[u8]) -> Result<bool> {
    ensure!(
        elf.get(..4) == Some(b"\x7fELF".as_slice()) && elf.get(4) == Some(&2),
        "not an ELF64 file"
    );
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let (Some(phoff), Some(phentsize), Some(phnum)) = (phoff, phentsize, phnum) else {
        bail!("truncated ELF header")
    };
    for index in 0..phnum {
        let at = phoff + index * phentsize;
        let kind = elf
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .context("truncated program header")?;
        if kind == 3 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `/init`: mount what the peer reads, run it, power off whatever happened.
const INIT: &str = "#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo LINUX-PEER-BOOTED
/linux-peer
echo LINUX-PEER-EXIT $?
/bin/busybox poweroff -f
";

/// Writes the initramfs: a `newc` cpio archive (uncompressed; the kernel takes it as is).
fn write_initramfs(path: &Path, busybox: &Path, peer: &Path) -> Result<()> {
    let mut cpio = Cpio::default();
    for dir in ["bin", "dev", "proc", "sys"] {
        cpio.entry(dir, 0o040755, (0, 0), b"");
    }
    // The kernel opens /dev/console for init before anything is mounted.
    cpio.entry("dev/console", 0o020600, (5, 1), b"");
    cpio.entry("bin/busybox", 0o100755, (0, 0), &std::fs::read(busybox)?);
    cpio.entry("bin/sh", 0o120777, (0, 0), b"busybox");
    cpio.entry("init", 0o100755, (0, 0), INIT.as_bytes());
    cpio.entry("linux-peer", 0o100755, (0, 0), &std::fs::read(peer)?);
    std::fs::write(path, cpio.finish()).with_context(|| format!("writing {}", path.display()))
}

/// A minimal writer of the cpio `newc` format (`070701`), which the kernel unpacks as the
/// initramfs: a 110-byte ASCII header, the NUL-terminated name and the data, each padded
/// to four bytes, then a `TRAILER!!!` entry.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    inode: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        self.inode += 1;
        let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
        let fields = [
            self.inode,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        let mut header = String::from("070701");
        for field in fields {
            let _ = write!(header, "{field:08X}");
        }
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), b"");
        self.out
    }
}

// ---------------------------------------------------------------------------------------
// The guest's output

#[derive(Deserialize)]
struct PeerLine {
    name: String,
    median: f64,
    min: f64,
    p99: f64,
    max: f64,
    stddev: f64,
    iterations: u64,
}

#[derive(Deserialize, Serialize)]
struct Calibration {
    slope: f64,
    intercept: f64,
    max_residual: f64,
    /// (instructions executed, median TSC ticks) per loop length.
    points: Vec<(f64, f64)>,
}

struct PeerRun {
    environment: serde_json::Value,
    calibration: Calibration,
    figures: Vec<PeerLine>,
}

fn parse_serial(serial: &str) -> Result<PeerRun> {
    let mut environment = serde_json::Value::Null;
    let mut calibration = None;
    let mut figures = Vec::new();
    let mut done = false;
    for line in serial.lines().map(str::trim) {
        // The marker may follow kernel output on the same line.
        let Some(at) = line.find(MARKER) else {
            continue;
        };
        let line = &line[at + MARKER.len()..];
        if let Some(json) = line.strip_prefix("-ENV ") {
            environment = serde_json::from_str(json).context("parsing LINUX-PEER-ENV")?;
        } else if let Some(json) = line.strip_prefix("-CALIBRATION ") {
            calibration =
                Some(serde_json::from_str(json).context("parsing LINUX-PEER-CALIBRATION")?);
        } else if let Some(json) = line.strip_prefix(' ') {
            figures.push(
                serde_json::from_str(json)
                    .with_context(|| format!("parsing LINUX-PEER line {json:?}"))?,
            );
        } else if line == "-DONE" {
            done = true;
        }
    }
    ensure!(done, "no LINUX-PEER-DONE line");
    let calibration = calibration.context("no LINUX-PEER-CALIBRATION line")?;
    Ok(PeerRun {
        environment,
        calibration,
        figures,
    })
}

// ---------------------------------------------------------------------------------------
// Table, report and chart

fn find<'a>(figures: &'a [Figure], name: &str) -> Option<&'a Figure> {
    figures.iter().find(|f| f.name == name)
}

/// Our figure that compares with the Linux figure `linux` (same name, or listed in `PAIRS`).
fn ours_for<'a>(ours: &'a [Figure], linux: &str) -> Option<&'a Figure> {
    find(ours, linux).or_else(|| {
        PAIRS
            .iter()
            .find(|(_, l)| *l == linux)
            .and_then(|(o, _)| find(ours, o))
    })
}

/// Prints every Linux figure with ours beside it (where we have one) and the ratio, then
/// the reference rows, labelled as measured elsewhere.
pub fn print_table(ours: &[Figure], linux: &[Figure]) {
    println!(
        "\n{:<20} {:<13} {:>10} {:>10} {:>10} {:>9} {:>10} {:>12}",
        "figure", "unit", "Linux med", "min", "p99", "stddev", "ours med", "ours/Linux"
    );
    println!("{}", "-".repeat(100));
    for figure in linux {
        let mine = ours_for(ours, &figure.name);
        let (mine_median, ratio) = match mine {
            Some(m) if m.unit == figure.unit && figure.median > 0.0 => {
                (fmt(m.median), format!("{:.3}", m.median / figure.median))
            }
            Some(m) => (fmt(m.median), "n/a (unit)".into()),
            None => ("-".into(), "-".into()),
        };
        if figure.name == "calibration_slope" {
            println!(
                "{:<20} {:<13} {:>10.6}   (the harness requires 1.000000 +- 0.001 under TCG with -icount)",
                figure.name, "ticks/instr", figure.median
            );
            continue;
        }
        let unit: String = figure.unit.chars().take(13).collect();
        println!(
            "{:<20} {:<13} {:>10} {:>10} {:>10} {:>9.1} {:>10} {:>12}",
            figure.name,
            unit,
            fmt(figure.median),
            fmt(figure.min),
            fmt(figure.p99),
            figure.stddev,
            mine_median,
            ratio
        );
    }
    for figure in ours.iter().filter(|o| {
        !linux
            .iter()
            .any(|l| ours_for(std::slice::from_ref(*o), &l.name).is_some())
    }) {
        println!(
            "{:<20} {:<13} {:>10} {:>10} {:>10} {:>9} {:>10} {:>12}",
            figure.name,
            figure.unit,
            "-",
            "-",
            "-",
            "-",
            fmt(figure.median),
            "-"
        );
    }
    println!("\nReference rows, measured elsewhere, not in this run:");
    for reference in REFERENCES {
        println!(
            "  {:<28} {:>8} {:<13} ({})",
            reference.label,
            fmt(reference.value),
            reference.unit,
            reference.source
        );
    }
}

fn fmt(value: f64) -> String {
    if value.fract() == 0.0 || value >= 1000.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Writes the JSON report at `path` (every figure, the comparison, the reference rows and
/// the environment) and the chart beside it (`path` with extension `svg`).
///
/// `figures_ours` may be empty; our figures are compared with Linux's by equal name or by
/// `PAIRS` (`ipc_round_trip` with `futex_round_trip`, `ipc_one_way` with `futex_one_way`).
/// The Linux guest's description comes from the last `run_linux_peer` (in the cache).
pub fn write_report(figures_ours: &[Figure], figures_linux: &[Figure], path: &Path) -> Result<()> {
    let accel = Accel::detect();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let commit = command_line(
        "git",
        &[
            "-C",
            &workspace_root().to_string_lossy(),
            "rev-parse",
            "HEAD",
        ],
    );
    let dirty = !command_line(
        "git",
        &[
            "-C",
            &workspace_root().to_string_lossy(),
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )
    .is_empty();
    let linux_guest: serde_json::Value = std::fs::read_to_string(cache_dir().join("last-run.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(serde_json::Value::Null);
    let comparison: Vec<serde_json::Value> = figures_linux
        .iter()
        .filter_map(|l| {
            let o = ours_for(figures_ours, &l.name)?;
            let ratio = (o.unit == l.unit && l.median > 0.0).then(|| o.median / l.median);
            Some(serde_json::json!({ "ours": o.name, "linux": l.name, "unit": l.unit, "ours_median": o.median, "linux_median": l.median, "ratio_ours_over_linux": ratio }))
        })
        .collect();
    let references: Vec<serde_json::Value> = REFERENCES
        .iter()
        .map(|r| serde_json::json!({ "label": r.label, "unit": r.unit, "value": r.value, "source": r.source, "measured_in_this_run": false }))
        .collect();
    let report = serde_json::json!({
        "environment": {
            "qemu_version": command_line("qemu-system-x86_64", &["--version"]).lines().next().unwrap_or_default(),
            "accelerator": format!("{accel:?}"),
            "icount": if accel == Accel::Tcg { "shift=0" } else { "off" },
            "unit_meaning": if accel == Accel::Tcg {
                "instructions: guest TSC ticks under -icount shift=0, one per executed guest instruction (path length, not hardware cost)"
            } else {
                "cycles: guest TSC cycles under KVM"
            },
            "host_cpu": cpu,
            "git_commit": commit,
            "git_dirty": dirty,
            "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        },
        "ours": figures_ours,
        "linux": figures_linux,
        "linux_guest": linux_guest,
        "comparison": comparison,
        "reference_measured_elsewhere": references,
    });
    // `cargo xtask bench ai` keeps its figures in the same file under "ai": carry them over.
    let mut report = report;
    if let Some(ai) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|old| old.get("ai").cloned())
    {
        report["ai"] = ai;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    draw_chart(figures_ours, figures_linux, &path.with_extension("svg"))
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Null,
    RoundTrip,
    OneWay,
}

impl Group {
    /// The chart group of a figure name; the timing overheads and calibration are in none.
    fn of(name: &str) -> Option<Group> {
        if name.starts_with("tsc_overhead") || name.starts_with("calibration") {
            None
        } else if name.contains("null") {
            Some(Group::Null)
        } else if name.contains("round_trip") {
            Some(Group::RoundTrip)
        } else if name.contains("one_way") || name.contains("call") || name.contains("reply") {
            Some(Group::OneWay)
        } else {
            None
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Ours,
    Linux,
    Reference,
}

/// A horizontal bar chart on a log scale: per group (null syscall, round trip, one-way),
/// ours, Linux in this run, then the reference rows in the same unit.
fn draw_chart(ours: &[Figure], linux: &[Figure], path: &Path) -> Result<()> {
    use plotters::prelude::*;

    let unit = linux
        .iter()
        .chain(ours)
        .find_map(|f| Group::of(&f.name).map(|_| f.unit.clone()))
        .unwrap_or_else(|| "instructions".into());
    let mut rows: Vec<(Group, Source, String, f64)> = Vec::new();
    for (source, figures, who) in [
        (Source::Ours, ours, "ours"),
        (Source::Linux, linux, "Linux, this run"),
    ] {
        for figure in figures.iter().filter(|f| f.unit == unit) {
            if let Some(group) = Group::of(&figure.name) {
                rows.push((
                    group,
                    source,
                    format!("{} ({who})", figure.name),
                    figure.median,
                ));
            }
        }
    }
    for reference in REFERENCES.iter().filter(|r| r.unit == unit) {
        rows.push((
            reference.group,
            Source::Reference,
            format!("{} (reference, not this run)", reference.label),
            reference.value,
        ));
    }
    rows.sort_by_key(|row| (row.0, row.1 as u8));
    ensure!(!rows.is_empty(), "nothing to chart");

    let count = rows.len();
    let max = rows.iter().map(|r| r.3).fold(1.0, f64::max);
    let labels: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
    let height = 120 + 30 * count as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let setting = if unit == "instructions" {
        "QEMU TCG, -icount shift=0: one TSC tick per guest instruction"
    } else {
        "TSC cycles"
    };
    let title = format!("Median {unit} per operation, log scale ({setting})");
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(430)
        // `(0..n).into_segmented()` has n + 1 segments; rows take 0..count.
        .build_cartesian_2d(
            (1.0f64..max * 3.0).log_scale(),
            (0..count - 1).into_segmented(),
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(count)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => (count - 1)
                .checked_sub(*i)
                .and_then(|i| labels.get(i))
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_formatter(&|v| format!("{v:.0}"))
        .x_desc(unit.as_str())
        .draw()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let colour = |source: Source| match source {
        Source::Ours => RGBColor(31, 119, 180),
        Source::Linux => RGBColor(230, 120, 20),
        Source::Reference => RGBColor(160, 160, 160),
    };
    chart
        .draw_series(rows.iter().enumerate().map(|(i, row)| {
            let y = count - 1 - i;
            let mut bar = Rectangle::new(
                [
                    (1.0, SegmentValue::Exact(y)),
                    (row.3, SegmentValue::Exact(y + 1)),
                ],
                colour(row.1).filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, row)| {
            Text::new(
                format!(" {}", fmt(row.3)),
                (row.3, SegmentValue::CenterOf(count - 1 - i)),
                ("sans-serif", 13).into_font(),
            )
        }))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(name: &str, unit: &str, median: f64) -> Figure {
        Figure {
            name: name.into(),
            unit: unit.into(),
            median,
            min: median,
            p99: median,
            stddev: 0.0,
            iterations: 10,
        }
    }

    #[test]
    fn cpio_entries_are_newc_and_four_byte_aligned() {
        let mut cpio = Cpio::default();
        cpio.entry("init", 0o100755, (0, 0), b"#!/bin/sh\n");
        let out = cpio.finish();
        assert!(out.starts_with(b"070701"));
        // Header (110) + "init\0" (5) padded to 116, then 10 data bytes padded to 12.
        assert_eq!(&out[110..115], b"init\0");
        assert_eq!(&out[116..126], b"#!/bin/sh\n");
        assert_eq!(&out[128..134], b"070701");
        assert_eq!(&out[128 + 110..128 + 121], b"TRAILER!!!\0");
        assert_eq!(out.len() % 4, 0);
        // Field 7 (file size) of the first header.
        assert_eq!(&out[6 + 6 * 8..6 + 7 * 8], b"0000000A");
    }

    #[test]
    fn an_elf_with_pt_interp_is_dynamic() {
        let mut elf = vec![0u8; 0x40 + 2 * 56];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        assert!(!has_interpreter(&elf).unwrap());
        elf[0x40 + 56..0x44 + 56].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        assert!(has_interpreter(&elf).unwrap());
        assert!(has_interpreter(b"not an elf").is_err());
    }

    #[test]
    fn serial_parsing_needs_done_and_calibration() {
        let serial = "noise\r\n[ 1.0] x LINUX-PEER-ENV {\"cpus\":1}\r\n\
            LINUX-PEER-CALIBRATION {\"slope\":1.000000,\"intercept\":4,\"max_residual\":0,\"points\":[[2001,2005]]}\r\n\
            LINUX-PEER {\"name\":\"null_syscall\",\"median\":321,\"min\":321,\"p99\":321,\"max\":400,\"mean\":321.5,\"stddev\":0.5,\"iterations\":10}\r\n";
        assert!(parse_serial(serial).is_err(), "no DONE line");
        let run = parse_serial(&format!("{serial}LINUX-PEER-DONE\r\n")).unwrap();
        assert_eq!(run.figures.len(), 1);
        assert_eq!(run.figures[0].median, 321.0);
        assert_eq!(run.calibration.slope, 1.0);
        assert_eq!(run.environment["cpus"], 1);
    }

    #[test]
    fn report_pairs_ours_with_linux_and_draws_the_chart() {
        let dir = std::env::temp_dir().join(format!("bench-linux-report-{}", std::process::id()));
        let path = dir.join("report.json");
        let linux = [
            figure("null_syscall", "instructions", 321.0),
            figure("futex_round_trip", "instructions", 12583.0),
        ];
        let ours = [
            figure("null_syscall", "instructions", 107.0),
            figure("ipc_round_trip", "instructions", 1000.0),
        ];
        write_report(&ours, &linux, &path).unwrap();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let comparison = report["comparison"].as_array().unwrap();
        assert_eq!(comparison.len(), 2);
        assert_eq!(comparison[1]["ours"], "ipc_round_trip");
        assert!(
            (comparison[0]["ratio_ours_over_linux"].as_f64().unwrap() - 107.0 / 321.0).abs() < 1e-9
        );
        assert_eq!(
            report["reference_measured_elsewhere"]
                .as_array()
                .unwrap()
                .len(),
            REFERENCES.len()
        );
        let svg = std::fs::read_to_string(path.with_extension("svg")).unwrap();
        assert!(
            svg.contains("null_syscall (ours)")
                && svg.contains("seL4 Call (reference, not this run)")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
