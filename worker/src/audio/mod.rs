//! Audio plumbing for speech tasks: reading files and converting them to the
//! 16 kHz mono f32 samples Whisper takes, and splitting long recordings at
//! their pauses.

pub mod resample;
pub mod split;
pub mod wav;
