//! The client side: one typed call per request (feature `client`).
//!
//! A call that fails in the kernel (for instance `PeerGone`, when the server died holding
//! the call and init is restarting it) is [`MemError::Kernel`] with the kernel's code;
//! calling again reaches the next incarnation through the same endpoint.

use libcap::sys::{self, Message};
use libcap::{CapSlot, ErrorCode, ipc};

use crate::{LABEL, MemError, RegionId, Reply, Request, Stats, Totals};

/// A kernel error as a [`MemError`].
pub fn kernel(code: ErrorCode) -> MemError {
    MemError::Kernel(code.as_u32())
}

/// The memory server, through the client's cap to its endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    endpoint: CapSlot,
}

impl Memory {
    /// The server behind the `memory` endpoint cap in `endpoint` (it needs `write` and
    /// `grant_reply`, so that frame caps can come back in replies).
    pub const fn new(endpoint: CapSlot) -> Memory {
        Memory { endpoint }
    }

    /// Sends `request`; caps in the reply land in `receive`. Returns the reply and how many
    /// caps came with it.
    fn call(&self, request: &Request, receive: &[CapSlot]) -> Result<(Reply, usize), MemError> {
        let message: Message = ipc::encode(LABEL, request).map_err(kernel)?;
        let answer = sys::call_with_caps(self.endpoint, &message, &[], receive).map_err(kernel)?;
        if answer.label() == ipc::LABEL_BAD_REQUEST {
            return Err(MemError::BadRequest);
        }
        match ipc::decode::<Reply>(&answer).map_err(kernel)? {
            Reply::Error(error) => Err(error),
            reply => Ok((reply, answer.info().caps())),
        }
    }

    /// A new region of `pages` zeroed pages ([`crate::flags`] in `flags`).
    pub fn create(&self, pages: u32, flags: u8) -> Result<RegionId, MemError> {
        match self.call(&Request::Create { pages, align_pages: 0, flags }, &[])? {
            (Reply::Created { region, .. }, _) => Ok(region),
            _ => Err(MemError::BadRequest),
        }
    }

    /// Caps to pages `first..first + into.len()` of `region`, placed in the empty slots
    /// `into` (at most [`crate::MAX_FRAMES_PER_CALL`]); read-only unless `writable`.
    pub fn frames(&self, region: RegionId, first: u32, into: &[CapSlot], writable: bool) -> Result<u32, MemError> {
        let count = into.len() as u32;
        match self.call(&Request::Frames { region, first, count, writable }, into)? {
            (Reply::Frames { count: sent }, arrived) if sent == count && arrived == into.len() => Ok(count),
            _ => Err(MemError::BadRequest),
        }
    }

    /// Revokes and frees `region`: every mapping of it, in every process, is gone.
    pub fn free(&self, region: RegionId) -> Result<u32, MemError> {
        match self.call(&Request::Free { region }, &[])? {
            (Reply::Freed { pages }, _) => Ok(pages),
            _ => Err(MemError::BadRequest),
        }
    }

    /// The caller's usage and quota.
    pub fn stats(&self) -> Result<Stats, MemError> {
        match self.call(&Request::Stats, &[])? {
            (Reply::Stats(stats), _) => Ok(stats),
            _ => Err(MemError::BadRequest),
        }
    }

    /// Asks the server to print every client's usage; returns its totals.
    pub fn report(&self) -> Result<Totals, MemError> {
        match self.call(&Request::Report, &[])? {
            (Reply::Totals(totals), _) => Ok(totals),
            _ => Err(MemError::BadRequest),
        }
    }
}
