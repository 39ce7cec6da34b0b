//! A WebGPU kernel's chunk in a process of its own (`potluck kernel-worker`),
//! on this machine's GPU (Mesa's lavapipe here, `mesa-vulkan-drivers`): its
//! output is the LCG's own, a kernel past its time limit is stopped with the
//! reason a browser gives, and a chunk taken back stops at once.
#![cfg(not(target_arch = "wasm32"))]

use manifest::kernel::KernelTask;
use potluck_node::kernel_process::run_in;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

const POTLUCK: &str = env!("CARGO_BIN_EXE_potluck");

/// `tests/fixtures/kernels/spin.wgsl`: `rounds` steps of an LCG in each of
/// 64 invocations per workgroup; invocation 0 writes where it ends.
fn spin(rounds: u32, workgroups: u32, max_seconds: u32) -> KernelTask {
    let wgsl = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/kernels/spin.wgsl"),
    )
    .unwrap();
    let task: KernelTask = serde_json::from_value(json!({
        "wgsl": wgsl, "entry": "main", "workgroups": [workgroups, 1, 1], "output_words": 1,
        "chunks": [[rounds]], "max_seconds": max_seconds,
    }))
    .unwrap();
    task.chunk(0)
}

/// Hours of work on lavapipe. Not by rounds: llvmpipe ends any loop after
/// 65,535 iterations (so no kernel is endless there), but by invocations:
/// 65,535 workgroups of 64, each spinning 65,535 rounds.
fn endless(max_seconds: u32) -> KernelTask {
    spin(65_535, 65_535, max_seconds)
}

/// Where invocation 0 of `spin(rounds, _)` ends, computed here.
fn lcg(rounds: u32) -> u32 {
    (0..rounds).fold(0u32, |x, _| {
        x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223)
    })
}

#[test]
fn a_kernel_runs_in_its_own_process_and_gives_the_gpus_answer() {
    let output = run_in(Path::new(POTLUCK), &spin(1_000, 1, 30), &|| false).unwrap();
    assert_eq!(
        output,
        json!({ "bytes": manifest::base64::encode(&lcg(1_000).to_le_bytes()) })
    );
}

#[test]
fn a_kernel_past_its_time_limit_is_stopped_with_the_reason() {
    let started = Instant::now();
    let error = run_in(Path::new(POTLUCK), &endless(1), &|| false).unwrap_err();
    assert_eq!(
        error,
        "it ran longer than its time limit of 1 s and was stopped"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "stopped, not waited for"
    );
}

#[test]
fn a_chunk_taken_back_stops_its_kernel() {
    let asked = Instant::now();
    let taken_back = || asked.elapsed() > Duration::from_millis(500);
    let error = run_in(Path::new(POTLUCK), &endless(60), &taken_back).unwrap_err();
    assert_eq!(error, "taken back");
}

#[test]
fn a_kernel_the_gpu_refuses_fails_with_the_gpus_reason() {
    let mut task = spin(1, 1, 30);
    task.wgsl = "this is not WGSL".into();
    let error = run_in(Path::new(POTLUCK), &task, &|| false).unwrap_err();
    assert!(error.contains("WebGPU refused the kernel"), "{error}");
}
