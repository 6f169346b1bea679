//! ai-bench: times ai-engine against candle's BERT on all-MiniLM-L6-v2, single thread.
//!
//! Run through `cargo xtask bench ai`, which caches the weights first and sets
//! `RAYON_NUM_THREADS=1` / `CANDLE_NUM_THREADS=1` (candle reads them at first use, so they
//! must be in the environment before the process starts; this program refuses to run
//! without them). Both engines get the same token ids and the same safetensors bytes; both
//! times cover the encoder, mean pooling and L2 normalisation (not tokenisation).
//!
//! Also prints the accuracy of the f32 and int8 engines (and candle) against the PyTorch
//! reference fixture, and the engine's peak heap use beyond the weights file, measured
//! with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ai_engine::simd::Level;
use ai_engine::{Embedder, Isa};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, HiddenAct, PositionEmbeddingType};

/// The system allocator, counting live bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees carry over; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this `layout` (we forward everything).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Resets the high-water mark to the current live bytes and returns them.
fn reset_peak() -> usize {
    let live = LIVE.load(Relaxed);
    PEAK.store(live, Relaxed);
    live
}

type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        if std::env::var(var).as_deref() != Ok("1") {
            return Err(format!("set {var}=1 (run through `cargo xtask bench ai`)").into());
        }
    }
    let dir = std::env::var_os("DAIOS_MINILM_DIR")
        .map(PathBuf::from)
        .ok_or("DAIOS_MINILM_DIR is not set (run through `cargo xtask bench ai`)")?;
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/minilm-reference.json");

    let base = reset_peak();
    let model = std::fs::read(dir.join("model.safetensors"))?;
    let vocab = std::fs::read(dir.join("vocab.txt"))?;
    let weights = LIVE.load(Relaxed) - base;

    // Memory: everything the engine allocates beyond the file, at its peak, for a
    // full-length (256-token) sequence.
    let before = reset_peak();
    let mut engine = Embedder::minilm(&model, &vocab)?;
    let long = "memory ".repeat(1000);
    engine.embed(&long)?;
    let engine_peak = PEAK.load(Relaxed) - before;
    let engine_live = LIVE.load(Relaxed) - before;
    let owned = engine.model.owned_weight_bytes();
    let scratch = engine.scratch_bytes();

    let before = reset_peak();
    let int8 = engine.model.quantized_int8()?;
    let mut engine_i8 = Embedder::new(engine.tokenizer.clone(), int8)?;
    engine_i8.embed(&long)?;
    let int8_peak = PEAK.load(Relaxed) - before;

    let sse2 = Isa::new(Level::Sse2).ok_or("no SSE2")?;
    let mut engine_sse2 = Embedder::new(engine.tokenizer.clone(), engine.model.clone().with_isa(sse2))?;

    let device = Device::Cpu;
    let vb = VarBuilder::from_slice_safetensors(&model, DType::F32, &device)?;
    let candle = BertModel::load(vb, &minilm_config())?;

    println!("ai-engine vs candle 0.11 (all-MiniLM-L6-v2, F32, 1 thread)");
    println!("engine ISA: {:?}", engine.model.isa().level());
    println!();
    println!(
        "{:>6} | {:>12} | {:>12} | {:>12} | {:>10} | {:>12}",
        "tokens", "engine ms", "engine SSE2", "engine int8", "candle ms", "engine/candle"
    );
    for n in [16usize, 128] {
        let ids = ids_of_len(&engine, n);
        let t_engine = time(|| {
            engine.embed_ids(&ids).unwrap();
        });
        let t_sse2 = time(|| {
            engine_sse2.embed_ids(&ids).unwrap();
        });
        let t_i8 = time(|| {
            engine_i8.embed_ids(&ids).unwrap();
        });
        let t_candle = time(|| {
            candle_embed(&candle, &device, &ids).unwrap();
        });
        println!(
            "{n:>6} | {:>12.2} | {:>12.2} | {:>12.2} | {:>10.2} | {:>11.2}x",
            ms(t_engine),
            ms(t_sse2),
            ms(t_i8),
            ms(t_candle),
            ms(t_engine) / ms(t_candle)
        );
    }

    println!();
    println!("accuracy vs PyTorch reference ({}), 8 sentences:", fixture.display());
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&fixture)?)?;
    let sentences = json["sentences"].as_array().ok_or("fixture without sentences")?;
    let mut rows: Vec<(&str, Vec<(f32, f32)>)> =
        vec![("engine f32", vec![]), ("engine int8", vec![]), ("candle f32", vec![])];
    for s in sentences {
        let text = s["text"].as_str().ok_or("text")?;
        let want: Vec<f32> = s["embedding"]
            .as_array()
            .ok_or("embedding")?
            .iter()
            .filter_map(|v| v.as_f64().map(|v| v as f32))
            .collect();
        let ids = engine.tokenizer.encode(text);
        rows[0].1.push(compare(&engine.embed(text)?, &want));
        rows[1].1.push(compare(&engine_i8.embed(text)?, &want));
        rows[2].1.push(compare(&candle_embed(&candle, &device, &ids)?, &want));
    }
    for (name, r) in &rows {
        let min_cos = r.iter().map(|c| c.0).fold(f32::INFINITY, f32::min);
        let mean_cos = r.iter().map(|c| c.0).sum::<f32>() / r.len() as f32;
        let max_diff = r.iter().map(|c| c.1).fold(0.0, f32::max);
        println!("  {name:<12} cosine min {min_cos:.7} mean {mean_cos:.7}, max |diff| {max_diff:.2e}");
    }

    println!();
    println!("memory (heap, counted by the global allocator):");
    println!("  weights (model.safetensors + vocab.txt, read into memory): {:.1} MB", mb(weights));
    println!(
        "  engine beyond the weights, peak over load + one 256-token embedding: {:.2} MB \
         (live after: {:.2} MB; of which scratch {:.2} MB, copied biases/norms {:.2} MB)",
        mb(engine_peak),
        mb(engine_live),
        mb(scratch),
        mb(owned)
    );
    println!(
        "  int8 option, extra peak for quantising + one 256-token embedding: {:.2} MB \
         (int8 weights + scales + copies {:.2} MB)",
        mb(int8_peak),
        mb(engine_i8.model.owned_weight_bytes())
    );
    Ok(())
}

fn minilm_config() -> Config {
    Config {
        vocab_size: 30522,
        hidden_size: 384,
        num_hidden_layers: 6,
        num_attention_heads: 12,
        intermediate_size: 1536,
        hidden_act: HiddenAct::Gelu,
        hidden_dropout_prob: 0.1,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        initializer_range: 0.02,
        layer_norm_eps: 1e-12,
        pad_token_id: 0,
        position_embedding_type: PositionEmbeddingType::Absolute,
        use_cache: true,
        classifier_dropout: None,
        model_type: Some("bert".into()),
    }
}

/// Candle's forward + the same mean pooling and L2 normalisation.
fn candle_embed(model: &BertModel, device: &Device, ids: &[u32]) -> candle_core::Result<Vec<f32>> {
    let input = Tensor::new(ids, device)?.unsqueeze(0)?;
    let types = input.zeros_like()?;
    let hidden = model.forward(&input, &types, None)?;
    let pooled = hidden.mean(1)?;
    let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?;
    pooled.broadcast_div(&norm)?.squeeze(0)?.to_vec1::<f32>()
}

/// `[CLS]`, `n - 2` word pieces of ordinary text, `[SEP]`.
fn ids_of_len(e: &Embedder<'_>, n: usize) -> Vec<u32> {
    let text = "Capability-based microkernels confine every driver and model to exactly the \
                authority it was granted, which makes on-device inference auditable. ";
    let pieces: Vec<u32> = e.tokenizer.encode(text).into_iter().skip(1).filter(|&t| t != 102).collect();
    let mut ids = vec![101];
    ids.extend(pieces.iter().cycle().take(n - 2));
    ids.push(102);
    ids
}

/// Median of many runs after a warm-up (at least 20 runs and 2 s, at most 1000 runs).
fn time(mut f: impl FnMut()) -> Duration {
    for _ in 0..5 {
        f();
    }
    let mut runs = Vec::new();
    let start = Instant::now();
    while runs.len() < 1000 && (runs.len() < 20 || start.elapsed() < Duration::from_secs(2)) {
        let t = Instant::now();
        f();
        runs.push(t.elapsed());
    }
    runs.sort();
    runs[runs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}

/// (cosine similarity, max absolute difference).
fn compare(a: &[f32], b: &[f32]) -> (f32, f32) {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    (dot / (na * nb), diff)
}
