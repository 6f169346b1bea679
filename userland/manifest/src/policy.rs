//! The `[security.*]` policy: every key, what it means on this system, and whether this
//! build can enforce it.
//!
//! [`Key::ALL`] is the whole catalogue. Each key has one [`Mechanism`]: either the code
//! that enforces it and the test that proves it, or why nothing on this build can. The
//! checker ([`crate::compile`]) turns each key's value into a [`KeyState`]:
//!
//! | value   | mechanism | state                                                        |
//! |---------|-----------|--------------------------------------------------------------|
//! | `true`  | enforced  | [`KeyState::Enforced`]                                       |
//! | `true`  | missing   | [`KeyState::Refused`]: the build stops, naming the key and why, |
//! |         |           | unless the developer allowed it: [`KeyState::AllowedUnenforced`] |
//! | `false` | either    | [`KeyState::Off`]: not asked for (an always-on mechanism stays on) |
//!
//! Nothing is silently claimed: a compiled manifest never holds `Refused`, never says
//! `Enforced` for a key whose mechanism is missing, and an `AllowedUnenforced` key is
//! printed by init at boot ([`PolicySummary`]). The catalogue is compiled into init too, so
//! [`crate::decode`] re-checks those rules against this build's mechanisms, not the blob's
//! word.
//!
//! `[security.sandbox]` ([`SandboxPolicy`]) is what a program marked `sandbox = true`
//! (a model sandbox) may hold and use; the checker applies it to every such program.

use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use abi::Rights;

use crate::{CompiledManifest, ObjectRef, Program};

/// One key of the `[security.*]` policy (not `[security.sandbox]`, whose values are limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Key {
    SecureBoot,
    TpmEnabled,
    MemoryEncryption,
    Aslr,
    Dep,
    StackProtector,
    Firewall,
    EncryptedProtocolsOnly,
    SecureDns,
    ModelValidation,
    SecureInference,
    DataEncryption,
}

/// The sections of boolean keys, in file order, with their keys.
pub const SECTIONS: [(&str, &[Key]); 4] = [
    ("hardware", &[Key::SecureBoot, Key::TpmEnabled, Key::MemoryEncryption]),
    ("process", &[Key::Aslr, Key::Dep, Key::StackProtector]),
    ("network", &[Key::Firewall, Key::EncryptedProtocolsOnly, Key::SecureDns]),
    ("ai", &[Key::ModelValidation, Key::SecureInference, Key::DataEncryption]),
];

/// What stands behind a key on this build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// This build enforces it: `by` is what does, `test` what proves it.
    Enforced { by: &'static str, test: &'static str },
    /// Nothing on this build can enforce it: `why`.
    Missing { why: &'static str },
}

impl Key {
    /// Every key, in the order of [`SECTIONS`] (and of [`Policy::keys`]).
    pub const ALL: [Key; 12] = [
        Key::SecureBoot,
        Key::TpmEnabled,
        Key::MemoryEncryption,
        Key::Aslr,
        Key::Dep,
        Key::StackProtector,
        Key::Firewall,
        Key::EncryptedProtocolsOnly,
        Key::SecureDns,
        Key::ModelValidation,
        Key::SecureInference,
        Key::DataEncryption,
    ];

    /// The key as `system.toml` and `--allow-unenforced` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Key::SecureBoot => "secure_boot",
            Key::TpmEnabled => "tpm_enabled",
            Key::MemoryEncryption => "memory_encryption",
            Key::Aslr => "aslr",
            Key::Dep => "dep",
            Key::StackProtector => "stack_protector",
            Key::Firewall => "firewall",
            Key::EncryptedProtocolsOnly => "encrypted_protocols_only",
            Key::SecureDns => "secure_dns",
            Key::ModelValidation => "model_validation",
            Key::SecureInference => "secure_inference",
            Key::DataEncryption => "data_encryption",
        }
    }

    /// The key called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }

    /// Its section: `hardware`, `process`, `network` or `ai` (`[security.<section>]`).
    pub fn section(self) -> &'static str {
        SECTIONS
            .iter()
            .find(|(_, keys)| keys.contains(&self))
            .map(|(section, _)| *section)
            .unwrap_or("?")
    }

    /// Its place in [`Key::ALL`] and [`Policy::keys`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// What this build has behind the key. SECURITY.md says the same, key by key; the
    /// tests named here are `cargo xtask test` names (a substring selects them).
    pub fn mechanism(self) -> Mechanism {
        use Mechanism::{Enforced, Missing};
        match self {
            Key::SecureBoot => Missing {
                why: "GRUB and the kernel are neither signed nor verified at boot",
            },
            Key::TpmEnabled => Missing { why: "there is no TPM driver; nothing is measured or sealed" },
            Key::MemoryEncryption => Missing {
                why: "SME/SEV/TME are not enabled: RAM holds plaintext",
            },
            Key::Aslr => Enforced {
                by: "random image base and stack for init (kernel loader, RDRAND) and every \
                     program (libcap::loader, TSC-derived)",
                test: "qemu::aslr, qemu::aslr_across_boots",
            },
            Key::Dep => Enforced {
                by: "NX required at boot; no page writable and executable (kernel tables, Map, \
                     per frame); xtask refuses a program ELF with a W+X segment or exec stack",
                test: "qemu::wx_audit, qemu::user_wx, qemu::execute_data, suite::MAP-008, xtask dep_check",
            },
            Key::StackProtector => Enforced {
                by: "an unmapped guard page below every kernel and user stack, and rustc's \
                     inline stack probes (no canaries: stable Rust has none)",
                test: "qemu::stack_guard, qemu::stack_overflow",
            },
            Key::Firewall => Missing {
                why: "there is no network server, so no firewall, in this tree",
            },
            Key::EncryptedProtocolsOnly => Missing { why: "there is no TLS (and no network stack)" },
            Key::SecureDns => Missing { why: "there is no DNS resolver or TLS (and no network stack)" },
            Key::ModelValidation => Enforced {
                by: "servers/ai verifies every [models] container before any weight is used (Ed25519 \
                     signature against the manifest's trusted keys, payload size and SHA-256, header \
                     bounds, the key the manifest names, the memory claim against the sandbox's heap) \
                     and hands a sandbox only a container that passed; a sandbox holds no boot file",
                test: "qemu::ai",
            },
            Key::SecureInference => Enforced {
                by: "every sandbox = true program is held to [security.sandbox] by the \
                     manifest check (no device cap, only allowlisted services, within the \
                     limits; with this key true, network = false too, so no network-kind \
                     cap); frames are zeroed before reuse",
                test: "host test policy::sandbox_policy, qemu::policy",
            },
            Key::DataEncryption => Missing {
                why: "nothing encrypts data at rest (there is no storage either: nothing \
                      outlives a boot)",
            },
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[security.{}] {}", self.section(), self.name())
    }
}

/// A key's state after the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    /// `true`, and this build enforces it.
    Enforced,
    /// `true`, but nothing on this build can enforce it: the build stops. Never in a
    /// compiled manifest.
    Refused,
    /// `true`, not enforced, and the developer built anyway (`--allow-unenforced KEY`);
    /// init prints it at boot.
    AllowedUnenforced,
    /// `false`: the policy does not ask for it.
    Off,
}

impl KeyState {
    /// The state as `cargo xtask manifest` and init print it.
    pub fn label(self) -> &'static str {
        match self {
            KeyState::Enforced => "enforced",
            KeyState::Refused => "refused",
            KeyState::AllowedUnenforced => "allowed-unenforced",
            KeyState::Off => "off",
        }
    }
}

/// `[security.sandbox]`: what a model sandbox (a program with `sandbox = true`) may hold.
///
/// A sandbox may hold the console to write (never to read), notifications, its own address
/// space (for its heap) and endpoints named in [`SandboxPolicy::allowed_services`] without
/// the grant right; with `network = false`, no endpoint or notification declared
/// `network = true`. It holds no irq or io-port cap (a device could be a network card), no
/// audit and no supervisor cap, and stays within the limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPolicy {
    /// Whether a sandbox may hold a network-kind cap.
    pub network: bool,
    /// The highest priority a sandbox may run at.
    pub max_priority: u8,
    /// The largest share of one CPU a sandbox's budget/period may be, in percent.
    pub max_cpu_percent: u32,
    /// The largest kernel-memory quota a sandbox may have, in bytes.
    pub max_memory_quota: u64,
    /// The largest heap quota a sandbox may have, in 4 KiB pages.
    pub max_heap_pages: u32,
    /// The endpoints ([`CompiledManifest::endpoints`] indices) a sandbox may hold a cap to.
    pub allowed_services: Vec<u32>,
}

/// The compiled `[security.*]` policy.
///
/// # Invariants
/// Checked by [`Policy::validate`] (so by [`crate::decode`]): one state per key of
/// [`Key::ALL`], in that order; no `Refused`; `Enforced` only where this build's
/// [`Key::mechanism`] is `Enforced`, `AllowedUnenforced` only where it is `Missing`;
/// `secure_inference` enforced only with `network = false`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// One state per key, in [`Key::ALL`] order.
    pub keys: Vec<KeyState>,
    /// `[security.sandbox]`.
    pub sandbox: SandboxPolicy,
}

impl Policy {
    /// The state of `key`.
    pub fn state(&self, key: Key) -> KeyState {
        self.keys.get(key.index()).copied().unwrap_or(KeyState::Off)
    }

    /// The keys that are `true` but not enforced on this build.
    pub fn unenforced(&self) -> impl Iterator<Item = Key> + '_ {
        Key::ALL.into_iter().filter(|key| self.state(*key) == KeyState::AllowedUnenforced)
    }

    /// The rules of the type's invariants.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.keys.len() != Key::ALL.len() {
            return Err("the policy does not have one state per key");
        }
        for key in Key::ALL {
            let missing = matches!(key.mechanism(), Mechanism::Missing { .. });
            match self.state(key) {
                KeyState::Refused => return Err("the policy holds a refused key"),
                KeyState::Enforced if missing => {
                    return Err("the policy claims a key enforced that this build cannot enforce");
                }
                KeyState::AllowedUnenforced if !missing => {
                    return Err("the policy allows unenforced a key this build enforces");
                }
                _ => {}
            }
        }
        if self.state(Key::SecureInference) == KeyState::Enforced && self.sandbox.network {
            return Err("secure_inference is enforced but sandboxes may use the network");
        }
        let s = &self.sandbox;
        if !(crate::MIN_PRIORITY..=crate::MAX_PRIORITY).contains(&s.max_priority)
            || !(1..=100).contains(&s.max_cpu_percent)
        {
            return Err("a sandbox limit is out of range");
        }
        Ok(())
    }

    /// One line per section, for init's boot log: see [`PolicySummary`].
    pub fn summary<'a>(&'a self, manifest: &'a CompiledManifest) -> PolicySummary<'a> {
        PolicySummary { policy: self, manifest }
    }
}

/// The policy in five lines, as init prints it at boot: per section each key and its
/// state, then the sandbox limits; and one `NOT ENFORCED` line per key the developer
/// allowed unenforced, saying why it is not.
///
/// ```text
/// policy [security.hardware]: secure_boot off, tpm_enabled off, memory_encryption off
/// policy [security.process]: aslr enforced, dep enforced, stack_protector enforced
/// ...
/// policy [security.sandbox]: network false, ... allowed_services [memory]; sandbox programs: 0
/// policy: secure_boot = true is NOT ENFORCED (allowed by --allow-unenforced): GRUB and ...
/// ```
pub struct PolicySummary<'a> {
    policy: &'a Policy,
    manifest: &'a CompiledManifest,
}

impl fmt::Display for PolicySummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let policy = self.policy;
        for (section, keys) in SECTIONS {
            write!(f, "policy [security.{section}]:")?;
            for (i, key) in keys.iter().enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                write!(f, "{sep}{} {}", key.name(), policy.state(*key).label())?;
            }
            writeln!(f)?;
        }
        let s = &policy.sandbox;
        write!(
            f,
            "policy [security.sandbox]: network {}, max_priority {}, max_cpu_percent {}, \
             max_memory_quota {}, max_heap_pages {}, allowed_services [",
            s.network, s.max_priority, s.max_cpu_percent, s.max_memory_quota, s.max_heap_pages
        )?;
        for (i, endpoint) in s.allowed_services.iter().enumerate() {
            let name = self.manifest.endpoints.get(*endpoint as usize).map(|n| n.as_str()).unwrap_or("?");
            write!(f, "{}{name}", if i == 0 { "" } else { " " })?;
        }
        let sandboxes = self.manifest.programs.iter().filter(|p| p.sandbox).count();
        writeln!(f, "]; sandbox programs: {sandboxes}")?;
        for key in policy.unenforced() {
            let why = match key.mechanism() {
                Mechanism::Missing { why } => why,
                Mechanism::Enforced { .. } => "",
            };
            writeln!(
                f,
                "policy: {} = true is NOT ENFORCED (allowed by --allow-unenforced {}): {why}",
                key.name(),
                key.name()
            )?;
        }
        Ok(())
    }
}

/// How a sandbox program's entry breaks [`SandboxPolicy`]: the first rule it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxBreach {
    /// A cap to an object declared `network = true`, while `network = false`.
    NetworkCap(ObjectRef),
    /// An irq or io-port cap.
    Device(ObjectRef),
    /// An endpoint not in `allowed_services`.
    NotAllowed(ObjectRef),
    /// The grant right on an endpoint: a sandbox hands no caps on.
    Grant(ObjectRef),
    /// Read on the console (the keyboard).
    ConsoleRead,
    /// The authority audit.
    Audit,
    /// A cap to init's supervisor interface.
    Supervisor,
    /// Its priority is above `max_priority`.
    Priority(u8),
    /// Its budget/period is more than `max_cpu_percent` of a CPU.
    Cpu { budget_us: u32, period_us: u32 },
    /// Its memory quota is above `max_memory_quota`.
    Memory(u64),
    /// A memory-server client badge with more pages than `max_heap_pages`.
    HeapPages(u32),
    /// A file of the boot image: it might be another model's weights. A sandbox gets its
    /// own container from the AI server, after verification.
    File(ObjectRef),
}

impl SandboxBreach {
    /// The breach in words, naming the object as the manifest does.
    pub fn describe(&self, manifest: &CompiledManifest) -> alloc::string::String {
        use alloc::format;
        let s = &manifest.policy.sandbox;
        let name = |object: &ObjectRef| manifest.object_name(*object);
        match self {
            SandboxBreach::NetworkCap(object) => format!(
                "holds {}, a network cap (declared network = true), while [security.sandbox] network = false",
                name(object)
            ),
            SandboxBreach::File(object) => format!(
                "holds {}; a sandbox gets its weights from the AI server, after verification, and no other boot file",
                name(object)
            ),
            SandboxBreach::Device(object) => format!(
                "holds {}; a sandbox drives no device (any device could be a network card)",
                name(object)
            ),
            SandboxBreach::NotAllowed(object) => format!(
                "holds {}, which is not in [security.sandbox] allowed_services",
                name(object)
            ),
            SandboxBreach::Grant(object) => {
                format!("holds {} with grant; a sandbox hands no caps on", name(object))
            }
            SandboxBreach::ConsoleRead => "reads the console (the keyboard); a sandbox may only write it".into(),
            SandboxBreach::Audit => "asks for the authority audit".into(),
            SandboxBreach::Supervisor => "holds a cap to init's supervisor interface".into(),
            SandboxBreach::Priority(priority) => format!(
                "has priority {priority}, above [security.sandbox] max_priority {}",
                s.max_priority
            ),
            SandboxBreach::Cpu { budget_us, period_us } => format!(
                "has budget {budget_us}/{period_us} us, more than [security.sandbox] max_cpu_percent {}% of a CPU",
                s.max_cpu_percent
            ),
            SandboxBreach::Memory(quota) => format!(
                "has memory_quota {quota}, above [security.sandbox] max_memory_quota {}",
                s.max_memory_quota
            ),
            SandboxBreach::HeapPages(pages) => format!(
                "has a memory-server quota of {pages} pages, above [security.sandbox] max_heap_pages {}",
                s.max_heap_pages
            ),
        }
    }
}

/// The first rule of `[security.sandbox]` that `program` (a `sandbox = true` program of
/// `manifest`) breaks, in this order: each cap in slot order, then the audit, priority,
/// CPU and memory limits. `None` if it keeps them all, or is not a sandbox.
pub fn sandbox_breach(manifest: &CompiledManifest, program: &Program) -> Option<SandboxBreach> {
    if !program.sandbox {
        return None;
    }
    let s = &manifest.policy.sandbox;
    for cap in &program.caps {
        let object = cap.object;
        if !s.network && manifest.network.contains(&object) {
            return Some(SandboxBreach::NetworkCap(object));
        }
        let rights = Rights::from_bits_truncate(cap.rights);
        match object {
            ObjectRef::Console if rights.contains(Rights::READ) => return Some(SandboxBreach::ConsoleRead),
            ObjectRef::Irq(_) | ObjectRef::IoPorts(_) | ObjectRef::Pci(_) | ObjectRef::PciBar(..) => return Some(SandboxBreach::Device(object)),
            ObjectRef::Supervisor => return Some(SandboxBreach::Supervisor),
            ObjectRef::File(_) => return Some(SandboxBreach::File(object)),
            // Its own model's request endpoint, receive only: the one service it offers.
            ObjectRef::Endpoint(e)
                if rights == Rights::READ && manifest.model_by_requests(e).is_some_and(|m| m.sandbox == program.name) => {}
            ObjectRef::Endpoint(e) => {
                if !s.allowed_services.contains(&e) {
                    return Some(SandboxBreach::NotAllowed(object));
                }
                if rights.contains(Rights::GRANT) {
                    return Some(SandboxBreach::Grant(object));
                }
                let client = memory_api::ClientBadge::decode(cap.badge)
                    .filter(|_| manifest.memory_server == Some(e));
                if let Some(client) = client
                    && client.quota_pages() > s.max_heap_pages
                {
                    return Some(SandboxBreach::HeapPages(client.quota_pages()));
                }
            }
            ObjectRef::Console | ObjectRef::Notification(_) | ObjectRef::OwnAddressSpace => {}
        }
    }
    if program.audit {
        return Some(SandboxBreach::Audit);
    }
    if program.priority > s.max_priority {
        return Some(SandboxBreach::Priority(program.priority));
    }
    let (budget_us, period_us) = (program.budget_us, program.period_us);
    if u64::from(budget_us) * 100 > u64::from(s.max_cpu_percent) * u64::from(period_us) {
        return Some(SandboxBreach::Cpu { budget_us, period_us });
    }
    if program.memory_quota > s.max_memory_quota {
        return Some(SandboxBreach::Memory(program.memory_quota));
    }
    None
}

/// Every key with its state and what stands behind it: what `cargo xtask manifest`
/// prints. Built from a compiled [`Policy`], or from the checker's states when it refuses
/// a key ([`crate::ManifestError::Refused`]), so a refused key shows as such.
pub struct Report<'a> {
    states: &'a [KeyState],
}

impl<'a> Report<'a> {
    /// A report of `states`, one per key of [`Key::ALL`].
    pub fn new(states: &'a [KeyState]) -> Report<'a> {
        Report { states }
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "security policy, key by key ([security.*]):")?;
        writeln!(f, "  {:<44} {:<19} MECHANISM", "KEY", "STATE")?;
        for key in Key::ALL {
            let state = self.states.get(key.index()).copied().unwrap_or(KeyState::Off);
            let name = alloc::format!("[security.{}] {}", key.section(), key.name());
            write!(f, "  {name:<44} {:<19} ", state.label())?;
            match (key.mechanism(), state) {
                (Mechanism::Enforced { by, test }, KeyState::Off) => {
                    writeln!(f, "not asked for, on anyway: {by} (test: {test})")?
                }
                (Mechanism::Enforced { by, test }, _) => writeln!(f, "{by} (test: {test})")?,
                (Mechanism::Missing { why }, KeyState::Off) => writeln!(f, "none on this build: {why}")?,
                (Mechanism::Missing { why }, _) => writeln!(f, "NOT ENFORCED: {why}")?,
            }
        }
        Ok(())
    }
}
