//! CTranslate2 Whisper weights → candle-named tensors (and, for
//! `whisper-convert`, a safetensors file of them).
//!
//! The mapping (`shared/notes/whisper.md` §3): CT2 fuses the self-attention
//! Q, K and V into one `[3d, d]` matrix and the cross-attention K and V into
//! one `[2d, d]`; both are split by rows here. Whisper has no key bias (CT2
//! stores zeros), so it is dropped. Every CT2 weight is already `[out, in]`,
//! so nothing is transposed, and the element type is kept (fp16 stays fp16:
//! half the download of f32; candle converts on load).

use super::config::{Config, DecodeOptions, ModelInfo};
use super::ct2::{Ct2Error, Ct2Model, DType, Variable};
use super::tokenizer::{Tokenizer, TokenizerError};
use candle_core::{Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Ct2(#[from] Ct2Error),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("model.bin is a {0:?} model, not WhisperSpec")]
    NotWhisper(Option<String>),
    #[error("model.bin has no variable {0:?}")]
    Missing(String),
    #[error("model.bin variable {name:?} has shape {actual:?}, expected {expected:?}")]
    BadShape {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("model.bin variable {0:?} is stored as {1:?}; only float16, bfloat16 and float32 weights are supported")]
    UnsupportedDType(String, DType),
    #[error("model.bin scalar {0:?} is missing or not a positive integer")]
    BadScalar(String),
    #[error("config.json: {0}")]
    Options(#[from] serde_json::Error),
    #[error("vocabulary.txt has {vocab} tokens but the embedding has {embedding} rows")]
    VocabularyMismatch { vocab: usize, embedding: usize },
}

/// One output tensor: its shape and a slice of the CT2 payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece<'a> {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: &'a [u8],
}

/// The converted model: candle names → tensors, plus what the engine needs.
pub struct Converted<'a> {
    pub tensors: BTreeMap<String, Piece<'a>>,
    pub info: ModelInfo,
}

/// Converts a parsed `model.bin` with the package's `config.json` and
/// `vocabulary.txt` contents.
pub fn convert<'a>(
    model: &Ct2Model<'a>,
    options_json: &str,
    vocabulary: &str,
) -> Result<Converted<'a>, ConvertError> {
    if model.spec_name.as_deref() != Some("WhisperSpec") {
        return Err(ConvertError::NotWhisper(model.spec_name.clone()));
    }
    let options: DecodeOptions = serde_json::from_str(options_json)?;
    let tokenizer = Tokenizer::from_vocabulary(vocabulary)?;
    let config = derive_config(model)?;
    if tokenizer.vocab_size() != config.vocab_size {
        return Err(ConvertError::VocabularyMismatch {
            vocab: tokenizer.vocab_size(),
            embedding: config.vocab_size,
        });
    }
    let tensors = map_tensors(model, &config)?;
    Ok(Converted {
        tensors,
        info: ModelInfo {
            config,
            options,
            tokens: tokenizer.specials().clone(),
        },
    })
}

fn get<'m, 'a>(model: &'m Ct2Model<'a>, name: &str) -> Result<&'m Variable<'a>, ConvertError> {
    model
        .get(name)
        .ok_or_else(|| ConvertError::Missing(name.to_owned()))
}

fn scalar(model: &Ct2Model, name: &str) -> Result<usize, ConvertError> {
    match get(model, name)?.scalar_int() {
        Some(v) if v > 0 => Ok(v as usize),
        _ => Err(ConvertError::BadScalar(name.to_owned())),
    }
}

fn shape_of(model: &Ct2Model, name: &str) -> Result<Vec<usize>, ConvertError> {
    Ok(get(model, name)?.shape.clone())
}

/// Counts `prefix/layer_N/` layers (names sort `layer_10` before `layer_2`,
/// so the count comes from the indices, not the order).
fn count_layers(model: &Ct2Model, prefix: &str) -> usize {
    model
        .variables
        .keys()
        .filter_map(|k| k.strip_prefix(prefix)?.strip_prefix("/layer_"))
        .filter_map(|rest| rest.split('/').next()?.parse::<usize>().ok())
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}

/// The head counts exist only as scalars; everything else comes from shapes.
pub fn derive_config(model: &Ct2Model) -> Result<Config, ConvertError> {
    let conv1 = shape_of(model, "encoder/conv1/weight")?;
    let (d_model, num_mel_bins) = match conv1[..] {
        [d, mels, 3] => (d, mels),
        _ => return Err(bad_shape("encoder/conv1/weight", vec![0, 80, 3], conv1)),
    };
    let enc_pos = shape_of(model, "encoder/position_encodings/encodings")?;
    let dec_pos = shape_of(model, "decoder/position_encodings/encodings")?;
    let emb = shape_of(model, "decoder/embeddings/weight")?;
    let rows = |name: &str, shape: Vec<usize>| match shape[..] {
        [n, d] if d == d_model => Ok(n),
        _ => Err(bad_shape(name, vec![0, d_model], shape)),
    };
    Ok(Config {
        num_mel_bins,
        max_source_positions: rows("encoder/position_encodings/encodings", enc_pos)?,
        d_model,
        encoder_attention_heads: scalar(model, "encoder/num_heads")?,
        encoder_layers: count_layers(model, "encoder"),
        decoder_attention_heads: scalar(model, "decoder/num_heads")?,
        decoder_layers: count_layers(model, "decoder"),
        vocab_size: rows("decoder/embeddings/weight", emb)?,
        max_target_positions: rows("decoder/position_encodings/encodings", dec_pos)?,
    })
}

fn bad_shape(name: &str, expected: Vec<usize>, actual: Vec<usize>) -> ConvertError {
    ConvertError::BadShape {
        name: name.to_owned(),
        expected,
        actual,
    }
}

/// Collects candle-named tensors, checking every shape against `config`.
struct Mapper<'m, 'a> {
    model: &'m Ct2Model<'a>,
    out: BTreeMap<String, Piece<'a>>,
}

impl<'a> Mapper<'_, 'a> {
    fn var(&self, name: &str, shape: &[usize]) -> Result<&Variable<'a>, ConvertError> {
        let v = get(self.model, name)?;
        if v.shape != shape {
            return Err(bad_shape(name, shape.to_vec(), v.shape.clone()));
        }
        if !matches!(v.dtype, DType::F16 | DType::BF16 | DType::F32) {
            return Err(ConvertError::UnsupportedDType(name.to_owned(), v.dtype));
        }
        Ok(v)
    }

    fn copy(&mut self, to: String, from: &str, shape: &[usize]) -> Result<(), ConvertError> {
        let v = self.var(from, shape)?;
        let piece = Piece {
            shape: shape.to_vec(),
            dtype: v.dtype,
            data: v.data,
        };
        self.out.insert(to, piece);
        Ok(())
    }

    /// Part `part` of `parts` equal row blocks of a fused tensor whose
    /// unfused shape is `shape`.
    fn split(
        &mut self,
        to: String,
        from: &str,
        shape: &[usize],
        parts: usize,
        part: usize,
    ) -> Result<(), ConvertError> {
        let mut fused = shape.to_vec();
        fused[0] *= parts;
        let v = self.var(from, &fused)?;
        // `var` checked the payload size against `fused`, so the slice is in bounds.
        let len = v.data.len() / parts;
        let piece = Piece {
            shape: shape.to_vec(),
            dtype: v.dtype,
            data: &v.data[part * len..(part + 1) * len],
        };
        self.out.insert(to, piece);
        Ok(())
    }

    fn linear(
        &mut self,
        to: &str,
        from: &str,
        d_out: usize,
        d_in: usize,
    ) -> Result<(), ConvertError> {
        self.copy(
            format!("{to}.weight"),
            &format!("{from}/weight"),
            &[d_out, d_in],
        )?;
        self.copy(format!("{to}.bias"), &format!("{from}/bias"), &[d_out])
    }

    fn layer_norm(&mut self, to: &str, from: &str, d: usize) -> Result<(), ConvertError> {
        self.copy(format!("{to}.weight"), &format!("{from}/gamma"), &[d])?;
        self.copy(format!("{to}.bias"), &format!("{from}/beta"), &[d])
    }
}

/// Candle's whisper names for every tensor it loads, plus the encoder's
/// positional table (Hugging Face needs it; candle computes it).
fn map_tensors<'a>(
    model: &Ct2Model<'a>,
    c: &Config,
) -> Result<BTreeMap<String, Piece<'a>>, ConvertError> {
    let d = c.d_model;
    let mut m = Mapper {
        model,
        out: BTreeMap::new(),
    };
    let e = "model.encoder";
    m.copy(
        format!("{e}.conv1.weight"),
        "encoder/conv1/weight",
        &[d, c.num_mel_bins, 3],
    )?;
    m.copy(format!("{e}.conv1.bias"), "encoder/conv1/bias", &[d])?;
    m.copy(
        format!("{e}.conv2.weight"),
        "encoder/conv2/weight",
        &[d, d, 3],
    )?;
    m.copy(format!("{e}.conv2.bias"), "encoder/conv2/bias", &[d])?;
    m.copy(
        format!("{e}.embed_positions.weight"),
        "encoder/position_encodings/encodings",
        &[c.max_source_positions, d],
    )?;
    m.layer_norm(&format!("{e}.layer_norm"), "encoder/layer_norm", d)?;
    for i in 0..c.encoder_layers {
        let (to, from) = (format!("{e}.layers.{i}"), format!("encoder/layer_{i}"));
        self_attention(&mut m, &to, &from, d)?;
        ffn(&mut m, &to, &from, d)?;
    }

    let dd = "model.decoder";
    m.copy(
        format!("{dd}.embed_tokens.weight"),
        "decoder/embeddings/weight",
        &[c.vocab_size, d],
    )?;
    m.copy(
        format!("{dd}.embed_positions.weight"),
        "decoder/position_encodings/encodings",
        &[c.max_target_positions, d],
    )?;
    m.layer_norm(&format!("{dd}.layer_norm"), "decoder/layer_norm", d)?;
    for i in 0..c.decoder_layers {
        let (to, from) = (format!("{dd}.layers.{i}"), format!("decoder/layer_{i}"));
        self_attention(&mut m, &to, &from, d)?;
        // Cross-attention: query alone, then K and V fused as [k; v].
        let (ca, cf) = (format!("{to}.encoder_attn"), format!("{from}/attention"));
        m.linear(&format!("{ca}.q_proj"), &format!("{cf}/linear_0"), d, d)?;
        let kv = format!("{cf}/linear_1");
        m.split(
            format!("{ca}.k_proj.weight"),
            &format!("{kv}/weight"),
            &[d, d],
            2,
            0,
        )?;
        m.split(
            format!("{ca}.v_proj.weight"),
            &format!("{kv}/weight"),
            &[d, d],
            2,
            1,
        )?;
        m.split(
            format!("{ca}.v_proj.bias"),
            &format!("{kv}/bias"),
            &[d],
            2,
            1,
        )?;
        m.linear(&format!("{ca}.out_proj"), &format!("{cf}/linear_2"), d, d)?;
        m.layer_norm(
            &format!("{to}.encoder_attn_layer_norm"),
            &format!("{cf}/layer_norm"),
            d,
        )?;
        ffn(&mut m, &to, &from, d)?;
    }
    Ok(m.out)
}

/// Self-attention: Q, K and V fused as `[q; k; v]`, bias `[q_b; 0; v_b]`.
fn self_attention(m: &mut Mapper, to: &str, from: &str, d: usize) -> Result<(), ConvertError> {
    let (sa, sf) = (format!("{to}.self_attn"), format!("{from}/self_attention"));
    let (w, b) = (
        format!("{sf}/linear_0/weight"),
        format!("{sf}/linear_0/bias"),
    );
    m.split(format!("{sa}.q_proj.weight"), &w, &[d, d], 3, 0)?;
    m.split(format!("{sa}.q_proj.bias"), &b, &[d], 3, 0)?;
    m.split(format!("{sa}.k_proj.weight"), &w, &[d, d], 3, 1)?;
    m.split(format!("{sa}.v_proj.weight"), &w, &[d, d], 3, 2)?;
    m.split(format!("{sa}.v_proj.bias"), &b, &[d], 3, 2)?;
    m.linear(&format!("{sa}.out_proj"), &format!("{sf}/linear_1"), d, d)?;
    m.layer_norm(
        &format!("{to}.self_attn_layer_norm"),
        &format!("{sf}/layer_norm"),
        d,
    )
}

fn ffn(m: &mut Mapper, to: &str, from: &str, d: usize) -> Result<(), ConvertError> {
    m.linear(
        &format!("{to}.fc1"),
        &format!("{from}/ffn/linear_0"),
        4 * d,
        d,
    )?;
    m.linear(
        &format!("{to}.fc2"),
        &format!("{from}/ffn/linear_1"),
        d,
        4 * d,
    )?;
    m.layer_norm(
        &format!("{to}.final_layer_norm"),
        &format!("{from}/ffn/layer_norm"),
        d,
    )
}

/// The converted tensors as a candle backend: each is made from the
/// package's bytes when the model asks for it, in the type it asks for, so
/// the weights never exist twice (as they would written out as safetensors
/// and read back).
pub struct Pieces<'a>(pub BTreeMap<String, Piece<'a>>);

impl SimpleBackend for Pieces<'_> {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: candle_core::DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.get_unchecked(name, dtype, device)?;
        if tensor.shape() != &shape {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: shape,
                got: tensor.shape().clone(),
            }
            .bt());
        }
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: candle_core::DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let piece = self.0.get(name).ok_or_else(|| {
            candle_core::Error::CannotFindTensor {
                path: name.to_owned(),
            }
            .bt()
        })?;
        Tensor::from_raw_buffer(piece.data, piece.dtype.to_candle()?, &piece.shape, device)?
            .to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// Serialises tensors in the safetensors layout: a little-endian `u64`
/// header length, a JSON header (padded with spaces to 8 bytes so payloads
/// are aligned), then the payloads back to back in header order.
pub fn to_safetensors(tensors: &BTreeMap<String, Piece>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, p) in tensors {
        let dtype = match p.dtype {
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::F32 => "F32",
            DType::I8 => "I8",
            DType::I16 => "I16",
            DType::I32 => "I32",
        };
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": dtype,
                "shape": p.shape,
                "data_offsets": [offset, offset + p.data.len()],
            }),
        );
        offset += p.data.len();
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for p in tensors.values() {
        out.extend_from_slice(p.data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct2::tests::write_v6;

    /// A toy model with d = 2, one layer each side, fp16 payloads whose bytes
    /// number the rows so the splits can be checked.
    fn toy() -> Vec<u8> {
        fn rows(n: usize, cols: usize) -> Vec<u8> {
            (0..n * cols)
                .flat_map(|i| half::f16::from_f32((i / cols) as f32).to_le_bytes())
                .collect()
        }
        let d = 2;
        let mut vars: Vec<(String, Vec<usize>, u8, Vec<u8>)> = vec![
            (
                "encoder/num_heads".into(),
                vec![],
                2,
                1i16.to_le_bytes().to_vec(),
            ),
            (
                "decoder/num_heads".into(),
                vec![],
                2,
                1i16.to_le_bytes().to_vec(),
            ),
            ("encoder/conv1/weight".into(), vec![d, 3, 3], 4, rows(d, 9)),
            ("encoder/conv1/bias".into(), vec![d], 4, rows(d, 1)),
            ("encoder/conv2/weight".into(), vec![d, d, 3], 4, rows(d, 6)),
            ("encoder/conv2/bias".into(), vec![d], 4, rows(d, 1)),
            (
                "encoder/position_encodings/encodings".into(),
                vec![5, d],
                4,
                rows(5, d),
            ),
            (
                "decoder/position_encodings/encodings".into(),
                vec![4, d],
                4,
                rows(4, d),
            ),
            (
                "decoder/embeddings/weight".into(),
                vec![15, d],
                4,
                rows(15, d),
            ),
        ];
        for side in ["encoder", "decoder"] {
            vars.push((format!("{side}/layer_norm/gamma"), vec![d], 4, rows(d, 1)));
            vars.push((format!("{side}/layer_norm/beta"), vec![d], 4, rows(d, 1)));
            let l = format!("{side}/layer_0");
            let mut lin = |name: String, o: usize, i: usize| {
                vars.push((format!("{name}/weight"), vec![o, i], 4, rows(o, i)));
                vars.push((format!("{name}/bias"), vec![o], 4, rows(o, 1)));
            };
            lin(format!("{l}/self_attention/linear_0"), 3 * d, d);
            lin(format!("{l}/self_attention/linear_1"), d, d);
            lin(format!("{l}/ffn/linear_0"), 4 * d, d);
            lin(format!("{l}/ffn/linear_1"), d, 4 * d);
            if side == "decoder" {
                lin(format!("{l}/attention/linear_0"), d, d);
                lin(format!("{l}/attention/linear_1"), 2 * d, d);
                lin(format!("{l}/attention/linear_2"), d, d);
            }
            let mut norms = vec!["self_attention", "ffn"];
            if side == "decoder" {
                norms.push("attention");
            }
            for n in norms {
                vars.push((format!("{l}/{n}/layer_norm/gamma"), vec![d], 4, rows(d, 1)));
                vars.push((format!("{l}/{n}/layer_norm/beta"), vec![d], 4, rows(d, 1)));
            }
        }
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let refs: Vec<(&str, &[usize], u8, &[u8])> = vars
            .iter()
            .map(|(n, s, t, d)| (n.as_str(), s.as_slice(), *t, d.as_slice()))
            .collect();
        write_v6(
            &refs,
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        )
    }

    fn vocabulary() -> String {
        let mut v: Vec<String> = (0..4).map(|i| format!("t{i}")).collect();
        v.extend(crate::tokenizer::TEST_SPECIAL_TOKENS.map(String::from));
        v.join("\n") + "\n"
    }

    const OPTIONS: &str =
        r#"{"suppress_ids":[1],"suppress_ids_begin":[4],"lang_ids":[],"alignment_heads":[]}"#;

    fn first_value(p: &Piece) -> f32 {
        half::f16::from_le_bytes([p.data[0], p.data[1]]).to_f32()
    }

    #[test]
    fn derives_config_from_shapes_and_head_scalars() {
        let bytes = toy();
        let model = Ct2Model::parse(&bytes).unwrap();
        let c = convert(&model, OPTIONS, &vocabulary()).unwrap().info.config;
        assert_eq!(
            c,
            Config {
                num_mel_bins: 3,
                max_source_positions: 5,
                d_model: 2,
                encoder_attention_heads: 1,
                encoder_layers: 1,
                decoder_attention_heads: 1,
                decoder_layers: 1,
                vocab_size: 15,
                max_target_positions: 4,
            }
        );
    }

    #[test]
    fn splits_fused_qkv_and_kv_by_rows_and_drops_key_bias() {
        let bytes = toy();
        let model = Ct2Model::parse(&bytes).unwrap();
        let t = convert(&model, OPTIONS, &vocabulary()).unwrap().tensors;
        let sa = "model.decoder.layers.0.self_attn";
        // Rows of linear_0 are numbered 0..6: q = rows 0,1; k = 2,3; v = 4,5.
        assert_eq!(first_value(&t[&format!("{sa}.q_proj.weight")]), 0.0);
        assert_eq!(first_value(&t[&format!("{sa}.k_proj.weight")]), 2.0);
        assert_eq!(first_value(&t[&format!("{sa}.v_proj.weight")]), 4.0);
        assert_eq!(first_value(&t[&format!("{sa}.v_proj.bias")]), 4.0);
        assert!(!t.contains_key(&format!("{sa}.k_proj.bias")));
        let ca = "model.decoder.layers.0.encoder_attn";
        assert_eq!(first_value(&t[&format!("{ca}.k_proj.weight")]), 0.0);
        assert_eq!(first_value(&t[&format!("{ca}.v_proj.weight")]), 2.0);
        assert_eq!(t[&format!("{ca}.v_proj.weight")].shape, vec![2, 2]);
        assert!(t.contains_key("model.encoder.layers.0.fc2.bias"));
    }

    #[test]
    fn wrong_shape_names_the_variable() {
        let bytes = toy();
        let mut model = Ct2Model::parse(&bytes).unwrap();
        if let Some(v) = model
            .variables
            .get_mut("encoder/layer_0/ffn/linear_0/weight")
        {
            v.shape = vec![3, 2];
        }
        let err = convert(&model, OPTIONS, &vocabulary()).err().unwrap();
        assert!(
            err.to_string()
                .contains("encoder/layer_0/ffn/linear_0/weight"),
            "{err}"
        );
    }

    #[test]
    fn safetensors_output_is_aligned_and_self_consistent() {
        let bytes = toy();
        let model = Ct2Model::parse(&bytes).unwrap();
        let t = convert(&model, OPTIONS, &vocabulary()).unwrap().tensors;
        let st = to_safetensors(&t);
        let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + n) % 8, 0);
        let header: serde_json::Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
        let total: usize = t.values().map(|p| p.data.len()).sum();
        assert_eq!(st.len(), 8 + n + total);
        assert_eq!(header["model.decoder.embed_tokens.weight"]["dtype"], "F16");
        // candle reads it back, fp16 converted on the way as the engine does.
        let loaded = candle_core::safetensors::load_buffer(&st, &candle_core::Device::Cpu).unwrap();
        let q = loaded["model.encoder.layers.0.self_attn.v_proj.weight"]
            .to_dtype(candle_core::DType::F32)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(q, vec![vec![4.0, 4.0], vec![5.0, 5.0]]);
    }
}
