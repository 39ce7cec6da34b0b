//! `potluck wer REFERENCE HYPOTHESIS`: the word error rate of a transcript
//! (file HYPOTHESIS) against what was said (file REFERENCE), as a fraction,
//! scored by `whisper::wer` so that the Rust tests, the benchmarks and the
//! end-to-end tests judge transcripts by one rule.

use std::process::ExitCode;

pub const USAGE: &str = "potluck wer REFERENCE.txt HYPOTHESIS.txt";

pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let files: Vec<String> = args.into_iter().collect();
    let [reference, hypothesis] = files.as_slice() else {
        eprintln!("usage: {USAGE}");
        return ExitCode::from(2);
    };
    let read = |path: &str| std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"));
    match (read(reference), read(hypothesis)) {
        (Ok(reference), Ok(hypothesis)) => {
            println!("{:.4}", whisper::wer::wer(&reference, &hypothesis));
            ExitCode::SUCCESS
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("potluck wer: {e}");
            ExitCode::FAILURE
        }
    }
}
