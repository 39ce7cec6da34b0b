//! WebGPU kernels run in a child process of their own, one per chunk. A GPU
//! dispatch cannot be cancelled, so a kernel past its time limit is stopped
//! the only way there is, by ending its process, as the browser ends its Web
//! Worker; a driver that crashes on a kernel ends only that process too.
//!
//! The child is this same executable (`potluck kernel-worker`): it opens the
//! GPU, says `ready`, reads one chunk's `KernelTask` as JSON from stdin and
//! prints its output as JSON. Its time limit counts from `ready`, so opening
//! the GPU is not the kernel's time.

use manifest::kernel::KernelTask;
use potluck_worker::kernel::Gpu;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The hidden subcommand the child runs.
pub const SUBCOMMAND: &str = "kernel-worker";
const READY: &str = "ready";
/// Opening a GPU takes well under a second; a driver that hangs there is
/// given up on after this.
const OPEN_WITHIN: Duration = Duration::from_secs(30);
/// How often the parent looks whether the chunk was taken back.
const POLL: Duration = Duration::from_millis(10);

/// Runs one chunk's kernel in a child process, which is ended after the
/// task's time limit or as soon as `taken_back()` says so.
pub fn run(task: &KernelTask, taken_back: &dyn Fn() -> bool) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot start a kernel process: {e}"))?;
    run_in(&exe, task, taken_back)
}

/// `run`, with `exe` as the `potluck` executable.
pub fn run_in(
    exe: &std::path::Path,
    task: &KernelTask,
    taken_back: &dyn Fn() -> bool,
) -> Result<Value, String> {
    let mut child = Command::new(exe)
        .arg(SUBCOMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start a kernel process: {e}"))?;
    let outcome = supervise(&mut child, task, taken_back);
    // Ended however it went: nothing of it keeps the GPU busy.
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

fn supervise(
    child: &mut Child,
    task: &KernelTask,
    taken_back: &dyn Fn() -> bool,
) -> Result<Value, String> {
    let lines = read_lines(child.stdout.take());
    let stderr = child.stderr.take();
    let errors_read = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    });
    match next_line(
        &lines,
        OPEN_WITHIN,
        taken_back,
        "the GPU did not open in time",
    ) {
        Ok(line) if line == READY => {}
        Ok(_) | Err(NoLine::Ended) => return Err(gone(errors_read)),
        Err(NoLine::Stopped(reason)) => return Err(reason),
    }
    let task_json = serde_json::to_vec(task).map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // Closed after writing: the child reads to the end.
        stdin
            .write_all(&task_json)
            .map_err(|e| format!("the kernel process did not take its chunk: {e}"))?;
    }

    let limit = Duration::from_secs(u64::from(task.max_seconds));
    let too_long = format!(
        "it ran longer than its time limit of {} s and was stopped",
        task.max_seconds
    );
    match next_line(&lines, limit, taken_back, &too_long) {
        Ok(line) => serde_json::from_str(&line)
            .map_err(|e| format!("the kernel process answered nonsense: {e}")),
        Err(NoLine::Ended) => Err(gone(errors_read)),
        Err(NoLine::Stopped(reason)) => Err(reason),
    }
}

/// Why the child gave no next line.
enum NoLine {
    /// It ended (its stdout closed).
    Ended,
    /// The parent stopped waiting: the chunk was taken back, or time ran out.
    Stopped(String),
}

/// The child's next line, waited for at most `within` and only while the
/// chunk is not taken back; `too_late` says why when `within` runs out.
fn next_line(
    lines: &mpsc::Receiver<String>,
    within: Duration,
    taken_back: &dyn Fn() -> bool,
    too_late: &str,
) -> Result<String, NoLine> {
    let started = Instant::now();
    loop {
        match lines.recv_timeout(POLL) {
            Ok(line) => return Ok(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(NoLine::Ended),
            Err(mpsc::RecvTimeoutError::Timeout) if taken_back() => {
                return Err(NoLine::Stopped("taken back".into()))
            }
            Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() > within => {
                return Err(NoLine::Stopped(too_late.into()))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
}

/// What the child said on stderr before it ended, as the reason it failed.
fn gone(errors_read: std::thread::JoinHandle<String>) -> String {
    let reason = errors_read.join().unwrap_or_default();
    match reason.trim() {
        "" => "the kernel process ended without an answer".to_owned(),
        reason => reason.to_owned(),
    }
}

/// The child's stdout, line by line, on a channel (a thread reads it, so the
/// pipe never fills while the parent waits).
fn read_lines(stdout: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    if let Some(stdout) = stdout {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
    }
    receive
}

/// `potluck kernel-worker`: the child's side.
pub fn main() -> ExitCode {
    match serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("{reason}");
            ExitCode::FAILURE
        }
    }
}

fn serve() -> Result<(), String> {
    let gpu = pollster::block_on(Gpu::open())?;
    println!("{READY}");
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    let task: KernelTask = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let bytes = pollster::block_on(gpu.run(&task))?;
    println!("{}", task.output_from(&bytes));
    Ok(())
}
