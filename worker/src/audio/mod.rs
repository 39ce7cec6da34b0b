//! Reading audio files natively (the CLI and the native tests) and
//! converting them to the 16 kHz mono f32 samples Whisper takes. Not in the
//! wasm worker: browsers decode and resample audio themselves.

pub mod decode;
pub mod ogg_opus;
pub mod pcm;
pub mod resample;
pub use manifest::audio_split as split;
pub mod wav;

pub use decode::{read, AudioError};
pub use pcm::Audio;

/// Whisper's sample rate, as the protocol counts a recording's spans.
pub const WHISPER_RATE: u32 = manifest::transcription::SAMPLE_RATE;

/// A voice message's file (Ogg Opus or WAV) as the 16 kHz mono samples
/// Whisper takes, or why it cannot be read.
pub fn for_whisper(file: &[u8]) -> Result<Vec<f32>, String> {
    let audio = read(file).map_err(|e| e.to_string())?;
    Ok(resample::resample(&audio.samples, audio.rate, WHISPER_RATE))
}
