//! `[models.NAME]`: each model becomes a sandbox program and two caps of the AI server, and
//! nothing else may reach its sandbox.

mod common;

use abi::Rights;
use manifest::{ManifestError, ObjectRef, TrustedKey, compile, decode};

const KNOWN: &[&str] = &["ai", "model-sandbox", "memory", "client"];

/// A system with a memory server, an AI server and `models` (TOML tables).
fn system(extra: &str, models: &str) -> String {
    let policy = common::POLICY
        .replace("max_memory_quota = 1000", "max_memory_quota = 65536")
        .replace("allowed_services = []", "allowed_services = [\"memory\"]");
    format!(
        r#"memory_server = "memory"
ai_server = "ai"

[init]
console = ["write"]
memory_quota = 1_000_000
cpus = 2

[endpoints.memory]

[[programs]]
name = "memory"
priority = 20
budget_us = 1000
period_us = 10000
memory_quota = 4096
on_crash = "fatal"
caps = [{{ endpoint = "memory", rights = ["read"] }}]

[[programs]]
name = "ai"
priority = 12
budget_us = 1000
period_us = 10000
memory_quota = 4096
on_crash = "fatal"
console = ["write"]
heap = {{ client = 3, quota_pages = 16 }}
{extra}
{models}
{policy}"#
    )
}

const DIGITS: &str = r#"
[models.digits]
container = "models/digits-mlp.model"
key = "development"
priority = 8
budget_us = 1000
period_us = 10000
memory_quota = 32768
heap_pages = 32
max_input_bytes = 64
deadline_ms = 1000
max_backoff_ms = 1000
"#;

#[test]
fn a_model_becomes_a_sandbox_and_two_server_caps() {
    let two = format!("{DIGITS}{}", DIGITS.replace("models.digits", "models.other").replace("digits-mlp", "other"));
    let manifest = compile(&system("", &two), KNOWN).expect("compiles");
    assert_eq!(manifest.files, ["models/digits-mlp.model", "models/other.model"]);
    assert_eq!(manifest.models.len(), 2);
    let digits = &manifest.models[0];
    assert_eq!((digits.name.as_str(), digits.sandbox.as_str()), ("digits", "model-digits"));
    assert_eq!(manifest.endpoints[digits.requests as usize], "model.digits");

    let sandbox = manifest.program("model-digits").expect("the sandbox program");
    assert!(sandbox.sandbox);
    assert_eq!(sandbox.binary, "bin/model-sandbox");
    let requests = ObjectRef::Endpoint(digits.requests);
    let own: Vec<_> = sandbox.caps.iter().filter(|c| c.slot < manifest::SPACE_SLOTS).collect();
    assert_eq!(own.len(), 1, "the request endpoint is its only cap below the heap's");
    assert_eq!((own[0].object, own[0].rights()), (requests, Rights::READ));
    assert_eq!(sandbox.cap_names[0].name, "requests");

    let server = manifest.program("ai").expect("the AI server");
    let at = |slot| server.caps.iter().find(|c| c.slot == slot).expect("a cap in the model's slot");
    // The console is slot 1, so the models start at slot 2, two slots each.
    assert_eq!((digits.container_slot, digits.sandbox_slot), (2, 3));
    assert_eq!((at(2).object, at(2).rights()), (ObjectRef::File(digits.container), Rights::READ));
    assert_eq!((at(3).object, at(3).rights()), (requests, Rights::WRITE.union(Rights::GRANT)));
    assert_eq!((manifest.models[1].container_slot, manifest.models[1].sandbox_slot), (4, 5));

    let decoded = decode(&manifest.encode()).expect("decodes and validates");
    assert_eq!(decoded, manifest);
}

#[test]
fn trust_refuses_a_model_whose_key_is_not_trusted() {
    let mut manifest = compile(&system("", DIGITS), KNOWN).expect("compiles");
    let other = TrustedKey { name: "release".into(), public_key: [7; 32] };
    assert_eq!(
        manifest.trust(vec![other.clone()]),
        Err("model \"digits\" names key \"development\", which is not a trusted key".into())
    );
    let development = TrustedKey { name: "development".into(), public_key: [9; 32] };
    assert_eq!(manifest.trust(vec![other, development]), Ok(()));
    assert_eq!(decode(&manifest.encode()).expect("decodes").trusted_keys.len(), 2);
}

fn refusal(source: &str) -> String {
    compile(source, KNOWN).expect_err("refused").to_string()
}

/// A program "client" (priority 5, no heap) with `extra` lines (its caps, say).
fn client(extra: &str) -> String {
    format!(
        r#"
[[programs]]
name = "client"
priority = 5
budget_us = 1000
period_us = 10000
memory_quota = 4096
on_crash = "fatal"
{extra}
"#
    )
}

#[test]
fn what_a_model_may_not_be() {
    let digits = |from: &str, to: &str| system("", &DIGITS.replace(from, to));
    let reporter = client("supervisor = \"report\"");
    let cases = [
        (
            system(&reporter, DIGITS),
            "unknown supervisor level (status or control; report for the AI server) \"report\" referenced by program \"client\"",
        ),
        (
            system(&client(r#"caps = [{ endpoint = "model.digits", rights = ["write"] }]"#), DIGITS),
            "model \"digits\": program \"client\" holds its request endpoint; only its sandbox and the AI server may",
        ),
        (system("[endpoints.\"model.digits\"]\n", DIGITS), "model \"digits\": endpoint \"model.digits\" is declared, but the model makes it"),
        (digits("models.digits", "models.Digits"), "model \"Digits\": a model name is lowercase letters, digits and '-', at most 32"),
        (digits("deadline_ms = 1000", "deadline_ms = 0"), "model \"digits\": max_input_bytes and deadline_ms must be at least 1"),
        (
            digits("priority = 8", "priority = 11"),
            "program \"model-digits\" is a model sandbox (sandbox = true) but has priority 11, above [security.sandbox] max_priority 10",
        ),
        (
            digits("heap_pages = 32", "heap_pages = 65"),
            "program \"model-digits\" is a model sandbox (sandbox = true) but has a memory-server quota of 65 pages, above [security.sandbox] max_heap_pages 64",
        ),
    ];
    for (source, expected) in cases {
        assert_eq!(refusal(&source), expected);
    }
    let without_server = system("", DIGITS).replace("ai_server = \"ai\"\n", "");
    assert_eq!(refusal(&without_server), "model \"digits\": models need an AI server: set ai_server = \"PROGRAM\"");
}

#[test]
fn a_sandbox_holds_no_boot_file() {
    let sandbox = format!(
        "[endpoints.own]\n{}",
        client("sandbox = true\ncaps = [{ file = \"models/digits-mlp.model\", rights = [\"read\"] }, { endpoint = \"own\", rights = [\"read\"] }]")
    );
    let error = compile(&system(&sandbox, DIGITS), KNOWN).expect_err("refused");
    assert!(matches!(error, ManifestError::Sandbox { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "program \"client\" is a model sandbox (sandbox = true) but holds file \"models/digits-mlp.model\"; \
         a sandbox gets its weights from the AI server, after verification, and no other boot file"
    );
}
