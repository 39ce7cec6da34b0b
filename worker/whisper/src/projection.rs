//! The decoder's output projection (hidden state → vocabulary logits) with
//! int8 weights.
//!
//! Every generated token multiplies the hidden state by the whole token
//! embedding (51,864 × 384 for tiny.en): a matrix-vector product that reads
//! 80 MB of f32 per token, bound by memory bandwidth rather than arithmetic.
//! Stored as int8 in blocks of 32 with one f32 scale each (ggml's q8_0
//! layout) it reads a quarter of that. Measured natively, one thread, CPU
//! time: 11.7 ms per token with candle's f32 matmul, about 4 ms with this.
//! It changed one near-tie word of 214 on the 52 s test clip (same WER).

/// Weights per scale: small enough that an outlier only coarsens its block.
const BLOCK: usize = 32;

pub struct QuantizedProjection {
    rows: usize,
    cols: usize,
    /// `rows × cols` int8 weights, row-major.
    q: Vec<i8>,
    /// One scale per block of `BLOCK` weights of a row.
    scales: Vec<f32>,
}

impl QuantizedProjection {
    /// Quantizes a row-major `rows × cols` f32 matrix; `cols` must be a
    /// multiple of 32 (Whisper's widths are 384 to 1280).
    pub fn new(w: &[f32], rows: usize, cols: usize) -> Option<Self> {
        if !cols.is_multiple_of(BLOCK) || w.len() != rows * cols {
            return None;
        }
        let mut q = Vec::with_capacity(w.len());
        let mut scales = Vec::with_capacity(w.len() / BLOCK);
        for block in w.chunks_exact(BLOCK) {
            let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = max / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            q.extend(block.iter().map(|v| (v * inv).round() as i8));
            scales.push(scale);
        }
        Some(Self {
            rows,
            cols,
            q,
            scales,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// `W · x` for one hidden state `x` of length `cols`. `x` is quantized
    /// per block too, so the inner loop is integer multiply-adds (what
    /// SSE2's `pmaddwd` and SIMD128's `i32x4.dot_i16x8_s` do).
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let blocks = self.cols / BLOCK;
        let mut xq = vec![0i8; self.cols];
        let mut xs = vec![0f32; blocks];
        for ((xb, qb), s) in x
            .chunks_exact(BLOCK)
            .zip(xq.chunks_exact_mut(BLOCK))
            .zip(xs.iter_mut())
        {
            let max = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            *s = max / 127.0;
            let inv = if max > 0.0 { 127.0 / max } else { 0.0 };
            for (q, v) in qb.iter_mut().zip(xb) {
                *q = (v * inv).round() as i8;
            }
        }
        self.q
            .chunks_exact(self.cols)
            .zip(self.scales.chunks_exact(blocks))
            .map(|(q, s)| row_dot(q, s, &xq, &xs))
            .collect()
    }
}

/// One row of the product.
#[cfg(not(target_arch = "wasm32"))]
fn row_dot(q: &[i8], scales: &[f32], xq: &[i8], xs: &[f32]) -> f32 {
    q.chunks_exact(BLOCK)
        .zip(xq.chunks_exact(BLOCK))
        .zip(scales.iter().zip(xs))
        .map(|((qb, xb), (&sw, &sx))| dot_block(qb, xb) as f32 * (sw * sx))
        .sum()
}

/// One row of the product with SIMD128's `i32x4.dot_i16x8_s`, which LLVM
/// does not pick by itself: 10x faster per token than the plain loop in a
/// Chromium worker. Compiled with SIMD128 whatever the build's flags: the
/// release worker has SIMD128 throughout (`scripts/build.sh`), the wasm
/// tests' build does not.
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128")]
fn row_dot(q: &[i8], scales: &[f32], xq: &[i8], xs: &[f32]) -> f32 {
    use core::arch::wasm32::*;
    fn load(half: &[i8]) -> v128 {
        let bytes: &[i8; 16] = half.try_into().unwrap_or(&[0; 16]);
        // SAFETY: `bytes` is 16 readable bytes, and wasm loads need no alignment.
        unsafe { v128_load(bytes.as_ptr().cast()) }
    }
    fn dot16(q: v128, x: v128) -> v128 {
        let low = i32x4_dot_i16x8(i16x8_extend_low_i8x16(q), i16x8_extend_low_i8x16(x));
        let high = i32x4_dot_i16x8(i16x8_extend_high_i8x16(q), i16x8_extend_high_i8x16(x));
        i32x4_add(low, high)
    }
    let mut sum = f32x4_splat(0.0);
    for ((qb, xb), (&sw, &sx)) in q
        .chunks_exact(BLOCK)
        .zip(xq.chunks_exact(BLOCK))
        .zip(scales.iter().zip(xs))
    {
        let block = i32x4_add(
            dot16(load(&qb[..16]), load(&xb[..16])),
            dot16(load(&qb[16..]), load(&xb[16..])),
        );
        sum = f32x4_add(
            sum,
            f32x4_mul(f32x4_convert_i32x4(block), f32x4_splat(sw * sx)),
        );
    }
    f32x4_extract_lane::<0>(sum)
        + f32x4_extract_lane::<1>(sum)
        + f32x4_extract_lane::<2>(sum)
        + f32x4_extract_lane::<3>(sum)
}

/// One block's integer dot product; fixed-size so the compiler unrolls and
/// vectorises it (SSE2's `pmaddwd` on x86).
#[cfg(not(target_arch = "wasm32"))]
#[inline(always)]
fn dot_block(q: &[i8], x: &[i8]) -> i32 {
    let q: &[i8; BLOCK] = q.try_into().unwrap_or(&[0; BLOCK]);
    let x: &[i8; BLOCK] = x.try_into().unwrap_or(&[0; BLOCK]);
    let mut acc = 0i32;
    for i in 0..BLOCK {
        acc += q[i] as i16 as i32 * x[i] as i16 as i32;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_f32_product_within_quantization_error() {
        let (rows, cols) = (50, 64);
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 0.1)
            .collect();
        let x: Vec<f32> = (0..cols).map(|i| (i as f32 * 0.37).sin()).collect();
        let p = QuantizedProjection::new(&w, rows, cols).unwrap();
        let got = p.apply(&x);
        for (r, g) in got.iter().enumerate() {
            let exact: f32 = (0..cols).map(|c| w[r * cols + c] * x[c]).sum();
            // Weights and inputs are each off by at most half a step.
            let bound: f32 = (0..cols)
                .map(|c| 0.1 / 254.0 * x[c].abs() + w[r * cols + c].abs() / 254.0)
                .sum();
            assert!((g - exact).abs() <= bound + 1e-5, "row {r}: {g} vs {exact}");
        }
    }

    #[test]
    fn refuses_widths_that_are_not_whole_blocks() {
        assert!(QuantizedProjection::new(&[0.0; 30], 1, 30).is_none());
        assert!(QuantizedProjection::new(&[0.0; 64], 1, 32).is_none());
    }

    #[test]
    fn an_all_zero_block_gives_zero_not_nan() {
        let p = QuantizedProjection::new(&[0.0; 32], 1, 32).unwrap();
        assert_eq!(p.apply(&[1.0; 32]), vec![0.0]);
    }
}
