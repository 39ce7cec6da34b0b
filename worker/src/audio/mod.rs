//! Audio plumbing for speech tasks: reading files and converting them to the
//! 16 kHz mono f32 samples Whisper takes.

pub mod resample;
pub mod wav;
