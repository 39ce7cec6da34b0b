//! Audio plumbing for speech tasks: reading files and converting them to the
//! 16 kHz mono f32 samples Whisper takes, and splitting long recordings at
//! their pauses.

pub mod resample;
/// The splitter lives in `manifest`: where long audio is cut is part of a
/// transcription task, decided by the node that plans it.
pub use manifest::audio_split as split;
pub mod wav;
