//! The shell's commands: each answers from init's supervisor interface (what the manifest
//! says and init did) and the audit (what the kernel holds), and says plainly what this
//! boot cannot answer.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use init_api::{CapInfo, LogEvent, ProgramInfo, Reply, Request};
use libcap::sys::{self, AuditedCap};
use libcap::{ErrorCode, ObjectType, Rights, println};

use crate::Caps;

/// Slots a program's space has (the manifest's 64, and the heap's up to 127).
const SPACE_SLOTS: u64 = 128;

const HELP: &str = "\
commands:
  help              this list
  ps                programs: state, priority, budget/period, CPU used, kernel memory, restarts
  caps PROGRAM      a program's caps as the kernel holds them, beside its manifest entry
  mem               kernel memory per program, memory-server clients and their quotas
  net               the network server (address, connections, firewall)
  models            loaded models, their sandbox, quota and budget
  embed TEXT        an embedding of TEXT (first dimensions, norm, time)
  classify          classify a digit with the digits model
  log               the security log's last records
  policy            the [security.*] policy keys and their state
  restart PROGRAM   restart a program (needs a control supervisor cap)
  stop PROGRAM      stop a program for good (needs a control supervisor cap)
keys: Left/Right move, Up/Down history, Backspace, Ctrl-U clears the line, Ctrl-C cancels it";

pub fn run(caps: &Caps, line: &str) {
    let mut words = line.split_whitespace();
    let Some(command) = words.next() else { return };
    let argument = words.next();
    match (command, argument) {
        ("help", _) => println!("{HELP}"),
        ("ps", _) => ps(caps),
        ("caps", Some(name)) => show_caps(caps, name),
        ("caps", None) => println!("caps: which program? (caps PROGRAM; ps lists them)"),
        ("mem", _) => mem(caps),
        ("net", _) => println!("net: no network server in this boot (system.toml starts none)"),
        ("models", _) => models(caps),
        ("classify", _) => classify(caps),
        ("embed", _) => embed(caps, line.trim_start().strip_prefix("embed").unwrap_or("").trim()),
        ("log", _) => log(caps),
        ("policy", _) => policy(caps),
        ("restart" | "stop", Some(name)) => control(caps, command, name),
        ("restart" | "stop", None) => println!("{command}: which program? ({command} PROGRAM)"),
        _ => println!("unknown command \"{}\"; type help for the list", Shown(command)),
    }
}

/// The AI server's models, as it answers for them.
fn ai_models(caps: &Caps, command: &str) -> Option<(ai_api::ai::Client, libcap::heapless::Vec<ai_api::ModelStatus, { ai_api::MAX_MODELS }>)> {
    let Some(slot) = caps.ai else {
        println!("{command}: no AI server in this boot (the manifest gives the shell no cap to one)");
        return None;
    };
    let server = ai_api::ai::Client::new(libcap::caps::Endpoint::at(slot.index()));
    match server.models() {
        Ok(models) => Some((server, models)),
        Err(error) => {
            println!("{command}: the AI server did not answer: {error:?}");
            None
        }
    }
}

fn models(caps: &Caps) {
    let Some((_, models)) = ai_models(caps, "models") else { return };
    for model in &models {
        let state = match &model.state {
            ai_api::ModelState::Ready => String::from("ready"),
            ai_api::ModelState::Unavailable => String::from("unavailable (its sandbox reloads it on the next request)"),
            ai_api::ModelState::Refused(check) => format!("refused at boot: check \"{check}\" failed"),
        };
        println!(
            "  {:<20} {:<14} {state}; input up to {} bytes; {} requests served",
            model.name, model.architecture, model.max_input_bytes, model.served
        );
    }
    println!("models: {} in the manifest (each runs in its own sandbox: ps lists them as model-NAME)", models.len());
}

/// The first model of `architecture` that serves, by name.
fn first_of(models: &[ai_api::ModelStatus], architecture: &str) -> Option<ai_api::ModelName> {
    models.iter().find(|m| m.architecture == architecture && m.state == ai_api::ModelState::Ready).map(|m| m.name.clone())
}

/// An 8x8 "0" (pixels 0..=16), drawn the way the digits data set draws them.
const ZERO: [u8; 64] = [
    0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0,
    0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
];

fn classify(caps: &Caps) {
    let Some((server, models)) = ai_models(caps, "classify") else { return };
    let Some(model) = first_of(&models, "digits-mlp") else { return println!("classify: no digits model serves in this boot (models lists them)") };
    let image = libcap::heapless::Vec::from_slice(&ZERO).unwrap_or_default();
    match server.classify(model.clone(), image) {
        Ok(Ok(answer)) => println!("classify: {model} says the sample 8x8 zero is a {} (score {:.2})", answer.class, answer.score),
        Ok(Err(error)) => println!("classify: {model} refused: {error:?}"),
        Err(error) => println!("classify: the AI server did not answer: {error:?}"),
    }
}

fn embed(caps: &Caps, text: &str) {
    if text.is_empty() {
        return println!("embed: what text? (embed TEXT)");
    }
    let Some((server, models)) = ai_models(caps, "embed") else { return };
    let Some(model) = first_of(&models, "minilm-l6-v2") else { return println!("embed: no text model serves in this boot (models lists them)") };
    let Ok(text) = text.try_into() else { return println!("embed: the text is longer than {} bytes", ai_api::MAX_TEXT) };
    match server.embed(model.clone(), text) {
        Ok(Ok(embedding)) => {
            let first: Vec<String> = embedding.vector.iter().take(4).map(|x| format!("{x:.4}")).collect();
            println!(
                "embed: {model}: {} dimensions from {} tokens, starting [{}, ...]",
                embedding.vector.len(),
                embedding.token_ids.len(),
                first.join(", ")
            );
        }
        Ok(Err(error)) => println!("embed: {model} refused: {error:?}"),
        Err(error) => println!("embed: the AI server did not answer: {error:?}"),
    }
}

/// A word as typed, cut short and with control characters shown as `?`, so echoing it
/// back cannot drive the terminal.
struct Shown<'a>(&'a str);

impl core::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use core::fmt::Write;
        for c in self.0.chars().take(40) {
            f.write_char(if c.is_control() { '?' } else { c })?;
        }
        if self.0.chars().count() > 40 {
            f.write_str("...")?;
        }
        Ok(())
    }
}

fn ask(caps: &Caps, request: &Request) -> Result<Reply, ErrorCode> {
    let supervisor = caps.supervisor.ok_or(ErrorCode::EmptySlot)?;
    Ok(libcap::ipc::call(supervisor.slot, init_api::LABEL, request)?)
}

/// The security log init keeps: the records it held when asked, oldest first, then how
/// many it had overwritten. The end is fixed first, so a reader is never outrun by a flood:
/// records overwritten while it reads are said to be gone, not chased.
fn log(caps: &Caps) {
    let (end, dropped) = match ask(caps, &Request::Log { number: u64::MAX }) {
        Ok(Reply::LogEnd { next, dropped }) => (next, dropped),
        Ok(_) => return println!("log: init answered something else"),
        Err(error) => return println!("log: init did not answer: {error:?}"),
    };
    let mut number = end.saturating_sub(LOG_RECORDS);
    let mut shown = 0u32;
    // The AI server's models, asked for at the first refused-model record (they name it).
    let mut models = None;
    while number < end {
        let record = match ask(caps, &Request::Log { number }) {
            Ok(Reply::Log(record)) if record.number < end => record,
            Ok(_) => break,
            Err(error) => return println!("log: init did not answer: {error:?}"),
        };
        if record.number > number {
            println!("log: records {number}..{} were overwritten while this was read", record.number);
        }
        let sandbox = if record.sandbox { " (sandbox)" } else { "" };
        let event = match record.event {
            LogEvent::Fault { vector, address } => format!("fault: vector {vector}, address {address:#x}"),
            LogEvent::Exited { code } => format!("exited with code {code}"),
            LogEvent::Killed => "killed".into(),
            LogEvent::Restarted { delay_ms: 0 } => "restarted, as a supervisor asked".into(),
            LogEvent::Restarted { delay_ms } => format!("restarted by init after {delay_ms} ms"),
            LogEvent::Fatal => "crashed, fatal".into(),
            LogEvent::SupervisorRefused { target } => {
                let name = match ask(caps, &Request::Program { index: target }) {
                    Ok(Reply::Program(info)) => info.name,
                    _ => init_api::name("?"),
                };
                format!("denied: asked init to restart or stop {name} with a status-only supervisor cap")
            }
            LogEvent::RefusedSyscall { syscall, code, suppressed } => {
                let call = libcap::Sysno::try_from(u64::from(syscall)).map_or_else(|_| format!("#{syscall}"), |s| format!("{s:?}"));
                let why = libcap::ErrorCode::try_from(u32::from(code)).map_or("an unknown error", |c| c.as_str());
                format!("refused syscall {call}: {why}{}", suppressed_note(suppressed))
            }
            LogEvent::BudgetOverrun { suppressed } => format!("budget overrun: held until its next period{}", suppressed_note(suppressed)),
            LogEvent::KernelLost { count } => format!("the kernel overwrote {count} denial records before init read them"),
            LogEvent::ModelRefused { model, check } => {
                let models = models.get_or_insert_with(|| ai_models(caps, "log").map(|(_, models)| models).unwrap_or_default());
                let name = models.get(usize::from(model)).map_or("?", |m| m.name.as_str());
                format!("refused model {name} at boot: check \"{}\" failed", init_api::check_name(&check))
            }
        };
        println!("  #{:<6} tsc {:>14}  {}{sandbox}: {event}", record.number, record.tsc, record.program);
        number = record.number.saturating_add(1);
        shown = shown.saturating_add(1);
    }
    println!("log: {shown} records shown, {end} recorded since boot, {dropped} overwritten (init keeps the last {LOG_RECORDS})");
}

/// How many records init's security log keeps (`init`'s `LOG_RECORDS`).
const LOG_RECORDS: u64 = 64;

/// The `[security.*]` policy of this boot, key by key, as init holds it.
fn policy(caps: &Caps) {
    let mut keys = Vec::new();
    for index in 0..u16::MAX {
        match ask(caps, &Request::PolicyKey { index }) {
            Ok(Reply::PolicyKey(info)) => keys.push(info),
            Ok(_) => break,
            Err(error) => {
                println!("policy: init did not answer: {error:?}");
                return;
            }
        }
    }
    for key in &keys {
        println!("  [security.{}] {:<26} {}", key.section, key.key, key.state);
    }
    let unenforced = keys.iter().filter(|k| k.state.as_str() == "allowed-unenforced").count();
    println!(
        "policy: {} keys, {} enforced, {unenforced} allowed-unenforced (init's boot log says why each is not enforced)",
        keys.len(),
        keys.iter().filter(|k| k.state.as_str() == "enforced").count()
    );
}

/// Every program of the manifest, in its order, as init reports it.
fn programs(caps: &Caps) -> Result<Vec<ProgramInfo>, ErrorCode> {
    let mut found = Vec::new();
    for index in 0..u16::MAX {
        match ask(caps, &Request::Program { index })? {
            Reply::Program(info) => found.push(info),
            _ => break,
        }
    }
    Ok(found)
}

fn program_caps(caps: &Caps, index: u16, info: &ProgramInfo) -> Result<Vec<CapInfo>, ErrorCode> {
    let mut found = Vec::new();
    for cap in 0..info.caps {
        if let Reply::Cap(grant) = ask(caps, &Request::Cap { program: index, cap })? {
            found.push(grant);
        }
    }
    Ok(found)
}

fn no_supervisor(command: &str, code: ErrorCode) {
    println!("{command}: cannot ask init ({}): the manifest gives this shell no supervisor cap", code.as_str());
}

/// `AuditThread` state numbers, named.
fn state_name(state: u64) -> &'static str {
    match state {
        0 => "free",
        1 => "inactive",
        2 => "ready",
        3 => "running",
        4 => "blocked",
        5 => "throttled",
        6 => "dead",
        _ => "?",
    }
}

fn ps(caps: &Caps) {
    let programs = match programs(caps) {
        Ok(programs) => programs,
        Err(code) => return no_supervisor("ps", code),
    };
    println!("{:<16} {:<9} {:>4} {:>15} {:>9} {:>21} {:>8}", "PROGRAM", "STATE", "PRIO", "BUDGET/PERIOD", "CPU ms", "KERNEL MEMORY", "RESTARTS");
    for info in &programs {
        let thread = match (info.running, caps.audit) {
            (Some(running), Some(audit)) => sys::audit_thread(audit, u64::from(running.thread)).ok(),
            _ => None,
        };
        let state = match (info.running, thread) {
            (Some(_), Some(thread)) => state_name(thread.state),
            (Some(_), None) => "running?",
            (None, _) => "ended",
        };
        let budget = alloc::format!("{}/{} us", info.budget_us, info.period_us);
        let (cpu, memory) = match thread {
            Some(thread) => (
                alloc::format!("{}.{}", thread.cpu_us / 1000, (thread.cpu_us % 1000) / 100),
                alloc::format!("{} / {} KiB", thread.quota_used.div_ceil(1024), info.memory_quota / 1024),
            ),
            None => (String::from("-"), alloc::format!("- / {} KiB", info.memory_quota / 1024)),
        };
        println!("{:<16} {:<9} {:>4} {:>15} {:>9} {:>21} {:>8}", info.name.as_str(), state, info.priority, budget, cpu, memory, info.restarts);
    }
    let audit_note = if caps.audit.is_some() { "" } else { " (no audit cap: state, CPU and memory unknown)" };
    println!("ps: {} programs, as the manifest lists them; init, their supervisor, is not one{audit_note}", programs.len());
}

fn find(caps: &Caps, command: &str, name: &str) -> Option<(u16, ProgramInfo)> {
    let programs = match programs(caps) {
        Ok(programs) => programs,
        Err(code) => {
            no_supervisor(command, code);
            return None;
        }
    };
    let found = programs.into_iter().enumerate().find(|(_, info)| info.name.as_str() == name);
    if found.is_none() {
        println!("{command}: no program \"{}\" in this boot (ps lists them)", Shown(name));
    }
    found.and_then(|(index, info)| Some((u16::try_from(index).ok()?, info)))
}

fn rights_text(rights: Rights) -> String {
    let names = [
        (Rights::READ, "read"),
        (Rights::WRITE, "write"),
        (Rights::GRANT, "grant"),
        (Rights::GRANT_REPLY, "grant_reply"),
        (Rights::EXECUTE, "execute"),
    ];
    let list: Vec<&str> = names.iter().filter(|(r, _)| r.is_subset_of(rights) && !r.is_empty()).map(|(_, n)| *n).collect();
    if list.is_empty() { String::from("none") } else { list.join(",") }
}

fn kind_text(kind: u64) -> String {
    match ObjectType::try_from(kind) {
        Ok(kind) => alloc::format!("{kind:?}"),
        Err(_) => alloc::format!("kind {kind}"),
    }
}

fn badge_text(badge: u64) -> String {
    if badge == 0 { String::new() } else { alloc::format!(" badge {badge:#x}") }
}

/// One manifest cap, as the manifest means it.
struct Wanted {
    slot: u32,
    kind: u64,
    rights: Rights,
    badge: u64,
    object: String,
}

fn show_caps(caps: &Caps, name: &str) {
    let Some((index, info)) = find(caps, "caps", name) else { return };
    let grants = match program_caps(caps, index, &info) {
        Ok(grants) => grants,
        Err(code) => return no_supervisor("caps", code),
    };
    let mut wanted: Vec<Wanted> = grants
        .iter()
        .map(|g| Wanted {
            slot: g.slot,
            kind: u64::from(g.kind),
            rights: Rights::from_bits_truncate(g.rights),
            badge: g.badge,
            object: String::from(g.object.as_str()),
        })
        .collect();
    if let Some(slot) = info.audit_slot {
        wanted.push(Wanted {
            slot: u32::from(slot),
            kind: u64::from(ObjectType::Audit.as_u32()),
            rights: Rights::READ,
            badge: 0,
            object: String::from("the authority audit (audit = true)"),
        });
    }
    wanted.sort_by_key(|w| w.slot);
    let (Some(running), Some(audit)) = (info.running, caps.audit) else {
        let why = if caps.audit.is_none() { "this shell has no audit cap" } else { "it is not running" };
        println!("caps {name}: its manifest entry ({why}, so nothing to compare with):");
        for w in &wanted {
            println!("  slot {:>3}  {}: {}{}", w.slot, w.object, rights_text(w.rights), badge_text(w.badge));
        }
        return;
    };
    println!("caps {name} (capability space {}): the manifest entry beside what the kernel holds", running.space);
    let mut differences = 0;
    let mut heap_frames = 0;
    let has_heap = wanted.iter().any(|w| w.slot == libcap::slots::HEAP_MEMORY.index());
    // A model's sandbox (`model-NAME`) gains one cap after start: its weights, from the AI server.
    let sandbox_of = |models: &[ai_api::ModelStatus]| models.iter().any(|m| name.strip_prefix("model-") == Some(m.name.as_str()));
    let is_sandbox = caps.ai.is_some_and(|slot| {
        ai_api::ai::Client::new(libcap::caps::Endpoint::at(slot.index())).models().is_ok_and(|models| sandbox_of(&models))
    });
    for slot in 0..SPACE_SLOTS {
        let held: Option<AuditedCap> = match sys::audit_cap(audit, u64::from(running.space), slot) {
            Ok(cap) => Some(cap),
            Err(ErrorCode::EmptySlot) => None,
            Err(code) => {
                println!("caps {name}: the audit stopped at slot {slot}: {} (the program may have ended)", code.as_str());
                return;
            }
        };
        let want = wanted.iter().find(|w| u64::from(w.slot) == slot);
        match (want, held) {
            (None, None) => {}
            (Some(w), Some(h)) if h.kind == w.kind && h.rights == w.rights && h.badge.value() == w.badge => {
                println!("  slot {slot:>3}  {}: {}{}  = held", w.object, rights_text(w.rights), badge_text(w.badge));
            }
            (Some(w), held) => {
                differences += 1;
                let found = held.map_or(String::from("nothing"), |h| {
                    alloc::format!("{} {}{}", kind_text(h.kind), rights_text(h.rights), badge_text(h.badge.value()))
                });
                println!("! slot {slot:>3}  {}: {}{}  but the kernel holds {found}", w.object, rights_text(w.rights), badge_text(w.badge));
            }
            (None, Some(h)) if has_heap && libcap::slots::HEAP_FRAMES.contains(&(slot as u32)) && h.kind == u64::from(ObjectType::Frame.as_u32()) => {
                heap_frames += 1;
            }
            (None, Some(h))
                if is_sandbox
                    && slot == u64::from(manifest::SANDBOX_WEIGHTS_SLOT)
                    && h.kind == u64::from(ObjectType::Frame.as_u32())
                    && h.rights == Rights::READ =>
            {
                println!("  slot {slot:>3}  its model's weights, from the AI server after verification: {}  = held", rights_text(h.rights));
            }
            (None, Some(h)) => {
                differences += 1;
                println!("! slot {slot:>3}  not in the manifest, but the kernel holds {} {}{}", kind_text(h.kind), rights_text(h.rights), badge_text(h.badge.value()));
            }
        }
    }
    if heap_frames > 0 {
        println!("  slots 96..126: {heap_frames} frames of its heap, from the memory server");
    }
    if differences == 0 {
        println!("caps {name}: {} caps, exactly as the manifest says", wanted.len());
    } else {
        println!("caps {name}: {differences} differences from the manifest (marked !)");
    }
}

fn mem(caps: &Caps) {
    let programs = match programs(caps) {
        Ok(programs) => programs,
        Err(code) => return no_supervisor("mem", code),
    };
    println!("mem: kernel memory per program (its quota's account, read through the audit):");
    let mut clients = Vec::new();
    for (index, info) in programs.iter().enumerate() {
        let used = match (info.running, caps.audit) {
            (Some(running), Some(audit)) => sys::audit_thread(audit, u64::from(running.thread)).ok().map(|t| t.quota_used),
            _ => None,
        };
        match used {
            Some(used) => println!("  {:<16} {:>6} KiB used of {:>6} KiB", info.name.as_str(), used.div_ceil(1024), info.memory_quota / 1024),
            None => println!("  {:<16} {:>6} of {:>6} KiB (not running)", info.name.as_str(), "-", info.memory_quota / 1024),
        }
        let Ok(index) = u16::try_from(index) else { continue };
        for grant in program_caps(caps, index, info).unwrap_or_default() {
            let on_memory_server = grant.kind == ObjectType::Endpoint.as_u32() && grant.object.as_str() == "endpoint \"memory\"";
            if let Some(client) = memory_api::ClientBadge::decode(grant.badge).filter(|_| on_memory_server) {
                clients.push((String::from(info.name.as_str()), client));
            }
        }
    }
    if clients.is_empty() {
        println!("mem: no memory-server clients in this boot");
    } else {
        println!("mem: memory-server clients (the quota their badge carries):");
        for (name, client) in &clients {
            println!("  {:<16} client {:>3}, quota {} pages ({} KiB)", name, client.id(), client.quota_pages(), u64::from(client.quota_pages()) * 4);
        }
    }
    match caps.audit.map(sys::audit_memory) {
        Some(Ok(memory)) => println!(
            "mem: free frames: {} of {} ({} of {} MiB), what every quota draws from",
            memory.free_frames,
            memory.managed_frames,
            memory.free_frames / 256,
            memory.managed_frames / 256
        ),
        Some(Err(code)) => println!("mem: free frames: the audit refused: {code:?}"),
        None => println!("mem: free frames: unknown (this shell has no audit cap)"),
    }
}

fn control(caps: &Caps, command: &str, name: &str) {
    let Some(supervisor) = caps.supervisor else {
        println!("{command}: refused: the manifest gives this shell no supervisor cap");
        return;
    };
    let Some((index, _)) = find(caps, command, name) else { return };
    let request = if command == "restart" { Request::Restart { program: index } } else { Request::Stop { program: index } };
    // Asked even with a status-only cap: init, not the shell, decides, by the cap's badge.
    match ask(caps, &request) {
        Ok(Reply::Done) => println!("{command}: {name}: done"),
        Ok(Reply::NotPermitted) => {
            let level = if supervisor.control { "control" } else { "status" };
            println!("{command}: refused by init: this shell's supervisor cap is {level}-only (system.toml: supervisor = \"{level}\"); {command} needs supervisor = \"control\"");
        }
        Ok(_) => println!("{command}: {name}: init has no such program"),
        Err(code) => println!("{command}: asking init: {}", code.as_str()),
    }
}

/// What a kernel record says about the records of the same program it did not keep.
fn suppressed_note(suppressed: u8) -> String {
    match suppressed {
        0 => String::new(),
        u8::MAX => " (and at least 255 more before it, counted, not kept)".into(),
        n => format!(" (and {n} more before it, counted, not kept)"),
    }
}
