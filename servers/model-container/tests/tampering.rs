//! Every tampering case: each must be refused by the check that names it, and nothing loads.
//!
//! The container under test is the real bundled digits model, signed with a test key.

use model_container::format::{HEADER_LEN, MAX_MANIFEST_LEN, SIGNATURE_LEN};
use model_container::{
    Architecture, Check, ContainerError, CpuBudget, KeyId, Manifest, ModelSpec, Region, Section,
    SigningKey, TrustedKeys, pack, pack_raw, verify,
};
use sha2::{Digest, Sha256};

const DIGITS: &[u8] = include_bytes!("../../../models/digits/digits-mlp.safetensors");
const TEST_SEED: [u8; 32] = [7; 32];
const OTHER_SEED: [u8; 32] = [8; 32];

fn spec(architecture: Architecture) -> ModelSpec<'static> {
    ModelSpec {
        name: "digits-mlp",
        version: "1.0.0",
        architecture,
        memory_budget_bytes: 1 << 20,
        cpu_budget: CpuBudget {
            budget_us: 1_000,
            period_us: 10_000,
        },
    }
}

fn key() -> SigningKey {
    SigningKey::from_seed(TEST_SEED)
}

fn trusted() -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    keys.add("test", key().public_key()).unwrap();
    keys
}

fn container() -> Vec<u8> {
    pack(&spec(Architecture::DigitsMlp), DIGITS, None, &key()).unwrap()
}

/// A manifest for `payload` that is consistent with it, to be spoiled by the caller.
fn manifest_for(payload: &[u8]) -> Manifest<'static> {
    Manifest {
        name: "digits-mlp",
        version: "1.0.0",
        architecture: "digits-mlp",
        tokenizer: "none",
        payload_size: payload.len() as u64,
        payload_sha256: Sha256::digest(payload).into(),
        safetensors: Section {
            offset: 0,
            size: payload.len() as u64,
        },
        vocab: None,
        memory_budget_bytes: 1 << 20,
        cpu_budget: CpuBudget {
            budget_us: 1_000,
            period_us: 10_000,
        },
    }
}

fn manifest_len(c: &[u8]) -> usize {
    u32::from_le_bytes(c[20..24].try_into().unwrap()) as usize
}

/// The one helper: `bytes` must be refused by `want`, and the error text must name it.
#[track_caller]
fn check(bytes: &[u8], keys: &TrustedKeys, want: Check) -> ContainerError {
    match verify(bytes, keys) {
        Ok(m) => panic!("expected the {want} check to fail, but the container loaded: {m:?}"),
        Err(e) => {
            assert_eq!(e.check(), want, "wrong check failed: {e}");
            let text = e.to_string();
            assert!(text.contains(&format!("{want} check failed")), "{text}");
            e
        }
    }
}

#[test]
fn untampered_container_loads_in_place() {
    let c = container();
    let m = verify(&c, &trusted()).unwrap();
    assert_eq!(m.architecture(), Architecture::DigitsMlp);
    assert_eq!(m.key_id(), key().key_id());
    assert_eq!(m.manifest().name, "digits-mlp");
    assert_eq!(m.manifest().payload_size, DIGITS.len() as u64);
    assert_eq!(m.safetensors_bytes(), DIGITS);
    assert!(m.vocab().is_none());
    // Borrowed, not copied: the safetensors slice lies inside the container.
    let range = c.as_ptr_range();
    assert!(range.contains(&m.safetensors_bytes().as_ptr()));
    assert_eq!(m.tensors().tensor("fc1.weight").unwrap().shape(), &[32, 64]);
    assert!(range.contains(&m.tensors().tensor("fc2.bias").unwrap().data().as_ptr()));
}

#[test]
fn packing_is_deterministic() {
    assert_eq!(container(), container());
}

/// Which check must catch a flipped bit at `offset`.
fn expected_for_flip(offset: usize, manifest_len: usize, bit: u8, c: &[u8]) -> Vec<Check> {
    let manifest_end = HEADER_LEN + manifest_len;
    match offset {
        0..8 => vec![Check::Magic],
        8..10 => vec![Check::Version],
        10..12 => vec![Check::Flags],
        12..20 => vec![Check::KeyTrusted],
        20..24 => {
            let mut len = manifest_len as u32;
            len ^= 1 << (bit as u32 + 8 * (offset as u32 - 20));
            if len > MAX_MANIFEST_LEN || HEADER_LEN + len as usize + SIGNATURE_LEN > c.len() {
                vec![Check::Length]
            } else {
                vec![Check::Signature]
            }
        }
        o if o < manifest_end + SIGNATURE_LEN => vec![Check::Signature],
        _ => vec![Check::PayloadHash],
    }
}

#[test]
fn flipped_bit_in_header_manifest_or_signature_is_refused() {
    let c = container();
    let keys = trusted();
    let m = manifest_len(&c);
    for offset in 0..HEADER_LEN + m + SIGNATURE_LEN {
        for bit in 0..8u8 {
            let mut t = c.clone();
            t[offset] ^= 1 << bit;
            let e = verify(&t, &keys).expect_err("tampered container loaded");
            let want = expected_for_flip(offset, m, bit, &c);
            assert!(
                want.contains(&e.check()),
                "offset {offset} bit {bit}: {e}, wanted {want:?}"
            );
        }
    }
}

#[test]
fn flipped_bit_in_payload_is_refused() {
    let c = container();
    let keys = trusted();
    let start = HEADER_LEN + manifest_len(&c) + SIGNATURE_LEN;
    // Every payload byte (the digits payload is 10 KB), one bit each, cycling through the bits.
    for offset in start..c.len() {
        let mut t = c.clone();
        t[offset] ^= 1 << (offset % 8);
        check(&t, &keys, Check::PayloadHash);
    }
    for offset in [start, c.len() - 1] {
        for bit in 0..8 {
            let mut t = c.clone();
            t[offset] ^= 1 << bit;
            check(&t, &keys, Check::PayloadHash);
        }
    }
}

#[test]
fn truncation_at_every_length_is_refused() {
    let c = container();
    let keys = trusted();
    let manifest_end = HEADER_LEN + manifest_len(&c);
    let signature_end = manifest_end + SIGNATURE_LEN;
    for len in 0..c.len() {
        let e = check(
            &c[..len],
            &keys,
            if len < signature_end {
                Check::Length
            } else {
                Check::PayloadSize
            },
        );
        let region = match len {
            l if l < HEADER_LEN => Region::Header,
            l if l < manifest_end => Region::Manifest,
            l if l < signature_end => Region::Signature,
            _ => Region::Payload,
        };
        match e {
            ContainerError::Truncated {
                region: r, actual, ..
            } => {
                assert_eq!((r, actual), (region, len as u64), "length {len}")
            }
            other => panic!("length {len}: {other}"),
        }
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let c = container();
    for extra in [&[0u8][..], &[0xff; 1000][..], &c[..]] {
        let mut t = c.clone();
        t.extend_from_slice(extra);
        let e = check(&t, &trusted(), Check::PayloadSize);
        assert!(matches!(e, ContainerError::TrailingBytes { .. }), "{e}");
    }
}

#[test]
fn wrong_or_untrusted_key_is_refused() {
    let c = container();
    // The signer is not trusted; another key is.
    let mut other = TrustedKeys::new();
    other
        .add("other", SigningKey::from_seed(OTHER_SEED).public_key())
        .unwrap();
    check(&c, &other, Check::KeyTrusted);
    // No key is trusted at all.
    check(&c, &TrustedKeys::new(), Check::KeyTrusted);
    // Signed by an untrusted key that claims the trusted key's id: the signature catches it.
    let forged = pack(
        &spec(Architecture::DigitsMlp),
        DIGITS,
        None,
        &SigningKey::from_seed(OTHER_SEED),
    )
    .unwrap();
    let mut forged = forged;
    forged[12..20].copy_from_slice(&key().key_id().0);
    let e = check(&forged, &trusted(), Check::Signature);
    assert_eq!(
        e,
        ContainerError::BadSignature {
            key_id: key().key_id()
        }
    );
    // A key id nobody has.
    let mut t = c.clone();
    t[12..20].copy_from_slice(&[0xaa; 8]);
    let e = check(&t, &trusted(), Check::KeyTrusted);
    assert_eq!(
        e,
        ContainerError::UntrustedKey {
            key_id: KeyId([0xaa; 8])
        }
    );
}

#[test]
fn signature_swapped_from_another_container_is_refused() {
    let a = container();
    let mut spec_b = spec(Architecture::DigitsMlp);
    spec_b.version = "1.0.1";
    let b = pack(&spec_b, DIGITS, None, &key()).unwrap();
    let (ma, mb) = (manifest_len(&a), manifest_len(&b));
    assert_eq!(ma, mb);
    let mut t = a.clone();
    let sig = HEADER_LEN + ma..HEADER_LEN + ma + SIGNATURE_LEN;
    t[sig.clone()].copy_from_slice(&b[sig]);
    check(&t, &trusted(), Check::Signature);
}

#[test]
fn signed_but_wrong_manifests_are_refused_by_their_check() {
    let keys = trusted();
    let k = key();
    let raw = |m: &Manifest<'_>, payload: &[u8]| pack_raw(m, payload, &k).unwrap();
    type Spoil = fn(&mut Manifest<'static>);
    let cases: &[(&str, Spoil, Check)] = &[
        (
            "unknown architecture",
            |m| m.architecture = "gpt-neo-125m",
            Check::Architecture,
        ),
        (
            "empty architecture",
            |m| m.architecture = "",
            Check::Architecture,
        ),
        (
            "payload hash",
            |m| m.payload_sha256[0] ^= 1,
            Check::PayloadHash,
        ),
        (
            "payload size u64::MAX",
            |m| m.payload_size = u64::MAX,
            Check::PayloadSize,
        ),
        (
            "payload size short",
            |m| m.payload_size -= 1,
            Check::PayloadSize,
        ),
        (
            "section offset u64::MAX",
            |m| m.safetensors.offset = u64::MAX,
            Check::ManifestFields,
        ),
        (
            "section size u64::MAX",
            |m| m.safetensors.size = u64::MAX,
            Check::ManifestFields,
        ),
        (
            "section short",
            |m| m.safetensors.size -= 1,
            Check::ManifestFields,
        ),
        (
            "vocab past end",
            |m| {
                m.vocab = Some(Section {
                    offset: m.safetensors.size,
                    size: 1,
                })
            },
            Check::ManifestFields,
        ),
        (
            "vocab overflow",
            |m| {
                m.vocab = Some(Section {
                    offset: m.safetensors.size,
                    size: u64::MAX,
                })
            },
            Check::ManifestFields,
        ),
        (
            "memory budget",
            |m| m.memory_budget_bytes = 16,
            Check::ManifestFields,
        ),
        (
            "cpu period 0",
            |m| {
                m.cpu_budget = CpuBudget {
                    budget_us: 0,
                    period_us: 0,
                }
            },
            Check::ManifestFields,
        ),
        (
            "cpu over period",
            |m| {
                m.cpu_budget = CpuBudget {
                    budget_us: 11,
                    period_us: 10,
                }
            },
            Check::ManifestFields,
        ),
        ("empty name", |m| m.name = "", Check::ManifestFields),
        (
            "name with newline",
            |m| m.name = "digits\n",
            Check::ManifestFields,
        ),
        (
            "tokenizer",
            |m| m.tokenizer = "bert-wordpiece-uncased",
            Check::Tokenizer,
        ),
        (
            "minilm without vocab",
            |m| {
                m.architecture = "minilm-l6-v2";
                m.tokenizer = "bert-wordpiece-uncased"
            },
            Check::Tokenizer,
        ),
    ];
    for (what, spoil, want) in cases {
        let mut m = manifest_for(DIGITS);
        spoil(&mut m);
        let e = verify(&raw(&m, DIGITS), &keys).expect_err(what);
        assert_eq!(e.check(), *want, "{what}: {e}");
    }
    // Sanity: the unspoilt manifest loads.
    verify(&raw(&manifest_for(DIGITS), DIGITS), &keys).unwrap();
}

#[test]
fn manifest_that_does_not_decode_is_refused_after_the_signature() {
    let c = container();
    let m = manifest_len(&c);
    // Re-sign a container whose manifest has one trailing byte: authentic but malformed.
    let mut signed = c[..HEADER_LEN + m].to_vec();
    signed.push(0);
    signed[20..24].copy_from_slice(&(m as u32 + 1).to_le_bytes());
    let resigned = resign(&signed, &key());
    let mut t = resigned;
    t.extend_from_slice(&c[HEADER_LEN + m + SIGNATURE_LEN..]);
    check(&t, &trusted(), Check::ManifestDecode);
}

/// Header+manifest followed by a fresh signature over them with the test key: for headers
/// and manifests that `pack_raw` cannot produce (other versions, undecodable manifests).
fn resign(signed: &[u8], key: &SigningKey) -> Vec<u8> {
    let pair = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(TEST_SEED));
    assert_eq!(*pair.pk, key.public_key());
    let mut out = signed.to_vec();
    out.extend_from_slice(&*pair.sk.sign(signed, None));
    out
}

#[test]
fn oversized_manifest_length_is_refused_before_anything_else() {
    let c = container();
    for len in [u32::MAX, MAX_MANIFEST_LEN + 1] {
        let mut t = c.clone();
        t[20..24].copy_from_slice(&len.to_le_bytes());
        let e = check(&t, &trusted(), Check::Length);
        assert!(matches!(e, ContainerError::ManifestTooLarge { .. }), "{e}");
    }
}

#[test]
fn other_version_and_flags_are_refused_even_when_signed() {
    let c = container();
    let m = manifest_len(&c);
    for (at, value, want) in [
        (8, 2u16, Check::Version),
        (8, 0, Check::Version),
        (10, 1, Check::Flags),
    ] {
        let mut signed = c[..HEADER_LEN + m].to_vec();
        signed[at..at + 2].copy_from_slice(&value.to_le_bytes());
        let mut t = resign(&signed, &key());
        t.extend_from_slice(&c[HEADER_LEN + m + SIGNATURE_LEN..]);
        check(&t, &trusted(), want);
    }
}

#[test]
fn not_a_container_is_refused_as_bad_magic() {
    check(DIGITS, &trusted(), Check::Magic);
    check(b"DAIOSMDX", &trusted(), Check::Magic);
    check(b"\x7fELF", &trusted(), Check::Magic);
    // A prefix of the magic is a truncated container.
    check(b"DAIOS", &trusted(), Check::Length);
    check(b"", &trusted(), Check::Length);
}

/// A safetensors file with the given F32 tensors (name, shape), zero-filled.
fn safetensors_file(tensors: &[(&str, &[usize], &str)]) -> Vec<u8> {
    let mut header = String::from("{");
    let mut offset = 0usize;
    for (i, (name, shape, dtype)) in tensors.iter().enumerate() {
        let size = shape.iter().product::<usize>() * 4;
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
            offset + size
        ));
        offset += size;
    }
    header.push('}');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.resize(out.len() + offset, 0);
    out
}

#[test]
fn bad_safetensors_and_tensors_are_refused_even_when_signed() {
    let keys = trusted();
    let good = [
        ("fc1.weight", &[32usize, 64][..], "F32"),
        ("fc1.bias", &[32], "F32"),
        ("fc2.weight", &[10, 32], "F32"),
        ("fc2.bias", &[10], "F32"),
    ];
    let mut huge_header = DIGITS.to_vec();
    huge_header[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, Check)> = vec![
        (
            "well-formed synthetic",
            safetensors_file(&good),
            Check::Magic, /* unused */
        ),
        ("empty payload", vec![], Check::Safetensors),
        (
            "not safetensors",
            b"hello world, this is not safetensors".to_vec(),
            Check::Safetensors,
        ),
        ("header length u64::MAX", huge_header, Check::Safetensors),
        (
            "truncated safetensors",
            DIGITS[..DIGITS.len() - 4].to_vec(),
            Check::Safetensors,
        ),
        (
            "missing tensor",
            safetensors_file(&good[..3]),
            Check::Tensors,
        ),
        (
            "wrong input width",
            safetensors_file(&[("fc1.weight", &[32, 63], "F32"), good[1], good[2], good[3]]),
            Check::Tensors,
        ),
        (
            "hidden mismatch",
            safetensors_file(&[good[0], ("fc1.bias", &[31], "F32"), good[2], good[3]]),
            Check::Tensors,
        ),
        (
            "hidden too large",
            safetensors_file(&[
                ("fc1.weight", &[1025, 64], "F32"),
                ("fc1.bias", &[1025], "F32"),
                ("fc2.weight", &[10, 1025], "F32"),
                good[3],
            ]),
            Check::Tensors,
        ),
        (
            "wrong dtype",
            safetensors_file(&[good[0], good[1], good[2], ("fc2.bias", &[10], "I32")]),
            Check::Tensors,
        ),
    ];
    for (what, payload, want) in cases {
        let c = pack_raw(&manifest_for(&payload), &payload, &key()).unwrap();
        match verify(&c, &keys) {
            Ok(_) if what == "well-formed synthetic" => {}
            Ok(_) => panic!("{what}: loaded"),
            Err(e) => assert_eq!(e.check(), want, "{what}: {e}"),
        }
    }
}

#[test]
fn minilm_container_needs_minilm_tensors_and_a_vocabulary() {
    let keys = trusted();
    // Digits weights under the MiniLM architecture: the tensor check names the first missing one.
    let vocab = b"[PAD]\n[UNK]\n";
    let payload = [DIGITS, vocab].concat();
    let mut m = manifest_for(&payload);
    m.architecture = "minilm-l6-v2";
    m.tokenizer = "bert-wordpiece-uncased";
    m.safetensors.size = DIGITS.len() as u64;
    m.vocab = Some(Section {
        offset: DIGITS.len() as u64,
        size: vocab.len() as u64,
    });
    let e = check(
        &pack_raw(&m, &payload, &key()).unwrap(),
        &keys,
        Check::Tensors,
    );
    assert_eq!(
        e,
        ContainerError::MissingTensor {
            name: "embeddings.word_embeddings.weight".into()
        }
    );
    // A vocabulary that is not UTF-8.
    let payload = [DIGITS, b"\xff\xfe\n"].concat();
    m.payload_size = payload.len() as u64;
    m.payload_sha256 = Sha256::digest(&payload).into();
    m.vocab = Some(Section {
        offset: DIGITS.len() as u64,
        size: 3,
    });
    check(
        &pack_raw(&m, &payload, &key()).unwrap(),
        &keys,
        Check::Tokenizer,
    );
    // A vocabulary under the digits architecture.
    let mut m = manifest_for(&payload);
    m.safetensors.size = DIGITS.len() as u64;
    m.vocab = Some(Section {
        offset: DIGITS.len() as u64,
        size: 3,
    });
    check(
        &pack_raw(&m, &payload, &key()).unwrap(),
        &keys,
        Check::Tokenizer,
    );
}

#[test]
fn pack_refuses_what_the_loader_would_refuse() {
    let e = pack(
        &spec(Architecture::MiniLmL6V2),
        DIGITS,
        Some(b"[PAD]\n"),
        &key(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("tensors check failed"), "{e}");
}

#[test]
fn duplicate_trusted_key_is_refused() {
    let mut keys = trusted();
    assert!(keys.add("again", key().public_key()).is_err());
    assert_eq!(keys.len(), 1);
    assert_eq!(keys.name(key().key_id()), Some("test"));
}
