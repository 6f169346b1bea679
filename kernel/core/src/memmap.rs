//! The physical memory map: what the firmware says is RAM, minus what is already in use.
//!
//! Firmware maps arrive unsorted, overlapping and unaligned. [`MemoryMap`] keeps a sorted,
//! disjoint, page-aligned list of *usable* ranges; [`MemoryMap::reserve`] cuts ranges out
//! (the kernel image, boot information, boot modules, the frame bitmap itself).
//!
//! # Invariants
//! - Ranges are sorted by start, pairwise disjoint and non-adjacent (adjacent ones merge).
//! - Every range is non-empty and 4 KiB aligned at both ends.
//! - At most [`MAX_RANGES`] ranges; a map that would need more drops the smallest tail
//!   pieces and counts them in [`MemoryMap::dropped_bytes`] rather than failing boot.

pub const PAGE_SIZE: u64 = 4096;
pub const MAX_RANGES: usize = 128;

/// A half-open physical range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PhysRange {
    pub start: u64,
    pub end: u64,
}

impl PhysRange {
    pub const fn new(start: u64, end: u64) -> Self {
        PhysRange { start, end }
    }
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }
    pub const fn contains(&self, address: u64) -> bool {
        self.start <= address && address < self.end
    }
}

/// Where a firmware region came from, as E820 numbers it (PVH and Multiboot2 share them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    Usable,
    Reserved,
    AcpiReclaimable,
    AcpiNvs,
    Bad,
    Other(u32),
}

impl RegionKind {
    pub fn from_e820(kind: u32) -> Self {
        match kind {
            1 => RegionKind::Usable,
            2 => RegionKind::Reserved,
            3 => RegionKind::AcpiReclaimable,
            4 => RegionKind::AcpiNvs,
            5 => RegionKind::Bad,
            other => RegionKind::Other(other),
        }
    }
}

#[derive(Clone, Debug)]
pub struct MemoryMap {
    ranges: [PhysRange; MAX_RANGES],
    count: usize,
    dropped_bytes: u64,
}

impl Default for MemoryMap {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMap {
    pub const fn new() -> Self {
        MemoryMap { ranges: [PhysRange::new(0, 0); MAX_RANGES], count: 0, dropped_bytes: 0 }
    }

    pub fn ranges(&self) -> &[PhysRange] {
        self.ranges.get(..self.count).unwrap_or(&[])
    }

    /// Bytes of usable RAM that did not fit in the table (normally zero).
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes
    }

    pub fn total_bytes(&self) -> u64 {
        self.ranges().iter().map(PhysRange::len).sum()
    }

    pub fn contains(&self, address: u64) -> bool {
        self.ranges().iter().any(|range| range.contains(address))
    }

    /// One past the highest usable byte, or 0 for an empty map.
    pub fn end(&self) -> u64 {
        self.ranges().last().map_or(0, |range| range.end)
    }

    /// Adds usable RAM `[start, start + len)`, shrunk inwards to page boundaries.
    pub fn add_usable(&mut self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        let start = align_up(start);
        let end = end & !(PAGE_SIZE - 1);
        if start >= end {
            return;
        }
        self.insert_merged(PhysRange::new(start, end));
    }

    /// Removes `[start, start + len)`, grown outwards to page boundaries, from usable RAM.
    pub fn reserve(&mut self, start: u64, len: u64) {
        if len == 0 {
            return;
        }
        let cut_start = start & !(PAGE_SIZE - 1);
        let cut_end = align_up(start.saturating_add(len));
        let mut index = 0;
        while index < self.count {
            let range = self.ranges[index];
            if range.end <= cut_start || range.start >= cut_end {
                index += 1;
                continue;
            }
            let left = PhysRange::new(range.start, cut_start.max(range.start));
            let right = PhysRange::new(cut_end.min(range.end), range.end);
            self.remove_at(index);
            if !right.is_empty() {
                self.insert_at(index, right);
            }
            if !left.is_empty() {
                self.insert_at(index, left);
                index += 1;
            }
            if !right.is_empty() {
                index += 1;
            }
        }
    }

    fn insert_merged(&mut self, mut new: PhysRange) {
        // Absorb every range that overlaps or touches `new`, then insert it in order.
        let mut index = 0;
        while index < self.count {
            let range = self.ranges[index];
            if range.end >= new.start && range.start <= new.end {
                new = PhysRange::new(range.start.min(new.start), range.end.max(new.end));
                self.remove_at(index);
            } else {
                index += 1;
            }
        }
        let position = self.ranges().iter().position(|range| range.start > new.start).unwrap_or(self.count);
        self.insert_at(position, new);
    }

    fn remove_at(&mut self, index: usize) {
        self.ranges.copy_within(index + 1..self.count, index);
        self.count -= 1;
    }

    fn insert_at(&mut self, index: usize, range: PhysRange) {
        if self.count == MAX_RANGES {
            // Full: keep the larger of the new range and the smallest existing one.
            let Some((smallest, _)) = self.ranges().iter().enumerate().min_by_key(|(_, range)| range.len()) else {
                return; // unreachable: a full map is not empty
            };
            if self.ranges[smallest].len() >= range.len() {
                self.dropped_bytes += range.len();
                return;
            }
            self.dropped_bytes += self.ranges[smallest].len();
            self.remove_at(smallest);
            let index = self.ranges().iter().position(|r| r.start > range.start).unwrap_or(self.count);
            return self.insert_at(index, range);
        }
        self.ranges.copy_within(index..self.count, index + 1);
        self.ranges[index] = range;
        self.count += 1;
    }
}

pub const fn align_up(value: u64) -> u64 {
    match value.checked_add(PAGE_SIZE - 1) {
        Some(sum) => sum & !(PAGE_SIZE - 1),
        None => !(PAGE_SIZE - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_invariants(map: &MemoryMap) {
        let ranges = map.ranges();
        for range in ranges {
            assert!(!range.is_empty());
            assert_eq!(range.start % PAGE_SIZE, 0);
            assert_eq!(range.end % PAGE_SIZE, 0);
        }
        for pair in ranges.windows(2) {
            assert!(pair[0].end < pair[1].start, "sorted, disjoint, non-adjacent: {pair:?}");
        }
    }

    #[test]
    fn unaligned_regions_shrink_inwards_and_merge() {
        let mut map = MemoryMap::new();
        map.add_usable(0x1001, 0x3000);
        map.add_usable(0x4000, 0x1000);
        map.add_usable(0x100000, 0x0fff);
        assert_eq!(map.ranges(), &[PhysRange::new(0x2000, 0x5000)]);
    }

    #[test]
    fn reserve_splits_and_grows_outwards() {
        let mut map = MemoryMap::new();
        map.add_usable(0, 0x10000);
        map.reserve(0x3001, 0x10);
        assert_eq!(map.ranges(), &[PhysRange::new(0, 0x3000), PhysRange::new(0x4000, 0x10000)]);
        map.reserve(0, 0x100000);
        assert!(map.ranges().is_empty());
    }

    #[test]
    fn overflowing_lengths_saturate() {
        let mut map = MemoryMap::new();
        map.add_usable(u64::MAX - 0x1000, u64::MAX);
        map.add_usable(0x1000, 0x1000);
        map.reserve(0x800, u64::MAX);
        check_invariants(&map);
        assert!(map.ranges().is_empty());
    }

    proptest! {
        #[test]
        fn matches_a_page_set_model(
            adds in prop::collection::vec((0u64..256, 0u64..64), 0..40),
            cuts in prop::collection::vec((0u64..256, 0u64..16), 0..40),
        ) {
            let mut map = MemoryMap::new();
            let mut model = [false; 400];
            for (page, pages) in &adds {
                map.add_usable(page * PAGE_SIZE, pages * PAGE_SIZE);
                for p in *page..page + pages { model[p as usize] = true; }
            }
            for (page, pages) in &cuts {
                map.reserve(page * PAGE_SIZE + 7, pages * PAGE_SIZE);
                let end = if *pages == 0 { *page } else { page + pages + 1 };
                for p in *page..end { model[p as usize] = false; }
            }
            check_invariants(&map);
            for (page, usable) in model.iter().enumerate() {
                prop_assert_eq!(map.contains(page as u64 * PAGE_SIZE), *usable, "page {}", page);
            }
        }
    }
}
