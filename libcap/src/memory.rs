//! The memory server's client: one typed call per request of `memory-api`, and
//! [`Memory::map_region`], which fetches a region's frames and maps them one after another.
//!
//! A call that fails in the kernel (for instance `PeerGone`, when the server died holding
//! the call and init is restarting it) is [`MemError::Kernel`] with the kernel's code;
//! calling again reaches the next incarnation through the same endpoint.

use memory_api::{LABEL, MAX_FRAMES_PER_CALL, Reply, Request};
pub use memory_api::{MemError, RegionId, Stats, Totals, flags};

use crate::process::{self, Access};
use crate::sys::{self, Message};
use crate::{CapSlot, ErrorCode, ipc};

/// A kernel error as a [`MemError`].
pub fn kernel(code: ErrorCode) -> MemError {
    MemError::Kernel(code.as_u32())
}

/// A region the server made: its id, the pages charged for it, and how many frames it has
/// (each a power of two of pages, see `memory_api::RegionLayout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// The server's name for it.
    pub id: RegionId,
    /// Pages charged to the client's quota.
    pub pages: u32,
    /// Frames it is made of (fetch them with [`Memory::frames`]).
    pub frames: u32,
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

    /// A new region of at least `pages` zeroed pages ([`flags`] in `flags`).
    pub fn create(&self, pages: u32, flags: u8) -> Result<Region, MemError> {
        self.create_aligned(pages, 0, flags)
    }

    /// A new region of at least `pages` zeroed pages, physically aligned to `align_pages`
    /// pages (more than 1 makes it one contiguous frame).
    pub fn create_aligned(&self, pages: u32, align_pages: u32, flags: u8) -> Result<Region, MemError> {
        match self.call(&Request::Create { pages, align_pages, flags }, &[])? {
            (Reply::Created { region, pages, frames }, _) => Ok(Region { id: region, pages, frames }),
            _ => Err(MemError::BadRequest),
        }
    }

    /// Caps to frames `first..first + into.len()` of `region`, placed in the empty slots
    /// `into` (at most [`MAX_FRAMES_PER_CALL`]); read-only unless `writable`.
    pub fn frames(&self, region: RegionId, first: u32, into: &[CapSlot], writable: bool) -> Result<u32, MemError> {
        let count = into.len() as u32;
        match self.call(&Request::Frames { region, first, count, writable }, into)? {
            (Reply::Frames { count: sent }, arrived) if sent == count && arrived == into.len() => Ok(count),
            _ => Err(MemError::BadRequest),
        }
    }

    /// Fetches every frame of `region` into the empty slots `into` (one per frame) and maps
    /// them one after another from `base` in the address space `space`. Returns the bytes
    /// mapped. On an error, what was mapped is unmapped and the slots emptied again.
    ///
    /// It allocates nothing (the heap grows through it).
    pub fn map_region(&self, region: Region, space: CapSlot, base: u64, writable: bool, into: &[CapSlot]) -> Result<u64, MemError> {
        let slots = into.get(..region.frames as usize).ok_or(MemError::InvalidArgument)?;
        let access = if writable { Access::ReadWrite } else { Access::Read };
        let mut mapped = 0u64;
        let mut frames_mapped = 0usize;
        let mut result = Ok(());
        'batches: for (batch, chunk) in slots.chunks(MAX_FRAMES_PER_CALL as usize).enumerate() {
            if let Err(error) = self.frames(region.id, batch as u32 * MAX_FRAMES_PER_CALL, chunk, writable) {
                result = Err(error);
                break;
            }
            for &frame in chunk {
                let step = sys::frame_info(frame).map_err(kernel).and_then(|info| {
                    let at = base.checked_add(mapped).ok_or(MemError::InvalidArgument)?;
                    process::map(space, frame, at, access).map_err(kernel)?;
                    Ok(info.bytes)
                });
                match step {
                    Ok(bytes) => {
                        mapped += bytes;
                        frames_mapped += 1;
                    }
                    Err(error) => {
                        result = Err(error);
                        break 'batches;
                    }
                }
            }
        }
        if let Err(error) = result {
            let mut at = base;
            for &frame in &slots[..frames_mapped] {
                let _ = process::unmap(space, at);
                at += sys::frame_info(frame).map_or(0, |info| info.bytes);
            }
            for &slot in slots {
                let _ = sys::cap_delete(slot);
            }
            return Err(error);
        }
        Ok(mapped)
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
