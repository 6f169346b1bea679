//! `cargo xtask bench ai`: ai-engine vs ONNX Runtime and candle on all-MiniLM-L6-v2, on the host.
//!
//! The comparison lives in its own crate (`servers/ai-engine/bench`, package `ai-bench`),
//! outside `default-members`, so `cargo test` never builds candle. This makes sure the
//! weights are cached and that a Python with the ONNX Runtime peer's packages exists, then
//! runs the bench in release mode with one thread for every engine.
//!
//! The peer's packages live in a venv under `target/ai-bench-venv` (created with the host's
//! `python3 -m venv`, filled from PyPI with pip, pinned below); nothing outside the checkout
//! is installed or needed afterwards. The bench merges its figures into
//! `target/bench/report.json` under the key `"ai"`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};

/// The ONNX Runtime peer's Python packages (ORT's CPU wheel, the graph builder, arrays).
const PEER_PACKAGES: [&str; 3] = ["onnxruntime==1.32.0", "onnx==1.23.2", "numpy==2.4.6"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `target/ai-bench-venv/bin/python`, created and filled if it cannot import the peer's
/// packages.
fn ensure_peer_python() -> anyhow::Result<PathBuf> {
    let venv = workspace_root().join("target").join("ai-bench-venv");
    let python = venv.join("bin").join("python");
    let ok = |p: &Path| {
        Command::new(p)
            .args(["-c", "import onnxruntime, onnx, numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok(&python) {
        return Ok(python);
    }
    if !python.exists() {
        eprintln!("xtask bench ai: creating {}", venv.display());
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .context("running `python3 -m venv` (is python3 installed?)")?;
        ensure!(status.success(), "python3 -m venv failed: {status}");
    }
    eprintln!("xtask bench ai: installing {} from PyPI", PEER_PACKAGES.join(" "));
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--only-binary=:all:"])
        .args(PEER_PACKAGES)
        .status()
        .context("running pip in the bench venv")?;
    ensure!(status.success(), "pip install of the ONNX Runtime peer failed: {status}");
    ensure!(ok(&python), "{} still cannot import onnxruntime, onnx, numpy", python.display());
    Ok(python)
}

pub fn run() -> anyhow::Result<()> {
    let dir = crate::models::ensure_minilm()?;
    let python = ensure_peer_python()?;
    let target = workspace_root().join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["run", "--release", "--quiet", "--package", "ai-bench"])
        // Candle (rayon and its gemm) reads these once, at first use.
        .env("RAYON_NUM_THREADS", "1")
        .env("CANDLE_NUM_THREADS", "1")
        // ONNX Runtime gets intra_op_num_threads = 1 from the peer itself; this keeps
        // OpenMP-style pools in its dependencies to one thread too.
        .env("OMP_NUM_THREADS", "1")
        .env("DAIOS_MINILM_DIR", &dir)
        .env("DAIOS_ORT_PYTHON", &python)
        .env("DAIOS_ORT_WORK", target.join("bench").join("ort"))
        .env("DAIOS_AI_REPORT", target.join("bench").join("report.json"))
        .status()
        .context("running `cargo run --release -p ai-bench`")?;
    ensure!(status.success(), "ai-bench failed: {status}");
    Ok(())
}
