//! Borrowed frames and `FrameSlice`: the initrd as a read-only frame, cut into slices that
//! share its pages without copying them.
//!
//! The suite holds init's initrd frame (read, grant) at [`INITRD_FRAME`], minted by the
//! harness from init's `INIT_INITRD_FRAME_SLOT`, and a copy of the initrd's bytes (its start
//! arguments), so every word a puppet reads through a slice is checked against the module.
//! The frame starts at the initrd's first page: module byte 0 is at frame offset
//! `delta = FrameInfo.bytes - initrd length` (the module's offset in its first page).

use alloc::vec::Vec;

use libcap::process::{self, Access};
use libcap::sys;
use libcap::{Badge, CapSlot, ErrorCode, ObjectType, Rights, Sysno};

use crate::audit;
use crate::puppet::{DATA, End, Options, Puppet, expect_fault, expect_ret};
use crate::world::{Case, Fail, G, INITRD_FRAME, Outcome, R, World, create, expect_err, expect_ok, expect_slot};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "FRAME-SLICE-001", what: "init's initrd frame, as the suite holds it: a frame with read and grant only, FrameInfo the bytes from the initrd's first page to its end; mapped read-only it shows the initrd's own bytes", run: initrd_frame },
    Case { id: "FRAME-SLICE-002", what: "slicing an owned frame (4 KiB, 16 KiB): IllegalOperation; through a cap without read, a non-frame, an empty or out-of-range slot: InsufficientRights, WrongObjectType, EmptySlot, InvalidSlot; the destination stays empty", run: source_errors },
    Case { id: "FRAME-SLICE-003", what: "a misaligned offset, a zero length, a range past the source's end by one byte or a page, and u64::MAX or wrapping offsets and lengths: InvalidArgument; the range is judged before the destination, the destination (occupied, 0, 128) before the quota", run: range_errors },
    Case { id: "FRAME-SLICE-004", what: "a slice's FrameInfo reports exactly the length asked (1, 100, 4095, 4096, 4097, 3 pages + 5) and the physical address of its first page; its cap has exactly the source cap's rights (a read-only mint slices read-only)", run: slice_info },
    Case { id: "FRAME-SLICE-005", what: "a slice cannot be mapped writable or executable (InsufficientRights, nothing mapped); mapped read-only, a store faults (0x7) and a jump faults (0x15)", run: slice_read_only },
    Case { id: "FRAME-SLICE-006", what: "deleting a slice mapped in two processes unmaps it from both; no page is freed or zeroed: free frames as before, and a new slice still reads the initrd's bytes", run: slice_delete_unmaps },
    Case { id: "FRAME-SLICE-007", what: "a slice destroyed while mapped, its object index reused by a new ordinary frame: the old address faults and cannot be unmapped, the new frame reads zeroes and is reached only where it is mapped", run: slice_index_reuse },
    Case { id: "FRAME-SLICE-008", what: "a slice of a slice is bounded by the inner slice's length (not its pages), maps the right pages, and outlives the inner slice", run: slice_of_slice },
    Case { id: "FRAME-SLICE-009", what: "a slice is charged like a created object: 64 bytes of quota and an object-table entry (a 16 KiB quota makes two, the third is OutOfQuota), refunded when it goes", run: slice_quota },
];

const PAGE: u64 = 4096;

/// The initrd frame's size, the module's offset in its first page, and the module's bytes.
struct Initrd {
    bytes: u64,
    phys: u64,
    delta: u64,
    copy: &'static [u8],
}

fn initrd() -> Result<Initrd, Fail> {
    let Some(copy) = libcap::rt::initrd() else { fail!("the harness passed no initrd copy") };
    let info = expect_ok("FrameInfo of the initrd frame", sys::frame_info(INITRD_FRAME))?;
    let length = copy.len() as u64;
    ensure!(info.bytes >= length && info.bytes - length < PAGE, "the initrd frame is {} bytes for an initrd of {length}", info.bytes);
    ensure!(info.phys % PAGE == 0, "the initrd frame starts at {:#x}, not a page", info.phys);
    ensure!(info.bytes >= 4 * PAGE, "the initrd is too small for these cases: {} bytes", info.bytes);
    Ok(Initrd { bytes: info.bytes, phys: info.phys, delta: info.bytes - length, copy })
}

impl Initrd {
    /// The initrd's word at frame offset `offset` (whole inside the module).
    fn word(&self, offset: u64) -> Result<u64, Fail> {
        let start = offset.checked_sub(self.delta).and_then(|s| usize::try_from(s).ok());
        let bytes = start.and_then(|s| self.copy.get(s..s + 8));
        match bytes {
            Some(bytes) => {
                let mut word = [0u8; 8];
                word.copy_from_slice(bytes);
                Ok(u64::from_le_bytes(word))
            }
            None => fail!("frame offset {offset:#x} is not inside the initrd"),
        }
    }

    /// Frame offsets of words inside the module, in the page at `page_offset` and the next.
    fn probes(&self, page_offset: u64, pages: u64) -> Vec<u64> {
        let mut out = Vec::new();
        for page in 0..pages {
            for within in [0x10u64, 0x808, 0xff0] {
                let at = page_offset + page * PAGE + within;
                if at >= self.delta && at + 8 <= self.bytes {
                    out.push(at);
                }
            }
        }
        out
    }
}

fn slice(source: CapSlot, offset: u64, length: u64, dest: CapSlot) -> Result<(), ErrorCode> {
    sys::frame_slice(source, offset, length, dest)
}

fn slice_raw(words: [u64; 4]) -> Result<(), ErrorCode> {
    let [a, b, c, d] = words;
    let (rax, _) = sys::syscall_raw(Sysno::FrameSlice.as_u64(), [a, b, c, d, 0, 0, 0, 0, 0, 0]);
    audit::code(rax)
}

fn map_raw(aspace: CapSlot, frame: CapSlot, address: u64, perms: u64) -> Result<(), ErrorCode> {
    let (rax, _) = sys::syscall_raw(Sysno::Map.as_u64(), [u64::from(aspace.index()), u64::from(frame.index()), address, perms, 0, 0, 0, 0, 0, 0]);
    audit::code(rax)
}

fn not_mapped(what: &str, puppet: &Puppet, address: u64) -> Outcome {
    expect_fault(what, puppet.load(address)?, 14, Some(address)).map(drop)
}

/// Every probe of frame offsets `[offset, offset + pages)` reads the initrd's word through
/// `puppet`'s mapping of them at `base`.
fn reads_initrd(what: &str, initrd: &Initrd, puppet: &Puppet, base: u64, offset: u64, pages: u64) -> Outcome {
    let probes = initrd.probes(offset, pages);
    ensure!(!probes.is_empty(), "{what}: nothing to probe");
    for at in probes {
        let seen = expect_ret(what, puppet.load(base + (at - offset))?)?.rdi();
        let want = initrd.word(at)?;
        ensure!(seen == want, "{what}: frame offset {at:#x} reads {seen:#x}, the initrd holds {want:#x}");
    }
    Ok(())
}

fn initrd_frame(world: &mut World) -> Outcome {
    let initrd = initrd()?;
    expect_slot("the initrd frame", INITRD_FRAME, Some((ObjectType::Frame, R.union(G), 0)))?;
    // The whole frame is one slice of itself.
    let whole = world.slot()?;
    expect_ok("a slice of all of it", slice(INITRD_FRAME, 0, initrd.bytes, whole))?;
    let info = sys::frame_info(whole)?;
    ensure!(info.bytes == initrd.bytes && info.phys == initrd.phys, "the whole slice is {info:?}");
    // Its first, middle and last pages, read-only, hold the module's bytes.
    let last = (initrd.bytes - 1) / PAGE * PAGE;
    let p = Puppet::new(world)?;
    for (index, offset) in [0, (initrd.bytes / 2) / PAGE * PAGE, last].into_iter().enumerate() {
        let page = world.slot()?;
        expect_ok("a one-page slice", slice(INITRD_FRAME, offset, PAGE.min(initrd.bytes - offset), page))?;
        let at = DATA + index as u64 * 0x4_0000;
        expect_ok("map it read-only", process::map(p.aspace, page, at, Access::Read))?;
        reads_initrd("the initrd through the frame", &initrd, &p, at, offset, 1)?;
    }
    p.teardown(world)
}

fn source_errors(world: &mut World) -> Outcome {
    let dest = world.slot()?;
    let small = create(world, ObjectType::Frame)?;
    let large = world.slot()?;
    expect_ok("a 16 KiB frame", sys::frame_create(large, 16 * 1024, 0))?;
    expect_err("a slice of an owned page", slice(small, 0, PAGE, dest), ErrorCode::IllegalOperation)?;
    expect_err("a slice of an owned 16 KiB frame", slice(large, PAGE, PAGE, dest), ErrorCode::IllegalOperation)?;
    expect_err("an owned frame with a bad range too", slice(small, 1, 0, dest), ErrorCode::IllegalOperation)?;
    let grant_only = world.slot()?;
    expect_ok("mint the initrd frame grant-only", sys::cap_mint(INITRD_FRAME, grant_only, G, Badge::NONE))?;
    expect_err("through a cap without read", slice(grant_only, 0, PAGE, dest), ErrorCode::InsufficientRights)?;
    let endpoint = create(world, ObjectType::Endpoint)?;
    expect_err("an endpoint as the source", slice(endpoint, 0, PAGE, dest), ErrorCode::WrongObjectType)?;
    expect_err("an empty source", slice(world.slot()?, 0, PAGE, dest), ErrorCode::EmptySlot)?;
    expect_err("source slot 128", slice_raw([128, 0, PAGE, u64::from(dest.index())]), ErrorCode::InvalidSlot)?;
    expect_err("source slot 2^32", slice_raw([1 << 32, 0, PAGE, u64::from(dest.index())]), ErrorCode::InvalidSlot)?;
    expect_slot("the destination", dest, None)?;
    Ok(())
}

fn range_errors(world: &mut World) -> Outcome {
    let initrd = initrd()?;
    let dest = world.slot()?;
    let end = initrd.bytes;
    let top_page = !(PAGE - 1);
    for (what, offset, length) in [
        ("offset 1", 1, PAGE),
        ("offset 0x800", 0x800, 8),
        ("offset 0xfff", 0xfff, 1),
        ("offset one page + 8", PAGE + 8, 8),
        ("length 0", 0, 0),
        ("length 0 at a page", PAGE, 0),
        ("one byte past the end", 0, end + 1),
        ("the last page, one byte too long", (end - 1) / PAGE * PAGE, end - (end - 1) / PAGE * PAGE + 1),
        ("starting at the end", end.next_multiple_of(PAGE), 1),
        ("a page past the end", end.next_multiple_of(PAGE) + PAGE, PAGE),
        ("offset u64::MAX", u64::MAX, 1),
        ("offset the top page", top_page, PAGE),
        ("length u64::MAX", 0, u64::MAX),
        ("length u64::MAX from a page", PAGE, u64::MAX),
        ("a range that wraps to 0", PAGE, u64::MAX - PAGE + 1),
        ("a range that wraps past 0", top_page, 2 * PAGE),
        ("both u64::MAX", u64::MAX, u64::MAX),
    ] {
        expect_err(what, slice(INITRD_FRAME, offset, length, dest), ErrorCode::InvalidArgument)?;
        expect_slot(what, dest, None)?;
    }
    // The range is judged before the destination; the destination before the quota.
    let occupied = create(world, ObjectType::Endpoint)?;
    expect_err("a bad range into an occupied slot", slice(INITRD_FRAME, 1, 1, occupied), ErrorCode::InvalidArgument)?;
    expect_err("a bad range into slot 0", slice(INITRD_FRAME, 0, 0, CapSlot::new(0)), ErrorCode::InvalidArgument)?;
    expect_err("a good range into an occupied slot", slice(INITRD_FRAME, 0, PAGE, occupied), ErrorCode::SlotOccupied)?;
    expect_slot("the occupied slot", occupied, Some((ObjectType::Endpoint, Rights::ALL, 0)))?;
    expect_err("into slot 0", slice(INITRD_FRAME, 0, PAGE, CapSlot::new(0)), ErrorCode::InvalidSlot)?;
    expect_err("into slot 128", slice_raw([u64::from(INITRD_FRAME.index()), 0, PAGE, 128]), ErrorCode::InvalidSlot)?;
    expect_err("into slot 2^32", slice_raw([u64::from(INITRD_FRAME.index()), 0, PAGE, 1 << 32]), ErrorCode::InvalidSlot)?;
    // The exact end is fine.
    let last = (end - 1) / PAGE * PAGE;
    expect_ok("up to the last byte", slice(INITRD_FRAME, last, end - last, dest))?;
    Ok(())
}

fn slice_info(world: &mut World) -> Outcome {
    let initrd = initrd()?;
    let rg = R.union(G);
    for length in [1, 100, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE + 5] {
        let dest = world.slot()?;
        expect_ok("a slice", slice(INITRD_FRAME, PAGE, length, dest))?;
        let info = sys::frame_info(dest)?;
        ensure!(info.bytes == length, "a slice of {length} bytes reports {}", info.bytes);
        ensure!(info.phys == initrd.phys + PAGE, "a slice at offset 4096 starts at {:#x}, the frame at {:#x}", info.phys, initrd.phys);
        expect_slot("its cap has the source's rights", dest, Some((ObjectType::Frame, rg, 0)))?;
    }
    let read_only = world.slot()?;
    expect_ok("mint read-only", sys::cap_mint(INITRD_FRAME, read_only, R, Badge::NONE))?;
    let narrow = world.slot()?;
    expect_ok("a slice of the read-only cap", slice(read_only, 0, PAGE, narrow))?;
    expect_slot("rights never grow", narrow, Some((ObjectType::Frame, R, 0)))?;
    // The source's FrameInfo is unchanged.
    ensure!(sys::frame_info(INITRD_FRAME)?.bytes == initrd.bytes, "slicing changed the source");
    Ok(())
}

fn slice_read_only(world: &mut World) -> Outcome {
    let initrd = initrd()?;
    let s = world.slot()?;
    expect_ok("a two-page slice", slice(INITRD_FRAME, PAGE, 2 * PAGE, s))?;
    let p = Puppet::new(world)?;
    expect_err("mapped writable", map_raw(p.aspace, s, DATA, 1), ErrorCode::InsufficientRights)?;
    expect_err("mapped executable", map_raw(p.aspace, s, DATA, 2), ErrorCode::InsufficientRights)?;
    expect_err("writable and executable", map_raw(p.aspace, s, DATA, 3), ErrorCode::InvalidArgument)?;
    expect_err("nothing was mapped", process::unmap(p.aspace, DATA), ErrorCode::InvalidArgument)?;
    expect_ok("mapped read-only", map_raw(p.aspace, s, DATA, 0))?;
    reads_initrd("read-only", &initrd, &p, DATA, PAGE, 2)?;
    let end = expect_fault("a store into the slice", p.store(DATA + PAGE + 8, 1)?, 14, Some(DATA + PAGE + 8))?;
    ensure!(matches!(end, End::Fault { error: 7, .. }), "error code {end:?}, expected 0x7 (present, write, user)");
    p.teardown(world)?;
    let q = Puppet::new(world)?;
    expect_ok("mapped read-only again", map_raw(q.aspace, s, DATA, 0))?;
    let end = expect_fault("a jump into the slice", q.jump(DATA)?, 14, Some(DATA))?;
    ensure!(matches!(end, End::Fault { error: 0x15, .. }), "error code {end:?}, expected 0x15 (present, fetch, user)");
    q.teardown(world)?;
    reads_unchanged(world, &initrd, PAGE, 2)
}

/// A fresh slice of `[offset, offset + pages)` still reads the initrd's bytes.
fn reads_unchanged(world: &mut World, initrd: &Initrd, offset: u64, pages: u64) -> Outcome {
    let s = world.slot()?;
    expect_ok("a fresh slice", slice(INITRD_FRAME, offset, pages * PAGE, s))?;
    let p = Puppet::new(world)?;
    expect_ok("map it", map_raw(p.aspace, s, DATA, 0))?;
    reads_initrd("the initrd afterwards", initrd, &p, DATA, offset, pages)?;
    p.teardown(world)?;
    expect_ok("delete the fresh slice", sys::cap_delete(s))
}

fn free_frames() -> Result<u64, Fail> {
    Ok(expect_ok("AuditMemory", sys::audit_memory(crate::world::AUDIT))?.free_frames)
}

fn slice_delete_unmaps(world: &mut World) -> Outcome {
    let initrd = initrd()?;
    // Making and deleting a slice takes and gives back no physical frame.
    let free = free_frames()?;
    let unmapped = world.slot()?;
    expect_ok("a slice never mapped", slice(INITRD_FRAME, PAGE, 2 * PAGE, unmapped))?;
    ensure!(free_frames()? == free, "making a slice took physical frames");
    expect_ok("delete it", sys::cap_delete(unmapped))?;
    ensure!(free_frames()? == free, "free frames {free} before the slice, {} after it went: a borrowed page was freed", free_frames()?);
    // Mapped in two processes, deleted: gone from both.
    let s = world.slot()?;
    expect_ok("a three-page slice", slice(INITRD_FRAME, 0, 3 * PAGE, s))?;
    let a = Puppet::new(world)?;
    let b = Puppet::new(world)?;
    expect_ok("map in a", map_raw(a.aspace, s, DATA, 0))?;
    expect_ok("map in b", map_raw(b.aspace, s, DATA + 0x10_0000, 0))?;
    reads_initrd("a", &initrd, &a, DATA, 0, 3)?;
    reads_initrd("b", &initrd, &b, DATA + 0x10_0000, 0, 3)?;
    expect_ok("delete the slice", sys::cap_delete(s))?;
    expect_err("unmap in a: nothing there any more", process::unmap(a.aspace, DATA), ErrorCode::InvalidArgument)?;
    not_mapped("a's first page after the delete", &a, DATA)?;
    not_mapped("b's last page after the delete", &b, DATA + 0x10_0000 + 2 * PAGE)?;
    a.teardown(world)?;
    b.teardown(world)?;
    // Nothing was zeroed.
    reads_unchanged(world, &initrd, 0, 3)
}

fn slice_index_reuse(world: &mut World) -> Outcome {
    let initrd = initrd()?;
    let s = world.slot()?;
    expect_ok("a one-page slice", slice(INITRD_FRAME, PAGE, PAGE, s))?;
    let old = audit::audit_cap(u64::from(world.own_space), u64::from(s.index()))?.object;
    let p = Puppet::new(world)?;
    expect_ok("map the slice", map_raw(p.aspace, s, DATA, 0))?;
    reads_initrd("the slice", &initrd, &p, DATA, PAGE, 1)?;
    expect_ok("delete the slice", sys::cap_delete(s))?;
    // The lowest free entry is the slice's, in the cap store and in the frame table alike
    // (nothing else was freed in between): the next frame takes it, and with it the tag the
    // slice's page-table entries carried.
    let fresh = world.slot()?;
    expect_ok("an ordinary frame", sys::object_create(fresh, ObjectType::Frame, 0))?;
    let new = audit::audit_cap(u64::from(world.own_space), u64::from(fresh.index()))?.object;
    ensure!(new == old, "the new frame is object {new}, the slice was {old}: the index was not reused, the case proves nothing");
    let info = sys::frame_info(fresh)?;
    ensure!(info.bytes == PAGE && info.phys != initrd.phys + PAGE, "the new frame is {info:?}");
    expect_ok("map the new frame writable in the same process", map_raw(p.aspace, fresh, DATA + 0x10_0000, 1))?;
    let zero = expect_ret("it reads zeroes", p.load(DATA + 0x10_0000 + 0x10)?)?.rdi();
    ensure!(zero == 0, "the new frame holds {zero:#x}");
    expect_ret("write it", p.store(DATA + 0x10_0000 + 0x10, 0x5eed)?)?;
    expect_err("unmap at the slice's old address", process::unmap(p.aspace, DATA), ErrorCode::InvalidArgument)?;
    expect_ok("the new frame's own mapping unmaps", process::unmap(p.aspace, DATA + 0x10_0000))?;
    expect_ok("and maps again, read-only", map_raw(p.aspace, fresh, DATA + 0x8_0000, 0))?;
    let seen = expect_ret("read it there", p.load(DATA + 0x8_0000 + 0x10)?)?.rdi();
    ensure!(seen == 0x5eed, "the new frame reads {seen:#x}");
    not_mapped("the slice's old address", &p, DATA)?;
    p.teardown(world)
}

fn slice_of_slice(world: &mut World) -> Outcome {
    let initrd = initrd()?;
    let inner = world.slot()?;
    let length = PAGE + 904; // 5000 bytes: two pages
    expect_ok("the inner slice", slice(INITRD_FRAME, PAGE, length, inner))?;
    let dest = world.slot()?;
    for (what, offset, len) in [
        ("one byte past the inner length", 0, length + 1),
        ("inside its second page but past its length", PAGE, 905),
        ("its third page (inside the initrd)", 2 * PAGE, 1),
        ("a page of the initrd beyond it", 2 * PAGE, PAGE),
    ] {
        expect_err(what, slice(inner, offset, len, dest), ErrorCode::InvalidArgument)?;
    }
    expect_ok("up to the inner slice's last byte", slice(inner, PAGE, 904, dest))?;
    let info = sys::frame_info(dest)?;
    ensure!(info.bytes == 904 && info.phys == initrd.phys + 2 * PAGE, "the nested slice is {info:?}");
    let whole = world.slot()?;
    expect_ok("all of the inner slice", slice(inner, 0, length, whole))?;
    ensure!(sys::frame_info(whole)?.bytes == length, "the nested whole slice is {:?}", sys::frame_info(whole));
    expect_ok("delete the inner slice", sys::cap_delete(inner))?;
    let p = Puppet::new(world)?;
    expect_ok("map the nested slice", map_raw(p.aspace, dest, DATA, 0))?;
    reads_initrd("the nested slice, its source gone", &initrd, &p, DATA, 2 * PAGE, 1)?;
    not_mapped("one page only", &p, DATA + PAGE)?;
    p.teardown(world)
}

fn slice_quota(world: &mut World) -> Outcome {
    const QUOTA: u64 = 16 * 1024;
    let p = Puppet::with(world, Options { quota: QUOTA, ..Options::default() })?;
    expect_ok("give the puppet the initrd frame", p.give(INITRD_FRAME, 3, R, 0))?;
    let thread = expect_ok("identify the puppet's thread", sys::cap_identify(p.thread))?.audit_index;
    let used = || -> Result<u64, Fail> { Ok(expect_ok("AuditThread", sys::audit_thread(crate::world::AUDIT, thread))?.quota_used) };
    let before = used()?;
    let number = Sysno::FrameSlice;
    p.sys_ok("a slice", number, &[3, 0, 1, 10])?;
    ensure!(used()? == before + libcap::abi::syscall::frame_slice::COST, "a slice charged {} bytes", used()? - before);
    let objects = u64::from(libcap::abi::tables::share(libcap::abi::tables::Table::Objects, QUOTA));
    for slot in 1..objects {
        p.sys_ok("slices up to the object share", number, &[3, 0, PAGE, 10 + slot])?;
    }
    p.sys_err("one more", number, &[3, 0, PAGE, 10 + objects], ErrorCode::OutOfQuota)?;
    ensure!(p.slot(u32::try_from(10 + objects).unwrap_or(0))?.is_none(), "the refused slice's slot was filled");
    let record = p.slot(10)?;
    ensure!(record.is_some_and(|r| r.rights == u64::from(R.bits())), "the puppet's slice: {record:?}");
    for slot in 0..objects {
        p.sys_ok("delete a slice", Sysno::CapDelete, &[10 + slot])?;
    }
    ensure!(used()? == before, "after deleting the slices the quota is at {}, was {before}", used()?);
    p.sys_ok("one again", number, &[3, 0, PAGE, 10])?;
    p.teardown(world)
}
