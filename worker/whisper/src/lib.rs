//! Whisper speech-to-text on candle, for the browser worker and natively.
//!
//! Weights come from CTranslate2 packages (faster-whisper's format): `ct2`
//! reads them, `convert` maps them to candle names. `mel` turns 16 kHz audio
//! into openai's log-mel features, `model` runs the network with a
//! self-attention KV cache, `decode` picks one window's tokens the way
//! openai's `transcribe` does, `transcribe` walks a recording window by
//! window into timestamped segments, and `tokenizer` turns ids into text.
//! `wer` (feature `wer`) scores transcripts for tests and benchmarks.
//!
//! Which model files a node may load, pinned by sha256, is the worker's
//! business (`potluck_worker::catalog`); this crate turns their bytes into text.

pub mod config;
pub mod convert;
pub mod ct2;
pub mod decode;
pub mod dense;
pub mod fast_ops;
pub mod int_matmul;
pub mod mel;
pub mod model;
pub mod projection;
pub mod tokenizer;
pub mod transcribe;
#[cfg(feature = "wer")]
pub mod wer;
