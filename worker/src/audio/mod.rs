//! Reading audio files natively (the CLI and the native tests) and
//! converting them to the 16 kHz mono f32 samples Whisper takes. Not in the
//! wasm worker: browsers decode and resample audio themselves.

pub mod decode;
pub mod ogg_opus;
pub mod resample;
pub use manifest::audio_split as split;
pub mod wav;

pub use decode::{read, AudioError};

/// Mono samples in [-1, 1] and their rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub rate: u32,
    pub samples: Vec<f32>,
}
