//! Address spaces and memory: `Map`/`Unmap` with every error path, frames shared only
//! through caps, W^X, and hostile puppets touching memory that is not theirs (kernel
//! memory, read-only and non-executable pages, another process's pages).

use libcap::process::{self, Access};
use libcap::sys;
use libcap::{Badge, CapSlot, ErrorCode, ObjectType, Sysno};

use crate::audit;
use crate::puppet::{CODE, DATA, End, Puppet, STACK_PAGE, Step, expect_fault, expect_ret};
use crate::world::{Case, Outcome, R, RW, W, World, create, expect_err, expect_ok};
use crate::ensure;

pub const CASES: &[Case] = &[
    Case { id: "MAP-001", what: "a frame mapped writable in one process and read-only in another: both see the page, the reader cannot write it", run: map_shared },
    Case { id: "MAP-002", what: "writable and executable, or unknown permission bits: InvalidArgument, nothing mapped", run: map_wx },
    Case { id: "MAP-003", what: "a frame cap without write, execute or read cannot be mapped so: InsufficientRights", run: map_rights },
    Case { id: "MAP-004", what: "kernel-half, non-canonical and misaligned addresses: InvalidArgument", run: map_addresses },
    Case { id: "MAP-005", what: "mapping over a mapped page: SlotOccupied, the old mapping stays", run: map_occupied },
    Case { id: "MAP-006", what: "an address-space cap without write, or caps of the wrong kind: InsufficientRights, WrongObjectType, EmptySlot", run: map_caps },
    Case { id: "MAP-007", what: "a frame mapped a ninth time: OutOfResources (the kernel records eight mappings per frame)", run: map_ninth },
    Case { id: "MAP-008", what: "W^X is per frame: a frame mapped writable is refused as executable at a second address, and the other way round", run: map_alias_wx },
    Case { id: "MAP-009", what: "a 16 KiB frame maps as one: all four pages usable; unmap inside it is InvalidArgument and changes nothing; unmap at its start removes every page", run: map_large },
    Case { id: "MAP-010", what: "a 16 KiB frame over a range with one page mapped: SlotOccupied, nothing of it mapped, the old page stays", run: map_large_occupied },
    Case { id: "UNMAP-001", what: "after unmap the page faults in its process", run: unmap_faults },
    Case { id: "UNMAP-002", what: "unmapping an unmapped, misaligned or kernel address: InvalidArgument; through no cap: EmptySlot", run: unmap_errors },
    Case { id: "FRAME-001", what: "deleting a frame's last cap unmaps it from every process before the page is freed", run: frame_delete_unmaps },
    Case { id: "FRAME-002", what: "revoking a frame cap removes the derived caps; a mapping made through one stays (documented caveat)", run: frame_revoke_mapping },
    Case { id: "FRAME-003", what: "a new frame reads as zeroes, whatever the last user of a page wrote", run: frame_zeroed },
    Case { id: "FRAME-004", what: "frame sizes that are not a power of two, under 4 KiB or over 2 MiB, and unknown flags: InvalidArgument; a 2 MiB frame below 4 GiB is contiguous, size-aligned and under 4 GiB", run: frame_sizes },
    Case { id: "FRAME-005", what: "a frame costs its size of quota: a 16 KiB frame fills a 16 KiB quota, one more page is OutOfQuota, deleting it refunds it all; single pages stop at the object-table share (two)", run: frame_quota },
    Case { id: "ISO-MEM-001", what: "reading the kernel image (every 64 KiB of its first 2 MiB) from user mode: page fault, only the reader stops", run: read_kernel_text },
    Case { id: "ISO-MEM-002", what: "writing kernel data: page fault", run: write_kernel_data },
    Case { id: "ISO-MEM-003", what: "reading the kernel's direct map of physical memory: page fault", run: read_direct_map },
    Case { id: "ISO-MEM-004", what: "jumping into kernel text: page fault on the fetch", run: jump_kernel },
    Case { id: "ISO-MEM-005", what: "writing its own code page: page fault (error 0x7)", run: write_code },
    Case { id: "ISO-MEM-006", what: "executing its own stack: page fault (error 0x15)", run: execute_stack },
    Case { id: "ISO-MEM-007", what: "executing a writable data page: page fault (error 0x15)", run: execute_data },
    Case { id: "ISO-MEM-008", what: "reading address 0: page fault", run: read_null },
    Case { id: "ISO-MEM-009", what: "a non-canonical address: general protection fault", run: read_noncanonical },
    Case { id: "ISO-MEM-010", what: "another process's memory: not mapped here (fault), the same address here is our own page, and our writes never reach it", run: other_process_memory },
];

fn map_raw(aspace: CapSlot, frame: CapSlot, address: u64, perms: u64) -> Result<(), ErrorCode> {
    let (rax, _) = sys::syscall_raw(Sysno::Map.as_u64(), [u64::from(aspace.index()), u64::from(frame.index()), address, perms, 0, 0, 0, 0, 0, 0]);
    audit::code(rax)
}

fn unmap_raw(aspace: CapSlot, address: u64) -> Result<(), ErrorCode> {
    let (rax, _) = sys::syscall_raw(Sysno::Unmap.as_u64(), [u64::from(aspace.index()), address, 0, 0, 0, 0, 0, 0, 0, 0]);
    audit::code(rax)
}

fn not_mapped(what: &str, puppet: &Puppet, address: u64) -> Outcome {
    expect_fault(what, puppet.load(address)?, 14, Some(address)).map(drop)
}

fn map_shared(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let writer = Puppet::new(world)?;
    let reader = Puppet::new(world)?;
    expect_ok("map writable", process::map(writer.aspace, frame, DATA, Access::ReadWrite))?;
    expect_ok("map read-only", process::map(reader.aspace, frame, DATA, Access::Read))?;
    expect_ret("write", writer.store(DATA + 8, 0x1234)?)?;
    let seen = expect_ret("read", reader.load(DATA + 8)?)?.rdi();
    ensure!(seen == 0x1234, "the reader saw {seen:#x}");
    let end = expect_fault("the reader writes", reader.store(DATA + 8, 1)?, 14, Some(DATA + 8))?;
    ensure!(matches!(end, End::Fault { error: 7, .. }), "error code {end:?}, expected 0x7 (present, write, user)");
    let still = expect_ret("read again", writer.load(DATA + 8)?)?.rdi();
    ensure!(still == 0x1234, "the page changed to {still:#x}");
    writer.teardown(world)?;
    reader.teardown(world)
}

fn map_wx(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let p = Puppet::new(world)?;
    expect_err("write+execute", map_raw(p.aspace, frame, DATA, 3), ErrorCode::InvalidArgument)?;
    expect_err("bit 2", map_raw(p.aspace, frame, DATA, 4), ErrorCode::InvalidArgument)?;
    expect_err("all bits", map_raw(p.aspace, frame, DATA, u64::MAX), ErrorCode::InvalidArgument)?;
    not_mapped("nothing was mapped", &p, DATA)?;
    p.teardown(world)
}

fn map_rights(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let [read_only, read_write, write_only] = world.slots::<3>()?;
    expect_ok("mint R", sys::cap_mint(frame, read_only, R, Badge::NONE))?;
    expect_ok("mint RW", sys::cap_mint(frame, read_write, RW, Badge::NONE))?;
    expect_ok("mint W", sys::cap_mint(frame, write_only, W, Badge::NONE))?;
    let p = Puppet::new(world)?;
    expect_err("R cap mapped writable", map_raw(p.aspace, read_only, DATA, 1), ErrorCode::InsufficientRights)?;
    expect_err("RW cap mapped executable", map_raw(p.aspace, read_write, DATA, 2), ErrorCode::InsufficientRights)?;
    expect_err("W cap mapped at all", map_raw(p.aspace, write_only, DATA, 0), ErrorCode::InsufficientRights)?;
    expect_ok("R cap mapped read-only", map_raw(p.aspace, read_only, DATA, 0))?;
    p.teardown(world)
}

fn map_addresses(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let p = Puppet::new(world)?;
    for address in [0xffff_8000_0000_0000, 0xffff_ffff_8020_0000, 1 << 47, !0xfff, DATA + 8, DATA + 0x800, u64::MAX] {
        expect_err("map at a bad address", map_raw(p.aspace, frame, address, 0), ErrorCode::InvalidArgument)?;
    }
    p.teardown(world)
}

fn map_occupied(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let p = Puppet::new(world)?;
    expect_err("over the code", map_raw(p.aspace, frame, CODE, 0), ErrorCode::SlotOccupied)?;
    expect_ok("map", map_raw(p.aspace, frame, DATA, 1))?;
    expect_ret("write", p.store(DATA, 5)?)?;
    let other = create(world, ObjectType::Frame)?;
    expect_err("over it", map_raw(p.aspace, other, DATA, 1), ErrorCode::SlotOccupied)?;
    let seen = expect_ret("read", p.load(DATA)?)?.rdi();
    ensure!(seen == 5, "the mapping changed: {seen}");
    p.teardown(world)
}

fn map_caps(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let e = create(world, ObjectType::Endpoint)?;
    let p = Puppet::new(world)?;
    let read_only = world.slot()?;
    expect_ok("mint R", sys::cap_mint(p.aspace, read_only, R, Badge::NONE))?;
    expect_err("through an R address-space cap", map_raw(read_only, frame, DATA, 0), ErrorCode::InsufficientRights)?;
    expect_err("an endpoint as the address space", map_raw(e, frame, DATA, 0), ErrorCode::WrongObjectType)?;
    expect_err("an endpoint as the frame", map_raw(p.aspace, e, DATA, 0), ErrorCode::WrongObjectType)?;
    expect_err("an empty slot as the frame", map_raw(p.aspace, world.slot()?, DATA, 0), ErrorCode::EmptySlot)?;
    expect_err("unmap through R", unmap_raw(read_only, CODE), ErrorCode::InsufficientRights)?;
    not_mapped("nothing mapped", &p, DATA)?;
    p.teardown(world)
}

fn map_ninth(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let p = Puppet::new(world)?;
    for mapping in 0..8u64 {
        expect_ok("one of eight", map_raw(p.aspace, frame, DATA + mapping * 0x1000, 0))?;
    }
    expect_err("ninth", map_raw(p.aspace, frame, DATA + 0x8000, 0), ErrorCode::OutOfResources)?;
    not_mapped("the ninth is not mapped", &p, DATA + 0x8000)?;
    p.teardown(world)
}

const LARGE: u64 = 16 * 1024;

fn create_large(world: &mut World) -> Result<CapSlot, crate::world::Fail> {
    let frame = world.slot()?;
    expect_ok("a 16 KiB frame", sys::frame_create(frame, LARGE, 0))?;
    let info = sys::frame_info(frame)?;
    ensure!(info.bytes == LARGE && info.phys % LARGE == 0, "FrameInfo says {info:?}, expected 16 KiB, 16 KiB-aligned");
    Ok(frame)
}

fn map_large(world: &mut World) -> Outcome {
    let frame = create_large(world)?;
    let p = Puppet::new(world)?;
    expect_ok("map", map_raw(p.aspace, frame, DATA, 1))?;
    for page in 0..4 {
        expect_ret("every page is writable", p.store(DATA + page * 0x1000 + 8, 0x1600 + page)?)?;
    }
    expect_err("unmap inside", unmap_raw(p.aspace, DATA + 0x2000), ErrorCode::InvalidArgument)?;
    let step = expect_ret("still there after the refused unmap", p.load(DATA + 0x2000 + 8)?)?;
    ensure!(step.rdi() == 0x1602, "read {:#x}, expected 0x1602", step.rdi());
    expect_ok("unmap at the start", unmap_raw(p.aspace, DATA))?;
    expect_err("a second unmap", unmap_raw(p.aspace, DATA), ErrorCode::InvalidArgument)?;
    not_mapped("the last page is gone too", &p, DATA + 0x3000)?;
    p.teardown(world)
}

fn map_large_occupied(world: &mut World) -> Outcome {
    let large = create_large(world)?;
    let small = create(world, ObjectType::Frame)?;
    let p = Puppet::new(world)?;
    expect_ok("map one page", map_raw(p.aspace, small, DATA + 0x2000, 1))?;
    expect_ret("write it", p.store(DATA + 0x2000, 0x5a)?)?;
    expect_err("16 KiB over it", map_raw(p.aspace, large, DATA, 1), ErrorCode::SlotOccupied)?;
    let step = expect_ret("the old page stays", p.load(DATA + 0x2000)?)?;
    ensure!(step.rdi() == 0x5a, "read {:#x}, expected 0x5a", step.rdi());
    not_mapped("nothing of the large frame is mapped", &p, DATA)?;
    p.teardown(world)
}

fn map_alias_wx(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let p = Puppet::new(world)?;
    expect_ok("writable alias", map_raw(p.aspace, frame, DATA, 1))?;
    expect_err("executable alias of a writable frame", map_raw(p.aspace, frame, DATA + 0x1000, 2), ErrorCode::InvalidArgument)?;
    expect_ret("the writable mapping still works", p.store(DATA, 0x0b0f)?)?;
    expect_ok("unmap the writable alias", unmap_raw(p.aspace, DATA))?;
    expect_ok("now executable", map_raw(p.aspace, frame, DATA + 0x1000, 2))?;
    expect_err("writable alias of an executable frame", map_raw(p.aspace, frame, DATA, 1), ErrorCode::InvalidArgument)?;
    p.teardown(world)
}

fn unmap_faults(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let p = Puppet::new(world)?;
    expect_ok("map", map_raw(p.aspace, frame, DATA, 1))?;
    expect_ret("use", p.store(DATA, 1)?)?;
    expect_ok("unmap", unmap_raw(p.aspace, DATA))?;
    let end = expect_fault("after unmap", p.load(DATA)?, 14, Some(DATA))?;
    ensure!(matches!(end, End::Fault { error: 4, .. }), "error code {end:?}, expected 0x4 (not present, read, user)");
    p.teardown(world)
}

fn unmap_errors(world: &mut World) -> Outcome {
    let p = Puppet::new(world)?;
    expect_err("not mapped", unmap_raw(p.aspace, DATA), ErrorCode::InvalidArgument)?;
    expect_err("misaligned", unmap_raw(p.aspace, CODE + 8), ErrorCode::InvalidArgument)?;
    expect_err("kernel half", unmap_raw(p.aspace, 0xffff_ffff_8020_0000), ErrorCode::InvalidArgument)?;
    expect_err("no cap", unmap_raw(world.slot()?, CODE), ErrorCode::EmptySlot)?;
    expect_ret("the code page is still there", p.load(CODE)?)?;
    p.teardown(world)
}

fn frame_delete_unmaps(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let a = Puppet::new(world)?;
    let b = Puppet::new(world)?;
    expect_ok("map in a", map_raw(a.aspace, frame, DATA, 1))?;
    expect_ok("map in b", map_raw(b.aspace, frame, DATA, 0))?;
    expect_ret("a writes", a.store(DATA, 9)?)?;
    expect_ok("delete the last cap", sys::cap_delete(frame))?;
    not_mapped("a after the delete", &a, DATA)?;
    not_mapped("b after the delete", &b, DATA)?;
    a.teardown(world)?;
    b.teardown(world)
}

fn frame_revoke_mapping(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let derived = world.slot()?;
    expect_ok("mint", sys::cap_mint(frame, derived, RW, Badge::NONE))?;
    let p = Puppet::new(world)?;
    expect_ok("map through the derived cap", map_raw(p.aspace, derived, DATA, 1))?;
    expect_ok("revoke", sys::cap_revoke(frame))?;
    ensure!(sys::cap_identify(derived) == Err(ErrorCode::EmptySlot), "the derived cap survived");
    // SECURITY.md: "Revoking a frame cap does not unmap it; only deleting the frame's last
    // cap does." Asserted as it is.
    expect_ret("the mapping stays", p.store(DATA, 3)?)?;
    expect_ok("delete the last cap", sys::cap_delete(frame))?;
    not_mapped("gone with the last cap", &p, DATA)?;
    p.teardown(world)
}

fn frame_sizes(world: &mut World) -> Outcome {
    use libcap::abi::syscall::frame_create::{BELOW_4GIB, MAX_BYTES};
    let slot = world.slot()?;
    for (what, bytes, flags) in [
        ("not a power of two", 12 * 1024, 0),
        ("under 4 KiB", 2048, 0),
        ("one byte", 1, 0),
        ("over 2 MiB", 2 * MAX_BYTES, 0),
        ("far over", u64::MAX, 0),
        ("unknown flag", 4096, 1 << 1),
        ("every flag", 4096, u64::MAX),
    ] {
        expect_err(what, sys::frame_create(slot, bytes, flags), ErrorCode::InvalidArgument)?;
        ensure!(sys::cap_identify(slot) == Err(ErrorCode::EmptySlot), "{what}: the slot was filled");
    }
    expect_ok("2 MiB below 4 GiB", sys::frame_create(slot, MAX_BYTES, BELOW_4GIB))?;
    let info = sys::frame_info(slot)?;
    ensure!(info.bytes == MAX_BYTES, "size {:#x}", info.bytes);
    ensure!(info.phys % MAX_BYTES == 0, "physical address {:#x} is not 2 MiB-aligned", info.phys);
    ensure!(info.phys + MAX_BYTES <= 1 << 32, "physical address {:#x} is not below 4 GiB", info.phys);
    expect_err("FrameInfo of a non-frame", sys::frame_info(world_endpoint(world)?), ErrorCode::WrongObjectType)?;
    Ok(())
}

fn world_endpoint(world: &mut World) -> Result<CapSlot, crate::world::Fail> {
    create(world, ObjectType::Endpoint)
}

fn frame_quota(world: &mut World) -> Outcome {
    use crate::puppet::Options;
    let frame = u64::from(ObjectType::Frame.as_u32());
    let p = Puppet::with(world, Options { quota: LARGE, ..Options::default() })?;
    p.sys_ok("16 KiB in a 16 KiB quota", Sysno::ObjectCreate, &[frame, 10, LARGE, 0])?;
    p.sys_err("one page more", Sysno::ObjectCreate, &[frame, 11, 4096, 0], ErrorCode::OutOfQuota)?;
    p.sys_ok("delete it", Sysno::CapDelete, &[10])?;
    p.sys_ok("16 KiB again", Sysno::ObjectCreate, &[frame, 10, LARGE, 0])?;
    p.sys_ok("delete it again", Sysno::CapDelete, &[10])?;
    // Single pages stop at the object-table share first: 16 KiB buys two objects.
    let objects = u64::from(libcap::abi::tables::share(libcap::abi::tables::Table::Objects, LARGE));
    for page in 0..objects {
        p.sys_ok("single pages up to the object share", Sysno::ObjectCreate, &[frame, 10 + page, 0, 0])?;
    }
    p.sys_err("one more object", Sysno::ObjectCreate, &[frame, 10 + objects, 0, 0], ErrorCode::OutOfQuota)?;
    p.teardown(world)
}

fn frame_zeroed(world: &mut World) -> Outcome {
    let first = create(world, ObjectType::Frame)?;
    let writer = Puppet::new(world)?;
    expect_ok("map", map_raw(writer.aspace, first, DATA, 1))?;
    for offset in [0u64, 8, 0x800, 0xff8] {
        expect_ret("write a secret", writer.store(DATA + offset, 0x005e_c7e700 + offset)?)?;
    }
    writer.teardown(world)?;
    expect_ok("free the page", sys::cap_delete(first))?;
    let second = create(world, ObjectType::Frame)?;
    let reader = Puppet::new(world)?;
    expect_ok("map", map_raw(reader.aspace, second, DATA, 0))?;
    for offset in [0u64, 8, 0x800, 0xff8] {
        let word = expect_ret("read", reader.load(DATA + offset)?)?.rdi();
        ensure!(word == 0, "a new frame holds {word:#x} at {offset:#x}");
    }
    reader.teardown(world)
}

fn fault_case(world: &mut World, what: &str, step: impl FnOnce(&Puppet) -> Result<Step, crate::world::Fail>, vector: u64, address: Option<u64>, error: Option<u64>) -> Outcome {
    let p = Puppet::new(world)?;
    let end = expect_fault(what, step(&p)?, vector, address)?;
    if let (Some(want), End::Fault { error: got, .. }) = (error, end) {
        ensure!(got == want, "{what}: error code {got:#x}, expected {want:#x}");
    }
    p.teardown(world)
}

/// Inside the kernel's text in any build (linked at -2 GiB + 2 MiB, boot stub first).
const KERNEL_TEXT: u64 = 0xffff_ffff_8021_0000;
const KERNEL_IMAGE: u64 = 0xffff_ffff_8020_0000;

fn read_kernel_text(world: &mut World) -> Outcome {
    // Every 64 KiB of the first 2 MiB of the kernel image: text, rodata, data and bss.
    for address in (KERNEL_IMAGE..KERNEL_IMAGE + 0x20_0000).step_by(0x1_0000) {
        fault_case(world, "read the kernel image", |p| p.load(address), 14, Some(address), None)?;
    }
    Ok(())
}

fn write_kernel_data(world: &mut World) -> Outcome {
    let address = KERNEL_IMAGE + 0x10_0000;
    fault_case(world, "write kernel memory", |p| p.store(address, 1), 14, Some(address), None)
}

fn read_direct_map(world: &mut World) -> Outcome {
    let address = 0xffff_8000_0010_0000;
    fault_case(world, "read the direct map", |p| p.load(address), 14, Some(address), None)
}

fn jump_kernel(world: &mut World) -> Outcome {
    fault_case(world, "jump into kernel text", |p| p.jump(KERNEL_TEXT), 14, Some(KERNEL_TEXT), None)
}

fn write_code(world: &mut World) -> Outcome {
    fault_case(world, "write the code page", |p| p.store(CODE + 0x10, 0), 14, Some(CODE + 0x10), Some(7))
}

fn execute_stack(world: &mut World) -> Outcome {
    fault_case(world, "execute the stack", |p| p.jump(STACK_PAGE + 0x100), 14, Some(STACK_PAGE + 0x100), Some(0x15))
}

fn execute_data(world: &mut World) -> Outcome {
    let frame = create(world, ObjectType::Frame)?;
    let p = Puppet::new(world)?;
    expect_ok("map writable", map_raw(p.aspace, frame, DATA, 1))?;
    expect_ret("write ud2", p.store(DATA, 0x0b0f)?)?;
    let end = expect_fault("execute it", p.jump(DATA)?, 14, Some(DATA))?;
    ensure!(matches!(end, End::Fault { error: 0x15, .. }), "error code {end:?}");
    p.teardown(world)
}

fn read_null(world: &mut World) -> Outcome {
    fault_case(world, "read address 0", |p| p.load(0), 14, Some(0), Some(4))
}

fn read_noncanonical(world: &mut World) -> Outcome {
    fault_case(world, "a non-canonical read", |p| p.load(0x0000_8000_0000_0000), 13, None, None)
}

fn other_process_memory(world: &mut World) -> Outcome {
    let victim_page = create(world, ObjectType::Frame)?;
    let victim = Puppet::new(world)?;
    expect_ok("the victim's page", map_raw(victim.aspace, victim_page, DATA, 1))?;
    expect_ret("the victim writes its secret", victim.store(DATA, 0x005e_c7e7)?)?;
    let prober = Puppet::new(world)?;
    not_mapped("another process reads the victim's address", &prober, DATA)?;
    prober.teardown(world)?;
    let own_page = create(world, ObjectType::Frame)?;
    let attacker = Puppet::new(world)?;
    expect_ok("the attacker's own page there", map_raw(attacker.aspace, own_page, DATA, 1))?;
    let seen = expect_ret("the attacker reads its own page", attacker.load(DATA)?)?.rdi();
    ensure!(seen == 0, "the attacker saw {seen:#x}");
    expect_ret("the attacker writes", attacker.store(DATA, 0xbad)?)?;
    let secret = expect_ret("the victim reads", victim.load(DATA)?)?.rdi();
    ensure!(secret == 0x005e_c7e7, "the victim's page changed to {secret:#x}");
    victim.teardown(world)?;
    attacker.teardown(world)
}
