//! The shape of a Whisper model and the decoding options that ship with it.
//!
//! CTranslate2 packages carry no Hugging Face config: [`Config`] is derived
//! from tensor shapes and the `num_heads` scalars by `convert`, and written
//! with the converted weights as one small JSON ([`ModelInfo`]).

use super::tokenizer::SpecialTokens;
use serde::{Deserialize, Serialize};

/// Model dimensions; field names follow candle's/Hugging Face's `WhisperConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub num_mel_bins: usize,
    pub max_source_positions: usize,
    pub d_model: usize,
    pub encoder_attention_heads: usize,
    pub encoder_layers: usize,
    pub decoder_attention_heads: usize,
    pub decoder_layers: usize,
    pub vocab_size: usize,
    pub max_target_positions: usize,
}

/// The options CTranslate2 keeps in the package's `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodeOptions {
    /// Masked at every decoding step.
    pub suppress_ids: Vec<u32>,
    /// Masked at the first generated step only (a space and end-of-text).
    pub suppress_ids_begin: Vec<u32>,
    #[serde(default)]
    pub lang_ids: Vec<u32>,
}

/// Everything the engine needs besides the weights and the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub config: Config,
    pub options: DecodeOptions,
    pub tokens: SpecialTokens,
}
