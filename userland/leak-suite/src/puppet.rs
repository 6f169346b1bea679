//! Puppets: hostile processes the suite builds from capabilities and drives step by step.
//!
//! A puppet is a capability space, an address space and a thread, built here the way init
//! builds a process (`ObjectCreate`, `Map`, `CapGive`, `ThreadConfigure`, `ThreadStart`).
//! Its code is the harness's puppet program (`kernel/src/harness/ksuite.rs`, mapped read-execute
//! from one of the suite's code frames), which calls its control endpoint for an operation,
//! performs it with the puppet's own authority only, and sends back the registers.
//!
//! # A puppet's address space
//! | address | what |
//! |---------|------|
//! | [`CODE`] | the puppet program (read, execute) |
//! | [`STACK_TOP`] - 4 KiB | one stack page (read, write) |
//! | [`IPC_BUFFER`] | its IPC buffer (read, write), unless the case says otherwise |
//! | [`DATA`] and up | free for the cases |
//!
//! # A puppet's capability space
//! Slot [`CONTROL`] (2) holds its control endpoint (write: it calls and sends on it);
//! everything else is what a case gives it. Its thread's fault endpoint is the same
//! endpoint with another badge, so a step returns either the registers or how it ended.

use alloc::format;

use libcap::process::{self, Access, NewObject, StartState, ThreadConfig};
use libcap::sys::{self, Message};
use libcap::{Badge, CapSlot, ErrorCode, Rights, Sysno};
use libcap::abi::syscall::fault_label;

use crate::audit::{self, CapRecord};
use crate::world::{CODE_FRAMES, Fail, SLOTS, World};
use crate::fail;

pub const CODE: u64 = 0x40_0000;
pub const STACK_TOP: u64 = 0x7000_0000_0000;
pub const STACK_PAGE: u64 = STACK_TOP - 4096;
pub const IPC_BUFFER: u64 = 0x10_0000;
pub const DATA: u64 = 0x20_0000;
/// The puppet's slot of its control endpoint.
pub const CONTROL: u32 = 2;

pub const OP_LOAD: u32 = 0xf000_0001;
pub const OP_STORE: u32 = 0xf000_0002;
pub const OP_JUMP: u32 = 0xf000_0003;
pub const OP_PRIVILEGED: u32 = 0xf000_0004;
/// What a privileged instruction that did not fault reports.
pub const SURVIVED: u64 = 0xbad;

/// Badges of a puppet's caps to its control endpoint: `CONTROL_BADGE + n` on the cap it
/// sends through, `FAULT_BADGE + n` on its thread's fault cap.
const CONTROL_BADGE: u64 = 0x10_0000;
const FAULT_BADGE: u64 = 0x20_0000;
/// How long a step may take before the suite calls the puppet stuck (10 ms ticks).
pub const STEP_TICKS: u64 = 300;

/// How to build a puppet.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The kernel-memory quota of its capability space.
    pub quota: u64,
    pub priority: u8,
    /// The IPC-buffer address given to `ThreadStart` (0: none).
    pub ipc_buffer: u64,
    /// Whether a frame is mapped there.
    pub map_ipc_buffer: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { quota: 64 * 1024, priority: 10, ipc_buffer: IPC_BUFFER, map_ipc_buffer: true }
    }
}

/// Registers after a puppet's syscall: `rax` and `rdi rsi rdx r10 r8 r9 r12 r13`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ret {
    pub rax: u64,
    pub regs: [u64; 8],
}

impl Ret {
    pub fn result(&self) -> Result<Ret, ErrorCode> {
        audit::code(self.rax).map(|()| *self)
    }
    pub fn rdi(&self) -> u64 {
        self.regs[0]
    }
    pub fn rsi(&self) -> u64 {
        self.regs[1]
    }
    /// Message word `i` (0-5) of a receive.
    pub fn word(&self, i: usize) -> u64 {
        self.regs.get(i + 2).copied().unwrap_or(0)
    }
}

/// How a puppet ended, from its fault endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Fault { vector: u64, error: u64, address: u64, rip: u64 },
    Exit(u64),
    Killed,
}

/// What one step came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Ret(Ret),
    Ended(End),
    /// Nothing came within the time allowed: the puppet is blocked (or very slow).
    Blocked,
}

pub struct Puppet {
    pub number: u64,
    pub cspace: CapSlot,
    pub aspace: CapSlot,
    pub thread: CapSlot,
    pub stack: CapSlot,
    pub ipc: Option<CapSlot>,
    pub control: CapSlot,
    pub fault: CapSlot,
    code: usize,
    /// Its capability-space index, for the audit.
    pub space: u16,
}

impl Puppet {
    pub fn new(world: &mut World) -> Result<Puppet, Fail> {
        Puppet::with(world, Options::default())
    }

    pub fn with(world: &mut World, options: Options) -> Result<Puppet, Fail> {
        let number = world.puppets_made;
        world.puppets_made += 1;
        let [cspace, aspace, thread, stack, control, fault] = world.slots::<6>()?;
        let step = |what: &str, result: Result<(), ErrorCode>| result.map_err(|code| Fail(format!("building a puppet: {what}: {code:?}")));
        step("cspace", process::create(cspace, NewObject::CSpace { quota: options.quota }))?;
        step("address space", process::create(aspace, NewObject::AddressSpace))?;
        step("thread", process::create(thread, NewObject::Thread))?;
        let code = world.code_frame()?;
        let mut puppet = Puppet { number, cspace, aspace, thread, stack, ipc: None, control, fault, code, space: 0 };
        step("map code", process::map(aspace, CODE_FRAMES[code], CODE, Access::ReadExecute))?;
        step("stack", process::create(stack, NewObject::Frame))?;
        step("map stack", process::map(aspace, stack, STACK_PAGE, Access::ReadWrite))?;
        if options.map_ipc_buffer && options.ipc_buffer != 0 {
            let ipc = world.slot()?;
            puppet.ipc = Some(ipc);
            step("IPC buffer", process::create(ipc, NewObject::Frame))?;
            step("map IPC buffer", process::map(aspace, ipc, options.ipc_buffer & !0xfff, Access::ReadWrite))?;
        }
        step("control endpoint", process::create(control, NewObject::Endpoint))?;
        step("give control", process::cap_give(control, cspace, CapSlot::new(CONTROL), Rights::WRITE, Badge::new(CONTROL_BADGE + number)))?;
        step("fault cap", sys::cap_mint(control, fault, Rights::WRITE, Badge::new(FAULT_BADGE + number)))?;
        let config = ThreadConfig { priority: options.priority, budget: None, fault_endpoint: Some(fault) };
        step("configure", process::thread_configure(thread, config))?;
        let start = StartState { entry: CODE, stack_pointer: STACK_TOP, ipc_buffer: (options.ipc_buffer != 0).then_some(options.ipc_buffer) };
        step("start", process::thread_start(thread, aspace, cspace, start))?;
        puppet.space = puppet.find_space(world)?;
        Ok(puppet)
    }

    /// Its space: the one whose control slot holds our control endpoint with its badge.
    fn find_space(&self, world: &World) -> Result<u16, Fail> {
        let ours = audit::audit_cap(u64::from(world.own_space), u64::from(self.control.index()))?;
        for space in 0..audit::SPACES_SCANNED {
            if let Ok(record) = audit::audit_cap(u64::from(space), u64::from(CONTROL))
                && record.object == ours.object
                && record.badge == CONTROL_BADGE + self.number
            {
                return Ok(space);
            }
        }
        fail!("puppet {}'s capability space is nowhere to be seen", self.number)
    }

    /// Mints the suite's cap in `src` into the puppet's slot `to`.
    pub fn give(&self, src: CapSlot, to: u32, rights: Rights, badge: u64) -> Result<(), ErrorCode> {
        process::cap_give(src, self.cspace, CapSlot::new(to), rights, Badge::new(badge))
    }

    /// What the puppet's slot holds, as the audit sees it.
    pub fn slot(&self, slot: u32) -> Result<Option<CapRecord>, Fail> {
        match audit::audit_cap(u64::from(self.space), u64::from(slot)) {
            Ok(record) => Ok(Some(record)),
            Err(ErrorCode::EmptySlot) => Ok(None),
            Err(code) => fail!("auditing puppet {} slot {slot}: {code:?}", self.number),
        }
    }

    /// Every cap the puppet holds.
    pub fn caps(&self) -> Result<alloc::vec::Vec<(u32, CapRecord)>, Fail> {
        let mut caps = alloc::vec::Vec::new();
        for slot in 0..SLOTS {
            if let Some(record) = self.slot(slot)? {
                caps.push((slot, record));
            }
        }
        Ok(caps)
    }

    fn end(&self, received: &sys::Received) -> Option<End> {
        if received.badge.value() != FAULT_BADGE + self.number {
            return None;
        }
        let word = |i: usize| received.message.words().get(i).copied().unwrap_or(0);
        Some(match received.message.label() {
            fault_label::FAULT => End::Fault { vector: word(0), error: word(1), address: word(2), rip: word(3) },
            fault_label::EXIT => End::Exit(word(0)),
            _ => End::Killed,
        })
    }

    /// Hands the puppet operation `op` with `words`; `Some` if it had already ended.
    pub fn begin(&self, op: u32, words: [u64; 8]) -> Result<Option<End>, Fail> {
        let received = match sys::recv_timeout(self.control, STEP_TICKS) {
            Ok(received) => received,
            Err(code) => fail!("puppet {} never asked for its next operation: {code:?}", self.number),
        };
        if let Some(end) = self.end(&received) {
            return Ok(Some(end));
        }
        if received.badge.value() != CONTROL_BADGE + self.number || received.message.info().length() != 0 {
            fail!("puppet {}: expected a request, got {received:?}", self.number);
        }
        let message = Message::new(op, &words).map_err(Fail::from)?;
        if let Err(code) = sys::reply(CapSlot::new(0), &message) {
            fail!("replying to puppet {}: {code:?}", self.number);
        }
        Ok(None)
    }

    /// The outcome of the operation handed over last, waiting at most `ticks`.
    pub fn finish(&self, ticks: u64) -> Result<Step, Fail> {
        let received = match sys::recv_timeout(self.control, ticks) {
            Ok(received) => received,
            Err(ErrorCode::TimedOut) => return Ok(Step::Blocked),
            Err(code) => fail!("waiting for puppet {}: {code:?}", self.number),
        };
        if let Some(end) = self.end(&received) {
            return Ok(Step::Ended(end));
        }
        let words = received.message.words();
        let mut regs = [0u64; 8];
        for (reg, word) in regs.iter_mut().zip(words) {
            *reg = *word;
        }
        Ok(Step::Ret(Ret { rax: u64::from(received.message.label()), regs }))
    }

    /// One operation, start to end.
    pub fn op(&self, op: u32, words: [u64; 8]) -> Result<Step, Fail> {
        if let Some(end) = self.begin(op, words)? {
            return Ok(Step::Ended(end));
        }
        self.finish(STEP_TICKS)
    }

    /// A syscall the puppet makes with its own authority; it must come back.
    pub fn sys(&self, number: Sysno, args: &[u64]) -> Result<Ret, Fail> {
        self.raw(number.as_u64() as u32, args)
    }

    /// A syscall by number (any 32-bit value).
    pub fn raw(&self, number: u32, args: &[u64]) -> Result<Ret, Fail> {
        let mut words = [0u64; 8];
        for (word, arg) in words.iter_mut().zip(args) {
            *word = *arg;
        }
        match self.op(number, words)? {
            Step::Ret(ret) => Ok(ret),
            other => fail!("puppet {}: syscall {number} did not return: {other:?}", self.number),
        }
    }

    /// A syscall that must fail with `want`.
    pub fn sys_err(&self, what: &str, number: Sysno, args: &[u64], want: ErrorCode) -> Result<Ret, Fail> {
        let ret = self.sys(number, args)?;
        match ret.result() {
            Err(code) if code == want => Ok(ret),
            other => fail!("{what} (puppet): expected {want:?}, got {other:?}"),
        }
    }

    /// A syscall that must succeed.
    pub fn sys_ok(&self, what: &str, number: Sysno, args: &[u64]) -> Result<Ret, Fail> {
        let ret = self.sys(number, args)?;
        match ret.result() {
            Ok(ret) => Ok(ret),
            Err(code) => fail!("{what} (puppet): expected success, got {code:?}"),
        }
    }

    pub fn load(&self, address: u64) -> Result<Step, Fail> {
        self.op(OP_LOAD, [address, 0, 0, 0, 0, 0, 0, 0])
    }

    pub fn store(&self, address: u64, value: u64) -> Result<Step, Fail> {
        self.op(OP_STORE, [address, value, 0, 0, 0, 0, 0, 0])
    }

    pub fn jump(&self, address: u64) -> Result<Step, Fail> {
        self.op(OP_JUMP, [address, 0, 0, 0, 0, 0, 0, 0])
    }

    pub fn privileged(&self, number: u64) -> Result<Step, Fail> {
        self.op(OP_PRIVILEGED, [number, 0, 0, 0, 0, 0, 0, 0])
    }

    /// Deletes everything the suite holds of the puppet: its thread first (it stops), then
    /// its spaces (and every cap in its capability space), frames and endpoint.
    pub fn teardown(self, world: &mut World) -> Result<(), Fail> {
        let mut result = Ok(());
        for slot in [self.thread, self.cspace, self.aspace, self.stack, self.fault, self.control].into_iter().chain(self.ipc) {
            if let Err(code) = sys::cap_delete(slot)
                && result.is_ok()
            {
                result = Err(Fail(format!("tearing down puppet {}: slot {}: {code:?}", self.number, slot.index())));
            }
            world.unreserve(slot);
        }
        world.code_done(self.code);
        result
    }
}

/// The step must be a fault with `vector` (and, for a page fault, at `address`).
pub fn expect_fault(what: &str, step: Step, vector: u64, address: Option<u64>) -> Result<End, Fail> {
    match step {
        Step::Ended(end @ End::Fault { vector: v, address: a, .. }) if v == vector && address.is_none_or(|want| want == a) => Ok(end),
        other => fail!("{what}: expected fault vector {vector} at {address:x?}, got {other:x?}"),
    }
}

/// The step must have returned (the load or store worked); returns `rdi`.
pub fn expect_ret(what: &str, step: Step) -> Result<Ret, Fail> {
    match step {
        Step::Ret(ret) => Ok(ret),
        other => fail!("{what}: expected the puppet to carry on, got {other:x?}"),
    }
}
