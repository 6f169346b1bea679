//! User-program ELF parsing: validate a static-PIE ELF64 and produce a [`LoadPlan`].
//!
//! User programs are static position-independent executables (see libcap's "Build model"):
//! `ET_DYN`, linked at base 0, no interpreter, no shared libraries, and only
//! `R_X86_64_RELATIVE` relocations. The kernel's loader picks a page-aligned `base`, then
//! follows the plan:
//!
//! 1. For each [`Segment`]: map fresh zeroed pages over
//!    `base + page_start() .. base + page_end()`, copy [`Segment::data`] to
//!    `base + vaddr()`. Map with [`Segment::permissions`] only after step 2, or map
//!    writable-for-the-kernel first: relocations may target any writable segment.
//! 2. For each [`Relocation`] of [`LoadPlan::relocations`]: write the little-endian `u64`
//!    [`Relocation::value`]`(base)` at `base + offset()`.
//! 3. Optionally make [`LoadPlan::relro`] read-only (rounded down to pages at both ends, as
//!    glibc does).
//! 4. Start the thread at `base + entry()` (see libcap's "What the kernel provides at
//!    entry").
//!
//! # Trust
//!
//! The input is untrusted bytes. Every read is bounds-checked, every sum is checked, and
//! nothing here can panic (the clippy lints below keep it so). Everything the plan says
//! has been validated when [`parse`] returns `Ok`; see [`LoadPlan`]'s invariants. The checks
//! exist so that the kernel can follow the plan without further checks of its own: the
//! program's *contents* are never trusted, only its *shape*.
#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use core::ops::Range;

/// Page size the plan is aligned to.
pub const PAGE_SIZE: u64 = 4096;
/// The most loadable segments a program may have (ours have four: R, RX, RW relro, RW).
pub const MAX_SEGMENTS: usize = 8;
/// The most program headers a program may have.
pub const MAX_PROGRAM_HEADERS: usize = 64;
/// Every segment must end at or below this offset from the base: 1 GiB. This bounds the
/// address space a program's image takes, and makes `base + offset` safe for any base at
/// least this far below the top of user space.
pub const MAX_IMAGE_SIZE: u64 = 1 << 30;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const DYN_SIZE: usize = 16;
const RELA_SIZE: usize = 24;

const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
const EV_CURRENT: u8 = 1;
const ELFOSABI_SYSV: u8 = 0;
const ELFOSABI_GNU: u8 = 3;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_TLS: u32 = 7;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PT_GNU_RELRO: u32 = 0x6474_e552;

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_PLTRELSZ: u64 = 2;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_RELAENT: u64 = 9;
const DT_INIT: u64 = 12;
const DT_RELSZ: u64 = 18;
const DT_TEXTREL: u64 = 22;
const DT_INIT_ARRAYSZ: u64 = 27;
const DT_FLAGS: u64 = 30;
const DT_PREINIT_ARRAYSZ: u64 = 33;
const DT_RELRSZ: u64 = 35;
const DF_TEXTREL: u64 = 0x4;

const R_X86_64_RELATIVE: u32 = 8;

/// Which check an ELF failed. Each variant names one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than an ELF header.
    TooShort,
    /// `e_ident` does not start with `\x7fELF`.
    BadMagic,
    /// Not `ELFCLASS64`.
    NotElf64,
    /// Not little-endian.
    NotLittleEndian,
    /// `e_ident[EI_VERSION]` or `e_version` is not 1.
    BadVersion,
    /// OS ABI is neither System V nor GNU.
    BadOsAbi,
    /// `e_machine` is not x86_64.
    NotX86_64,
    /// `e_type` is not `ET_DYN`: the program is not position-independent.
    NotPositionIndependent,
    /// `e_ehsize` or `e_phentsize` is not the ELF64 size.
    BadHeaderSize,
    /// The program header table is empty, has more than [`MAX_PROGRAM_HEADERS`] entries,
    /// or lies (partly) outside the file.
    BadProgramHeaderTable,
    /// A `PT_INTERP`: the program wants a dynamic linker.
    InterpreterRequested,
    /// A `PT_TLS`: thread-local storage is not supported.
    TlsUnsupported,
    /// A loadable segment's file bytes lie (partly) outside the file.
    SegmentOutsideFile,
    /// A loadable segment has more file bytes than memory bytes.
    FileSizeExceedsMemSize,
    /// A loadable segment's address and file offset differ modulo the page size.
    MisalignedSegment,
    /// A loadable segment ends above [`MAX_IMAGE_SIZE`].
    ImageTooLarge,
    /// A loadable segment is both writable and executable.
    WritableAndExecutable,
    /// Two loadable segments share a page.
    OverlappingSegments,
    /// More than [`MAX_SEGMENTS`] loadable segments.
    TooManySegments,
    /// No loadable segment with a non-zero size.
    NoLoadableSegment,
    /// The entry point is not inside the file bytes of an executable segment.
    EntryNotExecutable,
    /// `PT_GNU_STACK` asks for an executable stack.
    ExecutableStack,
    /// No `PT_GNU_STACK`: the program does not say its stack may be non-executable.
    MissingStackHeader,
    /// More than one `PT_DYNAMIC`, `PT_GNU_STACK` or `PT_GNU_RELRO`.
    DuplicateProgramHeader,
    /// `PT_DYNAMIC` lies (partly) outside the file.
    DynamicOutsideFile,
    /// The dynamic table has no `DT_NULL` terminator, or repeats a relocation tag.
    MalformedDynamicTable,
    /// `DT_NEEDED`: the program wants a shared library.
    NeedsSharedLibrary,
    /// `DT_TEXTREL` or `DF_TEXTREL`: relocations in read-only segments.
    TextRelocations,
    /// `DT_INIT`, `DT_INIT_ARRAY` or `DT_PREINIT_ARRAY`: constructors, which nothing runs.
    Initializers,
    /// `DT_REL`, `DT_RELR` or PLT relocations: only a `DT_RELA` table is supported.
    UnsupportedRelocationTable,
    /// `DT_RELA` without `DT_RELASZ` or the other way round.
    IncompleteRelocationTable,
    /// `DT_RELAENT` is not 24, or `DT_RELASZ` is not a multiple of it.
    BadRelocationEntrySize,
    /// The `DT_RELA` table is not inside the file bytes of one loadable segment.
    RelocationTableOutsideImage,
    /// Relocation number `index` is not `R_X86_64_RELATIVE` with symbol 0 (its `r_info`
    /// is given).
    UnsupportedRelocation { index: usize, info: u64 },
    /// Relocation number `index` writes outside every writable segment.
    RelocationOutsideWritableSegment { index: usize },
    /// `PT_GNU_RELRO` is not inside one writable segment.
    RelroOutsideWritableSegment,
}

/// What a segment may be mapped as. Never both writable and executable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permissions {
    read: bool,
    write: bool,
    execute: bool,
}

impl Permissions {
    /// Mapped readable.
    pub fn readable(self) -> bool {
        self.read
    }
    /// Mapped writable (then never executable).
    pub fn writable(self) -> bool {
        self.write
    }
    /// Mapped executable (then never writable).
    pub fn executable(self) -> bool {
        self.execute
    }
}

/// One loadable segment, as offsets from the load base.
///
/// # Invariants
/// `vaddr + mem_size <= MAX_IMAGE_SIZE`, `data.len() <= mem_size`, and the permissions are
/// not writable-and-executable. Private fields; only [`parse`] builds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    vaddr: u64,
    mem_size: u64,
    data: &'a [u8],
    permissions: Permissions,
}

impl<'a> Segment<'a> {
    const EMPTY: Segment<'static> = Segment {
        vaddr: 0,
        mem_size: 0,
        data: &[],
        permissions: Permissions { read: false, write: false, execute: false },
    };

    /// Where the segment starts, as an offset from the base.
    pub fn vaddr(&self) -> u64 {
        self.vaddr
    }
    /// Bytes of memory the segment covers from [`Segment::vaddr`].
    pub fn mem_size(&self) -> u64 {
        self.mem_size
    }
    /// The bytes to copy to [`Segment::vaddr`]; the rest, up to `mem_size`, is zero.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
    /// How to map the segment.
    pub fn permissions(&self) -> Permissions {
        self.permissions
    }
    /// First byte of the first page the segment touches (offset from the base).
    pub fn page_start(&self) -> u64 {
        page_down(self.vaddr)
    }
    /// End of the last page the segment touches (offset from the base).
    pub fn page_end(&self) -> u64 {
        // No overflow: vaddr + mem_size <= MAX_IMAGE_SIZE (invariant), which is page-aligned.
        page_up(self.vaddr.saturating_add(self.mem_size)).unwrap_or(MAX_IMAGE_SIZE)
    }
    fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.mem_size)
    }
    fn contains(&self, start: u64, len: u64) -> bool {
        match start.checked_add(len) {
            Some(end) => start >= self.vaddr && end <= self.end(),
            None => false,
        }
    }
}

/// One relocation to apply: write `base + addend` at `base + offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relocation {
    offset: u64,
    addend: i64,
}

impl Relocation {
    /// Where to write, as an offset from the base. The 8 bytes there lie inside a writable
    /// segment.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The addend, as the file gives it.
    pub fn addend(&self) -> i64 {
        self.addend
    }
    /// The value to write for a program loaded at `base`. Wrapping: the addend is the
    /// program's to choose, and whatever it writes is its own business.
    pub fn value(&self, base: u64) -> u64 {
        base.wrapping_add_signed(self.addend)
    }
}

/// The relocations of a [`LoadPlan`], in file order.
#[derive(Clone, Debug)]
pub struct Relocations<'a> {
    entries: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for Relocations<'_> {
    type Item = Relocation;

    fn next(&mut self) -> Option<Relocation> {
        let entry = self.entries.next()?;
        Some(Relocation { offset: le_u64(entry, 0)?, addend: le_u64(entry, 16)? as i64 })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for Relocations<'_> {}

/// How to load a validated program.
///
/// # Invariants
/// - 1 to [`MAX_SEGMENTS`] segments, no two touching the same page, each ending at or
///   below [`MAX_IMAGE_SIZE`], none writable and executable;
/// - `entry` lies in the file bytes of an executable segment;
/// - every relocation is `R_X86_64_RELATIVE` and its 8 bytes lie in a writable segment;
/// - `relro`, if any, lies in a writable segment.
///
/// Private fields; only [`parse`] builds one.
#[derive(Clone, Debug)]
pub struct LoadPlan<'a> {
    segments: [Segment<'a>; MAX_SEGMENTS],
    count: usize,
    entry: u64,
    rela: &'a [u8],
    relro: Option<Range<u64>>,
}

impl<'a> LoadPlan<'a> {
    /// The loadable segments, in file order.
    pub fn segments(&self) -> &[Segment<'a>] {
        self.segments.get(..self.count).unwrap_or(&[])
    }
    /// The entry point, as an offset from the base.
    pub fn entry(&self) -> u64 {
        self.entry
    }
    /// Bytes of address space from the base to the end of the last segment's last page:
    /// reserve this much at `base`. At most [`MAX_IMAGE_SIZE`].
    pub fn image_size(&self) -> u64 {
        self.segments().iter().map(Segment::page_end).max().unwrap_or(0)
    }
    /// The relocations to apply.
    pub fn relocations(&self) -> Relocations<'a> {
        Relocations { entries: self.rela.chunks_exact(RELA_SIZE) }
    }
    /// The range (offsets from the base) the program asks to have made read-only after
    /// relocation (`PT_GNU_RELRO`), if any.
    pub fn relro(&self) -> Option<Range<u64>> {
        self.relro.clone()
    }
}

fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE_SIZE - 1).map(page_down)
}

fn le_bytes<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

fn le_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    le_bytes(bytes, offset).map(u16::from_le_bytes)
}

fn le_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    le_bytes(bytes, offset).map(u32::from_le_bytes)
}

fn le_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    le_bytes(bytes, offset).map(u64::from_le_bytes)
}

/// `bytes[offset .. offset + len]` with 64-bit file coordinates, or `None` if any part
/// is outside.
fn file_range(bytes: &[u8], offset: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    bytes.get(start..end)
}

/// A program header, as read from the file.
struct ProgramHeader {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    file_size: u64,
    mem_size: u64,
}

fn program_header(table: &[u8], index: usize) -> Option<ProgramHeader> {
    let at = index.checked_mul(PHDR_SIZE)?;
    let entry = table.get(at..at.checked_add(PHDR_SIZE)?)?;
    Some(ProgramHeader {
        kind: le_u32(entry, 0)?,
        flags: le_u32(entry, 4)?,
        offset: le_u64(entry, 8)?,
        vaddr: le_u64(entry, 16)?,
        file_size: le_u64(entry, 32)?,
        mem_size: le_u64(entry, 40)?,
    })
}

/// Parses and validates `bytes` as a user program. See the module docs for what the
/// kernel does with the result and [`ElfError`] for every reason it can be refused.
pub fn parse(bytes: &[u8]) -> Result<LoadPlan<'_>, ElfError> {
    let header = bytes.get(..EHDR_SIZE).ok_or(ElfError::TooShort)?;
    let byte = |i: usize| header.get(i).copied().ok_or(ElfError::TooShort);
    let half = |i: usize| le_u16(header, i).ok_or(ElfError::TooShort);
    let word = |i: usize| le_u64(header, i).ok_or(ElfError::TooShort);
    if header.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ElfError::BadMagic);
    }
    if byte(4)? != 2 {
        return Err(ElfError::NotElf64);
    }
    if byte(5)? != 1 {
        return Err(ElfError::NotLittleEndian);
    }
    if byte(6)? != EV_CURRENT || le_u32(header, 20) != Some(u32::from(EV_CURRENT)) {
        return Err(ElfError::BadVersion);
    }
    if !matches!(byte(7)?, ELFOSABI_SYSV | ELFOSABI_GNU) {
        return Err(ElfError::BadOsAbi);
    }
    if half(18)? != EM_X86_64 {
        return Err(ElfError::NotX86_64);
    }
    if half(16)? != ET_DYN {
        return Err(ElfError::NotPositionIndependent);
    }
    if usize::from(half(52)?) != EHDR_SIZE || usize::from(half(54)?) != PHDR_SIZE {
        return Err(ElfError::BadHeaderSize);
    }
    let entry = word(24)?;
    let phnum = usize::from(half(56)?);
    if phnum == 0 || phnum > MAX_PROGRAM_HEADERS {
        return Err(ElfError::BadProgramHeaderTable);
    }
    // phnum <= 64, so the product cannot overflow.
    let table_len = (phnum as u64).saturating_mul(PHDR_SIZE as u64);
    let table = file_range(bytes, word(32)?, table_len).ok_or(ElfError::BadProgramHeaderTable)?;

    let mut plan = LoadPlan {
        segments: [Segment::EMPTY; MAX_SEGMENTS],
        count: 0,
        entry,
        rela: &[],
        relro: None,
    };
    let mut dynamic: Option<&[u8]> = None;
    let mut stack: Option<u32> = None;
    let mut relro: Option<(u64, u64)> = None;

    for index in 0..phnum {
        let ph = program_header(table, index).ok_or(ElfError::BadProgramHeaderTable)?;
        match ph.kind {
            PT_LOAD => load_segment(bytes, &ph, &mut plan)?,
            PT_INTERP => return Err(ElfError::InterpreterRequested),
            PT_TLS => return Err(ElfError::TlsUnsupported),
            PT_DYNAMIC => {
                let table = file_range(bytes, ph.offset, ph.file_size).ok_or(ElfError::DynamicOutsideFile)?;
                set_once(&mut dynamic, table)?;
            }
            PT_GNU_STACK => set_once(&mut stack, ph.flags)?,
            PT_GNU_RELRO => set_once(&mut relro, (ph.vaddr, ph.mem_size))?,
            // PT_PHDR, PT_NOTE, PT_GNU_EH_FRAME, PT_GNU_PROPERTY, ...: nothing to load.
            _ => {}
        }
    }

    let segments = plan.segments();
    if segments.is_empty() {
        return Err(ElfError::NoLoadableSegment);
    }
    for (i, a) in segments.iter().enumerate() {
        for b in segments.iter().skip(i.saturating_add(1)) {
            if a.page_start() < b.page_end() && b.page_start() < a.page_end() {
                return Err(ElfError::OverlappingSegments);
            }
        }
    }
    let entry_ok = segments.iter().any(|s| {
        s.permissions.execute && s.contains(entry, 1) && entry.saturating_sub(s.vaddr) < s.data.len() as u64
    });
    if !entry_ok {
        return Err(ElfError::EntryNotExecutable);
    }
    match stack {
        None => return Err(ElfError::MissingStackHeader),
        Some(flags) if flags & PF_X != 0 => return Err(ElfError::ExecutableStack),
        Some(_) => {}
    }
    let relro = match relro {
        Some((start, len)) if len > 0 => {
            if !segments.iter().any(|s| s.permissions.write && s.contains(start, len)) {
                return Err(ElfError::RelroOutsideWritableSegment);
            }
            Some(start..start.saturating_add(len))
        }
        _ => None,
    };
    let rela = match dynamic {
        Some(table) => relocation_table(table, segments)?,
        None => &[],
    };
    plan.relro = relro;
    plan.rela = rela;
    Ok(plan)
}

/// Records a program header that may appear at most once.
fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), ElfError> {
    match slot.replace(value) {
        Some(_) => Err(ElfError::DuplicateProgramHeader),
        None => Ok(()),
    }
}

fn load_segment<'a>(bytes: &'a [u8], ph: &ProgramHeader, plan: &mut LoadPlan<'a>) -> Result<(), ElfError> {
    if ph.mem_size == 0 {
        // Legal and meaningless: nothing to map.
        return Ok(());
    }
    let data = file_range(bytes, ph.offset, ph.file_size).ok_or(ElfError::SegmentOutsideFile)?;
    if ph.file_size > ph.mem_size {
        return Err(ElfError::FileSizeExceedsMemSize);
    }
    if ph.vaddr % PAGE_SIZE != ph.offset % PAGE_SIZE {
        return Err(ElfError::MisalignedSegment);
    }
    match ph.vaddr.checked_add(ph.mem_size) {
        Some(end) if end <= MAX_IMAGE_SIZE => {}
        _ => return Err(ElfError::ImageTooLarge),
    }
    let (write, execute) = (ph.flags & PF_W != 0, ph.flags & PF_X != 0);
    if write && execute {
        return Err(ElfError::WritableAndExecutable);
    }
    let slot = plan.segments.get_mut(plan.count).ok_or(ElfError::TooManySegments)?;
    *slot = Segment {
        vaddr: ph.vaddr,
        mem_size: ph.mem_size,
        data,
        permissions: Permissions { read: ph.flags & PF_R != 0, write, execute },
    };
    plan.count = plan.count.saturating_add(1);
    Ok(())
}

/// Walks the dynamic table, and returns the validated `DT_RELA` table's bytes (empty if
/// there is none).
fn relocation_table<'a>(dynamic: &[u8], segments: &[Segment<'a>]) -> Result<&'a [u8], ElfError> {
    let (mut rela, mut rela_size, mut rela_entry) = (None, None, None);
    let set = |slot: &mut Option<u64>, value: u64| match slot.replace(value) {
        Some(_) => Err(ElfError::MalformedDynamicTable),
        None => Ok(()),
    };
    let mut terminated = false;
    for entry in dynamic.chunks_exact(DYN_SIZE) {
        let (tag, value) = match (le_u64(entry, 0), le_u64(entry, 8)) {
            (Some(tag), Some(value)) => (tag, value),
            _ => return Err(ElfError::MalformedDynamicTable),
        };
        match tag {
            DT_NULL => {
                terminated = true;
                break;
            }
            DT_NEEDED => return Err(ElfError::NeedsSharedLibrary),
            DT_TEXTREL => return Err(ElfError::TextRelocations),
            DT_FLAGS if value & DF_TEXTREL != 0 => return Err(ElfError::TextRelocations),
            DT_INIT => return Err(ElfError::Initializers),
            DT_INIT_ARRAYSZ | DT_PREINIT_ARRAYSZ if value != 0 => return Err(ElfError::Initializers),
            DT_RELSZ | DT_RELRSZ | DT_PLTRELSZ if value != 0 => {
                return Err(ElfError::UnsupportedRelocationTable);
            }
            DT_RELA => set(&mut rela, value)?,
            DT_RELASZ => set(&mut rela_size, value)?,
            DT_RELAENT => set(&mut rela_entry, value)?,
            _ => {}
        }
    }
    if !terminated {
        return Err(ElfError::MalformedDynamicTable);
    }
    let (address, size) = match (rela, rela_size) {
        (None, None) => return Ok(&[]),
        (Some(address), Some(size)) => (address, size),
        _ => return Err(ElfError::IncompleteRelocationTable),
    };
    if rela_entry.is_some_and(|e| e != RELA_SIZE as u64) || size.checked_rem(RELA_SIZE as u64) != Some(0) {
        return Err(ElfError::BadRelocationEntrySize);
    }
    // The table is read from the file: it must lie in the file bytes of one segment.
    let table = segments
        .iter()
        .find_map(|s| {
            let start = address.checked_sub(s.vaddr)?;
            let end = start.checked_add(size)?;
            s.data.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
        })
        .ok_or(ElfError::RelocationTableOutsideImage)?;
    for (index, entry) in table.chunks_exact(RELA_SIZE).enumerate() {
        let (offset, info) = match (le_u64(entry, 0), le_u64(entry, 8)) {
            (Some(offset), Some(info)) => (offset, info),
            _ => return Err(ElfError::RelocationTableOutsideImage),
        };
        // r_info: symbol index in the high 32 bits, type in the low 32.
        if info != u64::from(R_X86_64_RELATIVE) {
            return Err(ElfError::UnsupportedRelocation { index, info });
        }
        if !segments.iter().any(|s| s.permissions.write && s.contains(offset, 8)) {
            return Err(ElfError::RelocationOutsideWritableSegment { index });
        }
    }
    Ok(table)
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_arguments
)]
mod tests;
