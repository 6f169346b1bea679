//! The syscall dispatcher: registers in, one handler per call, an `ErrorCode` out.
//!
//! `arch::x86_64::syscall` saves the user's registers as a [`TrapFrame`] and calls
//! [`dispatch`]. Each handler takes the decoded [`Args`] and returns `Result<Reply, ErrorCode>`;
//! the dispatcher writes the code to `rax` (0 for success) and the reply words to the
//! message registers. Every argument is checked before anything changes.

use abi::{Badge, CapSlot, ErrorCode, ObjectType, Rights, Sysno};
use kcore::cap::SlotRef;

use crate::arch::x86_64::idt::TrapFrame;
use crate::arch::x86_64::syscall::sanitize_user_flags;
use crate::caps;
use crate::sched;
use crate::thread::Exit;

/// The argument registers, in ABI order.
#[derive(Clone, Copy, Debug)]
pub struct Args {
    pub a0: u64,
    pub a1: u64,
    pub a2: u64,
    pub a3: u64,
    pub a4: u64,
    pub a5: u64,
}

/// Words returned in the first message registers (`rdx`, `r10`, `r8`, `r9`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reply {
    pub words: [u64; 4],
}

pub fn dispatch(frame: &mut TrapFrame) {
    let args = Args { a0: frame.rdi, a1: frame.rsi, a2: frame.rdx, a3: frame.r10, a4: frame.r8, a5: frame.r9 };
    let result = match Sysno::try_from(frame.rax) {
        Ok(number) => handle(number, args),
        Err(_) => Err(ErrorCode::InvalidSyscall),
    };
    match result {
        Ok(reply) => {
            frame.rax = 0;
            [frame.rdx, frame.r10, frame.r8, frame.r9] = reply.words;
        }
        Err(code) => frame.rax = u64::from(code as u32),
    }
    frame.rflags = sanitize_user_flags(frame.rflags);
}

fn handle(number: Sysno, args: Args) -> Result<Reply, ErrorCode> {
    match number {
        Sysno::ConsoleWrite => console_write(args),
        Sysno::ThreadExit => sched::exit_current(Exit::Code(args.a0)),
        Sysno::Yield => {
            sched::yield_now();
            Ok(Reply::default())
        }
        Sysno::CapIdentify => cap_identify(args),
        Sysno::CapCopy => cap_copy(args),
        Sysno::CapMint => cap_mint(args),
        Sysno::CapMove => cap_move(args),
        Sysno::CapDelete => cap_delete(args),
        Sysno::CapRevoke => cap_revoke(args),
        // IPC, notifications and object creation come with the IPC objects.
        Sysno::Send
        | Sysno::NbSend
        | Sysno::Call
        | Sysno::Recv
        | Sysno::NbRecv
        | Sysno::Reply
        | Sysno::ReplyRecv
        | Sysno::Signal
        | Sysno::Wait
        | Sysno::Poll
        | Sysno::ObjectCreate => Err(ErrorCode::InvalidSyscall),
    }
}

fn slot_arg(value: u64) -> Result<CapSlot, ErrorCode> {
    CapSlot::try_from(value).map_err(|_| ErrorCode::InvalidSlot)
}

/// The caller's capability space; kernel threads have none.
fn my_space() -> Result<kcore::cap::SpaceId, ErrorCode> {
    sched::with_current(|thread| thread.cspace).ok_or(ErrorCode::IllegalOperation)
}

fn console_write(args: Args) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    caps::lookup(space, slot_arg(args.a0)?, ObjectType::Console, Rights::WRITE)?;
    let len = usize::try_from(args.a2).map_err(|_| ErrorCode::InvalidArgument)?;
    if len > abi::syscall::CONSOLE_WRITE_MAX {
        return Err(ErrorCode::MessageTooLong);
    }
    let mut buffer = [0u8; abi::syscall::CONSOLE_WRITE_MAX];
    let pml4 = sched::with_current(|thread| thread.pml4);
    let bytes = buffer.get_mut(..len).ok_or(ErrorCode::InvalidArgument)?;
    crate::vspace::copy_from_user(pml4, args.a1, bytes)?;
    crate::console::print(format_args!("{}", Utf8Lossy(bytes)));
    Ok(Reply::default())
}

/// Prints bytes as UTF-8, with U+FFFD for invalid sequences.
struct Utf8Lossy<'a>(&'a [u8]);

impl core::fmt::Display for Utf8Lossy<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

fn cap_identify(args: Args) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    let info = caps::with(|store| store.identify(caps::slot(space, slot_arg(args.a0)?)))?;
    Ok(Reply { words: [u64::from(info.kind.as_u32()), u64::from(info.rights.bits()), info.badge.value(), 0] })
}

fn two_slots(args: Args) -> Result<(SlotRef, SlotRef), ErrorCode> {
    let space = my_space()?;
    Ok((caps::slot(space, slot_arg(args.a0)?), caps::slot(space, slot_arg(args.a1)?)))
}

fn cap_copy(args: Args) -> Result<Reply, ErrorCode> {
    let (src, dst) = two_slots(args)?;
    caps::with(|store| store.decode_copy(src, dst).map(|op| op.perform()))?;
    Ok(Reply::default())
}

fn cap_mint(args: Args) -> Result<Reply, ErrorCode> {
    let (src, dst) = two_slots(args)?;
    let rights = u32::try_from(args.a2).ok().and_then(Rights::from_bits).ok_or(ErrorCode::InvalidArgument)?;
    let badge = Badge::new(args.a3);
    caps::with(|store| store.decode_mint(src, dst, rights, badge).map(|op| op.perform()))?;
    Ok(Reply::default())
}

fn cap_move(args: Args) -> Result<Reply, ErrorCode> {
    let (src, dst) = two_slots(args)?;
    caps::with(|store| store.decode_move(src, dst).map(|op| op.perform()))?;
    Ok(Reply::default())
}

fn cap_delete(args: Args) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    let slot = caps::slot(space, slot_arg(args.a0)?);
    caps::with(|store| store.decode_delete(slot).map(|op| op.perform(&mut caps::reaper())))?;
    Ok(Reply::default())
}

fn cap_revoke(args: Args) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    let slot = caps::slot(space, slot_arg(args.a0)?);
    caps::with(|store| store.decode_revoke(slot).map(|op| op.perform()))?;
    Ok(Reply::default())
}
