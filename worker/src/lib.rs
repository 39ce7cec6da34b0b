//! What runs inside a Potluck Web Worker.
//!
//! The runners are plain Rust, tested natively; `entry` (wasm only) just moves
//! messages between `postMessage` and them. A worker runs one job at a time and
//! blocks while it does: the widget stops a job by terminating the worker.

pub mod audio;
pub mod catalog;
pub mod kernel;
pub mod primes;
pub mod runner;
pub mod speech;

#[cfg(target_arch = "wasm32")]
mod benchmark;
#[cfg(target_arch = "wasm32")]
mod entry;
#[cfg(target_arch = "wasm32")]
pub mod model_store;
