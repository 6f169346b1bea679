//! ai-bench: times ai-engine against ONNX Runtime and candle on all-MiniLM-L6-v2, single thread.
//!
//! Run through `cargo xtask bench ai`, which caches the weights first and sets
//! `RAYON_NUM_THREADS=1` / `CANDLE_NUM_THREADS=1` (candle reads them at first use, so they
//! must be in the environment before the process starts; this program refuses to run
//! without them). Both engines get the same token ids and the same safetensors bytes; both
//! times cover the encoder, mean pooling and L2 normalisation (not tokenisation).
//!
//! ONNX Runtime is the main peer: `ort_peer.py` (run with the Python interpreter xtask set
//! up in `target/ai-bench-venv`, `DAIOS_ORT_PYTHON`) builds the same model as an ONNX graph
//! from the same safetensors file, checks it against the reference fixture before timing,
//! and times `session.run` at one intra-op thread, f32 and dynamically quantised int8. All
//! contestants take turns in interleaved rounds; the table shows medians and engine/ORT
//! ratios, and `DAIOS_AI_REPORT` (xtask: `target/bench/report.json`, key `"ai"`) gets them.
//!
//! Also prints the accuracy of the f32 and int8 engines (and candle, ORT) against the PyTorch
//! reference fixture, int8 against ORT f32 on a larger set of sentences, and the engine's peak heap use beyond the weights file, measured
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
    let avx2 = Isa::new(Level::Avx2Fma).ok_or("no AVX2")?;
    let mut engine_avx2 = Embedder::new(engine.tokenizer.clone(), engine.model.clone().with_isa(avx2))?;

    let device = Device::Cpu;
    let vb = VarBuilder::from_slice_safetensors(&model, DType::F32, &device)?;
    let candle = BertModel::load(vb, &minilm_config())?;

    let mut ort = OrtPeer::start(&dir, &fixture)?;

    println!(
        "ai-engine vs ONNX Runtime {} (CPU EP) and candle 0.11 (all-MiniLM-L6-v2, 1 thread each)",
        ort.hello["ort_version"].as_str().unwrap_or("?")
    );
    println!(
        "engine ISA: {:?} (best this CPU has; AVX2 and SSE2 columns: the same f32 engine at those levels)",
        engine.model.isa().level()
    );
    println!(
        "default: f32 (Embedder::minilm), because it matches the reference to cosine 0.9999999; \
         int8 (Bert::quantized_int8; u8 x i8 with VNNI where the CPU has it) is faster but \
         costs accuracy (below), so the caller opts in"
    );
    println!();
    println!(
        "{:>6} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9} | {:>9} | {:>10} | {:>9}",
        "tokens", "engine ms", "AVX2", "SSE2", "int8", "ORT f32", "ORT int8", "candle", "eng/ORT", "i8/ORT-i8", "eng/cndl"
    );
    let mut table = Vec::new();
    for n in [16usize, 128] {
        let ids = ids_of_len(&engine, n);
        let ids_c = ids.clone();
        let ort_cell = std::cell::RefCell::new(&mut ort);
        let mut contestants: Vec<(&str, Timer<'_>)> = vec![
            ("engine_f32", Box::new(|k| time_local(k, || {
                engine.embed_ids(&ids).unwrap();
            }))),
            ("engine_avx2", Box::new(|k| time_local(k, || {
                engine_avx2.embed_ids(&ids).unwrap();
            }))),
            ("engine_sse2", Box::new(|k| time_local(k, || {
                engine_sse2.embed_ids(&ids).unwrap();
            }))),
            ("engine_int8", Box::new(|k| time_local(k, || {
                engine_i8.embed_ids(&ids).unwrap();
            }))),
            ("candle_f32", Box::new(|k| time_local(k, || {
                candle_embed(&candle, &device, &ids_c).unwrap();
            }))),
        ];
        contestants.push(("ort_f32", Box::new(|k| ort_cell.borrow_mut().time("f32", &ids, k).unwrap())));
        contestants.push(("ort_int8", Box::new(|k| ort_cell.borrow_mut().time("int8", &ids, k).unwrap())));
        let medians = time_interleaved(&mut contestants);
        drop(contestants);
        let get = |name: &str| medians.iter().find(|m| m.0 == name).map_or(f64::NAN, |m| ms(m.1));
        println!(
            "{n:>6} | {:>9.2} | {:>9.2} | {:>9.2} | {:>9.2} | {:>9.2} | {:>9.2} | {:>9.2} | {:>8.2}x | {:>9.2}x | {:>8.2}x",
            get("engine_f32"),
            get("engine_avx2"),
            get("engine_sse2"),
            get("engine_int8"),
            get("ort_f32"),
            get("ort_int8"),
            get("candle_f32"),
            get("engine_f32") / get("ort_f32"),
            get("engine_int8") / get("ort_int8"),
            get("engine_f32") / get("candle_f32"),
        );
        let mut row = serde_json::Map::new();
        row.insert("tokens".into(), n.into());
        for (name, d) in &medians {
            row.insert(format!("{name}_ms"), ms(*d).into());
        }
        row.insert("ratio_engine_over_ort_f32".into(), (get("engine_f32") / get("ort_f32")).into());
        row.insert("ratio_engine_int8_over_ort_int8".into(), (get("engine_int8") / get("ort_int8")).into());
        row.insert("ratio_engine_int8_over_ort_f32".into(), (get("engine_int8") / get("ort_f32")).into());
        row.insert("ratio_engine_over_candle".into(), (get("engine_f32") / get("candle_f32")).into());
        table.push(serde_json::Value::Object(row));
    }
    println!("(medians of {ROUNDS} interleaved rounds of ~{ROUND_MS} ms per contestant, after warm-up)");

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
    let mut accuracy = serde_json::Map::new();
    for (name, r) in &rows {
        let min_cos = r.iter().map(|c| c.0).fold(f32::INFINITY, f32::min);
        let mean_cos = r.iter().map(|c| c.0).sum::<f32>() / r.len() as f32;
        let max_diff = r.iter().map(|c| c.1).fold(0.0, f32::max);
        println!("  {name:<12} cosine min {min_cos:.7} mean {mean_cos:.7}, max |diff| {max_diff:.2e}");
        accuracy.insert(
            name.replace(' ', "_"),
            serde_json::json!({"min_cos": min_cos, "mean_cos": mean_cos, "max_diff": max_diff}),
        );
    }
    for peer in ["f32", "int8"] {
        let a = &ort.hello[peer];
        let (min_cos, mean_cos, max_diff) =
            (a["min_cos"].as_f64().unwrap_or(f64::NAN), a["mean_cos"].as_f64().unwrap_or(f64::NAN), a["max_diff"].as_f64().unwrap_or(f64::NAN));
        println!("  ORT {peer:<8} cosine min {min_cos:.7} mean {mean_cos:.7}, max |diff| {max_diff:.2e}");
        accuracy.insert(format!("ort_{peer}"), a.clone());
    }

    // A larger set for int8: ONNX Runtime's f32 graph (which matches PyTorch to cosine
    // 0.9999999 on the fixture) is the reference for sentences the fixture does not have.
    let set = larger_set();
    let mut worst = [(f32::INFINITY, ""); 2];
    let mut sum = [0.0f32; 2];
    for text in &set {
        let ids = engine.tokenizer.encode(text);
        let want = ort.embed("f32", &ids)?;
        for (i, e) in [&mut engine, &mut engine_i8].into_iter().enumerate() {
            let (cos, _) = compare(&e.embed_ids(&ids)?, &want);
            sum[i] += cos;
            if cos < worst[i].0 {
                worst[i] = (cos, text);
            }
        }
    }
    println!("accuracy vs ORT f32 on {} more sentences (lengths {}-{} tokens):", set.len(),
        set.iter().map(|t| engine.tokenizer.encode(t).len()).min().unwrap_or(0),
        set.iter().map(|t| engine.tokenizer.encode(t).len()).max().unwrap_or(0));
    for (i, name) in ["engine f32", "engine int8"].into_iter().enumerate() {
        println!("  {name:<12} cosine min {:.7} mean {:.7} (worst: {:?})", worst[i].0, sum[i] / set.len() as f32, worst[i].1);
        accuracy.insert(
            format!("{}_vs_ort_f32_{}_sentences", name.replace(' ', "_"), set.len()),
            serde_json::json!({"min_cos": worst[i].0, "mean_cos": sum[i] / set.len() as f32}),
        );
    }

    if let Some(path) = std::env::var_os("DAIOS_AI_REPORT").map(PathBuf::from) {
        let ai = serde_json::json!({
            "what": "cargo xtask bench ai: all-MiniLM-L6-v2, one thread each, median ms of interleaved rounds",
            "engine_isa": format!("{:?}", engine.model.isa().level()),
            "default_precision": "f32",
            "ort": {"version": ort.hello["ort_version"], "onnx": ort.hello["onnx_version"],
                    "threads": 1, "int8": "quantize_dynamic, per-channel int8 weights"},
            "timings": table,
            "accuracy": accuracy,
        });
        // The kernel bench owns the rest of the report: keep whatever else is there.
        let mut report: serde_json::Value = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        report["ai"] = ai;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
        println!();
        println!("report: {} (key \"ai\")", path.display());
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

/// A contestant: given a run count, times that many runs.
type Timer<'a> = Box<dyn FnMut(usize) -> Vec<Duration> + 'a>;

/// Rounds per contestant; the contestants take turns so machine noise hits all alike.
const ROUNDS: usize = 12;
/// Target length of one contestant's round.
const ROUND_MS: u64 = 150;

fn time_local(runs: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

/// Medians over [`ROUNDS`] interleaved rounds, after 5 warm-up runs each (which also set
/// the runs per round: about [`ROUND_MS`], between 3 and 200 runs).
fn time_interleaved<'n>(contestants: &mut [(&'n str, Timer<'_>)]) -> Vec<(&'n str, Duration)> {
    let per_round: Vec<usize> = contestants
        .iter_mut()
        .map(|(_, f)| {
            let mut warm = f(5);
            warm.sort();
            let t = warm[2].as_secs_f64().max(1e-6);
            ((ROUND_MS as f64 / 1e3 / t) as usize).clamp(3, 200)
        })
        .collect();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); contestants.len()];
    for _ in 0..ROUNDS {
        for ((_, f), (k, s)) in contestants.iter_mut().zip(per_round.iter().zip(samples.iter_mut())) {
            s.extend(f(*k));
        }
    }
    contestants
        .iter()
        .zip(samples)
        .map(|((name, _), mut s)| {
            s.sort();
            (*name, s[s.len() / 2])
        })
        .collect()
}

/// The ONNX Runtime peer (`ort_peer.py`, see its docstring), run by the Python xtask set up.
struct OrtPeer {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    /// Versions and accuracy against the fixture (checked by the peer before any timing).
    hello: serde_json::Value,
}

impl OrtPeer {
    fn start(model_dir: &std::path::Path, fixture: &std::path::Path) -> AnyResult<OrtPeer> {
        use std::process::{Command, Stdio};
        let python = std::env::var_os("DAIOS_ORT_PYTHON")
            .ok_or("DAIOS_ORT_PYTHON is not set (run through `cargo xtask bench ai`)")?;
        let work = std::env::var_os("DAIOS_ORT_WORK").ok_or("DAIOS_ORT_WORK is not set")?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ort_peer.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(model_dir)
            .arg(fixture)
            .arg(work)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("peer stdin")?;
        let stdout = std::io::BufReader::new(child.stdout.take().ok_or("peer stdout")?);
        let mut peer = OrtPeer { child, stdin: Some(stdin), stdout, hello: serde_json::Value::Null };
        peer.hello = peer.read().map_err(|e| format!("the ONNX Runtime peer did not start (or failed its reference check): {e}"))?;
        Ok(peer)
    }

    fn read(&mut self) -> AnyResult<serde_json::Value> {
        use std::io::BufRead;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err("the ONNX Runtime peer exited".into());
        }
        Ok(serde_json::from_str(&line)?)
    }

    fn ask(&mut self, req: serde_json::Value) -> AnyResult<serde_json::Value> {
        use std::io::Write;
        let stdin = self.stdin.as_mut().ok_or("peer stdin closed")?;
        writeln!(stdin, "{req}")?;
        stdin.flush()?;
        self.read()
    }

    fn time(&mut self, model: &str, ids: &[u32], runs: usize) -> AnyResult<Vec<Duration>> {
        let r = self.ask(serde_json::json!({"model": model, "ids": ids, "runs": runs}))?;
        Ok(r["ms"]
            .as_array()
            .ok_or("peer answer without times")?
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .map(|v| Duration::from_secs_f64(v / 1e3))
            .collect())
    }

    fn embed(&mut self, model: &str, ids: &[u32]) -> AnyResult<Vec<f32>> {
        let r = self.ask(serde_json::json!({"model": model, "ids": ids, "embed": true}))?;
        Ok(r["embedding"]
            .as_array()
            .ok_or("peer answer without embedding")?
            .iter()
            .filter_map(|v| v.as_f64().map(|v| v as f32))
            .collect())
    }
}

impl Drop for OrtPeer {
    fn drop(&mut self) {
        // Closing stdin ends the peer's loop; wait so no process outlives the bench.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Sentences beyond the fixture for the int8 accuracy figure: varied topics and lengths.
fn larger_set() -> Vec<String> {
    let base = [
        "A capability names an object and the rights its holder has over it.",
        "The scheduler picks the highest-priority runnable thread on each core.",
        "She sold seashells by the seashore, and the shells she sold were surely seashells.",
        "Quantum error correction encodes one logical qubit in many physical ones.",
        "How do I reset my password if I no longer have access to my email?",
        "The recipe calls for two cups of flour, a pinch of salt and three eggs.",
        "Inflation rose by 0.4% in March, driven mostly by energy prices.",
        "Der schnelle braune Fuchs springt über den faulen Hund.",
        "Photosynthesis converts light energy into chemical energy stored in glucose.",
        "The court ruled that the contract was void because one party was a minor.",
        "Backpropagation computes gradients layer by layer using the chain rule.",
        "Mount Everest is the highest mountain above sea level, at 8,849 metres.",
        "Please turn off the lights when you leave the room.",
        "The patient presented with fever, cough and shortness of breath for three days.",
        "Rust's borrow checker rejects programs with data races at compile time.",
        "In 1969 the Apollo 11 mission landed the first humans on the Moon.",
    ];
    let mut set: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    // Longer texts: paragraphs of 3 to 12 of the sentences above.
    for (i, len) in [3usize, 5, 8, 12].into_iter().enumerate() {
        set.push(base.iter().cycle().skip(i * 3).take(len).copied().collect::<Vec<_>>().join(" "));
    }
    set.push("ok".into());
    set.push("?".into());
    set
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
