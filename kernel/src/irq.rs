//! IRQ-handler and I/O-port objects: how user-space drivers reach hardware.
//!
//! An ISA IRQ line is delivered as a notification: the holder of the line's IRQ-handler
//! cap binds it to a notification (`IrqSetNotification`); when the line fires the kernel
//! masks it, signals the notification with that cap's badge, and leaves it masked until
//! the driver says `IrqAck`. I/O ports are read and written through I/O-port-range caps,
//! one port access per syscall, so no process ever gets a port outside its range.

use abi::ErrorCode;
use spin::Mutex;
use x86_64::instructions::port::Port;

use crate::arch::{apic, ioapic};

pub const ISA_LINES: usize = 16;
/// Vector of ISA IRQ `n` is `IRQ_VECTOR_BASE + n`.
pub const IRQ_VECTOR_BASE: u8 = 0x30;

#[derive(Clone, Copy)]
struct Line {
    gsi: u32,
    /// (notification index, badge) it is delivered to.
    bound: Option<(u16, u64)>,
}

static LINES: Mutex<[Line; ISA_LINES]> = Mutex::new([Line { gsi: 0, bound: None }; ISA_LINES]);

/// Routes every ISA line through the I/O APIC (masked), honouring ACPI's overrides.
pub fn init(platform: &crate::arch::acpi::Platform) {
    let Some(ioapic) = platform.io_apics.first().filter(|_| platform.io_apic_count > 0) else { return };
    if ioapic::init(u64::from(ioapic.address)).is_err() {
        log::warn!("cannot map the I/O APIC: no device interrupts");
        return;
    }
    let apic_id = apic::id();
    let mut lines = LINES.lock();
    for (irq, line) in lines.iter_mut().enumerate() {
        // ISA defaults: edge-triggered, active high, GSI = IRQ, unless overridden.
        let (mut gsi, mut level, mut low) = (irq as u32, false, false);
        for (source, target, flags) in platform.overrides.iter().flatten() {
            if usize::from(*source) == irq {
                gsi = *target;
                low = flags & 0b11 == 0b11;
                level = (flags >> 2) & 0b11 == 0b11;
            }
        }
        line.gsi = gsi;
        ioapic::route(gsi.saturating_sub(ioapic.gsi_base), IRQ_VECTOR_BASE + irq as u8, level, low, apic_id);
    }
}

/// The line's vector fired.
pub fn handle(irq: usize) {
    let bound = {
        let lines = LINES.lock();
        lines.get(irq).map(|line| (line.gsi, line.bound))
    };
    if let Some((gsi, bound)) = bound {
        ioapic::set_masked(gsi, true);
        if let Some((notification, badge)) = bound {
            crate::ipc::signal(notification, badge);
        }
    }
    apic::end_of_interrupt();
}

pub fn set_notification(irq: u8, notification: u16, badge: u64) -> Result<(), ErrorCode> {
    let mut lines = LINES.lock();
    let line = lines.get_mut(usize::from(irq)).ok_or(ErrorCode::InvalidArgument)?;
    line.bound = Some((notification, badge));
    ioapic::set_masked(line.gsi, false);
    Ok(())
}

pub fn ack(irq: u8) -> Result<(), ErrorCode> {
    let lines = LINES.lock();
    let line = lines.get(usize::from(irq)).ok_or(ErrorCode::InvalidArgument)?;
    if line.bound.is_none() {
        return Err(ErrorCode::IllegalOperation);
    }
    ioapic::set_masked(line.gsi, false);
    Ok(())
}

/// Notification `index` is being destroyed: every line bound to it is masked and unbound,
/// so no interrupt ever signals whatever notification gets the index next.
pub fn unbind_notification(index: u16) {
    let mut lines = LINES.lock();
    for line in lines.iter_mut() {
        if line.bound.is_some_and(|(notification, _)| notification == index) {
            line.bound = None;
            ioapic::set_masked(line.gsi, true);
        }
    }
}

/// (line, notification index) of every bound line (for the consistency checks of tests).
#[cfg(feature = "ktest")]
pub fn bound_notifications() -> impl Iterator<Item = (usize, u16)> {
    let lines = *LINES.lock();
    (0..ISA_LINES).filter_map(move |line| lines.get(line).and_then(|l| l.bound).map(|(notification, _)| (line, notification)))
}

/// The IRQ-handler object's last cap is gone: mask the line and unbind it.
pub fn release(irq: u8) {
    let mut lines = LINES.lock();
    if let Some(line) = lines.get_mut(usize::from(irq)) {
        line.bound = None;
        ioapic::set_masked(line.gsi, true);
    }
}

/// Reads `port` (`width` bytes) if it lies in `[first, last]`.
pub fn port_read(first: u16, last: u16, port: u64, width: u64) -> Result<u64, ErrorCode> {
    let port = check_port(first, last, port, width)?;
    // SAFETY (all three arms): the caller holds a cap to this port range (checked by the
    // dispatcher), and the kernel hands out ranges only for ports it does not use itself.
    let value = match width {
        // SAFETY: see above.
        1 => u64::from(unsafe { Port::<u8>::new(port).read() }),
        // SAFETY: see above.
        2 => u64::from(unsafe { Port::<u16>::new(port).read() }),
        // SAFETY: see above.
        _ => u64::from(unsafe { Port::<u32>::new(port).read() }),
    };
    Ok(value)
}

pub fn port_write(first: u16, last: u16, port: u64, width: u64, value: u64) -> Result<(), ErrorCode> {
    let port = check_port(first, last, port, width)?;
    match width {
        // SAFETY: as in `port_read`.
        1 => unsafe { Port::<u8>::new(port).write(value as u8) },
        // SAFETY: as in `port_read`.
        2 => unsafe { Port::<u16>::new(port).write(value as u16) },
        // SAFETY: as in `port_read`.
        _ => unsafe { Port::<u32>::new(port).write(value as u32) },
    }
    Ok(())
}

fn check_port(first: u16, last: u16, port: u64, width: u64) -> Result<u16, ErrorCode> {
    if !matches!(width, 1 | 2 | 4) {
        return Err(ErrorCode::InvalidArgument);
    }
    let end = port.checked_add(width - 1).ok_or(ErrorCode::InvalidArgument)?;
    if port < u64::from(first) || end > u64::from(last) {
        return Err(ErrorCode::InsufficientRights);
    }
    u16::try_from(port).map_err(|_| ErrorCode::InvalidArgument)
}
