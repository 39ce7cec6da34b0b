//! Whole recordings: the engine (model, tokenizer, options), the walk over
//! 30 s windows, and the transcript with timestamped segments.
//!
//! With timestamps (openai's and faster-whisper's default) the next window
//! starts at the last complete segment's end, so words cut by a window edge
//! are decoded again whole in the next window (`shared/notes/whisper.md` §6).
//! Without, windows are consecutive and words at their edges may be garbled.
//!
//! Each window is conditioned on the text of the windows before it, as
//! faster-whisper's `condition_on_previous_text` does, and a transcript says
//! what the next chunk of the recording should be conditioned on
//! ([`Transcript::next_prompt`]), so that chunks decoded one after the other,
//! here or on another worker, read as one recording.

use super::config::{Config, ModelInfo};
use super::decode::{max_previous_tokens, DecodeError, Rng, WindowDecoder, WindowResult};
use super::mel::{log_mel, LogMel, MelFilters, HOP_LENGTH, N_FRAMES, SAMPLE_RATE};
use super::model::Whisper;
use super::tokenizer::Tokenizer;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::ops::Range;

/// Seconds per timestamp step: one encoder position is two mel frames.
const TIME_PRECISION: f32 = 0.02;
/// Mel frames per timestamp step.
const INPUT_STRIDE: usize = 2;

/// What to transcribe and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Language code for multilingual models; `None` detects it once, from
    /// the first window. English-only models ignore it.
    pub language: Option<String>,
    /// Timestamped segments and seeking by them (the default), or
    /// consecutive windows without timestamps.
    pub timestamps: bool,
    /// Seed for sampling at temperatures above zero.
    pub seed: u64,
    /// Condition each window on the text before it (faster-whisper's
    /// `condition_on_previous_text`, on by default there and here).
    pub condition_on_previous_text: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            language: None,
            timestamps: true,
            seed: 0,
            condition_on_previous_text: true,
        }
    }
}

/// A stretch of speech and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Start and end in seconds from the start of the recording.
    pub start: f32,
    pub end: f32,
    pub text: String,
}

/// One decoded window, for diagnostics and benchmarks.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Where it started, in seconds.
    pub start: f32,
    pub result: WindowResult,
    /// Left out of the transcript as silence.
    pub silent: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    pub text: String,
    pub segments: Vec<Segment>,
    pub windows: Vec<Window>,
    /// Language code used (multilingual models only).
    pub language: Option<String>,
    /// Time spent in the encoder and decoder (seconds), for benchmarks.
    pub encoder_s: f64,
    pub decoder_s: f64,
    pub decoded_tokens: usize,
    /// Token ids to condition the next chunk of the recording on (its
    /// `previous`): the text tokens, timestamps included, of this
    /// transcript's segments after those it was given, as faster-whisper
    /// collects them, the last [`max_previous_tokens`] only. Empty when
    /// conditioning is off or the last window fell back to a temperature
    /// above [`PROMPT_RESET_ON_TEMPERATURE`](super::decode::PROMPT_RESET_ON_TEMPERATURE).
    pub next_prompt: Vec<u32>,
}

/// A loaded model, ready to transcribe.
pub struct Engine {
    pub model: Whisper,
    pub tokenizer: Tokenizer,
    pub info: ModelInfo,
    filters: MelFilters,
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
    #[error("model.bin: {0}")]
    Package(String),
}

impl Engine {
    /// From the three files `whisper-convert` writes.
    pub fn load(
        safetensors: Vec<u8>,
        model_json: &str,
        vocabulary: &str,
    ) -> Result<Self, LoadError> {
        let info: ModelInfo = serde_json::from_str(model_json)?;
        Self::assemble(info, vocabulary, |config| {
            Whisper::from_safetensors(safetensors, config)
        })
    }

    /// From the three files of a CTranslate2 package, converted in memory
    /// straight into tensors.
    pub fn from_ct2(
        model_bin: &[u8],
        config_json: &str,
        vocabulary: &str,
    ) -> Result<Self, LoadError> {
        let package = |e: &dyn std::fmt::Display| LoadError::Package(e.to_string());
        let model = super::ct2::Ct2Model::parse(model_bin).map_err(|e| package(&e))?;
        let converted =
            super::convert::convert(&model, config_json, vocabulary).map_err(|e| package(&e))?;
        let pieces = Box::new(super::convert::Pieces(converted.tensors));
        let weights = VarBuilder::from_backend(pieces, DType::F32, Device::Cpu);
        Self::assemble(converted.info, vocabulary, |config| {
            Whisper::for_inference(weights, config)
        })
    }

    /// The engine for `info`, once its vocabulary is checked against it.
    fn assemble(
        info: ModelInfo,
        vocabulary: &str,
        model: impl FnOnce(Config) -> candle_core::Result<Whisper>,
    ) -> Result<Self, LoadError> {
        let tokenizer = Tokenizer::from_vocabulary(vocabulary)?;
        if tokenizer.specials() != &info.tokens {
            return Err(LoadError::VocabularyMismatch);
        }
        Ok(Self {
            model: model(info.config.clone())?,
            tokenizer,
            filters: MelFilters::new(info.config.num_mel_bins),
            info,
        })
    }

    /// A model folder on disk: either what `whisper-convert` writes
    /// (`model.safetensors`, `model.json`, `vocabulary.txt`) or a CTranslate2
    /// package (`model.bin`, `config.json`, `vocabulary.txt`).
    pub fn from_dir(dir: &std::path::Path) -> Result<Self, String> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let text = |name: &str| {
            String::from_utf8(read(name)?).map_err(|e| format!("{}/{name}: {e}", dir.display()))
        };
        let vocabulary = text("vocabulary.txt")?;
        let engine = if dir.join("model.safetensors").exists() {
            Self::load(
                read("model.safetensors")?,
                &text("model.json")?,
                &vocabulary,
            )
        } else {
            Self::from_ct2(&read("model.bin")?, &text("config.json")?, &vocabulary)
        };
        engine.map_err(|e| e.to_string())
    }

    /// Transcribes 16 kHz mono samples.
    pub fn transcribe_pcm(
        &self,
        samples: &[f32],
        opts: &Options,
    ) -> Result<Transcript, DecodeError> {
        self.transcribe_pcm_after(samples, &[], opts)
    }

    /// Transcribes 16 kHz mono samples that follow text already transcribed:
    /// `previous` is that text's [`Transcript::next_prompt`] (empty for
    /// none), which the first window is conditioned on.
    pub fn transcribe_pcm_after(
        &self,
        samples: &[f32],
        previous: &[u32],
        opts: &Options,
    ) -> Result<Transcript, DecodeError> {
        self.transcribe_after(&log_mel(samples, &self.filters), previous, opts)
    }

    /// Transcribes consecutive chunks of one recording (`audio::split`'s) in
    /// order, each conditioned on the text before it when
    /// `opts.condition_on_previous_text`, and stitches them.
    pub fn transcribe_chunks(
        &self,
        samples: &[f32],
        chunks: impl IntoIterator<Item = Range<usize>>,
        opts: &Options,
    ) -> Result<Transcript, DecodeError> {
        let mut parts = Vec::new();
        let mut previous = Vec::new();
        for chunk in chunks {
            let offset = chunk.start as f32 / SAMPLE_RATE as f32;
            let part = self.transcribe_pcm_after(&samples[chunk], &previous, opts)?;
            previous.clone_from(&part.next_prompt);
            parts.push((offset, part));
        }
        Ok(stitch(parts))
    }

    fn window_decoder(&self) -> WindowDecoder<'_> {
        WindowDecoder {
            model: &self.model,
            tokenizer: &self.tokenizer,
            options: &self.info.options,
        }
    }

    /// Transcribes normalised log-mel features window by window.
    pub fn transcribe(&self, mel: &LogMel, opts: &Options) -> Result<Transcript, DecodeError> {
        self.transcribe_after(mel, &[], opts)
    }

    /// [`Engine::transcribe`] after text already transcribed
    /// ([`Engine::transcribe_pcm_after`]).
    pub fn transcribe_after(
        &self,
        mel: &LogMel,
        previous: &[u32],
        opts: &Options,
    ) -> Result<Transcript, DecodeError> {
        let decoder = self.window_decoder();
        let keep = max_previous_tokens(self.model.decoder.max_positions());
        // faster-whisper's `all_tokens[prompt_reset_since:]`, trimmed as it
        // is when it becomes a prompt.
        let mut context = previous[previous.len().saturating_sub(keep)..].to_vec();
        let specials = self.tokenizer.specials();
        let mut out = Transcript::default();
        let mut rng = Rng::new(opts.seed);
        let mut language = match (&opts.language, specials.multilingual) {
            (Some(code), true) => Some(
                specials
                    .language(code)
                    .ok_or_else(|| DecodeError::UnknownLanguage(code.clone()))?,
            ),
            _ => None,
        };
        let frame_s = HOP_LENGTH as f32 / SAMPLE_RATE as f32;
        // faster-whisper's content length: the last frame is padding.
        let content = mel.frames.saturating_sub(1);
        let mut seek = 0;
        while seek < content {
            let size = N_FRAMES.min(content - seek);
            let offset = seek as f32 * frame_s;
            let mut features = mel.window(seek);
            // Frames past this window's content are padding, as in pad_or_trim.
            for m in 0..mel.n_mels {
                features[m * N_FRAMES + size..(m + 1) * N_FRAMES].fill(0.0);
            }
            let x = Tensor::from_vec(features, (1, mel.n_mels, N_FRAMES), &Device::Cpu)?;
            let t0 = now();
            let audio = self.model.encoder.forward(&x)?;
            out.encoder_s += now() - t0;
            let t1 = now();
            if specials.multilingual && language.is_none() {
                language = decoder.detect_language(&audio)?;
            }
            let result = decoder.decode_with_fallback(
                &audio,
                &context,
                language,
                opts.timestamps,
                &mut rng,
            )?;
            out.decoder_s += now() - t1;
            out.decoded_tokens += result.tokens.len();
            let silent = result.is_silence();
            let (segments, advance) = if silent {
                (Vec::new(), size)
            } else if opts.timestamps {
                self.split(&result.tokens, size)
            } else {
                let segment = Segment {
                    start: 0.0,
                    end: size as f32 * frame_s,
                    text: result.text.clone(),
                };
                (vec![(segment, 0..result.tokens.len())], size)
            };
            // A silent window is skipped before faster-whisper's reset.
            let reset = !silent && (!opts.condition_on_previous_text || result.resets_prompt());
            carry_over(&mut context, &result.tokens, &segments, reset, keep);
            out.segments
                .extend(segments.into_iter().map(|(s, _)| Segment {
                    start: offset + s.start,
                    end: offset + s.end,
                    text: s.text,
                }));
            out.windows.push(Window {
                start: offset,
                result,
                silent,
            });
            seek += advance;
        }
        out.segments.retain(|s| !s.text.trim().is_empty());
        out.text = text_of(&out.segments);
        if opts.condition_on_previous_text {
            out.next_prompt = context;
        }
        out.language = language
            .and_then(|id| self.tokenizer.token(id))
            .map(|t| t.trim_start_matches("<|").trim_end_matches("|>").to_owned());
        Ok(out)
    }

    /// openai's segment split of one window's tokens: segments between
    /// pairs of consecutive timestamps, and how many frames to advance
    /// (to the last complete segment's end, or the whole window when it ends
    /// with a single timestamp, i.e. no speech was cut). Times are relative
    /// to the window; each segment comes with the range of its tokens.
    fn split(&self, tokens: &[u32], size: usize) -> (Vec<(Segment, Range<usize>)>, usize) {
        let ts = self.tokenizer.specials().timestamp_begin;
        let is_ts = |i: usize| tokens[i] >= ts;
        let n = tokens.len();
        let window_s = size as f32 * HOP_LENGTH as f32 / SAMPLE_RATE as f32;
        let single_ending = n >= 2 && !is_ts(n - 2) && is_ts(n - 1) || n == 1 && is_ts(0);
        let mut cuts: Vec<usize> = (1..n).filter(|&i| is_ts(i - 1) && is_ts(i)).collect();
        if cuts.is_empty() {
            // No complete pair: one segment for the whole window.
            let end = tokens
                .iter()
                .rev()
                .find(|&&t| t > ts)
                .map_or(window_s, |&t| (t - ts) as f32 * TIME_PRECISION);
            let text = self.tokenizer.decode(tokens);
            return (
                vec![(
                    Segment {
                        start: 0.0,
                        end,
                        text,
                    },
                    0..n,
                )],
                size,
            );
        }
        if single_ending {
            cuts.push(n);
        }
        let mut segments = Vec::new();
        let mut last = 0;
        for &cut in &cuts {
            let part = &tokens[last..cut];
            let time = |t: u32| t.saturating_sub(ts) as f32 * TIME_PRECISION;
            if let (Some(&first), Some(&end)) = (part.first(), part.last()) {
                segments.push((
                    Segment {
                        start: time(first),
                        end: time(end).min(window_s),
                        text: self.tokenizer.decode(part),
                    },
                    last..cut,
                ));
            }
            last = cut;
        }
        let advance = if single_ending {
            size
        } else {
            let last_ts = tokens[last - 1].saturating_sub(ts) as usize;
            // A window that makes no progress would loop forever.
            (last_ts * INPUT_STRIDE).clamp(1, size)
        };
        (segments, advance)
    }
}

/// faster-whisper's `all_tokens[prompt_reset_since:]` after one window:
/// the tokens of the segments it keeps (not empty, not zero-length) are
/// added, then `reset` starts afresh; only the last `keep` ever matter.
fn carry_over(
    context: &mut Vec<u32>,
    tokens: &[u32],
    segments: &[(Segment, Range<usize>)],
    reset: bool,
    keep: usize,
) {
    for (s, range) in segments {
        if s.start != s.end && !s.text.trim().is_empty() {
            context.extend_from_slice(&tokens[range.clone()]);
        }
    }
    if reset {
        context.clear();
    }
    context.drain(..context.len().saturating_sub(keep));
}

fn text_of(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| s.text.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One transcript from the transcripts of consecutive chunks of a recording
/// (`audio::split`), each with where its chunk starts in seconds: segments
/// and windows move to the recording's time, texts join in order. The chunks
/// were cut in pauses, so nothing at a seam is lost or said twice. What
/// comes after is conditioned on the last part's `next_prompt`.
pub fn stitch(parts: impl IntoIterator<Item = (f32, Transcript)>) -> Transcript {
    let mut out = Transcript::default();
    for (offset, part) in parts {
        out.segments
            .extend(part.segments.into_iter().map(|s| Segment {
                start: s.start + offset,
                end: s.end + offset,
                ..s
            }));
        out.windows.extend(part.windows.into_iter().map(|w| Window {
            start: w.start + offset,
            ..w
        }));
        out.language = out.language.or(part.language);
        out.encoder_s += part.encoder_s;
        out.decoder_s += part.decoder_s;
        out.decoded_tokens += part.decoded_tokens;
        out.next_prompt = part.next_prompt;
    }
    out.text = text_of(&out.segments);
    out
}

/// Seconds from a monotonic clock: the worker's `performance` in the browser
/// (timings read 0 in wasm outside a worker).
pub fn now() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsCast;
        js_sys::global()
            .dyn_into::<web_sys::WorkerGlobalScope>()
            .ok()
            .and_then(|scope| scope.performance())
            .map_or(0.0, |clock| clock.now() / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(segments: &[(f32, f32, &str)]) -> Transcript {
        let segments: Vec<Segment> = segments
            .iter()
            .map(|&(start, end, text)| Segment {
                start,
                end,
                text: text.into(),
            })
            .collect();
        Transcript {
            text: text_of(&segments),
            segments,
            decoded_tokens: 3,
            ..Transcript::default()
        }
    }

    fn segment(start: f32, end: f32, text: &str, range: Range<usize>) -> (Segment, Range<usize>) {
        let text = text.into();
        (Segment { start, end, text }, range)
    }

    #[test]
    fn the_next_window_is_conditioned_on_the_kept_segments_tokens_timestamps_included() {
        let tokens = [900, 1, 2, 950, 950, 3, 960, 960, 4, 960];
        let segments = [
            segment(0.0, 1.0, " a b", 0..4),
            segment(1.0, 1.2, " ", 4..7),   // no text: not kept
            segment(1.2, 1.2, " d", 7..10), // no length: not kept
        ];
        let mut context = vec![7, 8];
        carry_over(&mut context, &tokens, &segments, false, 223);
        assert_eq!(context, [7, 8, 900, 1, 2, 950]);
        carry_over(&mut context, &tokens, &segments[..1], false, 5);
        assert_eq!(context, [950, 900, 1, 2, 950], "only the last 5");
    }

    #[test]
    fn a_window_decoded_too_hot_leaves_nothing_to_condition_on() {
        let segments = [segment(0.0, 1.0, " a", 0..1)];
        let mut context = vec![7, 8];
        carry_over(&mut context, &[1], &segments, true, 223);
        assert!(context.is_empty());
    }

    #[test]
    fn stitched_chunks_read_as_one_recording() {
        let whole = stitch([
            (
                0.0,
                part(&[(0.0, 4.0, " Hello there."), (4.5, 9.0, " How are you?")]),
            ),
            (29.5, part(&[])), // a chunk of silence says nothing
            (41.0, part(&[(0.2, 3.0, " Fine, thanks.")])),
        ]);
        assert_eq!(whole.text, "Hello there. How are you? Fine, thanks.");
        let times: Vec<(f32, f32)> = whole.segments.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(times, [(0.0, 4.0), (4.5, 9.0), (41.2, 44.0)]);
        assert_eq!(whole.decoded_tokens, 9);
    }
}
