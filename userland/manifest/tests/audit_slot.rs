//! Where init puts the test runner's audit cap (`Program::audit_slot`): after its last cap,
//! and only for `audit = true`.

mod common;

use manifest::{FIRST_CAP_SLOT, compile};

const SOURCE: &str = r#"
[init]
console = ["write"]
memory_quota = 1000
cpus = 1
irqs = []
io_ports = []

[endpoints.e]

[[programs]]
name = "a"
priority = 10
budget_us = 100
period_us = 1000
memory_quota = 100
on_crash = "fatal"
audit = true
console = ["write"]
caps = [{ endpoint = "e", rights = ["read"] }, { endpoint = "e", rights = ["write"], badge = 3 }]

[[programs]]
name = "b"
priority = 10
budget_us = 100
period_us = 1000
memory_quota = 100
on_crash = "fatal"
console = ["write"]
caps = [{ endpoint = "e", rights = ["write"], badge = 4 }]
"#;

#[test]
fn the_audit_cap_goes_after_the_last_cap_and_only_to_the_auditor() {
    let manifest = compile(&common::with_policy(SOURCE), &["a", "b"]).expect("compiles");
    let auditor = &manifest.programs[0];
    assert_eq!(auditor.caps.iter().map(|grant| grant.slot).max(), Some(FIRST_CAP_SLOT + 1));
    assert_eq!(auditor.audit_slot().map(|slot| slot.index()), Some(FIRST_CAP_SLOT + 2));
    assert_eq!(manifest.programs[1].audit_slot(), None);
}

#[test]
fn an_auditor_without_caps_gets_the_first_cap_slot() {
    let source = SOURCE.replace(
        "caps = [{ endpoint = \"e\", rights = [\"read\"] }, { endpoint = \"e\", rights = [\"write\"], badge = 3 }]",
        "",
    );
    let source = source.replace("rights = [\"write\"], badge = 4 }]", "rights = [\"read\", \"write\"], badge = 4 }]");
    let manifest = compile(&common::with_policy(&source), &["a", "b"]).expect("compiles");
    assert_eq!(manifest.programs[0].audit_slot().map(|slot| slot.index()), Some(FIRST_CAP_SLOT));
}
