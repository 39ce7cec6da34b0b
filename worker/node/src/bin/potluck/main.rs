//! `potluck`: Potluck on the command line, natively.
//!
//! - `potluck node --room … --user …`: contribute this machine to a room,
//!   always on (`potluck_worker::node`);
//! - `potluck transcribe FILE.ogg|FILE.wav …`: Whisper on a file (`transcribe.rs`);
//! - `potluck wer REFERENCE HYPOTHESIS`: a transcript's word error rate (`wer.rs`).

#[cfg(not(target_arch = "wasm32"))]
mod transcribe;
#[cfg(not(target_arch = "wasm32"))]
mod wer;

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("node") => potluck_node::main(args),
        Some("transcribe") => transcribe::main(args),
        Some("wer") => wer::main(args),
        // The node's own: one kernel chunk in a process that can be ended.
        Some(potluck_node::kernel_process::SUBCOMMAND) => potluck_node::kernel_process::main(),
        _ => {
            eprintln!(
                "usage:\n  {}\n  {}\n  {}",
                potluck_node::USAGE,
                transcribe::USAGE,
                wer::USAGE
            );
            std::process::ExitCode::from(2)
        }
    }
}

/// Every target of the worker crate also builds for wasm (its lints do);
/// the command line has nothing to do there.
#[cfg(target_arch = "wasm32")]
fn main() {}
