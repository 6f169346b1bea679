//! shell: the console's interactive shell. Shows what the system runs and what each program
//! may do, holding exactly the caps its manifest entry gives it (system.toml):
//!
//! - the console with read and write: what is typed comes in through `ConsoleRead`, and
//!   the `keyboard` notification is signalled when it does;
//! - a status-only supervisor cap (`init-api`): init says which programs the manifest
//!   starts, with what budget, quota and caps, how often it restarted each, and the audit's
//!   numbers for each program's thread and space;
//! - the read-only audit cap: the kernel's own account of each program's caps, thread
//!   state, CPU time and kernel memory, so `caps` and `ps` show what is, not only what the
//!   manifest meant.
//!
//! What it cannot do is as deliberate: without a control supervisor cap `restart` and
//! `stop` are refused (by init, which checks the badge, not by the shell's good manners);
//! it holds no cap to any server but init, and no device.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

mod commands;

use core::fmt::{self, Write};

use libcap::sys;
use libcap::{CapSlot, ErrorCode, ObjectType, Rights, slots};
use line_editor::{Editor, Submitted};

libcap::entry!(main);

/// What the shell found in its slots at start (it looks rather than assumes, and says
/// what is missing).
pub struct Caps {
    pub keyboard: Option<CapSlot>,
    /// A call cap to the AI server (`ai_api::ai`): an endpoint the shell may only call,
    /// not the supervisor's.
    pub ai: Option<CapSlot>,
    pub supervisor: Option<Supervisor>,
    pub audit: Option<CapSlot>,
}

#[derive(Clone, Copy)]
pub struct Supervisor {
    pub slot: CapSlot,
    /// The badge is [`init_api::CONTROL_BADGE`]: restart and stop are allowed.
    pub control: bool,
}

/// The slots a manifest entry can fill (console at 1, caps from 2).
const SLOTS_SCANNED: u32 = 64;
/// Ticks to let the boot's other programs finish printing before the first prompt.
const SETTLE_TICKS: u64 = 30;
pub const PROMPT: &str = "dai> ";

fn main() -> Result<(), ErrorCode> {
    let caps = find_caps();
    let Some(keyboard) = caps.keyboard else {
        libcap::println!("shell: no notification to wait for the keyboard on; the manifest must give one");
        return Err(ErrorCode::EmptySlot);
    };
    if let Err(code) = sys::console_set_notification(slots::CONSOLE, keyboard) {
        libcap::println!("shell: the console gives no input ({}); does the manifest give the console read?", code.as_str());
        return Err(code);
    }
    // Quiet boot: let the others finish their lines first (a timeout, not a signal, ends
    // this wait unless someone types).
    let _ = sys::wait_timeout(keyboard, SETTLE_TICKS);
    libcap::println!();
    libcap::println!("Democratizing AI OS shell. Type `help` for the commands. Ctrl-A X leaves QEMU.");
    let mut out = Console::new();
    out.write_str(PROMPT).ok();
    out.flush();
    let mut editor = Editor::new();
    let mut input = [0u8; libcap::abi::syscall::CONSOLE_READ_MAX];
    loop {
        let count = match sys::console_read(slots::CONSOLE, &mut input) {
            Ok(count) => count,
            Err(code) => {
                libcap::println!("shell: reading the console: {}", code.as_str());
                return Err(code);
            }
        };
        if count == 0 {
            // Re-armed by the empty read: the next keystroke signals.
            sys::wait(keyboard)?;
            continue;
        }
        for &byte in input.get(..count).unwrap_or(&[]) {
            match editor.feed(byte, &mut out) {
                None => {}
                Some(Submitted::Cancelled) => out.write_str(PROMPT).unwrap_or(()),
                Some(Submitted::Line { text, truncated }) => {
                    out.flush();
                    if truncated {
                        libcap::println!("shell: line too long: kept its first {} characters", line_editor::LINE_MAX);
                    }
                    commands::run(&caps, text.as_str());
                    out.write_str(PROMPT).ok();
                }
            }
        }
        out.flush();
    }
}

fn find_caps() -> Caps {
    let mut caps = Caps { keyboard: None, ai: None, supervisor: None, audit: None };
    for index in 2..SLOTS_SCANNED {
        let slot = CapSlot::new(index);
        let Ok(info) = sys::cap_identify(slot) else { continue };
        match info.object_type {
            ObjectType::Notification if caps.keyboard.is_none() => caps.keyboard = Some(slot),
            ObjectType::Endpoint
                if info.badge.value() == init_api::STATUS_BADGE || info.badge.value() == init_api::CONTROL_BADGE =>
            {
                caps.supervisor = Some(Supervisor { slot, control: info.badge.value() == init_api::CONTROL_BADGE });
            }
            ObjectType::Endpoint if caps.ai.is_none() && info.rights == Rights::WRITE => caps.ai = Some(slot),
            ObjectType::Audit => caps.audit = Some(slot),
            _ => {}
        }
    }
    caps
}

/// Echo output, gathered and written in one `ConsoleWrite` per batch of input.
struct Console {
    bytes: [u8; 1024],
    len: usize,
}

impl Console {
    fn new() -> Console {
        Console { bytes: [0; 1024], len: 0 }
    }

    fn flush(&mut self) {
        if let Some(bytes) = self.bytes.get(..self.len) {
            let _ = sys::console_write(slots::CONSOLE, bytes);
        }
        self.len = 0;
    }
}

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for &byte in text.as_bytes() {
            if self.len == self.bytes.len() {
                self.flush();
            }
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
        Ok(())
    }
}
