//! One span of a transcription task, in the worker: the span's samples in,
//! timed text in the recording's time out.

use manifest::transcription::{Span, SpanTranscript, TimedText, SAMPLE_RATE};
use whisper::transcribe::{Engine, Options};

// A span's samples go to Whisper as they are: the protocol counts spans at
// the rate Whisper hears.
const _: () = assert!(SAMPLE_RATE as usize == whisper::mel::SAMPLE_RATE);

/// Transcribes `samples` (16 kHz mono, exactly the span's audio) of `span`,
/// conditioned on `previous`, the span before's prompt (empty for none).
/// Segment times move to the recording's time and stay inside the span, so
/// that segments of neighbouring spans never overlap.
pub fn transcribe_span(
    engine: &Engine,
    samples: &[f32],
    span: &Span,
    previous: &[u32],
) -> Result<SpanTranscript, String> {
    if samples.is_empty() {
        return Err("the span has no audio".into());
    }
    // The prompt came through the room: a token past the vocabulary is
    // some other model's (or a member's mischief), so it is dropped.
    let vocabulary = engine.info.config.vocab_size;
    let previous: Vec<u32> = match previous.iter().all(|&t| (t as usize) < vocabulary) {
        true => previous.to_vec(),
        false => Vec::new(),
    };
    let transcript = engine
        .transcribe_pcm_after(samples, &previous, &Options::default())
        .map_err(|e| format!("Whisper failed: {e}"))?;
    let at = |seconds: f32| {
        let ms = span.start_ms + (seconds.max(0.0) * 1000.0).round() as u64;
        ms.min(span.end_ms)
    };
    let segments = transcript
        .segments
        .into_iter()
        .filter(|s| !s.text.trim().is_empty())
        .map(|s| TimedText {
            start_ms: at(s.start),
            end_ms: at(s.end),
            text: s.text,
        })
        .collect();
    Ok(SpanTranscript {
        segments,
        inference_ms: 0, // The caller times it: clocks differ in a worker and natively.
        prompt: transcript.next_prompt,
    })
}
