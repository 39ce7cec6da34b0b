//! Speech to text as a Potluck task.
//!
//! A transcription starts as one chunk that plans: the node running it
//! downloads the voice message, decodes it and cuts it at its pauses
//! (`audio_split`) into spans of at most one Whisper window. Its output lists
//! the spans, and the node adds a part (a subtask) with one chunk per span,
//! so that every friend's free workers take some. The part's outputs are
//! timed segments; the parent's result is the whole transcript. A recording
//! that fits one window is transcribed where it is planned: its plan carries
//! the words, and no part, assignment or span result is needed.

use crate::audio_split::split_at_silences;
use crate::ids::{EventId, MxcUri};
use crate::kind_error::KindError;
use crate::limits::MAX_MEDIA_BYTES;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Whisper's input rate.
pub const SAMPLE_RATE: u32 = 16_000;
/// One Whisper window: no span is longer.
pub const MAX_SPAN_MS: u64 = 30_000;
/// Long enough for two hours of speech, short enough that the plan's output
/// (every span) stays within an inline output.
pub const MAX_SPANS: usize = 240;
/// The longest recording a transcription takes: two hours, as `MAX_SPANS`.
/// Spans must end within it, so no offset in them can overflow a sample index.
pub const MAX_AUDIO_MS: u64 = 2 * 60 * 60_000;

/// The models a transcription can ask for.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum WhisperModel {
    /// English only, fast: the default.
    #[default]
    #[serde(rename = "tiny.en")]
    TinyEn,
    /// Multilingual, detects the language; slower and more accurate.
    #[serde(rename = "base")]
    Base,
}

impl WhisperModel {
    pub const ALL: [WhisperModel; 2] = [WhisperModel::TinyEn, WhisperModel::Base];

    /// The name in tasks, commands and the model catalogue.
    pub const fn name(self) -> &'static str {
        match self {
            WhisperModel::TinyEn => "tiny.en",
            WhisperModel::Base => "base",
        }
    }

    /// What a friend picking a model reads.
    pub fn label(self) -> &'static str {
        match self {
            WhisperModel::TinyEn => "tiny.en (English, fast)",
            WhisperModel::Base => "base (any language, slower)",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// A stretch of the recording, in milliseconds from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Span {
    /// The samples of this span in 16 kHz audio of `len` samples: always a
    /// range within `0..len` (empty for a span past the end or reversed),
    /// whatever a task says, on 32- and 64-bit targets alike.
    pub fn samples(&self, len: usize) -> std::ops::Range<usize> {
        let (start, end) = sample_range(self.start_ms, self.end_ms, len as u64);
        // Both are at most `len`, so they fit a usize.
        start as usize..end as usize
    }
}

impl Span {
    /// The span's samples in audio of `len` samples, or why there are none:
    /// a task may name a span past the end of the recording it names.
    pub fn samples_within(&self, len: usize) -> Result<std::ops::Range<usize>, String> {
        let range = self.samples(len);
        if range.is_empty() {
            let audio_ms = len as u64 * 1000 / u64::from(SAMPLE_RATE);
            return Err(format!(
                "the span {}–{} ms lies outside the recording, which is {audio_ms} ms long",
                self.start_ms, self.end_ms
            ));
        }
        Ok(range)
    }
}

/// `Span::samples` in u64, saturating: start ≤ end ≤ `len`.
fn sample_range(start_ms: u64, end_ms: u64, len: u64) -> (u64, u64) {
    let per_ms = u64::from(SAMPLE_RATE) / 1000;
    let at = |ms: u64| ms.saturating_mul(per_ms).min(len);
    let end = at(end_ms);
    (at(start_ms).min(end), end)
}

/// An encrypted attachment as Matrix describes it (`EncryptedFile`): the
/// ciphertext's address, its AES-CTR key and counter, and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedFile {
    pub url: MxcUri,
    pub key: JsonWebKey,
    /// Unpadded base64 of the 16-byte initial counter block.
    pub iv: String,
    /// `sha256`: unpadded base64 of the ciphertext's SHA-256.
    pub hashes: std::collections::BTreeMap<String, String>,
    pub v: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonWebKey {
    pub kty: String,
    pub alg: String,
    /// Unpadded URL-safe base64 of the 256-bit key.
    pub k: String,
    #[serde(default)]
    pub key_ops: Vec<String>,
    #[serde(default)]
    pub ext: bool,
}

/// The audio of a room message: in the clear (`url`) or encrypted (`file`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioRef {
    /// The voice message (or other audio message) this is the audio of: the
    /// transcript is posted in its thread.
    pub message: EventId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<MxcUri>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<EncryptedFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mimetype: Option<String>,
    /// Bytes, as the message's `info.size` says: a node refuses to download
    /// more than `MAX_MEDIA_BYTES` before it starts, and checks after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl AudioRef {
    /// Why these downloaded bytes (or the size the message states) are too
    /// many to transcribe, if they are.
    pub fn check_size(size: u64) -> Result<(), String> {
        if size > MAX_MEDIA_BYTES {
            return Err(format!(
                "the recording is {} MB; Potluck downloads at most {} MB",
                size / 1_000_000,
                MAX_MEDIA_BYTES / 1_000_000
            ));
        }
        Ok(())
    }

    /// The media to download: the plain file, or the ciphertext.
    pub fn media(&self) -> Option<&MxcUri> {
        self.url.as_ref().or(self.file.as_ref().map(|f| &f.url))
    }

    fn check(&self) -> Result<(), String> {
        if let Some(size) = self.size {
            Self::check_size(size)?;
        }
        match (&self.url, &self.file) {
            (Some(_), None) => Ok(()),
            (None, Some(file)) => {
                if file.key.alg != "A256CTR" || file.key.kty != "oct" {
                    return Err(format!(
                        "the attachment's key is {} {}, not oct A256CTR",
                        file.key.kty, file.key.alg
                    ));
                }
                if file.v != "v2" {
                    return Err(format!("encrypted attachments {} are unknown", file.v));
                }
                if !file.hashes.contains_key("sha256") {
                    return Err("the encrypted attachment names no sha256".into());
                }
                Ok(())
            }
            _ => Err("the audio needs exactly one of url (plain) or file (encrypted)".into()),
        }
    }
}

/// A transcription: which audio, which model, and what this task does with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "TranscribeWire", from = "TranscribeWire")]
pub struct TranscribeTask {
    pub audio: AudioRef,
    pub model: WhisperModel,
    pub stage: Stage,
}

/// The two steps of a transcription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// The task's one chunk downloads the audio and finds its spans.
    Plan,
    /// Chunk `i` transcribes `spans[i]`; the plan's part.
    Spans(Vec<Span>),
}

/// A transcription as a task carries it: a plan names no spans.
#[derive(Serialize, Deserialize)]
struct TranscribeWire {
    audio: AudioRef,
    #[serde(default)]
    model: WhisperModel,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    spans: Vec<Span>,
}

impl Stage {
    /// The stage a list of spans makes: none is the plan.
    pub fn of_spans(spans: Vec<Span>) -> Stage {
        if spans.is_empty() {
            Stage::Plan
        } else {
            Stage::Spans(spans)
        }
    }
}

impl From<TranscribeTask> for TranscribeWire {
    fn from(task: TranscribeTask) -> Self {
        let spans = match task.stage {
            Stage::Plan => Vec::new(),
            Stage::Spans(spans) => spans,
        };
        Self {
            audio: task.audio,
            model: task.model,
            spans,
        }
    }
}

impl From<TranscribeWire> for TranscribeTask {
    fn from(wire: TranscribeWire) -> Self {
        Self {
            audio: wire.audio,
            model: wire.model,
            stage: Stage::of_spans(wire.spans),
        }
    }
}

/// A stretch of speech and its words, in the recording's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedText {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// What the planning chunk outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "PlanWire", try_from = "PlanWire")]
pub struct Plan {
    pub duration_ms: u64,
    pub spans: Vec<Span>,
    /// The words of a recording that fits one window, transcribed by the
    /// node that planned it; `None` when the spans are the part's to run.
    pub words: Option<SpanTranscript>,
}

impl Plan {
    /// The one span a plan transcribes itself, if it fits one window.
    pub fn single_window(&self) -> Option<Span> {
        match self.spans[..] {
            [span] => Some(span),
            _ => None,
        }
    }
}

/// A plan as a result carries it. Its spans are back to back (the recording
/// cut at its pauses), so it sends the cuts: about 8 bytes a span instead of
/// 37, which keeps a two-hour plan (`MAX_SPANS`) inside one inline output.
/// A plan from before that listed its spans is still read.
#[derive(Serialize, Deserialize)]
struct PlanWire {
    duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cuts: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spans: Option<Vec<Span>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    segments: Option<Vec<TimedText>>,
    #[serde(default, skip_serializing_if = "is_zero")]
    inference_ms: u64,
}

impl From<Plan> for PlanWire {
    fn from(plan: Plan) -> Self {
        let (segments, inference_ms) = match plan.words {
            Some(words) => (Some(words.segments), words.inference_ms),
            None => (None, 0),
        };
        let back_to_back = plan.spans.windows(2).all(|w| w[0].end_ms == w[1].start_ms);
        if !back_to_back {
            return Self {
                duration_ms: plan.duration_ms,
                cuts: None,
                spans: Some(plan.spans),
                segments,
                inference_ms,
            };
        }
        let cuts = plan
            .spans
            .first()
            .map(|s| s.start_ms)
            .into_iter()
            .chain(plan.spans.iter().map(|s| s.end_ms))
            .collect();
        Self {
            duration_ms: plan.duration_ms,
            cuts: Some(cuts),
            spans: None,
            segments,
            inference_ms,
        }
    }
}

impl TryFrom<PlanWire> for Plan {
    type Error = String;
    fn try_from(wire: PlanWire) -> Result<Self, String> {
        let spans = match (wire.cuts, wire.spans) {
            (Some(cuts), None) => {
                if cuts.len() > MAX_SPANS + 1 {
                    return Err(format!("{} cuts: at most {}", cuts.len(), MAX_SPANS + 1));
                }
                cuts.windows(2)
                    .map(|w| Span {
                        start_ms: w[0],
                        end_ms: w[1],
                    })
                    .collect()
            }
            (None, Some(spans)) => spans,
            _ => return Err("a plan names either its cuts or its spans".into()),
        };
        let words = wire.segments.map(|segments| SpanTranscript {
            segments,
            inference_ms: wire.inference_ms,
            prompt: Vec::new(),
        });
        Ok(Self {
            duration_ms: wire.duration_ms,
            spans,
            words,
        })
    }
}

/// The most previous-text tokens Whisper is prompted with: half its
/// 448-token context, less `<|startofprev|>`.
pub const MAX_PROMPT_TOKENS: usize = 223;

/// What a span's chunk outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanTranscript {
    pub segments: Vec<TimedText>,
    /// Milliseconds the worker spent in Whisper, for the benchmark's split
    /// of wall time into inference and coordination.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inference_ms: u64,
    /// The next span's prompt: the model's tokens of this span's text, as
    /// Whisper conditions each window on the one before (at most
    /// `MAX_PROMPT_TOKENS`; none after a fallback to a high temperature).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt: Vec<u32>,
}

impl SpanTranscript {
    /// The prompt a span's output hands the next span; none if it has none.
    pub fn prompt_of(output: &Value) -> Vec<u32> {
        output
            .get("prompt")
            .and_then(|p| Vec::<u32>::deserialize(p).ok())
            .unwrap_or_default()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The finished task's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    pub duration_ms: u64,
    pub text: String,
    pub segments: Vec<TimedText>,
}

/// The words of `segments`, in order, one space between segments.
pub fn text_of(segments: &[TimedText]) -> String {
    segments
        .iter()
        .map(|s| s.text.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The finished task's result from its words.
fn transcript(duration_ms: u64, segments: Vec<TimedText>) -> Result<Value, KindError> {
    let transcript = Transcript {
        duration_ms,
        text: text_of(&segments),
        segments,
    };
    serde_json::to_value(transcript).map_err(|e| KindError::BadOutput(e.to_string()))
}

/// Why a recording cannot be planned: it fails at once, as retrying the
/// same bytes cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the recording is empty: there is nothing to transcribe")]
    Empty,
    #[error("the recording is {minutes} minutes long; Potluck transcribes at most {} minutes", MAX_AUDIO_MS / 60_000)]
    TooLong { minutes: u64 },
}

/// Cuts 16 kHz audio at its pauses into spans of at most one window.
pub fn plan(samples: &[f32]) -> Result<Plan, PlanError> {
    let per_ms = u64::from(SAMPLE_RATE) / 1000;
    let duration_ms = (samples.len() as u64).div_ceil(per_ms);
    if duration_ms > MAX_AUDIO_MS {
        return Err(PlanError::TooLong {
            minutes: duration_ms / 60_000,
        });
    }
    let spans = split_at_silences(samples, SAMPLE_RATE, MAX_SPAN_MS as f64 / 1000.0)
        .into_iter()
        .map(|r| Span {
            start_ms: r.start as u64 / per_ms,
            end_ms: (r.end as u64).div_ceil(per_ms),
        })
        .collect::<Vec<Span>>();
    if spans.is_empty() {
        return Err(PlanError::Empty);
    }
    Ok(Plan {
        duration_ms,
        spans,
        words: None,
    })
}

fn check_spans(spans: &[Span]) -> Result<(), String> {
    if spans.len() > MAX_SPANS {
        return Err(format!(
            "{} spans: at most {MAX_SPANS} (two hours)",
            spans.len()
        ));
    }
    let mut last_end = 0;
    for span in spans {
        if span.end_ms > MAX_AUDIO_MS {
            return Err(format!(
                "span {}–{} ms ends after {} minutes, the longest recording transcribed",
                span.start_ms,
                span.end_ms,
                MAX_AUDIO_MS / 60_000
            ));
        }
        if span.end_ms <= span.start_ms || span.end_ms - span.start_ms > MAX_SPAN_MS {
            return Err(format!(
                "span {}–{} ms is empty or longer than {MAX_SPAN_MS} ms",
                span.start_ms, span.end_ms
            ));
        }
        if span.start_ms < last_end {
            return Err(format!(
                "span at {} ms overlaps the one before",
                span.start_ms
            ));
        }
        last_end = span.end_ms;
    }
    Ok(())
}

fn parse<T: for<'de> Deserialize<'de>>(output: &Value, shape: &str) -> Result<T, KindError> {
    T::deserialize(output).map_err(|e| KindError::BadOutput(format!("expected {shape}: {e}")))
}

impl TranscribeTask {
    /// The plan of a new transcription of `audio`: its one chunk finds the
    /// spans (see `TaskSpec::transcription`).
    pub fn plan(audio: AudioRef, model: WhisperModel) -> TranscribeTask {
        TranscribeTask {
            audio,
            model,
            stage: Stage::Plan,
        }
    }

    pub fn is_plan(&self) -> bool {
        self.stage == Stage::Plan
    }

    /// Whether the node that produced `output` ran Whisper for it (a span,
    /// or a plan that carries its words), so its workers hold the model.
    pub fn ran_whisper(&self, output: &Value) -> bool {
        !self.is_plan() || output.get("segments").is_some()
    }

    /// The spans this task transcribes; none for a plan.
    pub fn spans(&self) -> &[Span] {
        match &self.stage {
            Stage::Plan => &[],
            Stage::Spans(spans) => spans,
        }
    }

    pub fn validate(&self, chunks: u32) -> Result<(), KindError> {
        self.audio.check().map_err(KindError::BadAudio)?;
        let wanted = self.spans().len().max(1) as u64;
        if wanted != u64::from(chunks) {
            return Err(KindError::ChunksMismatch {
                split: wanted,
                chunks,
            });
        }
        check_spans(self.spans()).map_err(KindError::BadAudio)
    }

    /// Chunk `index`'s own task: the plan, or one span (none past the last).
    pub fn chunk(&self, index: u32) -> TranscribeTask {
        let stage = match &self.stage {
            Stage::Plan => Stage::Plan,
            Stage::Spans(spans) => {
                Stage::Spans(spans.get(index as usize).copied().into_iter().collect())
            }
        };
        TranscribeTask {
            stage,
            ..self.clone()
        }
    }

    pub fn check_output(&self, output: &Value) -> Result<(), KindError> {
        if self.is_plan() {
            let plan: Plan = parse(output, "{duration_ms, cuts}")?;
            if plan.spans.is_empty() {
                // Empty audio fails while planning; a plan always has work.
                return Err(KindError::BadOutput("a plan with no spans".into()));
            }
            if plan.words.is_some() && plan.single_window().is_none() {
                return Err(KindError::BadOutput(format!(
                    "a plan of {} spans carries words: only one window is transcribed where it is planned",
                    plan.spans.len()
                )));
            }
            check_spans(&plan.spans).map_err(KindError::BadOutput)
        } else {
            let span: SpanTranscript = parse(output, "{segments}")?;
            if span.prompt.len() > MAX_PROMPT_TOKENS {
                return Err(KindError::BadOutput(format!(
                    "a prompt of {} tokens: at most {MAX_PROMPT_TOKENS}",
                    span.prompt.len()
                )));
            }
            Ok(())
        }
    }

    /// The plan's own output (the transcript, if it carries the words), or
    /// the spans' segments in order.
    pub fn merge<'a>(
        &self,
        outputs: impl IntoIterator<Item = &'a Value>,
    ) -> Result<Value, KindError> {
        let mut segments = Vec::new();
        for output in outputs {
            self.check_output(output)?;
            if self.is_plan() {
                let plan: Plan = parse(output, "{duration_ms, cuts}")?;
                return match plan.words {
                    Some(words) => transcript(plan.duration_ms, words.segments),
                    None => Ok(output.clone()),
                };
            }
            segments.extend(parse::<SpanTranscript>(output, "{segments}")?.segments);
        }
        Ok(json!({ "segments": segments }))
    }

    /// The plan and its part's segments: the transcript.
    pub fn merge_parts(&self, own: &Value, parts: &[Value]) -> Result<Value, KindError> {
        let plan: Plan = parse(own, "{duration_ms, cuts}")?;
        let mut segments = Vec::new();
        for part in parts {
            segments.extend(parse::<SpanTranscript>(part, "{segments}")?.segments);
        }
        transcript(plan.duration_ms, segments)
    }

    /// The spans a finished plan adds to its task, one chunk each; `None`
    /// for a span task, a plan that carries its words, or a plan output
    /// that is not one.
    pub fn spans_after(&self, plan_output: &Value) -> Option<TranscribeTask> {
        let plan: Plan = Plan::deserialize(plan_output).ok()?;
        if !self.is_plan() || plan.spans.is_empty() || plan.words.is_some() {
            return None;
        }
        Some(TranscribeTask {
            stage: Stage::Spans(plan.spans),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A crafted span (74.6 hours in, past u64, reversed) slices nothing
        /// out of range: the range stays in `0..len`, also for a 32-bit `len`.
        #[test]
        fn span_samples_stay_within_the_audio_whatever_the_span(
            start_ms in any::<u64>(),
            end_ms in any::<u64>(),
            len in any::<u32>(),
        ) {
            let span = Span { start_ms, end_ms };
            let range = span.samples(len as usize);
            prop_assert!(range.start <= range.end);
            prop_assert!(range.end <= len as usize);
            let (start, end) = sample_range(start_ms, end_ms, u64::from(len));
            prop_assert!(start <= end && end <= u64::from(len));
        }

        #[test]
        fn spans_ending_after_two_hours_are_refused(start_ms in 0..MAX_AUDIO_MS, over in 1..u64::MAX / 2) {
            let end_ms = MAX_AUDIO_MS.saturating_add(over);
            let span = Span { start_ms, end_ms };
            prop_assert!(check_spans(&[span]).is_err());
        }
    }

    #[test]
    fn the_span_that_crashed_contributors_is_refused_and_slices_safely() {
        // 74.6 hours: `ms * 16` wrapped a 32-bit usize and reversed the range.
        let span = Span {
            start_ms: 268_435_456,
            end_ms: 268_435_456 + 20_000,
        };
        assert!(check_spans(&[span]).unwrap_err().contains("120 minutes"));
        assert_eq!(span.samples(16_000 * 60), 960_000..960_000);
        assert!(span
            .samples_within(16_000 * 60)
            .unwrap_err()
            .contains("outside the recording, which is 60000 ms long"));
    }

    #[test]
    fn a_span_hands_on_at_most_whispers_prompt_and_a_plan_of_one_window_its_words() {
        let span = TranscribeTask {
            stage: Stage::Spans(vec![Span {
                start_ms: 0,
                end_ms: 1_000,
            }]),
            ..TranscribeTask::plan(audio(), WhisperModel::TinyEn)
        };
        let with = |tokens: usize| json!({"segments": [], "prompt": vec![1; tokens]});
        assert!(span.check_output(&with(MAX_PROMPT_TOKENS)).is_ok());
        assert!(span.check_output(&with(MAX_PROMPT_TOKENS + 1)).is_err());
        assert_eq!(SpanTranscript::prompt_of(&with(2)), [1, 1]);
        assert_eq!(
            SpanTranscript::prompt_of(&json!({"segments": []})),
            Vec::<u32>::new()
        );

        let plan = TranscribeTask::plan(audio(), WhisperModel::TinyEn);
        let words = json!({"duration_ms": 4_000, "cuts": [0, 4_000],
            "segments": [{"start_ms": 0, "end_ms": 3_000, "text": " Hi there."}]});
        let transcript = plan.merge([&words]).unwrap();
        assert_eq!(transcript["text"], "Hi there.");
        assert_eq!(transcript["duration_ms"], 4_000);
        assert!(plan.spans_after(&words).is_none(), "no part to add");
        let two_windows = json!({"duration_ms": 40_000, "cuts": [0, 20_000, 40_000],
            "segments": [{"start_ms": 0, "end_ms": 3_000, "text": " Hi."}]});
        assert!(
            plan.check_output(&two_windows).is_err(),
            "only one window is transcribed in a plan"
        );
    }

    #[test]
    fn a_two_hour_plan_fits_one_inline_output_and_reads_back_the_same() {
        // 240 spans of 30 s: the longest recording a transcription takes.
        let spans: Vec<Span> = (0..MAX_SPANS as u64)
            .map(|i| Span {
                start_ms: i * MAX_SPAN_MS,
                end_ms: (i + 1) * MAX_SPAN_MS,
            })
            .collect();
        let plan = Plan {
            duration_ms: MAX_AUDIO_MS,
            spans,
            words: None,
        };
        let output = serde_json::to_value(&plan).unwrap();
        let bytes = serde_json::to_vec(&output).unwrap().len();
        assert!(
            bytes <= crate::limits::MAX_INLINE_OUTPUT_BYTES,
            "{bytes} bytes"
        );
        assert_eq!(Plan::deserialize(&output).unwrap(), plan);
        // A plan in the older shape still reads.
        let listed = serde_json::json!({"duration_ms": 60_000,
            "spans": [{"start_ms": 0, "end_ms": 30_000}, {"start_ms": 31_000, "end_ms": 60_000}]});
        assert_eq!(Plan::deserialize(&listed).unwrap().spans.len(), 2);
        assert!(Plan::deserialize(&serde_json::json!({"duration_ms": 1})).is_err());
    }

    #[test]
    fn a_recording_larger_than_a_node_downloads_is_refused_before_anyone_fetches_it() {
        let mut huge = audio();
        huge.size = Some(5_000_000_000);
        let task = TranscribeTask::plan(huge, WhisperModel::TinyEn);
        let err = task.validate(1).unwrap_err().to_string();
        assert!(
            err.contains("5000 MB; Potluck downloads at most 200 MB"),
            "{err}"
        );
    }

    #[test]
    fn empty_audio_fails_to_plan_at_once_with_a_reason() {
        assert_eq!(plan(&[]), Err(PlanError::Empty));
        assert!(PlanError::Empty.to_string().contains("empty"));
    }

    fn audio() -> AudioRef {
        AudioRef {
            message: EventId::parse("$voice").unwrap(),
            url: Some(MxcUri::parse("mxc://hs/abc").unwrap()),
            file: None,
            mimetype: Some("audio/ogg".into()),
            size: None,
        }
    }

    fn task(spans: Vec<Span>) -> TranscribeTask {
        TranscribeTask {
            audio: audio(),
            model: WhisperModel::TinyEn,
            stage: Stage::of_spans(spans),
        }
    }

    fn span(start_ms: u64, end_ms: u64) -> Span {
        Span { start_ms, end_ms }
    }

    #[test]
    fn a_plan_covers_the_recording_in_windows_cut_at_pauses() {
        // 70 s: tone with a silent second at 25 s and at 50 s.
        let mut samples = Vec::new();
        for s in 0..70 {
            let loud = s != 25 && s != 50;
            samples.extend((0..SAMPLE_RATE).map(|i| {
                if loud {
                    ((i % 50) as f32 - 25.0) / 25.0
                } else {
                    0.0
                }
            }));
        }
        let plan = plan(&samples).unwrap();
        assert_eq!(plan.duration_ms, 70_000);
        assert_eq!(plan.spans.len(), 3);
        assert_eq!(plan.spans[0].start_ms, 0);
        assert_eq!(plan.spans.last().unwrap().end_ms, 70_000);
        for pair in plan.spans.windows(2) {
            assert_eq!(pair[0].end_ms, pair[1].start_ms, "no gap, no overlap");
        }
        for (cut, pause) in plan.spans.iter().skip(1).zip([25_000, 50_000]) {
            assert!(
                (pause..pause + 1000).contains(&cut.start_ms),
                "cut at {}",
                cut.start_ms
            );
        }
        assert!(check_spans(&plan.spans).is_ok());
        assert_eq!(
            plan.spans[1].samples(samples.len()).len() as u64,
            16 * (plan.spans[1].end_ms - plan.spans[1].start_ms)
        );
    }

    #[test]
    fn a_plan_carries_no_spans_and_a_part_its_spans_both_read_back_as_sent() {
        let plan = task(vec![]);
        let wire = serde_json::to_value(&plan).unwrap();
        assert!(wire.get("spans").is_none(), "{wire}");
        assert_eq!(
            serde_json::from_value::<TranscribeTask>(wire).unwrap(),
            plan
        );
        let part = task(vec![span(0, 30_000)]);
        let wire = serde_json::to_value(&part).unwrap();
        assert_eq!(wire["spans"], json!([{"start_ms": 0, "end_ms": 30_000}]));
        assert_eq!(
            serde_json::from_value::<TranscribeTask>(wire)
                .unwrap()
                .stage,
            part.stage
        );
    }

    #[test]
    fn a_plan_has_one_chunk_and_a_planned_task_one_per_span() {
        assert!(task(vec![]).validate(1).is_ok());
        assert!(task(vec![]).validate(2).is_err());
        let planned = task(vec![span(0, 30_000), span(30_000, 41_000)]);
        assert!(planned.validate(2).is_ok());
        assert_eq!(planned.chunk(1).spans(), [span(30_000, 41_000)]);
        assert!(
            task(vec![span(0, 31_000)]).validate(1).is_err(),
            "longer than a window"
        );
        assert!(
            task(vec![span(0, 20_000), span(10_000, 25_000)])
                .validate(2)
                .is_err(),
            "overlap"
        );
        assert!(task(vec![span(5, 5)]).validate(1).is_err(), "empty");
    }

    #[test]
    fn audio_must_be_plain_or_a_well_formed_encrypted_attachment() {
        let mut both = task(vec![]);
        let file: EncryptedFile = serde_json::from_value(json!({
            "url": "mxc://hs/enc", "iv": "AAAAAAAAAAAAAAAAAAAAAA", "v": "v2",
            "hashes": {"sha256": "abc"},
            "key": {"kty": "oct", "alg": "A256CTR", "k": "key", "key_ops": ["encrypt", "decrypt"], "ext": true}
        }))
        .unwrap();
        both.audio.file = Some(file.clone());
        assert!(matches!(both.validate(1), Err(KindError::BadAudio(_))));
        let mut encrypted = both.clone();
        encrypted.audio.url = None;
        assert!(encrypted.validate(1).is_ok());
        assert_eq!(encrypted.audio.media().unwrap().as_str(), "mxc://hs/enc");
        encrypted.audio.file.as_mut().unwrap().key.alg = "A128CBC".into();
        assert!(encrypted.validate(1).is_err());
    }

    #[test]
    fn the_plan_adds_one_part_and_the_parts_segments_make_the_transcript() {
        let plan_task = task(vec![]);
        let plan_output = json!({"duration_ms": 41_000, "spans": [
            {"start_ms": 0, "end_ms": 30_000}, {"start_ms": 30_000, "end_ms": 41_000}]});
        assert!(plan_task.check_output(&plan_output).is_ok());
        let spans_task = plan_task.spans_after(&plan_output).unwrap();
        assert_eq!(spans_task.spans().len(), 2);
        assert!(spans_task.validate(2).is_ok());
        assert!(
            spans_task.spans_after(&plan_output).is_none(),
            "spans plan nothing"
        );

        let first =
            json!({"segments": [{"start_ms": 0, "end_ms": 4_000, "text": " Hello there."}]});
        let second =
            json!({"segments": [{"start_ms": 30_500, "end_ms": 33_000, "text": " Bye now."}]});
        let merged = spans_task.merge([&first, &second]).unwrap();
        let transcript: Transcript =
            serde_json::from_value(plan_task.merge_parts(&plan_output, &[merged]).unwrap())
                .unwrap();
        assert_eq!(transcript.text, "Hello there. Bye now.");
        assert_eq!(transcript.duration_ms, 41_000);
        assert_eq!(transcript.segments.len(), 2);

        assert!(spans_task
            .check_output(&json!({"text": "no segments"}))
            .is_err());
        let nothing = json!({"duration_ms": 0, "spans": []});
        assert!(plan_task.check_output(&nothing).is_err());
        assert!(plan_task.spans_after(&nothing).is_none());
    }
}
