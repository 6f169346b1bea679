//! The engine's only `unsafe`: CPU feature dispatch and SIMD loads/stores.
//!
//! Everything numeric that is hot goes through this module. Each kernel exists as a portable
//! body written in plain Rust (`#[inline(always)]`, safe) and, on x86_64, as explicit SSE2 and
//! AVX2+FMA versions. The caller picks a path with an [`Isa`], which can only be obtained from
//! [`Isa::detect`] or [`Isa::new`], both of which check CPUID (and, for AVX, XGETBV, i.e. that
//! the OS saves the YMM state) through the `cpufeatures` crate, which works without std.
//!
//! # Safety
//!
//! The argument for every `unsafe` block here is one of two:
//!
//! 1. *Feature*: calling a `#[target_feature]` function is sound because an [`Isa`] holding
//!    that level exists, and an `Isa` is only constructed after the runtime check succeeded
//!    (private field, single checked constructor).
//! 2. *Load/store*: an unaligned SIMD load or store (`loadu`/`storeu`) reads or writes exactly
//!    the bytes of a fixed-size array reference (`&[f32; 8]`, `&[u8; 32]`, ...), so every byte
//!    touched is in bounds and initialised; unaligned access is what `loadu` is for, and every
//!    bit pattern is a valid `f32`, `i8` or `u8`.
//!
//! The SIMD paths are compiled only where the target has hardware floats (`sse2` in the
//! target features): on the soft-float `x86_64-unknown-none` (the kernel's target) LLVM
//! cannot lower vector float code, so there only [`Level::Portable`] exists.
//!
//! Because weights are borrowed in place from the safetensors file, which need not be 4-byte
//! aligned, f32 weight rows are taken as `&[u8]` and loaded with `loadu` (SIMD paths) or
//! `f32::from_le_bytes` (portable path); no weight is ever dereferenced as `&f32`.
#![allow(unsafe_code)]

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
use core::arch::x86_64::*;

/// Rows of activations per GEMM micro-kernel call.
pub const MR: usize = 4;
/// Weight rows (output features) per GEMM micro-kernel call.
pub const NR: usize = 3;

/// An instruction-set level for the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Plain Rust, any target (whatever the compiler auto-vectorises).
    Portable,
    /// x86_64 SSE2, 128-bit, no FMA: the x86_64 baseline.
    Sse2,
    /// x86_64 AVX2 with FMA3, 256-bit.
    Avx2Fma,
}

/// Proof that the running CPU (and OS) supports a [`Level`].
///
/// # Invariants
///
/// `Isa(level)` exists only if `level` was checked at run time (the field is private and
/// [`Isa::new`] is the single constructor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Isa(Level);

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
cpufeatures::new!(cpuid_avx2_fma, "avx2", "fma");
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
cpufeatures::new!(cpuid_sse2, "sse2");

impl Isa {
    /// The level, if this CPU supports it.
    pub fn new(level: Level) -> Option<Isa> {
        let ok = match level {
            Level::Portable => true,
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Level::Sse2 => cpuid_sse2::get(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Level::Avx2Fma => cpuid_avx2_fma::get(),
            #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
            _ => false,
        };
        ok.then_some(Isa(level))
    }

    /// The best level this CPU supports.
    pub fn detect() -> Isa {
        [Level::Avx2Fma, Level::Sse2]
            .into_iter()
            .find_map(Isa::new)
            .unwrap_or(Isa(Level::Portable))
    }

    /// Every level this CPU supports, best last.
    pub fn all_supported() -> impl Iterator<Item = Isa> {
        [Level::Portable, Level::Sse2, Level::Avx2Fma].into_iter().filter_map(Isa::new)
    }

    pub fn level(self) -> Level {
        self.0
    }
}

/// Weight element types the GEMM micro-kernel reads in place.
pub trait WeightRow: Copy {
    /// Element `i` of the row, as f32 (before any per-row scale).
    fn get(self, i: usize) -> f32;
    fn len(self) -> usize;
    fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// A row of little-endian f32 weights, borrowed as bytes (may be unaligned).
#[derive(Clone, Copy)]
pub struct F32Row<'a>(pub &'a [u8]);

/// A row of int8 weights (the per-row scale is applied by the caller).
#[derive(Clone, Copy)]
pub struct I8Row<'a>(pub &'a [i8]);

impl WeightRow for F32Row<'_> {
    #[inline(always)]
    fn get(self, i: usize) -> f32 {
        match self.0.get(i * 4..i * 4 + 4) {
            Some(&[a, b, c, d]) => f32::from_le_bytes([a, b, c, d]),
            _ => 0.0,
        }
    }
    #[inline(always)]
    fn len(self) -> usize {
        self.0.len() / 4
    }
}

impl WeightRow for I8Row<'_> {
    #[inline(always)]
    fn get(self, i: usize) -> f32 {
        self.0.get(i).map_or(0.0, |&v| f32::from(v))
    }
    #[inline(always)]
    fn len(self) -> usize {
        self.0.len()
    }
}

/// `out[i][j] = dot(x[i], w[j])` for an MR x NR block, over `k = x[i].len()` elements.
///
/// All `x[i]` must have the same length `k` and all `w[j]` must hold `k` elements; otherwise
/// the result is computed over the shortest common prefix (never out of bounds).
#[inline]
pub fn dot_block_f32(isa: Isa, x: [&[f32]; MR], w: [F32Row<'_>; NR]) -> [[f32; NR]; MR] {
    match isa.0 {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: Feature (module doc, 1): `isa` proves AVX2 and FMA are available.
        Level::Avx2Fma => unsafe { x86::dot_block_f32_avx2(x, w) },
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: Feature (module doc, 1): `isa` proves SSE2 is available.
        Level::Sse2 => unsafe { x86::dot_block_f32_sse2(x, w) },
        _ => dot_block_portable(x, w),
    }
}

/// Hints the CPU to start loading `data` into cache (a no-op where there is no hint).
#[inline]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let base = data.as_ptr().cast::<i8>();
        for off in (0..core::mem::size_of_val(data)).step_by(64) {
            // SAFETY: a prefetch is a hint: it never faults and reads nothing
            // architecturally (the address, made with safe `wrapping_add`, is in `data`).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(off)) }
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let _ = data;
}

/// As [`dot_block_f32`] for int8 weight rows (unscaled).
#[inline]
pub fn dot_block_i8(isa: Isa, x: [&[f32]; MR], w: [I8Row<'_>; NR]) -> [[f32; NR]; MR] {
    match isa.0 {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: Feature (module doc, 1): `isa` proves AVX2 and FMA are available.
        Level::Avx2Fma => unsafe { x86::dot_block_i8_avx2(x, w) },
        _ => dot_block_portable(x, w),
    }
}

#[inline(always)]
fn dot_block_portable<W: WeightRow>(x: [&[f32]; MR], w: [W; NR]) -> [[f32; NR]; MR] {
    let k = common_len(&x, w.iter().map(|r| r.len()));
    let mut acc = [[0.0f32; NR]; MR];
    for (xi, acc_i) in x.iter().zip(acc.iter_mut()) {
        for (wj, a) in w.iter().zip(acc_i.iter_mut()) {
            let mut s = [0.0f32; 4];
            for (p, xv) in xi.iter().take(k).enumerate() {
                s[p % 4] += xv * wj.get(p);
            }
            *a = (s[0] + s[1]) + (s[2] + s[3]);
        }
    }
    acc
}

#[inline(always)]
fn common_len(x: &[&[f32]; MR], w: impl Iterator<Item = usize>) -> usize {
    let kx = x.iter().map(|r| r.len()).min().unwrap_or(0);
    w.fold(kx, usize::min)
}

/// Element-wise kernels that are written once in plain Rust and compiled three times: as is,
/// and inside `#[target_feature]` wrappers so the compiler auto-vectorises them for the
/// detected ISA.
macro_rules! multiversion {
    ($(#[$m:meta])* pub fn $name:ident($($arg:ident : $ty:ty),*) $(-> $ret:ty)? => $body:path;) => {
        $(#[$m])*
        #[inline]
        pub fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
            match isa.0 {
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                Level::Avx2Fma => {
                    #[target_feature(enable = "avx2,fma")]
                    fn avx2($($arg: $ty),*) $(-> $ret)? { $body($($arg),*) }
                    // SAFETY: Feature (module doc, 1): `isa` proves AVX2 and FMA.
                    unsafe { avx2($($arg),*) }
                }
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                Level::Sse2 => {
                    #[target_feature(enable = "sse2")]
                    fn sse2($($arg: $ty),*) $(-> $ret)? { $body($($arg),*) }
                    // SAFETY: Feature (module doc, 1): `isa` proves SSE2.
                    unsafe { sse2($($arg),*) }
                }
                _ => $body($($arg),*),
            }
        }
    };
}

multiversion! {
    /// `y += a * x` element-wise over the common length.
    pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) => crate::tensor::portable::axpy;
}
multiversion! {
    /// Exact-erf GELU in place (erf to ~1.5e-7 absolute).
    pub fn gelu(x: &mut [f32]) => crate::tensor::portable::gelu;
}
multiversion! {
    /// Softmax in place, numerically stable (max subtracted).
    pub fn softmax(x: &mut [f32]) => crate::tensor::portable::softmax;
}
multiversion! {
    /// Layer norm of one row in place: `(x - mean) / sqrt(var + eps) * gamma + beta`.
    pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) => crate::tensor::portable::layer_norm;
}

multiversion! {
    /// Fused multi-head self-attention (see [`crate::tensor::portable::attention`]).
    #[allow(clippy::too_many_arguments)]
    pub fn attention(q: &[f32], k: &[f32], v: &[f32], n: usize, heads: usize, hd: usize, ctx: &mut [f32], kt: &mut [f32], scores: &mut [f32]) => crate::tensor::portable::attention;
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod x86 {
    use super::*;

    /// The 12 horizontal sums of a 4 x 3 accumulator block, with `hadd` trees (about a
    /// fifth of the shuffles of 12 separate reductions; matters at K = 384).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn reduce12(c: &[__m256; 12]) -> [[f32; NR]; MR] {
        // hadd(a, b) = [a0+a1, a2+a3, b0+b1, b2+b3 | a4+a5, a6+a7, b4+b5, b6+b7]
        let t0 = _mm256_hadd_ps(c[0], c[1]);
        let t1 = _mm256_hadd_ps(c[2], c[3]);
        let t2 = _mm256_hadd_ps(c[4], c[5]);
        let t3 = _mm256_hadd_ps(c[6], c[7]);
        let t4 = _mm256_hadd_ps(c[8], c[9]);
        let t5 = _mm256_hadd_ps(c[10], c[11]);
        // u0 = [s0 s1 s2 s3 (low lanes) | s0 s1 s2 s3 (high lanes)], likewise u1, u2.
        let u0 = _mm256_hadd_ps(t0, t1);
        let u1 = _mm256_hadd_ps(t2, t3);
        let u2 = _mm256_hadd_ps(t4, t5);
        let lo = _mm256_permute2f128_ps::<0x20>(u0, u1);
        let hi = _mm256_permute2f128_ps::<0x31>(u0, u1);
        let s07 = _mm256_add_ps(lo, hi);
        let s811 = _mm_add_ps(_mm256_castps256_ps128(u2), _mm256_extractf128_ps::<1>(u2));
        let mut flat = [0.0f32; 12];
        let (a, b) = flat.split_at_mut(8);
        if let (Ok(a), Ok(b)) = (<&mut [f32; 8]>::try_from(a), <&mut [f32; 4]>::try_from(b)) {
            // SAFETY: Load/store (module doc, 2): writes exactly the 32 bytes of `a`.
            unsafe { _mm256_storeu_ps(a.as_mut_ptr(), s07) }
            // SAFETY: Load/store (module doc, 2): writes exactly the 16 bytes of `b`.
            unsafe { _mm_storeu_ps(b.as_mut_ptr(), s811) }
        }
        core::array::from_fn(|i| core::array::from_fn(|j| flat[i * NR + j]))
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn hsum128(v: __m128) -> f32 {
        let s = _mm_add_ps(v, _mm_movehl_ps(v, v));
        let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
        _mm_cvtss_f32(s)
    }

    #[inline(always)]
    fn load8(a: &[f32; 8]) -> __m256 {
        // SAFETY: Load/store (module doc, 2): reads exactly the 32 bytes of `a`.
        unsafe { _mm256_loadu_ps(a.as_ptr()) }
    }

    #[inline(always)]
    fn load8_le(a: &[u8; 32]) -> __m256 {
        // SAFETY: Load/store (module doc, 2): reads exactly the 32 bytes of `a` (x86 is
        // little-endian, as safetensors is).
        unsafe { _mm256_loadu_ps(a.as_ptr().cast::<f32>()) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn load8_i8(a: &[i8; 8]) -> __m256 {
        // SAFETY: Load/store (module doc, 2): reads exactly the 8 bytes of `a`.
        let v = unsafe { _mm_loadl_epi64(a.as_ptr().cast::<__m128i>()) };
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))
    }

    #[inline(always)]
    fn load4(a: &[f32; 4]) -> __m128 {
        // SAFETY: Load/store (module doc, 2): reads exactly the 16 bytes of `a`.
        unsafe { _mm_loadu_ps(a.as_ptr()) }
    }

    #[inline(always)]
    fn load4_le(a: &[u8; 16]) -> __m128 {
        // SAFETY: Load/store (module doc, 2): reads exactly the 16 bytes of `a`.
        unsafe { _mm_loadu_ps(a.as_ptr().cast::<f32>()) }
    }

    /// Scalar tail of a dot block, from element `from` to `k`.
    #[inline(always)]
    fn tail<W: WeightRow>(
        acc: &mut [[f32; NR]; MR],
        x: &[&[f32]; MR],
        w: &[W; NR],
        from: usize,
        k: usize,
    ) {
        for (xi, acc_i) in x.iter().zip(acc.iter_mut()) {
            for (wj, a) in w.iter().zip(acc_i.iter_mut()) {
                for p in from..k {
                    *a += xi.get(p).copied().unwrap_or(0.0) * wj.get(p);
                }
            }
        }
    }

    /// The f32 micro-kernel: 4 activation rows x 3 weight rows, 12 accumulators, 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_block_f32_avx2(x: [&[f32]; MR], w: [F32Row<'_>; NR]) -> [[f32; NR]; MR] {
        let k = common_len(&x, w.iter().map(|r| r.len()));
        let kv = k / 8;
        let (x0, _) = x[0][..kv * 8].as_chunks::<8>();
        let (x1, _) = x[1][..kv * 8].as_chunks::<8>();
        let (x2, _) = x[2][..kv * 8].as_chunks::<8>();
        let (x3, _) = x[3][..kv * 8].as_chunks::<8>();
        let (w0, _) = w[0].0[..kv * 32].as_chunks::<32>();
        let (w1, _) = w[1].0[..kv * 32].as_chunks::<32>();
        let (w2, _) = w[2].0[..kv * 32].as_chunks::<32>();
        let mut c = [_mm256_setzero_ps(); 12];
        for p in 0..kv {
            let b0 = load8_le(&w0[p]);
            let b1 = load8_le(&w1[p]);
            let b2 = load8_le(&w2[p]);
            let a = load8(&x0[p]);
            c[0] = _mm256_fmadd_ps(a, b0, c[0]);
            c[1] = _mm256_fmadd_ps(a, b1, c[1]);
            c[2] = _mm256_fmadd_ps(a, b2, c[2]);
            let a = load8(&x1[p]);
            c[3] = _mm256_fmadd_ps(a, b0, c[3]);
            c[4] = _mm256_fmadd_ps(a, b1, c[4]);
            c[5] = _mm256_fmadd_ps(a, b2, c[5]);
            let a = load8(&x2[p]);
            c[6] = _mm256_fmadd_ps(a, b0, c[6]);
            c[7] = _mm256_fmadd_ps(a, b1, c[7]);
            c[8] = _mm256_fmadd_ps(a, b2, c[8]);
            let a = load8(&x3[p]);
            c[9] = _mm256_fmadd_ps(a, b0, c[9]);
            c[10] = _mm256_fmadd_ps(a, b1, c[10]);
            c[11] = _mm256_fmadd_ps(a, b2, c[11]);
        }
        let mut out = reduce12(&c);
        tail(&mut out, &x, &w, kv * 8, k);
        out
    }

    /// The int8 micro-kernel: as the f32 one, weights sign-extended and converted in registers.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_block_i8_avx2(x: [&[f32]; MR], w: [I8Row<'_>; NR]) -> [[f32; NR]; MR] {
        let k = common_len(&x, w.iter().map(|r| r.len()));
        let kv = k / 8;
        let (x0, _) = x[0][..kv * 8].as_chunks::<8>();
        let (x1, _) = x[1][..kv * 8].as_chunks::<8>();
        let (x2, _) = x[2][..kv * 8].as_chunks::<8>();
        let (x3, _) = x[3][..kv * 8].as_chunks::<8>();
        let (w0, _) = w[0].0[..kv * 8].as_chunks::<8>();
        let (w1, _) = w[1].0[..kv * 8].as_chunks::<8>();
        let (w2, _) = w[2].0[..kv * 8].as_chunks::<8>();
        let mut c = [_mm256_setzero_ps(); 12];
        for p in 0..kv {
            let b0 = load8_i8(&w0[p]);
            let b1 = load8_i8(&w1[p]);
            let b2 = load8_i8(&w2[p]);
            let a = load8(&x0[p]);
            c[0] = _mm256_fmadd_ps(a, b0, c[0]);
            c[1] = _mm256_fmadd_ps(a, b1, c[1]);
            c[2] = _mm256_fmadd_ps(a, b2, c[2]);
            let a = load8(&x1[p]);
            c[3] = _mm256_fmadd_ps(a, b0, c[3]);
            c[4] = _mm256_fmadd_ps(a, b1, c[4]);
            c[5] = _mm256_fmadd_ps(a, b2, c[5]);
            let a = load8(&x2[p]);
            c[6] = _mm256_fmadd_ps(a, b0, c[6]);
            c[7] = _mm256_fmadd_ps(a, b1, c[7]);
            c[8] = _mm256_fmadd_ps(a, b2, c[8]);
            let a = load8(&x3[p]);
            c[9] = _mm256_fmadd_ps(a, b0, c[9]);
            c[10] = _mm256_fmadd_ps(a, b1, c[10]);
            c[11] = _mm256_fmadd_ps(a, b2, c[11]);
        }
        let mut out = reduce12(&c);
        tail(&mut out, &x, &w, kv * 8, k);
        out
    }

    /// The SSE2 f32 micro-kernel: 4 x 3 block, 4 lanes, separate multiply and add.
    #[target_feature(enable = "sse2")]
    pub(super) fn dot_block_f32_sse2(x: [&[f32]; MR], w: [F32Row<'_>; NR]) -> [[f32; NR]; MR] {
        let k = common_len(&x, w.iter().map(|r| r.len()));
        let kv = k / 4;
        let (x0, _) = x[0][..kv * 4].as_chunks::<4>();
        let (x1, _) = x[1][..kv * 4].as_chunks::<4>();
        let (x2, _) = x[2][..kv * 4].as_chunks::<4>();
        let (x3, _) = x[3][..kv * 4].as_chunks::<4>();
        let (w0, _) = w[0].0[..kv * 16].as_chunks::<16>();
        let (w1, _) = w[1].0[..kv * 16].as_chunks::<16>();
        let (w2, _) = w[2].0[..kv * 16].as_chunks::<16>();
        let mut c = [_mm_setzero_ps(); 12];
        for p in 0..kv {
            let b0 = load4_le(&w0[p]);
            let b1 = load4_le(&w1[p]);
            let b2 = load4_le(&w2[p]);
            for (i, xr) in [&x0[p], &x1[p], &x2[p], &x3[p]].into_iter().enumerate() {
                let a = load4(xr);
                c[i * 3] = _mm_add_ps(c[i * 3], _mm_mul_ps(a, b0));
                c[i * 3 + 1] = _mm_add_ps(c[i * 3 + 1], _mm_mul_ps(a, b1));
                c[i * 3 + 2] = _mm_add_ps(c[i * 3 + 2], _mm_mul_ps(a, b2));
            }
        }
        let mut out = [[0.0; NR]; MR];
        for (i, row) in out.iter_mut().enumerate() {
            for (j, o) in row.iter_mut().enumerate() {
                *o = hsum128(c[i * NR + j]);
            }
        }
        tail(&mut out, &x, &w, kv * 4, k);
        out
    }
}
