//! What `scripts/bench-whisper-browser.mjs` calls inside a Chromium worker:
//! the engine a contributing node runs, timed step by step. Not used by the
//! widget; the worker's own job loop does not reach it.

use crate::catalog::ModelSource;
use crate::model_store::ModelStore;
use js_sys::Float32Array;
use serde_json::json;
use wasm_bindgen::prelude::*;
use whisper::transcribe::{self, Engine, Options};

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
    let (mut engine, _) = store
        .load_engine(&source, &|_| {})
        .await
        .map_err(|e| JsError::new(&e.to_string()))?;
    let load_s = transcribe::now() - started;
    // As the pool runs it (the encoder's linear layers in integers), then
    // with them in f32, alternating so that both see the same machine.
    let (mut results, mut f32_encoder) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        results.push(timed(&engine, &samples)?);
        set_integer_encoder(&mut engine, false)?;
        f32_encoder.push(timed(&engine, &samples)?);
        set_integer_encoder(&mut engine, true)?;
    }
    let out = json!({ "load_s": load_s, "runs": results, "f32_encoder_runs": f32_encoder });
    Ok(out.to_string())
}

fn set_integer_encoder(engine: &mut Engine, on: bool) -> Result<(), JsError> {
    engine
        .model
        .encoder
        .set_integer(on)
        .map_err(|e| JsError::new(&e.to_string()))
}

/// One transcription: the wall, encoder and decoder seconds, the tokens and the text.
fn timed(engine: &Engine, samples: &[f32]) -> Result<serde_json::Value, JsError> {
    let started = transcribe::now();
    let transcript = engine
        .transcribe_pcm(samples, &Options::default())
        .map_err(|e| JsError::new(&e.to_string()))?;
    Ok(json!({
        "wall_s": transcribe::now() - started,
        "encoder_s": transcript.encoder_s,
        "decoder_s": transcript.decoder_s,
        "tokens": transcript.decoded_tokens,
        "text": transcript.text,
    }))
}
