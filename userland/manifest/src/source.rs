//! `system.toml`'s source model and the checker that compiles it (`std` only; xtask runs it).
//!
//! [`compile`] parses the TOML and reads the `[security.*]` policy with its line numbers
//! (`policy_source`), then checks, in this order, and stops at the first problem: init's
//! authority, the policy's keys against this build's mechanisms (every key `true` that
//! nothing enforces is refused, unless allowed; `secure_inference` needs a sandbox without
//! network), the sandbox's services, the declared objects, each program in turn (name, priority, budget, crash policy, then each cap:
//! target, rights, badge, authority; then, for a `sandbox = true` program,
//! `[security.sandbox]`), then the whole system (exclusive devices, distinct badges, unused
//! objects, receivers, the audit holder, and the CPU and memory sums). Every refusal is one
//! [`ManifestError`] whose message names the program and object involved, or the policy
//! key and its line; the tests assert each message exactly.

use std::collections::BTreeMap;
use std::fmt;
use std::string::{String, ToString};
use std::vec::Vec;

use abi::Rights;
use serde::Deserialize;

use crate::policy::{Key, KeyState, Mechanism, Policy, SandboxPolicy};
use crate::policy_source;
use crate::{
    CONSOLE_SLOT, CapGrant, CompiledManifest, FIRST_CAP_SLOT, Model, NamedCap, PciId, HEAP_MEMORY_SLOT, HEAP_SPACE_SLOT,
    INITIAL_BACKOFF_MS, InitAuthority, MAX_PERIOD_US, MAX_PRIORITY, MIN_PRIORITY, ObjectRef,
    PortRange, Program, RestartPolicy, SPACE_SLOTS,
};

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    /// The memory server's endpoint, by name.
    memory_server: Option<String>,
    init: InitSource,
    #[serde(default)]
    endpoints: BTreeMap<String, ObjectDecl>,
    #[serde(default)]
    notifications: BTreeMap<String, ObjectDecl>,
    #[serde(default)]
    programs: Vec<ProgramSource>,
    /// The AI server's program name: it is given each model's container and sandbox.
    ai_server: Option<String>,
    /// `[models.NAME]`: each becomes a sandbox program and two caps of the AI server.
    #[serde(default)]
    models: BTreeMap<String, ModelSource>,
    /// `[security.*]`: read with its line numbers by `policy_source`, not by serde.
    #[allow(dead_code, reason = "accepted here, read by policy_source")]
    security: Option<serde::de::IgnoredAny>,
}

/// `[init]`: the authority init holds at boot.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitSource {
    #[serde(default)]
    console: Vec<String>,
    memory_quota: u64,
    cpus: u32,
    #[serde(default)]
    irqs: Vec<u32>,
    #[serde(default)]
    io_ports: Vec<[u16; 2]>,
}

/// `[endpoints.NAME]` / `[notifications.NAME]`: the name is the declaration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectDecl {
    /// A network service's object (the network server's): a model sandbox may hold none
    /// while `[security.sandbox] network = false`.
    #[serde(default)]
    network: bool,
}

/// One `[[programs]]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgramSource {
    name: String,
    /// The crate to run, `userland/<program>` (default: `name`). Several entries may run
    /// one crate, each under its own name, with its own caps, badges and limits.
    program: Option<String>,
    // Wide, so that an out-of-range priority gets our message rather than serde's.
    priority: i64,
    budget_us: u32,
    period_us: u32,
    memory_quota: u64,
    on_crash: OnCrash,
    max_backoff_ms: Option<u32>,
    #[serde(default)]
    audit: bool,
    /// A model sandbox, held to `[security.sandbox]`.
    #[serde(default)]
    sandbox: bool,
    #[serde(default)]
    console: Vec<String>,
    #[serde(default)]
    caps: Vec<CapSource>,
    heap: Option<HeapSource>,
    /// `"status"` or `"control"`: a cap to init's supervisor interface, in the slot after
    /// the `caps` entries.
    supervisor: Option<String>,
}

/// One `[models.NAME]` entry: where its signed container is, who must have signed it, and
/// the limits of the sandbox that runs it (program `model-NAME`, crate `model-sandbox`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSource {
    /// The container's initrd path. xtask signs `models/digits-mlp.model` and
    /// `models/minilm-l6-v2.model` from the bundled weights; a test supplies any other.
    container: String,
    /// The trusted key (`keys/trusted.toml` name) that must have signed it.
    key: String,
    priority: i64,
    budget_us: u32,
    period_us: u32,
    memory_quota: u64,
    /// The sandbox's heap (activations), in 4 KiB pages, through the memory server.
    heap_pages: u32,
    max_input_bytes: u32,
    /// How long a request may take in the sandbox before the AI server gives up on it
    /// (enforced to the 10 ms tick above: `SetCallTimeout`).
    deadline_ms: u32,
    /// The sandbox is restarted when it crashes, backing off up to this.
    max_backoff_ms: u32,
    /// The sandbox's crate (default `model-sandbox`): a test's stand-in.
    sandbox_program: Option<String>,
}

/// The first memory-server client number given to model sandboxes (one each, in model order).
pub const FIRST_SANDBOX_CLIENT: u16 = 1000;

/// A program's `heap`: its allocator grows through the memory server as this client.
#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct HeapSource {
    client: u16,
    quota_pages: u32,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum OnCrash {
    Fatal,
    Restart,
}

/// One entry of a program's `caps`: exactly one target key, rights, optional badge.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapSource {
    /// The name the program's code knows this cap by (`caps::NAME`, generated by xtask).
    name: Option<String>,
    endpoint: Option<String>,
    notification: Option<String>,
    irq: Option<u32>,
    io_ports: Option<[u16; 2]>,
    /// Only `"own"`: the process's own address space.
    address_space: Option<String>,
    /// An initrd path: the file, as a read-only frame.
    file: Option<String>,
    /// A PCI function (`{ pci = "1af4:1000" }`), or one of its memory BARs
    /// (`{ pci = "1af4:1000", bar = 4 }`).
    device: Option<DeviceSource>,
    rights: Vec<String>,
    badge: Option<u64>,
}

/// A `device` cap's target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceSource {
    pci: String,
    bar: Option<u8>,
}

/// The right names `system.toml` uses, as `abi::rights` defines them.
const RIGHT_NAMES: [(&str, Rights); 5] = [
    ("read", Rights::READ),
    ("write", Rights::WRITE),
    ("grant", Rights::GRANT),
    ("grant_reply", Rights::GRANT_REPLY),
    ("execute", Rights::EXECUTE),
];

/// `read, write` for a rights set (`none` if empty).
fn right_list(rights: Rights) -> String {
    let names: Vec<&str> = RIGHT_NAMES
        .iter()
        .filter(|(_, r)| rights.contains(*r))
        .map(|(name, _)| *name)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Why `system.toml` was refused. `Display` is the message xtask prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// Not TOML, or not the expected shape (the parser's message, with line and column).
    Syntax(String),
    /// A `[security.*]` section or key is unknown, of the wrong type, out of range or left
    /// out; `line` is where (`policy_source` says which line a missing key gets).
    Policy {
        line: usize,
        message: String,
    },
    /// Keys set `true` that this build cannot enforce, with their lines, and not allowed
    /// by `--allow-unenforced`; `states` is every key's state (for the report).
    Refused {
        keys: Vec<(Key, usize)>,
        states: Vec<KeyState>,
    },
    /// A key, or a `[section]`, given twice (`what` is the section header or the key).
    Duplicate {
        line: usize,
        what: String,
    },
    /// A `sandbox = true` program breaks `[security.sandbox]`.
    Sandbox {
        program: String,
        what: String,
    },
    BadCapName {
        program: String,
        name: String,
    },
    DuplicateCapName {
        program: String,
        name: String,
    },
    UnknownProgram {
        program: String,
    },
    InitListed,
    DuplicateProgram {
        program: String,
    },
    PriorityOutOfRange {
        program: String,
        priority: i64,
    },
    ZeroBudget {
        program: String,
    },
    /// Under the smallest budget the kernel enforces (`abi::syscall::budget::MIN_US`).
    BudgetBelowMinimum {
        program: String,
        budget_us: u32,
    },
    BudgetOverPeriod {
        program: String,
        budget_us: u32,
        period_us: u32,
    },
    PeriodTooLong {
        program: String,
        period_us: u32,
    },
    BackoffMissing {
        program: String,
    },
    BackoffWithoutRestart {
        program: String,
    },
    BackoffTooShort {
        program: String,
        max_backoff_ms: u32,
    },
    UnknownRight {
        program: String,
        right: String,
    },
    NoTarget {
        program: String,
        index: usize,
    },
    ManyTargets {
        program: String,
        index: usize,
    },
    UnknownObject {
        program: String,
        kind: &'static str,
        name: String,
    },
    NoRights {
        program: String,
        object: String,
    },
    MeaninglessRights {
        program: String,
        object: String,
        asked: Rights,
        allowed: Rights,
    },
    RightsNotHeld {
        program: String,
        object: String,
        asked: Rights,
        held: Rights,
    },
    NotHeld {
        program: String,
        object: String,
        held: String,
    },
    BackwardsPorts {
        owner: String,
        range: PortRange,
    },
    BadgeNotBadgeable {
        program: String,
        object: String,
    },
    ZeroBadge {
        program: String,
        object: String,
    },
    TooManyCaps {
        program: String,
        slots: u32,
    },
    DuplicateCap {
        program: String,
        object: String,
    },
    SharedBadge {
        object: String,
        badge: u64,
        first: String,
        second: String,
    },
    SharedDevice {
        object: String,
        first: String,
        second: String,
    },
    BadDevice {
        program: String,
        device: String,
        bar: Option<u8>,
    },
    UnusedObject {
        object: String,
    },
    NoReceiver {
        object: String,
    },
    TwoAuditors {
        first: String,
        second: String,
    },
    CpuOvercommitted {
        ppm: u64,
        cpus: u32,
    },
    MemoryOvercommitted {
        total: u128,
        held: u64,
    },
    HeapWithoutMemoryServer {
        program: String,
    },
    ZeroClient {
        program: String,
    },
    SharedClient {
        client: u16,
        first: String,
        second: String,
    },
    /// A `[models.NAME]` entry, or the `ai_server` it needs, is wrong.
    Model {
        model: String,
        what: String,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ManifestError as E;
        match self {
            E::Syntax(message) => write!(f, "{}", message.trim_end()),
            E::Policy { line, message } => write!(f, "line {line}: {message}"),
            E::Duplicate { line, what } => {
                write!(f, "line {line}: {what} is given twice (each section and each key may appear once)")
            }
            E::Refused { keys, .. } => {
                write!(f, "the policy asks for what this build cannot enforce:")?;
                for (key, line) in keys {
                    let why = match key.mechanism() {
                        Mechanism::Missing { why } => why,
                        Mechanism::Enforced { .. } => "",
                    };
                    write!(
                        f,
                        "\n  line {line}: {key} = true: {why}; set it false, or build anyway with --allow-unenforced {}",
                        key.name()
                    )?;
                }
                Ok(())
            }
            E::Sandbox { program, what } => write!(
                f,
                "program \"{program}\" is a model sandbox (sandbox = true) but {what}"
            ),
            E::BadCapName { program, name } => write!(
                f,
                "program \"{program}\": cap name \"{name}\" is not a name: lowercase letters, digits and \
                 underscores, starting with a letter, at most 32 (it becomes the constant caps::{})",
                name.to_uppercase()
            ),
            E::DuplicateCapName { program, name } => {
                write!(f, "program \"{program}\": two caps are named \"{name}\"")
            }
            E::UnknownProgram { program } => write!(
                f,
                "unknown program \"{program}\": no program crate in userland/{program}/ \
                 (it needs userland/{program}/Cargo.toml and src/main.rs)"
            ),
            E::InitListed => f.write_str(
                "program \"init\" is the first process, started by the kernel; it cannot be in [[programs]]",
            ),
            E::DuplicateProgram { program } => write!(f, "program \"{program}\" is listed twice"),
            E::PriorityOutOfRange { program, priority } => write!(
                f,
                "program \"{program}\": priority {priority} is out of range {MIN_PRIORITY}..={MAX_PRIORITY} \
                 (0 is the idle thread's, {} is init's)",
                crate::INIT_PRIORITY
            ),
            E::ZeroBudget { program } => write!(f, "program \"{program}\": budget_us is 0; it would never run"),
            E::BudgetBelowMinimum { program, budget_us } => write!(
                f,
                "program \"{program}\": budget_us {budget_us} is under the {} µs the kernel can enforce",
                abi::syscall::budget::MIN_US
            ),
            E::BudgetOverPeriod { program, budget_us, period_us } => {
                write!(f, "program \"{program}\": budget_us {budget_us} exceeds period_us {period_us}")
            }
            E::PeriodTooLong { program, period_us } => write!(
                f,
                "program \"{program}\": period_us {period_us} exceeds the longest period, {MAX_PERIOD_US}"
            ),
            E::BackoffMissing { program } => {
                write!(f, "program \"{program}\": on_crash = \"restart\" needs max_backoff_ms")
            }
            E::BackoffWithoutRestart { program } => {
                write!(f, "program \"{program}\": max_backoff_ms is set, but on_crash is \"fatal\"")
            }
            E::BackoffTooShort { program, max_backoff_ms } => write!(
                f,
                "program \"{program}\": max_backoff_ms {max_backoff_ms} is below the first back-off, \
                 {INITIAL_BACKOFF_MS} ms"
            ),
            E::UnknownRight { program, right } => write!(
                f,
                "program \"{program}\": unknown right \"{right}\" (rights are read, write, grant, grant_reply, execute)"
            ),
            E::NoTarget { program, index } => write!(
                f,
                "program \"{program}\", caps[{index}]: names no object (give one of endpoint, notification, irq, io_ports, address_space, file)"
            ),
            E::ManyTargets { program, index } => write!(
                f,
                "program \"{program}\", caps[{index}]: names more than one object (give one of endpoint, notification, irq, io_ports, address_space, file)"
            ),
            E::UnknownObject { program, kind, name } => {
                write!(f, "unknown {kind} \"{name}\" referenced by program \"{program}\"")
            }
            E::NoRights { program, object } => {
                write!(f, "program \"{program}\" asks for {object} with no rights")
            }
            E::MeaninglessRights { program, object, asked, allowed } => write!(
                f,
                "program \"{program}\" asks for {} on {object}, which takes only {}",
                right_list(*asked),
                right_list(*allowed)
            ),
            E::RightsNotHeld { program, object, asked, held } => write!(
                f,
                "program \"{program}\" asks for {} on {object}, but init holds only {}",
                right_list(*asked),
                right_list(*held)
            ),
            E::NotHeld { program, object, held } => {
                write!(f, "program \"{program}\" asks for {object}, which init does not hold (init holds {held})")
            }
            E::BackwardsPorts { owner, range } => write!(
                f,
                "{owner}: io port range [{:#x}, {:#x}] is backwards (write [first, last])",
                range.first, range.last
            ),
            E::BadgeNotBadgeable { program, object } => write!(
                f,
                "program \"{program}\" puts a badge on {object}; only endpoints and notifications take badges"
            ),
            E::ZeroBadge { program, object } => write!(
                f,
                "program \"{program}\" puts badge 0 on {object}; 0 means unbadged, so leave the badge out"
            ),
            E::TooManyCaps { program, slots } => write!(
                f,
                "program \"{program}\" needs {slots} slots, but a process space has only {SPACE_SLOTS}"
            ),
            E::DuplicateCap { program, object } => {
                write!(f, "program \"{program}\" lists {object} twice with the same badge")
            }
            E::SharedBadge { object, badge, first, second } => write!(
                f,
                "badge {badge} on {object} is given to both \"{first}\" and \"{second}\"; \
                 the receiver could not tell them apart"
            ),
            E::SharedDevice { object, first, second } => {
                write!(f, "{object} is given to both \"{first}\" and \"{second}\"; a device has one driver")
            }
            E::BadDevice { program, device, bar } => write!(
                f,
                "program \"{program}\": device {{ pci = \"{device}\"{} }} is not a PCI function (\"vvvv:dddd\" in hex, or \"virtio-net\") with a BAR 0..=5",
                bar.map(|b| format!(", bar = {b}")).unwrap_or_default()
            ),
            E::UnusedObject { object } => write!(f, "{object} is declared but no program holds it"),
            E::NoReceiver { object } => write!(
                f,
                "{object} has holders but none may receive on it (no program holds it with read)"
            ),
            E::TwoAuditors { first, second } => write!(
                f,
                "programs \"{first}\" and \"{second}\" both ask for audit; one program (the test runner or the shell) may hold it"
            ),
            E::CpuOvercommitted { ppm, cpus } => write!(
                f,
                "the programs' CPU budgets add up to {}.{:06} CPUs, but init holds only {cpus}",
                ppm / 1_000_000,
                ppm % 1_000_000
            ),
            E::MemoryOvercommitted { total, held } => write!(
                f,
                "the programs' memory quotas add up to {total} bytes, but init holds only {held}"
            ),
            E::HeapWithoutMemoryServer { program } => write!(
                f,
                "program \"{program}\" has a heap, but the manifest names no memory_server endpoint"
            ),
            E::ZeroClient { program } => write!(
                f,
                "program \"{program}\": heap client 0 is not a client number (1..=65535)"
            ),
            E::Model { model, what } => write!(f, "model \"{model}\": {what}"),
            E::SharedClient { client, first, second } => write!(
                f,
                "memory client {client} is given to both \"{first}\" and \"{second}\"; \
                 the memory server could not tell their quotas apart"
            ),
        }
    }
}

impl std::error::Error for ManifestError {}

/// The parser's error as a [`ManifestError`]: a duplicate key or section gets its own
/// message with its line; anything else keeps the parser's (which has line and column).
fn syntax(text: &str, error: toml::de::Error) -> ManifestError {
    if error.message() == "duplicate key"
        && let Some(span) = error.span()
    {
        let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
        let key = text.get(span).unwrap_or("?");
        let header = text.lines().nth(line - 1).map(str::trim).filter(|l| l.starts_with('['));
        let what = match header {
            Some(header) => header.split('#').next().unwrap_or(header).trim().to_string(),
            None => format!("key `{key}`"),
        };
        return ManifestError::Duplicate { line, what };
    }
    ManifestError::Syntax(error.to_string())
}

fn parse_rights(program: &str, names: &[String]) -> Result<Rights, ManifestError> {
    let mut rights = Rights::NONE;
    for name in names {
        let right = RIGHT_NAMES
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| *r)
            .ok_or_else(|| ManifestError::UnknownRight {
                program: program.into(),
                right: name.clone(),
            })?;
        rights = rights.union(right);
    }
    Ok(rights)
}

fn port_range(
    owner: impl FnOnce() -> String,
    [first, last]: [u16; 2],
) -> Result<PortRange, ManifestError> {
    if first > last {
        return Err(ManifestError::BackwardsPorts {
            owner: owner(),
            range: PortRange { first, last },
        });
    }
    Ok(PortRange { first, last })
}

/// Check `source` (the text of `system.toml`) and compile it.
///
/// `known_programs` are the program crates that exist (`userland/<name>` with a
/// `src/main.rs`); a manifest naming any other program is refused.
pub fn compile(source: &str, known_programs: &[&str]) -> Result<CompiledManifest, ManifestError> {
    compile_with(source, known_programs, &[])
}

/// [`compile`], with the keys in `allow_unenforced` built anyway when they are `true` and
/// this build cannot enforce them (`--allow-unenforced KEY`): they compile as
/// [`KeyState::AllowedUnenforced`], which init prints at boot. A key in the list that is
/// `false` or enforced is unaffected.
pub fn compile_with(
    text: &str,
    known_programs: &[&str],
    allow_unenforced: &[Key],
) -> Result<CompiledManifest, ManifestError> {
    let source: Source = toml::from_str(text).map_err(|e| syntax(text, e))?;
    let security = policy_source::parse(text)?;
    let init_source = source.init;
    let init = InitAuthority {
        console_rights: parse_rights("init", &init_source.console)?.bits(),
        memory_quota: init_source.memory_quota,
        cpus: init_source.cpus,
        irqs: init_source.irqs,
        io_ports: init_source
            .io_ports
            .into_iter()
            .map(|r| port_range(|| "[init]".into(), r))
            .collect::<Result<_, _>>()?,
    };
    let network: Vec<ObjectRef> = source
        .endpoints
        .values()
        .enumerate()
        .filter(|(_, decl)| decl.network)
        .map(|(i, _)| ObjectRef::Endpoint(i as u32))
        .chain(
            source
                .notifications
                .values()
                .enumerate()
                .filter(|(_, decl)| decl.network)
                .map(|(i, _)| ObjectRef::Notification(i as u32)),
        )
        .collect();
    let mut endpoint_names: Vec<String> = source.endpoints.into_keys().collect();
    for name in source.models.keys() {
        let requests = format!("model.{name}");
        if endpoint_names.contains(&requests) {
            return Err(model_error(name, format!("endpoint \"{requests}\" is declared, but the model makes it")));
        }
        endpoint_names.push(requests);
    }
    endpoint_names.sort();
    let endpoints = endpoint_names;
    let policy = compile_policy(&security, &endpoints, allow_unenforced)?;
    let memory_server = match &source.memory_server {
        None => None,
        Some(name) => Some(endpoints.iter().position(|e| e == name).ok_or_else(|| {
            ManifestError::UnknownObject {
                program: "memory_server".into(),
                kind: "endpoint",
                name: name.clone(),
            }
        })? as u32),
    };
    let mut files: Vec<String> = source
        .programs
        .iter()
        .flat_map(|p| p.caps.iter().filter_map(|c| c.file.clone()))
        .chain(source.models.values().map(|m| m.container.clone()))
        .collect();
    files.sort();
    files.dedup();
    let mut devices: Vec<PciId> = source
        .programs
        .iter()
        .flat_map(|p| p.caps.iter().filter_map(|c| c.device.as_ref().and_then(|d| PciId::parse(&d.pci))))
        .collect();
    devices.sort();
    devices.dedup();
    let mut manifest = CompiledManifest {
        init,
        endpoints,
        notifications: source.notifications.into_keys().collect(),
        programs: Vec::new(),
        memory_server,
        network,
        policy,
        files,
        devices,
        ai_server: source.ai_server.clone(),
        models: Vec::new(),
        trusted_keys: Vec::new(),
    };
    let mut programs = source.programs;
    for (index, (name, model)) in source.models.into_iter().enumerate() {
        let (compiled, sandbox) = expand_model(&manifest, index, name, model)?;
        manifest.models.push(compiled);
        programs.push(sandbox);
    }
    for program in programs {
        let compiled = compile_program(&manifest, program, known_programs)?;
        manifest.programs.push(compiled);
    }
    give_models_to_server(&mut manifest)?;
    check_system(&manifest)?;
    debug_assert_eq!(manifest.validate(), Ok(()));
    Ok(manifest)
}

fn model_error(model: &str, what: String) -> ManifestError {
    ManifestError::Model { model: model.into(), what }
}

/// A `[models.NAME]` entry as a [`Model`] (the AI server's slots still 0) and the
/// program entry of its sandbox.
fn expand_model(
    manifest: &CompiledManifest,
    index: usize,
    name: String,
    source: ModelSource,
) -> Result<(Model, ProgramSource), ManifestError> {
    let identifier = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && name.len() <= 32;
    if !identifier {
        return Err(model_error(&name, "a model name is lowercase letters, digits and '-', at most 32".into()));
    }
    if manifest.ai_server.is_none() {
        return Err(model_error(&name, "models need an AI server: set ai_server = \"PROGRAM\"".into()));
    }
    if source.max_input_bytes == 0 || source.deadline_ms == 0 {
        return Err(model_error(&name, "max_input_bytes and deadline_ms must be at least 1".into()));
    }
    let requests = format!("model.{name}");
    let client = u16::try_from(index)
        .ok()
        .and_then(|i| FIRST_SANDBOX_CLIENT.checked_add(i))
        .ok_or_else(|| model_error(&name, "too many models".into()))?;
    let sandbox = ProgramSource {
        name: format!("model-{name}"),
        program: Some(source.sandbox_program.unwrap_or_else(|| "model-sandbox".into())),
        priority: source.priority,
        budget_us: source.budget_us,
        period_us: source.period_us,
        memory_quota: source.memory_quota,
        on_crash: OnCrash::Restart,
        max_backoff_ms: Some(source.max_backoff_ms),
        audit: false,
        sandbox: true,
        console: Vec::new(),
        caps: vec![CapSource {
            name: Some("requests".into()),
            endpoint: Some(requests.clone()),
            notification: None,
            irq: None,
            io_ports: None,
            address_space: None,
            file: None,
            device: None,
            rights: vec!["read".into()],
            badge: None,
        }],
        heap: Some(HeapSource { client, quota_pages: source.heap_pages }),
        supervisor: None,
    };
    let position = |list: &[String], item: &str| list.iter().position(|n| n == item).map(|i| i as u32);
    let model = Model {
        container: position(&manifest.files, &source.container).unwrap_or_default(),
        requests: position(&manifest.endpoints, &requests).unwrap_or_default(),
        key: source.key,
        sandbox: sandbox.name.clone(),
        container_slot: 0,
        sandbox_slot: 0,
        max_input_bytes: source.max_input_bytes,
        deadline_ms: source.deadline_ms,
        name,
    };
    Ok((model, sandbox))
}

/// Gives the AI server, after its own caps, each model's container (read) and a call cap to
/// its sandbox (write, grant: the verified container travels through it), recording the slots.
fn give_models_to_server(manifest: &mut CompiledManifest) -> Result<(), ManifestError> {
    let Some(server_name) = manifest.ai_server.clone() else { return Ok(()) };
    let Some(server) = manifest.programs.iter().position(|p| p.name == server_name) else {
        return Err(ManifestError::UnknownProgram { program: server_name });
    };
    if manifest.programs[server].sandbox || manifest.programs[server].audit {
        return Err(model_error(&server_name, "the AI server may be neither a sandbox nor hold the audit".into()));
    }
    let mut next = manifest.programs[server]
        .caps
        .iter()
        .map(|c| c.slot)
        .filter(|&slot| slot < SPACE_SLOTS)
        .max()
        .map_or(FIRST_CAP_SLOT, |slot| slot + 1)
        .max(FIRST_CAP_SLOT);
    let mut grants = Vec::new();
    for model in &mut manifest.models {
        model.container_slot = next;
        model.sandbox_slot = next + 1;
        next += 2;
        if next > SPACE_SLOTS {
            return Err(ManifestError::TooManyCaps { program: server_name, slots: next });
        }
        let container = ObjectRef::File(model.container);
        let requests = ObjectRef::Endpoint(model.requests);
        grants.push(CapGrant { slot: model.container_slot, object: container, rights: Rights::READ.bits(), badge: 0 });
        grants.push(CapGrant {
            slot: model.sandbox_slot,
            object: requests,
            rights: Rights::WRITE.union(Rights::GRANT).bits(),
            badge: 0,
        });
    }
    for model in &manifest.models {
        let requests = ObjectRef::Endpoint(model.requests);
        if let Some(other) = manifest
            .programs
            .iter()
            .find(|p| p.name != model.sandbox && p.caps.iter().any(|c| c.object == requests))
        {
            return Err(model_error(
                &model.name,
                format!(
                    "program \"{}\" holds its request endpoint; only its sandbox and the AI server may",
                    other.name
                ),
            ));
        }
    }
    let caps = &mut manifest.programs[server].caps;
    let heap_at = caps.iter().position(|c| c.slot >= SPACE_SLOTS).unwrap_or(caps.len());
    caps.splice(heap_at..heap_at, grants);
    Ok(())
}

fn compile_program(
    manifest: &CompiledManifest,
    source: ProgramSource,
    known_programs: &[&str],
) -> Result<Program, ManifestError> {
    let name = source.name;
    let program = || name.clone();
    if name == "init" {
        return Err(ManifestError::InitListed);
    }
    if manifest.programs.iter().any(|p| p.name == name) {
        return Err(ManifestError::DuplicateProgram { program: program() });
    }
    let crate_name = source.program.clone().unwrap_or_else(|| name.clone());
    if !known_programs.contains(&crate_name.as_str()) {
        return Err(ManifestError::UnknownProgram { program: crate_name });
    }
    let priority = u8::try_from(source.priority)
        .ok()
        .filter(|p| (MIN_PRIORITY..=MAX_PRIORITY).contains(p))
        .ok_or(ManifestError::PriorityOutOfRange {
            program: program(),
            priority: source.priority,
        })?;
    if source.budget_us == 0 {
        return Err(ManifestError::ZeroBudget { program: program() });
    }
    if u64::from(source.budget_us) < abi::syscall::budget::MIN_US {
        return Err(ManifestError::BudgetBelowMinimum { program: program(), budget_us: source.budget_us });
    }
    if source.budget_us > source.period_us {
        return Err(ManifestError::BudgetOverPeriod {
            program: program(),
            budget_us: source.budget_us,
            period_us: source.period_us,
        });
    }
    if source.period_us > MAX_PERIOD_US {
        return Err(ManifestError::PeriodTooLong {
            program: program(),
            period_us: source.period_us,
        });
    }
    let on_crash = match (source.on_crash, source.max_backoff_ms) {
        (OnCrash::Fatal, None) => RestartPolicy::Fatal,
        (OnCrash::Fatal, Some(_)) => {
            return Err(ManifestError::BackoffWithoutRestart { program: program() });
        }
        (OnCrash::Restart, None) => {
            return Err(ManifestError::BackoffMissing { program: program() });
        }
        (OnCrash::Restart, Some(ms)) if ms < INITIAL_BACKOFF_MS => {
            return Err(ManifestError::BackoffTooShort {
                program: program(),
                max_backoff_ms: ms,
            });
        }
        (OnCrash::Restart, Some(max_backoff_ms)) => RestartPolicy::Restart { max_backoff_ms },
    };

    let mut caps = Vec::new();
    let console = parse_rights(&name, &source.console)?;
    if !console.is_empty() {
        caps.push(grant(manifest, &name, ObjectRef::Console, console, None)?);
    }
    let needed = u32::try_from(source.caps.len())
        .unwrap_or(u32::MAX)
        .saturating_add(FIRST_CAP_SLOT);
    if needed > SPACE_SLOTS {
        return Err(ManifestError::TooManyCaps {
            program: program(),
            slots: needed,
        });
    }
    let listed = source.caps.len() as u32;
    let mut cap_names: Vec<NamedCap> = Vec::new();
    for (index, cap) in source.caps.into_iter().enumerate() {
        if let Some(cap_name) = &cap.name {
            let identifier = cap_name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && cap_name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && cap_name.len() <= 32;
            if !identifier {
                return Err(ManifestError::BadCapName { program: program(), name: cap_name.clone() });
            }
            if cap_names.iter().any(|named| named.name == *cap_name) {
                return Err(ManifestError::DuplicateCapName { program: program(), name: cap_name.clone() });
            }
            // FIRST_CAP_SLOT + index < SPACE_SLOTS, checked above.
            cap_names.push(NamedCap { name: cap_name.clone(), slot: FIRST_CAP_SLOT + index as u32 });
        }
        let object = cap_target(manifest, &name, index, &cap)?;
        let rights = parse_rights(&name, &cap.rights)?;
        let mut compiled = grant(manifest, &name, object, rights, cap.badge)?;
        // FIRST_CAP_SLOT + index < SPACE_SLOTS, checked above.
        compiled.slot = FIRST_CAP_SLOT + index as u32;
        if caps
            .iter()
            .any(|c: &CapGrant| c.object == compiled.object && c.badge == compiled.badge)
        {
            let object = manifest.object_name(object).to_string();
            return Err(ManifestError::DuplicateCap {
                program: program(),
                object,
            });
        }
        caps.push(compiled);
    }
    if let Some(level) = &source.supervisor {
        let badge = match level.as_str() {
            "status" => init_api::STATUS_BADGE,
            "control" => init_api::CONTROL_BADGE,
            // The AI server's: status, and recording the models it refuses.
            "report" if manifest.ai_server.as_deref() == Some(name.as_str()) => init_api::REPORT_BADGE,
            _ => {
                return Err(ManifestError::UnknownObject {
                    program: program(),
                    kind: "supervisor level (status or control; report for the AI server)",
                    name: level.clone(),
                });
            }
        };
        let rights = Rights::WRITE.union(Rights::GRANT_REPLY);
        let mut supervisor = grant(manifest, &name, ObjectRef::Supervisor, rights, Some(badge))?;
        supervisor.slot = FIRST_CAP_SLOT + listed;
        if supervisor.slot >= SPACE_SLOTS {
            return Err(ManifestError::TooManyCaps { program: program(), slots: supervisor.slot + 1 });
        }
        caps.push(supervisor);
    }
    if let Some(heap) = source.heap {
        let endpoint = manifest
            .memory_server
            .ok_or_else(|| ManifestError::HeapWithoutMemoryServer { program: program() })?;
        let badge = memory_api::ClientBadge::new(heap.client, heap.quota_pages)
            .ok_or_else(|| ManifestError::ZeroClient { program: program() })?;
        let rights = Rights::WRITE.union(Rights::GRANT_REPLY);
        let mut memory = grant(manifest, &name, ObjectRef::Endpoint(endpoint), rights, Some(badge.encode()))?;
        memory.slot = HEAP_MEMORY_SLOT;
        let mut space = grant(manifest, &name, ObjectRef::OwnAddressSpace, Rights::WRITE, None)?;
        space.slot = HEAP_SPACE_SLOT;
        caps.extend([memory, space]);
    }
    Ok(Program {
        binary: format!("bin/{crate_name}"),
        cap_names,
        name,
        priority,
        budget_us: source.budget_us,
        period_us: source.period_us,
        memory_quota: source.memory_quota,
        on_crash,
        audit: source.audit,
        sandbox: source.sandbox,
        caps,
    })
    .and_then(|compiled| match crate::policy::sandbox_breach(manifest, &compiled) {
        Some(breach) => Err(ManifestError::Sandbox { program: compiled.name.clone(), what: breach.describe(manifest) }),
        None => Ok(compiled),
    })
}

/// Each key's state on this build, and `[security.sandbox]` with its services resolved.
fn compile_policy(
    security: &policy_source::SecuritySource,
    endpoints: &[String],
    allow_unenforced: &[Key],
) -> Result<Policy, ManifestError> {
    let mut states = Vec::new();
    let mut refused = Vec::new();
    for &(key, value, line) in &security.keys {
        let state = match (value, key.mechanism()) {
            (false, _) => KeyState::Off,
            (true, Mechanism::Enforced { .. }) => KeyState::Enforced,
            (true, Mechanism::Missing { .. }) if allow_unenforced.contains(&key) => KeyState::AllowedUnenforced,
            (true, Mechanism::Missing { .. }) => {
                refused.push((key, line));
                KeyState::Refused
            }
        };
        states.push(state);
    }
    if !refused.is_empty() {
        return Err(ManifestError::Refused { keys: refused, states });
    }
    let s = &security.sandbox;
    let secure_inference = security.keys.iter().find(|k| k.0 == Key::SecureInference);
    if let Some(&(_, true, line)) = secure_inference
        && s.network
    {
        return Err(ManifestError::Policy {
            line,
            message: format!(
                "[security.ai] secure_inference = true, but [security.sandbox] network = true (line {}): \
                 a model sandbox with a network cap is not secure inference",
                s.network_line
            ),
        });
    }
    let mut allowed_services = Vec::new();
    for (name, line) in &s.allowed_services {
        let index = endpoints.iter().position(|e| e == name).ok_or_else(|| ManifestError::Policy {
            line: *line,
            message: format!("[security.sandbox] allowed_services names endpoint \"{name}\", which is not declared"),
        })?;
        allowed_services.push(index as u32);
    }
    Ok(Policy {
        keys: states,
        sandbox: SandboxPolicy {
            network: s.network,
            max_priority: s.max_priority,
            max_cpu_percent: s.max_cpu_percent,
            max_memory_quota: s.max_memory_quota,
            max_heap_pages: s.max_heap_pages,
            allowed_services,
        },
    })
}

/// The object a `caps` entry names: exactly one of its target keys, and declared.
fn cap_target(
    manifest: &CompiledManifest,
    program: &str,
    index: usize,
    cap: &CapSource,
) -> Result<ObjectRef, ManifestError> {
    let targets = [
        cap.endpoint.is_some(),
        cap.notification.is_some(),
        cap.irq.is_some(),
        cap.io_ports.is_some(),
        cap.address_space.is_some(),
        cap.file.is_some(),
        cap.device.is_some(),
    ];
    match targets.iter().filter(|t| **t).count() {
        0 => {
            return Err(ManifestError::NoTarget {
                program: program.into(),
                index,
            });
        }
        1 => {}
        _ => {
            return Err(ManifestError::ManyTargets {
                program: program.into(),
                index,
            });
        }
    }
    let lookup = |list: &[String], kind: &'static str, name: &str| {
        list.iter()
            .position(|n| n == name)
            .map(|i| i as u32)
            .ok_or_else(|| ManifestError::UnknownObject {
                program: program.into(),
                kind,
                name: name.into(),
            })
    };
    Ok(if let Some(name) = &cap.endpoint {
        ObjectRef::Endpoint(lookup(&manifest.endpoints, "endpoint", name)?)
    } else if let Some(name) = &cap.notification {
        ObjectRef::Notification(lookup(&manifest.notifications, "notification", name)?)
    } else if let Some(line) = cap.irq {
        ObjectRef::Irq(line)
    } else if let Some(range) = cap.io_ports {
        ObjectRef::IoPorts(port_range(|| format!("program \"{program}\""), range)?)
    } else if let Some(name) = &cap.address_space {
        if name != "own" {
            return Err(ManifestError::UnknownObject {
                program: program.into(),
                kind: "address space",
                name: name.clone(),
            });
        }
        ObjectRef::OwnAddressSpace
    } else if let Some(path) = &cap.file {
        ObjectRef::File(lookup(&manifest.files, "file", path)?)
    } else if let Some(device) = &cap.device {
        let bad = || ManifestError::BadDevice { program: program.into(), device: device.pci.clone(), bar: device.bar };
        let id = PciId::parse(&device.pci).ok_or_else(bad)?;
        let index = manifest.devices.iter().position(|d| *d == id).ok_or_else(bad)? as u32;
        match device.bar {
            None => ObjectRef::Pci(index),
            Some(bar) if bar < 6 => ObjectRef::PciBar(index, bar),
            Some(_) => return Err(bad()),
        }
    } else {
        unreachable!("exactly one target was counted above")
    })
}

/// One cap for `program`: its rights mean something on `object`, init holds them, and the
/// badge is allowed. The slot is filled in by the caller (console: [`CONSOLE_SLOT`]).
fn grant(
    manifest: &CompiledManifest,
    program: &str,
    object: ObjectRef,
    rights: Rights,
    badge: Option<u64>,
) -> Result<CapGrant, ManifestError> {
    let name = || manifest.object_name(object).to_string();
    let init = &manifest.init;
    if rights.is_empty() {
        return Err(ManifestError::NoRights {
            program: program.into(),
            object: name(),
        });
    }
    let allowed = object.meaningful_rights();
    if !rights.is_subset_of(allowed) {
        return Err(ManifestError::MeaninglessRights {
            program: program.into(),
            object: name(),
            asked: rights,
            allowed,
        });
    }
    // What init holds on the object; every granted cap is derived from it, so rights only shrink.
    let held = match object {
        // init creates endpoints and notifications itself, with every right, and each
        // incarnation's address space.
        // The supervisor interface is init's own fault endpoint.
        ObjectRef::Endpoint(_) | ObjectRef::Notification(_) | ObjectRef::OwnAddressSpace | ObjectRef::Supervisor => {
            Rights::ALL
        }
        // init cuts files out of its read-only initrd frame.
        ObjectRef::File(_) => Rights::READ,
        // init cuts one-function caps from its PCI bus cap and BARs from its device frame,
        // both held with read and write (and grant).
        ObjectRef::Pci(_) | ObjectRef::PciBar(..) => Rights::READ.union(Rights::WRITE),
        ObjectRef::Console => init.console(),
        ObjectRef::Irq(line) => {
            if !init.irqs.contains(&line) {
                let held = format!("irqs {:?}", init.irqs);
                return Err(ManifestError::NotHeld {
                    program: program.into(),
                    object: name(),
                    held,
                });
            }
            Rights::READ.union(Rights::WRITE)
        }
        ObjectRef::IoPorts(range) => {
            if !init.io_ports.iter().any(|h| h.contains(range)) {
                let list: Vec<String> = init.io_ports.iter().map(|r| r.to_string()).collect();
                let held = format!("io ports [{}]", list.join(", "));
                return Err(ManifestError::NotHeld {
                    program: program.into(),
                    object: name(),
                    held,
                });
            }
            Rights::READ.union(Rights::WRITE)
        }
    };
    if !rights.is_subset_of(held) {
        return Err(ManifestError::RightsNotHeld {
            program: program.into(),
            object: name(),
            asked: rights,
            held,
        });
    }
    let badge = match badge {
        None => 0,
        Some(_) if !object.kind().is_badgeable() => {
            return Err(ManifestError::BadgeNotBadgeable {
                program: program.into(),
                object: name(),
            });
        }
        Some(0) => {
            return Err(ManifestError::ZeroBadge {
                program: program.into(),
                object: name(),
            });
        }
        Some(badge) => badge,
    };
    Ok(CapGrant {
        slot: CONSOLE_SLOT,
        object,
        rights: rights.bits(),
        badge,
    })
}

/// Checks across programs: exclusive devices, distinct badges, every declared object used
/// and receivable, one auditor, and CPU and memory within what init holds.
fn check_system(manifest: &CompiledManifest) -> Result<(), ManifestError> {
    let holders = || {
        manifest
            .programs
            .iter()
            .flat_map(|p| p.caps.iter().map(move |c| (p.name.as_str(), c)))
    };
    for (i, (first, a)) in holders().enumerate() {
        for (second, b) in holders().skip(i + 1) {
            if first == second {
                continue; // within one program, compile_program already refused duplicates
            }
            let object = || manifest.object_name(a.object).to_string();
            let (first, second) = (first.to_string(), second.to_string());
            let pci = |object| match object {
                ObjectRef::Pci(d) | ObjectRef::PciBar(d, _) => Some(d),
                _ => None,
            };
            let device_overlap = match (a.object, b.object) {
                (ObjectRef::Irq(x), ObjectRef::Irq(y)) => x == y,
                (ObjectRef::IoPorts(x), ObjectRef::IoPorts(y)) => x.overlaps(y),
                // A function and its BARs are one device: one driver holds them all.
                (x, y) => pci(x).is_some() && pci(x) == pci(y),
            };
            if device_overlap {
                return Err(ManifestError::SharedDevice {
                    object: object(),
                    first,
                    second,
                });
            }
            if a.object == b.object && a.badge != 0 && a.badge == b.badge {
                return Err(ManifestError::SharedBadge {
                    object: object(),
                    badge: a.badge,
                    first,
                    second,
                });
            }
        }
    }
    let declared = (0..manifest.endpoints.len() as u32)
        .map(ObjectRef::Endpoint)
        .chain((0..manifest.notifications.len() as u32).map(ObjectRef::Notification));
    for object in declared {
        let mut held = holders().filter(|(_, c)| c.object == object).peekable();
        if held.peek().is_none() {
            return Err(ManifestError::UnusedObject {
                object: manifest.object_name(object).to_string(),
            });
        }
        if !held.any(|(_, c)| c.rights().contains(Rights::READ)) {
            return Err(ManifestError::NoReceiver {
                object: manifest.object_name(object).to_string(),
            });
        }
    }
    let clients = || {
        manifest
            .programs
            .iter()
            .flat_map(|p| p.memory_clients(manifest.memory_server).map(move |c| (p.name.as_str(), c)))
    };
    for (i, (first, a)) in clients().enumerate() {
        if let Some((second, _)) = clients().skip(i + 1).find(|&(second, b)| b == a && second != first) {
            return Err(ManifestError::SharedClient {
                client: a,
                first: first.into(),
                second: second.into(),
            });
        }
    }
    let mut auditors = manifest.programs.iter().filter(|p| p.audit);
    if let (Some(first), Some(second)) = (auditors.next(), auditors.next()) {
        return Err(ManifestError::TwoAuditors {
            first: first.name.clone(),
            second: second.name.clone(),
        });
    }
    // Parts per million of one CPU, each program's share rounded up.
    let ppm: u64 = manifest
        .programs
        .iter()
        .map(|p| (u64::from(p.budget_us) * 1_000_000).div_ceil(u64::from(p.period_us)))
        .sum();
    if ppm > u64::from(manifest.init.cpus) * 1_000_000 {
        return Err(ManifestError::CpuOvercommitted {
            ppm,
            cpus: manifest.init.cpus,
        });
    }
    let total: u128 = manifest
        .programs
        .iter()
        .map(|p| u128::from(p.memory_quota))
        .sum();
    if total > u128::from(manifest.init.memory_quota) {
        return Err(ManifestError::MemoryOvercommitted {
            total,
            held: manifest.init.memory_quota,
        });
    }
    Ok(())
}
