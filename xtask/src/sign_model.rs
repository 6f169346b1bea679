//! `cargo xtask sign-model`: pack a model into a signed container, or verify one.
//!
//! Packing reads the safetensors file (and the vocabulary, for MiniLM), builds the manifest,
//! signs it with a private key (by default the development key, `keys/dev-signing.key`), runs
//! the loader on the result, and checks that the output holds no private key. Which public
//! keys a loader trusts is configuration: `keys/trusted.toml`, public keys only, which the
//! build embeds into the OS. The boot-image packer calls [`assert_no_private_keys`] on what it
//! packs, so no private key file can ride along.
//!
//! Key files: `#` comment lines and one line with the 32-byte Ed25519 seed in hex.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use model_container::{
    Architecture, CpuBudget, ModelSpec, SigningKey, TrustedKeys, VerifiedModel, pack, verify,
};

/// Pack a model into a signed container (or, with --verify, check one).
///
/// With no arguments, signs the bundled digits classifier with the development key into
/// target/models/digits-mlp-1.0.0.model.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  cargo xtask sign-model
  cargo xtask sign-model --arch minilm-l6-v2 --safetensors model.safetensors --vocab vocab.txt
  cargo xtask sign-model --verify target/models/digits-mlp-1.0.0.model
  cargo xtask sign-model --show-key")]
pub struct Args {
    /// Model architecture.
    #[arg(long, value_enum, default_value = "digits-mlp")]
    arch: Arch,
    /// Model name in the manifest [default: the architecture's name].
    #[arg(long)]
    name: Option<String>,
    /// Model version in the manifest.
    #[arg(long, default_value = "1.0.0")]
    version: String,
    /// Safetensors weights [default for digits-mlp: models/digits/digits-mlp.safetensors].
    #[arg(long)]
    safetensors: Option<PathBuf>,
    /// Vocabulary, one token per line (required for minilm-l6-v2, refused for digits-mlp).
    #[arg(long)]
    vocab: Option<PathBuf>,
    /// Memory the model may use, bytes; K, M, G suffixes are powers of 1024
    /// [default: 1M for digits-mlp, 256M for minilm-l6-v2].
    #[arg(long, value_parser = parse_size)]
    memory_budget: Option<u64>,
    /// CPU budget as BUDGET_US/PERIOD_US, e.g. 1000/10000 for 10 %
    /// [default: 1000/10000 for digits-mlp, 50000/100000 for minilm-l6-v2].
    #[arg(long, value_parser = parse_cpu_budget)]
    cpu_budget: Option<CpuBudget>,
    /// Private signing key file [default: keys/dev-signing.key, the development key].
    #[arg(long)]
    key: Option<PathBuf>,
    /// Trusted public keys the output is checked against [default: keys/trusted.toml].
    #[arg(long)]
    trusted: Option<PathBuf>,
    /// Output container [default: target/models/NAME-VERSION.model].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Verify this container against the trusted keys and print its manifest; sign nothing.
    #[arg(long, value_name = "CONTAINER")]
    verify: Option<PathBuf>,
    /// Print the signing key's public key and id (the line to add to trusted.toml); sign nothing.
    #[arg(long)]
    show_key: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Arch {
    #[value(name = "digits-mlp")]
    DigitsMlp,
    #[value(name = "minilm-l6-v2")]
    MiniLmL6V2,
}

impl From<Arch> for Architecture {
    fn from(a: Arch) -> Architecture {
        match a {
            Arch::DigitsMlp => Architecture::DigitsMlp,
            Arch::MiniLmL6V2 => Architecture::MiniLmL6V2,
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// The development key's file.
pub fn dev_key_path() -> PathBuf {
    root().join("keys/dev-signing.key")
}

/// The trusted-keys configuration the build embeds.
pub fn trusted_keys_path() -> PathBuf {
    root().join("keys/trusted.toml")
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let trusted_path = args.trusted.clone().unwrap_or_else(trusted_keys_path);
    if let Some(container) = &args.verify {
        let trusted = load_trusted_keys(&trusted_path)?;
        let bytes =
            fs::read(container).with_context(|| format!("reading {}", container.display()))?;
        let model = verify(&bytes, &trusted)
            .map_err(|e| anyhow::anyhow!("{}: {e}", container.display()))?;
        print_model(&model, &trusted);
        return Ok(());
    }
    let key_path = args.key.clone().unwrap_or_else(dev_key_path);
    let key = load_signing_key(&key_path)?;
    if args.show_key {
        println!("public_key = \"{}\"", hex(&key.public_key()));
        println!("key_id = \"{}\"", key.key_id());
        return Ok(());
    }

    let arch = Architecture::from(args.arch);
    let (default_memory, default_cpu) = match arch {
        Architecture::DigitsMlp => (
            1 << 20,
            CpuBudget {
                budget_us: 1_000,
                period_us: 10_000,
            },
        ),
        Architecture::MiniLmL6V2 => (
            256 << 20,
            CpuBudget {
                budget_us: 50_000,
                period_us: 100_000,
            },
        ),
    };
    let safetensors_path = match (&args.safetensors, arch) {
        (Some(p), _) => p.clone(),
        (None, Architecture::DigitsMlp) => root().join("models/digits/digits-mlp.safetensors"),
        (None, Architecture::MiniLmL6V2) => bail!("--safetensors is required for minilm-l6-v2"),
    };
    let safetensors = fs::read(&safetensors_path)
        .with_context(|| format!("reading {}", safetensors_path.display()))?;
    let vocab = match &args.vocab {
        Some(p) => Some(fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let name = args.name.clone().unwrap_or_else(|| arch.name().to_owned());
    let spec = ModelSpec {
        name: &name,
        version: &args.version,
        architecture: arch,
        memory_budget_bytes: args.memory_budget.unwrap_or(default_memory),
        cpu_budget: args.cpu_budget.unwrap_or(default_cpu),
    };
    let container = pack(&spec, &safetensors, vocab.as_deref(), &key)
        .map_err(|e| anyhow::anyhow!("packing {}: {e}", safetensors_path.display()))?;

    let out = args.out.clone().unwrap_or_else(|| {
        root()
            .join("target/models")
            .join(format!("{name}-{}.model", args.version))
    });
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(&out, &container).with_context(|| format!("writing {}", out.display()))?;
    // The container must not carry the key that signed it, nor any other private key here.
    check_no_secrets(&[&out], &private_key_seeds(Some(&key_path))?)?;

    println!(
        "wrote {} ({} bytes), signed by key {}",
        out.display(),
        container.len(),
        key.key_id()
    );
    match load_trusted_keys(&trusted_path) {
        Ok(trusted) if trusted.name(key.key_id()).is_some() => {
            let model = verify(&container, &trusted).map_err(|e| anyhow::anyhow!("{e}"))?;
            print_model(&model, &trusted);
        }
        Ok(_) => eprintln!(
            "note: key {} is not in {}: loaders configured with it will refuse this container",
            key.key_id(),
            trusted_path.display()
        ),
        Err(e) => eprintln!(
            "note: could not check against {}: {e:#}",
            trusted_path.display()
        ),
    }
    Ok(())
}

fn print_model(model: &VerifiedModel<'_>, trusted: &TrustedKeys) {
    let m = model.manifest();
    println!(
        "verified: {} {} ({}, tokenizer {}), payload {} bytes, sha256 {}",
        m.name,
        m.version,
        model.architecture().name(),
        m.tokenizer,
        m.payload_size,
        hex(&m.payload_sha256)
    );
    println!(
        "  budget: {} bytes memory, {}/{} us CPU; signed by {} ({})",
        m.memory_budget_bytes,
        m.cpu_budget.budget_us,
        m.cpu_budget.period_us,
        model.key_id(),
        trusted.name(model.key_id()).unwrap_or("?")
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> anyhow::Result<[u8; N]> {
    let text = text.trim();
    ensure!(
        text.len() == 2 * N && text.is_ascii(),
        "expected {} hex digits, got {:?}",
        2 * N,
        text
    );
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .with_context(|| format!("not hex: {text:?}"))?;
    }
    Ok(out)
}

/// The 32-byte seed in a key file.
fn read_seed(path: &Path) -> anyhow::Result<[u8; 32]> {
    let text =
        fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))?;
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let (Some(line), None) = (lines.next(), lines.next()) else {
        bail!(
            "{}: expected exactly one non-comment line (the hex seed)",
            path.display()
        );
    };
    unhex(line).with_context(|| format!("key {}", path.display()))
}

/// Loads a private signing key file.
pub fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    Ok(SigningKey::from_seed(read_seed(path)?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedFile {
    #[serde(default)]
    key: Vec<TrustedEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedEntry {
    name: String,
    public_key: String,
    /// Optional, informational; checked against the key when present.
    key_id: Option<String>,
}

/// Reads a trusted-keys file (`[[key]]` tables with `name`, `public_key` in hex, and
/// optionally `key_id`, which must then match the key). The file is embedded in the OS, so
/// it is refused if it holds a private key.
pub fn load_trusted_keys(path: &Path) -> anyhow::Result<TrustedKeys> {
    Ok(trusted_key_list(path)?.1)
}

/// The trusted keys of `path` (see [`load_trusted_keys`]) as the boot manifest records
/// them, with the loader's own view of them.
pub fn trusted_key_list(path: &Path) -> anyhow::Result<(Vec<manifest::TrustedKey>, TrustedKeys)> {
    assert_no_private_keys(&[path])?;
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: TrustedFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut keys = TrustedKeys::new();
    let mut list = Vec::new();
    for entry in file.key {
        let public_key: [u8; 32] = unhex(&entry.public_key)
            .with_context(|| format!("{}: key {:?}", path.display(), entry.name))?;
        list.push(manifest::TrustedKey { name: entry.name.clone(), public_key });
        let id = keys
            .add(&entry.name, public_key)
            .map_err(|e| anyhow::anyhow!("{}: key {:?}: {e}", path.display(), entry.name))?;
        if let Some(claimed) = entry.key_id {
            ensure!(
                claimed == id.to_string(),
                "{}: key {:?} says key_id {claimed}, its public key has id {id}",
                path.display(),
                entry.name
            );
        }
    }
    Ok((list, keys))
}

/// The files xtask makes for the boot image, by initrd path; `None` for any other path.
///
/// - `models/digits-mlp.model`, `models/minilm-l6-v2.model` (fetched by `cargo xtask
///   models`): the bundled weights signed with the development key. The memory each claims
///   is what its sandbox's heap must give beyond the mapped weights; the AI server refuses a
///   claim the manifest's heap does not cover.
/// - `models/digits-heldout.bin`: the digits model's held-out split (`models/digits/README.md`).
/// - `models/minilm-reference.bin`: the first three sentences of the PyTorch reference
///   (`servers/ai-engine/tests/fixtures/minilm-reference.json`) for a client in the OS:
///   `MINIREF1`, a u32 count, then per sentence its text, token ids and embedding, each a
///   u32 count followed by bytes, u32s or f32s (all little-endian).
/// - `models/tampered/NAME.model`: the digits container spoilt one way each, for the tests
///   that the AI server refuses them by the named check: `flipped-weights` (a payload bit:
///   "payload hash"), `flipped-manifest` (a signed manifest bit: "signature"),
///   `swapped-signature` (another container's valid signature: "signature"),
///   `untrusted-key` (signed by a key not in trusted.toml: "trusted key") and `over-budget`
///   (validly signed, but claiming 64 MiB: "memory budget").
pub fn bundled_file(path: &str) -> anyhow::Result<Option<Vec<u8>>> {
    const DIGITS_BUDGET: u64 = 256 << 10;
    let dev = || load_signing_key(&dev_key_path());
    Ok(Some(match path {
        "models/digits-mlp.model" => digits_container(DIGITS_BUDGET, &dev()?)?,
        "models/minilm-l6-v2.model" => {
            let dir = crate::models::ensure_minilm()?;
            let read = |name: &str| fs::read(dir.join(name)).with_context(|| format!("reading {}/{name}", dir.display()));
            let (weights, vocab) = (read("model.safetensors")?, read("vocab.txt")?);
            let spec = ModelSpec {
                name: "minilm-l6-v2",
                version: "1.0.0",
                architecture: Architecture::MiniLmL6V2,
                // The mapped payload, and 12 MiB of tokenizer tables and activation scratch
                // for 256 tokens (servers/ai-engine/README.md measures about 6 MB of scratch).
                memory_budget_bytes: (weights.len() + vocab.len()) as u64 + (12 << 20),
                cpu_budget: CpuBudget { budget_us: 50_000, period_us: 100_000 },
            };
            pack(&spec, &weights, Some(&vocab), &dev()?)
                .map_err(|e| anyhow::anyhow!("packing {path}: {e}"))?
        }
        "models/digits-heldout.bin" => {
            let file = root().join("models/digits/heldout.bin");
            fs::read(&file).with_context(|| format!("reading {}", file.display()))?
        }
        "models/minilm-reference.bin" => minilm_reference(3)?,
        "models/tampered/flipped-weights.model" => {
            let mut container = digits_container(DIGITS_BUDGET, &dev()?)?;
            if let Some(last) = container.last_mut() {
                *last ^= 1;
            }
            container
        }
        "models/tampered/flipped-manifest.model" => {
            let mut container = digits_container(DIGITS_BUDGET, &dev()?)?;
            container[model_container::format::HEADER_LEN] ^= 1;
            container
        }
        "models/tampered/swapped-signature.model" => {
            let mut container = digits_container(DIGITS_BUDGET, &dev()?)?;
            let other = digits_container(64 << 20, &dev()?)?;
            let at = |c: &[u8]| {
                let manifest_len = u32::from_le_bytes([c[20], c[21], c[22], c[23]]) as usize;
                model_container::format::HEADER_LEN + manifest_len
            };
            let (mine, theirs) = (at(&container), at(&other));
            let len = model_container::format::SIGNATURE_LEN;
            container[mine..mine + len].copy_from_slice(&other[theirs..theirs + len]);
            container
        }
        "models/tampered/untrusted-key.model" => digits_container(DIGITS_BUDGET, &SigningKey::from_seed([7; 32]))?,
        "models/tampered/over-budget.model" => digits_container(64 << 20, &dev()?)?,
        _ => return Ok(None),
    }))
}

/// The first `count` sentences of the MiniLM reference fixture, in the format
/// [`bundled_file`] describes.
fn minilm_reference(count: usize) -> anyhow::Result<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Fixture {
        sentences: Vec<Sentence>,
    }
    #[derive(serde::Deserialize)]
    struct Sentence {
        text: String,
        input_ids: Vec<u32>,
        embedding: Vec<f32>,
    }
    let path = root().join("servers/ai-engine/tests/fixtures/minilm-reference.json");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let fixture: Fixture = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    ensure!(fixture.sentences.len() >= count, "{} has fewer than {count} sentences", path.display());
    let mut out = b"MINIREF1".to_vec();
    out.extend((count as u32).to_le_bytes());
    for sentence in fixture.sentences.iter().take(count) {
        out.extend((sentence.text.len() as u32).to_le_bytes());
        out.extend(sentence.text.as_bytes());
        out.extend((sentence.input_ids.len() as u32).to_le_bytes());
        out.extend(sentence.input_ids.iter().flat_map(|id| id.to_le_bytes()));
        out.extend((sentence.embedding.len() as u32).to_le_bytes());
        out.extend(sentence.embedding.iter().flat_map(|x| x.to_le_bytes()));
    }
    Ok(out)
}

/// The bundled digits classifier, claiming `memory_budget_bytes`, signed with `key`.
fn digits_container(memory_budget_bytes: u64, key: &SigningKey) -> anyhow::Result<Vec<u8>> {
    let file = root().join("models/digits/digits-mlp.safetensors");
    let weights = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let spec = ModelSpec {
        name: "digits-mlp",
        version: "1.0.0",
        architecture: Architecture::DigitsMlp,
        memory_budget_bytes,
        cpu_budget: CpuBudget { budget_us: 1_000, period_us: 10_000 },
    };
    pack(&spec, &weights, None, key).map_err(|e| anyhow::anyhow!("packing the digits model: {e}"))
}

/// The seeds of every private key file in keys/ (`*.key`), plus `extra`.
fn private_key_seeds(extra: Option<&Path>) -> anyhow::Result<Vec<[u8; 32]>> {
    let mut seeds = Vec::new();
    let dir = root().join("keys");
    if dir.is_dir() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "key") {
                seeds.push(read_seed(&path)?);
            }
        }
    }
    if let Some(path) = extra {
        seeds.push(read_seed(path)?);
    }
    Ok(seeds)
}

/// Fails if any file under `paths` (files, or directories walked recursively) contains a
/// private key: the seed of any `keys/*.key` file, raw or in hex of either case, or the marker
/// text "PRIVATE KEY". The boot-image packer calls this on everything it packs.
pub fn assert_no_private_keys(paths: &[&Path]) -> anyhow::Result<()> {
    check_no_secrets(paths, &private_key_seeds(None)?)
}

fn check_no_secrets(paths: &[&Path], seeds: &[[u8; 32]]) -> anyhow::Result<()> {
    let mut needles: Vec<(Vec<u8>, &str)> =
        vec![(b"PRIVATE KEY".to_vec(), "the text \"PRIVATE KEY\"")];
    for seed in seeds {
        needles.push((seed.to_vec(), "a private key seed (raw bytes)"));
        needles.push((hex(seed).into_bytes(), "a private key seed (hex)"));
        needles.push((
            hex(seed).to_uppercase().into_bytes(),
            "a private key seed (hex)",
        ));
    }
    let mut stack: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in
                fs::read_dir(&path).with_context(|| format!("listing {}", path.display()))?
            {
                stack.push(entry?.path());
            }
            continue;
        }
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        for (needle, what) in &needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_slice()) {
                bail!(
                    "{} contains {what}: private keys must never be packed",
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// `123`, `64K`, `1M`, `2G` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.trim().as_bytes().last() {
        Some(b'K' | b'k') => (&text[..text.len() - 1], 10),
        Some(b'M' | b'm') => (&text[..text.len() - 1], 20),
        Some(b'G' | b'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|e| format!("{text:?}: {e}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// `BUDGET_US/PERIOD_US`.
fn parse_cpu_budget(text: &str) -> Result<CpuBudget, String> {
    let (budget, period) = text.split_once('/').ok_or("expected BUDGET_US/PERIOD_US")?;
    let budget_us: u64 = budget.trim().parse().map_err(|e| format!("budget: {e}"))?;
    let period_us: u64 = period.trim().parse().map_err(|e| format!("period: {e}"))?;
    if budget_us == 0 || budget_us > period_us {
        return Err("need 0 < BUDGET_US <= PERIOD_US".into());
    }
    Ok(CpuBudget {
        budget_us,
        period_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_key_is_trusted_and_trusted_toml_holds_no_private_key() {
        let key = load_signing_key(&dev_key_path()).unwrap();
        let trusted = load_trusted_keys(&trusted_keys_path()).unwrap();
        assert_eq!(trusted.name(key.key_id()), Some("development"));
        assert_no_private_keys(&[&trusted_keys_path()]).unwrap();
    }

    #[test]
    fn private_key_files_are_refused() {
        // The key file itself, and a copy of its seed in hex inside another file.
        let err = assert_no_private_keys(&[&dev_key_path()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("private keys must never be packed"),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("xtask-keys-{}", std::process::id()));
        fs::create_dir_all(dir.join("sub")).unwrap();
        let seed = read_seed(&dev_key_path()).unwrap();
        fs::write(
            dir.join("sub/config.txt"),
            format!("x = {}\n", hex(&seed).to_uppercase()),
        )
        .unwrap();
        let err = assert_no_private_keys(&[&dir]).unwrap_err();
        assert!(err.to_string().contains("seed (hex)"), "{err}");
        fs::write(
            dir.join("sub/config.txt"),
            [&b"abc"[..], &seed[..]].concat(),
        )
        .unwrap();
        let err = assert_no_private_keys(&[&dir]).unwrap_err();
        assert!(err.to_string().contains("raw bytes"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bundled_digits_model_signs_and_verifies_against_the_trusted_config() {
        let out = std::env::temp_dir().join(format!("xtask-digits-{}.model", std::process::id()));
        let args = Args {
            arch: Arch::DigitsMlp,
            name: None,
            version: "1.0.0".into(),
            safetensors: None,
            vocab: None,
            memory_budget: None,
            cpu_budget: None,
            key: None,
            trusted: None,
            out: Some(out.clone()),
            verify: None,
            show_key: false,
        };
        run(args).unwrap();
        let bytes = fs::read(&out).unwrap();
        let trusted = load_trusted_keys(&trusted_keys_path()).unwrap();
        let model = verify(&bytes, &trusted).unwrap();
        assert_eq!(model.architecture(), Architecture::DigitsMlp);
        assert_eq!(model.manifest().memory_budget_bytes, 1 << 20);
        fs::remove_file(&out).unwrap();
    }

    #[test]
    fn budgets_parse() {
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("3"), Ok(3));
        assert!(parse_size("99999999999G").is_err());
        assert_eq!(
            parse_cpu_budget("1/2"),
            Ok(CpuBudget {
                budget_us: 1,
                period_us: 2
            })
        );
        assert!(parse_cpu_budget("3/2").is_err());
        assert!(parse_cpu_budget("0/2").is_err());
    }

    #[test]
    fn trusted_key_id_must_match() {
        let dir = std::env::temp_dir().join(format!("xtask-trusted-{}.toml", std::process::id()));
        let key = load_signing_key(&dev_key_path()).unwrap();
        fs::write(
            &dir,
            format!(
                "[[key]]\nname = \"x\"\npublic_key = \"{}\"\nkey_id = \"0000000000000000\"\n",
                hex(&key.public_key())
            ),
        )
        .unwrap();
        assert!(load_trusted_keys(&dir).is_err());
        fs::remove_file(&dir).unwrap();
    }
}
