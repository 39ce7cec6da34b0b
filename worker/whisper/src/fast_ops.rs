//! Softmax, exact GELU and attention for f32 tensors, with polynomial `exp`
//! and `erf`.
//!
//! candle computes both with a libm call per element. wasm has no vector math
//! library, so in a Chromium worker the attention softmax over 6 × 1500 ×
//! 1500 scores took 364 ms per encoder layer, a third of the encoder, and
//! GELU 19 ns per element. These loops are plain arithmetic that compilers
//! vectorise, accurate to a few units in the last place.

use super::dense::dot;
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two so that `k · ln 2` is exact enough (Cody and Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding 1.5 · 2²³ rounds an f32 of magnitude below 2²² to an integer.
const ROUNDER: f32 = 12_582_912.0;

/// eˣ with a relative error below 3e-7 (Cephes' `expf` polynomial); 0 where
/// the result would not be a normal f32.
#[inline]
pub fn exp(x: f32) -> f32 {
    // Computed for every x and chosen at the end, without a branch, so that
    // loops of it vectorise.
    let underflows = x < -87.0;
    let x = x.clamp(-87.0, 88.0);
    // k = round(x / ln 2), as a float and as an integer, by the 1.5 · 2²³
    // trick: no libm `round`, no float-to-int conversion.
    let shifted = x * LOG2_E + ROUNDER;
    let k = shifted - ROUNDER;
    let k_int = shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i32;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2ᵏ built from its exponent bits: k is in [-126, 127] here.
    let value = y * f32::from_bits(((k_int + 127) as u32) << 23);
    if underflows {
        0.0
    } else {
        value
    }
}

/// erf(x) with an absolute error below 6e-7, five f32 units at 1 (Abramowitz
/// and Stegun 7.1.26, evaluated in f32).
#[inline]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152 + t * 1.061_405_4))));
    let magnitude = 1.0 - poly * exp(-a * a);
    magnitude.copysign(x)
}

/// x · Φ(x), the exact GELU Whisper was trained with.
#[inline]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// A contiguous f32 tensor's values, or why not.
fn f32_values<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: f32 tensors only")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: contiguous tensors only")
    };
    Ok(&data[start..end])
}

struct SoftmaxLastDim;

impl CustomOp1 for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "potluck-softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let values = f32_values(storage, layout, self.name())?;
        let width = layout.dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0.0f32; values.len()];
        for (row, probabilities) in values.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
            softmax_row(row, probabilities);
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// How many running maxima and sums a softmax row keeps: one per vector
/// lane, so that its loops vectorise (a float sum kept in one variable must
/// be added in order, one element at a time).
const LANES: usize = 8;

/// `probabilities` = softmax(`row`). SIMD128 in wasm whatever the build's
/// flags (see `projection::row_dot`): the encoder's attention takes 6 × 1500
/// softmaxes of 1500 scores per layer.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn softmax_row(row: &[f32], probabilities: &mut [f32]) {
    let split = row.len() - row.len() % LANES;
    let (body, tail) = row.split_at(split);
    let mut maxima = [f32::NEG_INFINITY; LANES];
    for xs in body.chunks_exact(LANES) {
        for (m, &x) in maxima.iter_mut().zip(xs) {
            *m = m.max(x);
        }
    }
    let max = maxima
        .iter()
        .chain(tail)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let mut sums = [0.0f32; LANES];
    for (xs, ps) in body
        .chunks_exact(LANES)
        .zip(probabilities.chunks_exact_mut(LANES))
    {
        for ((p, &x), s) in ps.iter_mut().zip(xs).zip(sums.iter_mut()) {
            *p = exp(x - max);
            *s += *p;
        }
    }
    let mut sum: f32 = sums.iter().sum();
    for (p, &x) in probabilities[split..].iter_mut().zip(tail) {
        *p = exp(x - max);
        sum += *p;
    }
    let scale = 1.0 / sum;
    probabilities.iter_mut().for_each(|p| *p *= scale);
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "potluck-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let values = f32_values(storage, layout, self.name())?;
        let out = values.iter().map(|&x| gelu(x)).collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// `out += p · row`, vectorised in wasm as well (SIMD128 whatever the
/// build's flags, see `projection::row_dot`).
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn add_scaled(out: &mut [f32], p: f32, row: &[f32]) {
    for (o, x) in out.iter_mut().zip(row) {
        *o += p * x;
    }
}

/// An attention op's operands, contiguous f32: `q` of shape `[batch,
/// heads, queries, width]`, `k` and `v` of shape `[batch, heads, keys,
/// width]`; `heads` counts every batch's.
struct Operands<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    heads: usize,
    queries: usize,
    keys: usize,
    width: usize,
}

impl<'a> Operands<'a> {
    fn read(
        op: &str,
        (q, q_layout): (&'a CpuStorage, &Layout),
        (k, k_layout): (&'a CpuStorage, &Layout),
        (v, v_layout): (&'a CpuStorage, &Layout),
    ) -> Result<Self> {
        let (q, k, v) = (
            f32_values(q, q_layout, op)?,
            f32_values(k, k_layout, op)?,
            f32_values(v, v_layout, op)?,
        );
        let (batch, heads, queries, width) = q_layout.shape().dims4()?;
        let keys = k_layout.shape().dims4()?.2;
        if k.len() != v.len() || k.len() != batch * heads * keys * width {
            bail!("{op}: keys and values of different shapes")
        }
        Ok(Self {
            q,
            k,
            v,
            heads: batch * heads,
            queries,
            keys,
            width,
        })
    }
}

/// softmax(q kᵀ) v for a few query rows (the decoder's one new token), per
/// batch and head, reading each key and value row once. Through candle's
/// `gemm` each step copied (packed) all 1500 cross-attention keys and values.
struct FewQueriesAttention;

impl CustomOp3 for FewQueriesAttention {
    fn name(&self) -> &'static str {
        "potluck-few-queries-attention"
    }

    fn cpu_fwd(
        &self,
        q_storage: &CpuStorage,
        q_layout: &Layout,
        k_storage: &CpuStorage,
        k_layout: &Layout,
        v_storage: &CpuStorage,
        v_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Operands {
            q,
            k,
            v,
            heads,
            queries,
            keys,
            width,
        } = Operands::read(
            self.name(),
            (q_storage, q_layout),
            (k_storage, k_layout),
            (v_storage, v_layout),
        )?;
        let mut out = vec![0.0f32; q.len()];
        let mut scores = vec![0.0f32; keys];
        let per_head_q = queries * width;
        let per_head_kv = keys * width;
        for head in 0..heads {
            let k = &k[head * per_head_kv..(head + 1) * per_head_kv];
            let v = &v[head * per_head_kv..(head + 1) * per_head_kv];
            let q = &q[head * per_head_q..(head + 1) * per_head_q];
            let out = &mut out[head * per_head_q..(head + 1) * per_head_q];
            for (query, out) in q.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
                for (score, key) in scores.iter_mut().zip(k.chunks_exact(width)) {
                    *score = dot(query, key);
                }
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for score in scores.iter_mut() {
                    *score = exp(*score - max);
                    sum += *score;
                }
                for (&p, value) in scores.iter().zip(v.chunks_exact(width)) {
                    add_scaled(out, p / sum, value);
                }
            }
        }
        Ok((CpuStorage::F32(out), q_layout.shape().clone()))
    }
}

/// Query rows one block of the encoder's attention takes at a time: their
/// scores stay in the first-level cache, and a register tile of `ROWS` ×
/// `COLS` sums is what SIMD128's sixteen registers hold.
const ROWS: usize = 4;
/// Key columns (scores) or value columns per register tile: two 4-lane vectors.
const COLS: usize = 8;

/// softmax(q kᵀ) v for many query rows (the encoder's self-attention), per
/// batch and head, `ROWS` query rows at a time: their scores are computed,
/// normalised and used while in cache, never written out whole. Through
/// candle, each head's 1500 × 1500 scores went to memory three times (the
/// product, the softmax, the second product): the same time, 43 MB more at
/// the peak of a browser worker (docs/whisper.md).
struct BlockAttention;

impl CustomOp3 for BlockAttention {
    fn name(&self) -> &'static str {
        "potluck-block-attention"
    }

    fn cpu_fwd(
        &self,
        q_storage: &CpuStorage,
        q_layout: &Layout,
        k_storage: &CpuStorage,
        k_layout: &Layout,
        v_storage: &CpuStorage,
        v_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let Operands {
            q,
            k,
            v,
            heads,
            queries,
            keys,
            width,
        } = Operands::read(
            self.name(),
            (q_storage, q_layout),
            (k_storage, k_layout),
            (v_storage, v_layout),
        )?;
        if !width.is_multiple_of(COLS) {
            bail!(
                "{}: head width {width} is not a multiple of {COLS}",
                self.name()
            )
        }
        let mut out = vec![0.0f32; q.len()];
        let mut head = HeadScratch::new(keys, width);
        for h in 0..heads {
            let kv = h * keys * width..(h + 1) * keys * width;
            let qs = h * queries * width..(h + 1) * queries * width;
            head.attend(&q[qs.clone()], &k[kv.clone()], &v[kv], &mut out[qs]);
        }
        Ok((CpuStorage::F32(out), q_layout.shape().clone()))
    }
}

/// One head's buffers, reused for every head.
struct HeadScratch {
    keys: usize,
    width: usize,
    /// Keys transposed, `[width][padded]`, zero past `keys`.
    keys_t: Vec<f32>,
    /// `keys` rounded up to whole tiles.
    padded: usize,
    /// A block's query rows, zero past the last query.
    block: [Vec<f32>; ROWS],
    scores: [Vec<f32>; ROWS],
    probabilities: [Vec<f32>; ROWS],
}

impl HeadScratch {
    fn new(keys: usize, width: usize) -> Self {
        let padded = keys.div_ceil(COLS) * COLS;
        Self {
            keys,
            width,
            keys_t: vec![0.0; width * padded],
            padded,
            block: std::array::from_fn(|_| vec![0.0; width]),
            scores: std::array::from_fn(|_| vec![0.0; padded]),
            probabilities: std::array::from_fn(|_| vec![0.0; keys]),
        }
    }

    fn attend(&mut self, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
        let (keys, width, padded) = (self.keys, self.width, self.padded);
        for (j, key) in k.chunks_exact(width).enumerate() {
            for (d, &x) in key.iter().enumerate() {
                self.keys_t[d * padded + j] = x;
            }
        }
        let queries = q.len() / width;
        for first in (0..queries).step_by(ROWS) {
            let rows = ROWS.min(queries - first);
            for (r, row) in self.block.iter_mut().enumerate() {
                if r < rows {
                    row.copy_from_slice(&q[(first + r) * width..][..width]);
                } else {
                    row.fill(0.0);
                }
            }
            scores_tile_rows(&self.block, &self.keys_t, padded, &mut self.scores);
            for (scores, probabilities) in self.scores.iter().zip(self.probabilities.iter_mut()) {
                softmax_row(&scores[..keys], probabilities);
            }
            let block_out = &mut out[first * width..(first + rows) * width];
            weighted_values(&self.probabilities, v, width, rows, block_out);
        }
    }
}

/// `scores[r][j]` = `block[r]` · key `j`, a `ROWS` × `COLS` tile of sums at
/// a time (SIMD128 in wasm whatever the build's flags).
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn scores_tile_rows(
    block: &[Vec<f32>; ROWS],
    keys_t: &[f32],
    padded: usize,
    scores: &mut [Vec<f32>; ROWS],
) {
    let width = block[0].len();
    for first in (0..padded).step_by(COLS) {
        let mut sums = [[0.0f32; COLS]; ROWS];
        for d in 0..width {
            let keys: &[f32; COLS] = keys_t[d * padded + first..][..COLS].try_into().unwrap();
            for (row_sums, row) in sums.iter_mut().zip(block) {
                let x = row[d];
                for (s, &key) in row_sums.iter_mut().zip(keys) {
                    *s += x * key;
                }
            }
        }
        for (row_scores, row_sums) in scores.iter_mut().zip(&sums) {
            row_scores[first..first + COLS].copy_from_slice(row_sums);
        }
    }
}

/// `out[r]` = Σⱼ `probabilities[r][j]` · value `j` for the block's first
/// `rows` rows, `COLS` value columns at a time (SIMD128 in wasm whatever
/// the build's flags).
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn weighted_values(
    probabilities: &[Vec<f32>; ROWS],
    v: &[f32],
    width: usize,
    rows: usize,
    out: &mut [f32],
) {
    for first in (0..width).step_by(COLS) {
        let mut sums = [[0.0f32; COLS]; ROWS];
        for (j, value) in v.chunks_exact(width).enumerate() {
            let value: &[f32; COLS] = value[first..first + COLS].try_into().unwrap();
            for (row_sums, p) in sums.iter_mut().zip(probabilities) {
                let p = p[j];
                for (s, &x) in row_sums.iter_mut().zip(value) {
                    *s += p * x;
                }
            }
        }
        for (r, row_sums) in sums.iter().enumerate().take(rows) {
            out[r * width + first..][..COLS].copy_from_slice(row_sums);
        }
    }
}

/// softmax(q kᵀ) v for `q` of shape `[batch, heads, rows, width]` and `k`,
/// `v` of shape `[batch, heads, keys, width]`, without a mask, `width` a
/// multiple of 8: the encoder's self-attention.
pub fn block_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    q.contiguous()?
        .apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &BlockAttention)
}

/// softmax(q kᵀ) v for `q` of shape `[batch, heads, rows, width]` and `k`,
/// `v` of shape `[batch, heads, keys, width]`, without a mask.
pub fn few_queries_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
    q.contiguous()?
        .apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &FewQueriesAttention)
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&SoftmaxLastDim)
}

/// The exact (erf) GELU, element by element.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&Gelu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn grid(from: f32, to: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| from + (to - from) * i as f32 / n as f32)
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_libm() {
        let worst = grid(-87.0, 88.0, 200_000)
            .map(|x| {
                let want = f64::from(x).exp();
                ((f64::from(exp(x)) - want) / want).abs()
            })
            .fold(0.0, f64::max);
        assert!(worst < 3e-7, "relative error {worst:e}");
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn erf_and_gelu_match_the_exact_functions() {
        let worst = grid(-6.0, 6.0, 100_000)
            .map(|x| (f64::from(erf(x)) - candle_core::cpu::erf::erf_f64(f64::from(x))).abs())
            .fold(0.0, f64::max);
        assert!(worst < 6e-7, "absolute error {worst:e}");
        assert_eq!(gelu(0.0), 0.0);
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-3.0) + 0.004_049_8).abs() < 1e-6);
    }

    #[test]
    fn tensor_ops_agree_with_candles() {
        let device = Device::Cpu;
        let x = Tensor::arange(-300i64, 300, &device)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .affine(0.037, 0.1)
            .unwrap()
            .reshape((4, 150))
            .unwrap()
            .t() // not contiguous: the ops must cope
            .unwrap();
        let close = |a: &Tensor, b: &Tensor| {
            let diff = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            diff.to_scalar::<f32>().unwrap()
        };
        let ours = softmax_last_dim(&x).unwrap();
        let theirs = candle_nn::ops::softmax_last_dim(&x.contiguous().unwrap()).unwrap();
        assert!(close(&ours, &theirs) < 1e-7);
        assert!(close(&gelu_erf(&x).unwrap(), &x.gelu_erf().unwrap()) < 1e-6);

        let q = Tensor::randn(0f32, 1.0, (1, 3, 2, 8), &device).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, 3, 37, 8), &device).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, 3, 37, 8), &device).unwrap();
        let ours = few_queries_attention(&q, &k, &v).unwrap();
        let scores = q.matmul(&k.t().unwrap()).unwrap();
        let theirs = candle_nn::ops::softmax_last_dim(&scores)
            .unwrap()
            .matmul(&v)
            .unwrap();
        assert!(close(&ours, &theirs) < 1e-5);

        // Many queries, keys and queries not whole tiles.
        let q = Tensor::randn(0f32, 1.0, (1, 3, 41, 16), &device).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, 3, 37, 16), &device).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, 3, 37, 16), &device).unwrap();
        let ours = block_attention(&q, &k, &v).unwrap();
        let scores = q.matmul(&k.t().unwrap()).unwrap();
        let theirs = candle_nn::ops::softmax_last_dim(&scores)
            .unwrap()
            .matmul(&v)
            .unwrap();
        assert_eq!(ours.dims(), theirs.dims());
        assert!(close(&ours, &theirs) < 1e-5);
    }
}
