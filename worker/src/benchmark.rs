//! What `scripts/bench-whisper-browser.mjs` calls inside a Chromium worker:
//! the engine a contributing node runs, timed step by step. Not used by the
//! widget; the worker's own job loop does not reach it.

use crate::catalog::ModelSource;
use crate::model_store::ModelStore;
use js_sys::Float32Array;
use serde_json::json;
use wasm_bindgen::prelude::*;
use whisper::transcribe::{self, Options};

/// Loads `model` from `models_url`, then transcribes `pcm` (16 kHz mono)
/// `runs` times with the options the pool uses. Returns JSON: the load time,
/// then per run the wall, encoder and decoder seconds, the tokens and the text.
#[wasm_bindgen(js_name = benchmarkTranscribe)]
pub async fn benchmark_transcribe(
    model: String,
    models_url: String,
    pcm: Float32Array,
    runs: u32,
) -> Result<String, JsError> {
    let samples = pcm.to_vec();
    let source = ModelSource::pinned(&model, &models_url).map_err(|e| JsError::new(&e))?;
    let store = ModelStore::open()
        .await
        .map_err(|e| JsError::new(&e.to_string()))?;
    let started = transcribe::now();
    let (engine, _) = store
        .load_engine(&source, &|_| {})
        .await
        .map_err(|e| JsError::new(&e.to_string()))?;
    let load_s = transcribe::now() - started;
    let mut results = Vec::new();
    for _ in 0..runs {
        let started = transcribe::now();
        let transcript = engine
            .transcribe_pcm(&samples, &Options::default())
            .map_err(|e| JsError::new(&e.to_string()))?;
        results.push(json!({
            "wall_s": transcribe::now() - started,
            "encoder_s": transcript.encoder_s,
            "decoder_s": transcript.decoder_s,
            "tokens": transcript.decoded_tokens,
            "text": transcript.text,
        }));
    }
    Ok(json!({ "load_s": load_s, "runs": results }).to_string())
}
