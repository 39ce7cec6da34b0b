//! Voice messages and other audio → the 16 kHz mono samples Whisper takes.
//!
//! Decoding happens here, in the widget's page, with the browser's own
//! decoders (WebAudio): they read Ogg Opus (Element's voice messages), MP3,
//! AAC/M4A and WAV, and resample to the context's rate as they decode. Web
//! Workers have no WebAudio, and an Opus decoder of our own in wasm would add
//! size for what every browser already ships: the worker gets plain samples.

use crate::host::room::describe_error;
use js_sys::Uint8Array;
use manifest::transcription::SAMPLE_RATE;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AudioBuffer, OfflineAudioContext};

/// The rate the protocol's spans count in, which Whisper hears.
pub const WHISPER_RATE: f32 = SAMPLE_RATE as f32;

/// Decodes an audio file to 16 kHz mono, averaging its channels.
pub async fn decode_for_whisper(file: &[u8]) -> Result<Vec<f32>, String> {
    if file.is_empty() {
        return Err("the audio file is empty".into());
    }
    // The decoded buffer takes the context's rate: the browser resamples.
    let context = OfflineAudioContext::new_with_number_of_channels_and_length_and_sample_rate(
        1,
        1,
        WHISPER_RATE,
    )
    .map_err(|e| format!("this browser cannot decode audio ({})", describe_error(&e)))?;
    // decodeAudioData takes (and detaches) an ArrayBuffer of its own.
    let bytes = Uint8Array::from(file).buffer();
    let decoding = context
        .decode_audio_data(&bytes)
        .map_err(|e| format!("this audio could not be decoded ({})", describe_error(&e)))?;
    let decoded: AudioBuffer = JsFuture::from(decoding)
        .await
        .map_err(|e| format!("this audio could not be decoded ({})", describe_error(&e)))?
        .unchecked_into();
    let channels = decoded.number_of_channels();
    let mut mono = vec![0.0f32; decoded.length() as usize];
    for channel in 0..channels {
        let samples = decoded
            .get_channel_data(channel)
            .map_err(|e| describe_error(&e))?;
        for (sum, sample) in mono.iter_mut().zip(samples) {
            *sum += sample / channels as f32;
        }
    }
    Ok(mono)
}
