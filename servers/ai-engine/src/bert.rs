//! BERT encoder forward pass for sentence embeddings (all-MiniLM-L6-v2), with mean pooling
//! and L2 normalisation, as sentence-transformers computes them.
//!
//! One sequence at a time, no padding, so the attention mask is all ones and mean pooling is
//! over every token. All activations live in a [`Scratch`] allocated once for the longest
//! sequence; a forward pass allocates nothing.

use alloc::vec::Vec;

use crate::error::Error;
use crate::safetensors::{SafeTensors, TensorView};
use crate::simd::{self, Isa};
use crate::tensor::{Linear, MatF32, l2_normalize};
use crate::tokenizer::Tokenizer;

/// BERT hyper-parameters that the safetensors file does not carry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub layer_norm_eps: f32,
}

impl Config {
    /// sentence-transformers/all-MiniLM-L6-v2 (its `config.json`).
    pub const MINILM_L6: Config = Config {
        hidden: 384,
        heads: 12,
        layers: 6,
        intermediate: 1536,
        vocab: 30522,
        max_positions: 512,
        layer_norm_eps: 1e-12,
    };
}

/// Layer norm parameters (decoded: 2 x hidden floats).
#[derive(Clone, Debug)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

#[derive(Clone, Debug)]
struct Layer<'a> {
    query: Linear<'a>,
    key: Linear<'a>,
    value: Linear<'a>,
    attn_out: Linear<'a>,
    attn_norm: Norm,
    intermediate: Linear<'a>,
    output: Linear<'a>,
    out_norm: Norm,
}

/// A BERT encoder whose big matrices borrow the safetensors file in place.
#[derive(Clone, Debug)]
pub struct Bert<'a> {
    cfg: Config,
    isa: Isa,
    word: MatF32<'a>,
    position: MatF32<'a>,
    token_type0: Vec<f32>,
    emb_norm: Norm,
    layers: Vec<Layer<'a>>,
}

/// Activation buffers for sequences of up to `max_tokens` tokens.
#[derive(Clone, Debug)]
pub struct Scratch {
    max_tokens: usize,
    hidden: usize,
    x: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    inter: Vec<f32>,
    kt: Vec<f32>,
    scores: Vec<f32>,
    row: Vec<f32>,
    /// u8 activations and their (scale, min) pairs for int8 layers on VNNI; empty unless
    /// [`Scratch::with_int8`] (then `max_tokens * intermediate` bytes, `2 * max_tokens` floats).
    qx: Vec<u8>,
    qp: Vec<f32>,
}

fn zeros(n: Option<usize>) -> Result<Vec<f32>, Error> {
    let n = n.ok_or(Error::OutOfMemory)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory)?;
    v.resize(n, 0.0);
    Ok(v)
}

impl Scratch {
    pub fn new(cfg: &Config, max_tokens: usize) -> Result<Scratch, Error> {
        let nh = max_tokens.checked_mul(cfg.hidden);
        Ok(Scratch {
            max_tokens,
            hidden: cfg.hidden,
            x: zeros(nh)?,
            q: zeros(nh)?,
            k: zeros(nh)?,
            v: zeros(nh)?,
            ctx: zeros(nh)?,
            tmp: zeros(nh)?,
            inter: zeros(max_tokens.checked_mul(cfg.intermediate))?,
            kt: zeros(nh)?,
            scores: zeros(max_tokens.checked_mul(4))?,
            row: zeros(Some(cfg.hidden))?,
            qx: Vec::new(),
            qp: Vec::new(),
        })
    }

    /// Adds the buffers int8 layers need to run in integers on a VNNI CPU (without them
    /// they run the f32-activation int8 path).
    pub fn with_int8(mut self, cfg: &Config) -> Result<Scratch, Error> {
        let n = self.max_tokens.checked_mul(cfg.intermediate.max(cfg.hidden)).ok_or(Error::OutOfMemory)?;
        let mut qx = Vec::new();
        qx.try_reserve_exact(n).map_err(|_| Error::OutOfMemory)?;
        qx.resize(n, 0u8);
        self.qx = qx;
        self.qp = zeros(self.max_tokens.checked_mul(2))?;
        Ok(self)
    }

    /// Bytes held by the buffers.
    pub fn size_bytes(&self) -> usize {
        [&self.x, &self.q, &self.k, &self.v, &self.ctx, &self.tmp, &self.inter, &self.kt, &self.scores, &self.row, &self.qp]
            .iter()
            .map(|b| b.len() * 4)
            .sum::<usize>()
            + self.qx.len()
    }
}

fn find<'s, 'a>(st: &'s SafeTensors<'a>, name: &str) -> Result<&'s TensorView<'a>, Error> {
    st.get(name).or_else(|e| {
        let mut prefixed = alloc::string::String::from("bert.");
        prefixed.push_str(name);
        st.get(&prefixed).map_err(|_| e)
    })
}

impl<'a> Bert<'a> {
    /// Binds the model to the tensors of a parsed file, checking every name and shape.
    pub fn from_safetensors(st: &SafeTensors<'a>, cfg: Config) -> Result<Self, Error> {
        if cfg.heads == 0 || !cfg.hidden.is_multiple_of(cfg.heads) {
            return Err(Error::BadTensor("hidden size is not a multiple of the head count"));
        }
        let (h, i) = (cfg.hidden, cfg.intermediate);
        let mat = |name: &str, r, c| find(st, name)?.matrix(r, c);
        let vec = |name: &str, n| find(st, name)?.vector(n);
        let norm = |p: &str| -> Result<Norm, Error> {
            Ok(Norm {
                gamma: vec(&alloc::format!("{p}.LayerNorm.weight"), h)?,
                beta: vec(&alloc::format!("{p}.LayerNorm.bias"), h)?,
            })
        };
        let lin = |p: &str, out, inp| -> Result<Linear<'a>, Error> {
            Linear::new(mat(&alloc::format!("{p}.weight"), out, inp)?, vec(&alloc::format!("{p}.bias"), out)?)
        };
        let mut token_type0 = alloc::vec![0.0; h];
        let tt = find(st, "embeddings.token_type_embeddings.weight")?;
        let tt_rows = tt.shape().first().copied().unwrap_or(0);
        tt.matrix(tt_rows, h)?.copy_row(0, &mut token_type0);
        let mut layers = Vec::with_capacity(cfg.layers);
        for l in 0..cfg.layers {
            let p = alloc::format!("encoder.layer.{l}");
            layers.push(Layer {
                query: lin(&alloc::format!("{p}.attention.self.query"), h, h)?,
                key: lin(&alloc::format!("{p}.attention.self.key"), h, h)?,
                value: lin(&alloc::format!("{p}.attention.self.value"), h, h)?,
                attn_out: lin(&alloc::format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: norm(&alloc::format!("{p}.attention.output"))?,
                intermediate: lin(&alloc::format!("{p}.intermediate.dense"), i, h)?,
                output: lin(&alloc::format!("{p}.output.dense"), h, i)?,
                out_norm: norm(&alloc::format!("{p}.output"))?,
            });
        }
        Ok(Bert {
            cfg,
            isa: Isa::detect(),
            word: mat("embeddings.word_embeddings.weight", cfg.vocab, h)?,
            position: mat("embeddings.position_embeddings.weight", cfg.max_positions, h)?,
            token_type0,
            emb_norm: norm("embeddings")?,
            layers,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The same model using another (supported) instruction set.
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa;
        self
    }

    /// A copy whose encoder linear layers hold per-row int8 weights (embeddings stay f32,
    /// borrowed). Costs about a quarter of the f32 encoder weights in new memory.
    pub fn quantized_int8(&self) -> Result<Bert<'a>, Error> {
        let mut q = self.clone();
        for l in &mut q.layers {
            for lin in [&mut l.query, &mut l.key, &mut l.value, &mut l.attn_out, &mut l.intermediate, &mut l.output] {
                *lin = lin.quantized()?;
            }
        }
        Ok(q)
    }

    /// Whether any encoder layer holds int8 weights.
    pub fn has_int8(&self) -> bool {
        self.layers.iter().any(|l| {
            [&l.query, &l.key, &l.value, &l.attn_out, &l.intermediate, &l.output]
                .iter()
                .any(|x| matches!(x.weight, crate::tensor::Weight::I8(_)))
        })
    }

    /// Bytes of weights this model owns (copied or quantised), excluding borrowed ones.
    pub fn owned_weight_bytes(&self) -> usize {
        let norm = |n: &Norm| (n.gamma.len() + n.beta.len()) * 4;
        let lin = |l: &Linear<'_>| {
            l.bias.len() * 4
                + match &l.weight {
                    crate::tensor::Weight::F32(_) => 0,
                    crate::tensor::Weight::I8(m) => m.size_bytes(),
                }
        };
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                [&l.query, &l.key, &l.value, &l.attn_out, &l.intermediate, &l.output]
                    .iter()
                    .map(|x| lin(x))
                    .sum::<usize>()
                    + norm(&l.attn_norm)
                    + norm(&l.out_norm)
            })
            .sum();
        layers + norm(&self.emb_norm) + self.token_type0.len() * 4
    }

    /// Longest sequence the model accepts with a scratch of `scratch_tokens` tokens.
    fn max_tokens(&self, scratch: &Scratch) -> usize {
        scratch.max_tokens.min(self.cfg.max_positions)
    }

    /// The mean-pooled, L2-normalised embedding of `ids` into `out` (`hidden` floats).
    pub fn embed_ids(&self, ids: &[u32], s: &mut Scratch, out: &mut [f32]) -> Result<(), Error> {
        let (h, n) = (self.cfg.hidden, ids.len());
        if n == 0 {
            return Err(Error::NoTokens);
        }
        if n > self.max_tokens(s) {
            return Err(Error::TooManyTokens { got: n, max: self.max_tokens(s) });
        }
        if s.hidden != h || out.len() != h {
            return Err(Error::BadShape);
        }
        self.hidden_states(ids, s)?;
        // Mean pooling over all tokens, then L2 normalisation.
        out.fill(0.0);
        for row in s.x.chunks_exact(h).take(n) {
            simd::axpy(self.isa, 1.0 / n as f32, row, out);
        }
        l2_normalize(out);
        Ok(())
    }

    /// Runs embeddings and every encoder layer; the result is in `s.x[..n * hidden]`.
    fn hidden_states(&self, ids: &[u32], s: &mut Scratch) -> Result<(), Error> {
        let (h, n, isa) = (self.cfg.hidden, ids.len(), self.isa);
        let eps = self.cfg.layer_norm_eps;
        let pos_row = &mut s.row;
        for (i, (&id, row)) in ids.iter().zip(s.x.chunks_exact_mut(h)).enumerate() {
            if !self.word.copy_row(id as usize, row) {
                return Err(Error::TokenOutOfRange(id));
            }
            self.position.copy_row(i, pos_row);
            for ((x, p), t) in row.iter_mut().zip(pos_row.iter()).zip(&self.token_type0) {
                *x += p + t;
            }
            simd::layer_norm(isa, row, &self.emb_norm.gamma, &self.emb_norm.beta, eps);
        }
        let nh = n * h;
        let hd = h / self.cfg.heads;
        for l in &self.layers {
            l.query.forward_quant(isa, &s.x, n, &mut s.q, &mut s.qx, &mut s.qp)?;
            l.key.forward_quant(isa, &s.x, n, &mut s.k, &mut s.qx, &mut s.qp)?;
            l.value.forward_quant(isa, &s.x, n, &mut s.v, &mut s.qx, &mut s.qp)?;
            simd::attention(isa, &s.q[..nh], &s.k[..nh], &s.v[..nh], n, self.cfg.heads, hd, &mut s.ctx[..nh], &mut s.kt, &mut s.scores);
            l.attn_out.forward_quant(isa, &s.ctx, n, &mut s.tmp, &mut s.qx, &mut s.qp)?;
            residual_norm(isa, &mut s.tmp[..nh], &s.x[..nh], &l.attn_norm, h, eps);
            core::mem::swap(&mut s.x, &mut s.tmp);
            l.intermediate.forward_quant(isa, &s.x, n, &mut s.inter, &mut s.qx, &mut s.qp)?;
            simd::gelu(isa, &mut s.inter[..n * self.cfg.intermediate]);
            l.output.forward_quant(isa, &s.inter, n, &mut s.tmp, &mut s.qx, &mut s.qp)?;
            residual_norm(isa, &mut s.tmp[..nh], &s.x[..nh], &l.out_norm, h, eps);
            core::mem::swap(&mut s.x, &mut s.tmp);
        }
        Ok(())
    }
}

/// `y = LayerNorm(y + x)`, row by row.
fn residual_norm(isa: Isa, y: &mut [f32], x: &[f32], norm: &Norm, h: usize, eps: f32) {
    for (yr, xr) in y.chunks_exact_mut(h).zip(x.chunks_exact(h)) {
        simd::axpy(isa, 1.0, xr, yr);
        simd::layer_norm(isa, yr, &norm.gamma, &norm.beta, eps);
    }
}

/// Text in, embedding out: tokenizer + model + scratch, ready to use.
#[derive(Clone, Debug)]
pub struct Embedder<'a> {
    pub tokenizer: Tokenizer,
    pub model: Bert<'a>,
    scratch: Scratch,
}

impl<'a> Embedder<'a> {
    /// all-MiniLM-L6-v2 from its `model.safetensors` bytes (borrowed, never copied) and
    /// `vocab.txt`; sequences are truncated to 256 tokens, as sentence-transformers does.
    pub fn minilm(safetensors: &'a [u8], vocab_txt: &[u8]) -> Result<Self, Error> {
        let st = SafeTensors::parse(safetensors)?;
        let model = Bert::from_safetensors(&st, Config::MINILM_L6)?;
        Self::new(Tokenizer::from_vocab_txt(vocab_txt, 256)?, model)
    }

    pub fn new(tokenizer: Tokenizer, model: Bert<'a>) -> Result<Self, Error> {
        let mut scratch = Scratch::new(model.config(), tokenizer.max_len())?;
        if model.has_int8() && model.isa().vnni() {
            scratch = scratch.with_int8(model.config())?;
        }
        Ok(Embedder { tokenizer, model, scratch })
    }

    /// Embedding dimension.
    pub fn dim(&self) -> usize {
        self.model.cfg.hidden
    }

    /// Bytes of activation scratch.
    pub fn scratch_bytes(&self) -> usize {
        self.scratch.size_bytes()
    }

    /// The sentence embedding of `text` (unit length).
    pub fn embed(&mut self, text: &str) -> Result<Vec<f32>, Error> {
        let ids = self.tokenizer.encode(text);
        self.embed_ids(&ids)
    }

    /// The sentence embedding of already tokenised ids.
    pub fn embed_ids(&mut self, ids: &[u32]) -> Result<Vec<f32>, Error> {
        let mut out = alloc::vec![0.0; self.dim()];
        self.model.embed_ids(ids, &mut self.scratch, &mut out)?;
        Ok(out)
    }
}
