//! memory: the memory server. Serves zeroed pages, in regions, to the clients the manifest
//! names, each within the quota its badge carries, and takes them back from everywhere.
//!
//! Its authority (the manifest): the console (slot 1), receive on the `memory` endpoint
//! (slot 2), and a kernel-memory quota: the memory it owns. Every region it hands out is
//! made of frames (4 KiB to 2 MiB each) it creates against that quota; each frame's
//! original cap (the root of its derivation tree) stays here, in the region's list, and
//! clients get derived caps only, read-write or read-only. The protocol and the model are
//! in `memory-api`.
//!
//! # Invariants
//! - A client's `used_pages` is the sum of its live regions' pages, never above its quota.
//! - Every root slot in a region is held by this server until `Free` (or `ClientGone`),
//!   which revokes it (deleting every derived cap, in every process) and deletes it, so
//!   that the frame's last cap is gone and the kernel unmaps it everywhere and frees it.
//! - The slots of caps sent with a reply are minted copies, deleted right after the reply;
//!   the copies the clients got are re-parented to the root, so `Free` still reaches them.
//!
//! # Limits, and why
//! - One root slot per frame, in a capability space of 128 slots: at most about 120 frames
//!   are out at once (`OutOfSlots`), 240 MiB if they are all 2 MiB.
//! - The kernel records at most eight mappings per frame (`frame::MAX_MAPPINGS`).
//! - A region that need not be contiguous falls back to smaller frames when physical
//!   memory has no free run for a large one; a contiguous one gets `NoPhysicalRun`.
//! - A client that ends without freeing loses its regions when init says so
//!   (`ClientGone`, sent for every program holding a client badge that exits or crashes).
//!   A process that some other program started, and handed a memory cap, is not
//!   supervised by init: its regions stay until its starter frees them.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use libcap::process::SlotAllocator;
use libcap::sys::{self, Received};
use libcap::{Badge, CapSlot, ErrorCode, Rights, ipc, println};
use memory_api::{
    ClientBadge, MAX_FRAMES_PER_CALL, MemError, RegionId, RegionLayout, Reply, Request, SUPERVISOR_BADGE, Stats, Totals,
    flags,
};

libcap::entry!(main);

/// Receive on the `memory` endpoint (manifest: the first `caps` entry).
const ENDPOINT: CapSlot = CapSlot::new(2);
/// The first slot the server manages.
const FIRST_FREE: CapSlot = CapSlot::new(3);
/// Slots kept free for the copies a reply carries.
const RESERVED_FOR_REPLIES: u32 = MAX_FRAMES_PER_CALL;

fn main() -> Result<(), ErrorCode> {
    let mut server = Server::new();
    println!("memory: serving ({} slots for frames)", server.slots.free() - RESERVED_FOR_REPLIES);
    let mut received = sys::recv(ENDPOINT)?;
    loop {
        let (reply, sent) = server.handle(&received);
        let message = ipc::encode(ipc::LABEL_OK, &reply).or_else(|_| ipc::encode(ipc::LABEL_OK, &Reply::Error(MemError::BadRequest)))?;
        let next = sys::reply_recv_with_caps(ENDPOINT, &message, &sent, &[]);
        // The client holds its own copies now (or died); ours go.
        for slot in sent {
            let _ = server.slots.delete(slot);
        }
        received = next?;
    }
}

struct Client {
    id: u16,
    quota_pages: u32,
    used_pages: u32,
    regions: u32,
}

struct Region {
    id: RegionId,
    owner: u16,
    /// Pages charged for it.
    pages: u32,
    /// The root caps of its frames, in order.
    frames: Vec<CapSlot>,
}

struct Server {
    slots: SlotAllocator,
    clients: Vec<Client>,
    regions: Vec<Region>,
    next_region: u32,
    created_pages: u64,
    freed_pages: u64,
}

fn kernel(code: ErrorCode) -> MemError {
    MemError::Kernel(code.as_u32())
}

impl Server {
    fn new() -> Server {
        Server {
            slots: SlotAllocator::new(FIRST_FREE, SlotAllocator::MAX_SLOTS),
            clients: Vec::new(),
            regions: Vec::new(),
            next_region: 1,
            created_pages: 0,
            freed_pages: 0,
        }
    }

    /// The answer to one message, and the slots of the caps to send with it.
    fn handle(&mut self, received: &Received) -> (Reply, Vec<CapSlot>) {
        let request = match ipc::decode::<Request>(&received.message) {
            Ok(request) if received.message.label() == memory_api::LABEL => request,
            _ => return (Reply::Error(MemError::BadRequest), Vec::new()),
        };
        if let Request::ClientGone { client } = request {
            if received.badge.value() != SUPERVISOR_BADGE {
                return (Reply::Error(MemError::NotSupervisor), Vec::new());
            }
            let (regions, pages) = self.client_gone(client);
            return (Reply::Released { regions, pages }, Vec::new());
        }
        let Some(badge) = ClientBadge::decode(received.badge.value()) else {
            return (Reply::Error(MemError::NotAClient), Vec::new());
        };
        let client = self.client(badge);
        let mut sent = Vec::new();
        let result = match request {
            Request::Create { pages, align_pages, flags } => self.create(client, pages, align_pages, flags),
            Request::Frames { region, first, count, writable } => {
                self.frames(client, region, first, count, writable, &mut sent).map(|count| Reply::Frames { count })
            }
            Request::Free { region } => self.free(client, region).map(|pages| Reply::Freed { pages }),
            Request::Stats => Ok(Reply::Stats(self.stats(client))),
            Request::Report => Ok(Reply::Totals(self.report())),
            Request::ClientGone { .. } => Err(MemError::NotSupervisor),
        };
        (result.unwrap_or_else(Reply::Error), sent)
    }

    /// The index of the client a badge names, registered on first contact.
    fn client(&mut self, badge: ClientBadge) -> usize {
        if let Some(index) = self.clients.iter().position(|c| c.id == badge.id()) {
            return index;
        }
        self.clients.push(Client { id: badge.id(), quota_pages: badge.quota_pages(), used_pages: 0, regions: 0 });
        self.clients.len() - 1
    }

    fn create(&mut self, client: usize, pages: u32, align_pages: u32, wanted: u8) -> Result<Reply, MemError> {
        let layout = RegionLayout::new(pages, align_pages, wanted)?;
        let Some(owner) = self.clients.get(client) else { return Err(MemError::NotAClient) };
        if owner.used_pages.saturating_add(layout.pages) > owner.quota_pages {
            return Err(MemError::OverQuota { used_pages: owner.used_pages, asked_pages: layout.pages, quota_pages: owner.quota_pages });
        }
        let owner_id = owner.id;
        let contiguous = wanted & flags::CONTIGUOUS != 0 || align_pages > 1;
        let kernel_flags = if wanted & flags::BELOW_4GIB != 0 { libcap::abi::syscall::frame_create::BELOW_4GIB } else { 0 };
        // Largest first; a scattered region splits a frame the kernel has no run for.
        let mut wanted_frames: Vec<u32> = layout.frames().collect();
        wanted_frames.reverse();
        let mut roots = Vec::new();
        let failure = loop {
            let Some(frame_pages) = wanted_frames.pop() else { break None };
            if self.slots.free() <= RESERVED_FOR_REPLIES {
                break Some(MemError::OutOfSlots);
            }
            let made = self.slots.take().and_then(|slot| {
                match sys::frame_create(slot, u64::from(frame_pages) * memory_api::PAGE_SIZE, kernel_flags) {
                    Ok(()) => Ok(slot),
                    Err(error) => {
                        self.slots.give_back(slot);
                        Err(error)
                    }
                }
            });
            match made {
                Ok(slot) => roots.push(slot),
                Err(ErrorCode::OutOfResources) if !contiguous && frame_pages > 1 => {
                    wanted_frames.push(frame_pages / 2);
                    wanted_frames.push(frame_pages / 2);
                }
                Err(ErrorCode::OutOfResources) => break Some(MemError::NoPhysicalRun),
                Err(ErrorCode::OutOfQuota) => break Some(MemError::OutOfMemory),
                Err(error) => break Some(kernel(error)),
            }
        };
        if let Some(error) = failure {
            for slot in roots {
                let _ = self.slots.delete(slot);
            }
            return Err(error);
        }
        let id = RegionId(self.next_region);
        self.next_region = self.next_region.wrapping_add(1).max(1);
        let frames = roots.len() as u32;
        self.regions.push(Region { id, owner: owner_id, pages: layout.pages, frames: roots });
        self.created_pages += u64::from(layout.pages);
        if let Some(owner) = self.clients.get_mut(client) {
            owner.used_pages += layout.pages;
            owner.regions += 1;
        }
        Ok(Reply::Created { region: id, pages: layout.pages, frames })
    }

    fn region(&self, client: usize, id: RegionId) -> Result<usize, MemError> {
        let owner = self.clients.get(client).map(|c| c.id);
        self.regions.iter().position(|r| r.id == id && Some(r.owner) == owner).ok_or(MemError::NoSuchRegion)
    }

    /// Mints copies of frames `first..first + count` (read-write or read-only) into slots
    /// pushed to `sent`, for the reply to carry.
    fn frames(&mut self, client: usize, id: RegionId, first: u32, count: u32, writable: bool, sent: &mut Vec<CapSlot>) -> Result<u32, MemError> {
        let index = self.region(client, id)?;
        let end = first.checked_add(count).ok_or(MemError::InvalidArgument)?;
        let roots = self.regions.get(index).map(|r| r.frames.as_slice()).unwrap_or(&[]);
        let roots = roots.get(first as usize..end as usize).ok_or(MemError::InvalidArgument)?;
        if count == 0 || count > MAX_FRAMES_PER_CALL {
            return Err(MemError::InvalidArgument);
        }
        let rights = if writable { Rights::READ.union(Rights::WRITE) } else { Rights::READ };
        for &root in roots {
            let copy = self.slots.take().map_err(|_| MemError::OutOfSlots)?;
            if let Err(error) = sys::cap_mint(root, copy, rights, Badge::NONE) {
                self.slots.give_back(copy);
                return Err(kernel(error));
            }
            sent.push(copy);
        }
        Ok(count)
    }

    fn free(&mut self, client: usize, id: RegionId) -> Result<u32, MemError> {
        let index = self.region(client, id)?;
        let region = self.regions.swap_remove(index);
        let pages = self.release(region);
        if let Some(owner) = self.clients.get_mut(client) {
            owner.used_pages -= pages;
            owner.regions -= 1;
        }
        Ok(pages)
    }

    /// Revokes and deletes every root of `region`; returns its pages.
    fn release(&mut self, region: Region) -> u32 {
        for root in region.frames {
            // Every derived cap, in every process, then the root: the frame's last cap goes,
            // and with it every mapping of it.
            if let Err(error) = sys::cap_revoke(root) {
                println!("memory: revoking slot {}: {}", root.index(), error.as_str());
            }
            if let Err(error) = self.slots.delete(root) {
                println!("memory: deleting slot {}: {}", root.index(), error.as_str());
            }
        }
        self.freed_pages += u64::from(region.pages);
        region.pages
    }

    /// Client `id` has ended: free all its regions. Returns (regions, pages) freed.
    fn client_gone(&mut self, id: u16) -> (u32, u32) {
        let (mine, others): (Vec<Region>, Vec<Region>) = core::mem::take(&mut self.regions).into_iter().partition(|r| r.owner == id);
        self.regions = others;
        let regions = mine.len() as u32;
        let pages = mine.into_iter().map(|region| self.release(region)).sum();
        if let Some(client) = self.clients.iter_mut().find(|c| c.id == id) {
            client.used_pages = 0;
            client.regions = 0;
        }
        if regions > 0 {
            println!("memory: client {id} ended: freed {regions} regions, {pages} pages");
        }
        (regions, pages)
    }

    fn stats(&self, client: usize) -> Stats {
        self.clients.get(client).map_or(Stats { client: 0, used_pages: 0, quota_pages: 0, regions: 0 }, |c| Stats {
            client: c.id,
            used_pages: c.used_pages,
            quota_pages: c.quota_pages,
            regions: c.regions,
        })
    }

    fn report(&self) -> Totals {
        println!("memory: client  used/quota pages  regions");
        for c in &self.clients {
            println!("memory: {:>6}  {:>5}/{:<5}        {:>7}", c.id, c.used_pages, c.quota_pages, c.regions);
        }
        let totals = Totals {
            clients: self.clients.len() as u32,
            used_pages: self.clients.iter().map(|c| c.used_pages).sum(),
            regions: self.regions.len() as u32,
            created_pages: self.created_pages,
            freed_pages: self.freed_pages,
        };
        println!(
            "memory: {} pages in use in {} regions; {} created, {} freed since start",
            totals.used_pages, totals.regions, totals.created_pages, totals.freed_pages
        );
        totals
    }
}
