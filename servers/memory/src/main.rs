//! memory: the memory server. Serves zeroed pages, in regions, to the clients the manifest
//! names, each within the quota its badge carries, and takes them back from everywhere.
//!
//! Its authority (the manifest): the console (slot 1), receive on the `memory` endpoint
//! (slot 2), and a kernel-memory quota: the memory it owns. Every page it hands out is a
//! frame it creates against that quota; the frame's original cap (the root of its
//! derivation tree) stays here, in the region's list, and clients get derived caps only,
//! read-write or read-only. The protocol and the model are in `memory-api`.
//!
//! # Invariants
//! - A client's `used_pages` is the sum of its live regions' pages, never above its quota.
//! - Every root slot in a region is held by this server until `Free`, which revokes it
//!   (deleting every derived cap, in every process) and deletes it, so that the frame's
//!   last cap is gone and the kernel unmaps it everywhere and frees the page.
//! - The slots of caps sent with a reply are minted copies, deleted right after the reply;
//!   the copies the clients got are re-parented to the root, so `Free` still reaches them.
//!
//! # Limits, and why
//! - One root slot per page, in a capability space of 128 slots: at most about 120 pages
//!   are out at once, whatever the quota (`OutOfSlots`). Multi-page frame objects or larger
//!   capability spaces would lift it (docs/kernel-requests.md).
//! - The kernel records at most two mappings per frame (`frame::MAX_MAPPINGS`): a shared
//!   page can be mapped by its creator and one peer, or two peers.
//! - A client that exits without freeing keeps its regions (and its quota use) until the
//!   server restarts: nothing tells the server that a client ended.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use libcap::process::{self, NewObject, SlotAllocator};
use libcap::sys::{self, Received};
use libcap::{Badge, CapSlot, ErrorCode, Rights, ipc, println};
use memory_api::{
    ClientBadge, MAX_FRAMES_PER_CALL, MAX_REGION_PAGES, MemError, RegionId, Reply, Request, Stats, Totals, flags,
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
    println!("memory: serving ({} slots for pages)", server.slots.free() - RESERVED_FOR_REPLIES);
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
    /// The root caps of its pages, in order.
    pages: Vec<CapSlot>,
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
        if pages == 0 || pages > MAX_REGION_PAGES || wanted & !flags::ALL != 0 {
            return Err(MemError::InvalidArgument);
        }
        // The kernel gives single 4 KiB frames wherever it likes: one page is contiguous
        // and 4 KiB-aligned, nothing more can be promised.
        if wanted & flags::BELOW_4GIB != 0 || (wanted & flags::CONTIGUOUS != 0 && pages > 1) || align_pages > 1 {
            return Err(MemError::Unsupported);
        }
        let Some(owner) = self.clients.get(client) else { return Err(MemError::NotAClient) };
        if owner.used_pages.saturating_add(pages) > owner.quota_pages {
            return Err(MemError::OverQuota { used_pages: owner.used_pages, asked_pages: pages, quota_pages: owner.quota_pages });
        }
        if self.slots.free() < pages + RESERVED_FOR_REPLIES {
            return Err(MemError::OutOfSlots);
        }
        let owner_id = owner.id;
        let mut roots = Vec::new();
        for _ in 0..pages {
            let made = self.slots.take().and_then(|slot| match process::create(slot, NewObject::Frame) {
                Ok(()) => Ok(slot),
                Err(error) => {
                    self.slots.give_back(slot);
                    Err(error)
                }
            });
            match made {
                Ok(slot) => roots.push(slot),
                Err(error) => {
                    for slot in roots {
                        let _ = self.slots.delete(slot);
                    }
                    return Err(if error == ErrorCode::OutOfQuota { MemError::OutOfMemory } else { kernel(error) });
                }
            }
        }
        let id = RegionId(self.next_region);
        self.next_region = self.next_region.wrapping_add(1).max(1);
        self.regions.push(Region { id, owner: owner_id, pages: roots });
        self.created_pages += u64::from(pages);
        if let Some(owner) = self.clients.get_mut(client) {
            owner.used_pages += pages;
            owner.regions += 1;
        }
        Ok(Reply::Created { region: id, pages })
    }

    fn region(&self, client: usize, id: RegionId) -> Result<usize, MemError> {
        let owner = self.clients.get(client).map(|c| c.id);
        self.regions.iter().position(|r| r.id == id && Some(r.owner) == owner).ok_or(MemError::NoSuchRegion)
    }

    /// Mints copies of pages `first..first + count` (read-write or read-only) into slots
    /// pushed to `sent`, for the reply to carry.
    fn frames(&mut self, client: usize, id: RegionId, first: u32, count: u32, writable: bool, sent: &mut Vec<CapSlot>) -> Result<u32, MemError> {
        let index = self.region(client, id)?;
        let end = first.checked_add(count).ok_or(MemError::InvalidArgument)?;
        let roots = self.regions.get(index).map(|r| r.pages.as_slice()).unwrap_or(&[]);
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
        let pages = region.pages.len() as u32;
        for root in region.pages {
            // Every derived cap, in every process, then the root: the frame's last cap goes,
            // and with it every mapping of the page.
            if let Err(error) = sys::cap_revoke(root) {
                println!("memory: revoking slot {}: {}", root.index(), error.as_str());
            }
            if let Err(error) = self.slots.delete(root) {
                println!("memory: deleting slot {}: {}", root.index(), error.as_str());
            }
        }
        self.freed_pages += u64::from(pages);
        if let Some(owner) = self.clients.get_mut(client) {
            owner.used_pages -= pages;
            owner.regions -= 1;
        }
        Ok(pages)
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
