//! `qemu::shell`: a person at the console. The whole system boots as `cargo xtask run`
//! boots it; the test types into the serial line (QEMU's stdin) one command at a time, waits
//! for each answer and the next prompt, as someone at the keyboard would, and checks each
//! answer against the system's real state: the compiled boot manifest (`ps` lists exactly
//! its programs, `caps` shows exactly a program's entry, held as the manifest says) and
//! what the shell is not allowed to do (`restart` is refused by init).
//!
//! Waits are bounded by generous host-time limits only; nothing is judged on speed. Under
//! TCG the guest runs in virtual time (`qemu::test_command`), so a loaded host only makes
//! it slower, never different.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long one answer may take, in host time (it takes well under a second unloaded).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);
const PROMPT: &str = "dai> ";

struct Session {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<Vec<u8>>>,
    /// Output before this offset belongs to earlier commands.
    seen: usize,
}

impl Session {
    fn start(mut qemu: Command) -> Result<Session> {
        qemu.args(["-serial", "stdio", "-monitor", "none"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = qemu.spawn().context("starting qemu-system-x86_64")?;
        let stdin = child.stdin.take().context("qemu stdin")?;
        let mut stdout = child.stdout.take().context("qemu stdout")?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(read) = stdout.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                if let Ok(mut buffer) = sink.lock() {
                    buffer.extend_from_slice(&chunk[..read]);
                }
            }
        });
        Ok(Session { child, stdin, output, seen: 0 })
    }

    fn text_since(&self, from: usize) -> String {
        let buffer = self.output.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(buffer.get(from..).unwrap_or(&[])).into_owned()
    }

    fn all(&self) -> String {
        self.text_since(0)
    }

    /// Waits until the output since the last answer holds `wanted` and then a prompt;
    /// returns that answer (without the prompt) and moves past it.
    fn answer(&mut self, wanted: &str) -> Result<String> {
        let started = Instant::now();
        loop {
            let text = self.text_since(self.seen);
            if let Some(at) = text.find(wanted)
                && let Some(prompt) = text[at..].find(PROMPT)
            {
                let end = at + prompt;
                self.seen += end + PROMPT.len();
                return Ok(text[..end].to_owned());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("QEMU ended ({status}) before {wanted:?}");
            }
            if started.elapsed() > ANSWER_TIMEOUT {
                bail!("no {wanted:?} and prompt within {} s; got {text:?}", ANSWER_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.stdin.write_all(bytes).context("typing into QEMU")?;
        self.stdin.flush().context("typing into QEMU")
    }

    /// Types `line` and Enter; returns the answer once `wanted` and the next prompt came.
    fn command(&mut self, line: &[u8], wanted: &str) -> Result<String> {
        self.type_bytes(line)?;
        self.type_bytes(b"\r")?;
        self.answer(wanted)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rights as the shell writes them (`read,write`).
fn rights_text(bits: u32) -> String {
    let names = [(1, "read"), (2, "write"), (4, "grant"), (8, "grant_reply"), (16, "execute")];
    let list: Vec<&str> = names.iter().filter(|(bit, _)| bits & bit != 0).map(|(_, name)| *name).collect();
    list.join(",")
}

/// Runs the session; `Ok` carries a summary for the report line.
pub fn run(kernel: &Path, initrd: &Path, accel: crate::qemu::Accel) -> Result<String> {
    let manifest = ::manifest::decode(&crate::manifest::compile()?).map_err(|e| anyhow::anyhow!("system.toml: {e}"))?;
    let boot = crate::qemu::Boot::Direct { kernel, initrd, cmdline: "quiet" };
    drive("shell", &boot, accel, |session| script(session, &manifest))
}

/// Boots `boot` and runs `script` on its shell session; on a failure, prints the serial log
/// under `qemu::NAME`. QEMU stops when the session is dropped.
fn drive(name: &str, boot: &crate::qemu::Boot, accel: crate::qemu::Accel, script: impl FnOnce(&mut Session) -> Result<String>) -> Result<String> {
    let mut session = Session::start(crate::qemu::test_command(boot, accel))?;
    let result = script(&mut session);
    if let Err(error) = &result {
        println!("---- serial log of qemu::{name} ----\n{}\n---- end of serial log ----", session.all().trim_end());
        println!("qemu::{name}: {error:#}");
    }
    result
}

/// [`drive`] with the system of `tests/manifests/FILE.toml`.
fn drive_manifest(name: &str, file: &str, kernel: &Path, accel: crate::qemu::Accel, script: impl FnOnce(&mut Session) -> Result<String>) -> Result<String> {
    let path = crate::build::workspace_root().join(format!("tests/manifests/{file}.toml"));
    let initrd = crate::build::initrd_for(&path, file)?;
    drive(name, &crate::qemu::Boot::Direct { kernel, initrd: &initrd, cmdline: "quiet" }, accel, script)
}

/// `qemu::shell_control`: the shell of `tests/manifests/shell-control.toml`, whose
/// supervisor cap has control: `restart` gives the program a new incarnation (counted in
/// `ps`), `stop` ends it for good, whatever its `on_crash`.
pub fn run_control(kernel: &Path, accel: crate::qemu::Accel) -> Result<String> {
    drive_manifest("shell_control", "shell-control", kernel, accel, control_script)
}

/// `qemu::security_log`: `tests/manifests/security-log.toml` boots crash-loop, which faults
/// at every start, beside the shell (status-only supervisor cap). While crash-loop floods
/// the log with faults and restarts, the shell still answers; once the ring is full, `log`
/// shows its 64 records, says which were overwritten and counts them; and crash-loop is
/// still being restarted (recording never blocks it). (A refusal recorded under the
/// shell's name is `qemu::shell`'s check: here the flood would overwrite it at a speed
/// that depends on the host.)
pub fn run_log(kernel: &Path, accel: crate::qemu::Accel) -> Result<String> {
    drive_manifest("security_log", "security-log", kernel, accel, log_script)
}

/// `qemu::kernel_denials`: boots tests/manifests/kernel-denials.toml and reads the security
/// log through the shell until the kernel's records of denier's refused syscalls and budget
/// overruns are there, under its name.
pub fn run_denials(kernel: &Path, accel: crate::qemu::Accel) -> Result<String> {
    drive_manifest("kernel_denials", "kernel-denials", kernel, accel, denials_script)
}

fn denials_script(session: &mut Session) -> Result<String> {
    session.answer("Ctrl-A X leaves QEMU")?;
    let wanted = [
        "denier: refused: Some(EmptySlot), Some(WrongObjectType); now spinning past my budget",
        "denier: refused syscall Signal: slot holds no capability",
        "denier: refused syscall NbRecv: capability names the wrong kind of object",
        "denier: budget overrun: held until its next period",
    ];
    let started = Instant::now();
    loop {
        session.command(b"log", "recorded since boot")?;
        let all = session.all();
        let missing: Vec<&str> = wanted.iter().copied().filter(|line| !all.contains(line)).collect();
        if missing.is_empty() {
            break;
        }
        if started.elapsed() > ANSWER_TIMEOUT {
            bail!("the security log never showed {missing:?}");
        }
    }
    // The shell still answers while denier spins at a higher priority (its budget holds it).
    session.command(b"ps", "programs, as the manifest lists them")?;
    // Its `caps` audits every slot of denier's space, most of them empty: answers, not
    // denials, so none of them is in the log.
    session.command(b"caps denier", "caps denier: ")?;
    let log = session.command(b"log", "recorded since boot")?;
    if log.contains("shell: refused syscall") {
        bail!("the shell's slot queries were logged as denials: {log:?}");
    }
    Ok("denier's refused Signal and NbRecv and its budget overruns are in the log under its name, and the shell's own slot queries are not".into())
}

/// The number before `word` in `text` (`12 overwritten` -> 12).
fn number_before(text: &str, word: &str) -> Option<u64> {
    let before = text.split(word).next()?;
    before.split_whitespace().last()?.parse().ok()
}

fn log_script(session: &mut Session) -> Result<String> {
    session.answer("Ctrl-A X leaves QEMU")?;
    // Let crash-loop overflow the ring: each crash is a fault and a restart record.
    let started = Instant::now();
    let log = loop {
        let log = session.command(b"log", "overwritten (init keeps the last 64)")?;
        let summary = log.lines().find(|l| l.starts_with("log: ") && l.contains("recorded since boot")).unwrap_or_default().to_owned();
        if number_before(&summary, "overwritten").is_some_and(|n| n > 0) {
            break log;
        }
        if started.elapsed() > ANSWER_TIMEOUT {
            bail!("the log never overflowed: {summary:?}");
        }
    };
    let summary = log.lines().find(|l| l.starts_with("log: ") && l.contains("recorded since boot")).unwrap_or_default();
    let (shown, dropped) = (number_before(summary, "records shown"), number_before(summary, "overwritten"));
    let recorded = number_before(summary, "recorded since boot").unwrap_or(0);
    // A full ring: what it holds and what it overwrote add up to everything recorded.
    if recorded != dropped.unwrap_or(0) + 64 {
        bail!("log: {recorded} recorded, but 64 held and {dropped:?} overwritten: {summary:?}");
    }
    if shown.is_none_or(|n| n == 0 || n > 64) {
        bail!("log: shows {shown:?} records: {summary:?}");
    }
    // Over the session's `log` answers (a reader that a flood outruns shows what it could;
    // init's own lines are worded otherwise, so these are the log's).
    let all = session.all();
    for line in ["crash-loop: fault: vector 14, address 0x600000000bad", "crash-loop: restarted by init after 80 ms"] {
        if !all.contains(line) {
            bail!("log: no {line:?}: {log:?}");
        }
    }
    if !all.contains("init: crash-loop crashed; restarting in 80 ms") {
        bail!("crash-loop is not being restarted");
    }
    let ps = session.command(b"ps", "programs, as the manifest lists them")?;
    let restarts: u64 = ps_row(&ps, "crash-loop").last().and_then(|r| r.parse().ok()).unwrap_or(0);
    if restarts < 32 {
        bail!("crash-loop restarted only {restarts} times: {ps:?}");
    }
    Ok(format!("{} records overwritten, crash-loop restarted {restarts} times, the shell answered throughout", dropped.unwrap_or(0)))
}

/// The `ps` row of `name`, split into words.
fn ps_row(ps: &str, name: &str) -> Vec<String> {
    ps.lines().find(|line| line.split_whitespace().next() == Some(name)).map(|line| line.split_whitespace().map(str::to_owned).collect()).unwrap_or_default()
}

fn control_script(session: &mut Session) -> Result<String> {
    session.answer("Ctrl-A X leaves QEMU")?;
    let ps = session.command(b"ps", "programs, as the manifest lists them")?;
    let before = ps_row(&ps, "echo-server");
    if before.get(1).map(String::as_str) != Some("blocked") || before.last().map(String::as_str) != Some("0") {
        bail!("echo-server before the restart: {before:?}");
    }
    session.command(b"restart echo-server", "restart: echo-server: done")?;
    // The restart happens when init hears of the kill; a later `ps` shows it.
    let started = Instant::now();
    loop {
        let ps = session.command(b"ps", "programs, as the manifest lists them")?;
        let row = ps_row(&ps, "echo-server");
        if row.get(1).map(String::as_str) == Some("blocked") && row.last().map(String::as_str) == Some("1") {
            break;
        }
        if started.elapsed() > ANSWER_TIMEOUT {
            bail!("echo-server after the restart: {row:?}");
        }
    }
    session.command(b"stop echo-server", "stop: echo-server: done")?;
    let started = Instant::now();
    loop {
        let ps = session.command(b"ps", "programs, as the manifest lists them")?;
        if ps_row(&ps, "echo-server").get(1).map(String::as_str) == Some("ended") {
            break;
        }
        if started.elapsed() > ANSWER_TIMEOUT {
            bail!("echo-server still runs after stop: {ps:?}");
        }
    }
    let all = session.all();
    for line in ["init: echo-server restarting, as a supervisor asked", "init: echo-server stopped, as a supervisor asked"] {
        if !all.contains(line) {
            bail!("init did not log {line:?}");
        }
    }
    if all.contains("KERNEL EXCEPTION") || all.contains("FATAL") || all.contains("crashed, fatal") {
        bail!("a restart or stop was taken for a crash");
    }
    Ok("restart (restarts 0 -> 1), stop (ended, not restarted)".into())
}

fn script(session: &mut Session, manifest: &::manifest::CompiledManifest) -> Result<String> {
    let boot = session.answer("Ctrl-A X leaves QEMU")?;
    if !boot.contains("init: all") {
        bail!("the prompt came before init had started everything: {boot:?}");
    }
    let mut checked = Vec::new();

    let help = session.command(b"help", "restart PROGRAM")?;
    for command in ["ps", "caps PROGRAM", "mem", "net", "models", "embed TEXT", "classify", "log", "policy", "stop PROGRAM"] {
        if !help.contains(&format!("  {command} ")) {
            bail!("help does not list {command}: {help:?}");
        }
    }
    checked.push("help");

    // ps: exactly the manifest's programs, in its order, each with its priority and budget.
    let ps = session.command(b"ps", "programs, as the manifest lists them")?;
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip_while(|line| !line.starts_with("PROGRAM"))
        .skip(1)
        .take_while(|line| !line.starts_with("ps: "))
        .map(|line| line.split_whitespace().collect())
        .collect();
    let names: Vec<&str> = rows.iter().filter_map(|row| row.first().copied()).collect();
    let wanted: Vec<&str> = manifest.programs.iter().map(|p| p.name.as_str()).collect();
    if names != wanted {
        bail!("ps lists {names:?}, the manifest {wanted:?}: {ps:?}");
    }
    for (row, program) in rows.iter().zip(&manifest.programs) {
        let budget = format!("{}/{}", program.budget_us, program.period_us);
        if row.get(2) != Some(&program.priority.to_string().as_str()) || row.get(3) != Some(&budget.as_str()) {
            bail!("ps row {row:?} does not show priority {} and budget {budget}", program.priority);
        }
    }
    let state = |name: &str| rows.iter().find(|row| row.first() == Some(&name)).and_then(|row| row.get(1).copied());
    if state("hello") != Some("ended") || state("shell") != Some("running") || state("memory") != Some("blocked") {
        bail!("ps states: hello {:?} (want ended), shell {:?} (running), memory {:?} (blocked)", state("hello"), state("shell"), state("memory"));
    }
    checked.push("ps");

    // caps: each running program's entry, slot by slot, held exactly so.
    for name in ["memory", "echo-server", "shell"] {
        let Some(program) = manifest.program(name) else { bail!("no {name} in the manifest") };
        let answer = session.command(format!("caps {name}").as_bytes(), &format!("caps {name}: "))?;
        let count = program.caps.len() + usize::from(program.audit);
        let verdict = format!("caps {name}: {count} caps, exactly as the manifest says");
        if !answer.contains(&verdict) {
            bail!("caps {name}: want {verdict:?}: {answer:?}");
        }
        for grant in &program.caps {
            let object = manifest.object_name(grant.object).to_string();
            let line = format!("slot {:>3}  {object}: {}", grant.slot, rights_text(grant.rights));
            if !answer.lines().any(|l| l.contains(&line) && l.ends_with("= held")) {
                bail!("caps {name}: no line {line:?} ... = held: {answer:?}");
            }
        }
    }
    checked.push("caps");

    let mem = session.command(b"mem", "mem: free frames")?;
    for program in &manifest.programs {
        for grant in program.caps.iter().filter(|g| manifest.memory_server.is_some_and(|e| g.object == ::manifest::ObjectRef::Endpoint(e))) {
            if let Some(client) = memory_api::ClientBadge::decode(grant.badge) {
                let line = format!("client {:>3}, quota {} pages", client.id(), client.quota_pages());
                if !mem.lines().any(|l| l.contains(&program.name) && l.contains(&line)) {
                    bail!("mem: no {line:?} for {}: {mem:?}", program.name);
                }
            }
        }
    }
    // The kernel's frame count: plausible for the guest's 512 MiB, and not more free than
    // managed.
    let frames = mem.lines().find_map(|line| line.strip_prefix("mem: free frames: ")).unwrap_or_default();
    let numbers: Vec<u64> = frames.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    match numbers.as_slice() {
        [free, managed, ..] if free <= managed && *managed > 100_000 && *managed < 131_072 && *free > 0 => {}
        _ => bail!("mem: free frames line {frames:?}"),
    }
    checked.push("mem");

    session.command(b"net", "net: no network server in this boot")?;
    // The AI server of system.toml: its digits model serves, there is no text model.
    let models = session.command(b"models", "models: 1 in the manifest")?;
    if !models.lines().any(|line| line.contains("digits") && line.contains("digits-mlp") && line.contains("ready")) {
        bail!("models does not show the digits model ready: {models:?}");
    }
    session.command(b"classify", "classify: digits says the sample 8x8 zero is a 0")?;
    session.command(b"embed hello", "embed: no text model serves in this boot")?;
    session.command(b"embed", "embed: what text?")?;
    checked.push("net/models/classify/embed");

    // The policy as init holds it: every key of system.toml, in its section, in the state
    // the compiled manifest gives it.
    let policy = session.command(b"policy", "allowed-unenforced (init's boot log says why")?;
    for key in ::manifest::Key::ALL {
        let state = manifest.policy.state(key).label();
        let found = policy.lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words == [format!("[security.{}]", key.section()).as_str(), key.name(), state]
        });
        if !found {
            bail!("policy: no line \"[security.{}] {} {state}\": {policy:?}", key.section(), key.name());
        }
    }
    checked.push("policy");

    // Authority: the shell's supervisor cap is status-only; init refuses, and the program
    // keeps running.
    session.command(b"restart memory", "restart: refused by init: this shell's supervisor cap is status-only")?;
    session.command(b"stop echo-server", "stop: refused by init")?;
    // Both refusals are in the security log, as the shell's (the one status holder).
    let log = session.command(b"log", "overwritten (init keeps the last 64)")?;
    for target in ["memory", "echo-server"] {
        let line = format!("shell: denied: asked init to restart or stop {target} with a status-only supervisor cap");
        if !log.contains(&line) {
            bail!("log: no {line:?}: {log:?}");
        }
    }
    checked.push("log");
    let ps = session.command(b"ps", "programs, as the manifest lists them")?;
    if ps.lines().any(|l| l.starts_with("memory ") && l.split_whitespace().last().is_none_or(|r| r != "0")) {
        bail!("memory restarted after a refused restart: {ps:?}");
    }
    checked.push("restart/stop refused");

    session.command(b"frobnicate", "unknown command \"frobnicate\"; type help for the list")?;
    checked.push("unknown command");

    // Robustness: a long line, control characters, invalid UTF-8, unknown escapes.
    let long = vec![b'x'; 2000];
    session.command(&long, "line too long: kept its first 160 characters")?;
    session.command(b"\x01\x02\x00\x07he\x1b[1;5Hlx\x7fp\x1b[99999999Z", "restart PROGRAM")?;
    session.command(b"\xff\xfe\xc3(", "unknown command \"\u{fffd}\u{fffd}\u{fffd}(\"")?;
    // Editing: left arrow and insert ("mm", Left, "e" -> "mem"), history (Up runs it again).
    session.command(b"mm\x1b[De\x1b[C", "mem: free frames")?;
    session.command(b"\x1b[A", "mem: free frames")?;
    session.command(b"ps", "programs, as the manifest lists them")?;
    checked.push("long line, control characters, invalid UTF-8, editing, history");

    let all = session.all();
    for mark in ["KERNEL EXCEPTION", "FATAL", "init: shell faulted", "init: shell crashed"] {
        if all.contains(mark) {
            bail!("the log shows {mark:?}");
        }
    }
    Ok(checked.join(", "))
}
