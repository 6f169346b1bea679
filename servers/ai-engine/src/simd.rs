//! The engine's only `unsafe`: CPU feature dispatch and SIMD loads/stores.
//!
//! Everything numeric that is hot goes through this module. Each kernel exists as a portable
//! body written in plain Rust (`#[inline(always)]`, safe) and, on x86_64, as explicit SSE2,
//! AVX2+FMA and AVX-512 versions (the GEMM micro-kernels by hand; the element-wise kernels
//! by compiling the portable body under each `#[target_feature]`). The caller picks a path with an [`Isa`], which can only be obtained from
//! [`Isa::detect`] or [`Isa::new`], both of which check CPUID (and, for AVX, XGETBV, i.e. that
//! the OS saves the YMM state; for AVX-512, the opmask and ZMM state) through the
//! `cpufeatures` crate, which works without std.
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
/// Weight rows per call of the wide (AVX-512) micro-kernel: 4 x 6 = 24 accumulators of the
/// 32 ZMM registers, 6 for the weight vectors, 1 for the activation.
pub const NR_WIDE: usize = 6;

/// An instruction-set level for the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Plain Rust, any target (whatever the compiler auto-vectorises).
    Portable,
    /// x86_64 SSE2, 128-bit, no FMA: the x86_64 baseline.
    Sse2,
    /// x86_64 AVX2 with FMA3, 256-bit.
    Avx2Fma,
    /// x86_64 AVX-512 F/BW/VL (with AVX2 and FMA), 512-bit; the OS saves the opmask and ZMM
    /// state (XCR0 checked).
    Avx512,
    /// [`Level::Avx512`] plus AVX-512 VNNI (`vpdpbusd`): int8 layers multiply u8
    /// activations by i8 weights in integers, 64 products per instruction.
    Avx512Vnni,
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
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
cpufeatures::new!(cpuid_avx512, "avx512f", "avx512bw", "avx512vl", "avx2", "fma");

impl Isa {
    /// The level, if this CPU supports it.
    pub fn new(level: Level) -> Option<Isa> {
        let ok = match level {
            Level::Portable => true,
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Level::Sse2 => cpuid_sse2::get(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Level::Avx2Fma => cpuid_avx2_fma::get(),
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Level::Avx512 => cpuid_avx512::get(),
            // CPUID.(EAX=7,ECX=0):ECX bit 11 is AVX512_VNNI; it uses the state the AVX-512
            // check already found enabled in XCR0.
            #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
            Level::Avx512Vnni => cpuid_avx512::get() && (__cpuid_count(7, 0).ecx >> 11) & 1 == 1,
            #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
            _ => false,
        };
        ok.then_some(Isa(level))
    }

    /// The best level this CPU supports.
    pub fn detect() -> Isa {
        [Level::Avx512Vnni, Level::Avx512, Level::Avx2Fma, Level::Sse2]
            .into_iter()
            .find_map(Isa::new)
            .unwrap_or(Isa(Level::Portable))
    }

    /// Every level this CPU supports, best last.
    pub fn all_supported() -> impl Iterator<Item = Isa> {
        [Level::Portable, Level::Sse2, Level::Avx2Fma, Level::Avx512, Level::Avx512Vnni]
            .into_iter()
            .filter_map(Isa::new)
    }

    /// Whether the GEMM uses the wide (`MR x NR_WIDE`, AVX-512) micro-kernels.
    pub fn wide(self) -> bool {
        matches!(self.0, Level::Avx512 | Level::Avx512Vnni)
    }

    /// Whether int8 layers run in integers ([`dot_block_u8i8_wide`] with `vpdpbusd`).
    pub fn vnni(self) -> bool {
        self.0 == Level::Avx512Vnni
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
        // SAFETY: Feature (module doc, 1): `isa` proves AVX2 and FMA are available (AVX-512
        // implies them: its constructor checks both).
        Level::Avx2Fma | Level::Avx512 | Level::Avx512Vnni => unsafe { x86::dot_block_f32_avx2(x, w) },
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: Feature (module doc, 1): `isa` proves SSE2 is available.
        Level::Sse2 => unsafe { x86::dot_block_f32_sse2(x, w) },
        _ => dot_block_portable(x, w),
    }
}

/// Hints the CPU to start loading `data` into the L2 cache (a no-op where there is no hint).
///
/// L2 (`T1`), not L1: streamed weights miss in DRAM, and L1 prefetches stall on the few L1
/// miss buffers (measured: about 20% slower at 16 tokens than `T1` a few blocks further ahead).
#[inline]
pub fn prefetch<T>(data: &[T]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        let base = data.as_ptr().cast::<i8>();
        for off in (0..core::mem::size_of_val(data)).step_by(64) {
            // SAFETY: a prefetch is a hint: it never faults and reads nothing
            // architecturally (the address, made with safe `wrapping_add`, is in `data`).
            unsafe { _mm_prefetch::<_MM_HINT_T1>(base.wrapping_add(off)) }
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
        // SAFETY: Feature (module doc, 1): `isa` proves AVX2 and FMA are available (AVX-512
        // implies them).
        Level::Avx2Fma | Level::Avx512 | Level::Avx512Vnni => unsafe { x86::dot_block_i8_avx2(x, w) },
        _ => dot_block_portable(x, w),
    }
}

/// The wide block (`MR x NR_WIDE`, the AVX-512 micro-kernel's shape): as [`dot_block_f32`].
#[inline]
pub fn dot_block_f32_wide(isa: Isa, x: [&[f32]; MR], w: [F32Row<'_>; NR_WIDE]) -> [[f32; NR_WIDE]; MR] {
    match isa.0 {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: Feature (module doc, 1): `isa` proves AVX-512 F/BW/VL, AVX2 and FMA.
        Level::Avx512 | Level::Avx512Vnni => unsafe { x86::dot_block_f32_avx512(x, w) },
        _ => dot_block_portable(x, w),
    }
}

/// As [`dot_block_f32_wide`] for int8 weight rows (unscaled).
#[inline]
pub fn dot_block_i8_wide(isa: Isa, x: [&[f32]; MR], w: [I8Row<'_>; NR_WIDE]) -> [[f32; NR_WIDE]; MR] {
    match isa.0 {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: Feature (module doc, 1): `isa` proves AVX-512 F/BW/VL, AVX2 and FMA.
        Level::Avx512 | Level::Avx512Vnni => unsafe { x86::dot_block_i8_avx512(x, w) },
        _ => dot_block_portable(x, w),
    }
}

/// A row of u8 activations (quantised by the caller, who keeps the row's scale and offset).
#[derive(Clone, Copy)]
pub struct U8Row<'a>(pub &'a [u8]);

/// `out[i][j] = sum_p x[i][p] * w[j][p]` over `k` elements, u8 times i8, summed exactly in
/// 32-bit integers and returned as f32 (exact while the sums stay below 2^24 in magnitude,
/// e.g. any `k <= 514`; beyond that, f32-rounded). Shortest common prefix on ragged input.
#[inline]
pub fn dot_block_u8i8_wide(isa: Isa, x: [U8Row<'_>; MR], w: [I8Row<'_>; NR_WIDE]) -> [[f32; NR_WIDE]; MR] {
    match isa.0 {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        // SAFETY: Feature (module doc, 1): `isa` proves AVX-512 F/BW/VL, VNNI, AVX2 and FMA.
        Level::Avx512Vnni => unsafe { x86::dot_block_u8i8_vnni(x, w) },
        _ => {
            let k = x.iter().map(|r| r.0.len()).chain(w.iter().map(|r| r.0.len())).min().unwrap_or(0);
            core::array::from_fn(|i| core::array::from_fn(|j| dot_u8i8(&x[i].0[..k], &w[j].0[..k]) as f32))
        }
    }
}

/// Integer dot product of u8 and i8 rows over their common length.
#[inline(always)]
fn dot_u8i8(x: &[u8], w: &[i8]) -> i32 {
    x.iter().zip(w).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum()
}

#[inline(always)]
fn dot_block_portable<W: WeightRow, const N: usize>(x: [&[f32]; MR], w: [W; N]) -> [[f32; N]; MR] {
    let k = common_len(&x, w.iter().map(|r| r.len()));
    let mut acc = [[0.0f32; N]; MR];
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
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),*) $(-> $ret:ty)? => $body:path;) => {
        $(#[$m])*
        #[inline]
        $vis fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
            match isa.0 {
                #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
                Level::Avx512 | Level::Avx512Vnni => {
                    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                    fn avx512($($arg: $ty),*) $(-> $ret)? { $body($($arg),*) }
                    // SAFETY: Feature (module doc, 1): `isa` proves AVX-512 F/BW/VL, AVX2, FMA.
                    unsafe { avx512($($arg),*) }
                }
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
    /// Quantises an activation row to u8, `x ~ scale * q + min` (see
    /// [`crate::tensor::portable::quantize_row_u8`]); returns `(scale, min)`.
    pub fn quantize_row_u8(x: &[f32], q: &mut [u8]) -> (f32, f32) => crate::tensor::portable::quantize_row_u8;
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
    fn attention_multi(q: &[f32], k: &[f32], v: &[f32], n: usize, heads: usize, hd: usize, ctx: &mut [f32], kt: &mut [f32], scores: &mut [f32]) => crate::tensor::portable::attention;
}

/// Fused multi-head self-attention (see [`crate::tensor::portable::attention`]). At the
/// AVX-512 levels with head size 32 (MiniLM) it runs a hand-written kernel: LLVM's 512-bit
/// auto-vectorisation of the portable body fell back to 128-bit vectors and ran several times
/// slower than its AVX2 build. Other head sizes at those levels take the AVX2 build.
#[allow(clippy::too_many_arguments)]
#[inline]
pub fn attention(isa: Isa, q: &[f32], k: &[f32], v: &[f32], n: usize, heads: usize, hd: usize, ctx: &mut [f32], kt: &mut [f32], scores: &mut [f32]) {
    if isa.wide() {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if hd == 32 {
            // SAFETY: Feature (module doc, 1): `isa.wide()` proves AVX-512 F/BW/VL, AVX2, FMA.
            unsafe { x86::attention32_avx512(q, k, v, n, heads, ctx, kt, scores) };
            return;
        }
        // The AVX-512 levels are only constructed after checking AVX2 and FMA too
        // (`cpuid_avx512`), so this `Isa` holds the invariant.
        attention_multi(Isa(Level::Avx2Fma), q, k, v, n, heads, hd, ctx, kt, scores)
    } else {
        attention_multi(isa, q, k, v, n, heads, hd, ctx, kt, scores)
    }
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
    fn tail<W: WeightRow, const N: usize>(
        acc: &mut [[f32; N]; MR],
        x: &[&[f32]; MR],
        w: &[W; N],
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


    #[inline(always)]
    fn load16(a: &[f32; 16]) -> __m512 {
        // SAFETY: Load/store (module doc, 2): reads exactly the 64 bytes of `a`; Feature (1): only
        // called from the `#[target_feature(enable = "avx512f,...")]` kernels below.
        unsafe { _mm512_loadu_ps(a.as_ptr()) }
    }

    #[inline(always)]
    fn load16_le(a: &[u8; 64]) -> __m512 {
        // SAFETY: Load/store (module doc, 2): reads exactly the 64 bytes of `a`; Feature (1): only
        // called from the `#[target_feature(enable = "avx512f,...")]` kernels below.
        unsafe { _mm512_loadu_ps(a.as_ptr().cast::<f32>()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    fn load16_i8(a: &[i8; 16]) -> __m512 {
        // SAFETY: Load/store (module doc, 2): reads exactly the 16 bytes of `a`.
        let v = unsafe { _mm_loadu_si128(a.as_ptr().cast::<__m128i>()) };
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v))
    }

    #[inline(always)]
    fn store16(v: __m512) -> [f32; 16] {
        let mut out = [0.0f32; 16];
        // SAFETY: Load/store (module doc, 2): writes exactly the 64 bytes of `out`; Feature (1): only
        // called from the `#[target_feature(enable = "avx512f,...")]` kernels below.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), v) }
        out
    }

    /// Levels 1 and 2 of the reduction tree: from 4 vectors, one whose 128-bit block `q`
    /// holds 4 partial sums of vector `q`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    fn reduce4_blocks(v: [__m512; 4]) -> __m512 {
        // [a.b0+a.b2, a.b1+a.b3, b.b0+b.b2, b.b1+b.b3]
        let ab = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(v[0], v[1]), _mm512_shuffle_f32x4::<0xEE>(v[0], v[1]));
        let cd = _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(v[2], v[3]), _mm512_shuffle_f32x4::<0xEE>(v[2], v[3]));
        // Block q: the 4 partial sums of vector q.
        _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(ab, cd), _mm512_shuffle_f32x4::<0xDD>(ab, cd))
    }

    /// The 16 horizontal sums of `v`: lane `4q + r` of the result is the sum of `v[4r + q]`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    fn reduce16(v: &[__m512; 16]) -> [f32; 16] {
        let t0 = reduce4_blocks([v[0], v[1], v[2], v[3]]);
        let t1 = reduce4_blocks([v[4], v[5], v[6], v[7]]);
        let t2 = reduce4_blocks([v[8], v[9], v[10], v[11]]);
        let t3 = reduce4_blocks([v[12], v[13], v[14], v[15]]);
        // Per block: [t0_02, t1_02, t0_13, t1_13] (index = lanes summed).
        let u0 = _mm512_add_ps(_mm512_unpacklo_ps(t0, t1), _mm512_unpackhi_ps(t0, t1));
        let u1 = _mm512_add_ps(_mm512_unpacklo_ps(t2, t3), _mm512_unpackhi_ps(t2, t3));
        let (u0, u1) = (_mm512_castps_pd(u0), _mm512_castps_pd(u1));
        // Per block q: [t0, t1, t2, t3] totals, i.e. vectors q, 4 + q, 8 + q, 12 + q.
        let lo = _mm512_castpd_ps(_mm512_unpacklo_pd(u0, u1));
        let hi = _mm512_castpd_ps(_mm512_unpackhi_pd(u0, u1));
        let lanes = store16(_mm512_add_ps(lo, hi));
        core::array::from_fn(|i| lanes[(i % 4) * 4 + i / 4])
    }

    /// The 8 horizontal sums of `v`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    fn reduce8(v: &[__m512; 8]) -> [f32; 8] {
        let t0 = reduce4_blocks([v[0], v[1], v[2], v[3]]);
        let t1 = reduce4_blocks([v[4], v[5], v[6], v[7]]);
        let u = _mm512_add_ps(_mm512_unpacklo_ps(t0, t1), _mm512_unpackhi_ps(t0, t1));
        // Per block q: lane 0 = vector q, lane 1 = vector 4 + q.
        let f = _mm512_add_ps(u, _mm512_permute_ps::<0x4E>(u));
        let lanes = store16(f);
        core::array::from_fn(|i| lanes[(i % 4) * 4 + i / 4])
    }

    /// The 24 sums of a 4 x 6 accumulator block.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    fn reduce24(c: &[[__m512; NR_WIDE]; MR]) -> [[f32; NR_WIDE]; MR] {
        let flat: [__m512; 24] = core::array::from_fn(|f| c[f / NR_WIDE][f % NR_WIDE]);
        let (lo, hi) = flat.split_at(16);
        let mut sums = [0.0f32; 24];
        if let (Ok(lo), Ok(hi)) = (<&[__m512; 16]>::try_from(lo), <&[__m512; 8]>::try_from(hi)) {
            sums[..16].copy_from_slice(&reduce16(lo));
            sums[16..].copy_from_slice(&reduce8(hi));
        }
        core::array::from_fn(|i| core::array::from_fn(|j| sums[i * NR_WIDE + j]))
    }

    /// The AVX-512 f32 micro-kernel: 4 activation rows x 6 weight rows, 24 accumulators,
    /// 16 lanes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) fn dot_block_f32_avx512(x: [&[f32]; MR], w: [F32Row<'_>; NR_WIDE]) -> [[f32; NR_WIDE]; MR] {
        let k = common_len(&x, w.iter().map(|r| r.len()));
        let kv = k / 16;
        let (x0, _) = x[0][..kv * 16].as_chunks::<16>();
        let (x1, _) = x[1][..kv * 16].as_chunks::<16>();
        let (x2, _) = x[2][..kv * 16].as_chunks::<16>();
        let (x3, _) = x[3][..kv * 16].as_chunks::<16>();
        let (w0, _) = w[0].0[..kv * 64].as_chunks::<64>();
        let (w1, _) = w[1].0[..kv * 64].as_chunks::<64>();
        let (w2, _) = w[2].0[..kv * 64].as_chunks::<64>();
        let (w3, _) = w[3].0[..kv * 64].as_chunks::<64>();
        let (w4, _) = w[4].0[..kv * 64].as_chunks::<64>();
        let (w5, _) = w[5].0[..kv * 64].as_chunks::<64>();
        let xs = x0.iter().zip(x1).zip(x2).zip(x3);
        let ws = w0.iter().zip(w1).zip(w2).zip(w3).zip(w4).zip(w5);
        let mut c = [[_mm512_setzero_ps(); NR_WIDE]; MR];
        for ((((a0, a1), a2), a3), (((((b0, b1), b2), b3), b4), b5)) in xs.zip(ws) {
            let b = [load16_le(b0), load16_le(b1), load16_le(b2), load16_le(b3), load16_le(b4), load16_le(b5)];
            for (ci, xi) in c.iter_mut().zip([a0, a1, a2, a3]) {
                let a = load16(xi);
                for (cij, bj) in ci.iter_mut().zip(&b) {
                    *cij = _mm512_fmadd_ps(a, *bj, *cij);
                }
            }
        }
        let mut out = reduce24(&c);
        tail(&mut out, &x, &w, kv * 16, k);
        out
    }

    /// The AVX-512 int8-weight micro-kernel: as the f32 one, weights sign-extended and
    /// converted in registers.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) fn dot_block_i8_avx512(x: [&[f32]; MR], w: [I8Row<'_>; NR_WIDE]) -> [[f32; NR_WIDE]; MR] {
        let k = common_len(&x, w.iter().map(|r| r.len()));
        let kv = k / 16;
        let (x0, _) = x[0][..kv * 16].as_chunks::<16>();
        let (x1, _) = x[1][..kv * 16].as_chunks::<16>();
        let (x2, _) = x[2][..kv * 16].as_chunks::<16>();
        let (x3, _) = x[3][..kv * 16].as_chunks::<16>();
        let (w0, _) = w[0].0[..kv * 16].as_chunks::<16>();
        let (w1, _) = w[1].0[..kv * 16].as_chunks::<16>();
        let (w2, _) = w[2].0[..kv * 16].as_chunks::<16>();
        let (w3, _) = w[3].0[..kv * 16].as_chunks::<16>();
        let (w4, _) = w[4].0[..kv * 16].as_chunks::<16>();
        let (w5, _) = w[5].0[..kv * 16].as_chunks::<16>();
        let xs = x0.iter().zip(x1).zip(x2).zip(x3);
        let ws = w0.iter().zip(w1).zip(w2).zip(w3).zip(w4).zip(w5);
        let mut c = [[_mm512_setzero_ps(); NR_WIDE]; MR];
        for ((((a0, a1), a2), a3), (((((b0, b1), b2), b3), b4), b5)) in xs.zip(ws) {
            let b = [load16_i8(b0), load16_i8(b1), load16_i8(b2), load16_i8(b3), load16_i8(b4), load16_i8(b5)];
            for (ci, xi) in c.iter_mut().zip([a0, a1, a2, a3]) {
                let a = load16(xi);
                for (cij, bj) in ci.iter_mut().zip(&b) {
                    *cij = _mm512_fmadd_ps(a, *bj, *cij);
                }
            }
        }
        let mut out = reduce24(&c);
        tail(&mut out, &x, &w, kv * 16, k);
        out
    }

    #[inline(always)]
    fn load64_u8(a: &[u8; 64]) -> __m512i {
        // SAFETY: Load/store (module doc, 2): reads exactly the 64 bytes of `a`; Feature (1): only
        // called from the `#[target_feature(enable = "avx512f,...")]` kernels below.
        unsafe { _mm512_loadu_si512(a.as_ptr().cast::<__m512i>()) }
    }

    #[inline(always)]
    fn load64_i8(a: &[i8; 64]) -> __m512i {
        // SAFETY: Load/store (module doc, 2): reads exactly the 64 bytes of `a`; Feature (1): only
        // called from the `#[target_feature(enable = "avx512f,...")]` kernels below.
        unsafe { _mm512_loadu_si512(a.as_ptr().cast::<__m512i>()) }
    }

    /// The VNNI micro-kernel: 4 u8 activation rows x 6 i8 weight rows, 24 i32 accumulators,
    /// 64 products per `vpdpbusd`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,avx512vnni")]
    pub(super) fn dot_block_u8i8_vnni(x: [U8Row<'_>; MR], w: [I8Row<'_>; NR_WIDE]) -> [[f32; NR_WIDE]; MR] {
        let k = x.iter().map(|r| r.0.len()).chain(w.iter().map(|r| r.0.len())).min().unwrap_or(0);
        let kv = k / 64;
        let (x0, _) = x[0].0[..kv * 64].as_chunks::<64>();
        let (x1, _) = x[1].0[..kv * 64].as_chunks::<64>();
        let (x2, _) = x[2].0[..kv * 64].as_chunks::<64>();
        let (x3, _) = x[3].0[..kv * 64].as_chunks::<64>();
        let (w0, _) = w[0].0[..kv * 64].as_chunks::<64>();
        let (w1, _) = w[1].0[..kv * 64].as_chunks::<64>();
        let (w2, _) = w[2].0[..kv * 64].as_chunks::<64>();
        let (w3, _) = w[3].0[..kv * 64].as_chunks::<64>();
        let (w4, _) = w[4].0[..kv * 64].as_chunks::<64>();
        let (w5, _) = w[5].0[..kv * 64].as_chunks::<64>();
        let xs = x0.iter().zip(x1).zip(x2).zip(x3);
        let ws = w0.iter().zip(w1).zip(w2).zip(w3).zip(w4).zip(w5);
        let mut c = [[_mm512_setzero_si512(); NR_WIDE]; MR];
        for ((((a0, a1), a2), a3), (((((b0, b1), b2), b3), b4), b5)) in xs.zip(ws) {
            let b = [load64_i8(b0), load64_i8(b1), load64_i8(b2), load64_i8(b3), load64_i8(b4), load64_i8(b5)];
            for (ci, xi) in c.iter_mut().zip([a0, a1, a2, a3]) {
                let a = load64_u8(xi);
                for (cij, bj) in ci.iter_mut().zip(&b) {
                    *cij = _mm512_dpbusd_epi32(*cij, a, *bj);
                }
            }
        }
        // Each i32 lane sums 4 products per 64 elements, |lane| <= 4 * 255 * 128 * k / 64, so
        // it converts to f32 exactly for k <= 8192; the 16-lane sum then rounds in f32 only
        // beyond 2^24 (k > 514), far below the quantisation error.
        let mut cf = [[_mm512_setzero_ps(); NR_WIDE]; MR];
        for (cfi, ci) in cf.iter_mut().zip(&c) {
            for (f, v) in cfi.iter_mut().zip(ci) {
                *f = _mm512_cvtepi32_ps(*v);
            }
        }
        let mut out = reduce24(&cf);
        let from = kv * 64;
        for (xi, oi) in x.iter().zip(out.iter_mut()) {
            for (wj, o) in w.iter().zip(oi.iter_mut()) {
                if let (Some(a), Some(b)) = (xi.0.get(from..k), wj.0.get(from..k)) {
                    *o += dot_u8i8(a, b) as f32;
                }
            }
        }
        out
    }

    /// Attention for head size 32, 4 query rows per block: scores 32 keys at a time (8 ZMM
    /// accumulators, broadcast queries against transposed keys; the last keys 16 at a time),
    /// softmax, then the weighted
    /// sum of values for the 4 rows at once (8 accumulators). Same contract as
    /// [`crate::tensor::portable::attention`] (wrong sizes leave `ctx` untouched).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
    pub(super) fn attention32_avx512(q: &[f32], k: &[f32], v: &[f32], n: usize, heads: usize, ctx: &mut [f32], kt: &mut [f32], scores: &mut [f32]) {
        const HD: usize = 32;
        const ROWS: usize = 4;
        let h = heads * HD;
        let nh = n * h;
        if n == 0 || q.len() < nh || k.len() < nh || v.len() < nh || ctx.len() < nh || kt.len() < n * HD || scores.len() < ROWS * n {
            return;
        }
        let scale = 1.0 / libm::sqrtf(HD as f32);
        let kt = &mut kt[..n * HD];
        let scores = &mut scores[..ROWS * n];
        let full = n / 32 * 32;
        let row16 = |s: &[f32], at: usize| s.get(at..at + 16).and_then(|x| <&[f32; 16]>::try_from(x).ok()).map(load16);
        for off in (0..h).step_by(HD) {
            for (j, kr) in k.chunks_exact(h).take(n).enumerate() {
                for (d, &kv) in kr[off..off + HD].iter().enumerate() {
                    kt[d * n + j] = kv;
                }
            }
            for i0 in (0..n).step_by(ROWS) {
                let rows = (n - i0).min(ROWS);
                let mut qs = [[0.0f32; HD]; ROWS];
                for (r, qr) in qs.iter_mut().enumerate() {
                    let i = i0 + r.min(rows - 1);
                    for (d, s) in qr.iter_mut().zip(&q[i * h + off..i * h + off + HD]) {
                        *d = s * scale;
                    }
                }
                for j0 in (0..full).step_by(32) {
                    let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
                    for (d, ktr) in kt.chunks_exact(n).take(HD).enumerate() {
                        let (Some(k0), Some(k1)) = (row16(ktr, j0), row16(ktr, j0 + 16)) else {
                            continue;
                        };
                        for (a, qr) in acc.iter_mut().zip(&qs) {
                            let qb = _mm512_set1_ps(qr[d]);
                            a[0] = _mm512_fmadd_ps(qb, k0, a[0]);
                            a[1] = _mm512_fmadd_ps(qb, k1, a[1]);
                        }
                    }
                    for (a, s) in acc.iter().zip(scores.chunks_exact_mut(n)) {
                        let lo = store16(a[0]);
                        let hi = store16(a[1]);
                        s[j0..j0 + 16].copy_from_slice(&lo);
                        s[j0 + 16..j0 + 32].copy_from_slice(&hi);
                    }
                }
                // The last keys (fewer than 32), 16 at a time through a zero-padded copy.
                for j0 in (full..n).step_by(16) {
                    let cnt = (n - j0).min(16);
                    let mut acc = [_mm512_setzero_ps(); ROWS];
                    for (d, ktr) in kt.chunks_exact(n).take(HD).enumerate() {
                        let mut buf = [0.0f32; 16];
                        buf[..cnt].copy_from_slice(&ktr[j0..j0 + cnt]);
                        let kv = load16(&buf);
                        for (a, qr) in acc.iter_mut().zip(&qs) {
                            *a = _mm512_fmadd_ps(_mm512_set1_ps(qr[d]), kv, *a);
                        }
                    }
                    for (a, s) in acc.iter().zip(scores.chunks_exact_mut(n)) {
                        s[j0..j0 + cnt].copy_from_slice(&store16(*a)[..cnt]);
                    }
                }
                for s in scores.chunks_exact_mut(n).take(rows) {
                    crate::tensor::portable::softmax(s);
                }
                let mut acc = [[_mm512_setzero_ps(); 2]; ROWS];
                for (j, vr) in v.chunks_exact(h).take(n).enumerate() {
                    let (Some(v0), Some(v1)) = (row16(vr, off), row16(vr, off + 16)) else {
                        continue;
                    };
                    for (r, a) in acc.iter_mut().enumerate() {
                        let pb = _mm512_set1_ps(scores.get(r * n + j).copied().unwrap_or(0.0));
                        a[0] = _mm512_fmadd_ps(pb, v0, a[0]);
                        a[1] = _mm512_fmadd_ps(pb, v1, a[1]);
                    }
                }
                for (r, a) in acc.iter().enumerate().take(rows) {
                    let i = i0 + r;
                    let out = &mut ctx[i * h + off..i * h + off + HD];
                    out[..16].copy_from_slice(&store16(a[0]));
                    out[16..].copy_from_slice(&store16(a[1]));
                }
            }
        }
    }
}
