//! `cargo xtask bench ai`: ai-engine vs candle on all-MiniLM-L6-v2, on the host.
//!
//! The comparison lives in its own crate (`servers/ai-engine/bench`, package `ai-bench`),
//! outside `default-members`, so `cargo test` never builds candle. This makes sure the
//! weights are cached, then runs it in release mode with one thread for both engines.

use std::process::Command;

use anyhow::{Context, ensure};

pub fn run() -> anyhow::Result<()> {
    let dir = crate::models::ensure_minilm()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["run", "--release", "--quiet", "--package", "ai-bench"])
        // Candle (rayon and its gemm) reads these once, at first use.
        .env("RAYON_NUM_THREADS", "1")
        .env("CANDLE_NUM_THREADS", "1")
        .env("DAIOS_MINILM_DIR", &dir)
        .status()
        .context("running `cargo run --release -p ai-bench`")?;
    ensure!(status.success(), "ai-bench failed: {status}");
    Ok(())
}
