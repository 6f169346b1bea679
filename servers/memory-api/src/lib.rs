//! The memory server's interface (`servers/memory`): what a client may ask, what it gets
//! back, and how the server knows who is asking and how much it may have.
//!
//! One crate for both sides, as `echo-api`; the typed client calls are `libcap::memory`
//! (libcap's heap grows through them, so they live in libcap, which depends on this crate).
//! Requests and replies travel through `libcap::ipc` (postcard in the message registers);
//! frame caps travel in the IPC buffer, at most [`MAX_FRAMES_PER_CALL`] per reply.
//!
//! # The model
//!
//! A client asks for a **region** of `pages` 4 KiB pages ([`Request::Create`]). The server
//! creates the region's frames (paid for by its own kernel-memory quota, which the manifest
//! gives it: that quota *is* the memory the server owns) and keeps the original frame caps,
//! the roots of their derivation trees. A frame is a power of two of pages, up to 2 MiB,
//! physically contiguous; [`RegionLayout`] says which frames a region is made of. The
//! client fetches caps to the frames ([`Request::Frames`]), read-write or read-only, learns
//! each one's size with `FrameInfo`, and maps them itself, one after the other, into its
//! own address space (the manifest gives it `address_space = "own"`). To share a region, the
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
//! # Placement
//!
//! [`flags::CONTIGUOUS`] (or an alignment above one page) makes the region one frame:
//! physically contiguous, aligned to its size, at most [`MAX_CONTIGUOUS_PAGES`] (2 MiB, the
//! kernel's largest frame). [`flags::BELOW_4GIB`] puts every frame below physical 4 GiB.
//! `FrameInfo` tells a driver the physical address to program into its device.
//!
//! # When a client ends
//!
//! init, holding the `memory` endpoint with [`SUPERVISOR_BADGE`], sends
//! [`Request::ClientGone`] when a process holding a client badge exits or crashes: the
//! server frees every region the client had (revoking every cap to them, so every mapping
//! goes) and its quota use drops to zero before init starts it again.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// The label every memory request is sent with.
pub const LABEL: u32 = 0x6d65_6d00;
/// Bytes per page.
pub const PAGE_SIZE: u64 = 4096;
/// The most frame caps one reply carries (the ABI's `MAX_CAPS`).
pub const MAX_FRAMES_PER_CALL: u32 = 4;
/// The most pages one region may have (64 MiB).
pub const MAX_REGION_PAGES: u32 = 16 * 1024;
/// The largest contiguous region: the kernel's largest frame, 2 MiB.
pub const MAX_CONTIGUOUS_PAGES: u32 = 512;
/// The badge of init's own cap to the `memory` endpoint: the only one whose
/// [`Request::ClientGone`] the server accepts. Never a client badge (bits above 48 set).
pub const SUPERVISOR_BADGE: u64 = 1 << 63;

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

/// The frames a region is made of, in order: what [`Request::Create`] builds and the
/// client maps one after another.
///
/// A contiguous region ([`flags::CONTIGUOUS`], or `align_pages` above 1) is one frame of
/// the next power of two of pages at or above both `pages` and `align_pages`, so it is
/// aligned as asked; it is charged for all of that frame. Any other region is `pages`
/// split into powers of two, largest first, each at most [`MAX_CONTIGUOUS_PAGES`]: at most
/// one frame per bit of `pages` below 512, plus one per 2 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionLayout {
    /// Pages charged: the sum of the frames' pages.
    pub pages: u32,
    contiguous: bool,
}

impl RegionLayout {
    /// The layout of a [`Request::Create`], or why it is refused.
    pub fn new(pages: u32, align_pages: u32, wanted: u8) -> Result<RegionLayout, MemError> {
        if pages == 0 || pages > MAX_REGION_PAGES || wanted & !flags::ALL != 0 {
            return Err(MemError::InvalidArgument);
        }
        if wanted & flags::CONTIGUOUS != 0 || align_pages > 1 {
            let frame = pages.max(align_pages).checked_next_power_of_two().ok_or(MemError::Unsupported)?;
            if frame > MAX_CONTIGUOUS_PAGES {
                return Err(MemError::Unsupported);
            }
            return Ok(RegionLayout { pages: frame, contiguous: true });
        }
        Ok(RegionLayout { pages, contiguous: false })
    }

    /// The pages of each frame, in order.
    pub fn frames(self) -> impl Iterator<Item = u32> {
        let mut left = self.pages;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let frame = if self.contiguous { left } else { 1 << left.min(MAX_CONTIGUOUS_PAGES).ilog2() };
            left -= frame;
            Some(frame)
        })
    }
}

/// A region, as the server names it to its creator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegionId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// A new region of at least `pages` zeroed pages, charged to the caller's quota, laid
    /// out as [`RegionLayout`] says. `align_pages` is the physical alignment asked for, in
    /// pages (0 and 1: none; more makes the region contiguous); `flags` from [`flags`].
    Create { pages: u32, align_pages: u32, flags: u8 },
    /// Caps to frames `first..first + count` of a region the caller created (`count` at
    /// most [`MAX_FRAMES_PER_CALL`]), in the receive slots the caller set; read-only unless
    /// `writable`.
    Frames { region: RegionId, first: u32, count: u32, writable: bool },
    /// Revoke every cap to the region's pages, in every process, and free them: every
    /// mapping of them is gone when this returns.
    Free { region: RegionId },
    /// The caller's usage.
    Stats,
    /// Print every client's usage and quota on the server's console; returns the totals.
    Report,
    /// Supervisor only ([`SUPERVISOR_BADGE`]): the process holding client `client`'s badge
    /// has ended; free every region it had.
    ClientGone { client: u16 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The region, the pages charged for it and the number of frames it has.
    Created { region: RegionId, pages: u32, frames: u32 },
    /// This many caps came with the reply.
    Frames { count: u32 },
    Freed { pages: u32 },
    /// What [`Request::ClientGone`] freed.
    Released { regions: u32, pages: u32 },
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
    /// A contiguous region, or an alignment, above [`MAX_CONTIGUOUS_PAGES`]: the kernel's
    /// largest frame is 2 MiB.
    Unsupported,
    /// The server has the memory, but no free physical run of the size and placement asked
    /// for (contiguous, or below 4 GiB); nothing was allocated.
    NoPhysicalRun,
    /// Zero pages, more than [`MAX_REGION_PAGES`], unknown flags, a frame range outside the
    /// region, or more than [`MAX_FRAMES_PER_CALL`] frames.
    InvalidArgument,
    /// No region with that id belongs to the caller.
    NoSuchRegion,
    /// The caller's cap carries no client badge.
    NotAClient,
    /// [`Request::ClientGone`] from a cap without [`SUPERVISOR_BADGE`].
    NotSupervisor,
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

    fn frames(pages: u32, align: u32, wanted: u8) -> Result<(u32, Vec<u32>), MemError> {
        RegionLayout::new(pages, align, wanted).map(|layout| (layout.pages, layout.frames().collect()))
    }

    #[test]
    fn layouts() {
        assert_eq!(frames(1, 0, 0), Ok((1, vec![1])));
        assert_eq!(frames(6, 0, 0), Ok((6, vec![4, 2])));
        assert_eq!(frames(1300, 0, 0), Ok((1300, vec![512, 512, 256, 16, 4])));
        assert_eq!(frames(3, 0, flags::CONTIGUOUS), Ok((4, vec![4])));
        assert_eq!(frames(3, 0, flags::BELOW_4GIB), Ok((3, vec![2, 1])));
        assert_eq!(frames(1, 16, 0), Ok((16, vec![16])));
        assert_eq!(frames(512, 0, flags::CONTIGUOUS), Ok((512, vec![512])));
        assert_eq!(frames(513, 0, flags::CONTIGUOUS), Err(MemError::Unsupported));
        assert_eq!(frames(1, 1024, 0), Err(MemError::Unsupported));
        assert_eq!(frames(1, u32::MAX, 0), Err(MemError::Unsupported));
        assert_eq!(frames(0, 0, 0), Err(MemError::InvalidArgument));
        assert_eq!(frames(MAX_REGION_PAGES + 1, 0, 0), Err(MemError::InvalidArgument));
        assert_eq!(frames(1, 0, 1 << 7), Err(MemError::InvalidArgument));
    }

    proptest::proptest! {
        /// Every layout's frames are powers of two of at most 2 MiB that add up to what is
        /// charged, and the charge covers what was asked.
        #[test]
        fn layouts_add_up(pages in 1u32..=MAX_REGION_PAGES, align in 0u32..2048, wanted in 0u8..4) {
            if let Ok(layout) = RegionLayout::new(pages, align, wanted) {
                let sizes: Vec<u32> = layout.frames().collect();
                proptest::prop_assert!(sizes.iter().all(|&f| f.is_power_of_two() && f <= MAX_CONTIGUOUS_PAGES));
                proptest::prop_assert_eq!(sizes.iter().sum::<u32>(), layout.pages);
                proptest::prop_assert!(layout.pages >= pages);
                proptest::prop_assert!(sizes.len() <= 9 + (pages as usize / 512));
            }
        }
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
            Request::ClientGone { client: u16::MAX },
        ];
        for request in requests {
            assert!(postcard::to_allocvec(&request).unwrap().len() <= MAX_BYTES, "{request:?}");
        }
        let replies = [
            Reply::Created { region: RegionId(u32::MAX), pages: u32::MAX, frames: u32::MAX },
            Reply::Released { regions: u32::MAX, pages: u32::MAX },
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
