//! Whisper tiny.en on real speech, natively, against faster-whisper on the
//! same audio and the same weights.
//!
//! Needs the CTranslate2 packages in `~/.cache/potluck/models` (fetched by
//! `scripts/fetch-models.sh`) and `espeak-ng`; skips with a message when
//! either is missing. The reference runs through
//! `scripts/reference-whisper.sh`, which installs faster-whisper on first use.
#![cfg(not(target_arch = "wasm32"))]

use potluck_worker::audio::{resample::resample, wav};
use potluck_worker::whisper::mel::{log_mel, MelFilters, SAMPLE_RATE};
use potluck_worker::whisper::transcribe::{Engine, Options};
use potluck_worker::whisper::wer::wer;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The clip of `shared/notes/whisper.md` §4.
const TEXT: &str = "The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring these things with her from the store. The meeting will start at nine o'clock tomorrow morning. We need to finish the report before the end of the week. Thank you all for coming today.";

/// The decoding `shared/notes/whisper.md` §4 compared engines with.
const NO_TIMESTAMPS: Options = Options {
    language: None,
    timestamps: false,
    seed: 0,
};

/// Our WER may exceed faster-whisper's by at most this (the margin).
const WER_MARGIN: f64 = 0.02;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn models_dir() -> PathBuf {
    std::env::var_os("POTLUCK_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/potluck/models")
        })
}

fn espeak(text: &str) -> Option<Vec<f32>> {
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "--stdout", text])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let audio = wav::read(&out.stdout).expect("espeak-ng wrote a WAV we cannot read");
    Some(resample(&audio.samples, audio.rate, SAMPLE_RATE as u32))
}

fn load_engine(dir: &Path) -> Engine {
    let bin = std::fs::read(dir.join("model.bin")).unwrap();
    let options = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let vocabulary = std::fs::read_to_string(dir.join("vocabulary.txt")).unwrap();
    Engine::from_ct2(&bin, &options, &vocabulary).unwrap()
}

struct Reference {
    features: Vec<f32>,
    frames: usize,
    json: serde_json::Value,
}

fn reference(model_dir: &Path, samples: &[f32], opts: &Options) -> Reference {
    // Tests run in parallel threads of one process: each call gets its own folder.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!("potluck-whisper-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let raw: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(tmp.join("samples.f32"), raw).unwrap();
    let mut cmd = Command::new(repo().join("scripts/reference-whisper.sh"));
    cmd.arg(model_dir).arg(tmp.join("samples.f32")).arg(&tmp);
    if let Some(l) = &opts.language {
        cmd.args(["--language", l]);
    }
    if opts.timestamps {
        cmd.arg("--timestamps");
    }
    let status = cmd
        .status()
        .expect("cannot run scripts/reference-whisper.sh");
    assert!(status.success(), "faster-whisper reference failed");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.join("result.json")).unwrap()).unwrap();
    let features: Vec<f32> = std::fs::read(tmp.join("features.f32"))
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let frames = json["frames"].as_u64().unwrap() as usize;
    let _ = std::fs::remove_dir_all(&tmp);
    Reference {
        features,
        frames,
        json,
    }
}

fn check_model(name: &str, text: &str, opts: Options) {
    let dir = models_dir().join(name);
    if !dir.join("model.bin").exists() {
        eprintln!(
            "SKIPPED: no {name} model in {} (run scripts/fetch-models.sh)",
            dir.display()
        );
        return;
    }
    let Some(samples) = espeak(text) else {
        eprintln!("SKIPPED: espeak-ng is not installed (apt-get install espeak-ng)");
        return;
    };
    let duration = samples.len() as f64 / SAMPLE_RATE as f64;
    let reference = reference(&dir, &samples, &opts);

    // Features: the same framing, filters and normalisation as faster-whisper.
    let ours = log_mel(&samples, &MelFilters::new(80));
    assert_eq!(ours.frames, reference.frames, "frame count");
    let max_diff = ours
        .data
        .iter()
        .zip(&reference.features)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!("{name}: log-mel max |ours - faster-whisper| = {max_diff:.2e}");
    assert!(
        max_diff < 2e-3,
        "log-mel differs from faster-whisper's by {max_diff}"
    );

    let t0 = Instant::now();
    let engine = load_engine(&dir);
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let transcript = engine.transcribe_pcm(&samples, &opts).unwrap();
    let ours_s = t1.elapsed().as_secs_f64();

    let fw_text = reference.json["float32"]["text"].as_str().unwrap();
    let fw_int8 = reference.json["int8"]["text"].as_str().unwrap();
    let ours_wer = wer(text, &transcript.text);
    let fw_wer = wer(text, fw_text);
    eprintln!(
        "{name}: ours            WER {ours_wer:.3}: {}",
        transcript.text
    );
    eprintln!("{name}: faster-whisper  WER {fw_wer:.3}: {fw_text}");
    eprintln!(
        "{name}: fw int8         WER {:.3}: {fw_int8}",
        wer(text, fw_int8)
    );
    eprintln!(
        "{name}: {duration:.2} s of audio; ours: load {load_s:.2} s, transcribe {ours_s:.2} s (encoder {:.2} s, decoder {:.2} s for {} tokens), RTF {:.3}; faster-whisper f32 RTF {:.3}, int8 RTF {:.3} (1 thread)",
        transcript.encoder_s,
        transcript.decoder_s,
        transcript.decoded_tokens,
        ours_s / duration,
        reference.json["float32"]["rtf"].as_f64().unwrap_or(f64::NAN),
        reference.json["int8"]["rtf"].as_f64().unwrap_or(f64::NAN),
    );
    assert!(
        ours_wer <= fw_wer + WER_MARGIN,
        "our WER {ours_wer:.3} is more than {WER_MARGIN} above faster-whisper's {fw_wer:.3}"
    );
}

#[test]
fn tiny_en_transcribes_espeak_speech_as_well_as_faster_whisper() {
    check_model("tiny.en", TEXT, NO_TIMESTAMPS);
}

#[test]
fn base_transcribes_espeak_speech_as_well_as_faster_whisper_with_language_detection() {
    check_model("base", TEXT, NO_TIMESTAMPS);
}

fn tiny_engine() -> Option<Engine> {
    let dir = models_dir().join("tiny.en");
    if !dir.join("model.bin").exists() {
        eprintln!(
            "SKIPPED: no tiny.en model in {} (run scripts/fetch-models.sh)",
            dir.display()
        );
        return None;
    }
    Some(load_engine(&dir))
}

#[test]
fn silence_and_empty_audio_give_no_text() {
    let Some(engine) = tiny_engine() else { return };
    let empty = engine.transcribe_pcm(&[], &Options::default()).unwrap();
    assert_eq!(empty.text, "");
    assert!(empty.windows.is_empty());
    let silence = engine
        .transcribe_pcm(&vec![0.0; 5 * SAMPLE_RATE], &Options::default())
        .unwrap();
    eprintln!("silence: {:?}", silence.windows);
    assert_eq!(silence.text, "", "text hallucinated on silence");
}

#[test]
fn audio_longer_than_30_s_is_decoded_window_by_window_as_faster_whisper_does() {
    // 52 s: two windows, the cut inside a sentence. Without timestamp
    // seeking both engines garble words at the cut alike.
    check_model(
        "tiny.en",
        &format!("{TEXT} {TEXT} {TEXT}"),
        Options::default(),
    );
}
