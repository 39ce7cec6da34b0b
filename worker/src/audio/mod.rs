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
