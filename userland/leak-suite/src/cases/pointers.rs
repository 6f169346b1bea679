//! Pointers handed to the kernel: `ConsoleWrite`'s buffer and the IPC buffers of senders and
//! receivers. Kernel, unmapped, non-canonical, wrapping, straddling, misaligned, shared and
//! huge: each is an exact error code or an exactly described outcome, never a kernel fault,
//! and never a read of another process's memory.

use libcap::process::{self, Access};
use libcap::{ErrorCode, MessageInfo, ObjectType, Sysno};

use crate::puppet::{CODE, DATA, IPC_BUFFER, Options, Puppet, STACK_PAGE, STACK_TOP, STEP_TICKS, expect_ret};
use crate::world::{Case, Fail, G, Outcome, R, W, World, create, expect_ok};
use crate::ensure;

pub const CASES: &[Case] = &[
    Case { id: "PTR-CONSOLE-001", what: "ConsoleWrite from a kernel address: InvalidArgument", run: console_kernel },
    Case { id: "PTR-CONSOLE-002", what: "ConsoleWrite from an unmapped address: InvalidArgument", run: console_unmapped },
    Case { id: "PTR-CONSOLE-003", what: "ConsoleWrite from a non-canonical address: InvalidArgument", run: console_noncanonical },
    Case { id: "PTR-CONSOLE-004", what: "ConsoleWrite of a range that wraps around the address space: InvalidArgument", run: console_wrapping },
    Case { id: "PTR-CONSOLE-005", what: "ConsoleWrite of a range that runs from a mapped page into an unmapped one: InvalidArgument", run: console_straddling },
    Case { id: "PTR-CONSOLE-006", what: "ConsoleWrite longer than 4096 bytes (4097, 2^64-1): MessageTooLong", run: console_huge },
    Case { id: "PTR-CONSOLE-007", what: "ConsoleWrite from an address mapped only in another process: InvalidArgument", run: console_other_process },
    Case { id: "PTR-CONSOLE-008", what: "a misaligned pointer into a mapped page works; length 0 reads nothing, whatever the pointer", run: console_misaligned },
    Case { id: "PTR-IPC-001", what: "a sender whose IPC buffer is unmapped: caps or a 20-word message are refused with InvalidArgument, nothing arrives, the receiver keeps waiting", run: ipc_buffer_unmapped },
    Case { id: "PTR-IPC-002", what: "a receiver whose IPC buffer is read-only: a 20-word message is refused with InvalidArgument (never cut short), the page untouched, the receiver keeps waiting", run: ipc_buffer_read_only },
    Case { id: "PTR-IPC-003", what: "a misaligned IPC buffer straddling into an unmapped page: long words still travel, caps InvalidArgument", run: ipc_buffer_straddling },
    Case { id: "PTR-IPC-004", what: "two processes sharing one page as their IPC buffers (overlapping): a 20-word message arrives intact", run: ipc_buffer_shared },
];

fn info(label: u32, length: usize, caps: usize) -> u64 {
    MessageInfo::new(label, length, caps).map_or(0, MessageInfo::encode)
}

/// A puppet with a console cap in slot 3.
fn writer(world: &mut World) -> Result<Puppet, Fail> {
    let p = Puppet::new(world)?;
    expect_ok("console", p.give(libcap::slots::CONSOLE, 3, W, 0))?;
    Ok(p)
}

fn console_refused(world: &mut World, what: &str, address: u64, length: u64, want: ErrorCode) -> Outcome {
    let p = writer(world)?;
    p.sys_err(what, Sysno::ConsoleWrite, &[3, address, length], want)?;
    p.teardown(world)
}

fn console_kernel(world: &mut World) -> Outcome {
    console_refused(world, "kernel text", 0xffff_ffff_8021_0000, 8, ErrorCode::InvalidArgument)?;
    console_refused(world, "the direct map", 0xffff_8000_0010_0000, 8, ErrorCode::InvalidArgument)
}

fn console_unmapped(world: &mut World) -> Outcome {
    console_refused(world, "unmapped", DATA, 8, ErrorCode::InvalidArgument)?;
    console_refused(world, "the null page", 0, 1, ErrorCode::InvalidArgument)
}

fn console_noncanonical(world: &mut World) -> Outcome {
    console_refused(world, "non-canonical", 0x0000_8000_0000_0000, 8, ErrorCode::InvalidArgument)?;
    console_refused(world, "non-canonical, high", 0x8000_0000_0000_0000, 8, ErrorCode::InvalidArgument)
}

fn console_wrapping(world: &mut World) -> Outcome {
    console_refused(world, "wraps", u64::MAX - 15, 64, ErrorCode::InvalidArgument)
}

fn console_straddling(world: &mut World) -> Outcome {
    console_refused(world, "stack into the unmapped page above", STACK_TOP - 8, 16, ErrorCode::InvalidArgument)?;
    console_refused(world, "code into the unmapped page after", CODE + 0xff8, 16, ErrorCode::InvalidArgument)
}

fn console_huge(world: &mut World) -> Outcome {
    console_refused(world, "4097 bytes", STACK_PAGE, 4097, ErrorCode::MessageTooLong)?;
    console_refused(world, "2^64-1 bytes", STACK_PAGE, u64::MAX, ErrorCode::MessageTooLong)
}

fn console_other_process(world: &mut World) -> Outcome {
    let page = create(world, ObjectType::Frame)?;
    let victim = Puppet::new(world)?;
    expect_ok("the victim's page", process::map(victim.aspace, page, DATA, Access::ReadWrite))?;
    expect_ret("its secret", victim.store(DATA, 0x0a_7465_7263_6573)?)?;
    let p = writer(world)?;
    p.sys_err("the victim's address", Sysno::ConsoleWrite, &[3, DATA, 7], ErrorCode::InvalidArgument)?;
    victim.teardown(world)?;
    p.teardown(world)
}

fn console_misaligned(world: &mut World) -> Outcome {
    let p = writer(world)?;
    // One byte, a newline, at an odd address of the stack page.
    expect_ret("store a newline", p.store(STACK_PAGE + 0x100, 0x0a00)?)?;
    p.sys_ok("write 1 byte from an odd address", Sysno::ConsoleWrite, &[3, STACK_PAGE + 0x101, 1])?;
    p.sys_ok("length 0 from a kernel address", Sysno::ConsoleWrite, &[3, 0xffff_ffff_8021_0000, 0])?;
    p.teardown(world)
}

/// A receiver (slot 5, read) and a sender built with `sender` options (slot 5, write+grant).
fn pair(world: &mut World, sender: Options, receiver: Options) -> Result<(Puppet, Puppet), Fail> {
    let e = create(world, ObjectType::Endpoint)?;
    let server = Puppet::with(world, receiver)?;
    expect_ok("receiver", server.give(e, 5, R, 0))?;
    let client = Puppet::with(world, sender)?;
    expect_ok("sender", client.give(e, 5, W.union(G), 0))?;
    Ok((server, client))
}

fn send_long(server: &Puppet, client: &Puppet) -> Result<crate::puppet::Ret, Fail> {
    server.begin(Sysno::Recv.as_u64() as u32, [5, 0, 0, 0, 0, 0, 0, 0])?;
    client.sys_ok("send 20 words", Sysno::Send, &[5, info(1, 20, 0), 0, 1, 2, 3, 4, 5])?;
    expect_ret("receive", server.finish(STEP_TICKS)?)
}

/// A 20-word message the kernel must refuse with `want`: the sender is told, the waiting
/// receiver gets nothing and keeps waiting, and a short message still reaches it after.
fn send_long_refused(server: &Puppet, client: &Puppet, want: ErrorCode) -> crate::world::Outcome {
    server.begin(Sysno::Recv.as_u64() as u32, [5, 0, 0, 0, 0, 0, 0, 0])?;
    client.sys_err("send 20 words", Sysno::Send, &[5, info(1, 20, 0), 0, 1, 2, 3, 4, 5], want)?;
    let early = server.finish(20)?;
    ensure!(early == crate::puppet::Step::Blocked, "the receiver got {early:x?} from a refused message");
    client.sys_ok("then a short one", Sysno::Send, &[5, info(2, 1, 0), 0x51])?;
    let got = expect_ret("receive", server.finish(STEP_TICKS)?)?;
    ensure!(got.rsi() == info(2, 1, 0) && got.word(0) == 0x51, "the receiver got info {:#x} word {:#x}", got.rsi(), got.word(0));
    Ok(())
}

fn ipc_buffer_unmapped(world: &mut World) -> Outcome {
    let sender = Options { ipc_buffer: DATA, map_ipc_buffer: false, ..Options::default() };
    let (server, client) = pair(world, sender, Options::default())?;
    client.sys_err("send a cap", Sysno::NbSend, &[5, info(0, 0, 1)], ErrorCode::InvalidArgument)?;
    send_long_refused(&server, &client, ErrorCode::InvalidArgument)?;
    server.teardown(world)?;
    client.teardown(world)
}

fn ipc_buffer_read_only(world: &mut World) -> Outcome {
    let receiver = Options { ipc_buffer: CODE, map_ipc_buffer: false, ..Options::default() };
    let (server, client) = pair(world, Options::default(), receiver)?;
    let before = expect_ret("the code page", server.load(CODE + 64)?)?.rdi();
    for index in 8..20u64 {
        expect_ret("buffer word", client.store(IPC_BUFFER + index * 8, 0xfeed)?)?;
    }
    send_long_refused(&server, &client, ErrorCode::InvalidArgument)?;
    let after = expect_ret("the code page", server.load(CODE + 64)?)?.rdi();
    ensure!(before == after, "the read-only page changed");
    server.teardown(world)?;
    client.teardown(world)
}

fn ipc_buffer_straddling(world: &mut World) -> Outcome {
    let sender = Options { ipc_buffer: IPC_BUFFER + 0x800, ..Options::default() };
    let (server, client) = pair(world, sender, Options::default())?;
    for index in 8..20u64 {
        expect_ret("buffer word", client.store(IPC_BUFFER + 0x800 + index * 8, 0x2000 + index)?)?;
    }
    let got = send_long(&server, &client)?;
    ensure!(got.rsi() == info(1, 20, 0), "info {:#x}, expected 20 words", got.rsi());
    let word = expect_ret("word 19", server.load(IPC_BUFFER + 19 * 8)?)?.rdi();
    ensure!(word == 0x2000 + 19, "word 19 arrived as {word:#x}");
    client.sys_err("caps from beyond the page", Sysno::NbSend, &[5, info(0, 0, 1)], ErrorCode::InvalidArgument)?;
    server.teardown(world)?;
    client.teardown(world)
}

fn ipc_buffer_shared(world: &mut World) -> Outcome {
    let page = create(world, ObjectType::Frame)?;
    let unmapped = Options { map_ipc_buffer: false, ..Options::default() };
    let (server, client) = pair(world, unmapped, unmapped)?;
    expect_ok("the receiver's buffer", process::map(server.aspace, page, IPC_BUFFER, Access::ReadWrite))?;
    expect_ok("the sender's buffer: the same page", process::map(client.aspace, page, IPC_BUFFER, Access::ReadWrite))?;
    for index in 8..20u64 {
        expect_ret("buffer word", client.store(IPC_BUFFER + index * 8, 0x3000 + index)?)?;
    }
    let got = send_long(&server, &client)?;
    ensure!(got.rsi() == info(1, 20, 0), "info {:#x}", got.rsi());
    for index in 8..20u64 {
        let word = expect_ret("read", server.load(IPC_BUFFER + index * 8)?)?.rdi();
        ensure!(word == 0x3000 + index, "word {index} arrived as {word:#x}");
    }
    server.teardown(world)?;
    client.teardown(world)
}
