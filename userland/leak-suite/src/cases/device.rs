//! Device memory and PCI caps: init's device frame over the PCI device window, the slices
//! init cuts from it for drivers, and configuration space by capability.
//!
//! The suite holds init's device frame (read, write, grant) at [`DEVICE_FRAME`] and init's
//! PCI bus cap (read, write, grant) at [`PCI`], minted by the harness from init's
//! `INIT_DEVICE_FRAME_SLOT` and `INIT_PCI_SLOT`. The test machine (QEMU q35) has a VGA
//! function (1234:1111) whose BAR0 is its framebuffer, plain memory behind the device, so
//! a puppet can write and read a device slice. Below the cap's rights the `ksuite` harness
//! checks that the kernel never maps a device frame executable, always maps it uncached,
//! and never copies from it for a user.

use libcap::process;
use libcap::sys;
use libcap::{Badge, CapSlot, ErrorCode, ObjectType, Sysno};

use crate::audit;
use crate::puppet::{DATA, Puppet, expect_fault, expect_ret};
use crate::world::{Case, DEVICE_FRAME, Fail, G, Outcome, PCI, R, RW, W, World, create, expect_err, expect_ok, expect_slot};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "DEVICE-001", what: "init's device frame, as the suite holds it: a frame with read, write and grant, FrameInfo device (not immutable), page-aligned; a slice keeps the kind and exactly the source cap's rights", run: device_frame },
    Case { id: "DEVICE-002", what: "a device slice is never executable: mapped executable InsufficientRights (no cap to it has execute), writable and executable InvalidArgument, nothing mapped; mapped writable, a jump into it faults (0x15)", run: never_executable },
    Case { id: "DEVICE-003", what: "a device slice cannot reach past the window: one byte or a page past the end, a misaligned offset, wrapping ranges: InvalidArgument; a slice of a slice is bounded by it", run: bounded },
    Case { id: "DEVICE-004", what: "a device slice over a BAR (the VGA framebuffer, PciBar) mapped writable in two processes: a store through one is read through the other (device memory, shared, not copied)", run: shared_writable },
    Case { id: "DEVICE-005", what: "deleting a mapped device slice unmaps it everywhere and frees no page; its object index reused by an ordinary frame reads zeroes, not the device", run: delete_and_reuse },
    Case { id: "PCI-001", what: "configuration reads through the PCI bus cap: the host bridge's vendor, widths 1/2/4 agree, an absent function reads all ones; width 0, 3, 8, offset 256, a misaligned offset: InvalidArgument", run: config_reads },
    Case { id: "PCI-002", what: "configuration writes to every byte of the BARs (0x10..0x27) and the ROM BAR (0x30..0x33) at every width, and any write turning on I/O decoding: IllegalOperation, the BARs and command register unchanged; a read-only cap cannot write (InsufficientRights); an endpoint is WrongObjectType", run: bar_writes_refused },
    Case { id: "PCI-003", what: "PciSlice: a one-function cap with the source's rights reaches its function as function 0 and nothing past it (InsufficientRights), its PciBar matches the bus cap's; BAR index 6 InvalidArgument; nested and read-only slices never grow rights; the destination's errors", run: function_caps },
];

const PAGE: u64 = 4096;

fn slice(source: CapSlot, offset: u64, length: u64, dest: CapSlot) -> Result<(), ErrorCode> {
    sys::frame_slice(source, offset, length, dest)
}

fn map_raw(aspace: CapSlot, frame: CapSlot, address: u64, perms: u64) -> Result<(), ErrorCode> {
    let (rax, _) = sys::syscall_raw(Sysno::Map.as_u64(), [u64::from(aspace.index()), u64::from(frame.index()), address, perms, 0, 0, 0, 0, 0, 0]);
    audit::code(rax)
}

fn window() -> Result<sys::FrameInfo, Fail> {
    let info = expect_ok("FrameInfo of the device frame", sys::frame_info(DEVICE_FRAME))?;
    ensure!(info.device && !info.immutable, "the device frame's flags: {info:?}");
    ensure!(info.phys % PAGE == 0 && info.bytes % PAGE == 0 && info.bytes >= 16 * PAGE, "the device frame is {info:?}");
    Ok(info)
}

/// The VGA function's number on bus 0 and its BAR0 (the framebuffer), with memory decoding
/// on (the command register is the driver's; the firmware may leave it off).
fn vga() -> Result<(u16, sys::PciBar), Fail> {
    for function in 0..256u16 {
        if sys::pci_config_read(PCI, function, 0, 2) == Ok(0x1234) {
            let bar = expect_ok("PciBar of VGA BAR0", sys::pci_bar(PCI, function, 0))?;
            ensure!(bar.bytes >= 2 * PAGE, "VGA BAR0 is {bar:?}");
            let command = expect_ok("VGA's command register", sys::pci_config_read(PCI, function, 0x04, 2))?;
            expect_ok("memory decoding on", sys::pci_config_write(PCI, function, 0x04, 2, command | 0b10))?;
            return Ok((function, bar));
        }
    }
    fail!("no VGA function (1234:xxxx) on bus 0")
}

fn device_frame(world: &mut World) -> Outcome {
    let info = window()?;
    expect_slot("the device frame", DEVICE_FRAME, Some((ObjectType::Frame, RW.union(G), 0)))?;
    let s = world.slot()?;
    expect_ok("a slice", slice(DEVICE_FRAME, PAGE, 3 * PAGE, s))?;
    let sliced = sys::frame_info(s)?;
    ensure!(sliced.device && !sliced.immutable && sliced.bytes == 3 * PAGE && sliced.phys == info.phys + PAGE, "the slice is {sliced:?}");
    expect_slot("its rights are the source's", s, Some((ObjectType::Frame, RW.union(G), 0)))?;
    let read_only = world.slot()?;
    expect_ok("mint read-only", sys::cap_mint(DEVICE_FRAME, read_only, R, Badge::NONE))?;
    let narrow = world.slot()?;
    expect_ok("a slice of the read-only cap", slice(read_only, 0, PAGE, narrow))?;
    expect_slot("rights never grow", narrow, Some((ObjectType::Frame, R, 0)))?;
    let p = Puppet::new(world)?;
    expect_err("a read-only device slice mapped writable", map_raw(p.aspace, narrow, DATA, 1), ErrorCode::InsufficientRights)?;
    p.teardown(world)
}

fn never_executable(world: &mut World) -> Outcome {
    let (_, bar) = vga()?;
    let info = window()?;
    let s = world.slot()?;
    expect_ok("a slice of the framebuffer", slice(DEVICE_FRAME, bar.address - info.phys, PAGE, s))?;
    let p = Puppet::new(world)?;
    expect_err("mapped executable", map_raw(p.aspace, s, DATA, 2), ErrorCode::InsufficientRights)?;
    expect_err("writable and executable", map_raw(p.aspace, s, DATA, 3), ErrorCode::InvalidArgument)?;
    expect_err("nothing was mapped", process::unmap(p.aspace, DATA), ErrorCode::InvalidArgument)?;
    expect_ok("mapped writable", map_raw(p.aspace, s, DATA, 1))?;
    let end = expect_fault("a jump into device memory", p.jump(DATA)?, 14, Some(DATA))?;
    ensure!(matches!(end, crate::puppet::End::Fault { error: 0x15, .. }), "error code {end:?}, expected 0x15 (present, fetch, user)");
    p.teardown(world)
}

fn bounded(world: &mut World) -> Outcome {
    let info = window()?;
    let dest = world.slot()?;
    let end = info.bytes;
    for (what, offset, length) in [
        ("one byte past the end", 0, end + 1),
        ("the last page, one byte too long", end - PAGE, PAGE + 1),
        ("starting at the end", end, PAGE),
        ("a page past the end", end + PAGE, PAGE),
        ("offset 1", 1, PAGE),
        ("offset 0x800", 0x800, 8),
        ("length 0", 0, 0),
        ("a range that wraps", PAGE, u64::MAX - PAGE + 1),
        ("both u64::MAX", u64::MAX, u64::MAX),
    ] {
        expect_err(what, slice(DEVICE_FRAME, offset, length, dest), ErrorCode::InvalidArgument)?;
        expect_slot(what, dest, None)?;
    }
    expect_ok("the last page exactly", slice(DEVICE_FRAME, end - PAGE, PAGE, dest))?;
    let inner = world.slot()?;
    expect_ok("a two-page slice", slice(DEVICE_FRAME, 0, 2 * PAGE, inner))?;
    let nested = world.slot()?;
    expect_err("past the inner slice", slice(inner, PAGE, PAGE + 1, nested), ErrorCode::InvalidArgument)?;
    expect_ok("inside it", slice(inner, PAGE, PAGE, nested))?;
    ensure!(sys::frame_info(nested)?.device, "a slice of a device slice is not device memory");
    Ok(())
}

fn shared_writable(world: &mut World) -> Outcome {
    let (_, bar) = vga()?;
    let info = window()?;
    let s = world.slot()?;
    expect_ok("a two-page slice of the framebuffer", slice(DEVICE_FRAME, bar.address - info.phys, 2 * PAGE, s))?;
    let a = Puppet::new(world)?;
    let b = Puppet::new(world)?;
    expect_ok("map in a, writable", map_raw(a.aspace, s, DATA, 1))?;
    expect_ok("map in b, read-only", map_raw(b.aspace, s, DATA + 0x10_0000, 0))?;
    for (at, value) in [(0x10, 0x5eed_0001u64), (PAGE + 0x808, 0xdead_beef_0bad_f00d)] {
        expect_ret("a stores", a.store(DATA + at, value)?)?;
        let seen = expect_ret("b loads", b.load(DATA + 0x10_0000 + at)?)?.rdi();
        ensure!(seen == value, "b reads {seen:#x} at offset {at:#x}, a stored {value:#x}");
    }
    a.teardown(world)?;
    b.teardown(world)
}

fn free_frames() -> Result<u64, Fail> {
    Ok(expect_ok("AuditMemory", sys::audit_memory(crate::world::AUDIT))?.free_frames)
}

fn delete_and_reuse(world: &mut World) -> Outcome {
    let (_, bar) = vga()?;
    let info = window()?;
    let free = free_frames()?;
    let s = world.slot()?;
    expect_ok("a slice of the framebuffer", slice(DEVICE_FRAME, bar.address - info.phys, PAGE, s))?;
    let old = audit::audit_cap(u64::from(world.own_space), u64::from(s.index()))?.object;
    let a = Puppet::new(world)?;
    let b = Puppet::new(world)?;
    expect_ok("map in a", map_raw(a.aspace, s, DATA, 1))?;
    expect_ok("map in b", map_raw(b.aspace, s, DATA, 0))?;
    expect_ret("a writes the device", a.store(DATA + 0x20, 0x00c0_ffee)?)?;
    expect_ok("delete the slice", sys::cap_delete(s))?;
    expect_err("unmap in a: nothing there", process::unmap(a.aspace, DATA), ErrorCode::InvalidArgument)?;
    expect_fault("a's old mapping", a.load(DATA)?, 14, Some(DATA))?;
    expect_fault("b's old mapping", b.load(DATA + 0x20)?, 14, Some(DATA + 0x20))?;
    a.teardown(world)?;
    b.teardown(world)?;
    ensure!(free_frames()? == free, "free frames {free} before, {} after: a device page was counted or freed as RAM", free_frames()?);
    // The next object takes the slice's index, and with it the tag its entries carried.
    let fresh = world.slot()?;
    expect_ok("an ordinary frame", sys::object_create(fresh, ObjectType::Frame, 0))?;
    let new = audit::audit_cap(u64::from(world.own_space), u64::from(fresh.index()))?.object;
    ensure!(new == old, "the new frame is object {new}, the slice was {old}: the index was not reused, the case proves nothing");
    let fresh_info = sys::frame_info(fresh)?;
    ensure!(!fresh_info.device && fresh_info.phys < info.phys, "the new frame is {fresh_info:?}");
    let c = Puppet::new(world)?;
    expect_ok("map the new frame", map_raw(c.aspace, fresh, DATA, 0))?;
    let seen = expect_ret("it reads zeroes", c.load(DATA + 0x20)?)?.rdi();
    ensure!(seen == 0, "the new frame reads {seen:#x}");
    c.teardown(world)
}

fn config_reads(_world: &mut World) -> Outcome {
    let dword = expect_ok("the host bridge's IDs", sys::pci_config_read(PCI, 0, 0, 4))?;
    ensure!(dword & 0xffff == 0x8086, "00:00.0 reads {dword:#x}, not Intel's q35 host bridge");
    ensure!(sys::pci_config_read(PCI, 0, 0, 2)? == dword & 0xffff, "a 2-byte read disagrees");
    ensure!(sys::pci_config_read(PCI, 0, 2, 2)? == dword >> 16, "the device ID at offset 2 disagrees");
    ensure!(sys::pci_config_read(PCI, 0, 1, 1)? == (dword >> 8) & 0xff, "a byte read disagrees");
    // Device 30 of bus 0 is empty on q35.
    ensure!(sys::pci_config_read(PCI, 30 << 3, 0, 4)? == u32::MAX, "an absent function does not read all ones");
    for (what, offset, width) in [("width 0", 0, 0u64), ("width 3", 0, 3), ("width 8", 0, 8), ("offset 256", 256, 1), ("offset 2 at width 4", 2, 4), ("offset 1 at width 2", 1, 2), ("offset u64::MAX", u64::MAX, 1)] {
        let (rax, _) = sys::syscall_raw(Sysno::PciConfigRead.as_u64(), [u64::from(PCI.index()), 0, offset, width, 0, 0, 0, 0, 0, 0]);
        expect_err(what, audit::code(rax), ErrorCode::InvalidArgument)?;
    }
    let (rax, _) = sys::syscall_raw(Sysno::PciConfigRead.as_u64(), [u64::from(PCI.index()), 1 << 16, 0, 4, 0, 0, 0, 0, 0, 0]);
    expect_err("a function past the bus cap's range", audit::code(rax), ErrorCode::InsufficientRights)?;
    Ok(())
}

fn bar_writes_refused(world: &mut World) -> Outcome {
    let (function, _) = vga()?;
    let before: [u32; 10] = core::array::from_fn(|i| sys::pci_config_read(PCI, function, 0x10 + 4 * i as u8, 4).unwrap_or(0));
    for width in [1u8, 2, 4] {
        for offset in (0x10u8..0x28).chain(0x30..0x34).filter(|o| o % width == 0) {
            expect_err("a BAR write", sys::pci_config_write(PCI, function, offset, width, 0), ErrorCode::IllegalOperation)?;
        }
    }
    let after: [u32; 10] = core::array::from_fn(|i| sys::pci_config_read(PCI, function, 0x10 + 4 * i as u8, 4).unwrap_or(0));
    ensure!(before == after, "the BARs changed: {before:x?} -> {after:x?}");
    // I/O decoding stays off: no I/O BAR is placed, so it would decode at port 0 and up.
    let command = expect_ok("the command register", sys::pci_config_read(PCI, function, 0x04, 2))?;
    for (what, offset, width, value) in [("a word", 0x04u8, 2u8, command | 1), ("a byte", 0x04, 1, 1), ("the dword", 0x04, 4, 0x0000_0001)] {
        expect_err(&alloc::format!("I/O space on through {what}"), sys::pci_config_write(PCI, function, offset, width, value), ErrorCode::IllegalOperation)?;
    }
    ensure!(sys::pci_config_read(PCI, function, 0x04, 2)? == command, "the command register changed");
    expect_ok("memory space and bus master are the driver's", sys::pci_config_write(PCI, function, 0x04, 2, command & !1))?;
    // A malformed write is InvalidArgument before anything else.
    expect_err("a misaligned BAR write", sys::pci_config_write(PCI, function, 0x11, 2, 0), ErrorCode::InvalidArgument)?;
    let read_only = world.slot()?;
    expect_ok("mint the bus cap read-only", sys::cap_mint(PCI, read_only, R, Badge::NONE))?;
    expect_err("a write through it", sys::pci_config_write(read_only, function, 0x3c, 1, 0), ErrorCode::InsufficientRights)?;
    let write_only = world.slot()?;
    expect_ok("mint the bus cap write-only", sys::cap_mint(PCI, write_only, W, Badge::NONE))?;
    expect_err("a read through it", sys::pci_config_read(write_only, function, 0, 4), ErrorCode::InsufficientRights)?;
    let endpoint = create(world, ObjectType::Endpoint)?;
    expect_err("an endpoint as the PCI cap", sys::pci_config_read(endpoint, 0, 0, 4), ErrorCode::WrongObjectType)?;
    Ok(())
}

fn function_caps(world: &mut World) -> Outcome {
    let (function, bar) = vga()?;
    let one = world.slot()?;
    expect_ok("PciSlice of the VGA function", sys::pci_slice(PCI, function, one))?;
    expect_slot("its cap", one, Some((ObjectType::Pci, RW.union(G), 0)))?;
    ensure!(sys::pci_config_read(one, 0, 0, 2)? == 0x1234, "function 0 of the slice is not the VGA function");
    expect_err("function 1 of a one-function cap", sys::pci_config_read(one, 1, 0, 2), ErrorCode::InsufficientRights)?;
    expect_err("PciBar past its range", sys::pci_bar(one, 1, 0), ErrorCode::InsufficientRights)?;
    ensure!(sys::pci_bar(one, 0, 0)? == bar, "its BAR0 differs from the bus cap's");
    let (rax, _) = sys::syscall_raw(Sysno::PciBar.as_u64(), [u64::from(one.index()), 0, 6, 0, 0, 0, 0, 0, 0, 0]);
    expect_err("BAR index 6", audit::code(rax), ErrorCode::InvalidArgument)?;
    let nested = world.slot()?;
    expect_err("a slice of it at function 1", sys::pci_slice(one, 1, nested), ErrorCode::InsufficientRights)?;
    expect_ok("a slice of it at function 0", sys::pci_slice(one, 0, nested))?;
    let read_only = world.slot()?;
    expect_ok("mint read-only", sys::cap_mint(one, read_only, R, Badge::NONE))?;
    let narrow = world.slot()?;
    expect_ok("a slice of the read-only cap", sys::pci_slice(read_only, 0, narrow))?;
    expect_slot("rights never grow", narrow, Some((ObjectType::Pci, R, 0)))?;
    expect_err("into an occupied slot", sys::pci_slice(PCI, function, narrow), ErrorCode::SlotOccupied)?;
    expect_err("into slot 0", sys::pci_slice(PCI, function, CapSlot::new(0)), ErrorCode::InvalidSlot)?;
    Ok(())
}
