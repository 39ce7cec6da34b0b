//! Linear layers that are fast for one token as well as for 1500 frames.
//!
//! candle multiplies through `gemm`, which packs the weight matrix on every
//! call: right for the encoder's 1500 frames, but for the decoder's one new
//! token per step it copies the weights each time (about 1 ms for 384 → 1536
//! in a Chromium worker). A few rows are instead dotted with the weight rows
//! directly, which reads each weight once.

use crate::int_matmul::IntWeights;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Module, Result, Shape, Tensor};
use candle_nn::{Linear, VarBuilder};

/// Up to this many rows go row by row; more go through candle's `gemm`.
const FEW_ROWS: usize = 8;

pub struct Dense {
    weight: Tensor,
    bias: Option<Tensor>,
    /// The same weights, for many rows.
    linear: Linear,
    /// The same weights as integers, for many rows when switched on.
    integer: Option<IntWeights>,
}

impl Dense {
    pub fn load(d_in: usize, d_out: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((d_out, d_in), "weight")?.contiguous()?;
        let bias = if bias {
            Some(vb.get(d_out, "bias")?)
        } else {
            None
        };
        Ok(Self {
            linear: Linear::new(weight.clone(), bias.clone()),
            weight,
            bias,
            integer: None,
        })
    }

    /// Switches many-row products between integers (`true`) and candle's f32.
    pub fn set_integer(&mut self, on: bool) -> Result<()> {
        self.integer = if on {
            let (rows, cols) = self.weight.dims2()?;
            let data = self.weight.flatten_all()?.to_vec1::<f32>()?;
            Some(IntWeights::new(&data, rows, cols).ok_or_else(|| {
                candle_core::Error::Msg(format!("cannot quantize a {rows}x{cols} layer"))
            })?)
        } else {
            None
        };
        Ok(())
    }

    fn many_rows_integer(&self, integer: &IntWeights, x: &Tensor) -> Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let data = x.flatten_all()?.to_vec1::<f32>()?;
        if let Some(last) = dims.last_mut() {
            *last = self.weight.dim(0)?;
        }
        self.plus_bias(Tensor::from_vec(integer.matmul(&data), dims, x.device())?)
    }

    /// `y + bias`, for the products that do not add it themselves.
    fn plus_bias(&self, y: Tensor) -> Result<Tensor> {
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let d_in = self.weight.dim(1)?;
        if x.elem_count() / d_in.max(1) > FEW_ROWS {
            return match &self.integer {
                Some(integer) => self.many_rows_integer(integer, x),
                None => self.linear.forward(x),
            };
        }
        let y = x
            .contiguous()?
            .apply_op2_no_bwd(&self.weight, &FewRowsTimesWeights)?;
        self.plus_bias(y)
    }
}

/// `x · wᵀ` for `x` of shape `[…, d_in]` and `w` of shape `[d_out, d_in]`.
struct FewRowsTimesWeights;

impl CustomOp2 for FewRowsTimesWeights {
    fn name(&self) -> &'static str {
        "potluck-few-rows-times-weights"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        w_storage: &CpuStorage,
        w_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(w)) = (x_storage, w_storage) else {
            bail!("{}: f32 tensors only", self.name())
        };
        let (Some((x0, x1)), Some((w0, w1))) =
            (x_layout.contiguous_offsets(), w_layout.contiguous_offsets())
        else {
            bail!("{}: contiguous tensors only", self.name())
        };
        let (x, w) = (&x[x0..x1], &w[w0..w1]);
        let (d_out, d_in) = w_layout.shape().dims2()?;
        let mut dims = x_layout.dims().to_vec();
        if dims.last() != Some(&d_in) {
            bail!(
                "{}: inputs of width {dims:?}, weights of {d_in}",
                self.name()
            )
        }
        if let Some(last) = dims.last_mut() {
            *last = d_out;
        }
        let mut y = Vec::with_capacity(x.len() / d_in * d_out);
        for row in x.chunks_exact(d_in) {
            y.extend(w.chunks_exact(d_in).map(|weights| dot(row, weights)));
        }
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }
}

/// The few products past the last whole group of eight.
fn plain_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Eight running sums, so that the compiler can keep them in vector lanes.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = plain_dot(a8.remainder(), b8.remainder());
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// SIMD128 in wasm whatever the build's flags (see `projection::row_dot`).
#[cfg(target_arch = "wasm32")]
#[target_feature(enable = "simd128")]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    use core::arch::wasm32::*;
    fn load(four: &[f32]) -> v128 {
        let four: &[f32; 4] = four.try_into().unwrap_or(&[0.0; 4]);
        // SAFETY: `four` is 16 readable bytes, and wasm loads need no alignment.
        unsafe { v128_load(four.as_ptr().cast()) }
    }
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = plain_dot(a8.remainder(), b8.remainder());
    let (mut low, mut high) = (f32x4_splat(0.0), f32x4_splat(0.0));
    for (x, y) in a8.zip(b8) {
        low = f32x4_add(low, f32x4_mul(load(&x[..4]), load(&y[..4])));
        high = f32x4_add(high, f32x4_mul(load(&x[4..]), load(&y[4..])));
    }
    let sum = f32x4_add(low, high);
    f32x4_extract_lane::<0>(sum)
        + f32x4_extract_lane::<1>(sum)
        + f32x4_extract_lane::<2>(sum)
        + f32x4_extract_lane::<3>(sum)
        + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn few_rows_and_many_rows_give_candles_product() {
        let device = Device::Cpu;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device);
        let dense = Dense::load(20, 13, true, vb.pp("layer")).unwrap();
        for rows in [1, 3, FEW_ROWS + 1] {
            let x = Tensor::randn(0f32, 1.0, (1, rows, 20), &device).unwrap();
            let ours = dense.forward(&x).unwrap();
            let theirs = dense.linear.forward(&x).unwrap();
            assert_eq!(ours.dims(), [1, rows, 13]);
            let diff = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() < 1e-5, "{rows} rows");
        }
    }
}
