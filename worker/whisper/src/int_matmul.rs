//! The encoder's linear layers as integer products, for a browser worker.
//!
//! In a browser worker the encoder's matrix products are most of its time,
//! and wasm's SIMD128 has no fused multiply-add: an f32 product costs a
//! multiply and an add per four terms. `i32x4.dot_i16x8_s` does eight
//! multiply-adds of i16 lanes in one instruction (x86's `pmaddwd`).
//!
//! Weights are quantized once, per output row; each input row when it comes
//! in, so a loud frame does not coarsen a quiet one. Both to as many levels
//! as an exact i32 sum allows (`levels`: ±2,364 for 384-wide rows, ±1,182
//! for the MLP's 1536-wide ones), not to int8's ±127 as faster-whisper's
//! int8 mode does: the lanes are i16 either way, so the finer values cost
//! nothing, and with ±127 the word error rate rose by a point on a long
//! test clip where with these it matches the f32 encoder's (docs/whisper.md).
//!
//! On in a browser worker, off natively (`Whisper::for_inference`).

/// Terms per SIMD step: eight i16 lanes.
const LANES: usize = 8;

/// A `rows × cols` weight matrix (`y = x · Wᵀ`), quantized per row.
pub struct IntWeights {
    rows: usize,
    /// `cols` rounded up to whole SIMD steps; the padding is zero.
    stride: usize,
    cols: usize,
    /// Values in −levels..=levels, as i16 lanes.
    q: Vec<i16>,
    scales: Vec<f32>,
    /// What weights and input values are quantized to: −levels..=levels.
    levels: f32,
}

/// The most levels rows of `width` values may be quantized to, weights and
/// inputs alike: a row's sum, `width` terms of at most `levels²`, stays
/// exact in i32, and each value fits an i16 lane.
fn levels(width: usize) -> f32 {
    let exact = (f64::from(i32::MAX) / width.max(1) as f64).sqrt();
    exact.min(f64::from(i16::MAX)).floor() as f32
}

/// Quantizes `values` into `out` (zero-padded to its length) to
/// −levels..=levels: the scale that maps the largest magnitude to `levels`.
fn quantize_row(values: &[f32], out: &mut [i16], levels: f32) -> f32 {
    let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let inv = if max > 0.0 { levels / max } else { 0.0 };
    for (q, v) in out.iter_mut().zip(values) {
        // Round half away from zero without libm's `round` (a call in wasm).
        let scaled = v * inv;
        *q = (scaled + 0.5f32.copysign(scaled)) as i16;
    }
    max / levels
}

impl IntWeights {
    /// Quantizes a row-major `rows × cols` f32 matrix.
    pub fn new(w: &[f32], rows: usize, cols: usize) -> Option<Self> {
        if cols == 0 || w.len() != rows * cols {
            return None;
        }
        let stride = cols.div_ceil(LANES) * LANES;
        let row_levels = levels(stride);
        let mut q = vec![0i16; rows * stride];
        let scales = w
            .chunks_exact(cols)
            .zip(q.chunks_exact_mut(stride))
            .map(|(row, out)| quantize_row(row, out, row_levels))
            .collect();
        Some(Self {
            rows,
            stride,
            cols,
            q,
            scales,
            levels: row_levels,
        })
    }

    /// The most [`matmul`](Self::matmul)'s product of input row `x` with
    /// weight row `w` (both f32, as given) can be off from the f32 product:
    /// each factor is off by at most half a step of its row's scale.
    pub fn error_bound(&self, x: &[f32], w: &[f32]) -> f32 {
        let step = |row: &[f32]| row.iter().fold(0f32, |m, v| m.max(v.abs())) / self.levels;
        let (xs, ws) = (step(x), step(w));
        x.iter()
            .zip(w)
            .map(|(a, b)| a.abs() * ws / 2.0 + b.abs() * xs / 2.0 + xs * ws / 4.0)
            .sum()
    }

    /// `x · Wᵀ` for `x` of `n` rows of `cols` values: `n × rows`, row-major.
    pub fn matmul(&self, x: &[f32]) -> Vec<f32> {
        let n = x.len() / self.cols;
        let mut xq = vec![0i16; n * self.stride];
        let xs: Vec<f32> = x
            .chunks_exact(self.cols)
            .zip(xq.chunks_exact_mut(self.stride))
            .map(|(row, out)| quantize_row(row, out, self.levels))
            .collect();
        let mut sums = vec![0i32; n * self.rows];
        products(&xq, &self.q, self.stride, &mut sums);
        sums.chunks_exact(self.rows)
            .zip(&xs)
            .flat_map(|(row, sx)| {
                row.iter()
                    .zip(&self.scales)
                    .map(move |(sum, sw)| *sum as f32 * (sx * sw))
            })
            .collect()
    }
}

/// Every integer dot product of a row of `x` with a row of `w` (both of
/// width `stride`): `sums[i × w_rows + j]`, four rows of `x` by two of `w`
/// at a time: eight accumulators and six loaded vectors fit x86's sixteen
/// vector registers, so nothing spills in the inner loop.
fn products(x: &[i16], w: &[i16], stride: usize, sums: &mut [i32]) {
    let x_rows: Vec<&[i16]> = x.chunks_exact(stride).collect();
    let w_rows: Vec<&[i16]> = w.chunks_exact(stride).collect();
    let n = w_rows.len();
    let mut put = |i: usize, j: usize, sum: i32| sums[i * n + j] = sum;
    let whole_x = x_rows.len() / X_ROWS * X_ROWS;
    let whole_w = w_rows.len() / W_ROWS * W_ROWS;
    for i in (0..whole_x).step_by(X_ROWS) {
        let xs = [x_rows[i], x_rows[i + 1], x_rows[i + 2], x_rows[i + 3]];
        for j in (0..whole_w).step_by(W_ROWS) {
            let sums = lanes::tile(xs, [w_rows[j], w_rows[j + 1]]);
            for (a, row) in sums.iter().enumerate() {
                for (b, sum) in row.iter().enumerate() {
                    put(i + a, j + b, *sum);
                }
            }
        }
        for (j, w) in w_rows.iter().enumerate().skip(whole_w) {
            for (a, x) in xs.iter().enumerate() {
                put(i + a, j, lanes::single(x, w));
            }
        }
    }
    for (i, x) in x_rows.iter().enumerate().skip(whole_x) {
        for (j, w) in w_rows.iter().enumerate() {
            put(i, j, lanes::single(x, w));
        }
    }
}

const X_ROWS: usize = 4;
const W_ROWS: usize = 2;

/// The tile and the single dot product over eight-lane multiply-adds:
/// wasm's `i32x4.dot_i16x8_s`, or its model, x86's `pmaddwd` (SSE2, in
/// every x86-64), so that native tests and `potluck transcribe
/// --integer-encoder` run the browser's arithmetic at a useful speed.
#[cfg(any(target_arch = "wasm32", target_arch = "x86_64"))]
mod lanes {
    use super::{LANES, W_ROWS, X_ROWS};
    #[cfg(target_arch = "wasm32")]
    use core::arch::wasm32::*;
    #[cfg(target_arch = "x86_64")]
    use core::arch::x86_64::*;

    #[cfg(target_arch = "wasm32")]
    type V = v128;
    #[cfg(target_arch = "x86_64")]
    type V = __m128i;

    /// Eight lanes of `row` from `k`; the callers keep `k + 8 <= row.len()`
    /// for every row (the widths are whole multiples of eight).
    #[inline(always)]
    fn load(row: &[i16], k: usize) -> V {
        debug_assert!(k + LANES <= row.len());
        // SAFETY: in bounds (above); neither load needs alignment.
        unsafe {
            #[cfg(target_arch = "wasm32")]
            return v128_load(row.as_ptr().add(k).cast());
            #[cfg(target_arch = "x86_64")]
            return _mm_loadu_si128(row.as_ptr().add(k).cast());
        }
    }

    /// `acc` plus the four sums of adjacent products of `x` and `w`.
    #[inline(always)]
    fn multiply_add(acc: V, x: V, w: V) -> V {
        #[cfg(target_arch = "wasm32")]
        return i32x4_add(acc, i32x4_dot_i16x8(x, w));
        // SAFETY: SSE2 is part of x86-64.
        #[cfg(target_arch = "x86_64")]
        return unsafe { _mm_add_epi32(acc, _mm_madd_epi16(x, w)) };
    }

    #[inline(always)]
    fn zero() -> V {
        #[cfg(target_arch = "wasm32")]
        return i32x4_splat(0);
        // SAFETY: SSE2 is part of x86-64.
        #[cfg(target_arch = "x86_64")]
        return unsafe { _mm_setzero_si128() };
    }

    #[inline(always)]
    fn total(v: V) -> i32 {
        // SAFETY: both vectors are 16 bytes, as is [i32; 4].
        let lanes: [i32; 4] = unsafe { core::mem::transmute(v) };
        lanes.iter().sum()
    }

    /// `X_ROWS × W_ROWS` dot products over the whole width.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    pub(super) fn tile(xs: [&[i16]; X_ROWS], ws: [&[i16]; W_ROWS]) -> [[i32; W_ROWS]; X_ROWS] {
        let width = xs[0].len();
        assert!(width.is_multiple_of(LANES) && xs.iter().chain(&ws).all(|r| r.len() == width));
        let mut acc = [[zero(); W_ROWS]; X_ROWS];
        for k in (0..width).step_by(LANES) {
            let w = [load(ws[0], k), load(ws[1], k)];
            for (a, x) in acc.iter_mut().zip(xs) {
                let x = load(x, k);
                a[0] = multiply_add(a[0], x, w[0]);
                a[1] = multiply_add(a[1], x, w[1]);
            }
        }
        acc.map(|row| row.map(total))
    }

    /// One dot product, for the rows past the last whole tile.
    #[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
    pub(super) fn single(x: &[i16], w: &[i16]) -> i32 {
        assert!(x.len().is_multiple_of(LANES) && w.len() == x.len());
        let mut acc = zero();
        for k in (0..x.len()).step_by(LANES) {
            acc = multiply_add(acc, load(x, k), load(w, k));
        }
        total(acc)
    }
}

/// Elsewhere, the same sums one term at a time.
#[cfg(not(any(target_arch = "wasm32", target_arch = "x86_64")))]
mod lanes {
    use super::{W_ROWS, X_ROWS};

    pub(super) fn tile(xs: [&[i16]; X_ROWS], ws: [&[i16]; W_ROWS]) -> [[i32; W_ROWS]; X_ROWS] {
        xs.map(|x| ws.map(|w| single(x, w)))
    }

    pub(super) fn single(x: &[i16], w: &[i16]) -> i32 {
        x.iter()
            .zip(w)
            .map(|(a, b)| i32::from(*a) * i32::from(*b))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_product(x: &[f32], w: &[f32], cols: usize) -> Vec<f32> {
        x.chunks_exact(cols)
            .flat_map(|xr| {
                w.chunks_exact(cols)
                    .map(move |wr| xr.iter().zip(wr).map(|(a, b)| a * b).sum())
            })
            .collect()
    }

    /// Deterministic values in −1..1 with some rows much louder than others.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let v = (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
                if i % 97 < 7 {
                    v * 8.0
                } else {
                    v
                }
            })
            .collect()
    }

    #[test]
    fn matches_the_f32_product_within_quantization_error_for_every_tile_edge() {
        // Widths not a multiple of 8, and row counts past whole tiles.
        for (n, rows, cols) in [(9, 5, 20), (4, 2, 8), (1, 1, 3), (13, 7, 384)] {
            let x = values(n * cols, 1);
            let w = values(rows * cols, 2);
            let q = IntWeights::new(&w, rows, cols).unwrap();
            let got = q.matmul(&x);
            let want = f32_product(&x, &w, cols);
            assert_eq!(got.len(), want.len());
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                let row = &x[i / rows * cols..][..cols];
                let wrow = &w[i % rows * cols..][..cols];
                let bound = q.error_bound(row, wrow);
                assert!(
                    (g - e).abs() <= bound * 1.01 + 1e-6,
                    "{n}x{rows}x{cols} [{i}]: {g} vs {e} (bound {bound})"
                );
            }
        }
    }

    #[test]
    fn the_vector_tiles_give_the_exact_integer_sums() {
        let (n, rows, stride) = (7, 5, 24);
        let ints = |len, seed| -> Vec<i16> {
            let v = values(len, seed);
            v.iter()
                .map(|v| (v * 15.0).clamp(-127.0, 127.0) as i16)
                .collect()
        };
        let (x, w) = (ints(n * stride, 3), ints(rows * stride, 4));
        let mut sums = vec![0; n * rows];
        products(&x, &w, stride, &mut sums);
        for (i, xr) in x.chunks_exact(stride).enumerate() {
            for (j, wr) in w.chunks_exact(stride).enumerate() {
                let want: i32 = xr
                    .iter()
                    .zip(wr)
                    .map(|(a, b)| i32::from(*a) * i32::from(*b))
                    .sum();
                assert_eq!(sums[i * rows + j], want, "row {i}, weight row {j}");
            }
        }
    }

    #[test]
    fn the_widest_rows_at_full_scale_do_not_overflow() {
        // Every term at its largest: the sum is exactly at the bound.
        for cols in [384, 1536, 1540] {
            let q = IntWeights::new(&vec![-1.0; cols], 1, cols).unwrap();
            let got = q.matmul(&vec![2.0; cols])[0];
            assert!(
                (got + 2.0 * cols as f32).abs() < 1e-3 * cols as f32,
                "{cols}: {got}"
            );
        }
        assert_eq!(levels(384), 2_364.0);
        assert_eq!(levels(1536), 1_182.0);
    }

    #[test]
    fn an_all_zero_row_gives_zeros_not_nan() {
        let q = IntWeights::new(&[0.0; 16], 2, 8).unwrap();
        assert_eq!(q.matmul(&[0.0; 8]), [0.0, 0.0]);
        assert!(IntWeights::new(&[1.0; 5], 2, 3).is_none());
    }
}
