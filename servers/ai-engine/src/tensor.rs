//! Tensor helpers shared by every model: weight matrices, the linear layer (GEMM) driver and
//! element-wise kernels.
//!
//! Activations are plain row-major `&[f32]` slices (`n` rows of `d` features). Weights are
//! [`Linear`] layers whose matrix is either borrowed in place from the model file
//! ([`MatF32`]) or an owned int8 quantisation ([`MatI8`]).
//!
//! The GEMM is a *dot-product* formulation: PyTorch stores a linear weight as `[out, in]`,
//! so both an activation row and a weight row are contiguous along the reduction axis. The
//! micro-kernel ([`crate::simd::dot_block_f32`]) reads 4 activation rows and 3 weight rows
//! straight from where they lie and keeps 12 vector accumulators; no packing, so the 90 MB
//! file is never copied. Weight rows are streamed once per call (outer loop), activation rows
//! are re-read from cache.

use alloc::vec::Vec;

use crate::error::Error;
use crate::simd::{self, F32Row, I8Row, Isa, MR, NR, NR_WIDE, U8Row};

/// A row-major f32 matrix borrowed in place from a model file as little-endian bytes.
///
/// # Invariants
///
/// `bytes.len() == rows * cols * 4` (checked by [`MatF32::new`]). The bytes may be unaligned.
#[derive(Clone, Copy, Debug)]
pub struct MatF32<'a> {
    rows: usize,
    cols: usize,
    bytes: &'a [u8],
}

impl<'a> MatF32<'a> {
    pub fn new(rows: usize, cols: usize, bytes: &'a [u8]) -> Result<Self, Error> {
        let want = rows.checked_mul(cols).and_then(|n| n.checked_mul(4));
        if want != Some(bytes.len()) {
            return Err(Error::BadTensor("matrix byte length does not match its shape"));
        }
        Ok(MatF32 { rows, cols, bytes })
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Row `r` as little-endian bytes (empty if out of range).
    pub fn row(&self, r: usize) -> F32Row<'a> {
        let w = self.cols * 4;
        F32Row(self.bytes.get(r * w..(r + 1) * w).unwrap_or(&[]))
    }
    /// Copies row `r` into `out` (embedding lookup); false if `r` is out of range.
    pub fn copy_row(&self, r: usize, out: &mut [f32]) -> bool {
        if r >= self.rows {
            return false;
        }
        let row = self.row(r);
        for (o, c) in out.iter_mut().zip(row.0.chunks_exact(4)) {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        true
    }
    /// The whole matrix decoded to f32 (for small tensors: biases, norms).
    pub fn to_vec(&self) -> Vec<f32> {
        self.bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

/// A row-major int8 matrix with one symmetric scale per row: `w[r][c] ~ q[r][c] * scale[r]`.
///
/// # Invariants
///
/// `q.len() == rows * cols`, `scale.len() == rows` and `row_sum[r]` is the sum of row `r` of
/// `q` (only built by [`MatI8::quantize`]).
#[derive(Clone, Debug)]
pub struct MatI8 {
    rows: usize,
    cols: usize,
    q: Vec<i8>,
    scale: Vec<f32>,
    /// Per-row sums of `q`, for the offset of asymmetric u8 activations (VNNI path).
    row_sum: Vec<f32>,
}

impl MatI8 {
    /// Per-row symmetric int8 quantisation (round to nearest, max |w| maps to 127).
    pub fn quantize(m: &MatF32<'_>) -> Result<MatI8, Error> {
        let mut q = Vec::new();
        q.try_reserve_exact(m.rows * m.cols).map_err(|_| Error::OutOfMemory)?;
        let mut scale = Vec::with_capacity(m.rows);
        let mut row = alloc::vec![0.0f32; m.cols];
        for r in 0..m.rows {
            m.copy_row(r, &mut row);
            let amax = row.iter().fold(0.0f32, |a, &v| a.max(abs(v)));
            let s = if amax > 0.0 { amax / 127.0 } else { 1.0 };
            scale.push(s);
            q.extend(row.iter().map(|&v| round_i8(v / s)));
        }
        let row_sum = q.chunks_exact(m.cols.max(1)).map(|r| r.iter().map(|&v| f32::from(v)).sum()).collect();
        Ok(MatI8 { rows: m.rows, cols: m.cols, q, scale, row_sum })
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    fn row(&self, r: usize) -> I8Row<'_> {
        I8Row(self.q.get(r * self.cols..(r + 1) * self.cols).unwrap_or(&[]))
    }
    /// Bytes of weight storage.
    pub fn size_bytes(&self) -> usize {
        self.q.len() + self.scale.len() * 4 + self.row_sum.len() * 4
    }
}

fn abs(v: f32) -> f32 {
    f32::from_bits(v.to_bits() & 0x7fff_ffff)
}

fn round_i8(v: f32) -> i8 {
    let r = if v >= 0.0 { v + 0.5 } else { v - 0.5 };
    // `as` saturates and maps NaN to 0: total.
    (r as i32).clamp(-127, 127) as i8
}

/// A weight matrix in one of the supported storage formats.
#[derive(Clone, Debug)]
pub enum Weight<'a> {
    F32(MatF32<'a>),
    I8(MatI8),
}

impl Weight<'_> {
    pub fn rows(&self) -> usize {
        match self {
            Weight::F32(m) => m.rows(),
            Weight::I8(m) => m.rows(),
        }
    }
    pub fn cols(&self) -> usize {
        match self {
            Weight::F32(m) => m.cols(),
            Weight::I8(m) => m.cols(),
        }
    }
}

/// A linear layer `y = x W^T + b`, `W` of shape `[out, in]` (PyTorch layout).
#[derive(Clone, Debug)]
pub struct Linear<'a> {
    pub weight: Weight<'a>,
    pub bias: Vec<f32>,
}

impl<'a> Linear<'a> {
    pub fn new(weight: MatF32<'a>, bias: Vec<f32>) -> Result<Self, Error> {
        if bias.len() != weight.rows() {
            return Err(Error::BadTensor("bias length does not match weight rows"));
        }
        Ok(Linear { weight: Weight::F32(weight), bias })
    }
    pub fn in_features(&self) -> usize {
        self.weight.cols()
    }
    pub fn out_features(&self) -> usize {
        self.weight.rows()
    }
    /// The same layer with int8 weights.
    pub fn quantized(&self) -> Result<Linear<'a>, Error> {
        let weight = match &self.weight {
            Weight::F32(m) => Weight::I8(MatI8::quantize(m)?),
            Weight::I8(m) => Weight::I8(m.clone()),
        };
        Ok(Linear { weight, bias: self.bias.clone() })
    }

    /// `out[n][out_features] = x[n][in_features] W^T + b`.
    ///
    /// Fails (never panics) if the slices are shorter than `n` rows need.
    pub fn forward(&self, isa: Isa, x: &[f32], n: usize, out: &mut [f32]) -> Result<(), Error> {
        let (k, m) = (self.in_features(), self.out_features());
        let (nx, no) = (n.checked_mul(k), n.checked_mul(m));
        match (nx, no) {
            (Some(nx), Some(no)) if x.len() >= nx && out.len() >= no => {}
            _ => return Err(Error::BadShape),
        }
        if n == 0 || m == 0 {
            return Ok(());
        }
        // Weight rows are streamed once per call: start fetching them `PREFETCH_ROWS` ahead.
        let ahead = |o: usize, nr: usize, fetch: &dyn Fn(usize)| {
            let ahead = o + PREFETCH_ROWS;
            for r in ahead..(ahead + nr).min(m) {
                fetch(r);
            }
        };
        let wide = isa.wide();
        match &self.weight {
            Weight::F32(w) => {
                let fetch = |r: usize| simd::prefetch(w.row(r).0);
                if wide {
                    gemm::<_, NR_WIDE>(x, n, k, m, out, |o| w.row(o), |o| ahead(o, NR_WIDE, &fetch), |xs, ws| {
                        simd::dot_block_f32_wide(isa, xs, ws)
                    }, |_| 1.0, &self.bias)
                } else {
                    gemm::<_, NR>(x, n, k, m, out, |o| w.row(o), |o| ahead(o, NR, &fetch), |xs, ws| {
                        simd::dot_block_f32(isa, xs, ws)
                    }, |_| 1.0, &self.bias)
                }
            }
            Weight::I8(w) => {
                let fetch = |r: usize| simd::prefetch(w.row(r).0);
                let scale = |o: usize| w.scale.get(o).copied().unwrap_or(0.0);
                if wide {
                    gemm::<_, NR_WIDE>(x, n, k, m, out, |o| w.row(o), |o| ahead(o, NR_WIDE, &fetch), |xs, ws| {
                        simd::dot_block_i8_wide(isa, xs, ws)
                    }, scale, &self.bias)
                } else {
                    gemm::<_, NR>(x, n, k, m, out, |o| w.row(o), |o| ahead(o, NR, &fetch), |xs, ws| {
                        simd::dot_block_i8(isa, xs, ws)
                    }, scale, &self.bias)
                }
            }
        }
        Ok(())
    }
}


impl Linear<'_> {
    /// As [`Linear::forward`], with int8 layers on a VNNI CPU run in integers: each
    /// activation row is quantised to u8 with its own scale and offset (asymmetric, min to
    /// max over 255 steps) into `qx` (`n * in_features` bytes) and `qp` (`2 * n` floats),
    /// then multiplied by the i8 weights with `vpdpbusd`. Any other case (f32 weights, no
    /// VNNI, buffers too short) is exactly [`Linear::forward`].
    pub fn forward_quant(&self, isa: Isa, x: &[f32], n: usize, out: &mut [f32], qx: &mut [u8], qp: &mut [f32]) -> Result<(), Error> {
        let (k, m) = (self.in_features(), self.out_features());
        let Weight::I8(w) = &self.weight else {
            return self.forward(isa, x, n, out);
        };
        let (Some(nk), Some(nm)) = (n.checked_mul(k), n.checked_mul(m)) else {
            return Err(Error::BadShape);
        };
        if !isa.vnni() || qx.len() < nk || qp.len() < 2 * n || x.len() < nk || out.len() < nm || n == 0 || m == 0 || k == 0 {
            return self.forward(isa, x, n, out);
        }
        for ((xr, qr), p) in x.chunks_exact(k).zip(qx.chunks_exact_mut(k)).zip(qp.chunks_exact_mut(2)).take(n) {
            let (s, z) = simd::quantize_row_u8(isa, xr, qr);
            p[0] = s;
            p[1] = z;
        }
        let xrow = |i: usize| U8Row(qx.get(i * k..(i + 1) * k).unwrap_or(&[]));
        for o0 in (0..m).step_by(NR_WIDE) {
            let col = |j: usize| (o0 + j).min(m - 1);
            let ahead = o0 + PREFETCH_ROWS;
            for r in ahead..(ahead + NR_WIDE).min(m) {
                simd::prefetch(w.row(r).0);
            }
            let ws: [I8Row<'_>; NR_WIDE] = core::array::from_fn(|j| w.row(col(j)));
            let sw: [f32; NR_WIDE] = core::array::from_fn(|j| w.scale.get(col(j)).copied().unwrap_or(0.0));
            let rs: [f32; NR_WIDE] = core::array::from_fn(|j| w.row_sum.get(col(j)).copied().unwrap_or(0.0));
            let bs: [f32; NR_WIDE] = core::array::from_fn(|j| self.bias.get(col(j)).copied().unwrap_or(0.0));
            for i0 in (0..n).step_by(MR) {
                let xs: [U8Row<'_>; MR] = core::array::from_fn(|i| xrow((i0 + i).min(n - 1)));
                let r = simd::dot_block_u8i8_wide(isa, xs, ws);
                for (i, ri) in r.iter().enumerate().take(n - i0) {
                    let (sx, zx) = (qp[2 * (i0 + i)], qp[2 * (i0 + i) + 1]);
                    // x ~ sx * u + zx, so x . wq = sx * (u . wq) + zx * sum(wq).
                    let y: [f32; NR_WIDE] = core::array::from_fn(|j| (sx * ri[j] + zx * rs[j]) * sw[j] + bs[j]);
                    store_block(out, (i0 + i) * m + o0, (m - o0).min(NR_WIDE), &y);
                }
            }
        }
        Ok(())
    }
}

/// How many weight rows ahead of the current block [`Linear::forward`] prefetches (into L2):
/// 4 blocks of the wide kernel, 8 of the narrow one (36 KB ahead at K = 384 in f32).
const PREFETCH_ROWS: usize = 24;

/// The blocking loop around a dot-product micro-kernel. Edge blocks repeat the last valid
/// row (or weight row) and drop the duplicate results, so there is one kernel and no
/// padding copy.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gemm<R: Copy, const N: usize>(
    x: &[f32],
    n: usize,
    k: usize,
    m: usize,
    out: &mut [f32],
    row: impl Fn(usize) -> R,
    before_block: impl Fn(usize),
    kernel: impl Fn([&[f32]; MR], [R; N]) -> [[f32; N]; MR],
    scale: impl Fn(usize) -> f32,
    bias: &[f32],
) {
    let xrow = |i: usize| x.get(i * k..(i + 1) * k).unwrap_or(&[]);
    for o0 in (0..m).step_by(N) {
        before_block(o0);
        let ws: [R; N] = core::array::from_fn(|j| row((o0 + j).min(m - 1)));
        let sc: [f32; N] = core::array::from_fn(|j| scale((o0 + j).min(m - 1)));
        let bs: [f32; N] =
            core::array::from_fn(|j| bias.get((o0 + j).min(m - 1)).copied().unwrap_or(0.0));
        for i0 in (0..n).step_by(MR) {
            let xs: [&[f32]; MR] = core::array::from_fn(|i| xrow((i0 + i).min(n - 1)));
            let r = kernel(xs, ws);
            for (i, ri) in r.iter().enumerate().take(n - i0) {
                let y: [f32; N] = core::array::from_fn(|j| ri[j] * sc[j] + bs[j]);
                store_block(out, (i0 + i) * m + o0, (m - o0).min(N), &y);
            }
        }
    }
}

/// Writes the first `len` results of a block row at `out[base..]`: a fixed-size copy for
/// full blocks (the common case, which the compiler unrolls), a shorter one at the edge.
#[inline(always)]
fn store_block<const N: usize>(out: &mut [f32], base: usize, len: usize, y: &[f32; N]) {
    if len == N {
        if let Some(dst) = out.get_mut(base..base + N).and_then(|d| <&mut [f32; N]>::try_from(d).ok()) {
            *dst = *y;
        }
    } else if let Some(dst) = out.get_mut(base..base + len) {
        dst.copy_from_slice(&y[..len]);
    }
}

/// Portable bodies of the element-wise kernels (see [`crate::simd`] for the dispatch).
pub mod portable {
    /// `y += a * x`.
    #[inline(always)]
    pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        for (y, x) in y.iter_mut().zip(x) {
            *y += a * *x;
        }
    }

    /// Quantises `x` to u8 in `q` (common length), asymmetric: `x ~ scale * q + min`, `q` in
    /// 0..=255 from the row's min to its max. Returns `(scale, min)`; a constant row gives
    /// scale 0 (every `q` 0) and is reproduced exactly.
    #[inline(always)]
    pub fn quantize_row_u8(x: &[f32], q: &mut [u8]) -> (f32, f32) {
        // Min and max in 16 independent lanes (compare-and-select vectorises; `f32::min`
        // with its NaN rule does not).
        let (chunks, rest) = x.as_chunks::<16>();
        let (mut lo16, mut hi16) = ([f32::INFINITY; 16], [f32::NEG_INFINITY; 16]);
        for c in chunks {
            for ((l, h), &v) in lo16.iter_mut().zip(hi16.iter_mut()).zip(c) {
                *l = if v < *l { v } else { *l };
                *h = if v > *h { v } else { *h };
            }
        }
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in lo16.iter().chain(rest) {
            lo = if v < lo { v } else { lo };
        }
        for &v in hi16.iter().chain(rest) {
            hi = if v > hi { v } else { hi };
        }
        // (Comparisons skip NaN, so `lo` and `hi` are never NaN.)
        if hi <= lo || !lo.is_finite() || !hi.is_finite() {
            q.fill(0);
            return (0.0, if lo.is_finite() { lo } else { 0.0 });
        }
        let scale = (hi - lo) / 255.0;
        let inv = 1.0 / scale;
        // Adding 1.5 * 2^23 rounds to an integer in the low mantissa bits; the value is in
        // 0..=255 (up to rounding), so its low byte is the code.
        const MAGIC: f32 = 12_582_912.0;
        for (d, &v) in q.iter_mut().zip(x) {
            let t = ((v - lo) * inv + MAGIC).to_bits();
            *d = (t & 0xff) as u8;
        }
        (scale, lo)
    }

    /// Sum with 8 independent lanes (vectorisable without re-association).
    #[inline(always)]
    pub fn sum(x: &[f32]) -> f32 {
        let (chunks, rest) = x.as_chunks::<8>();
        let mut acc = [0.0f32; 8];
        for c in chunks {
            for (a, v) in acc.iter_mut().zip(c) {
                *a += v;
            }
        }
        let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for v in rest {
            s += v;
        }
        s
    }

    /// `e^x` to ~1 ulp-ish relative error for x in [-87, 88] (Cephes polynomial), clamped
    /// outside; branch-free so loops over it vectorise.
    #[inline(always)]
    pub fn exp(x: f32) -> f32 {
        const LOG2E: f32 = core::f32::consts::LOG2_E;
        const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
        let x = x.clamp(-87.0, 88.0);
        let t = x * LOG2E + MAGIC;
        let n = t - MAGIC;
        let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
        let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let mut p = 1.987_569_1e-4f32;
        p = p * r + 1.398_2e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5;
        let e = p * r * r + r + 1.0;
        let pow2 = f32::from_bits((ni.wrapping_add(127) << 23) as u32);
        e * pow2
    }

    /// `erf(x)`, Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7).
    #[inline(always)]
    pub fn erf(x: f32) -> f32 {
        let sign = x.to_bits() & 0x8000_0000;
        let a = f32::from_bits(x.to_bits() & 0x7fff_ffff);
        let t = 1.0 / (1.0 + 0.327_591_1 * a);
        let poly = t
            * (0.254_829_6
                + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
        let y = 1.0 - poly * exp(-a * a);
        f32::from_bits(y.to_bits() | sign)
    }

    /// GELU with exact erf, as BERT's `"gelu"` activation.
    #[inline(always)]
    pub fn gelu(x: &mut [f32]) {
        for v in x.iter_mut() {
            *v = 0.5 * *v * (1.0 + erf(*v * core::f32::consts::FRAC_1_SQRT_2));
        }
    }

    #[inline(always)]
    pub fn softmax(x: &mut [f32]) {
        let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for v in x.iter_mut() {
            *v = exp(*v - max);
        }
        let s = sum(x);
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        for v in x.iter_mut() {
            *v *= inv;
        }
    }

    /// Multi-head self-attention without mask, fused per head: scores for a block of 4 query
    /// rows against every key (keys transposed into `kt` so the inner loop runs along
    /// tokens), softmax, then the weighted sum of values. `q`, `k`, `v`, `ctx` are
    /// `n x (heads * hd)`; `kt` holds `hd * n` and `scores` `4 * n` floats. Wrong sizes leave
    /// `ctx` untouched (callers check shapes first).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn attention(q: &[f32], k: &[f32], v: &[f32], n: usize, heads: usize, hd: usize, ctx: &mut [f32], kt: &mut [f32], scores: &mut [f32]) {
        attention_keys::<16>(q, k, v, n, heads, hd, ctx, kt, scores)
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn attention_keys<const KEYS: usize>(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        n: usize,
        heads: usize,
        hd: usize,
        ctx: &mut [f32],
        kt: &mut [f32],
        scores: &mut [f32],
    ) {
        let h = heads * hd;
        let nh = n * h;
        if hd == 0 || n == 0 || q.len() < nh || k.len() < nh || v.len() < nh || ctx.len() < nh
            || kt.len() < n * hd || scores.len() < ATTN_ROWS * n
        {
            return;
        }
        let scale = 1.0 / libm::sqrtf(hd as f32);
        let kt = &mut kt[..n * hd];
        let scores = &mut scores[..ATTN_ROWS * n];
        for off in (0..h).step_by(hd) {
            for (j, kr) in k.chunks_exact(h).take(n).enumerate() {
                for (d, &kv) in kr[off..off + hd].iter().enumerate() {
                    kt[d * n + j] = kv;
                }
            }
            for i0 in (0..n).step_by(ATTN_ROWS) {
                let rows = (n - i0).min(ATTN_ROWS);
                let qrow = |r: usize| {
                    let i = i0 + r.min(rows - 1);
                    &q[i * h + off..i * h + off + hd]
                };
                if hd == HEAD_DIM {
                    scores_block_32::<KEYS>(core::array::from_fn(qrow), scale, kt, n, scores);
                } else {
                    for (r, s) in scores.chunks_exact_mut(n).enumerate().take(rows) {
                        s.fill(0.0);
                        for (&qd, ktr) in qrow(r).iter().zip(kt.chunks_exact(n)) {
                            axpy(qd * scale, ktr, s);
                        }
                    }
                }
                for s in scores.chunks_exact_mut(n).take(rows) {
                    softmax(s);
                }
                if hd == HEAD_DIM {
                    // The weighted sum of values for the block's rows at once: each value row
                    // is loaded once for 4 query rows, and 4 x 32 accumulators give enough
                    // independent chains to hide the FMA latency.
                    let mut acc = [[0.0f32; HEAD_DIM]; ATTN_ROWS];
                    let (s0, rest) = scores.split_at(n);
                    let (s1, rest) = rest.split_at(n);
                    let (s2, s3) = rest.split_at(n);
                    let ps = s0.iter().zip(s1).zip(s2).zip(s3.iter().take(n));
                    for ((((&p0, &p1), &p2), &p3), vr) in ps.zip(v.chunks_exact(h)) {
                        if let Some(vr) = vr.get(off..off + HEAD_DIM).and_then(|x| <&[f32; HEAD_DIM]>::try_from(x).ok()) {
                            for (a, p) in acc.iter_mut().zip([p0, p1, p2, p3]) {
                                for (a, x) in a.iter_mut().zip(vr) {
                                    *a += p * x;
                                }
                            }
                        }
                    }
                    for (r, a) in acc.iter().enumerate().take(rows) {
                        let i = i0 + r;
                        ctx[i * h + off..i * h + off + hd].copy_from_slice(a);
                    }
                } else {
                    for (r, s) in scores.chunks_exact(n).enumerate().take(rows) {
                        let i = i0 + r;
                        let out = &mut ctx[i * h + off..i * h + off + hd];
                        out.fill(0.0);
                        for (&p, vr) in s.iter().zip(v.chunks_exact(h)) {
                            axpy(p, &vr[off..off + hd], out);
                        }
                    }
                }
            }
        }
    }

    /// Query rows per attention block.
    const ATTN_ROWS: usize = 4;
    /// The head size with a register-blocked path (MiniLM, BERT-base: 32 and 64; 32 here).
    const HEAD_DIM: usize = 32;

    /// `scores[r][j] = scale * q[r] . k[j]` for 4 query rows of 32 dims, `KEYS` keys at a time
    /// from the transposed keys `kt` (`32 x n`): `4 * KEYS` floats of accumulators stay in
    /// registers (8 vectors for 16 keys at 8 lanes or 32 keys at 16 lanes).
    #[inline(always)]
    fn scores_block_32<const KEYS: usize>(q: [&[f32]; ATTN_ROWS], scale: f32, kt: &[f32], n: usize, scores: &mut [f32]) {
        let mut qs = [[0.0f32; HEAD_DIM]; ATTN_ROWS];
        for (dst, src) in qs.iter_mut().zip(q) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = s * scale;
            }
        }
        let full = n / KEYS * KEYS;
        for j0 in (0..full).step_by(KEYS) {
            let mut acc = [[0.0f32; KEYS]; ATTN_ROWS];
            for (d, ktr) in kt.chunks_exact(n).take(HEAD_DIM).enumerate() {
                let Some(kr) = ktr.get(j0..j0 + KEYS).and_then(|x| <&[f32; KEYS]>::try_from(x).ok()) else {
                    continue;
                };
                for (a, qr) in acc.iter_mut().zip(&qs) {
                    let qv = qr[d];
                    for (x, kv) in a.iter_mut().zip(kr) {
                        *x += qv * kv;
                    }
                }
            }
            for (a, s) in acc.iter().zip(scores.chunks_exact_mut(n)) {
                s[j0..j0 + KEYS].copy_from_slice(a);
            }
        }
        for (qr, s) in qs.iter().zip(scores.chunks_exact_mut(n)) {
            for (j, sj) in s.iter_mut().enumerate().skip(full) {
                *sj = qr.iter().zip(kt.iter().skip(j).step_by(n)).map(|(a, b)| a * b).sum();
            }
        }
    }

    #[inline(always)]
    pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let n = x.len() as f32;
        if x.is_empty() {
            return;
        }
        let mean = sum(x) / n;
        for v in x.iter_mut() {
            *v -= mean;
        }
        let (chunks, rest) = x.as_chunks::<8>();
        let mut acc = [0.0f32; 8];
        for c in chunks {
            for (a, v) in acc.iter_mut().zip(c) {
                *a += v * v;
            }
        }
        let mut var = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for v in rest {
            var += v * v;
        }
        let inv = 1.0 / libm::sqrtf(var / n + eps);
        for ((v, g), b) in x.iter_mut().zip(gamma).zip(beta) {
            *v = *v * inv * g + b;
        }
    }
}

/// Scales `x` to unit L2 norm (`x / max(|x|, 1e-12)`, as `torch.nn.functional.normalize`).
pub fn l2_normalize(x: &mut [f32]) {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    let norm = libm::sqrtf(ss).max(1e-12);
    for v in x.iter_mut() {
        *v /= norm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_are_accurate() {
        for i in -2000..2000 {
            let x = i as f32 * 0.01;
            let e = portable::exp(x);
            let want = libm::expf(x);
            assert!(((e - want) / want).abs() < 3e-7, "exp({x}) = {e}, want {want}");
            let r = portable::erf(x);
            assert!((r - libm::erff(x)).abs() < 3e-7, "erf({x})");
        }
    }

    #[test]
    fn linear_matches_naive_on_every_isa() {
        let (n, k, m) = (7, 37, 11);
        let w: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 23) as f32 / 11.0 - 1.0).collect();
        let x: Vec<f32> = (0..n * k).map(|i| ((i * 104_729) % 19) as f32 / 9.0 - 1.0).collect();
        let b: Vec<f32> = (0..m).map(|i| i as f32 * 0.1).collect();
        // Unaligned on purpose: one byte of offset.
        let mut bytes = alloc::vec![0u8; 1];
        for v in &w {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let mat = MatF32::new(m, k, &bytes[1..]).unwrap();
        let lin = Linear::new(mat, b.clone()).unwrap();
        let q = lin.quantized().unwrap();
        for isa in Isa::all_supported() {
            let mut out = alloc::vec![0.0; n * m];
            lin.forward(isa, &x, n, &mut out).unwrap();
            let mut outq = alloc::vec![0.0; n * m];
            q.forward(isa, &x, n, &mut outq).unwrap();
            // The integer path where the CPU has VNNI (else the same as `forward`).
            let (mut qx, mut qp) = (alloc::vec![0u8; n * k], alloc::vec![0.0f32; 2 * n]);
            let mut outv = alloc::vec![0.0; n * m];
            q.forward_quant(isa, &x, n, &mut outv, &mut qx, &mut qp).unwrap();
            for i in 0..n {
                for o in 0..m {
                    let want: f32 =
                        (0..k).map(|p| x[i * k + p] * w[o * k + p]).sum::<f32>() + b[o];
                    let got = out[i * m + o];
                    assert!((got - want).abs() < 1e-4, "{isa:?} ({i},{o}): {got} vs {want}");
                    assert!((outq[i * m + o] - want).abs() < 0.1, "{isa:?} int8 ({i},{o})");
                    assert!((outv[i * m + o] - want).abs() < 0.15, "{isa:?} u8 x int8 ({i},{o}): {}", outv[i * m + o]);
                }
            }
        }
    }

    #[test]
    fn attention_matches_portable_on_every_isa() {
        // n = 70: two full 32-key blocks, a 6-key tail and a last block of 2 query rows;
        // 48: one block and a full 16-key tail; 5: tail only.
        for (n, heads, hd) in [(70, 2, 32), (48, 1, 32), (5, 3, 32), (9, 2, 8)] {
            let h = heads * hd;
            let data = |seed: usize| -> Vec<f32> {
                (0..n * h).map(|i| (((i * 7919 + seed) % 101) as f32 / 50.0 - 1.0) * 0.7).collect()
            };
            let (q, k, v) = (data(1), data(2), data(3));
            let mut want = alloc::vec![0.0; n * h];
            let (mut kt, mut sc) = (alloc::vec![0.0; n * hd], alloc::vec![0.0; 4 * n]);
            portable::attention(&q, &k, &v, n, heads, hd, &mut want, &mut kt, &mut sc);
            for isa in Isa::all_supported() {
                let mut got = alloc::vec![0.0; n * h];
                simd::attention(isa, &q, &k, &v, n, heads, hd, &mut got, &mut kt, &mut sc);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() < 1e-5, "{isa:?} n={n} hd={hd} [{i}]: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn u8_row_quantisation_round_trips() {
        let x: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin() * 3.0 - 0.5).collect();
        for isa in Isa::all_supported() {
            let mut q = alloc::vec![0u8; x.len()];
            let (s, z) = simd::quantize_row_u8(isa, &x, &mut q);
            assert!(q.contains(&0) && q.contains(&255), "{isa:?}: the range is used end to end");
            for (&v, &c) in x.iter().zip(&q) {
                assert!((s * f32::from(c) + z - v).abs() <= s * 0.5001, "{isa:?}: {v} -> {c}");
            }
            // A constant row is exact, and non-finite input cannot make codes out of range.
            assert_eq!(simd::quantize_row_u8(isa, &[2.5; 20], &mut q[..20]), (0.0, 2.5));
            simd::quantize_row_u8(isa, &[1.0, f32::NAN, f32::INFINITY], &mut q[..3]);
        }
    }

    #[test]
    fn linear_rejects_short_buffers() {
        let bytes = [0u8; 16];
        let lin = Linear::new(MatF32::new(2, 2, &bytes).unwrap(), alloc::vec![0.0; 2]).unwrap();
        let mut out = [0.0; 3];
        assert_eq!(lin.forward(Isa::detect(), &[0.0; 4], 2, &mut out), Err(Error::BadShape));
    }
}
