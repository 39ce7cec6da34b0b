//! Voice messages decoded by the browser for Whisper, in headless Chromium:
//! an Ogg Opus file as Element sends voice messages, and a WAV, come out as
//! 16 kHz mono samples that follow the speech they were made from.
//!
//! The files come from `scripts/whisper-test-data.sh` (tests/run.sh runs it),
//! served by the test runner from `widget/test-data/`; without them the test
//! says so and skips.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use widget::audio::decode_for_whisper;

wasm_bindgen_test_configure!(run_in_browser);

async fn fetch(path: &str) -> Option<Vec<u8>> {
    let window = web_sys::window()?;
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_str(&format!("/test-data/audio/{path}")))
            .await
            .ok()?
            .unchecked_into();
    if !response.ok() {
        return None;
    }
    let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    Some(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Loudness in 20 ms frames at 16 kHz.
fn envelope(samples: &[f32]) -> Vec<f64> {
    samples
        .chunks(320)
        .map(|f| (f.iter().map(|&s| f64::from(s * s)).sum::<f64>() / f.len() as f64).sqrt())
        .collect()
}

/// The best correlation of two envelopes within ±5 frames (100 ms) of lag.
fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let pearson = |x: &[f64], y: &[f64]| {
        let n = x.len().min(y.len());
        let (x, y) = (&x[..n], &y[..n]);
        let (mx, my) = (
            x.iter().sum::<f64>() / n as f64,
            y.iter().sum::<f64>() / n as f64,
        );
        let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
        cov / (vx * vy).sqrt()
    };
    (0..=5)
        .flat_map(|lag| [pearson(&a[lag..], b), pearson(a, &b[lag..])])
        .fold(f64::MIN, f64::max)
}

/// Test data is missing: the test fails, unless the tests were built with
/// `POTLUCK_ALLOW_MISSING_TEST_DATA=1` (README, "Tests").
fn missing(what: &str) {
    assert!(
        option_env!("POTLUCK_ALLOW_MISSING_TEST_DATA").is_some(),
        "{what}; set POTLUCK_ALLOW_MISSING_TEST_DATA=1 to skip instead"
    );
    console_log!("SKIPPED: {what}");
}

#[wasm_bindgen_test]
async fn a_voice_message_decodes_to_whisper_samples_that_follow_the_speech() {
    let (Some(reference), Some(ogg), Some(wav)) = (
        fetch("five-sentences.f32").await,
        fetch("five-sentences.ogg").await,
        fetch("five-sentences.wav").await,
    ) else {
        return missing("no widget/test-data/audio; run scripts/whisper-test-data.sh");
    };
    let reference: Vec<f32> = reference
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let expected = envelope(&reference);
    for (name, file) in [("Ogg Opus", ogg), ("WAV", wav)] {
        let samples = decode_for_whisper(&file).await.unwrap();
        let seconds = samples.len() as f64 / 16_000.0;
        let want = reference.len() as f64 / 16_000.0;
        let r = correlation(&envelope(&samples), &expected);
        console_log!(
            "{name}: {seconds:.2} s at 16 kHz (reference {want:.2} s), envelope correlation {r:.3}"
        );
        assert!(
            (seconds - want).abs() < 0.1,
            "{name}: {seconds} s, not {want} s"
        );
        assert!(
            r > 0.95,
            "{name}: the decoded audio does not follow the speech (r = {r})"
        );
    }
}

#[wasm_bindgen_test]
async fn audio_that_cannot_be_decoded_is_a_clear_error() {
    let err = decode_for_whisper(b"OggS but not really a voice message")
        .await
        .unwrap_err();
    assert!(err.starts_with("this audio could not be decoded"), "{err}");
    let err = decode_for_whisper(&[]).await.unwrap_err();
    assert_eq!(err, "the audio file is empty");
}
