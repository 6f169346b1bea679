//! The syscall dispatcher: registers in, one handler per call, an `ErrorCode` out.
//!
//! `arch::syscall` saves the user's registers as a [`TrapFrame`] and calls
//! [`dispatch`]. Each handler decodes the argument registers into its syscall's struct in
//! [`abi::args`] (the one definition of the register layout, which libcap encodes) and
//! returns `Result<Reply, ErrorCode>`; the dispatcher writes the code to `rax` (0 for
//! success) and the reply words to the message registers. Every argument is checked before
//! anything changes, each at the point the syscall's documented order of checks puts it
//! ([`abi::args::Arg::get`] is that check for a typed argument).

use abi::args::{self, Arg, SyscallArgs};
use abi::{CapSlot, ErrorCode, ObjectType, Rights, Sysno};
use kcore::cap::SlotRef;

use crate::arch::idt::TrapFrame;
use crate::arch::syscall::sanitize_user_flags;
use crate::caps;
use crate::sched;
use crate::thread::Exit;

/// The argument registers `rdi rsi rdx r10 r8 r9`, in ABI order: what
/// [`SyscallArgs::decode`] takes.
type Registers = [u64; 6];

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
    // A simple Call or ReplyRecv does not come back from here.
    crate::ipc::fastpath::attempt(frame);
    let args: Registers = [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9];
    let raw_number = frame.rax;
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
        Err(code) => {
            frame.rax = u64::from(code as u32);
            if crate::denials::is_denial(raw_number, code) {
                crate::denials::refused_syscall(raw_number, code);
            }
        }
    }
    frame.rflags = sanitize_user_flags(frame.rflags);
    if sched::take_current_doom() {
        sched::exit_current(Exit::Killed);
    }
}

pub(crate) fn endpoint_cap(slot: Arg<CapSlot>, rights: Rights) -> Result<crate::ipc::EndpointCap, ErrorCode> {
    let space = my_space()?;
    let found = caps::with(|store| store.lookup(caps::slot(space, slot.get()?)))?;
    let caps::Object::Endpoint(index) = found.handle else { return Err(ErrorCode::WrongObjectType) };
    if !rights.is_subset_of(found.rights) {
        return Err(ErrorCode::InsufficientRights);
    }
    Ok(crate::ipc::EndpointCap {
        slot: caps::slot(space, slot.get()?),
        index,
        badge: found.badge.value(),
        grant: found.rights.contains(Rights::GRANT),
        grant_reply: found.rights.contains(Rights::GRANT_REPLY),
    })
}

fn notification_cap(slot: Arg<CapSlot>, rights: Rights) -> Result<(u16, u64), ErrorCode> {
    let space = my_space()?;
    match caps::lookup(space, slot.get()?, ObjectType::Notification, rights)? {
        (caps::Object::Notification(index), badge) => Ok((index, badge.value())),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

/// The operations that may block: their outcome lands in `frame`.
///
/// The message (its info word and words) is not decoded here: the IPC path reads it from
/// the sender's saved registers when it is delivered, which for a queued sender is later.
fn ipc(number: Sysno, args: Registers, frame: &mut TrapFrame) -> Result<(), ErrorCode> {
    use crate::ipc;
    match number {
        Sysno::Send => ipc::send(frame, endpoint_cap(args::Send::decode(args).endpoint, Rights::WRITE)?, false, true),
        Sysno::NbSend => ipc::send(frame, endpoint_cap(args::NbSend::decode(args).endpoint, Rights::WRITE)?, false, false),
        Sysno::Call => ipc::send(frame, endpoint_cap(args::Call::decode(args).endpoint, Rights::WRITE)?, true, true),
        Sysno::Recv => {
            let args = args::Recv::decode(args);
            ipc::receive(frame, endpoint_cap(args.endpoint, Rights::READ)?.index, true, args.timeout)
        }
        Sysno::NbRecv => ipc::receive(frame, endpoint_cap(args::NbRecv::decode(args).endpoint, Rights::READ)?.index, false, 0),
        Sysno::Reply => {
            ipc::reply(frame)?;
            frame.rax = 0;
            Ok(())
        }
        Sysno::ReplyRecv => {
            // Decode the receive first, so a bad endpoint cap leaves the reply pending.
            let index = endpoint_cap(args::ReplyRecv::decode(args).endpoint, Rights::READ)?.index;
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
            let args = args::Wait::decode(args);
            let (index, _) = notification_cap(args.notification, Rights::READ)?;
            ipc::wait(frame, index, true, args.timeout)
        }
        Sysno::Poll => {
            let (index, _) = notification_cap(args::Poll::decode(args).notification, Rights::READ)?;
            ipc::wait(frame, index, false, 0)
        }
        _ => Err(ErrorCode::InvalidSyscall),
    }
}

fn handle(number: Sysno, args: Registers) -> Result<Reply, ErrorCode> {
    match number {
        Sysno::ConsoleWrite => console_write(args::ConsoleWrite::decode(args)),
        Sysno::ConsoleRead => console_read(args::ConsoleRead::decode(args)),
        Sysno::ConsoleSetNotification => {
            let args = args::ConsoleSetNotification::decode(args);
            let space = my_space()?;
            caps::lookup(space, args.console.get()?, ObjectType::Console, Rights::READ)?;
            let (notification, badge) = notification_cap(args.notification, Rights::WRITE)?;
            crate::console::enable_input_interrupt();
            crate::irq::set_notification(crate::console::INPUT_IRQ, notification, badge)?;
            Ok(Reply::default())
        }
        Sysno::ThreadExit => sched::exit_current(Exit::Code(args::ThreadExit::decode(args).code)),
        Sysno::SetCallTimeout => {
            let ticks = args::SetCallTimeout::decode(args).ticks;
            sched::with_sched(|sched| {
                let me = sched.current();
                sched.thread(me).call_timeout_ticks = ticks;
            });
            Ok(Reply::default())
        }
        Sysno::Yield => {
            let args::Yield {} = args::Yield::decode(args);
            sched::yield_now();
            Ok(Reply::default())
        }
        Sysno::CapIdentify => cap_identify(args::CapIdentify::decode(args)),
        Sysno::CapCopy => cap_copy(args::CapCopy::decode(args)),
        Sysno::CapMint => cap_mint(args::CapMint::decode(args)),
        Sysno::CapMove => cap_move(args::CapMove::decode(args)),
        Sysno::CapDelete => cap_delete(args::CapDelete::decode(args)),
        Sysno::CapRevoke => cap_revoke(args::CapRevoke::decode(args)),
        Sysno::Signal => {
            let (index, badge) = notification_cap(args::Signal::decode(args).notification, Rights::WRITE)?;
            crate::ipc::signal(index, badge);
            Ok(Reply::default())
        }
        Sysno::ObjectCreate => {
            let args = args::ObjectCreate::decode(args);
            let kind = args.kind.get()?;
            crate::object::create(my_space()?, args.dest.destination()?, kind, args.size, args.flags)?;
            Ok(Reply::default())
        }
        Sysno::Map => map(args::Map::decode(args)),
        Sysno::FrameInfo => {
            let frame = frame_cap(args::FrameInfo::decode(args).frame, Rights::READ)?;
            let (phys, bytes) = crate::frame::info(frame).ok_or(ErrorCode::PeerGone)?;
            let flags = if crate::frame::is_borrowed(frame) == Some(true) {
                abi::syscall::frame_info::IMMUTABLE
            } else if crate::frame::is_device(frame) == Some(true) {
                abi::syscall::frame_info::DEVICE
            } else {
                0
            };
            Ok(Reply { words: [bytes, phys, flags, 0] })
        }
        Sysno::FrameSlice => {
            let args = args::FrameSlice::decode(args);
            crate::object::decode_slice(my_space()?, args.source, args.offset, args.length, args.dest)?.perform()?;
            Ok(Reply::default())
        }
        Sysno::PciConfigRead => {
            let args = args::PciConfigRead::decode(args);
            let (first, last) = pci_cap(args.pci, Rights::READ)?;
            let value = crate::pci::config_read(first, last, args.function, args.offset, args.width)?;
            Ok(Reply { words: [value, 0, 0, 0] })
        }
        Sysno::PciConfigWrite => {
            let args = args::PciConfigWrite::decode(args);
            let (first, last) = pci_cap(args.pci, Rights::WRITE)?;
            crate::pci::config_write(first, last, args.function, args.offset, args.width, args.value)?;
            Ok(Reply::default())
        }
        Sysno::PciBar => {
            let args = args::PciBar::decode(args);
            let (first, last) = pci_cap(args.pci, Rights::READ)?;
            let bar = crate::pci::bar(first, last, args.function, args.bar)?;
            Ok(Reply { words: [bar.address, bar.bytes, bar.flags, 0] })
        }
        Sysno::PciSlice => {
            let args = args::PciSlice::decode(args);
            crate::object::pci_slice(my_space()?, args.source, args.function, args.dest)?;
            Ok(Reply::default())
        }
        Sysno::Unmap => unmap(args::Unmap::decode(args)),
        Sysno::ThreadStart => thread_start(args::ThreadStart::decode(args)),
        Sysno::ThreadConfigure => thread_configure(args::ThreadConfigure::decode(args)),
        Sysno::CapGive => cap_give(args::CapGive::decode(args)),
        Sysno::IoPortRead => {
            let args = args::IoPortRead::decode(args);
            let (first, last) = io_ports_cap(args.ports, Rights::READ)?;
            let value = crate::irq::port_read(first, last, args.port, args.width)?;
            Ok(Reply { words: [value, 0, 0, 0] })
        }
        Sysno::IoPortWrite => {
            let args = args::IoPortWrite::decode(args);
            let (first, last) = io_ports_cap(args.ports, Rights::WRITE)?;
            crate::irq::port_write(first, last, args.port, args.width, args.value)?;
            Ok(Reply::default())
        }
        Sysno::IrqSetNotification => {
            let args = args::IrqSetNotification::decode(args);
            let line = irq_cap(args.irq)?;
            let (notification, badge) = notification_cap(args.notification, Rights::WRITE)?;
            crate::irq::set_notification(line, notification, badge)?;
            Ok(Reply::default())
        }
        Sysno::IrqAck => {
            crate::irq::ack(irq_cap(args::IrqAck::decode(args).irq)?)?;
            Ok(Reply::default())
        }
        Sysno::AuditCap => {
            let args = args::AuditCap::decode(args);
            audit_cap(args.audit)?;
            let space = u16::try_from(args.space).map_err(|_| ErrorCode::InvalidSlot)?;
            if usize::from(space) >= caps::SPACES {
                return Err(ErrorCode::InvalidSlot);
            }
            let slot = kcore::cap::SlotRef::new(kcore::cap::SpaceId::new(space), args.slot.get()?.index());
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
            let args = args::AuditThread::decode(args);
            audit_cap(args.audit)?;
            let (space, state, cpu_us) = sched::audit_thread(args.thread).ok_or(ErrorCode::InvalidArgument)?;
            let quota_used = space
                .checked_sub(1)
                .and_then(|index| u16::try_from(index).ok())
                .and_then(|index| caps::with(|store| store.quota(kcore::cap::SpaceId::new(index))))
                .map_or(0, |quota| quota.used());
            Ok(Reply { words: [space, state, cpu_us, quota_used] })
        }
        Sysno::AuditMemory => {
            audit_cap(args::AuditMemory::decode(args).audit)?;
            let (free, managed) = crate::mm::frame_stats();
            Ok(Reply { words: [free, managed, 0, 0] })
        }
        Sysno::AuditDenial => {
            let args = args::AuditDenial::decode(args);
            audit_cap(args.audit)?;
            Ok(match crate::denials::read(args.number) {
                Ok((number, time_us, packed)) => Reply { words: [number, time_us, packed, 1] },
                Err(next) => Reply { words: [next, 0, 0, 0] },
            })
        }
        Sysno::ThreadKill => {
            let id = thread_cap(args::ThreadKill::decode(args).thread)?;
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

/// The caller's capability space; kernel threads have none.
fn my_space() -> Result<kcore::cap::SpaceId, ErrorCode> {
    sched::current_cspace().ok_or(ErrorCode::IllegalOperation)
}

fn console_write(args: args::ConsoleWrite) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    caps::lookup(space, args.console.get()?, ObjectType::Console, Rights::WRITE)?;
    let len = usize::try_from(args.len).map_err(|_| ErrorCode::InvalidArgument)?;
    if len > abi::syscall::CONSOLE_WRITE_MAX {
        return Err(ErrorCode::MessageTooLong);
    }
    let mut buffer = [0u8; abi::syscall::CONSOLE_WRITE_MAX];
    let pml4 = sched::with_current(|thread| thread.pml4);
    let bytes = buffer.get_mut(..len).ok_or(ErrorCode::InvalidArgument)?;
    crate::vspace::copy_from_user(pml4, args.bytes, bytes)?;
    crate::console::print(format_args!("{}", Utf8Lossy(bytes)));
    Ok(Reply::default())
}

/// `ConsoleRead`: whatever bytes are waiting, never blocking. Finding none re-arms the
/// input interrupt, then looks once more: a byte that came in between is read now rather
/// than waiting for an interrupt that was masked when it arrived.
fn console_read(args: args::ConsoleRead) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    caps::lookup(space, args.console.get()?, ObjectType::Console, Rights::READ)?;
    let len = usize::try_from(args.len).map_err(|_| ErrorCode::InvalidArgument)?;
    if len > abi::syscall::CONSOLE_READ_MAX {
        return Err(ErrorCode::MessageTooLong);
    }
    let mut buffer = [0u8; abi::syscall::CONSOLE_READ_MAX];
    let bytes = buffer.get_mut(..len).ok_or(ErrorCode::InvalidArgument)?;
    let pml4 = sched::with_current(|thread| thread.pml4);
    // The whole buffer is checked (written) before any byte is taken from the line, so a
    // bad buffer loses no input.
    crate::vspace::copy_to_user(pml4, args.buffer, bytes)?;
    let mut count = crate::console::read(bytes);
    if count == 0 {
        // Not bound (nobody asked for the notification): nothing to re-arm.
        let _ = crate::irq::ack(crate::console::INPUT_IRQ);
        count = crate::console::read(bytes);
    }
    let read = bytes.get(..count).ok_or(ErrorCode::InvalidArgument)?;
    crate::vspace::copy_to_user(pml4, args.buffer, read)?;
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

fn cap_identify(args: args::CapIdentify) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    let slot = args.slot.get()?;
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

/// A source slot and a destination slot (not 0) of the caller's space.
fn two_slots(src: Arg<CapSlot>, dest: Arg<CapSlot>) -> Result<(SlotRef, SlotRef), ErrorCode> {
    let space = my_space()?;
    Ok((caps::slot(space, src.get()?), caps::slot(space, dest.destination()?)))
}

/// A copy is a mint that keeps every right and the badge.
fn cap_copy(args: args::CapCopy) -> Result<Reply, ErrorCode> {
    let (src, dst) = two_slots(args.src, args.dest)?;
    caps::derive(src, dst, Rights::ALL, abi::Badge::NONE)?;
    Ok(Reply::default())
}

fn cap_mint(args: args::CapMint) -> Result<Reply, ErrorCode> {
    let (src, dst) = two_slots(args.src, args.dest)?;
    let rights = args.rights.get()?;
    caps::derive(src, dst, rights, args.badge)?;
    Ok(Reply::default())
}

fn cap_move(args: args::CapMove) -> Result<Reply, ErrorCode> {
    let (src, dst) = two_slots(args.src, args.dest)?;
    caps::relocate(src, dst)?;
    // A send queued through the moved cap named its old slot.
    crate::ipc::cancel_revoked_sends();
    Ok(Reply::default())
}

fn cap_delete(args: args::CapDelete) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    let slot = caps::slot(space, args.slot.get()?);
    let mut reaped = caps::Reaped::new();
    caps::with(|store| store.decode_delete(slot).map(|op| op.perform(&mut reaped)))?;
    reaped.finish();
    crate::ipc::cancel_revoked_sends();
    Ok(Reply::default())
}

fn cap_revoke(args: args::CapRevoke) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    let slot = caps::slot(space, args.slot.get()?);
    caps::with(|store| store.decode_revoke(slot).map(|op| op.perform()))?;
    crate::ipc::cancel_revoked_sends();
    Ok(Reply::default())
}

fn address_space_cap(slot: Arg<CapSlot>) -> Result<(u16, u64), ErrorCode> {
    match caps::lookup(my_space()?, slot.get()?, ObjectType::AddressSpace, Rights::WRITE)? {
        (caps::Object::AddressSpace(index), _) => Ok((index, crate::vspace::root(index).ok_or(ErrorCode::PeerGone)?)),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn thread_cap(slot: Arg<CapSlot>) -> Result<crate::thread::ThreadId, ErrorCode> {
    match caps::lookup(my_space()?, slot.get()?, ObjectType::Thread, Rights::WRITE)? {
        (caps::Object::Thread(index), _) => Ok(crate::thread::ThreadId(index)),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn cspace_cap(slot: Arg<CapSlot>) -> Result<kcore::cap::SpaceId, ErrorCode> {
    match caps::lookup(my_space()?, slot.get()?, ObjectType::CSpace, Rights::WRITE)? {
        (caps::Object::CSpace(index), _) => Ok(kcore::cap::SpaceId::new(index)),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

/// `Map`: the frame cap's rights bound the mapping's; never writable and executable.
fn map(args: args::Map) -> Result<Reply, ErrorCode> {
    use abi::syscall::map_perms;
    let (space_index, pml4) = address_space_cap(args.space)?;
    if args.perms & !map_perms::ALL != 0 || args.perms == map_perms::ALL {
        return Err(ErrorCode::InvalidArgument);
    }
    let perms = crate::vspace::Perms { write: args.perms & map_perms::WRITE != 0, execute: args.perms & map_perms::EXECUTE != 0 };
    let mut needed = Rights::READ;
    if perms.write {
        needed = needed.union(Rights::WRITE);
    }
    if perms.execute {
        needed = needed.union(Rights::EXECUTE);
    }
    let frame = frame_cap(args.frame, needed)?;
    crate::frame::map(frame, space_index, pml4, args.address, perms)?;
    Ok(Reply::default())
}

fn frame_cap(slot: Arg<CapSlot>, rights: Rights) -> Result<u32, ErrorCode> {
    match caps::lookup(my_space()?, slot.get()?, ObjectType::Frame, rights)? {
        (caps::Object::Frame(index), _) => Ok(index),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn unmap(args: args::Unmap) -> Result<Reply, ErrorCode> {
    let (space_index, pml4) = address_space_cap(args.space)?;
    crate::frame::unmap(space_index, pml4, args.address)?;
    Ok(Reply::default())
}

fn thread_start(args: args::ThreadStart) -> Result<Reply, ErrorCode> {
    let id = thread_cap(args.thread)?;
    let (_, pml4) = address_space_cap(args.space)?;
    let cspace = cspace_cap(args.cspace)?;
    let user_end = crate::vspace::USER_END;
    if args.entry >= user_end || args.stack_pointer >= user_end || args.ipc_buffer >= user_end {
        return Err(ErrorCode::InvalidArgument);
    }
    crate::sched::start_thread(id, pml4, cspace, args.entry, args.stack_pointer, args.ipc_buffer)?;
    Ok(Reply::default())
}

fn thread_configure(args: args::ThreadConfigure) -> Result<Reply, ErrorCode> {
    let id = thread_cap(args.thread)?;
    let fault = match args.fault_endpoint.slot() {
        None => None,
        Some(slot) => {
            let cap = endpoint_cap(slot, Rights::WRITE)?;
            Some((cap.index, cap.badge))
        }
    };
    crate::sched::configure(id, args.priority, args.budget_us, args.period_us, fault)?;
    Ok(Reply::default())
}

fn cap_give(args: args::CapGive) -> Result<Reply, ErrorCode> {
    let space = my_space()?;
    let target = cspace_cap(args.cspace)?;
    let rights = args.rights.get()?;
    let from = caps::slot(space, args.src.get()?);
    let to = caps::slot(target, args.dest.destination()?);
    caps::derive(from, to, rights, args.badge)?;
    Ok(Reply::default())
}

fn io_ports_cap(slot: Arg<CapSlot>, rights: Rights) -> Result<(u16, u16), ErrorCode> {
    match caps::lookup(my_space()?, slot.get()?, ObjectType::IoPortRange, rights)? {
        (caps::Object::IoPorts(first, last), _) => Ok((first, last)),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn pci_cap(slot: Arg<CapSlot>, rights: Rights) -> Result<(u16, u16), ErrorCode> {
    match caps::lookup(my_space()?, slot.get()?, ObjectType::Pci, rights)? {
        (caps::Object::Pci(first, last), _) => Ok((first, last)),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn irq_cap(slot: Arg<CapSlot>) -> Result<u8, ErrorCode> {
    match caps::lookup(my_space()?, slot.get()?, ObjectType::IrqHandler, Rights::WRITE)? {
        (caps::Object::Irq(line), _) => Ok(line),
        _ => Err(ErrorCode::WrongObjectType),
    }
}

fn audit_cap(slot: Arg<CapSlot>) -> Result<(), ErrorCode> {
    caps::lookup(my_space()?, slot.get()?, ObjectType::Audit, Rights::READ).map(|_| ())
}
