//! The `[security.*]` policy: each malformed file's exact message with its line (table
//! `policy_messages`, then a property test over generated files), each key's state, the
//! refusal of keys this build cannot enforce and `--allow-unenforced`, and the sandbox rules
//! (`sandbox_policy`).

mod common;

use manifest::policy::{Key, KeyState, Report};
use manifest::{ManifestError, compile, compile_with, decode};
use proptest::prelude::*;

const KNOWN: &[&str] = &["a", "b", "c"];

/// Three lines, so the policy starts at line 5 (after the leading newline of `POLICY`).
const INIT: &str = "[init]\nmemory_quota = 10000\ncpus = 1\n";

/// `INIT` + `POLICY` with `edits` applied (each `(from, to)` replaces the first `from`).
fn policy_with(edits: &[(&str, &str)]) -> String {
    let mut policy = common::POLICY.to_string();
    for (from, to) in edits {
        assert!(policy.contains(from), "edit {from:?} does not apply");
        policy = policy.replacen(from, to, 1);
    }
    format!("{INIT}{policy}")
}

/// `OK` or the checker's message.
fn outcome(source: &str, allow: &[Key]) -> String {
    match compile_with(source, KNOWN, allow) {
        Ok(manifest) => {
            assert_eq!(decode(&manifest.encode()).as_ref(), Ok(&manifest), "round trip");
            "OK".into()
        }
        Err(error) => error.to_string(),
    }
}

#[test]
fn policy_messages() {
    let refused = "the policy asks for what this build cannot enforce:\n  line 6: [security.hardware] secure_boot = true: \
                   GRUB and the kernel are neither signed nor verified at boot; set it false, or build anyway with \
                   --allow-unenforced secure_boot";
    let cases: Vec<(&str, String, &str)> = vec![
        ("complete", policy_with(&[]), "OK"),
        (
            "no policy",
            INIT.into(),
            "line 4: no [security.*] policy: the manifest must give every section ([security.hardware], \
             [security.process], [security.network], [security.ai], [security.sandbox])",
        ),
        (
            "unknown section",
            policy_with(&[("[security.ai]", "[security.ai]\n[security.cloud]\nupload = true\n")]),
            "line 21: unknown section [security.cloud] (the sections are hardware, process, network, ai, sandbox)",
        ),
        (
            "unknown key",
            policy_with(&[("aslr = true", "aslr = true\nkaslr = true")]),
            "line 12: [security.process] has no key `kaslr` (its keys are aslr, dep, stack_protector)",
        ),
        (
            "string for a boolean",
            policy_with(&[("dep = true", "dep = \"yes\"")]),
            "line 12: [security.process] dep must be true or false, not a string",
        ),
        (
            "integer for a boolean",
            policy_with(&[("secure_dns = false", "secure_dns = 0")]),
            "line 18: [security.network] secure_dns must be true or false, not an integer",
        ),
        (
            "key left out",
            policy_with(&[("tpm_enabled = false\n", "")]),
            "line 5: [security.hardware] leaves out `tpm_enabled` (every key must be given: secure_boot, \
             tpm_enabled, memory_encryption)",
        ),
        (
            "section left out",
            policy_with(&[("[security.network]\nfirewall = false\nencrypted_protocols_only = false\nsecure_dns = false\n", "")]),
            "line 5: no [security.network] section (the policy gives every section: hardware, process, network, ai, sandbox)",
        ),
        (
            "section given twice",
            format!("{}\n[security.process]\naslr = true\n", policy_with(&[])),
            "line 33: [security.process] is given twice (each section and each key may appear once)",
        ),
        (
            "key given twice",
            policy_with(&[("stack_protector = true", "stack_protector = true\nstack_protector = false")]),
            "line 14: key `stack_protector` is given twice (each section and each key may appear once)",
        ),
        (
            "section not a table",
            policy_with(&[("[security.ai]\n", "[security]\nai = 3\n[security.x]\n")]),
            "line 21: security.ai must be a section ([security.ai]), not an integer",
        ),
        (
            "sandbox: unknown key",
            policy_with(&[("network = false", "network = false\nfilesystem = false")]),
            "line 27: [security.sandbox] has no key `filesystem` (its keys are network, max_priority, \
             max_cpu_percent, max_memory_quota, max_heap_pages, allowed_services)",
        ),
        (
            "sandbox: key left out",
            policy_with(&[("max_heap_pages = 64\n", "")]),
            "line 25: [security.sandbox] leaves out `max_heap_pages` (every key must be given: network, max_priority, \
             max_cpu_percent, max_memory_quota, max_heap_pages, allowed_services)",
        ),
        (
            "sandbox: priority out of range",
            policy_with(&[("max_priority = 10", "max_priority = 31")]),
            "line 27: [security.sandbox] max_priority = 31 is out of range 1..=30",
        ),
        (
            "sandbox: percent out of range",
            policy_with(&[("max_cpu_percent = 20", "max_cpu_percent = 0")]),
            "line 28: [security.sandbox] max_cpu_percent = 0 is out of range 1..=100",
        ),
        (
            "sandbox: wrong type",
            policy_with(&[("max_memory_quota = 1000", "max_memory_quota = \"1 MiB\"")]),
            "line 29: [security.sandbox] max_memory_quota must be an integer, not a string",
        ),
        (
            "sandbox: services not a list",
            policy_with(&[("allowed_services = []", "allowed_services = \"memory\"")]),
            "line 31: [security.sandbox] allowed_services must be an array of endpoint names, not a string",
        ),
        (
            "sandbox: an undeclared service",
            policy_with(&[("allowed_services = []", "allowed_services = [\n  \"memory\",\n]")]),
            "line 32: [security.sandbox] allowed_services names endpoint \"memory\", which is not declared",
        ),
        (
            "secure inference needs no network",
            policy_with(&[("network = false", "network = true")]),
            "line 22: [security.ai] secure_inference = true, but [security.sandbox] network = true (line 26): \
             a model sandbox with a network cap is not secure inference",
        ),
        ("network allowed without secure inference", policy_with(&[("network = false", "network = true"), ("secure_inference = true", "secure_inference = false")]), "OK"),
        ("a key this build cannot enforce", policy_with(&[("secure_boot = false", "secure_boot = true")]), refused),
        ("enforced keys may be false", policy_with(&[("aslr = true", "aslr = false"), ("dep = true", "dep = false")]), "OK"),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(label, source, expected)| {
            let got = outcome(source, &[]);
            (got != *expected).then(|| format!("case {label}:\n  expected: {expected:?}\n       got: {got:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every key this build cannot enforce, set true, is refused by name, all in one message;
/// `--allow-unenforced` builds it as allowed-unenforced, and only the keys it names.
#[test]
fn unenforceable_keys_are_refused_or_allowed_by_name() {
    let missing = [
        Key::SecureBoot,
        Key::TpmEnabled,
        Key::MemoryEncryption,
        Key::Firewall,
        Key::EncryptedProtocolsOnly,
        Key::SecureDns,
        Key::ModelValidation,
        Key::DataEncryption,
    ];
    for key in Key::ALL {
        let is_missing = matches!(key.mechanism(), manifest::Mechanism::Missing { .. });
        assert_eq!(is_missing, missing.contains(&key), "{key}: mechanism");
    }
    let edits: Vec<(String, String)> =
        missing.iter().map(|k| (format!("{} = false", k.name()), format!("{} = true", k.name()))).collect();
    let edits: Vec<(&str, &str)> = edits.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let source = policy_with(&edits);
    match compile(&source, KNOWN) {
        Err(ManifestError::Refused { keys, states }) => {
            assert_eq!(keys.iter().map(|k| k.0).collect::<Vec<_>>(), missing);
            assert_eq!(keys.iter().map(|k| k.1).collect::<Vec<_>>(), [6, 7, 8, 16, 17, 18, 21, 23]);
            for key in Key::ALL {
                let want = if missing.contains(&key) { KeyState::Refused } else { KeyState::Enforced };
                assert_eq!(states[key.index()], want, "{key}");
            }
            let report = Report::new(&states).to_string();
            assert!(report.contains("[security.hardware] secure_boot"), "{report}");
            assert!(report.lines().any(|l| l.contains("firewall") && l.contains("refused") && l.contains("NOT ENFORCED")), "{report}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Allowing some but not all still refuses the rest, naming only those.
    let message = outcome(&source, &missing[..7]);
    assert!(message.contains("line 23: [security.ai] data_encryption = true"), "{message}");
    assert!(!message.contains("secure_boot"), "{message}");
    // Allowing all builds; the compiled policy says which are not enforced, and init's
    // summary prints one NOT ENFORCED line for each.
    let manifest = compile_with(&source, KNOWN, &missing).expect("allowed");
    assert_eq!(manifest.policy.unenforced().collect::<Vec<_>>(), missing);
    let summary = manifest.policy.summary(&manifest).to_string();
    assert!(summary.contains(
        "policy: secure_boot = true is NOT ENFORCED (allowed by --allow-unenforced secure_boot): \
         GRUB and the kernel are neither signed nor verified at boot"
    ), "{summary}");
    assert_eq!(summary.lines().filter(|l| l.contains("NOT ENFORCED")).count(), missing.len());
    assert_eq!(decode(&manifest.encode()).as_ref(), Ok(&manifest));
    // An allowed key that is false, or enforced, is simply what it is.
    let plain = compile_with(&policy_with(&[]), KNOWN, &[Key::SecureBoot, Key::Aslr]).expect("compiles");
    assert_eq!(plain.policy.state(Key::SecureBoot), KeyState::Off);
    assert_eq!(plain.policy.state(Key::Aslr), KeyState::Enforced);
}

/// A `[[programs]]` entry with `extra` lines.
fn program(name: &str, extra: &str) -> String {
    format!(
        "\n[[programs]]\nname = \"{name}\"\npriority = 5\nbudget_us = 100\nperiod_us = 1000\nmemory_quota = 100\n\
         on_crash = \"fatal\"\n{extra}\n"
    )
}

/// The sandbox rules, one breach at a time: the network cap (the case the policy names),
/// then every other rule, each with its exact message.
#[test]
fn sandbox_policy() {
    let objects = "memory_server = \"mem\"\n[endpoints.mem]\n[endpoints.net]\nnetwork = true\n[endpoints.other]\n\
                   [notifications.n]\n";
    let servers = format!(
        "{}{}",
        program("b", "caps = [{ endpoint = \"mem\", rights = [\"read\"] }, { endpoint = \"net\", rights = [\"read\"] }, { endpoint = \"other\", rights = [\"read\"] }, { notification = \"n\", rights = [\"read\"] }]"),
        program("c", "console = [\"write\", \"read\"]\nsupervisor = \"status\"")
    );
    let source = |sandbox: &str, edits: &[(&str, &str)]| {
        let mut edits = edits.to_vec();
        edits.push(("allowed_services = []", "allowed_services = [\"mem\", \"net\"]"));
        let policy = policy_with(&edits);
        let init = "[init]\nmemory_quota = 10000\ncpus = 1\nconsole = [\"write\", \"read\"]\nirqs = [4]\nio_ports = [[0x60, 0x64]]\n";
        let policy = policy.replacen(INIT, init, 1);
        format!("{objects}{servers}{}{policy}", program("a", &format!("sandbox = true\n{sandbox}")))
    };
    let says = |what: &str| format!("program \"a\" is a model sandbox (sandbox = true) but {what}");
    let cases: Vec<(&str, String, String)> = vec![
        ("no caps", source("", &[]), "OK".into()),
        (
            "allowed: console write, notification, an allowed service, a heap",
            source("console = [\"write\"]\ncaps = [{ notification = \"n\", rights = [\"read\"] }, { endpoint = \"mem\", rights = [\"write\"], badge = 9 }]\nheap = { client = 1, quota_pages = 64 }", &[]),
            "OK".into(),
        ),
        (
            "a network cap while network = false",
            source("caps = [{ endpoint = \"net\", rights = [\"write\"] }]", &[]),
            says("holds endpoint \"net\", a network cap (declared network = true), while [security.sandbox] network = false"),
        ),
        (
            "the same cap with network = true and no secure_inference",
            source("caps = [{ endpoint = \"net\", rights = [\"write\"] }]", &[("network = false", "network = true"), ("secure_inference = true", "secure_inference = false")]),
            "OK".into(),
        ),
        (
            "a service not allowed",
            source("caps = [{ endpoint = \"other\", rights = [\"write\"] }]", &[]),
            says("holds endpoint \"other\", which is not in [security.sandbox] allowed_services"),
        ),
        (
            "grant on an allowed service",
            source("caps = [{ endpoint = \"mem\", rights = [\"write\", \"grant\"] }]", &[]),
            says("holds endpoint \"mem\" with grant; a sandbox hands no caps on"),
        ),
        (
            "an irq",
            source("caps = [{ irq = 4, rights = [\"read\"] }]", &[]),
            says("holds irq 4; a sandbox drives no device (any device could be a network card)"),
        ),
        (
            "io ports",
            source("caps = [{ io_ports = [0x60, 0x60], rights = [\"read\"] }]", &[]),
            says("holds io ports 0x60-0x60; a sandbox drives no device (any device could be a network card)"),
        ),
        ("the keyboard", source("console = [\"read\"]", &[]), says("reads the console (the keyboard); a sandbox may only write it")),
        ("the supervisor", source("supervisor = \"status\"", &[]), says("holds a cap to init's supervisor interface")),
        ("the audit", source("audit = true", &[]), says("asks for the authority audit")),
        (
            "priority",
            source("", &[("max_priority = 10", "max_priority = 4")]),
            says("has priority 5, above [security.sandbox] max_priority 4"),
        ),
        (
            "CPU share",
            source("", &[("max_cpu_percent = 20", "max_cpu_percent = 9")]),
            says("has budget 100/1000 us, more than [security.sandbox] max_cpu_percent 9% of a CPU"),
        ),
        ("CPU share at the limit", source("", &[("max_cpu_percent = 20", "max_cpu_percent = 10")]), "OK".into()),
        (
            "memory quota",
            source("", &[("max_memory_quota = 1000", "max_memory_quota = 99")]),
            says("has memory_quota 100, above [security.sandbox] max_memory_quota 99"),
        ),
        (
            "heap pages",
            source("heap = { client = 1, quota_pages = 65 }", &[]),
            says("has a memory-server quota of 65 pages, above [security.sandbox] max_heap_pages 64"),
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(label, source, expected)| {
            let got = outcome(source, &[]);
            (got != *expected).then(|| format!("case {label}:\n  expected: {expected:?}\n       got: {got:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// system.toml's own policy: every key the seed policy lists, in its section, and what
/// this build makes of it.
#[test]
fn system_toml_policy() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../system.toml");
    let source = std::fs::read_to_string(path).expect("system.toml");
    let known = ["memory", "hello", "echo-server", "echo-client", "shell", "ai", "model-sandbox"];
    let manifest = compile(&source, &known).unwrap_or_else(|e| panic!("system.toml: {e}"));
    let states: Vec<(&str, &str)> = Key::ALL.iter().map(|k| (k.name(), manifest.policy.state(*k).label())).collect();
    assert_eq!(
        states,
        [
            ("secure_boot", "off"),
            ("tpm_enabled", "off"),
            ("memory_encryption", "off"),
            ("aslr", "enforced"),
            ("dep", "enforced"),
            ("stack_protector", "enforced"),
            ("firewall", "off"),
            ("encrypted_protocols_only", "off"),
            ("secure_dns", "off"),
            ("model_validation", "off"),
            ("secure_inference", "enforced"),
            ("data_encryption", "off"),
        ]
    );
    assert!(!manifest.policy.sandbox.network);
    assert_eq!(manifest.policy.sandbox.allowed_services, [manifest.memory_server.expect("memory server")]);
}

// --- Property test: malformed policy files over generated files -------------------------

/// The sections and keys of a valid policy; every value is valid.
fn base_sections() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    vec![
        ("hardware", vec![("secure_boot", "false"), ("tpm_enabled", "false"), ("memory_encryption", "false")]),
        ("process", vec![("aslr", "true"), ("dep", "true"), ("stack_protector", "false")]),
        ("network", vec![("firewall", "false"), ("encrypted_protocols_only", "false"), ("secure_dns", "false")]),
        ("ai", vec![("model_validation", "false"), ("secure_inference", "true"), ("data_encryption", "false")]),
        (
            "sandbox",
            vec![
                ("network", "false"),
                ("max_priority", "10"),
                ("max_cpu_percent", "20"),
                ("max_memory_quota", "1_000"),
                ("max_heap_pages", "64"),
                ("allowed_services", "[]"),
            ],
        ),
    ]
}

/// One way to break a policy file.
#[derive(Clone, Debug)]
enum Spoil {
    /// Insert an unknown key into a section, before entry `at`.
    UnknownKey { section: usize, at: usize, name: String },
    /// Give a key a value of the wrong type.
    WrongType { section: usize, entry: usize, value: &'static str },
    /// Leave a key out.
    DropKey { section: usize, entry: usize },
    /// Leave a section out.
    DropSection { section: usize },
    /// Give a section twice (a second copy at the end).
    DuplicateSection { section: usize },
    /// Give a key twice (right after itself).
    DuplicateKey { section: usize, entry: usize },
    /// An unknown section at the end.
    UnknownSection { name: String },
}

fn spoil() -> impl Strategy<Value = Spoil> {
    let name = "[a-z]{1,6}_[a-z]{1,6}".prop_filter("not a real key", |n| {
        Key::from_name(n).is_none() && !["max_priority", "max_cpu_percent", "max_memory_quota", "max_heap_pages", "allowed_services"].contains(&n.as_str())
    });
    let wrong = prop_oneof![Just("1"), Just("\"true\""), Just("1.5"), Just("[true]"), Just("{ a = 1 }")];
    prop_oneof![
        (0..5usize, 0..6usize, name.clone()).prop_map(|(section, at, name)| Spoil::UnknownKey { section, at, name }),
        (0..5usize, 0..6usize, wrong).prop_map(|(section, entry, value)| Spoil::WrongType { section, entry, value }),
        (0..5usize, 0..6usize).prop_map(|(section, entry)| Spoil::DropKey { section, entry }),
        (0..5usize).prop_map(|section| Spoil::DropSection { section }),
        (0..5usize).prop_map(|section| Spoil::DuplicateSection { section }),
        (0..5usize, 0..6usize).prop_map(|(section, entry)| Spoil::DuplicateKey { section, entry }),
        "[a-z]{1,8}".prop_filter("not a section", |n| !["hardware", "process", "network", "ai", "sandbox"].contains(&n.as_str()))
            .prop_map(|name| Spoil::UnknownSection { name }),
    ]
}

/// Renders `[init]`, then the sections in `order` (with blank lines and comments between,
/// as a person writes them), applying `spoil`. Returns the text and what the error must
/// say: its line and a fragment naming the key or section.
fn render(order: &[usize], spoil: &Spoil) -> (String, usize, String) {
    let mut sections = base_sections();
    let mut lines: Vec<String> = INIT.lines().map(String::from).collect();
    let mut expected: Option<(usize, String)> = None;
    // Clamp entry indices to the section's size.
    let clamp = |section: usize, entry: usize, sections: &Vec<(&str, Vec<(&str, &str)>)>| entry % sections[section].1.len();
    if let Spoil::WrongType { section, entry, value } = spoil {
        let entry = clamp(*section, *entry, &sections);
        // An integer is right for the sandbox's numbers: use a string there instead.
        let value = if value == &"1" && sections[*section].1[entry].1 != "true" && sections[*section].1[entry].1 != "false" {
            "\"1\""
        } else {
            value
        };
        sections[*section].1[entry].1 = value;
    }
    let first_header = lines.len() + 3; // blank line and comment before the first header
    let _ = first_header;
    let mut first_header_line = None;
    for &s in order {
        if let Spoil::DropSection { section } = spoil
            && *section == s
        {
            continue;
        }
        let (name, entries) = &sections[s];
        lines.push(String::new());
        lines.push(format!("# the {name} section"));
        lines.push(format!("[security.{name}]"));
        let header = lines.len();
        first_header_line.get_or_insert(header);
        for (i, (key, value)) in entries.iter().enumerate() {
            if let Spoil::UnknownKey { section, at, name: unknown } = spoil
                && *section == s
                && at % entries.len() == i
            {
                lines.push(format!("{unknown} = true"));
                expected = Some((lines.len(), format!("has no key `{unknown}`")));
            }
            if let Spoil::DropKey { section, entry } = spoil
                && *section == s
                && clamp(s, *entry, &sections) == i
            {
                expected = Some((header, format!("leaves out `{key}`")));
                continue;
            }
            lines.push(format!("{key} = {value}"));
            if let Spoil::WrongType { section, entry, .. } = spoil
                && *section == s
                && clamp(s, *entry, &sections) == i
            {
                expected = Some((lines.len(), format!("{key} must")));
            }
            if let Spoil::DuplicateKey { section, entry } = spoil
                && *section == s
                && clamp(s, *entry, &sections) == i
            {
                lines.push(format!("{key} = {value}"));
                expected = Some((lines.len(), format!("key `{key}` is given twice")));
            }
        }
    }
    match spoil {
        Spoil::DuplicateSection { section } => {
            let (name, entries) = &sections[*section];
            lines.push(String::new());
            lines.push(format!("[security.{name}]"));
            expected = Some((lines.len(), format!("[security.{name}] is given twice")));
            for (key, value) in entries {
                lines.push(format!("{key} = {value}"));
            }
        }
        Spoil::UnknownSection { name } => {
            lines.push(format!("[security.{name}]"));
            expected = Some((lines.len(), format!("unknown section [security.{name}]")));
        }
        Spoil::DropSection { section } => {
            let name = sections[*section].0;
            expected = Some((first_header_line.unwrap_or(0), format!("no [security.{name}] section")));
        }
        _ => {}
    }
    let (line, fragment) = expected.expect("every spoil sets what the error must say");
    (lines.join("\n") + "\n", line, fragment)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// A valid policy compiles whatever the order of its sections.
    #[test]
    fn any_order_compiles(order in Just((0..5usize).collect::<Vec<_>>()).prop_shuffle()) {
        let (text, _, _) = render(&order, &Spoil::UnknownSection { name: "x".into() });
        // Drop the unknown section the renderer added at the end.
        let text = text.replace("[security.x]\n", "");
        prop_assert_eq!(outcome(&text, &[]), "OK");
    }

    /// Each malformed file is refused with the line of the problem and the key or section
    /// it concerns, whatever the order of the sections.
    #[test]
    fn malformed_policies_name_the_key_and_line(
        order in Just((0..5usize).collect::<Vec<_>>()).prop_shuffle(),
        spoil in spoil(),
    ) {
        let (text, line, fragment) = render(&order, &spoil);
        let message = outcome(&text, &[]);
        prop_assert!(message.starts_with(&format!("line {line}: ")), "{:?}: {message}\n{text}", spoil);
        prop_assert!(message.contains(&fragment), "{:?}: {message} lacks {fragment:?}\n{text}", spoil);
    }
}
