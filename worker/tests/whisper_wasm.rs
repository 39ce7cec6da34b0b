//! The Whisper engine compiled to wasm, run by Node (V8, one thread, no
//! SIMD128 as the project builds today): tiny.en from the CTranslate2
//! package, converted in wasm, on the five-sentence espeak clip.
//!
//! Not part of `tests/run.sh` (it takes about a minute). Run it with
//!   target/release/whisper-transcribe ~/.cache/potluck/models/tiny.en CLIP.wav \
//!     --save-pcm ~/.cache/potluck/clips/five-sentences.f32
//!   cargo test --target wasm32-unknown-unknown -p potluck-worker --test whisper_wasm -- --nocapture
//! It skips, saying why, when the model or the clip is missing.
#![cfg(target_arch = "wasm32")]

use potluck_worker::whisper::ct2::Ct2Model;
use potluck_worker::whisper::transcribe::{Engine, Options};
use potluck_worker::whisper::{convert, wer::wer};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

#[wasm_bindgen(module = "fs")]
extern "C" {
    #[wasm_bindgen(js_name = readFileSync)]
    fn read_file_sync(path: &str) -> js_sys::Uint8Array;
    #[wasm_bindgen(js_name = existsSync)]
    fn exists_sync(path: &str) -> bool;
}

#[wasm_bindgen(module = "os")]
extern "C" {
    fn homedir() -> String;
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance)]
    fn now() -> f64;
}

const TEXT: &str = "The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring these things with her from the store. The meeting will start at nine o'clock tomorrow morning. We need to finish the report before the end of the week. Thank you all for coming today.";

fn read(path: &str) -> Vec<u8> {
    read_file_sync(path).to_vec()
}

#[wasm_bindgen_test]
fn tiny_en_transcribes_speech_in_wasm() {
    let home = homedir();
    let dir = format!("{home}/.cache/potluck/models/tiny.en");
    let clip = format!("{home}/.cache/potluck/clips/five-sentences.f32");
    if !exists_sync(&format!("{dir}/model.bin")) || !exists_sync(&clip) {
        console_log!("SKIPPED: needs {dir}/model.bin and {clip} (see this file's header)");
        return;
    }
    let t0 = now();
    let bin = read(&format!("{dir}/model.bin"));
    let options = String::from_utf8(read(&format!("{dir}/config.json"))).unwrap();
    let vocabulary = String::from_utf8(read(&format!("{dir}/vocabulary.txt"))).unwrap();
    let model = Ct2Model::parse(&bin).unwrap();
    let converted = convert::convert(&model, &options, &vocabulary).unwrap();
    let st = convert::to_safetensors(&converted.tensors);
    let json = serde_json::to_string(&converted.info).unwrap();
    drop(converted);
    drop(model);
    drop(bin);
    let engine = Engine::load(st, &json, &vocabulary).unwrap();
    let load_ms = now() - t0;
    let samples: Vec<f32> = read(&clip)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let seconds = samples.len() as f64 / 16_000.0;
    let t1 = now();
    let t = engine
        .transcribe_pcm(&samples, &Options::default())
        .unwrap();
    let run_s = (now() - t1) / 1000.0;
    let w = wer(TEXT, &t.text);
    console_log!(
        "wasm tiny.en: {seconds:.2} s audio, load+convert {load_ms:.0} ms, transcribe {run_s:.2} s, RTF {:.3}, {} tokens, WER {w:.3}: {}",
        run_s / seconds,
        t.decoded_tokens,
        t.text
    );
    // Native gives 0.255 on this clip with faster-whisper's transcript.
    assert!(w <= 0.30, "WER {w}");
}
