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
fn run_scripted(mut qemu: Command, until: Option<&str>, timeout: std::time::Duration) -> Result<()> {
    use std::io::{Read, Write};
    use std::process::Stdio;
    use std::sync::{Arc, Mutex};
    qemu.args(["-serial", "stdio", "-monitor", "none"]).stdin(Stdio::null()).stdout(Stdio::piped());
    let started = std::time::Instant::now();
    let mut child = qemu.spawn().context("starting qemu-system-x86_64")?;
    let mut stdout = child.stdout.take().context("qemu stdout")?;
    let console = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&console);
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(read @ 1..) = stdout.read(&mut chunk) {
            let bytes = chunk.get(..read).unwrap_or(&[]);
            let _ = std::io::stdout().write_all(bytes);
            let _ = std::io::stdout().flush();
            if let Ok(mut text) = sink.lock() {
                text.extend_from_slice(bytes);
            }
        }
    });
    let seen = || until.is_some_and(|line| console.lock().is_ok_and(|text| String::from_utf8_lossy(&text).contains(line)));
    let outcome = loop {
        if seen() {
            break Ok(());
        }
        if let Some(status) = child.try_wait()? {
            // Let the reader drain what QEMU wrote before it ended.
            std::thread::sleep(std::time::Duration::from_millis(100));
            if seen() {
                break Ok(());
            }
            break match (until, status.code()) {
                (Some(line), _) => Err(anyhow::anyhow!("QEMU ended ({status}) before the console printed \"{line}\"")),
                (None, Some(0) | Some(abi::qemu_exit::SUCCESS_STATUS)) => Ok(()),
                (None, _) => Err(anyhow::anyhow!("QEMU exited with {status}")),
            };
        }
        if started.elapsed() > timeout {
            break match until {
                Some(line) => Err(anyhow::anyhow!("the console did not print \"{line}\" within {} s", timeout.as_secs())),
                None => Ok(()),
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    match &outcome {
        Ok(()) if until.is_some() => eprintln!("\nxtask: the console printed it after {:.1} s; QEMU stopped", started.elapsed().as_secs_f64()),
        Ok(()) => eprintln!("\nxtask: stopped QEMU after {} s", timeout.as_secs()),
        Err(_) => {}
    }
    outcome
}
