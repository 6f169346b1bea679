//! fuzzer: the hostile process of the syscall fuzzer (issue 5).
//!
//! Issues `calls` syscalls chosen by a seeded PRNG (SplitMix64), with random and boundary
//! arguments, while the worker processes beside it keep doing real work. The kernel must
//! survive it; the harness (`kernel/src/harness/kfuzz.rs`, `ktest=fuzz`) then checks the kernel's
//! consistency. The same seed gives the same sequence of calls (the kernel's answers can
//! still differ with timing: which worker ran when), so a failure is replayed from its seed.
//!
//! # Start
//! `rdi` = seed, `rsi` = number of calls, bit 63 of `rsi` = trace (print every call before
//! making it; for shrinking a failure to one call). Exit code: the number of calls made.
//!
//! # Authority (given by the harness; `kfuzz.rs` lists the same slots)
//! | slot | cap |
//! |------|-----|
//! | 1 | console (write) |
//! | 2 | the echo server's endpoint (write, grant, grant-reply; badge [`ECHO_BADGE`]) |
//! | 3 | the pinger's endpoint (read; badge [`PING_BADGE`]): a sender is nearly always queued |
//! | 4 | a notification shared with the pinger (read, write) |
//! | 5 | a frame |
//! | 6 | an address space (not this process's own) |
//! | 7 | a capability space (not this process's own) |
//! | 8 | a thread, not started |
//! | 9 | a borrowed frame over the first pages of the initrd (read, grant), for `FrameSlice` to cut |
//! | 127 | console (write): [`PROGRESS`], never deleted or moved away, for the progress lines |
//!
//! and a kernel-memory quota, so that `ObjectCreate` works until `OutOfQuota`.
//!
//! # What is avoided, and why
//! Only what would end or stall the run without saying anything about the kernel:
//! - `ThreadExit` (ends the run).
//! - Blocking forever. A blocking `Send`/`Call` is made only on a cap that is provably the
//!   echo server's endpoint (identified by its badge, which nobody can forge: the fuzzer
//!   never mints or gives that badge); elsewhere it becomes `NbSend`. `ReplyRecv` and `Recv`
//!   without timeout only on the pinger's endpoint; other receives and waits get a timeout
//!   of 1-2 ticks (and most become `NbRecv`/`Poll`, because a tick is 10 ms).
//! - Losing the progress lines: `CapDelete` and `CapMove` of slot [`PROGRESS`] go to the
//!   slot below instead (every other slot, the console in slot 1 too, is fair game).
//! - Losing the only borrowed frame early: `CapDelete` and `CapMove` of slot [`BORROWED`]
//!   go to the slot above, so `FrameSlice` has a source all run long (the slices it makes
//!   are fair game, and slices of them are slices too).
//! - Flooding the console: `ConsoleWrite` through a console cap gets only pointers that
//!   cannot be read (kernel half, non-canonical, unmapped, straddling), except now and then
//!   a short fixed marker.
//!
//! Everything else goes: deleting or revoking its own caps (even the console: progress
//! lines then stop), object creation until the quota runs out, starting threads that fault
//! at once, cycles of capability spaces, maps and unmaps in the other address space.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use libcap::abi::syscall::CONSOLE_WRITE_MAX;
use libcap::{CapSlot, ObjectType, Rights, Sysno};

libcap::entry!(main);

/// Prints through [`PROGRESS`] (best effort: the fuzzer's output is informative only).
macro_rules! say {
    ($($arg:tt)*) => {
        let _ = libcap::console::write_fmt(PROGRESS, format_args!("{}\n", format_args!($($arg)*)));
    };
}

/// The badge of the fuzzer's cap to the echo server's endpoint.
pub const ECHO_BADGE: u64 = 0xec40;
/// The badge of the fuzzer's cap to the pinger's endpoint.
pub const PING_BADGE: u64 = 0x9146;

/// Bit of the second start argument that turns tracing on.
const TRACE: u64 = 1 << 63;

/// The console cap the fuzzer keeps for its own output.
pub const PROGRESS: CapSlot = CapSlot::new(127);
/// The borrowed frame the harness lends the fuzzer, kept as a source for `FrameSlice`.
pub const BORROWED: CapSlot = CapSlot::new(9);

/// The seeded sequence (`kcore::rand::SplitMix64`) and the choices made from it.
struct Rng(libcap::rand::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A value in `0..n` (0 when n is 0).
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }

    /// True with probability 1 / n.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        let index = usize::try_from(self.below(items.len() as u64)).ok()?;
        items.get(index).copied()
    }
}

/// Values at the edges of every argument's range.
const BOUNDARIES: &[u64] = &[
    0,
    1,
    2,
    3,
    127,
    128,
    0xff,
    0xffff,
    u32::MAX as u64,
    1 << 32,
    u64::MAX,
    u64::MAX - 1,
    i64::MAX as u64,
    1 << 63,
    1 << 47,
    (1 << 47) - 1,
    (1 << 47) - 8,
    (1 << 47) - 4096,
    0xffff_8000_0000_0000,
    0xffff_ffff_8000_0000,
    0xffff_ffff_ffff_f000,
    0x1000,
    0xfff,
    0x1001,
    0x40_0000,
    0x10_0000,
    4096,
    4097,
    1 << 20,
    1 << 30,
];

/// Addresses no `ConsoleWrite` can read: kernel half, non-canonical, low unmapped pages
/// (programs load at 1 GiB or above), the top of the lower half (straddles the hole).
const BAD_POINTERS: &[u64] = &[
    0,
    1,
    0x1000,
    0xfff,
    0x20_0000,
    (1 << 47) - 8,
    (1 << 47) - 1,
    1 << 47,
    0x8000_0000_0000_0000,
    0xffff_8000_0000_0000,
    0xffff_ffff_8000_0000,
    0xffff_ffff_ffff_fff8,
    u64::MAX,
];

static HEAP_LIKE: [u8; 64] = [0x5a; 64];
static MARKER: &[u8] = b"~fuzz~\n";

/// Where the fuzzer's own memory is (stack, static data, code), for pointer arguments.
struct Own {
    stack: u64,
    data: u64,
    code: u64,
}

fn argument(rng: &mut Rng, own: &Own) -> u64 {
    match rng.below(100) {
        0..30 => rng.below(140),                     // slots, small numbers
        30..50 => rng.pick(BOUNDARIES).unwrap_or(0), // edges
        50..60 => {
            let base = rng.pick(&[own.stack, own.data, own.code]).unwrap_or(0);
            base.wrapping_add(rng.below(8192)).wrapping_sub(4096) // own memory, misaligned too
        }
        60..65 => rng.pick(&[own.stack, own.data, own.code]).unwrap_or(0) & !0xfff, // page aligned
        65..72 => 1u64 << rng.below(64), // powers of two: lengths
        72..80 => rng.below(16),         // kinds, rights, widths
        80..85 => rng.below(1 << 47) & !0xfff, // a user page
        _ => rng.next(),                 // anything
    }
}

/// A slot number, mostly where caps are: the given ones are in 1..=8, created ones land
/// in the first few dozen slots (see [`shape`]), 127 is the progress console.
fn slot(rng: &mut Rng) -> u64 {
    match rng.below(10) {
        0..5 => rng.below(12),
        5..8 => rng.below(32),
        8 => rng.below(140),
        _ => rng
            .pick(&[0, 127, 128, u32::MAX as u64, u64::MAX])
            .unwrap_or(0),
    }
}

fn rights(rng: &mut Rng) -> u64 {
    if rng.one_in(8) {
        rng.pick(BOUNDARIES).unwrap_or(0)
    } else {
        rng.below(32)
    }
}

fn badge(rng: &mut Rng) -> u64 {
    match rng.below(4) {
        0 => 0,
        1 => 1 << rng.below(64),
        2 => rng.below(16),
        _ => rng.next(),
    }
}

/// A user address: page aligned or not, low, high, at the edges of the lower half.
fn address(rng: &mut Rng, own: &Own) -> u64 {
    match rng.below(6) {
        0 => rng.below(1 << 47) & !0xfff,
        1 => (rng.below(64) << 12) + 0x40_0000,
        2 => rng.pick(BOUNDARIES).unwrap_or(0),
        3 => rng.pick(&[own.stack, own.data, own.code]).unwrap_or(0) & !0xfff,
        4 => rng.below(1 << 47),
        _ => argument(rng, own),
    }
}

/// A message-info word: mostly valid (a label, up to a dozen words, a few caps).
fn info(rng: &mut Rng) -> u64 {
    if rng.one_in(5) {
        return rng.next();
    }
    (rng.below(4) << 32) | (rng.below(5) << 10) | rng.below(12)
}

/// Arguments in the shape `number` decodes them (kernel/abi/src/syscall.rs), each still
/// drawn from a range wider than the valid one.
fn shape(rng: &mut Rng, own: &Own, number: u64, regs: &mut [u64; 10]) {
    let Ok(sysno) = Sysno::try_from(number) else {
        return;
    };
    regs[0] = slot(rng);
    match sysno {
        Sysno::Send | Sysno::NbSend | Sysno::Call | Sysno::Reply | Sysno::ReplyRecv => {
            regs[1] = info(rng)
        }
        Sysno::CapCopy | Sysno::CapMove => regs[1] = slot(rng),
        Sysno::CapMint => {
            regs[1] = slot(rng);
            regs[2] = rights(rng);
            regs[3] = badge(rng);
        }
        Sysno::ObjectCreate => {
            regs[0] = if rng.one_in(8) {
                argument(rng, own)
            } else {
                1 + rng.below(13)
            };
            regs[1] = 9 + rng.below(24);
            regs[2] = match rng.below(4) {
                0 => 0,
                1 => 4096 << rng.below(8),
                2 => rng.below(1 << 22),
                _ => argument(rng, own),
            };
            // Frame flags: none, below 4 GiB, or anything.
            regs[3] = match rng.below(4) {
                0 | 1 => 0,
                2 => 1,
                _ => rng.next(),
            };
        }
        Sysno::FrameInfo => {}
        Sysno::ConsoleWrite => {
            regs[1] = argument(rng, own);
            regs[2] = rng
                .pick(&[0, 1, 8, 4095, 4096, 4097, 1 << 20, u64::MAX])
                .unwrap_or(0);
        }
        Sysno::Map => {
            regs[1] = slot(rng);
            regs[2] = address(rng, own);
            regs[3] = if rng.one_in(8) {
                argument(rng, own)
            } else {
                rng.below(4)
            };
        }
        Sysno::Unmap => regs[1] = address(rng, own),
        Sysno::ThreadStart => {
            regs[1] = slot(rng);
            regs[2] = slot(rng);
            for reg in regs.iter_mut().take(6).skip(3) {
                *reg = address(rng, own);
            }
        }
        Sysno::ThreadConfigure => {
            regs[1] = if rng.one_in(8) {
                argument(rng, own)
            } else {
                rng.below(33)
            };
            regs[2] = rng
                .pick(&[0, 1, 1000, 10_000, 10_000_000, 10_000_001, u64::MAX])
                .unwrap_or(0);
            regs[3] = rng
                .pick(&[0, 1, 1000, 10_000, 10_000_000, 10_000_001, u64::MAX])
                .unwrap_or(0);
            regs[4] = if rng.one_in(3) { u64::MAX } else { slot(rng) };
        }
        Sysno::CapGive => {
            regs[1] = slot(rng);
            regs[2] = slot(rng);
            regs[3] = rights(rng);
            regs[4] = badge(rng);
        }
        Sysno::IoPortRead | Sysno::IoPortWrite => {
            regs[1] = rng
                .pick(&[0, 0x60, 0x70, 0x71, 0x3f8, 0xf4, 0xffff, 0x10000, u64::MAX])
                .unwrap_or(0);
            regs[2] = rng.below(9);
        }
        Sysno::IrqSetNotification => regs[1] = slot(rng),
        // Bounds no call in the run can reach (or none): a bound that expired would make the
        // results depend on timing, and `qemu::fastpath_agrees` compares two runs' results.
        Sysno::SetCallTimeout => regs[0] = rng.pick(&[0, 1 << 40, u64::MAX]).unwrap_or(0),
        Sysno::FrameSlice => {
            if rng.one_in(2) {
                regs[0] = u64::from(BORROWED.index());
            }
            // Offsets and lengths at the edges of the source (slot 9's 64 KiB or less),
            // page-aligned or not, and past any end.
            regs[1] = match rng.below(4) {
                0 => 0,
                1 => rng.below(17) << 12,
                2 => rng.pick(&[1, 0xfff, 0x1001, !0xfff, u64::MAX]).unwrap_or(0),
                _ => argument(rng, own),
            };
            regs[2] = match rng.below(4) {
                0 => 1 + rng.below(0x1_0000),
                1 => rng.pick(&[0, 1, 0xfff, 0x1000, 0x1001, 0x1_0000, 0x1_0001]).unwrap_or(0),
                2 => u64::MAX - rng.below(0x2000),
                _ => argument(rng, own),
            };
            regs[3] = 9 + rng.below(24);
        }
        _ => {}
    }
}

/// The cap in `slot`, if `slot` is a slot number and holds one.
fn identify(slot: u64) -> Option<libcap::sys::CapInfo> {
    let index = u32::try_from(slot).ok()?;
    libcap::sys::cap_identify(CapSlot::new(index)).ok()
}

fn is_endpoint_with(slot: u64, rights: Rights, badge: u64) -> bool {
    identify(slot).is_some_and(|info| {
        info.object_type == ObjectType::Endpoint
            && rights.is_subset_of(info.rights)
            && info.badge.value() == badge
    })
}

/// Syscalls the fuzzer may make, by number: every syscall but `ThreadExit`.
fn choose_number(rng: &mut Rng) -> u64 {
    let count = Sysno::ALL.len() as u64;
    if rng.one_in(25) {
        // Not a syscall: the numbers just outside the table, and anything.
        let any = rng.next();
        return rng
            .pick(&[0, count + 1, count + 2, u64::MAX, 1 << 32, any])
            .unwrap_or(0);
    }
    loop {
        let number = 1 + rng.below(count);
        if number != Sysno::ThreadExit.as_u64() {
            return number;
        }
    }
}

/// Turns calls that could block forever (or flood the console) into ones that cannot; see
/// the crate docs. `regs` is `rdi rsi rdx r10 r8 r9 r12 r13 r14 r15`.
fn defuse(rng: &mut Rng, number: u64, regs: &mut [u64; 10]) -> u64 {
    let Ok(sysno) = Sysno::try_from(number) else {
        return number;
    };
    let slot = regs[0];
    match sysno {
        Sysno::Send | Sysno::Call => {
            if is_endpoint_with(slot, Rights::NONE, ECHO_BADGE) {
                number
            } else {
                Sysno::NbSend.as_u64()
            }
        }
        Sysno::Recv => {
            if is_endpoint_with(slot, Rights::READ, PING_BADGE) {
                return number;
            }
            if rng.one_in(50) {
                regs[1] = 1 + rng.below(2);
                number
            } else {
                Sysno::NbRecv.as_u64()
            }
        }
        Sysno::ReplyRecv => {
            if is_endpoint_with(slot, Rights::READ, PING_BADGE) {
                number
            } else {
                // The reply half still runs; no receive follows.
                Sysno::Reply.as_u64()
            }
        }
        Sysno::Wait => {
            if rng.one_in(50) {
                regs[1] = 1 + rng.below(2);
                number
            } else {
                Sysno::Poll.as_u64()
            }
        }
        Sysno::CapDelete | Sysno::CapMove => {
            if slot == u64::from(PROGRESS.index()) {
                regs[0] = slot - 1;
            } else if slot == u64::from(BORROWED.index()) {
                regs[0] = slot + 1;
            }
            number
        }
        Sysno::CapMint => {
            regs[3] = unforgeable(regs[3]);
            number
        }
        Sysno::CapGive => {
            regs[4] = unforgeable(regs[4]);
            number
        }
        Sysno::ConsoleWrite => {
            if identify(slot).is_some_and(|info| info.object_type == ObjectType::Console) {
                if rng.one_in(64) {
                    regs[1] = MARKER.as_ptr() as u64;
                    regs[2] = MARKER.len() as u64;
                } else {
                    regs[1] = rng.pick(BAD_POINTERS).unwrap_or(0);
                    if rng.one_in(2) {
                        regs[2] = rng.below(CONSOLE_WRITE_MAX as u64 + 2);
                    }
                    if regs[2] == 0 {
                        regs[2] = 1;
                    }
                }
            }
            number
        }
        _ => number,
    }
}

/// The fuzzer never makes a cap with the badges that identify the workers' endpoints.
fn unforgeable(badge: u64) -> u64 {
    if badge == ECHO_BADGE || badge == PING_BADGE {
        badge + 1
    } else {
        badge
    }
}

fn name(number: u64) -> &'static str {
    match Sysno::try_from(number) {
        Ok(sysno) => match sysno {
            Sysno::Send => "Send",
            Sysno::NbSend => "NbSend",
            Sysno::Call => "Call",
            Sysno::Recv => "Recv",
            Sysno::NbRecv => "NbRecv",
            Sysno::Reply => "Reply",
            Sysno::ReplyRecv => "ReplyRecv",
            Sysno::Signal => "Signal",
            Sysno::Wait => "Wait",
            Sysno::Poll => "Poll",
            Sysno::Yield => "Yield",
            Sysno::CapIdentify => "CapIdentify",
            Sysno::CapCopy => "CapCopy",
            Sysno::CapMint => "CapMint",
            Sysno::CapMove => "CapMove",
            Sysno::CapDelete => "CapDelete",
            Sysno::CapRevoke => "CapRevoke",
            Sysno::ObjectCreate => "ObjectCreate",
            Sysno::ConsoleWrite => "ConsoleWrite",
            Sysno::ThreadExit => "ThreadExit",
            Sysno::Map => "Map",
            Sysno::Unmap => "Unmap",
            Sysno::FrameInfo => "FrameInfo",
            Sysno::ThreadStart => "ThreadStart",
            Sysno::ThreadConfigure => "ThreadConfigure",
            Sysno::CapGive => "CapGive",
            Sysno::ThreadKill => "ThreadKill",
            Sysno::IoPortRead => "IoPortRead",
            Sysno::IoPortWrite => "IoPortWrite",
            Sysno::IrqSetNotification => "IrqSetNotification",
            Sysno::IrqAck => "IrqAck",
            Sysno::FrameSlice => "FrameSlice",
            Sysno::PciConfigRead => "PciConfigRead",
            Sysno::PciConfigWrite => "PciConfigWrite",
            Sysno::PciBar => "PciBar",
            Sysno::PciSlice => "PciSlice",
            Sysno::SetCallTimeout => "SetCallTimeout",
            #[allow(unreachable_patterns)]
            _ => "newer syscall",
        },
        Err(_) => "invalid",
    }
}

fn main() -> u64 {
    let (seed, control) = libcap::rt::start_args();
    let calls = control & !TRACE;
    let trace = control & TRACE != 0;
    let local = 0u64;
    let own = Own {
        stack: core::ptr::addr_of!(local) as u64,
        data: HEAP_LIKE.as_ptr() as u64,
        code: main as fn() -> u64 as usize as u64,
    };
    say!("fuzzer: seed={seed} calls={calls} trace={trace}");
    let mut rng = Rng(libcap::rand::SplitMix64::new(seed));
    let mut outcomes = [0u64; 16];
    let progress_every = (calls / 10).max(1);
    for index in 0..calls {
        let number = choose_number(&mut rng);
        let mut regs = [0u64; 10];
        for reg in regs.iter_mut() {
            *reg = argument(&mut rng, &own);
        }
        // Most calls get arguments shaped for their syscall, so they get past the first
        // checks; the rest stay wholly random.
        if !rng.one_in(4) {
            shape(&mut rng, &own, number, &mut regs);
        }
        let number = defuse(&mut rng, number, &mut regs);
        if trace {
            say!(
                "fuzz #{index} {} ({number}) {:#x} {:#x} {:#x} {:#x} {:#x} {:#x}",
                name(number),
                regs[0],
                regs[1],
                regs[2],
                regs[3],
                regs[4],
                regs[5]
            );
        }
        let (rax, _) = libcap::sys::syscall_raw(number, regs);
        if trace {
            say!("fuzz #{index} -> {rax}");
        }
        let bucket = usize::try_from(rax).unwrap_or(15).min(15);
        if let Some(count) = outcomes.get_mut(bucket) {
            *count += 1;
        }
        if (index + 1) % progress_every == 0 {
            say!("fuzzer: {} calls", index + 1);
        }
    }
    say!(
        "fuzzer: results by code (0 = success, then ErrorCode numbers; 15 = 15 or more): {outcomes:?}"
    );
    say!("FUZZ DONE calls={calls} seed={seed}");
    calls
}
