//! `decode`: each kind of bad blob gets its own error, and no bytes make it panic.

use manifest::{
    CapGrant, CompiledManifest, DecodeError, FORMAT_VERSION, InitAuthority, Invalid, Key,
    KeyState, MAGIC, ObjectRef, Policy, PortRange, Program, RestartPolicy, SandboxPolicy, decode,
};
use proptest::prelude::*;

fn sample() -> CompiledManifest {
    CompiledManifest {
        init: InitAuthority {
            console_rights: abi::Rights::WRITE.bits(),
            memory_quota: 1 << 20,
            cpus: 2,
            irqs: vec![1],
            io_ports: vec![PortRange {
                first: 0x60,
                last: 0x64,
            }],
        },
        endpoints: vec!["echo".into()],
        notifications: vec![],
        memory_server: None,
        network: vec![],
        files: vec![],
        devices: vec![],
        ai_server: None,
        models: vec![],
        trusted_keys: vec![],
        policy: Policy {
            keys: Key::ALL
                .iter()
                .map(|key| match key {
                    Key::Aslr | Key::Dep | Key::StackProtector | Key::SecureInference => KeyState::Enforced,
                    _ => KeyState::Off,
                })
                .collect(),
            sandbox: SandboxPolicy {
                network: false,
                max_priority: 10,
                max_cpu_percent: 20,
                max_memory_quota: 1 << 20,
                max_heap_pages: 256,
                allowed_services: vec![],
            },
        },
        programs: vec![Program {
            name: "echo-server".into(),
            binary: "bin/echo-server".into(),
            priority: 20,
            budget_us: 1000,
            period_us: 10_000,
            memory_quota: 4096,
            on_crash: RestartPolicy::Restart {
                max_backoff_ms: 100,
            },
            audit: false,
            sandbox: false,
            cap_names: vec![],
            caps: vec![
                CapGrant {
                    slot: 1,
                    object: ObjectRef::Console,
                    rights: abi::Rights::WRITE.bits(),
                    badge: 0,
                },
                CapGrant {
                    slot: 2,
                    object: ObjectRef::Endpoint(0),
                    rights: abi::Rights::READ.bits(),
                    badge: 0,
                },
            ],
        }],
    }
}

/// What `decode` makes of `manifest` after `spoil` edits it (skipping the checker).
fn decode_spoilt(
    spoil: impl FnOnce(&mut CompiledManifest),
) -> Result<CompiledManifest, DecodeError> {
    let mut manifest = sample();
    spoil(&mut manifest);
    decode(&manifest.encode())
}

fn invalid(what: &'static str) -> Result<CompiledManifest, DecodeError> {
    Err(DecodeError::Invalid(Invalid {
        program: Some(0),
        what,
    }))
}

#[test]
fn good_blob_decodes() {
    assert_eq!(decode(&sample().encode()), Ok(sample()));
}

#[test]
fn bad_blobs_say_why() {
    let blob = sample().encode();
    assert_eq!(decode(b""), Err(DecodeError::Truncated));
    assert_eq!(decode(b"DA"), Err(DecodeError::Truncated));
    assert_eq!(decode(b"ELF\x7f...."), Err(DecodeError::BadMagic));
    let mut wrong_version = Vec::from(MAGIC);
    wrong_version.push(FORMAT_VERSION as u8 + 1);
    wrong_version.extend_from_slice(&blob[5..]);
    assert_eq!(
        decode(&wrong_version),
        Err(DecodeError::VersionMismatch {
            found: FORMAT_VERSION + 1,
            expected: FORMAT_VERSION
        })
    );
    assert_eq!(
        DecodeError::VersionMismatch {
            found: 2,
            expected: 1
        }
        .to_string(),
        "manifest format version 2, but this init reads version 1: rebuild the image"
    );
    for cut in 0..blob.len() {
        assert_eq!(
            decode(&blob[..cut]),
            Err(DecodeError::Truncated),
            "cut at {cut}"
        );
    }
    let mut long = blob.clone();
    long.extend_from_slice(&[0, 0]);
    assert_eq!(decode(&long), Err(DecodeError::TrailingBytes(2)));
    // 0xff.. is not a valid varint for the program count: malformed, not truncated.
    let mut malformed = blob[..5].to_vec();
    malformed.extend_from_slice(&[0xff; 12]);
    assert_eq!(decode(&malformed), Err(DecodeError::Malformed));
}

#[test]
fn decoded_manifests_are_rechecked() {
    fn console(m: &mut CompiledManifest) -> &mut CapGrant {
        &mut m.programs[0].caps[0]
    }
    fn endpoint(m: &mut CompiledManifest) -> &mut CapGrant {
        &mut m.programs[0].caps[1]
    }
    assert_eq!(
        decode_spoilt(|m| endpoint(m).object = ObjectRef::Endpoint(1)),
        invalid("a cap names an undeclared object")
    );
    assert_eq!(
        decode_spoilt(|m| endpoint(m).rights = abi::Rights::EXECUTE.bits()),
        invalid("a cap's rights are empty or meaningless for its kind")
    );
    assert_eq!(
        decode_spoilt(|m| endpoint(m).rights = 1 << 9),
        invalid("a cap's rights are empty or meaningless for its kind")
    );
    assert_eq!(
        decode_spoilt(|m| console(m).badge = 3),
        invalid("a badge on a kind that takes none")
    );
    assert_eq!(
        decode_spoilt(|m| endpoint(m).slot = 1),
        invalid("cap slots not increasing within the space")
    );
    assert_eq!(
        decode_spoilt(|m| endpoint(m).slot = 64),
        invalid("cap slots not increasing within the space")
    );
    assert_eq!(
        decode_spoilt(|m| console(m).slot = 0),
        invalid("cap slots not increasing within the space")
    );
    assert_eq!(
        decode_spoilt(|m| {
            console(m).object = ObjectRef::Irq(1);
            console(m).rights = abi::Rights::READ.bits();
        }),
        invalid("the console is not in the console slot")
    );
    assert_eq!(
        decode_spoilt(|m| m.programs[0].priority = 31),
        invalid("priority out of range")
    );
    assert_eq!(
        decode_spoilt(|m| m.programs[0].budget_us = 0),
        invalid("budget or period out of range")
    );
    assert_eq!(
        decode_spoilt(|m| m.programs[0].period_us = 999),
        invalid("budget or period out of range")
    );
    assert_eq!(
        decode_spoilt(|m| m.programs[0].on_crash = RestartPolicy::Restart { max_backoff_ms: 1 }),
        invalid("max_backoff_ms below the initial back-off")
    );
    assert_eq!(
        decode_spoilt(|m| {
            let again = m.programs[0].clone();
            m.programs.push(again);
        }),
        Err(DecodeError::Invalid(Invalid {
            program: Some(1),
            what: "duplicate program name"
        }))
    );
    assert_eq!(
        decode_spoilt(|m| m.init.io_ports[0] = PortRange { first: 2, last: 1 }),
        Err(DecodeError::Invalid(Invalid {
            program: None,
            what: "an init I/O port range is backwards"
        }))
    );
}

/// init re-checks the policy against its own build's mechanisms: a blob cannot claim a key
/// enforced that this build cannot enforce, hide a refused key, or let a sandbox out.
#[test]
fn decoded_policies_are_rechecked() {
    let general = |what| Err(DecodeError::Invalid(Invalid { program: None, what }));
    let set = |key: Key, state| move |m: &mut CompiledManifest| m.policy.keys[key.index()] = state;
    assert_eq!(
        decode_spoilt(set(Key::SecureBoot, KeyState::Enforced)),
        general("the policy claims a key enforced that this build cannot enforce")
    );
    assert_eq!(decode_spoilt(set(Key::Firewall, KeyState::Refused)), general("the policy holds a refused key"));
    assert_eq!(
        decode_spoilt(set(Key::Aslr, KeyState::AllowedUnenforced)),
        general("the policy allows unenforced a key this build enforces")
    );
    assert!(decode_spoilt(set(Key::TpmEnabled, KeyState::AllowedUnenforced)).is_ok());
    assert_eq!(decode_spoilt(|m| { m.policy.keys.pop(); }), general("the policy does not have one state per key"));
    assert_eq!(
        decode_spoilt(|m| m.policy.sandbox.network = true),
        general("secure_inference is enforced but sandboxes may use the network")
    );
    assert_eq!(
        decode_spoilt(|m| m.policy.sandbox.allowed_services = vec![1]),
        general("a sandbox service is not a declared endpoint")
    );
    assert_eq!(
        decode_spoilt(|m| m.network = vec![ObjectRef::Irq(1)]),
        general("a network object is not a declared endpoint or notification")
    );
    // The sample's program receives on `echo`, which is not an allowed service.
    assert_eq!(
        decode_spoilt(|m| m.programs[0].sandbox = true),
        Err(DecodeError::Invalid(Invalid { program: Some(0), what: "a sandbox program breaks [security.sandbox]" }))
    );
    // Allowed, and within the limits (priority 20 is above max_priority 10).
    assert!(decode_spoilt(|m| {
        m.programs[0].sandbox = true;
        m.programs[0].priority = 10;
        m.policy.sandbox.allowed_services = vec![0];
    })
    .is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
        let mut with_header = Vec::from(MAGIC);
        with_header.push(FORMAT_VERSION as u8);
        with_header.extend_from_slice(&bytes);
        let _ = decode(&with_header);
    }

    #[test]
    fn mutated_blobs_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut blob = sample().encode();
        let len = blob.len();
        for (at, value) in flips {
            blob[at % len] = value;
        }
        if let Ok(manifest) = decode(&blob) {
            // Whatever decodes is valid and survives another trip. (Not byte-identical:
            // postcard accepts over-long varints, such as 0x80 0x00 for 0.)
            prop_assert_eq!(manifest.validate(), Ok(()));
            prop_assert_eq!(decode(&manifest.encode()), Ok(manifest));
        }
    }
}
