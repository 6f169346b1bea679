//! Amplifying rights, property-style: seeded random sequences of copy, mint (with random
//! rights masks and badges), move, delete and revoke, run against the kernel and against a
//! small model of the derivation tree side by side. After every step every slot must be
//! what the model says, and, independently of the model, no cap may hold a right its
//! original lacked or a badge other than the one it was first given. A failure names the
//! seed and the step, so it can be replayed.
//!
//! AMP-001 runs the sequence in the suite's own space; AMP-002 has a hostile puppet run it
//! in its own space (checked through the audit); AMP-003 follows one badge through every
//! path a cap can take (copy, mint, give, message).

use alloc::vec::Vec;

use libcap::abi::ipc_buffer::{RECV_CAPS_OFFSET, SEND_CAPS_OFFSET};
use libcap::sys;
use libcap::{Badge, ErrorCode, ObjectType, Rights, Sysno};

use crate::puppet::{IPC_BUFFER, Puppet, STEP_TICKS, expect_ret};
use crate::world::{ALL, Case, G, Outcome, R, W, World, create, expect_err, expect_ok};
use crate::{ensure, fail};

pub const CASES: &[Case] = &[
    Case { id: "AMP-001", what: "400 random copy/mint/move/delete/revoke steps in one space: slots match the model, no right or badge is ever gained", run: random_own_space },
    Case { id: "AMP-002", what: "200 random steps by a hostile process in its own space (seen through the audit): the same", run: random_puppet },
    Case { id: "AMP-003", what: "a badge survives copy, mint, give and message, and no path changes it", run: badge_every_path },
];

/// The seeded sequence (`kcore::rand::SplitMix64`), drawing indices.
struct Rng(libcap::rand::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
}

/// The rights the sequences start from: read, grant and grant-reply, not write or execute.
const START: Rights = Rights::READ.union(Rights::GRANT).union(Rights::GRANT_REPLY);
const POOL: usize = 8;

#[derive(Clone, Copy, Debug)]
struct ModelCap {
    rights: u32,
    badge: u64,
    parent: Option<usize>,
    live: bool,
}

/// The derivation tree as the ABI describes it: mint/copy make children; move keeps the
/// cap's place; delete re-parents its children; revoke deletes every descendant.
struct Model {
    slots: [Option<usize>; POOL],
    caps: Vec<ModelCap>,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Mint { from: usize, to: usize, mask: u32, badge: u64 },
    Move { from: usize, to: usize },
    Delete { at: usize },
    Revoke { at: usize },
}

impl Model {
    fn new() -> Model {
        let mut model = Model { slots: [None; POOL], caps: Vec::new() };
        model.caps.push(ModelCap { rights: START.bits(), badge: 0, parent: None, live: true });
        model.slots[0] = Some(0);
        model
    }

    fn descends(&self, cap: usize, ancestor: usize) -> bool {
        let mut cursor = self.caps[cap].parent;
        while let Some(parent) = cursor {
            if parent == ancestor {
                return true;
            }
            cursor = self.caps[parent].parent;
        }
        false
    }

    /// What the kernel must answer, and the model's new state.
    fn apply(&mut self, op: Op) -> Result<(), ErrorCode> {
        match op {
            Op::Mint { from, to, mask, badge } => {
                let Some(source) = self.slots[from] else { return Err(ErrorCode::EmptySlot) };
                if self.slots[to].is_some() {
                    return Err(ErrorCode::SlotOccupied);
                }
                let parent = self.caps[source];
                if badge != 0 && parent.badge != 0 {
                    return Err(ErrorCode::BadgeAlreadySet);
                }
                let cap = ModelCap { rights: parent.rights & mask, badge: if badge != 0 { badge } else { parent.badge }, parent: Some(source), live: true };
                self.caps.push(cap);
                self.slots[to] = Some(self.caps.len() - 1);
            }
            Op::Move { from, to } => {
                let Some(cap) = self.slots[from] else { return Err(ErrorCode::EmptySlot) };
                if self.slots[to].is_some() {
                    return Err(ErrorCode::SlotOccupied);
                }
                self.slots[from] = None;
                self.slots[to] = Some(cap);
            }
            Op::Delete { at } => {
                let Some(cap) = self.slots[at] else { return Err(ErrorCode::EmptySlot) };
                let grandparent = self.caps[cap].parent;
                for other in self.caps.iter_mut() {
                    if other.parent == Some(cap) {
                        other.parent = grandparent;
                    }
                }
                self.caps[cap].live = false;
                self.slots[at] = None;
            }
            Op::Revoke { at } => {
                let Some(cap) = self.slots[at] else { return Err(ErrorCode::EmptySlot) };
                for slot in 0..POOL {
                    if let Some(other) = self.slots[slot]
                        && self.descends(other, cap)
                    {
                        self.caps[other].live = false;
                        self.slots[slot] = None;
                    }
                }
            }
        }
        Ok(())
    }

    fn expected(&self, slot: usize) -> Option<(u32, u64)> {
        self.slots[slot].map(|cap| (self.caps[cap].rights, self.caps[cap].badge))
    }
}

fn random_op(rng: &mut Rng) -> Op {
    let (a, b) = (rng.below(POOL), rng.below(POOL));
    match rng.below(10) {
        0..=3 => {
            let mask = if rng.below(3) == 0 { Rights::ALL.bits() } else { (rng.next() & u64::from(Rights::ALL.bits())) as u32 };
            let badge = if rng.below(3) == 0 { 1 + rng.below(0xffff) as u64 } else { 0 };
            Op::Mint { from: a, to: b, mask, badge }
        }
        4..=5 => Op::Move { from: a, to: b },
        6..=8 => Op::Delete { at: a },
        _ => Op::Revoke { at: a },
    }
}

/// Checks one slot's kernel view against the model and the invariants.
fn check_slot(step: usize, seed: u64, slot: usize, got: Option<(u64, u64, u64)>, model: &Model, badges: &[u64]) -> Outcome {
    let want = model.expected(slot).map(|(rights, badge)| (u64::from(ObjectType::Endpoint.as_u32()), u64::from(rights), badge));
    ensure!(got == want, "seed {seed:#x} step {step}: pool slot {slot} holds {got:?}, the model says {want:?}");
    if let Some((_, rights, badge)) = got {
        ensure!(rights & !u64::from(START.bits()) == 0, "seed {seed:#x} step {step}: rights {rights:#x} exceed the original's");
        ensure!(badge == 0 || badges.contains(&badge), "seed {seed:#x} step {step}: badge {badge:#x} was never minted");
    }
    Ok(())
}

fn random_own_space(world: &mut World) -> Outcome {
    let seed = world.seed;
    let mut rng = Rng(libcap::rand::SplitMix64::new(seed));
    let root = create(world, ObjectType::Endpoint)?;
    let pool = world.slots::<POOL>()?;
    expect_ok("the original", sys::cap_mint(root, pool[0], START, Badge::NONE))?;
    let mut model = Model::new();
    let mut badges = Vec::new();
    for step in 0..400 {
        let op = random_op(&mut rng);
        let got = match op {
            Op::Mint { from, to, mask, badge } => {
                let rights = Rights::from_bits_truncate(mask);
                if badge != 0 {
                    badges.push(badge);
                }
                sys::cap_mint(pool[from], pool[to], rights, Badge::new(badge))
            }
            Op::Move { from, to } => sys::cap_move(pool[from], pool[to]),
            Op::Delete { at } => sys::cap_delete(pool[at]),
            Op::Revoke { at } => sys::cap_revoke(pool[at]),
        };
        let want = model.apply(op);
        ensure!(got == want, "seed {seed:#x} step {step}: {op:?}: the kernel said {got:?}, the model {want:?}");
        for (slot, &at) in pool.iter().enumerate() {
            let kernel = sys::cap_identify(at).ok().map(|info| (u64::from(info.object_type.as_u32()), u64::from(info.rights.bits()), info.badge.value()));
            check_slot(step, seed, slot, kernel, &model, &badges)?;
        }
    }
    Ok(())
}

fn random_puppet(world: &mut World) -> Outcome {
    let seed = world.seed ^ 0x00a5_a5a5;
    let mut rng = Rng(libcap::rand::SplitMix64::new(seed));
    let root = create(world, ObjectType::Endpoint)?;
    let p = Puppet::new(world)?;
    const BASE: u64 = 5;
    expect_ok("the original", p.give(root, BASE as u32, START, 0))?;
    let mut model = Model::new();
    let mut badges = Vec::new();
    for step in 0..200 {
        let op = random_op(&mut rng);
        let slot = |index: usize| BASE + index as u64;
        let ret = match op {
            Op::Mint { from, to, mask, badge } => {
                if badge != 0 {
                    badges.push(badge);
                }
                p.sys(Sysno::CapMint, &[slot(from), slot(to), u64::from(mask), badge])?
            }
            Op::Move { from, to } => p.sys(Sysno::CapMove, &[slot(from), slot(to)])?,
            Op::Delete { at } => p.sys(Sysno::CapDelete, &[slot(at)])?,
            Op::Revoke { at } => p.sys(Sysno::CapRevoke, &[slot(at)])?,
        };
        let got = crate::audit::code(ret.rax);
        let want = model.apply(op);
        ensure!(got == want, "seed {seed:#x} step {step}: {op:?}: the kernel said {got:?}, the model {want:?}");
        for index in 0..POOL {
            let kernel = p.slot(slot(index) as u32)?.map(|cap| (cap.kind, cap.rights, cap.badge));
            check_slot(step, seed, index, kernel, &model, &badges)?;
        }
    }
    // Whatever the puppet did, nothing anywhere names the object with more than START.
    let ours = crate::audit::audit_cap(u64::from(world.own_space), u64::from(root.index()))?.object;
    for (space, at) in crate::audit::Snapshot::take()?.holders(ours) {
        if space == world.own_space && at == root.index() {
            continue;
        }
        let cap = crate::audit::audit_cap(u64::from(space), u64::from(at))?;
        ensure!(cap.rights & !u64::from(START.bits()) == 0, "space {space} slot {at} holds rights {:#x}", cap.rights);
    }
    p.teardown(world)
}

fn badge_every_path(world: &mut World) -> Outcome {
    const BADGE: u64 = 0x77;
    let e = create(world, ObjectType::Endpoint)?;
    let [badged, copy, mint] = world.slots::<3>()?;
    expect_ok("badge", sys::cap_mint(e, badged, W.union(G), Badge::new(BADGE)))?;
    expect_ok("copy", sys::cap_copy(badged, copy))?;
    expect_ok("mint badge 0", sys::cap_mint(badged, mint, W, Badge::NONE))?;
    for slot in [copy, mint] {
        ensure!(sys::cap_identify(slot)?.badge.value() == BADGE, "slot {} lost the badge", slot.index());
    }
    let a = Puppet::new(world)?;
    let b = Puppet::new(world)?;
    expect_err("give with a new badge", a.give(badged, 6, ALL, 0x78), ErrorCode::BadgeAlreadySet)?;
    expect_ok("give", a.give(badged, 6, ALL, 0))?;
    ensure!(a.slot(6)?.is_some_and(|c| c.badge == BADGE), "given: {:?}", a.slot(6)?);
    a.sys_err("re-badge in the puppet", Sysno::CapMint, &[6, 7, u64::from(ALL.bits()), 0x79], ErrorCode::BadgeAlreadySet)?;
    // By message: a sends its badged cap (slot 6) to b through an endpoint.
    let channel = create(world, ObjectType::Endpoint)?;
    expect_ok("a's channel", a.give(channel, 5, W.union(G), 0))?;
    expect_ok("b's channel", b.give(channel, 5, R, 0))?;
    expect_ret("send-cap slot", a.store(IPC_BUFFER + SEND_CAPS_OFFSET as u64, 6)?)?;
    expect_ret("receive-cap slot", b.store(IPC_BUFFER + RECV_CAPS_OFFSET as u64, 9)?)?;
    b.begin(Sysno::Recv.as_u64() as u32, [5, 0, 0, 0, 0, 0, 0, 0])?;
    a.sys_ok("send", Sysno::Send, &[5, 1 << 10])?;
    expect_ret("receive", b.finish(STEP_TICKS)?)?;
    match b.slot(9)? {
        Some(cap) if cap.badge == BADGE => {}
        other => fail!("by message the cap arrived as {other:?}"),
    }
    a.teardown(world)?;
    b.teardown(world)
}
