//! `device` caps: a PCI function by vendor:device ID, and its memory BARs; one driver per
//! device; never a sandbox's; the compiled form round-trips.

mod common;

use manifest::{ObjectRef, PciId, decode};

const INIT: &str = r#"
[init]
console = ["write"]
memory_quota = 1000
cpus = 1
"#;

fn program(name: &str, caps: &str) -> String {
    format!(
        "\n[[programs]]\nname = \"{name}\"\npriority = 10\nbudget_us = 100\nperiod_us = 1000\nmemory_quota = 100\non_crash = \"fatal\"\ncaps = {caps}\n"
    )
}

fn compile(body: &str) -> Result<manifest::CompiledManifest, String> {
    manifest::compile(&common::with_policy(&format!("{INIT}{body}")), &["a", "b", "init"]).map_err(|e| e.to_string())
}

#[test]
fn a_function_and_its_bars_fill_consecutive_slots() {
    let body = program(
        "a",
        r#"[{ name = "nic", device = { pci = "1af4:1000" }, rights = ["read", "write"] },
            { device = { pci = "1af4:1000", bar = 1 }, rights = ["read", "write"] },
            { device = { pci = "virtio-net", bar = 4 }, rights = ["read", "write"] }]"#,
    );
    let manifest = compile(&body).expect("compiles");
    assert_eq!(manifest.devices, [PciId { vendor: 0x1af4, device: 0x1000 }], "virtio-net is 1af4:1000, listed once");
    let a = manifest.program("a").expect("a");
    let caps: Vec<(u32, ObjectRef, u32)> = a.caps.iter().map(|c| (c.slot, c.object, c.rights)).collect();
    let rw = libcap_rights();
    assert_eq!(caps, [(2, ObjectRef::Pci(0), rw), (3, ObjectRef::PciBar(0, 1), rw), (4, ObjectRef::PciBar(0, 4), rw)]);
    assert_eq!(a.caps[0].kind(), abi::ObjectType::Pci);
    assert_eq!(a.caps[1].kind(), abi::ObjectType::Frame);
    assert_eq!(decode(&manifest.encode()).as_ref(), Ok(&manifest));
    assert_eq!(manifest.object_name(ObjectRef::PciBar(0, 4)).to_string(), "pci 1af4:1000 BAR4");
}

fn libcap_rights() -> u32 {
    abi::Rights::READ.union(abi::Rights::WRITE).bits()
}

#[test]
fn refusals_are_exact() {
    let cases = [
        (
            program("a", r#"[{ device = { pci = "1af4" }, rights = ["read"] }]"#),
            r#"program "a": device { pci = "1af4" } is not a PCI function ("vvvv:dddd" in hex, or "virtio-net") with a BAR 0..=5"#,
        ),
        (
            program("a", r#"[{ device = { pci = "zzzz:1000" }, rights = ["read"] }]"#),
            r#"program "a": device { pci = "zzzz:1000" } is not a PCI function ("vvvv:dddd" in hex, or "virtio-net") with a BAR 0..=5"#,
        ),
        (
            program("a", r#"[{ device = { pci = "1af4:1000", bar = 6 }, rights = ["read"] }]"#),
            r#"program "a": device { pci = "1af4:1000", bar = 6 } is not a PCI function ("vvvv:dddd" in hex, or "virtio-net") with a BAR 0..=5"#,
        ),
        (
            program("a", r#"[{ device = { pci = "1af4:1000" }, rights = ["read", "execute"] }]"#),
            "program \"a\" asks for read, execute on pci 1af4:1000, which takes only read, write",
        ),
        (
            program("a", r#"[{ device = { pci = "1af4:1000", bar = 4 }, rights = ["execute"] }]"#),
            "program \"a\" asks for execute on pci 1af4:1000 BAR4, which takes only read, write",
        ),
        (
            format!(
                "{}{}",
                program("a", r#"[{ device = { pci = "1af4:1000" }, rights = ["read"] }]"#),
                program("b", r#"[{ device = { pci = "1af4:1000", bar = 4 }, rights = ["read"] }]"#)
            ),
            "pci 1af4:1000 is given to both \"a\" and \"b\"; a device has one driver",
        ),
        (
            format!(
                "{}{}",
                program("a", r#"[{ device = { pci = "1af4:1000" }, rights = ["read"] }]"#),
                program("b", r#"[{ device = { pci = "1af4:1000" }, rights = ["read"] }]"#)
            ),
            "pci 1af4:1000 is given to both \"a\" and \"b\"; a device has one driver",
        ),
        (
            program("a", r#"[{ device = { pci = "1af4:1000", port = 1 }, rights = ["read"] }]"#),
            "",
        ),
    ];
    let mut wrong = Vec::new();
    for (body, expected) in &cases {
        match compile(body) {
            Err(message) if expected.is_empty() || message == *expected => {}
            other => wrong.push(format!("{body}\n  got {other:?}\n  want {expected:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn two_devices_two_drivers_are_fine() {
    let body = format!(
        "{}{}",
        program("a", r#"[{ device = { pci = "1af4:1000" }, rights = ["read", "write"] }]"#),
        program("b", r#"[{ device = { pci = "8086:100e" }, rights = ["read", "write"] }]"#)
    );
    let manifest = compile(&body).expect("compiles");
    assert_eq!(manifest.devices.len(), 2);
    assert_eq!(manifest.program("b").map(|b| b.caps[0].object), Some(ObjectRef::Pci(1)));
}

#[test]
fn a_sandbox_holds_no_device() {
    let body = program("a", r#"[{ device = { pci = "1af4:1000" }, rights = ["read"] }]"#).replace("on_crash", "sandbox = true\non_crash");
    let error = compile(&body).expect_err("refused");
    assert!(error.contains("drives no device"), "{error}");
}

#[test]
fn decode_refuses_a_device_given_twice() {
    let body = program("a", r#"[{ device = { pci = "1af4:1000" }, rights = ["read"] }]"#);
    let mut manifest = compile(&body).expect("compiles");
    let mut b = manifest.programs[0].clone();
    b.name = "b".into();
    manifest.programs.push(b);
    let blob = manifest.encode();
    assert!(matches!(decode(&blob), Err(manifest::DecodeError::Invalid(i)) if i.what == "a device is given to two programs"));
}
