//! The memory server's interface (`servers/memory`): what a client may ask, what it gets
//! back, and how the server knows who is asking and how much it may have.
//!
//! One crate for both sides, as `echo-api`. Requests and replies travel through
//! `libcap::ipc` (postcard in the message registers); frame caps travel in the IPC buffer,
//! at most [`MAX_FRAMES_PER_CALL`] per reply.
//!
//! # The model
//!
//! A client asks for a **region** of `pages` 4 KiB pages ([`Request::Create`]). The server
//! creates the frames (paid for by its own kernel-memory quota, which the manifest gives
//! it: that quota *is* the memory the server owns) and keeps the original frame caps, the
//! roots of their derivation trees. The client fetches caps to the pages
//! ([`Request::Frames`]), read-write or read-only, and maps them itself into its own
//! address space (the manifest gives it `address_space = "own"`). To share a region, the
//! client passes frame caps on to another process by IPC grant, attenuated with
//! `CapMint` if it wants the peer read-only: rights only shrink, the kernel enforces it.
//! [`Request::Free`] revokes every cap derived from the roots, in every process, and
//! deletes the roots: the frames' last caps are gone, so the kernel unmaps them from every
//! address space and frees the pages. Pages are zeroed by the kernel when allocated, so a
//! region never shows anyone's old data.
//!
//! # Who asks: the badge
//!
//! Each client's cap to the `memory` endpoint carries a badge from the manifest that
//! encodes its client number and its quota in pages ([`ClientBadge`]). The badge is
//! stamped by init and cannot be changed by the holder (badges are set once), so the
//! quota in it is as trustworthy as the manifest. A client may pass its cap on; whoever
//! holds it spends the same quota.
//!
//! # What the kernel cannot give yet
//!
//! Frames are single 4 KiB pages with no control over where they are in physical memory,
//! so a request for physically contiguous memory (more than one page), for memory below
//! 4 GiB, or for physical alignment above 4 KiB is refused with
//! [`MemError::Unsupported`]. The kernel changes that would allow them are in
//! `docs/kernel-requests.md`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

#[cfg(feature = "client")]
pub mod client;

/// The label every memory request is sent with.
pub const LABEL: u32 = 0x6d65_6d00;
/// Bytes per page.
pub const PAGE_SIZE: u64 = 4096;
/// The most frame caps one reply carries (the ABI's `MAX_CAPS`).
pub const MAX_FRAMES_PER_CALL: u32 = 4;
/// The most pages one region may have.
pub const MAX_REGION_PAGES: u32 = 32;

/// Flags of [`Request::Create`].
pub mod flags {
    /// The pages must be physically contiguous (for device DMA).
    pub const CONTIGUOUS: u8 = 1 << 0;
    /// Every page must be below 4 GiB physical (for 32-bit DMA).
    pub const BELOW_4GIB: u8 = 1 << 1;
    /// Every flag this version knows.
    pub const ALL: u8 = CONTIGUOUS | BELOW_4GIB;
}

/// A client's identity and quota, as carried in the badge of its `memory` endpoint cap:
/// bits 32..48 the client number (1..=65535), bits 0..32 its quota in pages.
///
/// # Invariants
/// `id != 0` (badge 0 means unbadged, which the server refuses). Private fields; built by
/// [`ClientBadge::new`] or [`ClientBadge::decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientBadge {
    id: u16,
    quota_pages: u32,
}

impl ClientBadge {
    /// Client `id` (non-zero) with `quota_pages`.
    pub const fn new(id: u16, quota_pages: u32) -> Option<ClientBadge> {
        if id == 0 { None } else { Some(ClientBadge { id, quota_pages }) }
    }

    /// The badge value to write in `system.toml`.
    pub const fn encode(self) -> u64 {
        (self.id as u64) << 32 | self.quota_pages as u64
    }

    /// The client a badge names; `None` for badges that are not client badges (zero client
    /// number, or bits above 48 set).
    pub const fn decode(badge: u64) -> Option<ClientBadge> {
        if badge >> 48 != 0 {
            return None;
        }
        ClientBadge::new((badge >> 32) as u16, badge as u32)
    }

    /// The client number.
    pub const fn id(self) -> u16 {
        self.id
    }

    /// The quota, in pages.
    pub const fn quota_pages(self) -> u32 {
        self.quota_pages
    }
}

/// A region, as the server names it to its creator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegionId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// A new region of `pages` zeroed pages, charged to the caller's quota. `align_pages`
    /// is the physical alignment asked for, in pages (0 and 1: none); `flags` from
    /// [`flags`].
    Create { pages: u32, align_pages: u32, flags: u8 },
    /// Caps to pages `first..first + count` of a region the caller created (`count` at most
    /// [`MAX_FRAMES_PER_CALL`]), in the receive slots the caller set; read-only unless
    /// `writable`.
    Frames { region: RegionId, first: u32, count: u32, writable: bool },
    /// Revoke every cap to the region's pages, in every process, and free them: every
    /// mapping of them is gone when this returns.
    Free { region: RegionId },
    /// The caller's usage.
    Stats,
    /// Print every client's usage and quota on the server's console; returns the totals.
    Report,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Created { region: RegionId, pages: u32 },
    /// This many caps came with the reply.
    Frames { count: u32 },
    Freed { pages: u32 },
    Stats(Stats),
    Totals(Totals),
    Error(MemError),
}

/// One client's usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub client: u16,
    pub used_pages: u32,
    pub quota_pages: u32,
    pub regions: u32,
}

/// The server's usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub clients: u32,
    pub used_pages: u32,
    pub regions: u32,
    /// Pages created since the server started (each a fresh, zeroed frame).
    pub created_pages: u64,
    /// Pages freed since the server started.
    pub freed_pages: u64,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemError {
    /// The request would take the caller past its quota; nothing was allocated.
    OverQuota { used_pages: u32, asked_pages: u32, quota_pages: u32 },
    /// The server's own memory (its kernel-memory quota) is used up.
    OutOfMemory,
    /// The server cannot hold another root cap (its capability space is full).
    OutOfSlots,
    /// Contiguous, below-4-GiB or physically aligned memory: the kernel cannot place frames.
    Unsupported,
    /// Zero pages, more than [`MAX_REGION_PAGES`], unknown flags, a page range outside the
    /// region, or more than [`MAX_FRAMES_PER_CALL`] frames.
    InvalidArgument,
    /// No region with that id belongs to the caller.
    NoSuchRegion,
    /// The caller's cap carries no client badge.
    NotAClient,
    /// The server could not decode the request.
    BadRequest,
    /// A kernel call failed with this `ErrorCode` number.
    Kernel(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_round_trip_and_refuse_non_clients() {
        let badge = ClientBadge::new(7, 16).unwrap();
        assert_eq!(badge.encode(), 0x7_0000_0010);
        assert_eq!(ClientBadge::decode(0x7_0000_0010), Some(badge));
        assert_eq!(ClientBadge::decode(0), None);
        assert_eq!(ClientBadge::decode(16), None);
        assert_eq!(ClientBadge::decode(1 << 48 | 1 << 32), None);
        assert_eq!(ClientBadge::new(0, 5), None);
    }

    #[test]
    fn every_message_fits_the_registers() {
        // libcap::ipc::MAX_BYTES: 8 register words.
        const MAX_BYTES: usize = 64;
        let requests = [
            Request::Create { pages: u32::MAX, align_pages: u32::MAX, flags: u8::MAX },
            Request::Frames { region: RegionId(u32::MAX), first: u32::MAX, count: u32::MAX, writable: true },
            Request::Free { region: RegionId(u32::MAX) },
            Request::Stats,
            Request::Report,
        ];
        for request in requests {
            assert!(postcard::to_allocvec(&request).unwrap().len() <= MAX_BYTES, "{request:?}");
        }
        let replies = [
            Reply::Created { region: RegionId(u32::MAX), pages: u32::MAX },
            Reply::Stats(Stats { client: u16::MAX, used_pages: u32::MAX, quota_pages: u32::MAX, regions: u32::MAX }),
            Reply::Totals(Totals { clients: u32::MAX, used_pages: u32::MAX, regions: u32::MAX, created_pages: u64::MAX, freed_pages: u64::MAX }),
            Reply::Error(MemError::OverQuota { used_pages: u32::MAX, asked_pages: u32::MAX, quota_pages: u32::MAX }),
            Reply::Error(MemError::Kernel(u32::MAX)),
        ];
        for reply in replies {
            assert!(postcard::to_allocvec(&reply).unwrap().len() <= MAX_BYTES, "{reply:?}");
        }
    }
}
