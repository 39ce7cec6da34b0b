//! Why a task's parameters or a chunk's output do not fit its kind: the
//! errors every task kind shares, below the kinds themselves.

use crate::limits::MAX_SCRIPT_SECONDS;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KindError {
    #[error("the range is empty: start {start} is not below end {end}")]
    EmptyRange { start: u64, end: u64 },
    #[error("end {end} is above the largest supported number {max}")]
    TooLarge { end: u64, max: u64 },
    #[error("{chunks} chunks for a range of {len} numbers: each chunk needs at least one")]
    TooManyChunks { chunks: u32, len: u64 },
    #[error("a chunk's output is malformed: {0}")]
    BadOutput(String),
    #[error("'{0}' is not a script integrity (expected sha256-, sha384- or sha512- and the base64 digest)")]
    BadIntegrity(String),
    #[error("'{0}' is not a script address: it must be https://, or http:// on localhost")]
    BadScriptUrl(String),
    #[error("the split makes {split} chunks but the task says {chunks}")]
    ChunksMismatch { split: u64, chunks: u32 },
    #[error("a time limit of {0} s per chunk: it must be 1 to {MAX_SCRIPT_SECONDS}")]
    BadTimeLimit(u32),
    #[error("the audio to transcribe: {0}")]
    BadAudio(String),
    #[error("the WebGPU kernel: {0}")]
    BadKernel(String),
}
