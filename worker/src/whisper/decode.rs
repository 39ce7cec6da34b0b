//! Turning audio features into tokens the way openai's `transcribe` does:
//! greedy decoding with the package's token suppression, temperature
//! fallback when a window looks wrong (too repetitive or too unlikely), and
//! skipping windows that are silence.
//!
//! Long audio is decoded as consecutive 30 s windows without timestamps.
//! (Timestamp-driven seeking, which avoids cutting words at window edges, is
//! the next step: `shared/notes/whisper.md` §6.)

use super::config::ModelInfo;
use super::mel::{log_mel, LogMel, MelFilters, N_FRAMES};
use super::model::Whisper;
use super::tokenizer::Tokenizer;
use candle_core::{Device, Tensor};

/// openai's `transcribe` defaults (also faster-whisper's).
pub const TEMPERATURES: [f32; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
/// Above this gzip ratio the text is "too repetitive" and decoded again.
pub const COMPRESSION_RATIO_THRESHOLD: f32 = 2.4;
/// Below this average log-probability a window is decoded again.
pub const LOGPROB_THRESHOLD: f32 = -1.0;
/// A window whose `<|nocaptions|>` probability is above this (and whose text
/// is unlikely) is silence.
pub const NO_SPEECH_THRESHOLD: f32 = 0.6;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("model error: {0}")]
    Model(#[from] candle_core::Error),
    #[error("the model has no language token {0:?}")]
    UnknownLanguage(String),
}

/// What to transcribe and how.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Language code for multilingual models; `None` detects it per window.
    /// English-only models ignore it.
    pub language: Option<String>,
    /// Seed for sampling at temperatures above zero.
    pub seed: u64,
}

/// One decoding pass over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    pub tokens: Vec<u32>,
    pub text: String,
    pub avg_logprob: f32,
    pub no_speech_prob: f32,
    pub temperature: f32,
    pub compression_ratio: f32,
    pub language: Option<String>,
}

/// A window's result, or why it was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Start and end in seconds.
    pub start: f32,
    pub end: f32,
    pub result: WindowResult,
    /// Skipped as silence: its text is not part of the transcript.
    pub silent: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    pub text: String,
    pub segments: Vec<Segment>,
    /// Time spent in the encoder and decoder (seconds), for benchmarks.
    pub encoder_s: f64,
    pub decoder_s: f64,
    pub decoded_tokens: usize,
}

/// The engine: a model, its tokenizer and its decoding options.
pub struct Engine {
    pub model: Whisper,
    pub tokenizer: Tokenizer,
    pub info: ModelInfo,
}

/// openai's `compression_ratio`: UTF-8 length over zlib-compressed length.
pub fn compression_ratio(text: &str) -> f32 {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let packed = miniz_oxide::deflate::compress_to_vec_zlib(bytes, 6);
    bytes.len() as f32 / packed.len() as f32
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    let log_z = max + sum.ln();
    logits.iter().map(|&l| l - log_z).collect()
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = (0usize, f32::NEG_INFINITY);
    for (i, &x) in v.iter().enumerate() {
        if x > best.1 {
            best = (i, x);
        }
    }
    best.0 as u32
}

/// xorshift64*: sampling needs reproducible randomness, not a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn unit(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Samples from softmax(logits / temperature).
fn sample(logits: &[f32], temperature: f32, rng: &mut Rng) -> u32 {
    let scaled: Vec<f32> = logits.iter().map(|&l| l / temperature).collect();
    let probs: Vec<f32> = log_softmax(&scaled).into_iter().map(f32::exp).collect();
    let mut r = rng.unit();
    for (i, &p) in probs.iter().enumerate() {
        if r < p {
            return i as u32;
        }
        r -= p;
    }
    argmax(logits)
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("model.json: {0}")]
    Info(#[from] serde_json::Error),
    #[error(transparent)]
    Tokenizer(#[from] super::tokenizer::TokenizerError),
    #[error(
        "vocabulary.txt does not belong to this model: its special tokens differ from model.json's"
    )]
    VocabularyMismatch,
    #[error("model.safetensors: {0}")]
    Weights(#[from] candle_core::Error),
}

impl Engine {
    /// From the three files `whisper-convert` writes.
    pub fn load(
        safetensors: Vec<u8>,
        model_json: &str,
        vocabulary: &str,
    ) -> Result<Self, LoadError> {
        let info: ModelInfo = serde_json::from_str(model_json)?;
        let tokenizer = Tokenizer::from_vocabulary(vocabulary)?;
        if tokenizer.specials() != &info.tokens {
            return Err(LoadError::VocabularyMismatch);
        }
        let model = Whisper::from_safetensors(safetensors, info.config.clone())?;
        Ok(Self {
            model,
            tokenizer,
            info,
        })
    }

    /// Transcribes 16 kHz mono samples.
    pub fn transcribe_pcm(
        &self,
        samples: &[f32],
        opts: &Options,
    ) -> Result<Transcript, DecodeError> {
        let filters = MelFilters::new(self.info.config.num_mel_bins);
        self.transcribe(&log_mel(samples, &filters), opts)
    }

    /// Transcribes normalised log-mel features window by window.
    pub fn transcribe(&self, mel: &LogMel, opts: &Options) -> Result<Transcript, DecodeError> {
        let mut out = Transcript::default();
        let mut rng = Rng::new(opts.seed);
        let mut seek = 0;
        let frame_s = super::mel::HOP_LENGTH as f32 / super::mel::SAMPLE_RATE as f32;
        // faster-whisper's content length: the last frame is padding.
        let content = mel.frames.saturating_sub(1);
        while seek < content {
            let size = N_FRAMES.min(content - seek);
            let mut features = mel.window(seek);
            // Frames beyond this window's content are padding, like pad_or_trim.
            if size < N_FRAMES {
                for m in 0..mel.n_mels {
                    features[m * N_FRAMES + size..(m + 1) * N_FRAMES].fill(0.0);
                }
            }
            let x = Tensor::from_vec(features, (1, mel.n_mels, N_FRAMES), &Device::Cpu)?;
            let t0 = now();
            let audio = self.model.encoder.forward(&x)?;
            out.encoder_s += now() - t0;
            let t1 = now();
            let result = self.decode_with_fallback(&audio, opts, &mut rng)?;
            out.decoder_s += now() - t1;
            out.decoded_tokens += result.tokens.len();
            let silent = result.no_speech_prob > NO_SPEECH_THRESHOLD
                && result.avg_logprob <= LOGPROB_THRESHOLD;
            out.segments.push(Segment {
                start: seek as f32 * frame_s,
                end: (seek + size) as f32 * frame_s,
                result,
                silent,
            });
            seek += size;
        }
        out.text = out
            .segments
            .iter()
            .filter(|s| !s.silent)
            .map(|s| s.result.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(out)
    }

    /// openai's `decode_with_fallback`: retry at higher temperatures while
    /// the text is too repetitive or too unlikely, unless it is silence.
    fn decode_with_fallback(
        &self,
        audio: &Tensor,
        opts: &Options,
        rng: &mut Rng,
    ) -> Result<WindowResult, DecodeError> {
        let language = self.language(audio, opts)?;
        let mut last = None;
        for &t in &TEMPERATURES {
            let r = self.decode_window(audio, language, t, rng)?;
            let unlikely = r.avg_logprob < LOGPROB_THRESHOLD;
            let retry = (r.compression_ratio > COMPRESSION_RATIO_THRESHOLD || unlikely)
                && !(r.no_speech_prob > NO_SPEECH_THRESHOLD && unlikely);
            if !retry {
                return Ok(r);
            }
            last = Some(r);
        }
        // All temperatures failed: openai keeps the last attempt.
        match last {
            Some(r) => Ok(r),
            None => self.decode_window(audio, language, 0.0, rng),
        }
    }

    /// The language token to prompt with: none for English-only models, the
    /// requested one, or the most likely one after `<|startoftranscript|>`.
    fn language(&self, audio: &Tensor, opts: &Options) -> Result<Option<u32>, DecodeError> {
        let s = self.tokenizer.specials();
        if !s.multilingual {
            return Ok(None);
        }
        if let Some(code) = &opts.language {
            return s
                .language(code)
                .map(Some)
                .ok_or_else(|| DecodeError::UnknownLanguage(code.clone()));
        }
        let dec = &self.model.decoder;
        let mut state = dec.start(audio)?;
        let logits = dec
            .forward(&mut state, &[s.sot], &[0])?
            .squeeze(0)?
            .to_vec1::<f32>()?;
        let best = s
            .languages
            .iter()
            .map(|&(_, id)| id)
            .max_by(|&a, &b| logits[a as usize].total_cmp(&logits[b as usize]));
        Ok(best)
    }

    /// One greedy (temperature 0) or sampled pass over one window.
    fn decode_window(
        &self,
        audio: &Tensor,
        language: Option<u32>,
        temperature: f32,
        rng: &mut Rng,
    ) -> Result<WindowResult, DecodeError> {
        let s = self.tokenizer.specials();
        let dec = &self.model.decoder;
        let mut prompt = vec![s.sot];
        if let Some(lang) = language {
            prompt.extend([lang, s.transcribe]);
        }
        prompt.push(s.no_timestamps);
        // openai's sample_len: half the text context per window.
        let sample_len = dec.max_positions() / 2;
        let mut state = dec.start(audio)?;
        // First step: logits at <|startoftranscript|> (no-speech probability)
        // and at the last prompt token (the first text token).
        let first = dec.forward(&mut state, &prompt, &[0, prompt.len() - 1])?;
        let sot_logits = first.get(0)?.to_vec1::<f32>()?;
        let no_speech_prob = log_softmax(&sot_logits)[s.no_speech as usize].exp();
        let mut logits = first.get(1)?.to_vec1::<f32>()?;
        let mut tokens = Vec::new();
        let mut sum_logprob = 0.0f32;
        for step in 0..sample_len {
            for &id in &self.info.options.suppress_ids {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
            if step == 0 {
                for &id in &self.info.options.suppress_ids_begin {
                    if let Some(l) = logits.get_mut(id as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
            let next = if temperature > 0.0 {
                sample(&logits, temperature, rng)
            } else {
                argmax(&logits)
            };
            if next == s.eot {
                break;
            }
            sum_logprob += log_softmax(&logits)[next as usize];
            tokens.push(next);
            if state.len >= dec.max_positions() || step + 1 == sample_len {
                break;
            }
            logits = dec
                .forward(&mut state, &[next], &[0])?
                .squeeze(0)?
                .to_vec1::<f32>()?;
        }
        let text = self.tokenizer.decode(&tokens);
        Ok(WindowResult {
            avg_logprob: sum_logprob / (tokens.len() + 1) as f32,
            compression_ratio: compression_ratio(&text),
            language: language
                .and_then(|id| self.tokenizer.token(id))
                .map(|t| t.trim_start_matches("<|").trim_end_matches("|>").to_owned()),
            tokens,
            text,
            no_speech_prob,
            temperature,
        })
    }
}

/// Seconds from a monotonic clock where there is one (not in wasm32 without
/// web APIs, where timings read 0).
fn now() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitive_text_has_a_high_compression_ratio() {
        let repeated = "the same words again and again ".repeat(20);
        assert!(compression_ratio(&repeated) > COMPRESSION_RATIO_THRESHOLD);
        let normal = "The quick brown fox jumps over the lazy dog. Please call Stella.";
        assert!(compression_ratio(normal) < COMPRESSION_RATIO_THRESHOLD);
        assert_eq!(compression_ratio(""), 0.0);
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let lp = log_softmax(&[1.0, 2.0, f32::NEG_INFINITY, 0.5]);
        let total: f32 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(lp[2], f32::NEG_INFINITY);
    }

    #[test]
    fn sampling_never_picks_a_suppressed_token_and_follows_the_distribution() {
        let mut rng = Rng::new(7);
        let logits = [0.0, f32::NEG_INFINITY, 0.0, 2.0];
        let mut counts = [0; 4];
        for _ in 0..4000 {
            counts[sample(&logits, 1.0, &mut rng) as usize] += 1;
        }
        assert_eq!(counts[1], 0);
        // p = e²/(2+e²) ≈ 0.79 for the last token.
        assert!(counts[3] > 2900 && counts[3] < 3400, "{counts:?}");
    }
}
