//! Privileged instructions and devices: a puppet executing any instruction reserved for the
//! kernel faults (and only it stops), and one without a device cap reaches no I/O port and
//! no interrupt line through the kernel either.

use libcap::{ErrorCode, ObjectType, Sysno};

use crate::puppet::{Puppet, Step, SURVIVED};
use crate::world::{ALL, Case, Outcome, World, create, expect_ok};
use crate::fail;

macro_rules! privileged {
    ($($id:literal, $number:literal, $name:literal, $run:ident;)*) => {
        $(fn $run(world: &mut World) -> Outcome { privileged(world, $number, $name) })*
        pub const CASES: &[Case] = &[
            $(Case { id: $id, what: concat!("`", $name, "` in user mode: general protection fault, only the puppet stops"), run: $run },)*
            Case { id: "ISO-DEV-001", what: "I/O-port syscalls without a port cap: EmptySlot, WrongObjectType", run: ports_without_cap },
            Case { id: "ISO-DEV-002", what: "IRQ syscalls without an IRQ-handler cap: EmptySlot, WrongObjectType", run: irq_without_cap },
        ];
    };
}

// The numbers are the puppet program's table (kernel/src/harness/ksuite.rs).
privileged! {
    "ISO-PRIV-001", 0, "hlt", hlt;
    "ISO-PRIV-002", 1, "cli", cli;
    "ISO-PRIV-003", 2, "sti", sti;
    "ISO-PRIV-004", 3, "in al, 0x60", port_in;
    "ISO-PRIV-005", 4, "out 0x80, al", port_out;
    "ISO-PRIV-006", 5, "mov rax, cr3", read_cr3;
    "ISO-PRIV-007", 6, "mov cr3, rax", write_cr3;
    "ISO-PRIV-008", 7, "wrmsr", wrmsr;
    "ISO-PRIV-009", 8, "rdmsr", rdmsr;
    "ISO-PRIV-010", 9, "sgdt (UMIP)", sgdt;
    "ISO-PRIV-011", 10, "lidt", lidt;
    "ISO-PRIV-012", 11, "invlpg", invlpg;
    "ISO-PRIV-013", 12, "mov rax, dr7", read_dr7;
    "ISO-PRIV-014", 13, "swapgs", swapgs;
    "ISO-PRIV-015", 14, "int 0x30 (an IRQ vector)", int_irq;
    "ISO-PRIV-016", 15, "wbinvd", wbinvd;
}

fn privileged(world: &mut World, number: u64, name: &str) -> Outcome {
    let p = Puppet::new(world)?;
    match p.privileged(number)? {
        Step::Ended(crate::puppet::End::Fault { vector: 13, .. }) => {}
        Step::Ret(ret) if ret.rax == SURVIVED => fail!("`{name}` ran in user mode"),
        other => fail!("`{name}`: expected #GP, got {other:x?}"),
    }
    // The rest of the system is untouched: another puppet still works.
    let q = Puppet::new(world)?;
    q.sys_ok("a neighbour carries on", Sysno::Yield, &[])?;
    p.teardown(world)?;
    q.teardown(world)
}

fn ports_without_cap(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    for port in [0x60, 0x70, 0xf4, 0x3f8, 0xcf8] {
        p.sys_err("port read, empty slot", Sysno::IoPortRead, &[9, port, 1], ErrorCode::EmptySlot)?;
        p.sys_err("port write, empty slot", Sysno::IoPortWrite, &[9, port, 1, 0], ErrorCode::EmptySlot)?;
        p.sys_err("port read through an endpoint", Sysno::IoPortRead, &[2, port, 1], ErrorCode::WrongObjectType)?;
        p.sys_err("port write through an endpoint", Sysno::IoPortWrite, &[2, port, 1, 0x11], ErrorCode::WrongObjectType)?;
    }
    p.teardown(world)
}

fn irq_without_cap(world: &mut World) -> Outcome {
    let n = create(world, ObjectType::Notification)?;
    let p = Puppet::new(world)?;
    expect_ok("a notification", p.give(n, 5, ALL, 0))?;
    p.sys_err("bind, empty slot", Sysno::IrqSetNotification, &[9, 5], ErrorCode::EmptySlot)?;
    p.sys_err("bind through a notification", Sysno::IrqSetNotification, &[5, 5], ErrorCode::WrongObjectType)?;
    p.sys_err("ack, empty slot", Sysno::IrqAck, &[9], ErrorCode::EmptySlot)?;
    p.sys_err("ack through an endpoint", Sysno::IrqAck, &[2], ErrorCode::WrongObjectType)?;
    p.teardown(world)
}
