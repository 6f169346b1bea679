//! `WaitQueue`: the kernel's FIFO of threads, linked through the threads themselves.
//!
//! The run queue of each priority, each endpoint's queue of senders or receivers and each
//! notification's queue of waiters are all this one type. A queue holds only its two ends;
//! the link from each queued thread to the next lives in the thread (its slot in the
//! kernel's thread table), reached through [`Links`], so queuing never allocates and a
//! thread is in at most one queue per link field. Removing a thread from the middle walks
//! the queue (queues are short: at most the threads of the system).
//!
//! # Invariants
//! `head` is `None` exactly when `tail` is; following `next` from `head` reaches `tail` and
//! stops there (`tail`'s next is `None`); every thread on the way is in this queue only.
//! Checked by the host tests against a `VecDeque` model.
#![deny(clippy::indexing_slicing, reason = "no kernel panic reachable from user input")]

/// Where the links of the queued threads are: thread `id`'s next in its queue.
pub trait Links {
    fn next(&self, id: u16) -> Option<u16>;
    fn set_next(&mut self, id: u16, next: Option<u16>);
}

/// A FIFO of thread ids whose links live in [`Links`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitQueue {
    head: Option<u16>,
    tail: Option<u16>,
}

impl WaitQueue {
    pub const EMPTY: WaitQueue = WaitQueue { head: None, tail: None };

    pub const fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// The thread that would leave first.
    pub const fn head(&self) -> Option<u16> {
        self.head
    }

    /// Queues `id` last. It must be in no queue of these links.
    pub fn push_back(&mut self, links: &mut impl Links, id: u16) {
        links.set_next(id, None);
        match self.tail {
            Some(tail) => links.set_next(tail, Some(id)),
            None => self.head = Some(id),
        }
        self.tail = Some(id);
    }

    /// Queues `id` first (a preempted thread keeps its turn). It must be in no queue.
    pub fn push_front(&mut self, links: &mut impl Links, id: u16) {
        links.set_next(id, self.head);
        if self.head.is_none() {
            self.tail = Some(id);
        }
        self.head = Some(id);
    }

    /// Takes the first thread out.
    pub fn pop_front(&mut self, links: &mut impl Links) -> Option<u16> {
        let head = self.head?;
        let next = links.next(head);
        links.set_next(head, None);
        self.head = next;
        if next.is_none() {
            self.tail = None;
        }
        Some(head)
    }

    /// Takes `id` out wherever it is; false if it was not queued here. The walk is bounded
    /// by the id space, so even corrupt links cannot make it loop forever.
    pub fn remove(&mut self, links: &mut impl Links, id: u16) -> bool {
        let mut previous: Option<u16> = None;
        let mut cursor = self.head;
        for _ in 0..=u16::MAX {
            let Some(current) = cursor else { return false };
            let next = links.next(current);
            if current == id {
                match previous {
                    Some(previous) => links.set_next(previous, next),
                    None => self.head = next,
                }
                if self.tail == Some(id) {
                    self.tail = previous;
                }
                links.set_next(id, None);
                return true;
            }
            previous = Some(current);
            cursor = next;
        }
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests fail loudly")]
mod tests {
    use super::{Links, WaitQueue};
    use proptest::prelude::*;
    use std::collections::VecDeque;

    struct Table([Option<u16>; 16]);

    impl Links for Table {
        fn next(&self, id: u16) -> Option<u16> {
            self.0[usize::from(id)]
        }
        fn set_next(&mut self, id: u16, next: Option<u16>) {
            self.0[usize::from(id)] = next;
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Back(u16),
        Front(u16),
        Pop,
        Remove(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![(0u16..16).prop_map(Op::Back), (0u16..16).prop_map(Op::Front), Just(Op::Pop), (0u16..16).prop_map(Op::Remove)]
    }

    fn contents(queue: &WaitQueue, table: &Table) -> Vec<u16> {
        let mut out = Vec::new();
        let mut cursor = queue.head();
        while let Some(id) = cursor {
            out.push(id);
            assert!(out.len() <= 16, "a cycle");
            cursor = table.next(id);
        }
        out
    }

    proptest! {
        #[test]
        fn behaves_as_a_deque(ops in prop::collection::vec(op(), 0..200)) {
            let mut table = Table([None; 16]);
            let mut queue = WaitQueue::EMPTY;
            let mut model: VecDeque<u16> = VecDeque::new();
            for op in ops {
                match op {
                    // Only threads that are not queued may be queued.
                    Op::Back(id) if !model.contains(&id) => { queue.push_back(&mut table, id); model.push_back(id); }
                    Op::Front(id) if !model.contains(&id) => { queue.push_front(&mut table, id); model.push_front(id); }
                    Op::Pop => prop_assert_eq!(queue.pop_front(&mut table), model.pop_front()),
                    Op::Remove(id) => {
                        let there = model.iter().position(|&x| x == id);
                        prop_assert_eq!(queue.remove(&mut table, id), there.is_some());
                        if let Some(at) = there { model.remove(at); }
                    }
                    _ => {}
                }
                let seen = contents(&queue, &table);
                prop_assert_eq!(&seen, &model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(queue.is_empty(), model.is_empty());
                // The tail is last, and links of threads not queued are cleared.
                prop_assert_eq!(queue.tail, model.back().copied());
                for id in 0..16u16 {
                    if !model.contains(&id) {
                        prop_assert_eq!(table.next(id), None);
                    }
                }
            }
        }
    }
}
