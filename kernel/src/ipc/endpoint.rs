//! The endpoint table: which endpoints are live, and who waits on each.
//!
//! An endpoint's queue holds its blocked senders or its blocked receivers, never both
//! (`Waiting` says which), linked through the threads' `next_waiting`. The table lives
//! under the scheduler lock with the threads, because every IPC operation changes a queue
//! and the threads in it together.

use abi::ErrorCode;
use kcore::queue::WaitQueue;

use crate::sched::WaitLinks;
use crate::thread::ThreadId;

pub const MAX_ENDPOINTS: usize = abi::tables::Table::Endpoints.capacity() as usize;

/// Who an endpoint's queue holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    Nobody,
    Senders,
    Receivers,
}

#[derive(Clone, Copy, Debug)]
struct Endpoint {
    live: bool,
    waiting: Waiting,
    queue: WaitQueue,
}

impl Endpoint {
    const DEAD: Endpoint = Endpoint { live: false, waiting: Waiting::Nobody, queue: WaitQueue::EMPTY };
}

/// Every endpoint of the system. Indices come from [`Endpoints::allocate`]; an index that
/// is out of range or dead names nothing (queries answer as for an empty endpoint).
pub struct Endpoints([Endpoint; MAX_ENDPOINTS]);

impl Endpoints {
    pub const EMPTY: Endpoints = Endpoints([Endpoint::DEAD; MAX_ENDPOINTS]);

    /// A live endpoint with nobody waiting, at the lowest free index. `OutOfResources` if
    /// the table is full (table shares keep that from being another quota holder's doing).
    pub fn allocate(&mut self) -> Result<u16, ErrorCode> {
        let index = self.0.iter().position(|e| !e.live).ok_or(ErrorCode::OutOfResources)?;
        let index = u16::try_from(index).map_err(|_| ErrorCode::OutOfResources)?;
        if let Some(endpoint) = self.0.get_mut(usize::from(index)) {
            *endpoint = Endpoint { live: true, ..Endpoint::DEAD };
        }
        Ok(index)
    }

    /// Frees `index`. Its queue must be empty already (the caller fails every waiter first).
    pub fn free(&mut self, index: u16) {
        if let Some(endpoint) = self.0.get_mut(usize::from(index)) {
            *endpoint = Endpoint::DEAD;
        }
    }

    pub fn is_live(&self, index: u16) -> bool {
        self.0.get(usize::from(index)).is_some_and(|e| e.live)
    }

    /// Who waits on `index` (`Nobody` for a dead or unknown index).
    pub fn waiting(&self, index: u16) -> Waiting {
        self.0.get(usize::from(index)).map_or(Waiting::Nobody, |e| e.waiting)
    }

    /// The first waiter on `index`, if any.
    pub fn head(&self, index: u16) -> Option<ThreadId> {
        self.0.get(usize::from(index))?.queue.head().map(ThreadId)
    }

    /// Queues `id` at the back of `index`'s queue, which now holds `waiting`.
    pub fn push(&mut self, links: &mut WaitLinks<'_>, index: u16, id: ThreadId, waiting: Waiting) {
        if let Some(endpoint) = self.0.get_mut(usize::from(index)) {
            endpoint.queue.push_back(links, id.0);
            endpoint.waiting = waiting;
        }
    }

    /// Takes the first waiter off `index`'s queue.
    pub fn pop(&mut self, links: &mut WaitLinks<'_>, index: u16) -> Option<ThreadId> {
        let endpoint = self.0.get_mut(usize::from(index))?;
        let head = endpoint.queue.pop_front(links);
        if endpoint.queue.is_empty() {
            endpoint.waiting = Waiting::Nobody;
        }
        head.map(ThreadId)
    }

    /// Takes `id` out of `index`'s queue, wherever it is in it.
    pub fn remove(&mut self, links: &mut WaitLinks<'_>, index: u16, id: ThreadId) {
        if let Some(endpoint) = self.0.get_mut(usize::from(index)) {
            endpoint.queue.remove(links, id.0);
            if endpoint.queue.is_empty() {
                endpoint.waiting = Waiting::Nobody;
            }
        }
    }
}
