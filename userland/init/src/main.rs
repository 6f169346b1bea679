//! init: the first process. Starts every program of the boot manifest with exactly the caps
//! the manifest lists, then supervises them.
//!
//! The kernel starts init seL4-root-task style: the whole initrd mapped read-only (its
//! address and length are the start arguments, see `libcap::rt::initrd`), slot 1 the
//! console, slot 2 init's own capability space, slot 3 its own address space, every other
//! slot free, most of free memory as its quota, priority 31. Everything else in the system
//! is built from that here:
//!
//! 1. read `etc/system.bin` from the initrd, `manifest::decode` it (which re-checks the
//!    `[security.*]` policy against this build's mechanisms), print the policy summary and
//!    the table;
//! 2. create the endpoints and notifications it names (init keeps the all-rights originals),
//!    a fault endpoint on which init hears of every program's end, and a private endpoint
//!    nobody sends to, whose receive timeout is init's sleep;
//! 3. per program, in manifest order: a capability space (its quota), an address space and
//!    a thread; load `bin/<name>` (`libcap::loader`); give it each manifest cap at its slot
//!    with the manifest's rights and badge; configure priority, budget and the fault
//!    endpoint (badged program index + 1, so a message names its program); start it;
//! 4. forever: receive on the fault endpoint, log the end with its cause (and record it in
//!    the security log, a bounded ring readers reach through `init-api`), tell the memory
//!    server (if the manifest names one) to free the regions of every memory client the
//!    program was, and apply the program's `on_crash` policy. A clean exit (code 0) is not
//!    a crash; any other exit code, a fault or a kill is. A call on the same endpoint under
//!    a supervisor badge (`init-api`, given by `supervisor = ...` in the manifest) is a
//!    question about the programs, answered at once; under the control badge it may also
//!    restart or stop one.
//!
//! A program that ends is torn down by deleting init's caps to its objects: its thread,
//! capability space (and so every cap it held), address space and the keepers of its frames.
//! A restart builds a fresh incarnation from scratch.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

use kcore::ustar::Archive;
use libcap::abi::syscall::fault_label;
use libcap::loader::{self, LoadError};
use libcap::process::{self, Budget, NewObject, SlotAllocator, ThreadConfig};
use libcap::sys::{self, Received};
use libcap::{Badge, CapSlot, ErrorCode, ObjectType, Rights, println, rt, slots};
use manifest::{CompiledManifest, ObjectRef, Program, RestartPolicy};

libcap::entry!(main);

/// init's own capability space (the kernel's contract).
const OWN_CSPACE: CapSlot = CapSlot::new(2);
/// init's own address space (the kernel's contract); used only for the loader's scratch page.
const OWN_SPACE: CapSlot = CapSlot::new(3);
/// init's first free slot.
const FIRST_FREE: CapSlot = CapSlot::new(4);
/// init's free slots end here: the kernel puts the device caps it does not use itself at
/// slots 100 and up (kernel/src/process.rs, `INIT_DEVICE_CAPS`), and the initrd as a
/// read-only borrowed frame at 121 (`libcap::slots::INIT_INITRD_FRAME_SLOT`).
const FIRST_DEVICE_SLOT: u32 = 100;
/// Where the kernel puts init's interrupt-handler caps, by ISA line (`INIT_DEVICE_CAPS`).
const IRQ_SLOTS: [(u32, CapSlot); 4] =
    [(1, CapSlot::new(100)), (3, CapSlot::new(101)), (8, CapSlot::new(102)), (12, CapSlot::new(103))];
/// Where the kernel puts init's authority-audit cap (`INIT_DEVICE_CAPS`), for the one
/// program with `audit = true` (system.toml: the test runner).
const AUDIT_SLOT: CapSlot = CapSlot::new(120);
/// Length of a timer tick, which receive timeouts count in.
const TICK_MS: u32 = 10;
/// How many ticks init tries to reach a busy memory server (see `Supervisor::client_gone`).
const CLIENT_GONE_TRIES: u32 = 20;
/// Where the compiled manifest is in the initrd.
const MANIFEST_PATH: &str = "etc/system.bin";

fn main() -> Result<(), ErrorCode> {
    // Under TCG with -icount the time-stamp counter counts guest instructions since reset:
    // `cargo xtask bench` reads boot-to-init and boot-to-everything-started from these lines.
    println!("init: running (tsc {})", libcap::bench::rdtsc());
    check_initial_authority()?;
    let Some(initrd) = rt::initrd() else {
        println!("init: the kernel passed no initrd");
        return Err(ErrorCode::InvalidArgument);
    };
    let manifest = match Archive::find(initrd, MANIFEST_PATH) {
        Ok(Some(blob)) => manifest::decode(blob).map_err(|error| {
            println!("init: {MANIFEST_PATH}: {error}");
            ErrorCode::InvalidArgument
        })?,
        Ok(None) => {
            println!("init: no {MANIFEST_PATH} in the initrd");
            return Err(ErrorCode::InvalidArgument);
        }
        Err(error) => {
            println!("init: the initrd is not a readable archive: {error:?}");
            return Err(ErrorCode::InvalidArgument);
        }
    };
    // The [security.*] policy, one line per section, and a NOT ENFORCED line for each key
    // the developer built anyway (`--allow-unenforced`): what this boot does not protect is
    // said in its log.
    libcap::print!("{}", manifest.policy.summary(&manifest));
    libcap::print!("{}", manifest.table());

    let mut slots = SlotAllocator::new(FIRST_FREE, FIRST_DEVICE_SLOT);
    let objects = Objects::create(&manifest, initrd, &mut slots)?;
    let mut supervisor = Supervisor {
        initrd,
        manifest: &manifest,
        memory_server: manifest.memory_server,
        objects,
        slots,
        children: Vec::new(),
        log: security_log::Ring::new(),
        kernel_denials_next: 0,
    };
    for program in &manifest.programs {
        supervisor.children.push(Child { program, backoff_ms: manifest::INITIAL_BACKOFF_MS, running: None, restarts: 0, asked: None });
    }
    for index in 0..supervisor.children.len() {
        supervisor.start(index);
    }
    println!("init: all {} programs started (tsc {})", supervisor.children.len(), libcap::bench::rdtsc());
    supervisor.supervise()
}

/// Slots 1 to 3 hold what the kernel promised; anything else means init and kernel disagree.
fn check_initial_authority() -> Result<(), ErrorCode> {
    for (slot, expected) in [
        (slots::CONSOLE, ObjectType::Console),
        (OWN_CSPACE, ObjectType::CSpace),
        (OWN_SPACE, ObjectType::AddressSpace),
    ] {
        let found = sys::cap_identify(slot)?.object_type;
        if found != expected {
            println!("init: slot {} holds {found:?}, expected {expected:?}", slot.index());
            return Err(ErrorCode::WrongObjectType);
        }
    }
    Ok(())
}

/// The objects init creates at boot, by the manifest's indices.
struct Objects {
    endpoints: Vec<CapSlot>,
    notifications: Vec<CapSlot>,
    /// Every program's thread reports its end here, through a cap badged with its index + 1.
    fault: CapSlot,
    /// Nobody holds a cap to send on this: receiving on it with a timeout is a sleep.
    sleep: CapSlot,
    /// init's cap to the memory server's endpoint, badged `memory_api::SUPERVISOR_BADGE`.
    memory: Option<CapSlot>,
    /// The manifest's files, as slices of the initrd frame (`None`: not in the initrd, or
    /// not placed on a page of its own; said at boot, and the programs holding it do not start).
    files: Vec<Option<CapSlot>>,
    /// The manifest's PCI devices, as found on bus 0 (`None`: absent, said at boot, and the
    /// program holding it does not start).
    devices: Vec<Option<Device>>,
}

/// A PCI function init found for the manifest: a one-function PCI cap cut from the bus cap,
/// and a device frame of exactly each memory BAR, cut from the device frame where the
/// kernel placed it (`PciBar`).
#[derive(Clone, Copy)]
struct Device {
    function: CapSlot,
    bars: [Option<CapSlot>; 6],
}

/// Finds the first function on bus 0 with `id` and cuts its caps (see [`Device`]).
fn find_device(id: manifest::PciId, slots: &mut SlotAllocator) -> Result<Device, &'static str> {
    let wanted = u32::from(id.device) << 16 | u32::from(id.vendor);
    let function = (0..256u16)
        .find(|&f| sys::pci_config_read(slots::INIT_PCI_SLOT, f, 0, 4) == Ok(wanted))
        .ok_or("not on PCI bus 0")?;
    let pci = slots.take().map_err(|_| "no free slot")?;
    sys::pci_slice(slots::INIT_PCI_SLOT, function, pci).map_err(|_| "the kernel refused the PCI slice")?;
    let window = sys::frame_info(slots::INIT_DEVICE_FRAME_SLOT).map_err(|_| "no device frame")?;
    let mut bars = [None; 6];
    for (index, bar) in bars.iter_mut().enumerate() {
        let placed = sys::pci_bar(slots::INIT_PCI_SLOT, function, index as u8).map_err(|_| "PciBar refused")?;
        if placed.bytes == 0 {
            continue;
        }
        let offset = placed.address.checked_sub(window.phys).ok_or("a BAR outside the device window")?;
        let slot = slots.take().map_err(|_| "no free slot")?;
        sys::frame_slice(slots::INIT_DEVICE_FRAME_SLOT, offset, placed.bytes, slot).map_err(|_| "the kernel refused the BAR slice")?;
        *bar = Some(slot);
    }
    Ok(Device { function: pci, bars })
}

/// `path`'s data as a frame of exactly its length, cut from the initrd frame. xtask puts
/// such a file on pages of its own, zero-padded after it, so the frame shows nothing else.
fn slice_file(initrd: &[u8], path: &str, slots: &mut SlotAllocator) -> Result<CapSlot, &'static str> {
    let data = match Archive::find(initrd, path) {
        Ok(Some(data)) => data,
        _ => return Err("not in the initrd"),
    };
    // The initrd frame starts at the page holding the initrd's first byte.
    let page_offset = initrd.as_ptr() as u64 % 4096;
    let offset = data.as_ptr() as u64 - initrd.as_ptr() as u64 + page_offset;
    if !offset.is_multiple_of(4096) || data.is_empty() {
        return Err("empty, or not on a page of its own");
    }
    let slot = slots.take().map_err(|_| "no free slot")?;
    match sys::frame_slice(slots::INIT_INITRD_FRAME_SLOT, offset, data.len() as u64, slot) {
        Ok(()) => Ok(slot),
        Err(_) => {
            slots.give_back(slot);
            Err("the kernel refused the slice")
        }
    }
}

impl Objects {
    fn create(manifest: &CompiledManifest, initrd: &[u8], slots: &mut SlotAllocator) -> Result<Objects, ErrorCode> {
        let files = manifest
            .files
            .iter()
            .map(|path| {
                slice_file(initrd, path, slots)
                    .map_err(|why| println!("init: file \"{path}\" cannot be handed out: {why}"))
                    .ok()
            })
            .collect();
        let devices = manifest
            .devices
            .iter()
            .map(|&id| {
                find_device(id, slots).map_err(|why| println!("init: device pci {id} cannot be handed out: {why}")).ok()
            })
            .collect();
        let mut new = |object| -> Result<CapSlot, ErrorCode> {
            let slot = slots.take()?;
            process::create(slot, object)?;
            Ok(slot)
        };
        let endpoints: Vec<CapSlot> =
            manifest.endpoints.iter().map(|_| new(NewObject::Endpoint)).collect::<Result<_, _>>()?;
        let notifications =
            manifest.notifications.iter().map(|_| new(NewObject::Notification)).collect::<Result<_, _>>()?;
        let fault = new(NewObject::Endpoint)?;
        let sleep = new(NewObject::Endpoint)?;
        let memory = match manifest.memory_server.and_then(|e| endpoints.get(e as usize).copied()) {
            Some(endpoint) => {
                let slot = slots.take()?;
                sys::cap_mint(endpoint, slot, Rights::WRITE, Badge::new(memory_api::SUPERVISOR_BADGE))?;
                Some(slot)
            }
            None => None,
        };
        Ok(Objects { endpoints, notifications, fault, sleep, memory, files, devices })
    }

    /// init's slot holding `object`, if init holds it.
    fn source(&self, object: ObjectRef) -> Option<CapSlot> {
        match object {
            ObjectRef::Console => Some(slots::CONSOLE),
            ObjectRef::Endpoint(i) => self.endpoints.get(i as usize).copied(),
            ObjectRef::Notification(i) => self.notifications.get(i as usize).copied(),
            ObjectRef::Irq(line) => IRQ_SLOTS.iter().find(|(l, _)| *l == line).map(|&(_, slot)| slot),
            // init's port caps cover whole device ranges and CapGive cannot narrow a range,
            // so handing out a manifest's exact range needs a kernel call that does not exist.
            ObjectRef::IoPorts(_) => None,
            // Per incarnation: `Supervisor::build` gives it.
            ObjectRef::OwnAddressSpace => None,
            // Minted from the fault endpoint with the grant's supervisor badge.
            ObjectRef::Supervisor => Some(self.fault),
            ObjectRef::File(i) => self.files.get(i as usize).copied().flatten(),
            ObjectRef::Pci(i) => self.devices.get(i as usize).copied().flatten().map(|d| d.function),
            ObjectRef::PciBar(i, bar) => {
                self.devices.get(i as usize).copied().flatten().and_then(|d| d.bars.get(usize::from(bar)).copied().flatten())
            }
        }
    }
}

/// One program of the manifest and its current incarnation, if one runs.
struct Child<'m> {
    program: &'m Program,
    /// The delay before the next restart.
    backoff_ms: u32,
    running: Option<Incarnation>,
    /// How many times it was started again (after a crash or a restart request).
    restarts: u32,
    /// What a supervisor asked for the end it caused (a kill), if any.
    asked: Option<Asked>,
}

/// A supervisor's request that ends the running incarnation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asked {
    Restart,
    Stop,
}

/// What init holds of a running program: tearing it down is deleting these.
struct Incarnation {
    cspace: CapSlot,
    space: CapSlot,
    thread: CapSlot,
    /// init's badged cap to the fault endpoint, named in the thread's configuration.
    fault: CapSlot,
    image: loader::Image,
}

impl Incarnation {
    /// The audit's numbers for its thread and space (`CapIdentify` of init's caps).
    fn audit_numbers(&self) -> Option<init_api::Running> {
        let index = |slot| sys::cap_identify(slot).ok().and_then(|info| u16::try_from(info.audit_index).ok());
        Some(init_api::Running { thread: index(self.thread)?, space: index(self.cspace)? })
    }
}

/// Why a program could not be started.
enum StartError {
    NotInInitrd,
    Load(LoadError),
    NotHeld(ObjectRef),
    Kernel { step: &'static str, code: ErrorCode },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NotInInitrd => f.write_str("its binary is not in the initrd"),
            StartError::Load(error) => write!(f, "loading it: {error}"),
            StartError::NotHeld(object) => write!(f, "init holds no {object:?} to give it"),
            StartError::Kernel { step, code } => write!(f, "{step}: {}", code.as_str()),
        }
    }
}

/// Attaches what init was doing to a kernel error.
fn at(step: &'static str) -> impl Fn(ErrorCode) -> StartError {
    move |code| StartError::Kernel { step, code }
}

/// How a program ended, decoded from the kernel's message on the fault endpoint.
#[derive(Clone, Copy, Debug)]
enum End {
    Exited(u64),
    Faulted { vector: u64, error: u64, address: u64, rip: u64 },
    Killed,
    Unknown(u32),
}

impl End {
    fn decode(received: &Received) -> End {
        let word = |i: usize| received.message.words().get(i).copied().unwrap_or(0);
        match received.message.label() {
            fault_label::EXIT => End::Exited(word(0)),
            fault_label::FAULT => End::Faulted { vector: word(0), error: word(1), address: word(2), rip: word(3) },
            fault_label::KILLED => End::Killed,
            other => End::Unknown(other),
        }
    }

    fn is_crash(self) -> bool {
        !matches!(self, End::Exited(0))
    }
}

/// The architectural name of an exception vector.
fn vector_name(vector: u64) -> &'static str {
    match vector {
        0 => "divide error",
        3 => "breakpoint",
        6 => "invalid opcode",
        13 => "general protection fault",
        14 => "page fault",
        16 | 19 => "floating-point exception",
        17 => "alignment check",
        _ => "exception",
    }
}

struct Supervisor<'m> {
    initrd: &'static [u8],
    /// For naming objects in supervisor answers.
    manifest: &'m CompiledManifest,
    /// The manifest's memory-server endpoint index.
    memory_server: Option<u32>,
    objects: Objects,
    slots: SlotAllocator,
    children: Vec<Child<'m>>,
    /// The security log: every fault, crash, restart and refused supervisor request, for
    /// readers through the supervisor interface (`init-api` `Request::Log`).
    log: security_log::Ring<LogEntry, LOG_RECORDS>,
    /// The number of the next kernel denial record to read (`AuditDenial`).
    kernel_denials_next: u64,
}

/// How many security-log records init keeps; older ones are counted, not kept.
const LOG_RECORDS: usize = 64;

/// One security-log record as init keeps it (names are looked up when it is read).
#[derive(Clone, Copy)]
struct LogEntry {
    tsc: u64,
    /// The program's manifest index; `None` if init cannot tell which program it was.
    program: Option<u16>,
    event: init_api::LogEvent,
}

impl Supervisor<'_> {
    /// Adds a record to the security log. Never waits: the ring overwrites its oldest
    /// record when full and counts it.
    fn record(&mut self, program: Option<usize>, event: init_api::LogEvent) {
        let program = program.and_then(|index| u16::try_from(index).ok());
        self.log.push(LogEntry { tsc: libcap::bench::rdtsc(), program, event });
    }

    /// Moves the kernel's denial records (`AuditDenial`) into the security log, naming the
    /// program whose thread it was; a gap in their numbers is recorded as what the kernel
    /// overwrote before init read it.
    fn drain_kernel_denials(&mut self) {
        use libcap::abi::syscall::denial::{BUDGET_OVERRUN, REFUSED_SYSCALL};
        // Which program runs on which kernel thread, asked once per visit, and only if the
        // kernel has something new.
        let Ok(Ok(first)) = sys::audit_denial(AUDIT_SLOT, self.kernel_denials_next) else { return };
        let threads: Vec<(u16, usize)> = self
            .children
            .iter()
            .enumerate()
            .filter_map(|(index, child)| Some((child.running.as_ref()?.audit_numbers()?.thread, index)))
            .collect();
        let mut next = Some(first);
        // A flood refills the ring as fast as it is read: take one ring's worth per visit.
        for _ in 0..libcap::abi::syscall::denial::RECORDS {
            let Some(denial) = next.take().or_else(|| sys::audit_denial(AUDIT_SLOT, self.kernel_denials_next).ok()?.ok()) else { return };
            if denial.number > self.kernel_denials_next {
                self.record(None, init_api::LogEvent::KernelLost { count: denial.number - self.kernel_denials_next });
            }
            self.kernel_denials_next = denial.number.saturating_add(1);
            let program = threads.iter().find(|(thread, _)| *thread == denial.thread).map(|(_, index)| *index);
            let event = match denial.kind {
                REFUSED_SYSCALL => init_api::LogEvent::RefusedSyscall {
                    syscall: denial.syscall,
                    code: denial.code.map_or(0, |c| c.as_u32() as u16),
                    suppressed: denial.suppressed,
                },
                BUDGET_OVERRUN => init_api::LogEvent::BudgetOverrun { suppressed: denial.suppressed },
                _ => continue,
            };
            self.record(program, event);
        }
    }

    /// The one program holding a status-only supervisor cap, if exactly one does: the
    /// supervisor badge names a level, not a holder, so init can name who asked only then.
    fn status_holder(&self) -> Option<usize> {
        let status = |p: &&Program| {
            p.caps.iter().any(|c| c.object == ObjectRef::Supervisor && c.badge == init_api::STATUS_BADGE)
        };
        let mut holders = self.manifest.programs.iter().enumerate().filter(|(_, p)| status(p));
        match (holders.next(), holders.next()) {
            (Some((index, _)), None) => Some(index),
            _ => None,
        }
    }

    /// Starts the program at `index`, reporting (not returning) a failure: one program that
    /// cannot start does not stop the others.
    fn start(&mut self, index: usize) {
        let Some(program) = self.children.get(index).map(|child| child.program) else { return };
        let began = libcap::bench::rdtsc();
        match self.spawn(index, program) {
            Ok(incarnation) => {
                // The spawn's cost in time-stamp ticks (guest instructions under TCG with
                // -icount), for `cargo xtask bench`.
                let spent = libcap::bench::rdtsc().saturating_sub(began);
                println!(
                    "init: started {} (image at {:#x}, {} pages, spawn {} tsc)",
                    program.name,
                    incarnation.image.base,
                    incarnation.image.frames.count(),
                    spent
                );
                if let Some(child) = self.children.get_mut(index) {
                    child.running = Some(incarnation);
                }
            }
            Err(error) => println!("init: cannot start {}: {error}", program.name),
        }
    }

    /// Builds and starts a fresh incarnation of `program`; on failure, frees what it built.
    fn spawn(&mut self, index: usize, program: &Program) -> Result<Incarnation, StartError> {
        let mut made = Vec::new();
        let result = self.build(index, program, &mut made);
        if result.is_err() {
            for slot in made.into_iter().rev() {
                let _ = self.slots.delete(slot);
            }
        }
        result
    }

    /// The steps of [`Supervisor::spawn`]; every slot it fills is pushed to `made` first.
    fn build(&mut self, index: usize, program: &Program, made: &mut Vec<CapSlot>) -> Result<Incarnation, StartError> {
        let mut new = |slots: &mut SlotAllocator, object, step| -> Result<CapSlot, StartError> {
            let slot = slots.take().map_err(at(step))?;
            made.push(slot);
            process::create(slot, object).map_err(at(step))?;
            Ok(slot)
        };
        let cspace = new(&mut self.slots, NewObject::CSpace { quota: program.memory_quota }, "creating its cspace")?;
        let space = new(&mut self.slots, NewObject::AddressSpace, "creating its address space")?;
        let thread = new(&mut self.slots, NewObject::Thread, "creating its thread")?;

        let binary = match Archive::find(self.initrd, &program.binary) {
            Ok(Some(binary)) => binary,
            _ => return Err(StartError::NotInInitrd),
        };
        let image = loader::load(binary, space, OWN_SPACE, &mut self.slots).map_err(StartError::Load)?;
        // From here on, a failure must also free the image's frames.
        let finish = |this: &mut Self, made: &mut Vec<CapSlot>| -> Result<CapSlot, StartError> {
            for grant in &program.caps {
                let source = match grant.object {
                    // Made for this incarnation, not at boot.
                    ObjectRef::OwnAddressSpace => space,
                    object => this.objects.source(object).ok_or(StartError::NotHeld(object))?,
                };
                process::cap_give(source, cspace, grant.slot(), grant.rights(), grant.badge())
                    .map_err(at("giving it a cap"))?;
            }
            if let Some(slot) = program.audit_slot() {
                process::cap_give(AUDIT_SLOT, cspace, slot, Rights::READ, Badge::NONE).map_err(at("giving it the audit cap"))?;
            }
            let fault = this.slots.take().map_err(at("minting its fault cap"))?;
            made.push(fault);
            let badge = Badge::new(index as u64 + 1);
            sys::cap_mint(this.objects.fault, fault, Rights::WRITE, badge).map_err(at("minting its fault cap"))?;
            let config = ThreadConfig {
                priority: program.priority,
                budget: Some(Budget { budget_us: program.budget_us, period_us: program.period_us }),
                fault_endpoint: Some(fault),
            };
            process::thread_configure(thread, config).map_err(at("configuring its thread"))?;
            Ok(fault)
        };
        let fault = match finish(self, made) {
            Ok(fault) => fault,
            Err(error) => {
                let _ = image.frames.release(&mut self.slots);
                return Err(error);
            }
        };
        let incarnation = Incarnation { cspace, space, thread, fault, image };
        if let Err(code) = process::thread_start(thread, space, cspace, incarnation.image.start) {
            made.clear(); // teardown frees them all
            self.teardown(incarnation);
            return Err(at("starting its thread")(code));
        }
        Ok(incarnation)
    }

    /// Deletes everything init holds of an incarnation; the kernel frees the objects.
    fn teardown(&mut self, incarnation: Incarnation) {
        let Incarnation { cspace, space, thread, fault, image } = incarnation;
        // The thread first, so nothing runs in a space that is going away.
        for slot in [thread, cspace, space, fault] {
            if let Err(code) = self.slots.delete(slot) {
                println!("init: deleting slot {}: {}", slot.index(), code.as_str());
            }
        }
        if let Err(code) = image.frames.release(&mut self.slots) {
            println!("init: freeing frames: {}", code.as_str());
        }
    }

    /// Receives end messages forever and applies each program's policy.
    fn supervise(&mut self) -> ! {
        loop {
            if self.children.iter().all(|child| child.running.is_none()) {
                println!("init: no program is running; waiting");
            }
            let received = match sys::recv(self.objects.fault) {
                Ok(received) => received,
                Err(code) => {
                    println!("init: receiving on the fault endpoint: {}; stopping", code.as_str());
                    sys::thread_exit(1);
                }
            };
            // Before anything else: what the kernel refused since (a reader asking for the
            // log then sees it).
            self.drain_kernel_denials();
            let badge = received.badge.value();
            if [init_api::STATUS_BADGE, init_api::CONTROL_BADGE, init_api::REPORT_BADGE].contains(&badge) {
                self.answer(badge, &received);
                continue;
            }
            let index = badge.checked_sub(1).map(|i| i as usize);
            match index.filter(|&i| i < self.children.len()) {
                Some(index) => self.on_end(index, End::decode(&received)),
                None => println!("init: end message with unknown badge {}", received.badge.value()),
            }
        }
    }

    /// A security-log record for a reader.
    fn log_reply(&self, number: u64, entry: LogEntry) -> init_api::Reply {
        let program = entry.program.and_then(|index| self.manifest.programs.get(usize::from(index)));
        init_api::Reply::Log(init_api::LogRecord {
            number,
            tsc: entry.tsc,
            program: init_api::name(program.map_or("(a status supervisor holder)", |p| p.name.as_str())),
            sandbox: program.is_some_and(|p| p.sandbox),
            event: entry.event,
        })
    }

    /// Answers a supervisor's call (`init-api`). Never blocks: the caller waits in `Call`,
    /// so the reply goes straight to it; a caller that died meanwhile is its own loss.
    fn answer(&mut self, badge: u64, received: &Received) {
        use init_api::{Reply, Request};
        let control = badge == init_api::CONTROL_BADGE;
        let reply = match libcap::ipc::decode::<Request>(&received.message) {
            Err(_) => None,
            Ok(Request::Program { index }) => Some(self.children.get(usize::from(index)).map_or(Reply::NoSuch, |child| {
                Reply::Program(init_api::ProgramInfo {
                    name: init_api::name(&child.program.name),
                    priority: child.program.priority,
                    budget_us: child.program.budget_us,
                    period_us: child.program.period_us,
                    memory_quota: child.program.memory_quota,
                    restarts_on_crash: matches!(child.program.on_crash, RestartPolicy::Restart { .. }),
                    restarts: child.restarts,
                    caps: u16::try_from(child.program.caps.len()).unwrap_or(u16::MAX),
                    audit_slot: child.program.audit_slot().and_then(|slot| u8::try_from(slot.index()).ok()),
                    running: child.running.as_ref().and_then(|running| running.audit_numbers()),
                })
            })),
            Ok(Request::Cap { program, cap }) => Some(
                self.children
                    .get(usize::from(program))
                    .and_then(|child| child.program.caps.get(usize::from(cap)))
                    .map_or(Reply::NoSuch, |grant| {
                        Reply::Cap(init_api::CapInfo {
                            slot: grant.slot,
                            kind: grant.kind().as_u32(),
                            rights: grant.rights,
                            badge: grant.badge,
                            object: init_api::name(&alloc::format!("{}", self.manifest.object_name(grant.object))),
                        })
                    }),
            ),
            Ok(Request::PolicyKey { index }) => Some(manifest::Key::ALL.get(usize::from(index)).map_or(Reply::NoSuch, |key| {
                Reply::PolicyKey(init_api::PolicyKeyInfo {
                    section: init_api::name(key.section()),
                    key: init_api::name(key.name()),
                    state: init_api::name(self.manifest.policy.state(*key).label()),
                })
            })),
            Ok(Request::Log { number }) => Some(match self.log.get(number) {
                security_log::Lookup::Found(entry) => self.log_reply(number, entry),
                security_log::Lookup::Gone { oldest } => match self.log.get(oldest) {
                    security_log::Lookup::Found(entry) => self.log_reply(oldest, entry),
                    _ => Reply::LogEnd { next: self.log.next(), dropped: self.log.dropped() },
                },
                security_log::Lookup::End { next } => Reply::LogEnd { next, dropped: self.log.dropped() },
            }),
            Ok(Request::Restart { program } | Request::Stop { program }) if !control => {
                let holder = self.status_holder();
                self.record(holder, init_api::LogEvent::SupervisorRefused { target: program });
                Some(Reply::NotPermitted)
            }
            Ok(Request::ReportModelRefused { model, check }) => Some(self.model_refused(badge, model, check)),
            Ok(Request::Restart { program }) => Some(self.ask(usize::from(program), Asked::Restart)),
            Ok(Request::Stop { program }) => Some(self.ask(usize::from(program), Asked::Stop)),
        };
        let message = match reply {
            Some(reply) => libcap::ipc::encode(libcap::ipc::LABEL_OK, &reply),
            None => sys::Message::new(libcap::ipc::LABEL_BAD_REQUEST, &[]),
        };
        if let Ok(message) = message {
            let _ = sys::reply(self.objects.fault, &message);
        }
    }

    /// The AI server's record of a model it refused: only through the report badge (which
    /// the manifest gives the AI server alone), for a model of the manifest, with a check
    /// name of printable ASCII. The record is the AI server's, naming the model.
    fn model_refused(&mut self, badge: u64, model: u16, check: [u8; init_api::CHECK_MAX]) -> init_api::Reply {
        if badge != init_api::REPORT_BADGE {
            return init_api::Reply::NotPermitted;
        }
        let text = init_api::check_name(&check);
        let printable = !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if usize::from(model) >= self.manifest.models.len() || !printable || check[text.len()..].iter().any(|&b| b != 0) {
            return init_api::Reply::NoSuch;
        }
        let server = self.manifest.ai_server.as_deref().and_then(|name| self.manifest.programs.iter().position(|p| p.name == name));
        self.record(server, init_api::LogEvent::ModelRefused { model, check });
        init_api::Reply::Done
    }

    /// A control request: kill the running incarnation; its end report (a kill) then
    /// restarts or stops it as asked (`on_end`).
    fn ask(&mut self, index: usize, asked: Asked) -> init_api::Reply {
        let Some(child) = self.children.get_mut(index) else { return init_api::Reply::NoSuch };
        match &child.running {
            Some(running) => {
                child.asked = Some(asked);
                let thread = running.thread;
                match process::thread_kill(thread) {
                    Ok(()) => init_api::Reply::Done,
                    Err(_) => {
                        child.asked = None;
                        init_api::Reply::NoSuch
                    }
                }
            }
            None if asked == Asked::Restart => {
                self.start(index);
                if let Some(child) = self.children.get_mut(index) {
                    child.restarts = child.restarts.saturating_add(1);
                }
                init_api::Reply::Done
            }
            None => init_api::Reply::Done,
        }
    }

    fn on_end(&mut self, index: usize, end: End) {
        let Some(child) = self.children.get_mut(index) else { return };
        let name = child.program.name.as_str();
        let base = child.running.as_ref().map_or(0, |running| running.image.base);
        let event = match end {
            End::Exited(0) => None,
            End::Exited(code) => Some(init_api::LogEvent::Exited { code }),
            End::Faulted { vector, address, .. } => {
                Some(init_api::LogEvent::Fault { vector: u8::try_from(vector).unwrap_or(u8::MAX), address })
            }
            // A kill a supervisor asked for is recorded as the restart or stop it leads to.
            End::Killed if child.asked.is_some() => None,
            End::Killed => Some(init_api::LogEvent::Killed),
            End::Unknown(_) => None,
        };
        match end {
            End::Exited(code) => match libcap::rt::ExitReason::of(code) {
                Some(reason) => println!("init: {name} exited (code {code}: {reason})"),
                None => println!("init: {name} exited (code {code})"),
            },
            End::Faulted { vector, error, address, rip } => println!(
                "init: {name} faulted: {} (vector {vector}, error {error:#x}), address {address:#x}, rip {rip:#x} (image + {:#x})",
                vector_name(vector),
                rip.wrapping_sub(base)
            ),
            End::Killed => println!("init: {name} was killed"),
            End::Unknown(label) => println!("init: {name}: end message with unknown label {label}"),
        }
        let policy = child.program.on_crash;
        let delay_ms = child.backoff_ms;
        let program = child.program;
        if let Some(incarnation) = child.running.take() {
            self.teardown(incarnation);
        }
        if let Some(event) = event {
            self.record(Some(index), event);
        }
        for client in program.memory_clients(self.memory_server) {
            self.client_gone(client);
        }
        let asked = self.children.get_mut(index).and_then(|child| child.asked.take());
        match (asked, end) {
            (Some(Asked::Stop), End::Killed) => {
                println!("init: {name} stopped, as a supervisor asked");
                return;
            }
            (Some(Asked::Restart), End::Killed) => {
                println!("init: {name} restarting, as a supervisor asked");
                self.record(Some(index), init_api::LogEvent::Restarted { delay_ms: 0 });
                if let Some(child) = self.children.get_mut(index) {
                    child.restarts = child.restarts.saturating_add(1);
                }
                self.start(index);
                return;
            }
            _ => {}
        }
        if !end.is_crash() {
            return;
        }
        match policy {
            RestartPolicy::Fatal => {
                println!("init: {name} crashed, fatal");
                self.record(Some(index), init_api::LogEvent::Fatal);
            }
            RestartPolicy::Restart { max_backoff_ms } => {
                println!("init: {name} crashed; restarting in {delay_ms} ms");
                self.sleep_ms(delay_ms);
                if let Some(child) = self.children.get_mut(index) {
                    child.backoff_ms = delay_ms.saturating_mul(2).min(max_backoff_ms);
                    child.restarts = child.restarts.saturating_add(1);
                }
                self.record(Some(index), init_api::LogEvent::Restarted { delay_ms });
                self.start(index);
            }
        }
    }

    /// Tells the memory server that `client` ended, so it frees the client's regions before
    /// init starts the program again. A send that does not block: init must never wait on
    /// a server (the server may be the one waiting for init to restart it). The server is
    /// almost always waiting in receive; if it is busy, init tries again a tick later, a
    /// few times, then gives up and says so (the regions stay until the server restarts).
    fn client_gone(&self, client: u16) {
        let Some(memory) = self.objects.memory else { return };
        let Ok(message) = libcap::ipc::encode(memory_api::LABEL, &memory_api::Request::ClientGone { client }) else {
            return;
        };
        for _ in 0..CLIENT_GONE_TRIES {
            match sys::nb_send(memory, &message) {
                Ok(()) => return,
                Err(ErrorCode::WouldBlock) => self.sleep_ms(TICK_MS),
                Err(code) => {
                    println!("init: telling the memory server that client {client} ended: {}", code.as_str());
                    return;
                }
            }
        }
        println!("init: the memory server did not take client {client}'s end; its regions stay until the server restarts");
    }

    /// Sleeps by receiving, with a timeout, on an endpoint nobody can send to. End messages
    /// of other programs wait in the fault endpoint's queue meanwhile.
    fn sleep_ms(&self, ms: u32) {
        let ticks = ms.div_ceil(TICK_MS).max(1);
        match sys::recv_timeout(self.objects.sleep, u64::from(ticks)) {
            Err(ErrorCode::TimedOut) => {}
            other => println!("init: sleep ended early: {other:?}"),
        }
    }
}
