//! What runs inside a Potluck Web Worker.
//!
//! The runners are plain Rust, tested natively; `entry` (wasm only) just moves
//! messages between `postMessage` and them. A worker runs one job at a time and
//! blocks while it does: the widget stops a job by terminating the worker.

// Reading WAV files and resampling: for the native command line and tests
// (the browser decodes with WebAudio; nothing exported reaches this).
#[cfg(not(target_arch = "wasm32"))]
pub mod audio;
pub mod catalog;
pub mod kernel;
pub mod primes;
pub mod runner;
pub mod speech;

// `benchmarkTranscribe` for scripts/bench-whisper-browser.mjs: only in a
// build that asks for it (POTLUCK_WORKER_FEATURES=benchmark scripts/build.sh).
#[cfg(all(target_arch = "wasm32", feature = "benchmark"))]
mod benchmark;
#[cfg(target_arch = "wasm32")]
mod entry;
#[cfg(target_arch = "wasm32")]
pub mod model_store;
