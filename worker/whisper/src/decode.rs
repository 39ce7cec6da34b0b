//! Decoding one 30 s window into tokens the way openai's `transcribe` does:
//! greedy with the package's token suppression, openai's timestamp rules
//! when timestamps are asked for, and temperature fallback when the result
//! looks wrong (too repetitive or too unlikely) unless it is silence.
//! A window may be conditioned on the text before it (openai's
//! `<|startofprev|>` prompt); the prompt is fed in one forward pass and never
//! part of what comes back.

use super::config::DecodeOptions;
use super::model::{CrossKv, Whisper};
use super::tokenizer::{SpecialTokens, Tokenizer};
use candle_core::Tensor;

/// openai's `transcribe` defaults (also faster-whisper's).
pub const TEMPERATURES: [f32; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
/// Above this gzip ratio the text is "too repetitive" and decoded again.
pub const COMPRESSION_RATIO_THRESHOLD: f32 = 2.4;
/// Below this average log-probability a window is decoded again.
pub const LOGPROB_THRESHOLD: f32 = -1.0;
/// A window whose `<|nocaptions|>` probability is above this (and whose text
/// is unlikely) is silence.
pub const NO_SPEECH_THRESHOLD: f32 = 0.6;
/// openai's `max_initial_timestamp` (1 s) in 0.02 s timestamp steps: the
/// first timestamp may not jump over the start of the window.
const MAX_INITIAL_TIMESTAMP_STEPS: u32 = 50;
/// openai's and faster-whisper's `prompt_reset_on_temperature`: text decoded
/// above this temperature is too unreliable to condition the next window on.
pub const PROMPT_RESET_ON_TEMPERATURE: f32 = 0.5;

/// How many previous tokens a prompt keeps (the last ones): openai's
/// `n_text_ctx // 2 - 1`, 223 for every Whisper model, so that the prompt
/// leaves half the text context to the window's own tokens.
pub fn max_previous_tokens(max_positions: usize) -> usize {
    (max_positions / 2).saturating_sub(1)
}

/// The decoder's prompt for one window (faster-whisper's `get_prompt`):
/// `<|startofprev|>` and the last previous tokens when there are any, then
/// `<|startoftranscript|>`, the language and task for multilingual models,
/// and `<|notimestamps|>` without timestamps. Also returns where
/// `<|startoftranscript|>` is: the no-speech probability is read there.
pub fn prompt(
    s: &SpecialTokens,
    previous: &[u32],
    max_positions: usize,
    language: Option<u32>,
    timestamps: bool,
) -> (Vec<u32>, usize) {
    let mut prompt = Vec::new();
    if !previous.is_empty() {
        let keep = max_previous_tokens(max_positions);
        prompt.push(s.sot_prev);
        prompt.extend_from_slice(&previous[previous.len().saturating_sub(keep)..]);
    }
    let sot_at = prompt.len();
    prompt.push(s.sot);
    if let (true, Some(lang)) = (s.multilingual, language) {
        prompt.extend([lang, s.transcribe]);
    }
    if !timestamps {
        prompt.push(s.no_timestamps);
    }
    (prompt, sot_at)
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("model error: {0}")]
    Model(#[from] candle_core::Error),
    #[error("the model has no language token {0:?}")]
    UnknownLanguage(String),
}

/// One decoding pass over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    /// Sampled tokens, text and timestamps, without the prompt (previous
    /// text included) and end-of-text.
    pub tokens: Vec<u32>,
    pub text: String,
    pub avg_logprob: f32,
    pub no_speech_prob: f32,
    pub temperature: f32,
    pub compression_ratio: f32,
}

impl WindowResult {
    /// openai's test for a window to leave out as silence.
    pub fn is_silence(&self) -> bool {
        self.no_speech_prob > NO_SPEECH_THRESHOLD && self.avg_logprob <= LOGPROB_THRESHOLD
    }

    /// Decoded at so high a temperature that the next window should not be
    /// conditioned on this one's text.
    pub fn resets_prompt(&self) -> bool {
        self.temperature > PROMPT_RESET_ON_TEMPERATURE
    }
}

/// Decodes windows with one model; borrowed from the engine per window.
pub struct WindowDecoder<'a> {
    pub model: &'a Whisper,
    pub tokenizer: &'a Tokenizer,
    pub options: &'a DecodeOptions,
}

impl WindowDecoder<'_> {
    /// openai's `decode_with_fallback`: retry at higher temperatures while
    /// the text is too repetitive or too unlikely, unless it is silence.
    /// `previous` is the text to condition on (token ids, empty for none).
    pub fn decode_with_fallback(
        &self,
        audio: &Tensor,
        previous: &[u32],
        language: Option<u32>,
        timestamps: bool,
        rng: &mut Rng,
    ) -> Result<WindowResult, DecodeError> {
        let cross = self.model.decoder.cross_kv(audio)?;
        let mut last = None;
        for &t in &TEMPERATURES {
            let r = self.decode(&cross, previous, language, timestamps, t, rng)?;
            let unlikely = r.avg_logprob < LOGPROB_THRESHOLD;
            let retry = (r.compression_ratio > COMPRESSION_RATIO_THRESHOLD || unlikely)
                && !(r.no_speech_prob > NO_SPEECH_THRESHOLD && unlikely);
            if !retry {
                return Ok(r);
            }
            last = Some(r);
        }
        // Every temperature failed: openai keeps the last attempt.
        match last {
            Some(r) => Ok(r),
            None => self.decode(&cross, previous, language, timestamps, 0.0, rng),
        }
    }

    /// The most likely language token after `<|startoftranscript|>`
    /// (openai's `detect_language`), for multilingual models.
    pub fn detect_language(&self, audio: &Tensor) -> Result<Option<u32>, DecodeError> {
        let s = self.tokenizer.specials();
        if !s.multilingual {
            return Ok(None);
        }
        let dec = &self.model.decoder;
        let mut state = dec.start(&dec.cross_kv(audio)?);
        let logits = dec
            .forward(&mut state, &[s.sot], &[0])?
            .squeeze(0)?
            .to_vec1::<f32>()?;
        Ok(s.languages
            .iter()
            .map(|&(_, id)| id)
            .filter(|&id| (id as usize) < logits.len())
            .max_by(|&a, &b| logits[a as usize].total_cmp(&logits[b as usize])))
    }

    /// One greedy (temperature 0) or sampled pass over one window,
    /// conditioned on `previous` (token ids, empty for none).
    pub fn decode(
        &self,
        cross: &CrossKv,
        previous: &[u32],
        language: Option<u32>,
        timestamps: bool,
        temperature: f32,
        rng: &mut Rng,
    ) -> Result<WindowResult, DecodeError> {
        let s = self.tokenizer.specials();
        let dec = &self.model.decoder;
        let (prompt, sot_at) = prompt(s, previous, dec.max_positions(), language, timestamps);
        // openai's sample_len: half the text context per window.
        let sample_len = dec.max_positions() / 2;
        let mut state = dec.start(cross);
        // First step, the whole prompt in one pass: logits at
        // <|startoftranscript|> (no-speech probability) and at the last
        // prompt token (the first sampled token).
        let first = dec.forward(&mut state, &prompt, &[sot_at, prompt.len() - 1])?;
        let sot_logits = first.get(0)?.to_vec1::<f32>()?;
        let no_speech_prob = log_softmax(&sot_logits)
            .get(s.no_speech as usize)
            .map_or(0.0, |l| l.exp());
        let mut logits = first.get(1)?.to_vec1::<f32>()?;
        let mut tokens = Vec::new();
        let mut sum_logprob = 0.0f32;
        for step in 0..sample_len {
            suppress(&mut logits, &self.options.suppress_ids);
            if step == 0 {
                suppress(&mut logits, &self.options.suppress_ids_begin);
            }
            if timestamps {
                apply_timestamp_rules(&mut logits, &tokens, s);
            }
            let next = if temperature > 0.0 {
                sample(&logits, temperature, rng)
            } else {
                argmax(&logits)
            };
            // End-of-text's log-probability counts too (openai's
            // `sum_logprobs`; hence the `+ 1` in the average below).
            sum_logprob += log_softmax(&logits)[next as usize];
            if next == s.eot {
                break;
            }
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
            tokens,
            text,
            no_speech_prob,
            temperature,
        })
    }
}

fn suppress(logits: &mut [f32], ids: &[u32]) {
    for &id in ids {
        if let Some(l) = logits.get_mut(id as usize) {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// openai's `ApplyTimestampRules`, given the tokens sampled so far:
/// timestamps come in pairs around text (one alone only before end-of-text),
/// never go backwards, the first is at most 1 s in, and a timestamp is forced
/// when timestamps together are likelier than any single text token.
pub fn apply_timestamp_rules(logits: &mut [f32], tokens: &[u32], s: &SpecialTokens) {
    let ts = s.timestamp_begin as usize;
    let n = logits.len();
    if ts >= n {
        return;
    }
    let fill = |logits: &mut [f32], range: std::ops::Range<usize>| {
        logits[range.start.min(n)..range.end.min(n)].fill(f32::NEG_INFINITY)
    };
    fill(
        logits,
        s.no_timestamps as usize..s.no_timestamps as usize + 1,
    );
    let is_ts = |t: &u32| *t >= s.timestamp_begin;
    let last_was_ts = tokens.last().is_some_and(is_ts);
    let penultimate_was_ts = tokens.len() < 2 || is_ts(&tokens[tokens.len() - 2]);
    if last_was_ts {
        if penultimate_was_ts {
            // A pair just closed: text (or end-of-text) comes next.
            fill(logits, ts..n);
        } else {
            // A segment's end: another timestamp or end-of-text.
            fill(logits, 0..s.eot as usize);
        }
    }
    if let Some(&last_ts) = tokens.iter().rev().find(|t| is_ts(t)) {
        // Timestamps never decrease; after a closing one they must advance.
        let floor = if last_was_ts && !penultimate_was_ts {
            last_ts
        } else {
            last_ts + 1
        };
        fill(logits, ts..floor as usize);
    }
    if tokens.is_empty() {
        fill(logits, 0..ts);
        fill(logits, ts + MAX_INITIAL_TIMESTAMP_STEPS as usize + 1..n);
    }
    let logprobs = log_softmax(logits);
    let ts_mass = log_sum_exp(&logprobs[ts..]);
    let best_text = logprobs[..ts]
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    if ts_mass > best_text {
        fill(logits, 0..ts);
    }
}

fn log_sum_exp(v: &[f32]) -> f32 {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + v.iter().map(|&x| (x - max).exp()).sum::<f32>().ln()
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
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn specials() -> SpecialTokens {
        // A toy vocabulary: text 0..4, eot 4, no_timestamps 5, timestamps 6..
        SpecialTokens {
            eot: 4,
            sot: 100,
            translate: 101,
            transcribe: 102,
            sot_lm: 103,
            sot_prev: 104,
            no_speech: 105,
            no_timestamps: 5,
            timestamp_begin: 6,
            languages: vec![],
            multilingual: false,
        }
    }

    fn allowed(logits: &[f32]) -> Vec<usize> {
        (0..logits.len())
            .filter(|&i| logits[i] > f32::NEG_INFINITY)
            .collect()
    }

    #[test]
    fn first_token_is_a_timestamp_within_the_first_second() {
        let s = specials();
        let mut logits = vec![0.0; 6 + 60];
        apply_timestamp_rules(&mut logits, &[], &s);
        assert_eq!(allowed(&logits), (6..=56).collect::<Vec<_>>());
    }

    #[test]
    fn after_text_and_one_timestamp_only_a_timestamp_or_the_end_may_follow() {
        let s = specials();
        let mut logits = vec![0.0; 20];
        logits[4] = 10.0; // end-of-text likelier than all timestamps together
                          // <|0.00|> text <|0.10|> → closing timestamp (>= 0.10) or end-of-text.
        apply_timestamp_rules(&mut logits, &[6, 1, 11], &s);
        assert_eq!(
            allowed(&logits),
            vec![4, 11, 12, 13, 14, 15, 16, 17, 18, 19]
        );
    }

    #[test]
    fn after_a_pair_of_timestamps_text_follows_and_time_does_not_go_back() {
        let s = specials();
        let mut logits = vec![0.0; 20];
        logits[2] = 10.0; // text likelier than all timestamps together
        apply_timestamp_rules(&mut logits, &[6, 1, 11, 11], &s);
        assert_eq!(allowed(&logits), vec![0, 1, 2, 3, 4]);
        let mut logits = vec![0.0; 20];
        logits[2] = 10.0;
        // After text that followed <|0.10|>, the next timestamp is > 0.10.
        apply_timestamp_rules(&mut logits, &[6, 1, 11, 11, 2], &s);
        assert_eq!(
            allowed(&logits),
            [vec![0, 1, 2, 3, 4], (12..20).collect()].concat()
        );
    }

    #[test]
    fn likely_timestamps_force_a_timestamp() {
        let s = specials();
        let mut logits = vec![0.0; 20];
        logits[2] = 1.0; // one text token at e, fourteen timestamps at 1 each
        apply_timestamp_rules(&mut logits, &[6, 1], &s);
        // <|0.00|> itself is behind the last timestamp: not allowed again.
        assert_eq!(allowed(&logits), (7..20).collect::<Vec<_>>());
    }

    #[test]
    fn a_prompt_without_previous_text_starts_at_the_start_of_transcript() {
        let s = specials();
        assert_eq!(prompt(&s, &[], 448, None, true), (vec![100], 0));
        assert_eq!(prompt(&s, &[], 448, None, false), (vec![100, 5], 0));
        let multi = SpecialTokens {
            multilingual: true,
            ..specials()
        };
        assert_eq!(
            prompt(&multi, &[], 448, Some(200), false),
            (vec![100, 200, 102, 5], 0)
        );
    }

    #[test]
    fn previous_text_goes_before_the_start_of_transcript_and_only_its_last_223_tokens() {
        let s = specials();
        assert_eq!(max_previous_tokens(448), 223);
        assert_eq!(
            prompt(&s, &[1, 2, 3], 448, None, true),
            (vec![104, 1, 2, 3, 100], 4)
        );
        let long: Vec<u32> = (0..300).collect();
        let (p, sot_at) = prompt(&s, &long, 448, None, false);
        assert_eq!(sot_at, 224);
        assert_eq!(p[0], 104);
        assert_eq!(p[1..224], long[77..]);
        assert_eq!(p[224..], [100, 5]);
    }

    #[test]
    fn only_a_fallback_above_temperature_half_resets_the_prompt() {
        let at = |temperature| WindowResult {
            tokens: vec![],
            text: String::new(),
            avg_logprob: -0.2,
            no_speech_prob: 0.0,
            temperature,
            compression_ratio: 1.0,
        };
        assert!(!at(0.0).resets_prompt());
        assert!(!at(0.4).resets_prompt());
        assert!(at(0.6).resets_prompt());
    }

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
