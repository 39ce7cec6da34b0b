//! Noise and repeated runs: a node transcribes many messages in one worker,
//! so a run must neither crash on audio that is not speech nor leave memory
//! behind. Alone in its own test binary, so that no other test's allocations
//! show in the process's resident memory.
#![cfg(target_os = "linux")]

use potluck_worker::catalog::local_models_dir;
use whisper::mel::SAMPLE_RATE;
use whisper::transcribe::{Engine, Options};

fn tiny_engine() -> Option<Engine> {
    let dir = local_models_dir().join("tiny.en");
    if !dir.join("model.bin").exists() {
        let what = format!(
            "no tiny.en in {} (run scripts/fetch-models.sh)",
            dir.display()
        );
        // A missing model fails the test, unless the tests were built with
        // POTLUCK_ALLOW_MISSING_TEST_DATA=1 (README, "Tests").
        assert!(
            option_env!("POTLUCK_ALLOW_MISSING_TEST_DATA").is_some(),
            "{what}; set POTLUCK_ALLOW_MISSING_TEST_DATA=1 to skip instead"
        );
        eprintln!("SKIPPED: {what}");
        return None;
    }
    Some(Engine::from_dir(&dir).unwrap())
}

unsafe extern "C" {
    /// glibc's: returns the free memory of every malloc arena to the system.
    fn malloc_trim(pad: usize) -> std::ffi::c_int;
}

/// Resident memory of this process, in MB, without the free memory glibc's
/// allocator keeps for reuse: after it frees a large block, glibc raises its
/// mmap threshold and keeps later blocks of that size in its heap, a one-time
/// step of about 30 MB in this test that is not a leak.
fn resident_mb() -> f64 {
    // SAFETY: malloc_trim only releases free pages; no pointer is involved.
    unsafe { malloc_trim(0) };
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / 1e6
}

/// White noise at a speaking level, the same every run.
fn noise(seconds: usize) -> Vec<f32> {
    let mut seed = 7u32;
    (0..seconds * SAMPLE_RATE)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.2
        })
        .collect()
}

#[test]
fn noise_gives_a_transcript_and_twenty_runs_leave_no_memory_behind() {
    let Some(engine) = tiny_engine() else { return };
    let audio = noise(4);
    let first = engine.transcribe_pcm(&audio, &Options::default()).unwrap();
    eprintln!("noise: {:?} ({} windows)", first.text, first.windows.len());
    let before = resident_mb();
    for _ in 0..20 {
        let again = engine.transcribe_pcm(&audio, &Options::default()).unwrap();
        assert_eq!(
            again.text, first.text,
            "the same audio decodes the same way"
        );
    }
    let after = resident_mb();
    eprintln!("resident memory after the first run {before:.0} MB, after 20 more {after:.0} MB");
    assert!(
        after - before < 20.0,
        "20 runs grew resident memory from {before:.0} MB to {after:.0} MB"
    );
}
