//! The boot manifest: which processes init starts, and exactly which caps each one holds.
//!
//! Initial authority is data. `system.toml` at the repository root says which programs run,
//! with what priority, CPU budget, memory quota, crash policy and caps; xtask checks it
//! ([`compile`], `std` only) and packs the result, postcard-encoded, into the initrd as
//! `etc/system.bin`. init [`decode`]s that blob, creates the named endpoints and
//! notifications, starts each program with the caps listed for it and nothing else, and
//! prints [`CompiledManifest::table`]. The same compiled manifest is the oracle for the
//! capability-leak tests: [`Program::caps`] is, slot by slot, the exact set of caps a process
//! should hold at start.
//!
//! # Slot numbering
//!
//! Deterministic, so programs and tests can name slots as constants:
//!
//! - slot [`NULL_SLOT`] (0) is never filled: a zeroed slot variable never names a cap;
//! - slot [`CONSOLE_SLOT`] (1) holds the console if the program is given one, else it is empty;
//! - the program's `caps` entries fill slots [`FIRST_CAP_SLOT`] (2), 3, ... in the order
//!   `system.toml` lists them;
//! - every slot is below [`SPACE_SLOTS`], except the two caps of a `heap` entry: its cap
//!   to the memory server at [`HEAP_MEMORY_SLOT`] (126) and its own address space at
//!   [`HEAP_SPACE_SLOT`] (127), where libcap's allocator looks for them (`libcap::slots`).
//!
//! init gives a process nothing else: no cap to its own thread, address space or capability
//! space (init keeps those, to restart or tear it down), and no untyped memory: a process
//! creates objects against its kernel-memory quota ([`Program::memory_quota`]).
//!
//! # Compiled format (version [`FORMAT_VERSION`])
//!
//! `MAGIC` (4 bytes, `DAIM`), then the format version as a postcard varint `u32`, then the
//! postcard encoding of [`CompiledManifest`]. [`decode`] reads the version before the body,
//! so a version mismatch is reported as such rather than as garbage; it then re-checks every
//! invariant the checker established ([`DecodeError::Invalid`]), because init must not trust
//! a blob more than the kernel trusts init.
//!
//! # Boot authority
//!
//! [`InitAuthority`] is what the manifest says init holds when the kernel starts it: console
//! rights, a kernel-memory quota, CPU time, interrupt lines and I/O port ranges. The checker
//! refuses a manifest that hands out more than that (rights only shrink; quotas and CPU time
//! only divide). init must confirm at boot that the kernel really gave it this much, and stop
//! if not. Endpoints and notifications are not listed there: init creates them itself, so it
//! holds them with every right, and hands out attenuated, optionally badged copies.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod policy;
#[cfg(feature = "std")]
mod policy_source;
#[cfg(feature = "std")]
mod source;
mod table;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use abi::{Badge, CapSlot, ObjectType, Rights};
use serde::{Deserialize, Serialize};

#[cfg(feature = "std")]
pub use source::{ManifestError, compile, compile_with};
pub use policy::{Key, KeyState, Mechanism, Policy, SandboxPolicy};
pub use table::Table;

/// The first bytes of every compiled manifest.
pub const MAGIC: [u8; 4] = *b"DAIM";
/// The compiled format's version; bump it on any change to the encoded types.
pub const FORMAT_VERSION: u32 = 7;

/// Slot 0 is never filled.
pub const NULL_SLOT: u32 = 0;
/// The console's slot, when a program is given the console.
pub const CONSOLE_SLOT: u32 = 1;
/// The slot of a program's first `caps` entry; the rest follow in manifest order.
pub const FIRST_CAP_SLOT: u32 = 2;
/// The manifest assumes every process's capability space has at least this many slots, and
/// refuses a program whose caps would not fit.
pub const SPACE_SLOTS: u32 = 64;
/// Where a program with a `heap` gets its cap to the memory server (write, grant_reply,
/// its client badge). The same number as `libcap::slots::HEAP_MEMORY`.
pub const HEAP_MEMORY_SLOT: u32 = 126;
/// Where a program with a `heap` gets its own address space (write), to map what the
/// memory server gives it. The same number as `libcap::slots::HEAP_SPACE`.
pub const HEAP_SPACE_SLOT: u32 = 127;

/// Where a model sandbox keeps the container frame the AI server sends it with `load` (read
/// only, an immutable slice of the boot image). The one cap a sandbox gains after start: the
/// leak suite allows exactly its own model's container there, and nothing else.
pub const SANDBOX_WEIGHTS_SLOT: u32 = 9;

/// Lowest priority a program may have (0 is the idle thread's).
pub const MIN_PRIORITY: u8 = 1;
/// Highest priority a program may have: below init's ([`INIT_PRIORITY`]), so that init can
/// always run to restart a program or report a fatal crash.
pub const MAX_PRIORITY: u8 = 30;
/// init's own priority.
pub const INIT_PRIORITY: u8 = 31;
/// The longest scheduling period a program may ask for, in microseconds (1 s).
pub const MAX_PERIOD_US: u32 = 1_000_000;
/// The first restart delay after a crash, in milliseconds; each further crash doubles it, up
/// to the program's `max_backoff_ms`.
pub const INITIAL_BACKOFF_MS: u32 = 10;

/// The checked manifest, as init decodes it.
///
/// # Invariants
/// Established by [`compile`] and re-checked by [`decode`]: every [`ObjectRef`] names a
/// declared object, every cap's rights are known bits meaningful for its kind, only endpoint
/// and notification caps carry badges, slots follow the numbering rule in the crate docs,
/// program names are unique, and priorities and budgets are in range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledManifest {
    /// What the kernel gives init, as the manifest assumes it.
    pub init: InitAuthority,
    /// Endpoint names; [`ObjectRef::Endpoint`] indexes this list. Sorted by name.
    pub endpoints: Vec<String>,
    /// Notification names; [`ObjectRef::Notification`] indexes this list. Sorted by name.
    pub notifications: Vec<String>,
    /// The programs, in the order init starts them (the order `system.toml` lists them).
    pub programs: Vec<Program>,
    /// The memory server's endpoint ([`ObjectRef::Endpoint`] index), if the system has one:
    /// `heap` grants name it, and init tells the server through it when a client ends.
    pub memory_server: Option<u32>,
    /// The endpoints and notifications declared `network = true` (the network server's):
    /// a model sandbox may hold none of them while `[security.sandbox] network = false`.
    pub network: Vec<ObjectRef>,
    /// The `[security.*]` policy, each key's state on this build, and the sandbox rules.
    pub policy: Policy,
    /// Initrd paths that `file` caps name; [`ObjectRef::File`] indexes this list. Sorted.
    /// xtask places each one's data at a page boundary, padded with zeros to the next, so
    /// init can hand it out as a read-only frame (`FrameSlice` of the initrd frame) that
    /// shows nothing of the files around it.
    pub files: Vec<String>,
    /// The PCI functions `device` caps name; [`ObjectRef::Pci`] and [`ObjectRef::PciBar`]
    /// index this list. Sorted, unique. No addresses: init finds each function and its BARs
    /// at boot.
    pub devices: Vec<PciId>,
    /// The AI server's program name, if the system has one: it receives, per model, the
    /// container and a call cap to the model's sandbox ([`Model`]).
    pub ai_server: Option<String>,
    /// The models the AI server validates and serves, sorted by name (`[models.NAME]`).
    pub models: Vec<Model>,
    /// The public keys models may be signed with (`keys/trusted.toml`, filled in by xtask
    /// with [`CompiledManifest::trust`]; without them every model is refused as untrusted).
    pub trusted_keys: Vec<TrustedKey>,
}

/// One `[models.NAME]` entry, expanded: its container in the initrd, the key that must have
/// signed it, the sandbox program that runs it and the AI server's caps for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// The model's name, as clients ask for it (`digits`).
    pub name: String,
    /// Its signed container: [`ObjectRef::File`] index.
    pub container: u32,
    /// The [`TrustedKey::name`] that must have signed it.
    pub key: String,
    /// The sandbox program running it (`model-NAME`, crate `model-sandbox`).
    pub sandbox: String,
    /// The sandbox's request endpoint ([`ObjectRef::Endpoint`] index, `model.NAME`).
    pub requests: u32,
    /// In the AI server's space: the container cap (read).
    pub container_slot: u32,
    /// In the AI server's space: the call cap to the sandbox (write, grant).
    pub sandbox_slot: u32,
    /// The largest input a request may carry, in bytes (a text's UTF-8, an image's pixels).
    pub max_input_bytes: u32,
    /// How long one request may take in the sandbox, in milliseconds; the AI server gives up
    /// on it then (to the 10 ms tick above) and answers `Timeout`.
    pub deadline_ms: u32,
}

/// A public key model containers may be signed with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    pub name: String,
    pub public_key: [u8; 32],
}

/// The authority init holds at boot, which everything in the manifest derives from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitAuthority {
    /// init's rights on the console ([`Rights`] bits; 0: init holds no console).
    pub console_rights: u32,
    /// init's kernel-memory quota available for programs, in bytes.
    pub memory_quota: u64,
    /// CPU time init may hand out, in whole CPUs.
    pub cpus: u32,
    /// Interrupt lines init holds an `IrqHandler` cap for (read and write).
    pub irqs: Vec<u32>,
    /// I/O port ranges init holds an `IoPortRange` cap for (read and write).
    pub io_ports: Vec<PortRange>,
}

impl InitAuthority {
    /// init's rights on the console.
    pub fn console(&self) -> Rights {
        Rights::from_bits_truncate(self.console_rights)
    }
}

/// One process init starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    /// The program's name (its crate is `userland/<name>` unless the entry names another
    /// with `program`: several instances of one crate, each its own name).
    pub name: String,
    /// Path of its ELF inside the initrd (`bin/<crate>`).
    pub binary: String,
    /// Scheduling priority, [`MIN_PRIORITY`]..=[`MAX_PRIORITY`]; higher runs first.
    pub priority: u8,
    /// CPU time per period, in microseconds; `1..=period_us`.
    pub budget_us: u32,
    /// Scheduling period, in microseconds; at most [`MAX_PERIOD_US`].
    pub period_us: u32,
    /// Kernel-memory quota, in bytes, charged to init's.
    pub memory_quota: u64,
    /// What init does when the process crashes (a clean exit is not a crash).
    pub on_crash: RestartPolicy,
    /// Whether the process may use the authority-audit debug query (only the test runner):
    /// init gives it a read-only audit cap at [`Program::audit_slot`].
    pub audit: bool,
    /// A model sandbox: held to `[security.sandbox]` ([`policy::sandbox_breach`]).
    pub sandbox: bool,
    /// The caps the process starts with, in slot order.
    pub caps: Vec<CapGrant>,
    /// The `caps` entries the manifest names: the constants xtask generates for the
    /// program's code (`libcap::caps!`). init does not use them.
    pub cap_names: Vec<NamedCap>,
}

/// A cap the manifest names for the program's code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCap {
    /// The name as written (`kv`); the constant is its upper case (`caps::KV`).
    pub name: String,
    /// The slot it is in.
    pub slot: u32,
}

impl Program {
    /// Where the audit cap of a program with `audit = true` goes: the slot after its last
    /// `caps` entry ([`FIRST_CAP_SLOT`] if it has none). `None` without `audit`. init gives
    /// it there, and the leak suite's oracle expects it there and nowhere else.
    pub fn audit_slot(&self) -> Option<CapSlot> {
        let after_caps = self
            .caps
            .iter()
            .filter(|grant| grant.slot < SPACE_SLOTS)
            .map(|grant| grant.slot.saturating_add(1))
            .max()
            .unwrap_or(FIRST_CAP_SLOT);
        self.audit.then(|| CapSlot::new(after_caps.max(FIRST_CAP_SLOT)))
    }
}

impl Program {
    /// The memory-server client numbers this program holds badges for (its `heap`, and any
    /// `caps` entry on the memory server's endpoint with a client badge): when it ends,
    /// init tells the server to free their regions.
    pub fn memory_clients(&self, memory_server: Option<u32>) -> impl Iterator<Item = u16> + '_ {
        self.memory_badges(memory_server).map(|badge| badge.id())
    }

    /// The memory-server client badges this program holds (client number and quota).
    pub fn memory_badges(&self, memory_server: Option<u32>) -> impl Iterator<Item = memory_api::ClientBadge> + '_ {
        self.caps
            .iter()
            .filter(move |grant| memory_server.is_some_and(|e| grant.object == ObjectRef::Endpoint(e)))
            .filter_map(|grant| memory_api::ClientBadge::decode(grant.badge))
    }
}

/// What init does when a process crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// A crash is fatal: init reports it and stops the system.
    Fatal,
    /// Restart it, after [`INITIAL_BACKOFF_MS`] doubling per crash up to `max_backoff_ms`.
    Restart { max_backoff_ms: u32 },
}

/// One cap a process starts with: (slot, object, rights, badge).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapGrant {
    /// Slot index in the process's capability space.
    pub slot: u32,
    /// The object the cap names.
    pub object: ObjectRef,
    /// [`Rights`] bits.
    pub rights: u32,
    /// Badge value; 0 means unbadged.
    pub badge: u64,
}

impl CapGrant {
    pub fn slot(&self) -> CapSlot {
        CapSlot::new(self.slot)
    }
    pub fn rights(&self) -> Rights {
        Rights::from_bits_truncate(self.rights)
    }
    pub fn badge(&self) -> Badge {
        Badge::new(self.badge)
    }
    pub fn kind(&self) -> ObjectType {
        self.object.kind()
    }
}

/// Which kernel object a cap names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectRef {
    /// The kernel console.
    Console,
    /// The endpoint at this index in [`CompiledManifest::endpoints`].
    Endpoint(u32),
    /// The notification at this index in [`CompiledManifest::notifications`].
    Notification(u32),
    /// The handler for this interrupt line.
    Irq(u32),
    /// This range of I/O ports.
    IoPorts(PortRange),
    /// The process's own address space (`Map`/`Unmap` with write): what a memory-server
    /// client needs to map the frames it is given. Made per incarnation, so init gives it
    /// from the incarnation it builds rather than from a boot object.
    OwnAddressSpace,
    /// init's supervisor interface (`init-api`): init's fault endpoint under a supervisor
    /// badge ([`init_api::STATUS_BADGE`] or [`init_api::CONTROL_BADGE`]), through which
    /// init answers for the programs it runs.
    Supervisor,
    /// The initrd file at this index in [`CompiledManifest::files`], as a read-only frame of
    /// exactly its length (`FrameInfo` bytes).
    File(u32),
    /// The PCI function whose IDs are at this index in [`CompiledManifest::devices`], as a
    /// one-function PCI cap (configuration space; init finds the function on bus 0 at boot).
    Pci(u32),
    /// Memory BAR `bar` (0..=5) of that function, as a device frame of exactly the BAR
    /// (cut by init from its device frame where the kernel placed the BAR).
    PciBar(u32, u8),
}

/// A PCI function as the manifest names it: vendor and device ID (`"1af4:1000"`, or
/// `"virtio-net"` for QEMU's virtio-net NIC, 1af4:1000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PciId {
    pub vendor: u16,
    pub device: u16,
}

impl PciId {
    /// `"vvvv:dddd"` in hex, or a known name.
    pub fn parse(text: &str) -> Option<PciId> {
        if text == "virtio-net" {
            return Some(PciId { vendor: 0x1af4, device: 0x1000 });
        }
        let (vendor, device) = text.split_once(':')?;
        if vendor.len() != 4 || device.len() != 4 {
            return None;
        }
        Some(PciId { vendor: u16::from_str_radix(vendor, 16).ok()?, device: u16::from_str_radix(device, 16).ok()? })
    }
}

impl fmt::Display for PciId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor, self.device)
    }
}

impl ObjectRef {
    /// The kind of kernel object.
    pub fn kind(self) -> ObjectType {
        match self {
            ObjectRef::Console => ObjectType::Console,
            ObjectRef::Endpoint(_) => ObjectType::Endpoint,
            ObjectRef::Notification(_) => ObjectType::Notification,
            ObjectRef::Irq(_) => ObjectType::IrqHandler,
            ObjectRef::IoPorts(_) => ObjectType::IoPortRange,
            ObjectRef::OwnAddressSpace => ObjectType::AddressSpace,
            ObjectRef::Supervisor => ObjectType::Endpoint,
            ObjectRef::File(_) | ObjectRef::PciBar(..) => ObjectType::Frame,
            ObjectRef::Pci(_) => ObjectType::Pci,
        }
    }

    /// The rights that mean something on this kind of object (see `abi::rights`).
    pub fn meaningful_rights(self) -> Rights {
        match self {
            // Write prints; read takes what is typed (`ConsoleRead`).
            ObjectRef::Console => Rights::READ.union(Rights::WRITE),
            // A call: init answers, and nothing can be received or granted through it.
            ObjectRef::Supervisor => Rights::WRITE.union(Rights::GRANT_REPLY),
            ObjectRef::Endpoint(_) => Rights::READ
                .union(Rights::WRITE)
                .union(Rights::GRANT)
                .union(Rights::GRANT_REPLY),
            ObjectRef::Notification(_) | ObjectRef::Irq(_) | ObjectRef::IoPorts(_) => {
                Rights::READ.union(Rights::WRITE)
            }
            // `Map` and `Unmap` need write; nothing on an address space takes read.
            ObjectRef::OwnAddressSpace => Rights::WRITE,
            // Boot data is mapped read-only: never written, never run.
            ObjectRef::File(_) => Rights::READ,
            // Configuration reads and writes; a BAR is mapped read and write, never run.
            ObjectRef::Pci(_) | ObjectRef::PciBar(..) => Rights::READ.union(Rights::WRITE),
        }
    }
}

/// An inclusive range of I/O ports.
///
/// # Invariants
/// `first <= last` (checked by [`compile`] and [`decode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// True if every port of `other` is in `self`.
    pub fn contains(self, other: PortRange) -> bool {
        self.first <= other.first && other.last <= self.last
    }
    /// True if the two ranges share a port.
    pub fn overlaps(self, other: PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}-{:#x}", self.first, self.last)
    }
}

/// An object named the way the manifest names it: `console`, `endpoint "echo"`, `irq 4`,
/// `io ports 0x60-0x64`.
pub struct ObjectName<'a> {
    object: ObjectRef,
    manifest: &'a CompiledManifest,
}

impl fmt::Display for ObjectName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn name(list: &[String], i: u32) -> &str {
            list.get(i as usize).map(String::as_str).unwrap_or("?")
        }
        match self.object {
            ObjectRef::Console => f.write_str("console"),
            ObjectRef::Endpoint(i) => {
                write!(f, "endpoint \"{}\"", name(&self.manifest.endpoints, i))
            }
            ObjectRef::Notification(i) => {
                write!(
                    f,
                    "notification \"{}\"",
                    name(&self.manifest.notifications, i)
                )
            }
            ObjectRef::Irq(line) => write!(f, "irq {line}"),
            ObjectRef::IoPorts(range) => write!(f, "io ports {range}"),
            ObjectRef::OwnAddressSpace => f.write_str("its own address space"),
            ObjectRef::Supervisor => f.write_str("supervisor (init)"),
            ObjectRef::File(i) => write!(f, "file \"{}\"", name(&self.manifest.files, i)),
            ObjectRef::Pci(i) => match self.manifest.devices.get(i as usize) {
                Some(id) => write!(f, "pci {id}"),
                None => f.write_str("pci ?"),
            },
            ObjectRef::PciBar(i, bar) => match self.manifest.devices.get(i as usize) {
                Some(id) => write!(f, "pci {id} BAR{bar}"),
                None => write!(f, "pci ? BAR{bar}"),
            },
        }
    }
}

impl CompiledManifest {
    /// The program called `name`.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// `object` named for people: what the boot table and error messages print.
    pub fn object_name(&self, object: ObjectRef) -> ObjectName<'_> {
        ObjectName {
            object,
            manifest: self,
        }
    }

    /// The process/capability table init prints at boot (and `cargo xtask manifest` prints).
    pub fn table(&self) -> Table<'_> {
        Table::new(self)
    }

    /// The blob packed as `etc/system.bin`: magic, version, postcard body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::from(MAGIC);
        // Encoding into a Vec cannot fail for these types (no maps with non-string keys,
        // no unsized sequences); an empty blob would be refused by `decode` anyway.
        let version = postcard::to_allocvec(&FORMAT_VERSION).unwrap_or_default();
        let body = postcard::to_allocvec(self).unwrap_or_default();
        out.extend_from_slice(&version);
        out.extend_from_slice(&body);
        out
    }

    /// Every invariant of [`CompiledManifest`]; `decode` runs it on what it read.
    pub fn validate(&self) -> Result<(), Invalid> {
        let init = &self.init;
        if Rights::from_bits(init.console_rights).is_none() {
            return Err(Invalid::new(
                None,
                "init's console rights have unknown bits",
            ));
        }
        if init.io_ports.iter().any(|r| r.first > r.last) {
            return Err(Invalid::new(None, "an init I/O port range is backwards"));
        }
        if self.memory_server.is_some_and(|e| e as usize >= self.endpoints.len()) {
            return Err(Invalid::new(None, "the memory server's endpoint is not declared"));
        }
        self.policy.validate().map_err(|what| Invalid::new(None, what))?;
        let declared = |object: &ObjectRef| match *object {
            ObjectRef::Endpoint(e) => (e as usize) < self.endpoints.len(),
            ObjectRef::Notification(n) => (n as usize) < self.notifications.len(),
            _ => false,
        };
        if !self.network.iter().all(declared) {
            return Err(Invalid::new(None, "a network object is not a declared endpoint or notification"));
        }
        if !self.policy.sandbox.allowed_services.iter().all(|e| declared(&ObjectRef::Endpoint(*e))) {
            return Err(Invalid::new(None, "a sandbox service is not a declared endpoint"));
        }
        for (i, program) in self.programs.iter().enumerate() {
            let at = Some(i);
            if program.name.is_empty() {
                return Err(Invalid::new(at, "empty program name"));
            }
            if self.programs.iter().take(i).any(|p| p.name == program.name) {
                return Err(Invalid::new(at, "duplicate program name"));
            }
            if !(MIN_PRIORITY..=MAX_PRIORITY).contains(&program.priority) {
                return Err(Invalid::new(at, "priority out of range"));
            }
            if u64::from(program.budget_us) < abi::syscall::budget::MIN_US
                || program.budget_us > program.period_us
                || program.period_us > MAX_PERIOD_US
            {
                return Err(Invalid::new(at, "budget or period out of range"));
            }
            if let RestartPolicy::Restart { max_backoff_ms } = program.on_crash
                && max_backoff_ms < INITIAL_BACKOFF_MS
            {
                return Err(Invalid::new(
                    at,
                    "max_backoff_ms below the initial back-off",
                ));
            }
            let mut previous = NULL_SLOT;
            for cap in &program.caps {
                let console = cap.object == ObjectRef::Console;
                let heap_memory = cap.slot == HEAP_MEMORY_SLOT
                    && self.memory_server.is_some_and(|e| cap.object == ObjectRef::Endpoint(e))
                    && cap.rights == Rights::WRITE.union(Rights::GRANT_REPLY).bits()
                    && memory_api::ClientBadge::decode(cap.badge).is_some();
                let heap_space = cap.slot == HEAP_SPACE_SLOT
                    && cap.object == ObjectRef::OwnAddressSpace
                    && cap.rights == Rights::WRITE.bits();
                if cap.slot <= previous || (cap.slot >= SPACE_SLOTS && !heap_memory && !heap_space) {
                    return Err(Invalid::new(
                        at,
                        "cap slots not increasing within the space",
                    ));
                }
                if console != (cap.slot == CONSOLE_SLOT) {
                    return Err(Invalid::new(at, "the console is not in the console slot"));
                }
                previous = cap.slot;
                let in_range = match cap.object {
                    ObjectRef::Endpoint(e) => (e as usize) < self.endpoints.len(),
                    ObjectRef::Notification(n) => (n as usize) < self.notifications.len(),
                    ObjectRef::IoPorts(r) => r.first <= r.last,
                    ObjectRef::Supervisor => {
                        [init_api::STATUS_BADGE, init_api::CONTROL_BADGE, init_api::REPORT_BADGE].contains(&cap.badge)
                    }
                    ObjectRef::File(i) => (i as usize) < self.files.len(),
                    ObjectRef::Pci(i) => (i as usize) < self.devices.len(),
                    ObjectRef::PciBar(i, bar) => (i as usize) < self.devices.len() && bar < 6,
                    ObjectRef::Console | ObjectRef::Irq(_) | ObjectRef::OwnAddressSpace => true,
                };
                if !in_range {
                    return Err(Invalid::new(at, "a cap names an undeclared object"));
                }
                match Rights::from_bits(cap.rights) {
                    Some(r) if !r.is_empty() && r.is_subset_of(cap.object.meaningful_rights()) => {}
                    _ => {
                        return Err(Invalid::new(
                            at,
                            "a cap's rights are empty or meaningless for its kind",
                        ));
                    }
                }
                if cap.badge != 0 && !cap.kind().is_badgeable() {
                    return Err(Invalid::new(at, "a badge on a kind that takes none"));
                }
            }
            if policy::sandbox_breach(self, program).is_some() {
                return Err(Invalid::new(at, "a sandbox program breaks [security.sandbox]"));
            }
        }
        self.validate_models()
    }

    /// The models' invariants: each names a declared file, an endpoint only its own sandbox
    /// receives on, a sandbox program, and AI server slots holding exactly those objects.
    fn validate_models(&self) -> Result<(), Invalid> {
        if self.files.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Invalid::new(None, "file paths not sorted and unique"));
        }
        if self.devices.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Invalid::new(None, "devices not sorted and unique"));
        }
        let mut drivers = self.devices.iter().enumerate().map(|(i, _)| {
            self.programs.iter().filter(|p| p.caps.iter().any(|c| matches!(c.object, ObjectRef::Pci(d) | ObjectRef::PciBar(d, _) if d as usize == i))).count()
        });
        if drivers.any(|count| count > 1) {
            return Err(Invalid::new(None, "a device is given to two programs"));
        }
        if self.models.is_empty() {
            return Ok(());
        }
        let server = self.ai_server.as_deref().and_then(|name| self.program(name));
        let Some(server) = server else {
            return Err(Invalid::new(None, "models without an AI server program"));
        };
        let holds = |slot: u32, object: ObjectRef, rights: Rights| {
            server.caps.iter().any(|c| c.slot == slot && c.object == object && c.rights == rights.bits())
        };
        for (i, model) in self.models.iter().enumerate() {
            let at = None;
            if self.models.iter().take(i).any(|m| m.name == model.name) || model.name.is_empty() {
                return Err(Invalid::new(at, "model names empty or not unique"));
            }
            if model.container as usize >= self.files.len() || model.requests as usize >= self.endpoints.len() {
                return Err(Invalid::new(at, "a model names an undeclared file or endpoint"));
            }
            let Some(sandbox) = self.program(&model.sandbox).filter(|p| p.sandbox) else {
                return Err(Invalid::new(at, "a model's sandbox is not a sandbox program"));
            };
            let requests = ObjectRef::Endpoint(model.requests);
            let receivers = self
                .programs
                .iter()
                .filter(|p| p.caps.iter().any(|c| c.object == requests && c.rights().contains(Rights::READ)))
                .count();
            if receivers != 1 || !sandbox.caps.iter().any(|c| c.object == requests && c.rights == Rights::READ.bits()) {
                return Err(Invalid::new(at, "a model's request endpoint is received on by other than its sandbox"));
            }
            if !holds(model.container_slot, ObjectRef::File(model.container), Rights::READ)
                || !holds(model.sandbox_slot, requests, Rights::WRITE.union(Rights::GRANT))
            {
                return Err(Invalid::new(at, "the AI server's model slots do not hold the model's caps"));
            }
        }
        Ok(())
    }

    /// The model (if any) whose request endpoint `endpoint` is.
    pub fn model_by_requests(&self, endpoint: u32) -> Option<&Model> {
        self.models.iter().find(|m| m.requests == endpoint)
    }

    /// Records the public keys models may be signed with (xtask, from `keys/trusted.toml`).
    /// Refused, naming the model, if a model names a key that is not among them.
    pub fn trust(&mut self, keys: Vec<TrustedKey>) -> Result<(), String> {
        if let Some(model) = self.models.iter().find(|m| !keys.iter().any(|k| k.name == m.key)) {
            return Err(alloc::format!(
                "model \"{}\" names key \"{}\", which is not a trusted key",
                model.name, model.key
            ));
        }
        self.trusted_keys = keys;
        Ok(())
    }
}

/// A broken invariant found in a decoded manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// Index of the program it was found in, if any.
    pub program: Option<usize>,
    /// What is wrong.
    pub what: &'static str,
}

impl Invalid {
    fn new(program: Option<usize>, what: &'static str) -> Invalid {
        Invalid { program, what }
    }
}

/// Why a blob is not a manifest init can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// It does not start with [`MAGIC`].
    BadMagic,
    /// It was compiled for another format version.
    VersionMismatch { found: u32, expected: u32 },
    /// It ends early.
    Truncated,
    /// Its bytes do not encode a manifest.
    Malformed,
    /// It decodes, with this many bytes left over.
    TrailingBytes(usize),
    /// It decodes, but breaks an invariant the checker guarantees.
    Invalid(Invalid),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadMagic => f.write_str("not a compiled manifest (bad magic)"),
            DecodeError::VersionMismatch { found, expected } => write!(
                f,
                "manifest format version {found}, but this init reads version {expected}: rebuild the image"
            ),
            DecodeError::Truncated => f.write_str("manifest truncated"),
            DecodeError::Malformed => f.write_str("manifest malformed"),
            DecodeError::TrailingBytes(n) => write!(f, "manifest has {n} trailing bytes"),
            DecodeError::Invalid(Invalid {
                program: Some(i),
                what,
            }) => {
                write!(f, "manifest invalid: program {i}: {what}")
            }
            DecodeError::Invalid(Invalid {
                program: None,
                what,
            }) => write!(f, "manifest invalid: {what}"),
        }
    }
}

fn postcard_error(error: postcard::Error) -> DecodeError {
    match error {
        postcard::Error::DeserializeUnexpectedEnd => DecodeError::Truncated,
        _ => DecodeError::Malformed,
    }
}

/// Decode and re-check a compiled manifest. Never panics, whatever the bytes.
pub fn decode(blob: &[u8]) -> Result<CompiledManifest, DecodeError> {
    let rest = match blob.strip_prefix(&MAGIC) {
        Some(rest) => rest,
        None if MAGIC.starts_with(blob) => return Err(DecodeError::Truncated),
        None => return Err(DecodeError::BadMagic),
    };
    let (found, rest) = postcard::take_from_bytes::<u32>(rest).map_err(postcard_error)?;
    if found != FORMAT_VERSION {
        return Err(DecodeError::VersionMismatch {
            found,
            expected: FORMAT_VERSION,
        });
    }
    let (manifest, rest) =
        postcard::take_from_bytes::<CompiledManifest>(rest).map_err(postcard_error)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    manifest.validate().map_err(DecodeError::Invalid)?;
    Ok(manifest)
}
