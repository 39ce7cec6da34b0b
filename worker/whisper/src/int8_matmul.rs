//! The encoder's linear layers with int8 weights and activations, as
//! faster-whisper's int8 mode computes them.
//!
//! In a browser worker the encoder's matrix products are most of its time,
//! and wasm's SIMD128 has no fused multiply-add: an f32 product costs a
//! multiply and an add per four terms. `i32x4.dot_i16x8_s` does eight
//! multiply-adds in one instruction (x86's `pmaddwd`). Weights are quantized
//! once, per output row; each input row is quantized when it comes in, so a
//! loud frame does not coarsen a quiet one. Sums stay exact in i32: at most
//! 4 × 1280 terms of at most 127², far below 2³¹.
//!
//! Off by default (`Encoder::set_int8`): once candle's `gemm` ran on its
//! SIMD128 kernels, the int8 layers saved 13–22 % of the encoder's time in
//! a browser but changed enough words for decoding to fall back and take
//! longer (docs/whisper.md).

/// Terms per SIMD step: eight i16 lanes.
const LANES: usize = 8;

/// A `rows × cols` weight matrix (`y = x · Wᵀ`), quantized per row.
pub struct Int8Weights {
    rows: usize,
    /// `cols` rounded up to whole SIMD steps; the padding is zero.
    stride: usize,
    cols: usize,
    /// Values in −127..=127, widened to i16 once here rather than per use.
    q: Vec<i16>,
    scales: Vec<f32>,
}

/// Quantizes `values` into `out` (zero-padded to its length): the scale that
/// maps the largest magnitude to 127.
fn quantize_row(values: &[f32], out: &mut [i16]) -> f32 {
    let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let inv = if max > 0.0 { 127.0 / max } else { 0.0 };
    for (q, v) in out.iter_mut().zip(values) {
        // Round half away from zero without libm's `round` (a call in wasm).
        let scaled = v * inv;
        *q = (scaled + 0.5f32.copysign(scaled)) as i16;
    }
    max / 127.0
}

impl Int8Weights {
    /// Quantizes a row-major `rows × cols` f32 matrix.
    pub fn new(w: &[f32], rows: usize, cols: usize) -> Option<Self> {
        if cols == 0 || w.len() != rows * cols {
            return None;
        }
        let stride = cols.div_ceil(LANES) * LANES;
        let mut q = vec![0i16; rows * stride];
        let scales = w
            .chunks_exact(cols)
            .zip(q.chunks_exact_mut(stride))
            .map(|(row, out)| quantize_row(row, out))
            .collect();
        Some(Self {
            rows,
            stride,
            cols,
            q,
            scales,
        })
    }

    /// `x · Wᵀ` for `x` of `n` rows of `cols` values: `n × rows`, row-major.
    pub fn matmul(&self, x: &[f32]) -> Vec<f32> {
        let n = x.len() / self.cols;
        let mut xq = vec![0i16; n * self.stride];
        let xs: Vec<f32> = x
            .chunks_exact(self.cols)
            .zip(xq.chunks_exact_mut(self.stride))
            .map(|(row, out)| quantize_row(row, out))
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
/// width `stride`): `sums[i × w_rows + j]`.
#[cfg(not(target_arch = "wasm32"))]
fn products(x: &[i16], w: &[i16], stride: usize, sums: &mut [i32]) {
    let w_rows = w.len() / stride;
    for (xr, out) in x.chunks_exact(stride).zip(sums.chunks_exact_mut(w_rows)) {
        for (wr, sum) in w.chunks_exact(stride).zip(out) {
            *sum = xr
                .iter()
                .zip(wr)
                .map(|(a, b)| i32::from(*a) * i32::from(*b))
                .sum();
        }
    }
}

/// The same with SIMD128, four rows of `x` by two of `w` at a time: eight
/// accumulators and six loaded vectors fit x86's sixteen vector registers
/// once the browser compiles it, so nothing spills in the inner loop.
#[cfg(target_arch = "wasm32")]
fn products(x: &[i16], w: &[i16], stride: usize, sums: &mut [i32]) {
    simd::products(x, w, stride, sums)
}

#[cfg(target_arch = "wasm32")]
mod simd {
    use core::arch::wasm32::*;

    const X_ROWS: usize = 4;
    const W_ROWS: usize = 2;

    /// Eight lanes of `row` from `k`; the callers keep `k + 8 <= row.len()`
    /// for every row (the widths are whole multiples of eight).
    #[inline(always)]
    fn load(row: &[i16], k: usize) -> v128 {
        debug_assert!(k + 8 <= row.len());
        // SAFETY: in bounds (above); wasm loads need no alignment.
        unsafe { v128_load(row.as_ptr().add(k).cast()) }
    }

    #[inline(always)]
    fn total(v: v128) -> i32 {
        i32x4_extract_lane::<0>(v)
            + i32x4_extract_lane::<1>(v)
            + i32x4_extract_lane::<2>(v)
            + i32x4_extract_lane::<3>(v)
    }

    /// `X_ROWS × W_ROWS` dot products over the whole width.
    #[target_feature(enable = "simd128")]
    fn tile(xs: [&[i16]; X_ROWS], ws: [&[i16]; W_ROWS]) -> [[i32; W_ROWS]; X_ROWS] {
        let width = xs[0].len();
        assert!(width.is_multiple_of(8) && xs.iter().chain(&ws).all(|r| r.len() == width));
        let mut acc = [[i32x4_splat(0); W_ROWS]; X_ROWS];
        for k in (0..width).step_by(8) {
            let w = [load(ws[0], k), load(ws[1], k)];
            for (a, x) in acc.iter_mut().zip(xs) {
                let x = load(x, k);
                a[0] = i32x4_add(a[0], i32x4_dot_i16x8(x, w[0]));
                a[1] = i32x4_add(a[1], i32x4_dot_i16x8(x, w[1]));
            }
        }
        acc.map(|row| row.map(total))
    }

    /// One dot product, for the rows past the last whole tile.
    #[target_feature(enable = "simd128")]
    fn single(x: &[i16], w: &[i16]) -> i32 {
        assert!(x.len().is_multiple_of(8) && w.len() == x.len());
        let mut acc = i32x4_splat(0);
        for k in (0..x.len()).step_by(8) {
            acc = i32x4_add(acc, i32x4_dot_i16x8(load(x, k), load(w, k)));
        }
        total(acc)
    }

    #[target_feature(enable = "simd128")]
    pub(super) fn products(x: &[i16], w: &[i16], stride: usize, sums: &mut [i32]) {
        let x_rows: Vec<&[i16]> = x.chunks_exact(stride).collect();
        let w_rows: Vec<&[i16]> = w.chunks_exact(stride).collect();
        let n = w_rows.len();
        let mut put = |i: usize, j: usize, sum: i32| sums[i * n + j] = sum;
        let whole_x = x_rows.len() / X_ROWS * X_ROWS;
        let whole_w = w_rows.len() / W_ROWS * W_ROWS;
        for i in (0..whole_x).step_by(X_ROWS) {
            let xs = [x_rows[i], x_rows[i + 1], x_rows[i + 2], x_rows[i + 3]];
            for j in (0..whole_w).step_by(W_ROWS) {
                let sums = tile(xs, [w_rows[j], w_rows[j + 1]]);
                for (a, row) in sums.iter().enumerate() {
                    for (b, sum) in row.iter().enumerate() {
                        put(i + a, j + b, *sum);
                    }
                }
            }
            for (j, w) in w_rows.iter().enumerate().skip(whole_w) {
                for (a, x) in xs.iter().enumerate() {
                    put(i + a, j, single(x, w));
                }
            }
        }
        for (i, x) in x_rows.iter().enumerate().skip(whole_x) {
            for (j, w) in w_rows.iter().enumerate() {
                put(i, j, single(x, w));
            }
        }
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
            let q = Int8Weights::new(&w, rows, cols).unwrap();
            let got = q.matmul(&x);
            let want = f32_product(&x, &w, cols);
            assert_eq!(got.len(), want.len());
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                let row = &x[i / rows * cols..][..cols];
                let wrow = &w[i % rows * cols..][..cols];
                // Each factor is off by at most half a step of its row's scale.
                let xs = row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                let ws = wrow.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                let bound: f32 = row
                    .iter()
                    .zip(wrow)
                    .map(|(a, b)| a.abs() * ws / 2.0 + b.abs() * xs / 2.0 + xs * ws / 4.0)
                    .sum();
                assert!(
                    (g - e).abs() <= bound * 1.01 + 1e-6,
                    "{n}x{rows}x{cols} [{i}]: {g} vs {e} (bound {bound})"
                );
            }
        }
    }

    #[test]
    fn an_all_zero_row_gives_zeros_not_nan() {
        let q = Int8Weights::new(&[0.0; 16], 2, 8).unwrap();
        assert_eq!(q.matmul(&[0.0; 8]), [0.0, 0.0]);
        assert!(Int8Weights::new(&[1.0; 5], 2, 3).is_none());
    }
}
