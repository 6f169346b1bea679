//! The notification table: which notifications are live, their words, and their waiters.
//!
//! A notification is a word of pending bits and a queue of waiters, linked through the
//! threads' `next_waiting`. Like the endpoint table it lives under the scheduler lock with
//! the threads.

use abi::ErrorCode;
use kcore::queue::WaitQueue;

use crate::sched::WaitLinks;
use crate::thread::ThreadId;

pub const MAX_NOTIFICATIONS: usize = abi::tables::Table::Notifications.capacity() as usize;

#[derive(Clone, Copy, Debug)]
struct Notification {
    live: bool,
    word: u64,
    queue: WaitQueue,
}

impl Notification {
    const DEAD: Notification = Notification { live: false, word: 0, queue: WaitQueue::EMPTY };
}

/// Every notification of the system. Indices come from [`Notifications::allocate`]; an
/// index that is out of range or dead names nothing.
pub struct Notifications([Notification; MAX_NOTIFICATIONS]);

impl Notifications {
    pub const EMPTY: Notifications = Notifications([Notification::DEAD; MAX_NOTIFICATIONS]);

    /// A live notification with no bits and no waiters, at the lowest free index.
    /// `OutOfResources` if the table is full.
    pub fn allocate(&mut self) -> Result<u16, ErrorCode> {
        let index = self.0.iter().position(|n| !n.live).ok_or(ErrorCode::OutOfResources)?;
        let index = u16::try_from(index).map_err(|_| ErrorCode::OutOfResources)?;
        if let Some(notification) = self.0.get_mut(usize::from(index)) {
            *notification = Notification { live: true, ..Notification::DEAD };
        }
        Ok(index)
    }

    /// Frees `index`. Its queue must be empty already.
    pub fn free(&mut self, index: u16) {
        if let Some(notification) = self.0.get_mut(usize::from(index)) {
            *notification = Notification::DEAD;
        }
    }

    pub fn is_live(&self, index: u16) -> bool {
        self.0.get(usize::from(index)).is_some_and(|n| n.live)
    }

    /// ORs `bits` into `index`'s word.
    pub fn raise(&mut self, index: u16, bits: u64) {
        if let Some(notification) = self.0.get_mut(usize::from(index)) {
            notification.word |= bits;
        }
    }

    /// Takes `index`'s word, leaving it 0.
    pub fn take_word(&mut self, index: u16) -> u64 {
        self.0.get_mut(usize::from(index)).map_or(0, |n| core::mem::take(&mut n.word))
    }

    /// Queues `id` at the back of `index`'s waiters.
    pub fn push(&mut self, links: &mut WaitLinks<'_>, index: u16, id: ThreadId) {
        if let Some(notification) = self.0.get_mut(usize::from(index)) {
            notification.queue.push_back(links, id.0);
        }
    }

    /// Takes the first waiter off `index`'s queue.
    pub fn pop(&mut self, links: &mut WaitLinks<'_>, index: u16) -> Option<ThreadId> {
        self.0.get_mut(usize::from(index))?.queue.pop_front(links).map(ThreadId)
    }

    /// Takes `id` out of `index`'s waiters, wherever it is among them.
    pub fn remove(&mut self, links: &mut WaitLinks<'_>, index: u16, id: ThreadId) {
        if let Some(notification) = self.0.get_mut(usize::from(index)) {
            notification.queue.remove(links, id.0);
        }
    }
}
