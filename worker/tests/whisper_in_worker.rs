//! Whisper tiny.en inside a real Web Worker in headless Chromium: the model
//! is downloaded as a widget downloads it, checked against its pinned sha256,
//! kept in Cache Storage, and transcribes real (espeak-ng) speech about as
//! well as faster-whisper does on the same samples.
//!
//! The files come from `scripts/whisper-test-data.sh` (tests/run.sh runs it),
//! served by the test runner from `worker/test-data/`; without them the test
//! says so and skips.
#![cfg(target_arch = "wasm32")]

use potluck_worker::catalog::ModelSource;
use potluck_worker::model_store::{ModelError, ModelStore};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use whisper::transcribe::Options;
use whisper::wer::wer;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// Where the runner serves `worker/test-data/whisper` from.
const DATA: &str = "/test-data/whisper";

/// Our WER may exceed faster-whisper's by at most this (the margin).
const WER_MARGIN: f64 = 0.02;

fn scope() -> web_sys::WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn now_ms() -> f64 {
    scope().performance().map_or(0.0, |p| p.now())
}

/// A test-data file, or `None` when it is not there.
async fn fetch(path: &str) -> Option<Vec<u8>> {
    let response: web_sys::Response =
        JsFuture::from(scope().fetch_with_str(&format!("{DATA}/{path}")))
            .await
            .ok()?
            .unchecked_into();
    if !response.ok() {
        return None;
    }
    let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    Some(js_sys::Uint8Array::new(&buffer).to_vec())
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
async fn tiny_en_is_verified_cached_and_transcribes_speech_in_a_worker() {
    let (Some(text), Some(pcm), Some(reference)) = (
        fetch("five-sentences.txt").await,
        fetch("five-sentences.f32").await,
        fetch("reference/result.json").await,
    ) else {
        return missing(&format!("no {DATA}; run scripts/whisper-test-data.sh"));
    };
    let source = ModelSource::pinned("tiny.en", DATA).unwrap();
    let store = ModelStore::open().await.unwrap();
    assert_eq!(
        store.no_cache, None,
        "the test page's origin may use Cache Storage"
    );
    store.forget(&source).await;

    let t0 = now_ms();
    let (engine, first) = store.load_engine(&source, &|_| {}).await.unwrap();
    let first_ms = now_ms() - t0;
    assert_eq!(first.from_cache, 0, "a fresh cache downloads every file");
    assert!(first.downloaded_bytes > 30_000_000, "{first:?}");
    assert_eq!(first.not_kept, None);
    drop(engine);

    let t1 = now_ms();
    let (engine, second) = store.load_engine(&source, &|_| {}).await.unwrap();
    let second_ms = now_ms() - t1;
    assert_eq!(
        second.from_cache, 3,
        "the second load reads the cache: {second:?}"
    );
    assert_eq!(second.downloaded_bytes, 0);

    let samples: Vec<f32> = pcm
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let seconds = samples.len() as f64 / 16_000.0;
    let t2 = now_ms();
    let transcript = engine
        .transcribe_pcm(
            &samples,
            &Options {
                timestamps: false,
                ..Options::default()
            },
        )
        .unwrap();
    let run_s = (now_ms() - t2) / 1000.0;

    let text = String::from_utf8(text).unwrap();
    let reference: serde_json::Value = serde_json::from_slice(&reference).unwrap();
    let fw_text = reference["float32"]["text"].as_str().unwrap();
    let ours = wer(&text, &transcript.text);
    let theirs = wer(&text, fw_text);
    console_log!(
        "tiny.en in a Chromium worker: first load {first_ms:.0} ms (download + convert), from cache {second_ms:.0} ms; \
         {seconds:.1} s of speech in {run_s:.2} s (RTF {:.3}, encoder {:.2} s, decoder {:.2} s, {} tokens); \
         WER {ours:.3} vs faster-whisper {theirs:.3}\n  ours: {}\n  fw:   {fw_text}",
        run_s / seconds,
        transcript.encoder_s,
        transcript.decoder_s,
        transcript.decoded_tokens,
        transcript.text,
    );
    assert!(
        ours <= theirs + WER_MARGIN,
        "our WER {ours:.3} is more than {WER_MARGIN} above faster-whisper's {theirs:.3}"
    );
}

#[wasm_bindgen_test]
async fn a_file_that_does_not_match_its_hash_is_refused_and_not_kept() {
    if fetch("tiny.en/config.json").await.is_none() {
        return missing(&format!("no {DATA}; run scripts/whisper-test-data.sh"));
    }
    let mut source = ModelSource::pinned("tiny.en", DATA).unwrap();
    // config.json is fetched after model.bin: point it at the vocabulary.
    source.files[1].url = format!("{DATA}/tiny.en/vocabulary.txt");
    let store = ModelStore::open().await.unwrap();
    store.forget(&source).await;
    let err = match store.load_engine(&source, &|_| {}).await {
        Err(e) => e,
        Ok(_) => panic!("a file with the wrong content loaded"),
    };
    assert!(matches!(err, ModelError::Integrity { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "{DATA}/tiny.en/vocabulary.txt is not the file Potluck expects"
        )),
        "{message}"
    );
    // Nothing unverified was kept: the next load downloads it again and fails again.
    let again = store
        .load_engine(&source, &|_| {})
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(again, Some(message));

    let missing = ModelSource::pinned("tiny.en", "/test-data/nowhere").unwrap();
    let err = store
        .load_engine(&missing, &|_| {})
        .await
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "could not download /test-data/nowhere/tiny.en/model.bin: HTTP 404"
    );
}
