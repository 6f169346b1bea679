//! The security log's core: a bounded ring of records that never blocks the writer and
//! never loses a record silently.
//!
//! init keeps one [`Ring`] of the denials it sees (faults, crashes, restarts, refused
//! supervisor requests; `init-api` names the events) and answers readers through its
//! supervisor interface. The ring is fixed-size and allocation-free: [`Ring::push`] always
//! succeeds at once, overwriting the oldest record when full, and every record overwritten
//! is counted ([`Ring::dropped`]), so a flood from one program costs it nothing and shows
//! up as a number, never as a silent gap. Records are numbered from 0 in the order they were
//! pushed; a reader asks by number and is told when the one it asked for is gone.
//!
//! # Invariants
//! The ring holds exactly the records numbered `oldest()..next()`, and
//! `next() - oldest() <= N`; `dropped() == oldest()`. Private fields; only `push` changes
//! them.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

/// A bounded log of `N` records of `T`.
#[derive(Clone, Debug)]
pub struct Ring<T: Copy, const N: usize> {
    slots: [Option<T>; N],
    /// The number the next record gets; also how many were ever pushed.
    next: u64,
}

/// What a reader gets for a record number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<T> {
    /// The record with that number.
    Found(T),
    /// Overwritten: the oldest record still held has number `oldest`.
    Gone { oldest: u64 },
    /// Not written yet: `next` is the number the next record will get.
    End { next: u64 },
}

impl<T: Copy, const N: usize> Ring<T, N> {
    /// An empty ring.
    pub const fn new() -> Self {
        Ring { slots: [None; N], next: 0 }
    }

    /// Appends `record`, overwriting the oldest if the ring is full; returns its number.
    /// Never fails and never waits.
    pub fn push(&mut self, record: T) -> u64 {
        let number = self.next;
        if let Some(slot) = self.slots.get_mut(Self::index(number)) {
            *slot = Some(record);
        }
        self.next = self.next.saturating_add(1);
        number
    }

    /// The record numbered `number`, or why not.
    pub fn get(&self, number: u64) -> Lookup<T> {
        if number >= self.next {
            return Lookup::End { next: self.next };
        }
        if number < self.oldest() {
            return Lookup::Gone { oldest: self.oldest() };
        }
        match self.slots.get(Self::index(number)).copied().flatten() {
            Some(record) => Lookup::Found(record),
            None => Lookup::Gone { oldest: self.oldest() },
        }
    }

    /// The number of the oldest record still held (`next()` if none).
    pub fn oldest(&self) -> u64 {
        self.next.saturating_sub(N as u64)
    }

    /// The number the next record will get: how many were ever pushed.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// How many records were overwritten before anyone could be sure to read them.
    pub fn dropped(&self) -> u64 {
        self.oldest()
    }

    fn index(number: u64) -> usize {
        if N == 0 { usize::MAX } else { (number % N as u64) as usize }
    }
}

impl<T: Copy, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Ring::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_the_last_n_and_counts_the_rest() {
        let mut ring: Ring<u32, 4> = Ring::new();
        assert_eq!(ring.get(0), Lookup::End { next: 0 });
        for value in 0..10u32 {
            assert_eq!(ring.push(value), u64::from(value));
        }
        assert_eq!((ring.oldest(), ring.next(), ring.dropped()), (6, 10, 6));
        assert_eq!(ring.get(5), Lookup::Gone { oldest: 6 });
        assert_eq!(ring.get(6), Lookup::Found(6));
        assert_eq!(ring.get(9), Lookup::Found(9));
        assert_eq!(ring.get(10), Lookup::End { next: 10 });
    }

    #[test]
    fn a_zero_sized_ring_keeps_nothing_and_counts_everything() {
        let mut ring: Ring<u8, 0> = Ring::new();
        ring.push(1);
        assert_eq!(ring.dropped(), 1);
        assert_eq!(ring.get(0), Lookup::Gone { oldest: 1 });
    }

    proptest! {
        /// Against a model that keeps everything: the ring answers every number as the
        /// model says, and what it does not hold is exactly what it counts as dropped.
        #[test]
        fn agrees_with_a_list_of_everything(values in proptest::collection::vec(any::<u16>(), 0..200)) {
            let mut ring: Ring<u16, 16> = Ring::new();
            for value in &values {
                ring.push(*value);
            }
            let kept = values.len().saturating_sub(16);
            prop_assert_eq!(ring.dropped(), kept as u64);
            for (number, value) in values.iter().enumerate() {
                let want = if number < kept { Lookup::Gone { oldest: kept as u64 } } else { Lookup::Found(*value) };
                prop_assert_eq!(ring.get(number as u64), want);
            }
            prop_assert_eq!(ring.get(values.len() as u64), Lookup::End { next: values.len() as u64 });
        }
    }
}
