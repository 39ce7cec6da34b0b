//! The Whisper network on candle (CPU, f32), with a decoder that caches its
//! self-attention keys and values.
//!
//! Architecture as openai's `whisper/model.py` (and candle-transformers'
//! port, whose tensor names it loads). The difference is the decoder: candle's
//! recomputes every earlier position at every step; here each step feeds only
//! the new tokens, appends their K/V to a per-layer cache, and projects only
//! the positions asked for onto the vocabulary (`shared/notes/whisper.md`
//! §7.1: O(n) instead of O(n²) per window). GELU is the exact erf form that
//! Whisper was trained with (candle's `gelu` is the tanh approximation).

use super::config::Config;
use super::dense::Dense;
use super::fast_ops;
use super::projection::QuantizedProjection;
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::kv_cache::KvCache;
use candle_nn::{Conv1d, Conv1dConfig, Embedding, LayerNorm, VarBuilder};

/// Attention for at most this many query rows skips candle's `gemm`.
const FEW_QUERIES: usize = 8;

/// Layer norms in Whisper use PyTorch's default epsilon.
const LN_EPS: f64 = 1e-5;

fn layer_norm(size: usize, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(LayerNorm::new(
        vb.get(size, "weight")?,
        vb.get(size, "bias")?,
        LN_EPS,
    ))
}

fn conv1d(c_in: usize, c_out: usize, stride: usize, vb: VarBuilder) -> Result<Conv1d> {
    let cfg = Conv1dConfig {
        padding: 1,
        stride,
        ..Default::default()
    };
    let w = vb.get((c_out, c_in, 3), "weight")?;
    Ok(Conv1d::new(w, Some(vb.get(c_out, "bias")?), cfg))
}

/// Q/K/V/out projections; the attention arithmetic is shared by the three
/// uses (encoder self-attention, decoder self- and cross-attention).
struct Attention {
    query: Dense,
    key: Dense,
    value: Dense,
    out: Dense,
    n_head: usize,
}

impl Attention {
    fn load(d: usize, n_head: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            query: Dense::load(d, d, true, vb.pp("q_proj"))?,
            // Whisper has no key bias.
            key: Dense::load(d, d, false, vb.pp("k_proj"))?,
            value: Dense::load(d, d, true, vb.pp("v_proj"))?,
            out: Dense::load(d, d, true, vb.pp("out_proj"))?,
            n_head,
        })
    }

    /// `[b, n, d]` → `[b, heads, n, d/heads]`.
    fn heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        x.reshape((b, n, self.n_head, d / self.n_head))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// softmax(q kᵀ / √dₕ + mask) v, back to `[b, n, d]` and projected out.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        self.attend_heads(q, &self.heads(k)?, &self.heads(v)?, mask)
    }

    /// `attend` with keys and values already split into heads
    /// (`[b, heads, n, d/heads]`), as the decoder keeps the audio's.
    fn attend_heads(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let d_head = q.dim(D::Minus1)? / self.n_head;
        // openai scales q and k by dₕ^-¼ each, which keeps f16 in range; in
        // f32 one scale on q is the same product.
        let scale = (d_head as f64).powf(-0.5);
        let q = (self.heads(q)? * scale)?;
        if mask.is_none() && q.dim(2)? <= FEW_QUERIES {
            // A decoding step: one new token against the cache or the audio.
            let x = fast_ops::few_queries_attention(&q, k, v)?;
            return self.out.forward(&x.transpose(1, 2)?.flatten_from(2)?);
        }
        if mask.is_none() && d_head.is_multiple_of(8) {
            // The encoder: many queries, every one against every key.
            let x = fast_ops::block_attention(&q, k, v)?;
            return self.out.forward(&x.transpose(1, 2)?.flatten_from(2)?);
        }
        let mut w = q.matmul(&k.t()?)?;
        if let Some(mask) = mask {
            w = w.broadcast_add(mask)?;
        }
        let w = fast_ops::softmax_last_dim(&w)?;
        let x = w.matmul(v)?.transpose(1, 2)?.flatten_from(2)?;
        self.out.forward(&x)
    }
}

/// Pre-norm transformer block; `cross` only in the decoder.
struct Block {
    attn: Attention,
    attn_ln: LayerNorm,
    cross: Option<(Attention, LayerNorm)>,
    fc1: Dense,
    fc2: Dense,
    mlp_ln: LayerNorm,
}

impl Block {
    fn load(d: usize, n_head: usize, cross: bool, vb: VarBuilder) -> Result<Self> {
        let cross = if cross {
            Some((
                Attention::load(d, n_head, vb.pp("encoder_attn"))?,
                layer_norm(d, vb.pp("encoder_attn_layer_norm"))?,
            ))
        } else {
            None
        };
        Ok(Self {
            attn: Attention::load(d, n_head, vb.pp("self_attn"))?,
            attn_ln: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
            cross,
            fc1: Dense::load(d, 4 * d, true, vb.pp("fc1"))?,
            fc2: Dense::load(4 * d, d, true, vb.pp("fc2"))?,
            mlp_ln: layer_norm(d, vb.pp("final_layer_norm"))?,
        })
    }

    fn mlp(&self, x: &Tensor) -> Result<Tensor> {
        let h = fast_ops::gelu_erf(&self.fc1.forward(&self.mlp_ln.forward(x)?)?)?;
        x + self.fc2.forward(&h)?
    }
}

pub struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Tensor,
    blocks: Vec<Block>,
    ln_post: LayerNorm,
}

/// The encoder's fixed sinusoidal positions (openai `sinusoids`): sines of
/// the first half of the channels, cosines of the second.
fn sinusoids(length: usize, channels: usize, device: &Device) -> Result<Tensor> {
    let half = channels / 2;
    let step = 10000f64.ln() / (half as f64 - 1.0);
    let mut data = vec![0f32; length * channels];
    for t in 0..length {
        for i in 0..half {
            let a = t as f64 * (-step * i as f64).exp();
            data[t * channels + i] = a.sin() as f32;
            data[t * channels + half + i] = a.cos() as f32;
        }
    }
    Tensor::from_vec(data, (length, channels), device)
}

impl Encoder {
    fn load(vb: VarBuilder, c: &Config) -> Result<Self> {
        let d = c.d_model;
        let blocks = (0..c.encoder_layers)
            .map(|i| {
                Block::load(
                    d,
                    c.encoder_attention_heads,
                    false,
                    vb.pp(format!("layers.{i}")),
                )
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            conv1: conv1d(c.num_mel_bins, d, 1, vb.pp("conv1"))?,
            conv2: conv1d(d, d, 2, vb.pp("conv2"))?,
            positions: sinusoids(c.max_source_positions, d, vb.device())?,
            blocks,
            ln_post: layer_norm(d, vb.pp("layer_norm"))?,
        })
    }

    /// Switches the blocks' linear layers between integers (`true`) and f32
    /// (see `int_matmul`).
    pub fn set_integer(&mut self, on: bool) -> Result<()> {
        for b in &mut self.blocks {
            let a = &mut b.attn;
            for layer in [
                &mut a.query,
                &mut a.key,
                &mut a.value,
                &mut a.out,
                &mut b.fc1,
                &mut b.fc2,
            ] {
                layer.set_integer(on)?;
            }
        }
        Ok(())
    }

    /// `[1, n_mels, 3000]` log-mel → `[1, 1500, d]` audio features.
    pub fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let x = fast_ops::gelu_erf(&self.conv1.forward(mel)?)?;
        let x = fast_ops::gelu_erf(&self.conv2.forward(&x)?)?.transpose(1, 2)?;
        let n = x.dim(1)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, n)?)?;
        for b in &self.blocks {
            let h = b.attn_ln.forward(&x)?;
            let (q, k, v) = (
                b.attn.query.forward(&h)?,
                b.attn.key.forward(&h)?,
                b.attn.value.forward(&h)?,
            );
            x = (&x + b.attn.attend(&q, &k, &v, None)?)?;
            x = b.mlp(&x)?;
        }
        self.ln_post.forward(&x)
    }
}

/// Cross-attention keys and values of one audio window, per layer, split
/// into heads: computed once and shared by every decoding pass over the
/// window. (Split at every step, they were copied whole for every token:
/// 4.6 MB per layer for tiny.en.)
#[derive(Clone)]
pub struct CrossKv(Vec<(Tensor, Tensor)>);

/// One decoding pass: the window's cross-attention K/V and the
/// self-attention cache of the tokens fed so far.
pub struct DecoderState {
    cross_kv: CrossKv,
    self_kv: Vec<KvCache>,
    /// Tokens fed so far, which is also the position of the next one.
    pub len: usize,
}

pub struct Decoder {
    embed: Embedding,
    positions: Tensor,
    blocks: Vec<Block>,
    ln: LayerNorm,
    max_positions: usize,
    /// int8 copy of `embed` for the output projection (`projection.rs`);
    /// `None` uses the f32 embedding.
    projection: Option<QuantizedProjection>,
}

impl Decoder {
    fn load(vb: VarBuilder, c: &Config) -> Result<Self> {
        let d = c.d_model;
        let blocks = (0..c.decoder_layers)
            .map(|i| {
                Block::load(
                    d,
                    c.decoder_attention_heads,
                    true,
                    vb.pp(format!("layers.{i}")),
                )
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            embed: candle_nn::embedding(c.vocab_size, d, vb.pp("embed_tokens"))?,
            positions: vb.get((c.max_target_positions, d), "embed_positions.weight")?,
            blocks,
            ln: layer_norm(d, vb.pp("layer_norm"))?,
            max_positions: c.max_target_positions,
            projection: None,
        })
    }

    /// Switches the output projection between int8 (`true`: a quarter of
    /// the memory traffic per token) and the f32 embedding.
    pub fn set_int8_projection(&mut self, on: bool) -> Result<()> {
        self.projection = if on {
            let w = self.embed.embeddings();
            let (rows, cols) = w.dims2()?;
            let data = w.flatten_all()?.to_vec1::<f32>()?;
            Some(QuantizedProjection::new(&data, rows, cols).ok_or_else(|| {
                candle_core::Error::Msg(format!("cannot quantize a {rows}x{cols} projection"))
            })?)
        } else {
            None
        };
        Ok(())
    }

    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Computes the cross-attention K/V of `audio` once for a whole window.
    pub fn cross_kv(&self, audio: &Tensor) -> Result<CrossKv> {
        let kv = self
            .blocks
            .iter()
            .map(|b| match &b.cross {
                Some((a, _)) => Ok((
                    a.heads(&a.key.forward(audio)?)?,
                    a.heads(&a.value.forward(audio)?)?,
                )),
                None => Err(candle_core::Error::Msg(
                    "decoder block without cross-attention".into(),
                )),
            })
            .collect::<Result<_>>()?;
        Ok(CrossKv(kv))
    }

    /// A fresh decoding pass over the window whose K/V these are.
    pub fn start(&self, cross_kv: &CrossKv) -> DecoderState {
        let self_kv = self
            .blocks
            .iter()
            .map(|_| KvCache::new(1, self.max_positions))
            .collect();
        DecoderState {
            cross_kv: cross_kv.clone(),
            self_kv,
            len: 0,
        }
    }

    /// Feeds `tokens` after those already in `state` and returns the
    /// vocabulary logits at each of `positions` (indices into `tokens`),
    /// as a `[positions.len(), vocab]` tensor.
    pub fn forward(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        positions: &[usize],
    ) -> Result<Tensor> {
        let n = tokens.len();
        let start = state.len;
        if n == 0 || start + n > self.max_positions {
            return Err(candle_core::Error::Msg(format!(
                "decoder context full: {start} + {n} tokens > {}",
                self.max_positions
            )));
        }
        let device = self.positions.device();
        let ids = Tensor::new(tokens, device)?.unsqueeze(0)?;
        let mut x = self
            .embed
            .forward(&ids)?
            .broadcast_add(&self.positions.narrow(0, start, n)?)?;
        // New token i may see cached positions and new tokens up to itself.
        let mask = if n > 1 {
            let m: Vec<f32> = (0..n)
                .flat_map(|i| {
                    (0..start + n).map(move |j| {
                        if j > start + i {
                            f32::NEG_INFINITY
                        } else {
                            0.0
                        }
                    })
                })
                .collect();
            Some(Tensor::from_vec(m, (n, start + n), device)?)
        } else {
            None
        };
        for ((b, cache), (ck, cv)) in self
            .blocks
            .iter()
            .zip(&mut state.self_kv)
            .zip(&state.cross_kv.0)
        {
            let h = b.attn_ln.forward(&x)?;
            let q = b.attn.query.forward(&h)?;
            let (k, v) = cache.append(&b.attn.key.forward(&h)?, &b.attn.value.forward(&h)?)?;
            x = (&x + b.attn.attend(&q, &k, &v, mask.as_ref())?)?;
            if let Some((a, ln)) = &b.cross {
                let q = a.query.forward(&ln.forward(&x)?)?;
                x = (&x + a.attend_heads(&q, ck, cv, None)?)?;
            }
            x = b.mlp(&x)?;
        }
        state.len += n;
        // Only the rows asked for reach the (vocabulary-sized) projection.
        let idx: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
        let idx = Tensor::new(idx.as_slice(), device)?;
        let rows = x.squeeze(0)?.index_select(&idx, 0)?;
        let rows = self.ln.forward(&rows)?;
        match &self.projection {
            Some(p) => {
                let logits: Vec<f32> = rows
                    .to_vec2::<f32>()?
                    .iter()
                    .flat_map(|r| p.apply(r))
                    .collect();
                Tensor::from_vec(logits, (positions.len(), p.rows()), device)
            }
            None => rows.matmul(&self.embed.embeddings().t()?),
        }
    }
}

pub struct Whisper {
    pub encoder: Encoder,
    pub decoder: Decoder,
    pub config: Config,
}

impl Whisper {
    /// Loads candle-named weights (see `convert`); f16 files are widened to
    /// f32 on load, the type candle's CPU kernels are fastest in.
    pub fn load(vb: VarBuilder, config: Config) -> Result<Self> {
        Ok(Self {
            encoder: Encoder::load(vb.pp("model.encoder"), &config)?,
            decoder: Decoder::load(vb.pp("model.decoder"), &config)?,
            config,
        })
    }

    /// From the bytes of a `model.safetensors` written by `convert`.
    pub fn from_safetensors(bytes: Vec<u8>, config: Config) -> Result<Self> {
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)?;
        Self::for_inference(vb, config)
    }

    /// Loaded for transcribing: the vocabulary projection in int8, and in a
    /// browser the encoder's linear layers in integers (`Encoder::set_integer`,
    /// `int_matmul`): wasm has no fused multiply-add, and its eight-lane
    /// integer multiply-add makes the encoder 1.3× as fast there, with the
    /// f32 encoder's word error rate (docs/whisper.md). Natively the f32
    /// encoder on AVX2's fused multiply-adds is as fast, so it stays.
    pub fn for_inference(vb: VarBuilder, config: Config) -> Result<Self> {
        let mut model = Self::load(vb, config)?;
        model.decoder.set_int8_projection(true)?;
        model.encoder.set_integer(cfg!(target_arch = "wasm32"))?;
        Ok(model)
    }
}
