//! `cargo xtask run`: build everything, pack the boot image, boot it with the serial
//! console on this terminal (Ctrl-A X leaves QEMU).

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::build::{self, Flavour};
use crate::qemu::{self, Accel, Boot};
use crate::setup;

#[derive(clap::Args)]
pub struct Args {
    /// Build optimised (release) binaries.
    #[arg(long)]
    release: bool,
    /// Start QEMU halted, waiting for a debugger on localhost:1234 (`gdb -ex 'target remote :1234'`).
    #[arg(long)]
    gdb: bool,
    /// Boot the GRUB image (Multiboot2) instead of loading the kernel directly (PVH).
    #[arg(long)]
    iso: bool,
    /// With --iso: boot it with UEFI firmware (OVMF) instead of BIOS.
    #[arg(long, requires = "iso")]
    uefi: bool,
    /// Accelerator; the default is KVM where /dev/kvm is hardware KVM, TCG otherwise.
    #[arg(long, value_enum)]
    accel: Option<Accel>,
    /// The kernel command line.
    #[arg(long, default_value = "")]
    cmdline: String,
    /// Boot this manifest instead of system.toml (e.g. tests/manifests/memory-bench.toml).
    #[arg(long)]
    manifest: Option<std::path::PathBuf>,
    /// Stop QEMU as soon as the console prints a line containing LINE, and succeed (for
    /// scripts: `cargo xtask run --until "echo-client: done"`); fail if it has not by
    /// --timeout.
    #[arg(long, value_name = "LINE")]
    until: Option<String>,
    /// With --until (or alone: stop after this long and succeed): give up after S seconds
    /// of wall time. Default with --until: 300.
    #[arg(long, value_name = "S")]
    timeout: Option<u64>,
    #[command(flatten)]
    allow: crate::manifest::Allow,
}

pub fn run(args: Args) -> Result<()> {
    args.allow.apply();
    setup::ensure_kernel_target()?;
    setup::ensure(setup::QEMU)?;
    if args.iso {
        setup::ensure(setup::GRUB_ISO)?;
    }
    if args.uefi {
        setup::ensure(setup::UEFI)?;
    }
    let kernel = build::kernel(args.release, Flavour::Normal)?;
    let initrd = match &args.manifest {
        Some(manifest) => build::initrd_for(manifest, "run")?,
        None => build::initrd()?,
    };
    let accel = args.accel.unwrap_or_else(Accel::detect);
    let image;
    let boot = if args.iso {
        image = build::iso(&kernel, &initrd, &args.cmdline, "dai-os")?;
        Boot::Iso { image: &image, uefi: args.uefi }
    } else {
        Boot::Direct { kernel: &kernel, initrd: &initrd, cmdline: &args.cmdline }
    };
    let mut qemu: Command = qemu::command(&boot, accel);
    if args.until.is_some() || args.timeout.is_some() {
        let timeout = std::time::Duration::from_secs(args.timeout.unwrap_or(300));
        return run_scripted(qemu, args.until.as_deref(), timeout);
    }
    qemu.args(["-serial", "mon:stdio"]);
    if args.gdb {
        qemu.args(["-s", "-S"]);
        eprintln!("xtask: QEMU waits for a debugger: gdb {} -ex 'target remote :1234'", kernel.display());
    }
    eprintln!("xtask: booting with {accel:?}; Ctrl-A X leaves QEMU");
    let status = qemu.status().context("starting qemu-system-x86_64")?;
    // isa-debug-exit statuses are the kernel's verdicts, not QEMU failures.
    match status.code() {
        Some(0) | Some(abi::qemu_exit::SUCCESS_STATUS) => Ok(()),
        Some(code) => bail!("QEMU exited with status {code}"),
        None => bail!("QEMU was killed by a signal"),
    }
}

/// `--until` / `--timeout`: the console streamed to stdout, QEMU stopped when `until` has
/// been printed (success) or when `timeout` has passed (a failure if `until` was asked for).
fn run_scripted(qemu: Command, until: Option<&str>, timeout: std::time::Duration) -> Result<()> {
    let (seen, outcome) = qemu::run_until_echoing(qemu, |text| until.is_some_and(|line| text.contains(line)), timeout)?;
    match (until, outcome.status) {
        (Some(_), _) if seen => {
            eprintln!("\nxtask: the console printed it after {:.1} s; QEMU stopped", outcome.elapsed.as_secs_f64());
            Ok(())
        }
        (Some(line), None) => bail!("the console did not print \"{line}\" within {} s", timeout.as_secs()),
        (Some(line), Some(code)) => bail!("QEMU ended (status {code}) before the console printed \"{line}\""),
        (None, None) => {
            eprintln!("\nxtask: stopped QEMU after {} s", timeout.as_secs());
            Ok(())
        }
        (None, Some(0 | abi::qemu_exit::SUCCESS_STATUS)) => Ok(()),
        (None, Some(code)) => bail!("QEMU exited with status {code}"),
    }
}
