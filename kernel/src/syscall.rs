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

/// Note on aliasing: `frame` is the current thread's trap frame at the top of its kernel
/// stack. IPC handlers may block; while this thread waits, the thread that completes its
/// operation writes the outcome into this same frame (through `ipc::frame_of`). The
/// handler then returns without touching the frame again.
pub fn dispatch(frame: &mut TrapFrame) {
    let args = Args { a0: frame.rdi, a1: frame.rsi, a2: frame.rdx, a3: frame.r10, a4: frame.r8, a5: frame.r9 };
    let result = match Sysno::try_from(frame.rax) {
        Ok(number) => match number {
            Sysno::Send
            | Sysno::NbSend
            | Sysno::Call
            | Sysno::Recv
            | Sysno::NbRecv
            | Sysno::Reply
            | Sysno::ReplyRecv
            | Sysno::Wait
            | Sysno::Poll => ipc(number, args, frame).map(|()| None),
            _ => handle(number, args).map(Some),
        },
        Err(_) => Err(ErrorCode::InvalidSyscall),
    };
    match result {
        Ok(Some(reply)) => {
            frame.rax = 0;
            [frame.rdx, frame.r10, frame.r8, frame.r9] = reply.words;
        }
        Ok(None) => {} // the IPC path wrote the outcome into the frame
        Err(code) => frame.rax = u64::from(code as u32),
    }
    frame.rflags = sanitize_user_flags(frame.rflags);
    if sched::take_current_doom() {
        sched::exit_current(Exit::Killed);
    }
}

fn endpoint_cap(slot: u64, rights: Rights) -> Result<crate::ipc::EndpointCap, ErrorCode> {
    let space = my_space()?;
    let found = caps::with(|store| store.lookup(caps::slot(space, slot_arg(slot)?)))?;
    let caps::Object::Endpoint(index) = found.handle else { return Err(ErrorCode::WrongObjectType) };
    if !rights.is_subset_of(found.rights) {
        return Err(ErrorCode::InsufficientRights);
    }
    Ok(crate::ipc::EndpointCap {
        slot: caps::slot(space, slot_arg(slot)?),
        index,
        badge: found.badge.value(),
        grant: found.rights.contains(Rights::GRANT),
        grant_reply: found.rights.contains(Rights::GRANT_REPLY),
    })
}

fn notification_cap(slot: u64, rights: Rights) -> Result<(u16, u64), ErrorCode> {
    let space = my_space()?;
    match caps::lookup(space, slot_arg(slot)?, ObjectType::Notification, rights)? {
        (caps::Object::Notification(index), badge) => Ok((index, badge.value())),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

/// The operations that may block: their outcome lands in `frame`.
fn ipc(number: Sysno, args: Args, frame: &mut TrapFrame) -> Result<(), ErrorCode> {
    use crate::ipc;
    match number {
        Sysno::Send | Sysno::NbSend => ipc::send(frame, endpoint_cap(args.a0, Rights::WRITE)?, false, number == Sysno::Send),
        Sysno::Call => ipc::send(frame, endpoint_cap(args.a0, Rights::WRITE)?, true, true),
        Sysno::Recv => ipc::receive(frame, endpoint_cap(args.a0, Rights::READ)?.index, true, args.a1),
        Sysno::NbRecv => ipc::receive(frame, endpoint_cap(args.a0, Rights::READ)?.index, false, 0),
        Sysno::Reply => {
            ipc::reply(frame)?;
            frame.rax = 0;
            Ok(())
        }
        Sysno::ReplyRecv => {
            // Decode the receive first, so a bad endpoint cap leaves the reply pending.
            let index = endpoint_cap(args.a0, Rights::READ)?.index;
            // As in seL4, a reply with nobody to release (no call pending, or the caller
            // died) does not stop the receive: the server goes back to serving. A reply the
            // caller could not take is reported instead, and the call stays pending, so
            // the server learns of it and no caller waits forever unnoticed.
            match ipc::reply(frame) {
                Ok(()) | Err(ErrorCode::IllegalOperation | ErrorCode::PeerGone) => {}
                Err(refused) => return Err(refused),
            }
            ipc::receive(frame, index, true, 0)
        }
        Sysno::Wait => {
            let (index, _) = notification_cap(args.a0, Rights::READ)?;
            ipc::wait(frame, index, true, args.a1)
        }
        Sysno::Poll => {
            let (index, _) = notification_cap(args.a0, Rights::READ)?;
            ipc::wait(frame, index, false, 0)
        }
        _ => Err(ErrorCode::InvalidSyscall),
    }
}

fn handle(number: Sysno, args: Args) -> Result<Reply, ErrorCode> {
    match number {
        Sysno::ConsoleWrite => console_write(args),
        Sysno::ConsoleRead => console_read(args),
        Sysno::ConsoleSetNotification => {
            let space = my_space()?;
            caps::lookup(space, slot_arg(args.a0)?, ObjectType::Console, Rights::READ)?;
            let (notification, badge) = notification_cap(args.a1, Rights::WRITE)?;
            crate::console::enable_input_interrupt();
            crate::irq::set_notification(crate::console::INPUT_IRQ, notification, badge)?;
            Ok(Reply::default())
        }
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
        Sysno::Signal => {
            let (index, badge) = notification_cap(args.a0, Rights::WRITE)?;
            crate::ipc::signal(index, badge);
            Ok(Reply::default())
        }
        Sysno::ObjectCreate => {
            let kind = ObjectType::try_from(args.a0).map_err(|_| ErrorCode::InvalidArgument)?;
            caps::create_object(my_space()?, destination_arg(args.a1)?, kind, args.a2, args.a3)?;
            Ok(Reply::default())
        }
        Sysno::Map => map(args),
        Sysno::FrameInfo => {
            let frame = frame_cap(args.a0, Rights::READ)?;
            let (phys, bytes) = crate::frame::info(frame).ok_or(ErrorCode::PeerGone)?;
            Ok(Reply { words: [bytes, phys, 0, 0] })
        }
        Sysno::Unmap => unmap(args),
        Sysno::ThreadStart => thread_start(args),
        Sysno::ThreadConfigure => thread_configure(args),
        Sysno::CapGive => cap_give(args),
        Sysno::IoPortRead => {
            let (first, last) = io_ports_cap(args.a0, Rights::READ)?;
            let value = crate::irq::port_read(first, last, args.a1, args.a2)?;
            Ok(Reply { words: [value, 0, 0, 0] })
        }
        Sysno::IoPortWrite => {
            let (first, last) = io_ports_cap(args.a0, Rights::WRITE)?;
            crate::irq::port_write(first, last, args.a1, args.a2, args.a3)?;
            Ok(Reply::default())
        }
        Sysno::IrqSetNotification => {
            let line = irq_cap(args.a0)?;
            let (notification, badge) = notification_cap(args.a1, Rights::WRITE)?;
            crate::irq::set_notification(line, notification, badge)?;
            Ok(Reply::default())
        }
        Sysno::IrqAck => {
            crate::irq::ack(irq_cap(args.a0)?)?;
            Ok(Reply::default())
        }
        Sysno::AuditCap => {
            audit_cap(args.a0)?;
            let space = u16::try_from(args.a1).map_err(|_| ErrorCode::InvalidSlot)?;
            if usize::from(space) >= caps::SPACES {
                return Err(ErrorCode::InvalidSlot);
            }
            let slot = kcore::cap::SlotRef::new(kcore::cap::SpaceId::new(space), slot_arg(args.a2)?.index());
            let found = caps::with(|store| store.lookup(slot))?;
            Ok(Reply {
                words: [
                    u64::from(found.kind.as_u32()),
                    u64::from(found.rights.bits()),
                    found.badge.value(),
                    u64::from(found.object.index()),
                ],
            })
        }
        Sysno::AuditThread => {
            audit_cap(args.a0)?;
            let (space, state, cpu_us) = sched::audit_thread(args.a1).ok_or(ErrorCode::InvalidArgument)?;
            let quota_used = space
                .checked_sub(1)
                .and_then(|index| u16::try_from(index).ok())
                .and_then(|index| caps::with(|store| store.quota(kcore::cap::SpaceId::new(index))))
                .map_or(0, |quota| quota.used());
            Ok(Reply { words: [space, state, cpu_us, quota_used] })
        }
        Sysno::ThreadKill => {
            let id = thread_cap(args.a0)?;
            crate::sched::kill(id)?;
            Ok(Reply::default())
        }
        // Routed to `ipc` by `dispatch`.
        Sysno::Send
        | Sysno::NbSend
        | Sysno::Call
        | Sysno::Recv
        | Sysno::NbRecv
        | Sysno::Reply
        | Sysno::ReplyRecv
        | Sysno::Wait
        | Sysno::Poll => Err(ErrorCode::InvalidSyscall),
    }
}

fn slot_arg(value: u64) -> Result<CapSlot, ErrorCode> {
    CapSlot::try_from(value).map_err(|_| ErrorCode::InvalidSlot)
}

/// A slot a cap is to be put in: slot 0 is never filled (it means "no slot" in the ABI:
/// `NO_SLOT`-free encodings, the implicit reply), so it is `InvalidSlot` as a destination.
fn destination_arg(value: u64) -> Result<CapSlot, ErrorCode> {
    slot_arg(value).and_then(|slot| if slot.index() == 0 { Err(ErrorCode::InvalidSlot) } else { Ok(slot) })
}

/// The caller's capability space; kernel threads have none.
fn my_space() -> Result<kcore::cap::SpaceId, ErrorCode> {
    sched::current_cspace().ok_or(ErrorCode::IllegalOperation)
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

/// `ConsoleRead`: whatever bytes are waiting, never blocking. Finding none re-arms the
/// input interrupt, then looks once more: a byte that came in between is read now rather
/// than waiting for an interrupt that was masked when it arrived.
fn console_read(args: Args) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    caps::lookup(space, slot_arg(args.a0)?, ObjectType::Console, Rights::READ)?;
    let len = usize::try_from(args.a2).map_err(|_| ErrorCode::InvalidArgument)?;
    if len > abi::syscall::CONSOLE_READ_MAX {
        return Err(ErrorCode::MessageTooLong);
    }
    let mut buffer = [0u8; abi::syscall::CONSOLE_READ_MAX];
    let bytes = buffer.get_mut(..len).ok_or(ErrorCode::InvalidArgument)?;
    let pml4 = sched::with_current(|thread| thread.pml4);
    // The whole buffer is checked (written) before any byte is taken from the line, so a
    // bad buffer loses no input.
    crate::vspace::copy_to_user(pml4, args.a1, bytes)?;
    let mut count = crate::console::read(bytes);
    if count == 0 {
        // Not bound (nobody asked for the notification): nothing to re-arm.
        let _ = crate::irq::ack(crate::console::INPUT_IRQ);
        count = crate::console::read(bytes);
    }
    let read = bytes.get(..count).ok_or(ErrorCode::InvalidArgument)?;
    crate::vspace::copy_to_user(pml4, args.a1, read)?;
    Ok(Reply { words: [count as u64, 0, 0, 0] })
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
    let slot = slot_arg(args.a0)?;
    let info = caps::with(|store| store.identify(caps::slot(space, slot)))?;
    // The audit's number for a thread or cspace (ABI: `CapIdentify`), needing no right.
    let audit_index = match info.kind {
        ObjectType::Thread | ObjectType::CSpace => match caps::lookup(space, slot, info.kind, Rights::NONE)? {
            (caps::Object::Thread(index) | caps::Object::CSpace(index), _) => u64::from(index),
            _ => 0,
        },
        _ => 0,
    };
    Ok(Reply { words: [u64::from(info.kind.as_u32()), u64::from(info.rights.bits()), info.badge.value(), audit_index] })
}

fn two_slots(args: Args) -> Result<(SlotRef, SlotRef), ErrorCode> {
    let space = my_space()?;
    Ok((caps::slot(space, slot_arg(args.a0)?), caps::slot(space, destination_arg(args.a1)?)))
}

/// A copy is a mint that keeps every right and the badge.
fn cap_copy(args: Args) -> Result<Reply, ErrorCode> {
    let (src, dst) = two_slots(args)?;
    caps::derive(src, dst, Rights::ALL, Badge::NONE)?;
    Ok(Reply::default())
}

fn cap_mint(args: Args) -> Result<Reply, ErrorCode> {
    let (src, dst) = two_slots(args)?;
    let rights = u32::try_from(args.a2).ok().and_then(Rights::from_bits).ok_or(ErrorCode::InvalidArgument)?;
    caps::derive(src, dst, rights, Badge::new(args.a3))?;
    Ok(Reply::default())
}

fn cap_move(args: Args) -> Result<Reply, ErrorCode> {
    let (src, dst) = two_slots(args)?;
    caps::relocate(src, dst)?;
    // A send queued through the moved cap named its old slot.
    crate::ipc::cancel_revoked_sends();
    Ok(Reply::default())
}

fn cap_delete(args: Args) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    let slot = caps::slot(space, slot_arg(args.a0)?);
    let mut reaped = caps::Reaped::new();
    caps::with(|store| store.decode_delete(slot).map(|op| op.perform(&mut reaped)))?;
    reaped.finish();
    crate::ipc::cancel_revoked_sends();
    Ok(Reply::default())
}

fn cap_revoke(args: Args) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    let slot = caps::slot(space, slot_arg(args.a0)?);
    caps::with(|store| store.decode_revoke(slot).map(|op| op.perform()))?;
    crate::ipc::cancel_revoked_sends();
    Ok(Reply::default())
}

fn address_space_cap(slot: u64) -> Result<(u16, u64), ErrorCode> {
    match caps::lookup(my_space()?, slot_arg(slot)?, ObjectType::AddressSpace, Rights::WRITE)? {
        (caps::Object::AddressSpace(index), _) => Ok((index, crate::vspace::root(index).ok_or(ErrorCode::PeerGone)?)),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn thread_cap(slot: u64) -> Result<crate::thread::ThreadId, ErrorCode> {
    match caps::lookup(my_space()?, slot_arg(slot)?, ObjectType::Thread, Rights::WRITE)? {
        (caps::Object::Thread(index), _) => Ok(crate::thread::ThreadId(index)),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn cspace_cap(slot: u64) -> Result<kcore::cap::SpaceId, ErrorCode> {
    match caps::lookup(my_space()?, slot_arg(slot)?, ObjectType::CSpace, Rights::WRITE)? {
        (caps::Object::CSpace(index), _) => Ok(kcore::cap::SpaceId::new(index)),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

/// `Map`: the frame cap's rights bound the mapping's; never writable and executable.
fn map(args: Args) -> Result<Reply, ErrorCode> {
    use abi::syscall::map_perms;
    let (space_index, pml4) = address_space_cap(args.a0)?;
    if args.a3 & !map_perms::ALL != 0 || args.a3 == map_perms::ALL {
        return Err(ErrorCode::InvalidArgument);
    }
    let perms = crate::vspace::Perms { write: args.a3 & map_perms::WRITE != 0, execute: args.a3 & map_perms::EXECUTE != 0 };
    let mut needed = Rights::READ;
    if perms.write {
        needed = needed.union(Rights::WRITE);
    }
    if perms.execute {
        needed = needed.union(Rights::EXECUTE);
    }
    let frame = frame_cap(args.a1, needed)?;
    crate::frame::map(frame, space_index, pml4, args.a2, perms)?;
    Ok(Reply::default())
}

fn frame_cap(slot: u64, rights: Rights) -> Result<u32, ErrorCode> {
    match caps::lookup(my_space()?, slot_arg(slot)?, ObjectType::Frame, rights)? {
        (caps::Object::Frame(index), _) => Ok(index),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn unmap(args: Args) -> Result<Reply, ErrorCode> {
    let (space_index, pml4) = address_space_cap(args.a0)?;
    crate::frame::unmap(space_index, pml4, args.a1)?;
    Ok(Reply::default())
}

fn thread_start(args: Args) -> Result<Reply, ErrorCode> {
    let id = thread_cap(args.a0)?;
    let (_, pml4) = address_space_cap(args.a1)?;
    let cspace = cspace_cap(args.a2)?;
    if args.a3 >= crate::vspace::USER_END || args.a4 >= crate::vspace::USER_END || args.a5 >= crate::vspace::USER_END {
        return Err(ErrorCode::InvalidArgument);
    }
    crate::sched::start_thread(id, pml4, cspace, args.a3, args.a4, args.a5)?;
    Ok(Reply::default())
}

fn thread_configure(args: Args) -> Result<Reply, ErrorCode> {
    let id = thread_cap(args.a0)?;
    let fault = if args.a4 == abi::syscall::NO_SLOT {
        None
    } else {
        let cap = endpoint_cap(args.a4, Rights::WRITE)?;
        Some((cap.index, cap.badge))
    };
    crate::sched::configure(id, args.a1, args.a2, args.a3, fault)?;
    Ok(Reply::default())
}

fn cap_give(args: Args) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    let target = cspace_cap(args.a1)?;
    let rights = u32::try_from(args.a3).ok().and_then(Rights::from_bits).ok_or(ErrorCode::InvalidArgument)?;
    let from = caps::slot(space, slot_arg(args.a0)?);
    let to = caps::slot(target, destination_arg(args.a2)?);
    caps::derive(from, to, rights, Badge::new(args.a4))?;
    Ok(Reply::default())
}

fn io_ports_cap(slot: u64, rights: Rights) -> Result<(u16, u16), ErrorCode> {
    match caps::lookup(my_space()?, slot_arg(slot)?, ObjectType::IoPortRange, rights)? {
        (caps::Object::IoPorts(first, last), _) => Ok((first, last)),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn irq_cap(slot: u64) -> Result<u8, ErrorCode> {
    match caps::lookup(my_space()?, slot_arg(slot)?, ObjectType::IrqHandler, Rights::WRITE)? {
        (caps::Object::Irq(line), _) => Ok(line),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn audit_cap(slot: u64) -> Result<(), ErrorCode> {
    caps::lookup(my_space()?, slot_arg(slot)?, ObjectType::Audit, Rights::READ).map(|_| ())
}
