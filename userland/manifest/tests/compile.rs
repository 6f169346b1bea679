//! The checker: one table of manifests, each with the exact message it must be refused with
//! (or `OK`), run through one `check` helper; then system.toml itself, compiled and round-tripped.

mod common;

use manifest::{
    CONSOLE_SLOT, CompiledManifest, FIRST_CAP_SLOT, ManifestError, ObjectRef, RestartPolicy, decode,
};

/// The checker, with [`common::POLICY`] appended to a source that has no policy of its own.
fn compile(source: &str, known: &[&str]) -> Result<CompiledManifest, ManifestError> {
    manifest::compile(&common::with_policy(source), known)
}

/// The programs that "exist" for these tests (xtask lists `userland/*` instead).
const KNOWN: &[&str] = &["a", "b", "c", "init"];

/// init's authority in every case unless the case brings its own `[init]`.
const INIT: &str = r#"
[init]
console = ["write"]
memory_quota = 1000
cpus = 1
irqs = [4, 5]
io_ports = [[0x60, 0x64], [0x70, 0x71]]
"#;

/// A `[[programs]]` entry: defaults, with `fields` replacing or adding keys (a value of ""
/// removes the key).
fn program(name: &str, fields: &[(&str, &str)]) -> String {
    let mut entries: Vec<(String, String)> = [
        ("priority", "10"),
        ("budget_us", "100"),
        ("period_us", "1000"),
        ("memory_quota", "100"),
        ("on_crash", "\"fatal\""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (key, value) in fields {
        entries.retain(|(k, _)| k != key);
        if !value.is_empty() {
            entries.push((key.to_string(), value.to_string()));
        }
    }
    let mut out = format!("\n[[programs]]\nname = \"{name}\"\n");
    for (k, v) in entries {
        out.push_str(&format!("{k} = {v}\n"));
    }
    out
}

/// Compile `INIT` + `body` and compare with `expected`: `OK` or the exact error message.
/// Returns the mismatch, if any, so that one run reports every failing case.
fn check(label: &str, body: &str, expected: &str) -> Option<String> {
    let source = if body.contains("[init]") {
        body.to_string()
    } else {
        format!("{INIT}{body}")
    };
    let got = match compile(&source, KNOWN) {
        Ok(manifest) => {
            // Whatever compiles must survive the trip through the blob unchanged.
            assert_eq!(
                decode(&manifest.encode()).as_ref(),
                Ok(&manifest),
                "{label}: round trip"
            );
            "OK".to_string()
        }
        Err(e) => e.to_string(),
    };
    (got != expected)
        .then(|| format!("case {label}:\n  expected: {expected:?}\n       got: {got:?}"))
}

#[test]
fn checker_messages() {
    let ep = "[endpoints.e]\n";
    let server = program(
        "b",
        &[("caps", r#"[{ endpoint = "e", rights = ["read"] }]"#)],
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("minimal", program("a", &[]), "OK"),
        ("no programs", String::new(), "OK"),
        (
            "client and server",
            format!(
                "{ep}{server}{}",
                program(
                    "a",
                    &[(
                        "caps",
                        r#"[{ endpoint = "e", rights = ["write", "grant"], badge = 7 }]"#
                    )]
                )
            ),
            "OK",
        ),
        (
            "syntax",
            "[[programs]\n".into(),
            "TOML parse error at line 8, column 12\n  |\n8 | [[programs]\n  |            ^\nunclosed array table, expected `]`",
        ),
        (
            "unknown field",
            program("a", &[("prio", "3")]),
            "TOML parse error at line 16, column 1\n   |\n16 | prio = 3\n   | ^^^^\nunknown field `prio`, expected one of `name`, `program`, `priority`, `budget_us`, `period_us`, `memory_quota`, `on_crash`, `max_backoff_ms`, `audit`, `sandbox`, `console`, `caps`, `heap`, `supervisor`",
        ),
        (
            "unknown program",
            program("x", &[]),
            "unknown program \"x\": no program crate in userland/x/ (it needs userland/x/Cargo.toml and src/main.rs)",
        ),
        (
            "init listed",
            program("init", &[]),
            "program \"init\" is the first process, started by the kernel; it cannot be in [[programs]]",
        ),
        (
            "duplicate program",
            format!("{}{}", program("a", &[]), program("a", &[])),
            "program \"a\" is listed twice",
        ),
        (
            "priority too high",
            program("a", &[("priority", "31")]),
            "program \"a\": priority 31 is out of range 1..=30 (0 is the idle thread's, 31 is init's)",
        ),
        (
            "priority zero",
            program("a", &[("priority", "0")]),
            "program \"a\": priority 0 is out of range 1..=30 (0 is the idle thread's, 31 is init's)",
        ),
        (
            "priority negative",
            program("a", &[("priority", "-1")]),
            "program \"a\": priority -1 is out of range 1..=30 (0 is the idle thread's, 31 is init's)",
        ),
        (
            "zero budget",
            program("a", &[("budget_us", "0")]),
            "program \"a\": budget_us is 0; it would never run",
        ),
        (
            "budget over period",
            program("a", &[("budget_us", "2000")]),
            "program \"a\": budget_us 2000 exceeds period_us 1000",
        ),
        (
            "period too long",
            program("a", &[("period_us", "2_000_000")]),
            "program \"a\": period_us 2000000 exceeds the longest period, 1000000",
        ),
        (
            "restart without back-off",
            program("a", &[("on_crash", "\"restart\"")]),
            "program \"a\": on_crash = \"restart\" needs max_backoff_ms",
        ),
        (
            "back-off on a fatal program",
            program("a", &[("max_backoff_ms", "100")]),
            "program \"a\": max_backoff_ms is set, but on_crash is \"fatal\"",
        ),
        (
            "back-off too short",
            program("a", &[("on_crash", "\"restart\""), ("max_backoff_ms", "5")]),
            "program \"a\": max_backoff_ms 5 is below the first back-off, 10 ms",
        ),
        (
            "unknown crash policy",
            program("a", &[("on_crash", "\"ignore\"")]),
            "TOML parse error at line 15, column 12\n   |\n15 | on_crash = \"ignore\"\n   |            ^^^^^^^^\nunknown variant `ignore`, expected `fatal` or `restart`",
        ),
        (
            "unknown right",
            program("a", &[("console", r#"["print"]"#)]),
            "program \"a\": unknown right \"print\" (rights are read, write, grant, grant_reply, execute)",
        ),
        (
            "console right init lacks",
            program("a", &[("console", r#"["read", "write"]"#)]),
            "program \"a\" asks for read, write on console, but init holds only write",
        ),
        (
            "console right that means nothing",
            program("a", &[("console", r#"["execute"]"#)]),
            "program \"a\" asks for execute on console, which takes only read, write",
        ),
        (
            "console init does not hold",
            format!(
                "[init]\nmemory_quota = 1000\ncpus = 1\n{}",
                program("a", &[("console", r#"["write"]"#)])
            ),
            "program \"a\" asks for write on console, but init holds only none",
        ),
        (
            "empty rights",
            format!(
                "{ep}{}",
                program("b", &[("caps", r#"[{ endpoint = "e", rights = [] }]"#)])
            ),
            "program \"b\" asks for endpoint \"e\" with no rights",
        ),
        (
            "execute on an endpoint",
            format!(
                "{ep}{}",
                program(
                    "b",
                    &[(
                        "caps",
                        r#"[{ endpoint = "e", rights = ["read", "execute"] }]"#
                    )]
                )
            ),
            "program \"b\" asks for read, execute on endpoint \"e\", which takes only read, write, grant, grant_reply",
        ),
        (
            "grant on a notification",
            format!(
                "[notifications.n]\n{}",
                program(
                    "b",
                    &[(
                        "caps",
                        r#"[{ notification = "n", rights = ["read", "grant"] }]"#
                    )]
                )
            ),
            "program \"b\" asks for read, grant on notification \"n\", which takes only read, write",
        ),
        (
            "unknown endpoint",
            program(
                "a",
                &[("caps", r#"[{ endpoint = "y", rights = ["write"] }]"#)],
            ),
            "unknown endpoint \"y\" referenced by program \"a\"",
        ),
        (
            "unknown notification",
            program(
                "a",
                &[("caps", r#"[{ notification = "y", rights = ["write"] }]"#)],
            ),
            "unknown notification \"y\" referenced by program \"a\"",
        ),
        (
            "address space other than its own",
            program("a", &[("caps", r#"[{ address_space = "b", rights = ["write"] }]"#)]),
            "unknown address space \"b\" referenced by program \"a\"",
        ),
        (
            "own address space with read",
            program("a", &[("caps", r#"[{ address_space = "own", rights = ["read", "write"] }]"#)]),
            "program \"a\" asks for read, write on its own address space, which takes only write",
        ),
        (
            "cap names nothing",
            program("a", &[("caps", r#"[{ rights = ["write"] }]"#)]),
            "program \"a\", caps[0]: names no object (give one of endpoint, notification, irq, io_ports, address_space, file)",
        ),
        (
            "cap names two objects",
            format!(
                "{ep}{}",
                program(
                    "a",
                    &[(
                        "caps",
                        r#"[{ endpoint = "e", irq = 4, rights = ["read"] }]"#
                    )]
                )
            ),
            "program \"a\", caps[0]: names more than one object (give one of endpoint, notification, irq, io_ports, address_space, file)",
        ),
        (
            "irq init does not hold",
            program("a", &[("caps", r#"[{ irq = 9, rights = ["read"] }]"#)]),
            "program \"a\" asks for irq 9, which init does not hold (init holds irqs [4, 5])",
        ),
        (
            "io ports init does not hold",
            program(
                "a",
                &[(
                    "caps",
                    r#"[{ io_ports = [0x60, 0x70], rights = ["read"] }]"#,
                )],
            ),
            "program \"a\" asks for io ports 0x60-0x70, which init does not hold (init holds io ports [0x60-0x64, 0x70-0x71])",
        ),
        (
            "backwards io ports",
            program(
                "a",
                &[(
                    "caps",
                    r#"[{ io_ports = [0x64, 0x60], rights = ["read"] }]"#,
                )],
            ),
            "program \"a\": io port range [0x64, 0x60] is backwards (write [first, last])",
        ),
        (
            "backwards io ports in init",
            format!(
                "[init]\nmemory_quota = 1\ncpus = 1\nio_ports = [[2, 1]]\n{}",
                program("a", &[])
            ),
            "[init]: io port range [0x2, 0x1] is backwards (write [first, last])",
        ),
        (
            "execute on io ports",
            program(
                "a",
                &[(
                    "caps",
                    r#"[{ io_ports = [0x60, 0x60], rights = ["execute"] }]"#,
                )],
            ),
            "program \"a\" asks for execute on io ports 0x60-0x60, which takes only read, write",
        ),
        (
            "badge on an irq",
            program(
                "a",
                &[("caps", r#"[{ irq = 4, rights = ["read"], badge = 1 }]"#)],
            ),
            "program \"a\" puts a badge on irq 4; only endpoints and notifications take badges",
        ),
        (
            "badge zero",
            format!(
                "{ep}{}",
                program(
                    "b",
                    &[(
                        "caps",
                        r#"[{ endpoint = "e", rights = ["read"], badge = 0 }]"#
                    )]
                )
            ),
            "program \"b\" puts badge 0 on endpoint \"e\"; 0 means unbadged, so leave the badge out",
        ),
        (
            "same cap twice",
            format!(
                "{ep}{}",
                program(
                    "b",
                    &[(
                        "caps",
                        r#"[{ endpoint = "e", rights = ["read"] }, { endpoint = "e", rights = ["write"] }]"#
                    )]
                )
            ),
            "program \"b\" lists endpoint \"e\" twice with the same badge",
        ),
        (
            "too many caps",
            program(
                "a",
                &[(
                    "caps",
                    &format!(
                        "[{}]",
                        vec![r#"{ irq = 4, rights = ["read"] }"#; 63].join(", ")
                    ),
                )],
            ),
            "program \"a\" needs 65 slots, but a process space has only 64",
        ),
        (
            "shared badge",
            format!(
                "{ep}{server}{}{}",
                program(
                    "a",
                    &[(
                        "caps",
                        r#"[{ endpoint = "e", rights = ["write"], badge = 7 }]"#
                    )]
                ),
                program(
                    "c",
                    &[(
                        "caps",
                        r#"[{ endpoint = "e", rights = ["write"], badge = 7 }]"#
                    )]
                )
            ),
            "badge 7 on endpoint \"e\" is given to both \"a\" and \"c\"; the receiver could not tell them apart",
        ),
        (
            "shared irq",
            format!(
                "{}{}",
                program("a", &[("caps", r#"[{ irq = 4, rights = ["read"] }]"#)]),
                program(
                    "b",
                    &[("caps", r#"[{ irq = 4, rights = ["read", "write"] }]"#)]
                )
            ),
            "irq 4 is given to both \"a\" and \"b\"; a device has one driver",
        ),
        (
            "overlapping io ports",
            format!(
                "{}{}",
                program(
                    "a",
                    &[(
                        "caps",
                        r#"[{ io_ports = [0x60, 0x62], rights = ["read"] }]"#
                    )]
                ),
                program(
                    "b",
                    &[(
                        "caps",
                        r#"[{ io_ports = [0x62, 0x64], rights = ["read"] }]"#
                    )]
                )
            ),
            "io ports 0x60-0x62 is given to both \"a\" and \"b\"; a device has one driver",
        ),
        (
            "unused endpoint",
            format!("{ep}{}", program("a", &[])),
            "endpoint \"e\" is declared but no program holds it",
        ),
        (
            "no receiver",
            format!(
                "{ep}{}",
                program(
                    "a",
                    &[("caps", r#"[{ endpoint = "e", rights = ["write"] }]"#)]
                )
            ),
            "endpoint \"e\" has holders but none may receive on it (no program holds it with read)",
        ),
        (
            "two auditors",
            format!(
                "{}{}",
                program("a", &[("audit", "true")]),
                program("b", &[("audit", "true")])
            ),
            "programs \"a\" and \"b\" both ask for audit; one program (the test runner or the shell) may hold it",
        ),
        (
            "cpu overcommitted",
            format!(
                "{}{}",
                program("a", &[("budget_us", "2000"), ("period_us", "3000")]),
                program("b", &[("budget_us", "1000"), ("period_us", "2000")])
            ),
            "the programs' CPU budgets add up to 1.166667 CPUs, but init holds only 1",
        ),
        (
            "budget under what the kernel enforces",
            program("a", &[("budget_us", "50"), ("period_us", "1000")]),
            "program \"a\": budget_us 50 is under the 100 µs the kernel can enforce",
        ),
        (
            "heap",
            format!(
                "memory_server = \"mem\"\n{INIT}[endpoints.mem]\n{}{}",
                program("b", &[("caps", r#"[{ endpoint = "mem", rights = ["read"] }]"#)]),
                program("a", &[("heap", "{ client = 3, quota_pages = 16 }")])
            ),
            "OK",
        ),
        (
            "heap without a memory server",
            program("a", &[("heap", "{ client = 3, quota_pages = 16 }")]),
            "program \"a\" has a heap, but the manifest names no memory_server endpoint",
        ),
        (
            "heap client 0",
            format!(
                "memory_server = \"mem\"\n{INIT}[endpoints.mem]\n{}{}",
                program("b", &[("caps", r#"[{ endpoint = "mem", rights = ["read"] }]"#)]),
                program("a", &[("heap", "{ client = 0, quota_pages = 16 }")])
            ),
            "program \"a\": heap client 0 is not a client number (1..=65535)",
        ),
        (
            "one client, two programs",
            format!(
                "memory_server = \"mem\"\n{INIT}[endpoints.mem]\n{}{}",
                program("b", &[("caps", r#"[{ endpoint = "mem", rights = ["read", "write", "grant_reply"], badge = 0x3_0000_0001 }]"#)]),
                program("a", &[("heap", "{ client = 3, quota_pages = 16 }")])
            ),
            "memory client 3 is given to both \"b\" and \"a\"; the memory server could not tell their quotas apart",
        ),
        (
            "memory server not declared",
            format!("memory_server = \"nope\"\n{INIT}"),
            "unknown endpoint \"nope\" referenced by program \"memory_server\"",
        ),
        (
            "memory overcommitted",
            format!(
                "{}{}",
                program("a", &[("memory_quota", "600")]),
                program("b", &[("memory_quota", "401")])
            ),
            "the programs' memory quotas add up to 1001 bytes, but init holds only 1000",
        ),
    ];
    let mismatches: Vec<String> = cases
        .iter()
        .filter_map(|(label, body, expected)| check(label, body, expected))
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn one_crate_runs_as_several_programs_each_with_its_own_caps() {
    let source = format!(
        "{INIT}[endpoints.e]\n{}{}{}",
        program("b", &[("caps", r#"[{ endpoint = "e", rights = ["read"] }]"#)]),
        program("client-1", &[("program", "\"a\""), ("caps", r#"[{ endpoint = "e", rights = ["write"], badge = 1 }]"#)]),
        program("client-2", &[("program", "\"a\""), ("caps", r#"[{ endpoint = "e", rights = ["write"], badge = 2 }]"#)]),
    );
    let manifest = compile(&source, KNOWN).expect("compiles");
    for (name, badge) in [("client-1", 1), ("client-2", 2)] {
        let client = manifest.program(name).expect("instance");
        assert_eq!(client.binary, "bin/a");
        assert_eq!(client.caps.iter().map(|c| c.badge).collect::<Vec<_>>(), [badge]);
    }
    assert_eq!(decode(&manifest.encode()).as_ref(), Ok(&manifest));
    // The crate must exist; the instance's own name need not be one.
    let unknown = source.replacen("program = \"a\"", "program = \"zz\"", 1);
    assert_eq!(compile(&unknown, KNOWN).map(drop).map_err(|e| e.to_string()), Err(ManifestError::UnknownProgram { program: "zz".into() }.to_string()));
    // Two entries may not share a name, whatever they run.
    let twice = source.replace("client-2", "client-1");
    assert!(matches!(compile(&twice, KNOWN), Err(ManifestError::DuplicateProgram { .. })));
}

#[test]
fn named_caps_are_recorded_with_their_slots_and_checked() {
    let caps = r#"[{ name = "inbox", endpoint = "e", rights = ["read"] }, { notification = "n", rights = ["read"] }, { name = "bell", notification = "n", rights = ["write"], badge = 3 }]"#;
    let source = format!("{INIT}[endpoints.e]\n[notifications.n]\n{}", program("a", &[("caps", caps)]));
    let manifest = compile(&source, KNOWN).expect("compiles");
    let a = manifest.program("a").expect("program a");
    let named: Vec<(&str, u32)> = a.cap_names.iter().map(|n| (n.name.as_str(), n.slot)).collect();
    assert_eq!(named, [("inbox", 2), ("bell", 4)]);
    assert_eq!(decode(&manifest.encode()).as_ref(), Ok(&manifest));
    for (bad, why) in [("Inbox", "is not a name"), ("9lives", "is not a name"), ("in-box", "is not a name"), ("bell", "two caps are named \"bell\"")] {
        let broken = source.replacen("name = \"inbox\"", &format!("name = \"{bad}\""), 1);
        let error = compile(&broken, KNOWN).map(drop).unwrap_err().to_string();
        assert!(error.contains(why), "{bad}: {error}");
    }
}

#[test]
fn a_heap_is_two_caps_at_the_reserved_slots() {
    let source = format!(
        "memory_server = \"mem\"\n{INIT}[endpoints.mem]\n{}{}",
        program("b", &[("caps", r#"[{ endpoint = "mem", rights = ["read"] }]"#)]),
        program("a", &[("console", "[\"write\"]"), ("heap", "{ client = 3, quota_pages = 16 }")])
    );
    let manifest = compile(&source, KNOWN).expect("compiles");
    let a = manifest.program("a").expect("program a");
    let slots: Vec<(u32, ObjectRef, u64)> = a.caps.iter().map(|c| (c.slot, c.object, c.badge)).collect();
    assert_eq!(
        slots,
        [
            (1, ObjectRef::Console, 0),
            (manifest::HEAP_MEMORY_SLOT, ObjectRef::Endpoint(0), 0x3_0000_0010),
            (manifest::HEAP_SPACE_SLOT, ObjectRef::OwnAddressSpace, 0),
        ]
    );
    assert_eq!(a.memory_clients(manifest.memory_server).collect::<Vec<_>>(), [3]);
    assert_eq!(a.audit_slot(), None);
    assert_eq!(decode(&manifest.encode()).as_ref(), Ok(&manifest));
}

#[test]
fn a_supervisor_cap_follows_the_caps_and_carries_its_level_in_the_badge() {
    let source = format!(
        "{INIT}[notifications.n]\n{}{}",
        program("a", &[("caps", r#"[{ notification = "n", rights = ["read"] }]"#), ("supervisor", "\"status\""), ("audit", "true")]),
        program("b", &[("supervisor", "\"control\"")])
    );
    let manifest = compile(&source, KNOWN).expect("compiles");
    let a = manifest.program("a").expect("program a");
    let rights = (abi::Rights::WRITE.union(abi::Rights::GRANT_REPLY)).bits();
    let supervisor: Vec<(u32, ObjectRef, u32, u64)> =
        a.caps.iter().filter(|c| c.object == ObjectRef::Supervisor).map(|c| (c.slot, c.object, c.rights, c.badge)).collect();
    assert_eq!(supervisor, [(3, ObjectRef::Supervisor, rights, init_api::STATUS_BADGE)]);
    assert_eq!(a.audit_slot().map(|s| s.index()), Some(4), "the audit cap comes after the supervisor cap");
    let b = manifest.program("b").expect("program b");
    assert_eq!(b.caps.iter().map(|c| (c.slot, c.badge)).collect::<Vec<_>>(), [(2, init_api::CONTROL_BADGE)]);
    assert_eq!(decode(&manifest.encode()).as_ref(), Ok(&manifest));
    let refused = format!("{INIT}{}", program("a", &[("supervisor", "\"root\"")]));
    assert_eq!(
        compile(&refused, KNOWN).map(|_| ()).map_err(|e| e.to_string()),
        Err("unknown supervisor level (status or control; report for the AI server) \"root\" referenced by program \"a\"".to_string())
    );
}

/// system.toml as it is (with the echo example, since userland/echo-server and
/// userland/echo-client exist).
fn system_toml() -> CompiledManifest {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../system.toml");
    let source = std::fs::read_to_string(path).expect("system.toml at the repository root");
    let known = ["memory", "hello", "echo-server", "echo-client", "shell", "init", "ai", "model-sandbox"];
    compile(&source, &known).unwrap_or_else(|e| panic!("system.toml: {e}"))
}

#[test]
fn system_toml_compiles_and_round_trips() {
    let manifest = system_toml();
    assert_eq!(decode(&manifest.encode()), Ok(manifest.clone()));
    let names: Vec<&str> = manifest.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["memory", "hello", "echo-server", "echo-client", "shell", "ai", "model-digits"]);
    assert_eq!(manifest.endpoints, ["ai", "echo", "memory", "model.digits"]);
    assert_eq!(manifest.memory_server, Some(2));
    let hello = manifest.program("hello").expect("hello");
    assert_eq!(hello.caps.len(), 1);
    assert_eq!(
        (hello.caps[0].slot, hello.caps[0].object),
        (CONSOLE_SLOT, ObjectRef::Console)
    );
    assert_eq!(hello.binary, "bin/hello");
}

#[test]
fn echo_example_compiles_and_round_trips() {
    let manifest = system_toml();
    let blob = manifest.encode();
    assert_eq!(decode(&blob), Ok(manifest.clone()));

    let names: Vec<&str> = manifest.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["memory", "hello", "echo-server", "echo-client", "shell", "ai", "model-digits"],
        "start order is manifest order, then the models' sandboxes"
    );
    assert_eq!(manifest.endpoints, ["ai", "echo", "memory", "model.digits"]);

    // The leak-test oracle: exactly these caps, slot by slot.
    let caps = |name: &str| -> Vec<(u32, ObjectRef, abi::Rights, u64)> {
        let program = manifest.program(name).expect("program in system.toml");
        program
            .caps
            .iter()
            .map(|c| (c.slot, c.object, c.rights(), c.badge))
            .collect()
    };
    use abi::Rights;
    let console = (CONSOLE_SLOT, ObjectRef::Console, Rights::WRITE, 0);
    assert_eq!(caps("hello"), [console]);
    assert_eq!(
        caps("memory"),
        [
            console,
            (FIRST_CAP_SLOT, ObjectRef::Endpoint(2), Rights::READ, 0)
        ]
    );
    let heap_memory = Rights::WRITE.union(Rights::GRANT_REPLY);
    let heap_space = (manifest::HEAP_SPACE_SLOT, ObjectRef::OwnAddressSpace, Rights::WRITE, 0);
    assert_eq!(
        caps("echo-server"),
        [
            console,
            (FIRST_CAP_SLOT, ObjectRef::Endpoint(1), Rights::READ, 0),
            (manifest::HEAP_MEMORY_SLOT, ObjectRef::Endpoint(2), heap_memory, 1 << 32 | 256),
            heap_space,
        ]
    );
    // A call needs only write; the client passes no caps and takes none back.
    let client = Rights::WRITE;
    assert_eq!(
        caps("echo-client"),
        [
            console,
            (FIRST_CAP_SLOT, ObjectRef::Endpoint(1), client, 7),
            (manifest::HEAP_MEMORY_SLOT, ObjectRef::Endpoint(2), heap_memory, 2 << 32 | 64),
            heap_space,
        ]
    );
    let server = manifest.program("echo-server").expect("echo-server");
    assert_eq!(
        server.on_crash,
        RestartPolicy::Restart {
            max_backoff_ms: 1000
        }
    );
    assert_eq!(server.binary, "bin/echo-server");
    // The shell: the console with read, its keyboard, status only, and the one audit cap.
    let both = Rights::READ.union(Rights::WRITE);
    assert_eq!(
        caps("shell"),
        [
            (CONSOLE_SLOT, ObjectRef::Console, both, 0),
            (FIRST_CAP_SLOT, ObjectRef::Notification(0), both, 0),
            (FIRST_CAP_SLOT + 1, ObjectRef::Endpoint(0), Rights::WRITE, 2),
            (FIRST_CAP_SLOT + 2, ObjectRef::Supervisor, heap_memory, init_api::STATUS_BADGE),
        ]
    );
    let auditors: Vec<&str> = manifest.programs.iter().filter(|p| p.audit).map(|p| p.name.as_str()).collect();
    assert_eq!(auditors, ["shell"]);
}

#[test]
fn boot_table_lists_every_process_and_cap() {
    let table = system_toml().table().to_string();
    let expected = "\
boot manifest: 7 processes, 4 endpoints, 1 notifications
init holds: console RW---, memory quota 16777216 bytes, 2 cpus, irqs [1 3 12], io ports [0x60-0x60 0x64-0x64 0x2f8-0x2ff]
PROCESS          PRI    BUDGET/PERIOD us MEMORY bytes  ON CRASH               AUDIT
memory            20          5000/10000      4194304  restart (<= 1000 ms)   no
    slot   1  -W---  console
    slot   2  R----  endpoint \"memory\"
hello             10          1000/10000        65536  fatal                  no
    slot   1  -W---  console
echo-server       20          2000/10000       262144  restart (<= 1000 ms)   no
    slot   1  -W---  console
    slot   2  R----  endpoint \"echo\"
    slot 126  -W-g-  endpoint \"memory\"  memory client 1, quota 256 pages
    slot 127  -W---  its own address space
echo-client       10          1000/10000        65536  fatal                  no
    slot   1  -W---  console
    slot   2  -W---  endpoint \"echo\"  badge 7
    slot 126  -W-g-  endpoint \"memory\"  memory client 2, quota 64 pages
    slot 127  -W---  its own address space
shell              1          2000/10000       262144  restart (<= 1000 ms)   yes
    slot   1  RW---  console
    slot   2  RW---  notification \"keyboard\"
    slot   3  -W---  endpoint \"ai\"  badge 2
    slot   4  -W-g-  supervisor (init)  status
    slot   5  R----  the authority audit
ai                12          2000/10000       262144  restart (<= 1000 ms)   no
    slot   1  -W---  console
    slot   2  R----  endpoint \"ai\"
    slot   3  R----  file \"etc/system.bin\"
    slot   4  -W-g-  supervisor (init)  report
    slot   5  R----  file \"models/digits-mlp.model\"
    slot   6  -WG--  endpoint \"model.digits\"
    slot 126  -W-g-  endpoint \"memory\"  memory client 3, quota 256 pages
    slot 127  -W---  its own address space
model-digits       8          1000/10000       131072  restart (<= 1000 ms)   no
    slot   2  R----  endpoint \"model.digits\"
    slot 126  -W-g-  endpoint \"memory\"  memory client 1000, quota 64 pages
    slot 127  -W---  its own address space
";
    assert_eq!(table, expected);
}
