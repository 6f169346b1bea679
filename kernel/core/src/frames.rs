//! The physical frame allocator: one bit per 4 KiB frame of RAM.
//!
//! Built from a [`MemoryMap`] of usable RAM (already stripped of the kernel image, boot
//! data and modules), over storage the caller provides, so it needs no heap.
//!
//! # Invariants
//! - A bit is set exactly when its frame is usable and free. Frames outside usable RAM
//!   never have their bit set, so they are never handed out.
//! - [`FrameAllocator::allocate`] clears the bit before returning the frame, so no frame
//!   is handed out twice until it is freed; [`FrameAllocator::free`] refuses frames that
//!   are free already or were never usable.
//! - `free_frames` equals the number of set bits.
//! - A run from [`FrameAllocator::allocate_run`] is `pages` frames (a power of two),
//!   physically contiguous and aligned to its own size; it is freed frame by frame or with
//!   [`FrameAllocator::free_run`], which frees nothing unless every frame of it is held.

use crate::memmap::{MemoryMap, PAGE_SIZE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// No free frame is left.
    OutOfMemory,
    /// The storage cannot describe all of usable RAM.
    StorageTooSmall { needed_words: usize },
    /// The address is not page-aligned.
    Misaligned,
    /// The frame is not usable RAM.
    NotUsable,
    /// The frame is already free.
    DoubleFree,
}

/// The largest run [`FrameAllocator::allocate_run`] hands out: 512 frames, 2 MiB.
pub const MAX_RUN_PAGES: u64 = 512;

pub struct FrameAllocator<'storage> {
    bitmap: &'storage mut [u64],
    usable: MemoryMap,
    frame_count: u64,
    free_frames: u64,
    next_word: usize,
}

impl<'storage> FrameAllocator<'storage> {
    /// Words of bitmap storage needed to describe `map`.
    pub fn words_needed(map: &MemoryMap) -> usize {
        let frames = map.end() / PAGE_SIZE;
        usize::try_from(frames.div_ceil(64)).unwrap_or(usize::MAX)
    }

    /// Marks every frame of `usable` free. `usable` must already exclude the storage itself.
    pub fn new(usable: &MemoryMap, bitmap: &'storage mut [u64]) -> Result<Self, FrameError> {
        let needed_words = Self::words_needed(usable);
        if bitmap.len() < needed_words {
            return Err(FrameError::StorageTooSmall { needed_words });
        }
        bitmap.fill(0);
        let mut free_frames = 0;
        for range in usable.ranges() {
            let mut frame = range.start / PAGE_SIZE;
            while frame < range.end / PAGE_SIZE {
                let (word, bit) = split(frame);
                if let Some(word) = bitmap.get_mut(word) {
                    *word |= 1 << bit;
                }
                free_frames += 1;
                frame += 1;
            }
        }
        Ok(FrameAllocator { bitmap, usable: usable.clone(), frame_count: free_frames, free_frames, next_word: 0 })
    }

    /// The lowest free frame at or after the last allocation: its physical address.
    pub fn allocate(&mut self) -> Result<u64, FrameError> {
        let words = self.bitmap.len();
        for offset in 0..words {
            let index = (self.next_word + offset) % words;
            let Some(word) = self.bitmap.get_mut(index) else { continue };
            if *word != 0 {
                let bit = word.trailing_zeros();
                *word &= !(1u64 << bit);
                self.free_frames -= 1;
                self.next_word = index;
                return Ok((index as u64 * 64 + u64::from(bit)) * PAGE_SIZE);
            }
        }
        Err(FrameError::OutOfMemory)
    }

    /// `pages` contiguous frames (a power of two, at most [`MAX_RUN_PAGES`]), aligned to
    /// `pages * PAGE_SIZE`, all below `limit` (a physical address; `u64::MAX` for no limit):
    /// the lowest such run that is free. Its first frame's address.
    ///
    /// A linear scan of the bitmap, by word for runs of 64 frames or more and by aligned
    /// bit groups within a word for smaller ones: runs are rare (device buffers, large
    /// heap chunks) and the bitmap of a few GiB is a few thousand words.
    pub fn allocate_run(&mut self, pages: u64, limit: u64) -> Result<u64, FrameError> {
        if pages == 0 || !pages.is_power_of_two() || pages > MAX_RUN_PAGES {
            return Err(FrameError::Misaligned);
        }
        let limit_frames = limit / PAGE_SIZE;
        let words = self.bitmap.len() as u64;
        let found = if pages >= 64 {
            let run_words = pages / 64;
            (0..words / run_words).map(|run| run * run_words).find(|&first| {
                (first + run_words) * 64 <= limit_frames
                    && (first..first + run_words).all(|word| self.bitmap.get(word as usize) == Some(&u64::MAX))
            }).map(|first| first * 64)
        } else {
            let mask = if pages == 64 { u64::MAX } else { (1u64 << pages) - 1 };
            (0..words).find_map(|word| {
                let bits = *self.bitmap.get(word as usize)?;
                (0..64 / pages)
                    .map(|group| group * pages)
                    .find(|&shift| bits >> shift & mask == mask)
                    .map(|shift| word * 64 + shift)
                    .filter(|&frame| frame + pages <= limit_frames)
            })
        };
        let first = found.ok_or(FrameError::OutOfMemory)?;
        for frame in first..first + pages {
            let (word, bit) = split(frame);
            if let Some(word) = self.bitmap.get_mut(word) {
                *word &= !(1u64 << bit);
            }
        }
        self.free_frames -= pages;
        Ok(first * PAGE_SIZE)
    }

    /// Returns a run of `pages` frames from `address` (as [`allocate_run`](Self::allocate_run)
    /// handed out). Checks every frame first: on an error nothing is freed.
    pub fn free_run(&mut self, address: u64, pages: u64) -> Result<(), FrameError> {
        for page in 0..pages {
            let frame = address.checked_add(page * PAGE_SIZE).ok_or(FrameError::NotUsable)?;
            if frame % PAGE_SIZE != 0 {
                return Err(FrameError::Misaligned);
            }
            if !self.usable.contains(frame) {
                return Err(FrameError::NotUsable);
            }
            let (word, bit) = split(frame / PAGE_SIZE);
            if self.bitmap.get(word).ok_or(FrameError::NotUsable)? & (1 << bit) != 0 {
                return Err(FrameError::DoubleFree);
            }
        }
        for page in 0..pages {
            self.free(address + page * PAGE_SIZE)?;
        }
        Ok(())
    }

    /// Returns a frame that [`allocate`](Self::allocate) handed out.
    pub fn free(&mut self, address: u64) -> Result<(), FrameError> {
        if !address.is_multiple_of(PAGE_SIZE) {
            return Err(FrameError::Misaligned);
        }
        if !self.usable.contains(address) {
            return Err(FrameError::NotUsable);
        }
        let (word, bit) = split(address / PAGE_SIZE);
        let word = self.bitmap.get_mut(word).ok_or(FrameError::NotUsable)?;
        if *word & (1 << bit) != 0 {
            return Err(FrameError::DoubleFree);
        }
        *word |= 1 << bit;
        self.free_frames += 1;
        Ok(())
    }

    pub fn free_frames(&self) -> u64 {
        self.free_frames
    }

    /// Frames this allocator manages, free or not.
    pub fn frame_count(&self) -> u64 {
        self.frame_count
    }

    pub fn usable(&self) -> &MemoryMap {
        &self.usable
    }
}

fn split(frame: u64) -> (usize, u32) {
    (usize::try_from(frame / 64).unwrap_or(usize::MAX), (frame % 64) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn hands_out_only_usable_frames_once() {
        let mut map = MemoryMap::new();
        map.add_usable(0x1000, 0x3000);
        map.add_usable(0x10000, 0x2000);
        let mut storage = [0u64; 1];
        let mut frames = FrameAllocator::new(&map, &mut storage).unwrap();
        let mut seen = Vec::new();
        while let Ok(frame) = frames.allocate() {
            seen.push(frame);
        }
        seen.sort();
        assert_eq!(seen, [0x1000, 0x2000, 0x3000, 0x10000, 0x11000]);
        assert_eq!(frames.allocate(), Err(FrameError::OutOfMemory));
        assert_eq!(frames.free(0x5000), Err(FrameError::NotUsable));
        assert_eq!(frames.free(0x1001), Err(FrameError::Misaligned));
        assert_eq!(frames.free(0x2000), Ok(()));
        assert_eq!(frames.free(0x2000), Err(FrameError::DoubleFree));
        assert_eq!(frames.allocate(), Ok(0x2000));
    }

    #[test]
    fn refuses_storage_that_is_too_small() {
        let mut map = MemoryMap::new();
        map.add_usable(0, 65 * PAGE_SIZE);
        let mut storage = [0u64; 1];
        assert_eq!(
            FrameAllocator::new(&map, &mut storage).err(),
            Some(FrameError::StorageTooSmall { needed_words: 2 })
        );
    }

    #[test]
    fn runs_are_contiguous_aligned_and_below_the_limit() {
        let mut map = MemoryMap::new();
        map.add_usable(0x1000, 0x3ff000); // frames 1..1024: frame 0 is not usable
        let mut storage = vec![0u64; FrameAllocator::words_needed(&map)];
        let mut frames = FrameAllocator::new(&map, &mut storage).unwrap();
        let single = frames.allocate().unwrap();
        assert_eq!(single, 0x1000);
        // 4 pages: frames 0..4 are not all free (0 unusable, 1 taken), so 4..8.
        assert_eq!(frames.allocate_run(4, u64::MAX), Ok(0x4000));
        // 512 pages, 2 MiB aligned: frames 0..512 are not all free, 512..1024 are.
        assert_eq!(frames.allocate_run(512, u64::MAX), Ok(0x20_0000));
        assert_eq!(frames.allocate_run(512, u64::MAX), Err(FrameError::OutOfMemory));
        // Below a limit: 64 pages under 1 MiB (frames 0..256) start at frame 64, then 128
        // pages fill frames 128..256, and nothing of 64 pages is left under 1 MiB.
        assert_eq!(frames.allocate_run(64, 0x10_0000), Ok(0x4_0000));
        assert_eq!(frames.allocate_run(128, 0x10_0000), Ok(0x8_0000));
        assert_eq!(frames.allocate_run(64, 0x10_0000), Err(FrameError::OutOfMemory));
        assert_eq!(frames.allocate_run(2, 0x10_0000), Ok(0x2000));
        assert_eq!(frames.allocate_run(3, u64::MAX), Err(FrameError::Misaligned));
        assert_eq!(frames.allocate_run(1024, u64::MAX), Err(FrameError::Misaligned));
        let free = frames.free_frames();
        assert_eq!(frames.free_run(0x20_0000, 512), Ok(()));
        assert_eq!(frames.free_frames(), free + 512);
        // A run that is partly free already is refused whole.
        assert_eq!(frames.free_run(0x20_0000, 512), Err(FrameError::DoubleFree));
        assert_eq!(frames.free_run(0x7000, 2), Err(FrameError::DoubleFree));
        assert_eq!(frames.free_frames(), free + 512);
    }

    proptest! {
        /// Runs mixed with single frames: every run is contiguous, aligned, below its
        /// limit, overlaps nothing held, and the free count stays exact.
        #[test]
        fn runs_never_overlap(
            ops in prop::collection::vec((0u8..4, 0u32..10, any::<u16>(), any::<bool>()), 0..300),
        ) {
            let mut map = MemoryMap::new();
            map.add_usable(0x3000, 0x1f0_0000);
            map.reserve(0x80_0000, 0x5000);
            let mut storage = vec![0u64; FrameAllocator::words_needed(&map)];
            let mut frames = FrameAllocator::new(&map, &mut storage).unwrap();
            let total = frames.free_frames();
            let mut held: Vec<(u64, u64)> = Vec::new();
            let mut owned = HashSet::new();
            for (op, order, pick, low) in ops {
                if op < 3 || held.is_empty() {
                    let pages = 1u64 << order;
                    let limit = if low { 0x100_0000 } else { u64::MAX };
                    if let Ok(first) = frames.allocate_run(pages, limit) {
                        prop_assert_eq!(first % (pages * PAGE_SIZE), 0);
                        prop_assert!(first + pages * PAGE_SIZE <= limit);
                        for page in 0..pages {
                            let frame = first + page * PAGE_SIZE;
                            prop_assert!(map.contains(frame));
                            prop_assert!(owned.insert(frame), "frame {:#x} handed out twice", frame);
                        }
                        held.push((first, pages));
                    }
                } else {
                    let (first, pages) = held.swap_remove(pick as usize % held.len());
                    for page in 0..pages { owned.remove(&(first + page * PAGE_SIZE)); }
                    prop_assert_eq!(frames.free_run(first, pages), Ok(()));
                }
                prop_assert_eq!(frames.free_frames() + owned.len() as u64, total);
            }
        }
    }

    proptest! {
        /// Random allocate/free sequences against a set model: a frame is never handed out
        /// twice, never lies outside usable RAM, and the free count is exact.
        #[test]
        fn never_twice_never_outside(
            regions in prop::collection::vec((0u64..512, 1u64..64), 1..8),
            reserved in prop::collection::vec((0u64..512, 1u64..16), 0..8),
            ops in prop::collection::vec((any::<bool>(), any::<u16>()), 0..600),
        ) {
            let mut map = MemoryMap::new();
            for (page, pages) in &regions { map.add_usable(page * PAGE_SIZE, pages * PAGE_SIZE); }
            for (page, pages) in &reserved { map.reserve(page * PAGE_SIZE, pages * PAGE_SIZE); }
            let mut storage = vec![0u64; FrameAllocator::words_needed(&map)];
            let mut frames = FrameAllocator::new(&map, &mut storage).unwrap();
            let total = frames.free_frames();
            let mut held: Vec<u64> = Vec::new();
            let mut held_set = HashSet::new();
            for (allocate, pick) in ops {
                if allocate || held.is_empty() {
                    match frames.allocate() {
                        Ok(frame) => {
                            prop_assert!(map.contains(frame), "frame {:#x} outside usable RAM", frame);
                            prop_assert!(held_set.insert(frame), "frame {:#x} handed out twice", frame);
                            held.push(frame);
                        }
                        Err(error) => {
                            prop_assert_eq!(error, FrameError::OutOfMemory);
                            prop_assert_eq!(held.len() as u64, total);
                        }
                    }
                } else {
                    let frame = held.swap_remove(pick as usize % held.len());
                    held_set.remove(&frame);
                    prop_assert_eq!(frames.free(frame), Ok(()));
                    prop_assert_eq!(frames.free(frame), Err(FrameError::DoubleFree));
                }
                prop_assert_eq!(frames.free_frames() + held.len() as u64, total);
            }
        }
    }
}
