//! The kernel's resource census, for the in-QEMU harnesses (fuzzer, leak suite, lifecycle).
//!
//! A count of everything the kernel holds: cap objects, capability spaces (which ones),
//! the kernel space's quota, frame and address-space objects, thread slots and free
//! physical frames. Taken before and after a run, [`Census::compare`] reports every
//! difference and allows only what the kernel keeps on purpose, itemised: the kernel stacks
//! of thread slots used for the first time, their page tables, and the FPU frames of dead
//! threads whose slot nobody reused yet.

use kcore::cap::SpaceId;

use crate::caps;
use crate::println;
use crate::sched;
use crate::thread::{State, ThreadId, KERNEL_STACK_PAGES, MAX_THREADS};

/// The kernel's own capability space, whose quota pays for what the harnesses hand out.
const KERNEL_SPACE: SpaceId = SpaceId::new(0);

/// Counts of what the kernel holds, to compare before and after a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Census {
    cap_objects: usize,
    cspaces: usize,
    /// Which capability spaces are live, bit per space index (the store has 64).
    pub(crate) live_spaces: u128,
    kernel_quota_used: u64,
    frame_objects: usize,
    address_spaces: usize,
    used_thread_slots: usize,
    free_frames: u64,
    /// Thread slots that have a kernel stack (kept for good once allocated).
    slots_with_stacks: usize,
    /// FPU frames still held by dead threads (freed when the slot is reused or joined).
    dead_fpu_frames: usize,
}

impl Census {
    pub(crate) fn take() -> Census {
        let (cap_objects, live_spaces, kernel_quota_used) = caps::with(|store| {
            let mut live = 0u128;
            for index in 0..caps::SPACES.min(128) {
                if store.quota(SpaceId::new(index as u16)).is_some() {
                    live |= 1 << index;
                }
            }
            (store.live_objects(), live, store.quota(KERNEL_SPACE).map_or(0, |quota| quota.used()))
        });
        let cspaces = live_spaces.count_ones() as usize;
        let (used_thread_slots, slots_with_stacks, dead_fpu_frames) = sched::with_sched(|s| {
            let mut counts = (0, 0, 0);
            for index in 1..MAX_THREADS {
                let thread = s.thread(ThreadId(index as u16));
                if thread.state != State::Free {
                    counts.0 += 1;
                }
                if thread.kernel_stack_top != 0 {
                    counts.1 += 1;
                }
                if thread.state == State::Dead && thread.fpu_frame != 0 {
                    counts.2 += 1;
                }
            }
            counts
        });
        Census {
            cap_objects,
            cspaces,
            live_spaces,
            kernel_quota_used,
            frame_objects: crate::frame::live(),
            address_spaces: (0..crate::vspace::MAX_SPACES as u16).filter(|&index| crate::vspace::root(index).is_some()).count(),
            used_thread_slots,
            free_frames: crate::mm::frame_stats().0,
            slots_with_stacks,
            dead_fpu_frames,
        }
    }

    /// Prints both censuses and every difference; `Err` if anything did not come back
    /// beyond the itemised allowance.
    pub(crate) fn compare(&self, after: &Census) -> Result<(), ()> {
        println!("census: before {self:x?}");
        println!("census: after  {after:x?}");
        let mut ok = true;
        let mut same = |what: &str, before: u64, now: u64| {
            if before != now {
                println!("census: LEAK: {what}: {before} before, {now} after");
                ok = false;
            }
        };
        same("capability objects", self.cap_objects as u64, after.cap_objects as u64);
        same("capability spaces", self.cspaces as u64, after.cspaces as u64);
        same("kernel space quota used (bytes)", self.kernel_quota_used, after.kernel_quota_used);
        same("frame objects", self.frame_objects as u64, after.frame_objects as u64);
        same("address-space objects", self.address_spaces as u64, after.address_spaces as u64);
        // Dead threads whose slot nobody reused yet still count as used (and keep an FPU frame).
        let dead_kept = after.dead_fpu_frames.saturating_sub(self.dead_fpu_frames);
        same("used thread slots (beyond dead ones kept)", self.used_thread_slots as u64, (after.used_thread_slots - dead_kept.min(after.used_thread_slots)) as u64);
        // Physical frames: what the kernel keeps on purpose, itemised.
        let new_stacks = after.slots_with_stacks.saturating_sub(self.slots_with_stacks) as u64;
        let stack_frames = new_stacks * KERNEL_STACK_PAGES;
        // One page table maps 2 MiB of the 128 KiB-per-slot stack region (16 slots), plus
        // the directory above them when the region crosses 1 GiB (it does not at 64 slots).
        let table_allowance = new_stacks.div_ceil(16) + 1;
        let used = self.free_frames.saturating_sub(after.free_frames);
        let returned_extra = after.free_frames.saturating_sub(self.free_frames);
        let explained = stack_frames + dead_kept as u64;
        println!(
            "census: frames: {used} fewer free after the run: {stack_frames} kernel-stack frames of {new_stacks} newly used thread slots, \
             {dead_kept} FPU frames of dead unreused threads, and up to {table_allowance} page tables for the new stacks"
        );
        if returned_extra > 0 {
            println!("census: NOTE: {returned_extra} more frames free after than before");
        }
        if used < explained {
            println!("census: NOTE: {} frames fewer used than itemised", explained - used);
        }
        if used > explained + table_allowance {
            println!(
                "census: LEAK: physical frames: {used} fewer free, {explained} explained, {} unexplained",
                used as i64 - explained as i64
            );
            ok = false;
        }
        if ok { Ok(()) } else { Err(()) }
    }
}
