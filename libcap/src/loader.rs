//! The program loader: a static-PIE ELF into a fresh address space, at a random base.
//!
//! It follows [`kcore::elf`]'s [`LoadPlan`], the same validation the kernel would use, so a
//! program the loader accepts has been checked for shape (segments inside the file, never
//! writable and executable, only relative relocations inside writable segments). For each
//! page of each segment it
//!
//! 1. creates a zeroed frame (charged to the loader's quota) in a slot of its own,
//! 2. if the page holds file bytes or relocation targets: maps the frame writable at the
//!    loader's scratch page (`raw::with_scratch_page`), copies the bytes, applies
//!    the `R_X86_64_RELATIVE` relocations that land in it, and unmaps it,
//! 3. maps the frame into the child's space with the segment's access (`PT_GNU_RELRO` pages
//!    read-only: relocation is already done, so nothing needs to write them again),
//! 4. moves the frame cap out of the loader's slots into a [`Frames`] keeper.
//!
//! Then a stack of [`STACK_PAGES`] pages with an unmapped guard page below it, and an IPC
//! buffer page above it (a gap page between), all read-write and never executable.
//!
//! # Layout of a child's address space
//!
//! | range                           | what                                              |
//! |---------------------------------|---------------------------------------------------|
//! | `0 .. 4 GiB`                    | never mapped: null and 32-bit-truncated pointers fault |
//! | [`IMAGE_LOW`] .. [`IMAGE_HIGH`] | the image, at a random page-aligned base          |
//! | [`STACK_LOW`] .. [`STACK_HIGH`] | guard page, stack, gap page, IPC buffer, at a random top |
//!
//! # Why the frames go into keeper capability spaces
//!
//! A frame lives as long as some cap names it; the mapping alone does not keep it. The child
//! must not hold caps to its own memory (the boot manifest is the exact list of what it
//! holds), and the loader's own capability space is too small to keep a slot per page (one
//! program with libcap's 256 KiB heap is already about a hundred pages). So each program's
//! frames are given to small capability spaces that only the loader holds ([`Frames`]);
//! deleting them frees the program's memory in a few calls.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use abi::{Badge, CapSlot, ErrorCode, Rights};
use kcore::elf::{self, ElfError, LoadPlan, Segment};

use crate::process::{self, Access, NewObject, SlotAllocator};
use crate::raw::{self, PAGE_SIZE};

const PAGE: u64 = PAGE_SIZE as u64;

/// Lowest load base of an image.
pub const IMAGE_LOW: u64 = 0x0000_0001_0000_0000;
/// Every image ends below this address (64 TiB).
pub const IMAGE_HIGH: u64 = 0x0000_4000_0000_0000;
/// Lowest stack top.
pub const STACK_LOW: u64 = 0x0000_7000_0000_0000;
/// Stack tops and IPC buffers lie below this address.
pub const STACK_HIGH: u64 = 0x0000_7fff_ffff_0000;
/// Pages of stack each program gets (64 KiB).
pub const STACK_PAGES: u64 = 16;
/// Slots used in each keeper capability space (slot 0 stays empty, by convention). The
/// ABI does not fix a space's size; the boot manifest assumes at least 64 slots.
const KEEPER_SLOTS: u32 = 64;

/// Why a program could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The ELF failed a check of [`kcore::elf::parse`].
    Elf(ElfError),
    /// A kernel call failed.
    Kernel(ErrorCode),
}

impl From<ElfError> for LoadError {
    fn from(error: ElfError) -> LoadError {
        LoadError::Elf(error)
    }
}

impl From<ErrorCode> for LoadError {
    fn from(error: ErrorCode) -> LoadError {
        LoadError::Kernel(error)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Elf(error) => write!(f, "bad ELF: {error:?}"),
            LoadError::Kernel(code) => write!(f, "kernel refused: {}", code.as_str()),
        }
    }
}

/// The frame caps of one loaded program, kept in capability spaces only the loader holds.
///
/// # Invariants
/// `keepers` are slots of the loader's space holding CSpace caps; the last one has `used`
/// of its slots `1..KEEPER_SLOTS` filled, the others all of them. Dropping a `Frames`
/// without [`Frames::release`] leaks the memory until the loader's own space goes.
#[derive(Debug, Default)]
pub struct Frames {
    keepers: Vec<CapSlot>,
    used: u32,
    count: usize,
}

impl Frames {
    /// How many frames are kept.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Moves the frame cap in `frame` (a slot from `slots`) into a keeper; `frame` is empty
    /// and back in `slots` afterwards.
    fn keep(&mut self, frame: CapSlot, slots: &mut SlotAllocator) -> Result<(), ErrorCode> {
        let keeper = match self.keepers.last() {
            Some(&keeper) if self.used + 1 < KEEPER_SLOTS => keeper,
            _ => {
                let keeper = slots.take()?;
                // Quota 0: nothing is ever created in a keeper, caps are only given to it.
                if let Err(error) = process::create(keeper, NewObject::CSpace { quota: 0 }) {
                    slots.give_back(keeper);
                    return Err(error);
                }
                self.keepers.push(keeper);
                self.used = 0;
                keeper
            }
        };
        let dest = CapSlot::new(self.used + 1);
        process::cap_give(frame, keeper, dest, Rights::ALL, Badge::NONE)?;
        self.used += 1;
        self.count += 1;
        // The keeper's copy now holds the frame alive; the original is no longer needed.
        slots.delete(frame)
    }

    /// Deletes the keepers, and with them every frame (and so every page mapped from them).
    pub fn release(self, slots: &mut SlotAllocator) -> Result<(), ErrorCode> {
        let mut result = Ok(());
        for keeper in self.keepers {
            if let Err(error) = slots.delete(keeper) {
                result = Err(error);
            }
        }
        result
    }
}

/// A program loaded into an address space, ready for [`process::thread_start`].
#[derive(Debug)]
pub struct Image {
    /// Where the image starts: ELF offsets are relative to it (for fault reports).
    pub base: u64,
    /// The start state: entry point, top of the stack, IPC buffer.
    pub start: process::StartState,
    /// The frames backing it; release them when the program is gone.
    pub frames: Frames,
}

/// A fresh-looking 64-bit number from the cycle counter (SplitMix64 of counter and a call
/// count). Enough to make load addresses differ between boots; not a secure random source.
pub fn entropy() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let calls = CALLS.fetch_add(1, Ordering::Relaxed);
    kcore::rand::mix(raw::cycle_counter().wrapping_add(calls.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

/// A page-aligned address in `low..high - reserve`, picked by `random`.
fn random_page(random: u64, low: u64, high: u64, reserve: u64) -> u64 {
    let pages = (high - low - reserve) / PAGE;
    low + (random % pages) * PAGE
}

/// Loads the ELF `program` into the (empty) address space `space`.
///
/// `own_space` is the loader's own address space (for the scratch page), `slots` its free
/// slots. On error, the frames created so far are freed; what was mapped into `space` goes
/// with `space`, which stays the caller's to delete.
pub fn load(program: &[u8], space: CapSlot, own_space: CapSlot, slots: &mut SlotAllocator) -> Result<Image, LoadError> {
    let plan = elf::parse(program)?;
    let base = random_page(entropy(), IMAGE_LOW, IMAGE_HIGH, elf::MAX_IMAGE_SIZE);
    let stack_top = random_page(entropy(), STACK_LOW, STACK_HIGH, 2 * PAGE);
    let mut frames = Frames::default();
    match fill_space(&plan, base, stack_top, space, own_space, slots, &mut frames) {
        Ok(()) => Ok(Image {
            base,
            start: process::StartState {
                entry: base + plan.entry(),
                stack_pointer: stack_top,
                ipc_buffer: Some(stack_top + PAGE),
            },
            frames,
        }),
        Err(error) => {
            let _ = frames.release(slots);
            Err(error)
        }
    }
}

fn fill_space(
    plan: &LoadPlan<'_>,
    base: u64,
    stack_top: u64,
    space: CapSlot,
    own_space: CapSlot,
    slots: &mut SlotAllocator,
    frames: &mut Frames,
) -> Result<(), LoadError> {
    let relro_pages = plan.relro().map(|r| (r.start & !(PAGE - 1))..(r.end & !(PAGE - 1)));
    for segment in plan.segments() {
        let access = match segment.permissions() {
            p if p.executable() => Access::ReadExecute,
            p if p.writable() => Access::ReadWrite,
            _ => Access::Read,
        };
        for page in (segment.page_start()..segment.page_end()).step_by(PAGE_SIZE) {
            let in_relro = relro_pages.as_ref().is_some_and(|r| r.contains(&page));
            let access = if in_relro { Access::Read } else { access };
            let contents = PageContents { plan, segment, page, base };
            new_page(space, base + page, access, Some(contents), own_space, slots, frames)?;
        }
    }
    // The guard page below the stack is simply never mapped.
    for page in 1..=STACK_PAGES {
        new_page(space, stack_top - page * PAGE, Access::ReadWrite, None, own_space, slots, frames)?;
    }
    // The page between the stack top and the IPC buffer is left unmapped too.
    new_page(space, stack_top + PAGE, Access::ReadWrite, None, own_space, slots, frames)?;
    Ok(())
}

/// Creates a frame, fills it with `contents` (if any), maps it at `address` in `space` and
/// hands it to `frames`.
fn new_page(
    space: CapSlot,
    address: u64,
    access: Access,
    contents: Option<PageContents<'_, '_>>,
    own_space: CapSlot,
    slots: &mut SlotAllocator,
    frames: &mut Frames,
) -> Result<(), LoadError> {
    let frame = slots.take()?;
    let result = (|| {
        process::create(frame, NewObject::Frame)?;
        if let Some(contents) = contents.filter(PageContents::is_needed) {
            raw::with_scratch_page(own_space, frame, |bytes| contents.write(bytes))?;
        }
        process::map(space, frame, address, access)?;
        frames.keep(frame, slots)
    })();
    if result.is_err() {
        let _ = slots.delete(frame);
    }
    Ok(result?)
}

/// What goes into one page of a segment: file bytes and relocated words.
#[derive(Clone, Copy)]
struct PageContents<'p, 'a> {
    plan: &'p LoadPlan<'a>,
    segment: &'p Segment<'a>,
    /// The page's offset from the base.
    page: u64,
    base: u64,
}

impl PageContents<'_, '_> {
    /// The part of the segment's file bytes inside this page: (offset in page, bytes).
    fn data(&self) -> Option<(usize, &[u8])> {
        let start = self.segment.vaddr();
        let data = self.segment.data();
        let from = self.page.max(start);
        let to = (self.page + PAGE).min(start + data.len() as u64);
        let bytes = data.get((from - start) as usize..(to - start) as usize)?;
        (from < to).then_some(((from - self.page) as usize, bytes))
    }

    /// The relocations that write at least one byte into this page.
    fn relocations(&self) -> impl Iterator<Item = elf::Relocation> + '_ {
        let page = self.page;
        self.plan.relocations().filter(move |r| r.offset() < page + PAGE && r.offset() + 8 > page)
    }

    /// Whether the page needs writing at all (a fresh frame is already zero).
    fn is_needed(&self) -> bool {
        self.data().is_some() || (self.segment.permissions().writable() && self.relocations().next().is_some())
    }

    fn write(&self, bytes: &mut [u8; PAGE_SIZE]) {
        if let Some((at, data)) = self.data()
            && let Some(target) = bytes.get_mut(at..at + data.len())
        {
            target.copy_from_slice(data);
        }
        // A relocation may straddle two pages: write it byte by byte, each where it falls.
        for relocation in self.relocations() {
            for (i, byte) in relocation.value(self.base).to_le_bytes().into_iter().enumerate() {
                let offset = relocation.offset() + i as u64;
                if let Some(slot) = offset.checked_sub(self.page).and_then(|o| bytes.get_mut(o as usize)) {
                    *slot = byte;
                }
            }
        }
    }
}
