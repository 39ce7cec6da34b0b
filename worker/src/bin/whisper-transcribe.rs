//! `whisper-transcribe MODEL_DIR FILE.wav [--language CODE] [--no-timestamps] [--f32-projection] [--bench N] [--save-pcm PATH]`:
//! the worker's Whisper engine, natively.
//!
//! MODEL_DIR is either what `whisper-convert` writes (`model.safetensors`,
//! `model.json`, `vocabulary.txt`) or a CTranslate2 package directory
//! (`model.bin`, `config.json`, `vocabulary.txt`), converted in memory.
//! `--bench N` transcribes N times and prints the best real-time factor with
//! the encoder and decoder times, model load excluded. `--save-pcm` writes
//! the 16 kHz samples it transcribes (raw little-endian f32), so that a
//! reference engine can be given exactly the same audio. `--f32-projection`
//! keeps the vocabulary projection in f32 (the default is int8).

use potluck_worker::audio::{resample::resample, wav};
use potluck_worker::whisper::mel::SAMPLE_RATE;
use potluck_worker::whisper::transcribe::{Engine, Options};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn read(p: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn text(p: &Path) -> Result<String, String> {
    String::from_utf8(read(p)?).map_err(|e| format!("{}: {e}", p.display()))
}

fn load(dir: &Path) -> Result<Engine, String> {
    let vocabulary = text(&dir.join("vocabulary.txt"))?;
    let engine = if dir.join("model.safetensors").exists() {
        let weights = read(&dir.join("model.safetensors"))?;
        Engine::load(weights, &text(&dir.join("model.json"))?, &vocabulary)
    } else {
        let bin = read(&dir.join("model.bin"))?;
        Engine::from_ct2(&bin, &text(&dir.join("config.json"))?, &vocabulary)
    };
    engine.map_err(|e| e.to_string())
}

struct Args {
    model: PathBuf,
    audio: PathBuf,
    language: Option<String>,
    bench: Option<usize>,
    save_pcm: Option<PathBuf>,
    timestamps: bool,
    f32_projection: bool,
}

fn parse_args() -> Option<Args> {
    let mut it = std::env::args().skip(1);
    let (mut positional, mut language, mut bench, mut save_pcm) = (Vec::new(), None, None, None);
    let (mut timestamps, mut f32_projection) = (true, false);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--language" => language = Some(it.next()?),
            "--bench" => bench = Some(it.next()?.parse().ok()?),
            "--save-pcm" => save_pcm = Some(PathBuf::from(it.next()?)),
            "--no-timestamps" => timestamps = false,
            "--f32-projection" => f32_projection = true,
            _ => positional.push(PathBuf::from(a)),
        }
    }
    let [model, audio] = <[PathBuf; 2]>::try_from(positional).ok()?;
    Some(Args {
        model,
        audio,
        language,
        bench,
        save_pcm,
        timestamps,
        f32_projection,
    })
}

fn run(args: Args) -> Result<(), String> {
    let t0 = Instant::now();
    let mut engine = load(&args.model)?;
    if args.f32_projection {
        engine
            .model
            .decoder
            .set_int8_projection(false)
            .map_err(|e| e.to_string())?;
    }
    let load_s = t0.elapsed().as_secs_f64();
    let audio =
        wav::read(&read(&args.audio)?).map_err(|e| format!("{}: {e}", args.audio.display()))?;
    let samples = resample(&audio.samples, audio.rate, SAMPLE_RATE as u32);
    let duration = samples.len() as f64 / SAMPLE_RATE as f64;
    if let Some(p) = &args.save_pcm {
        let raw: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(p, raw).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let opts = Options {
        language: args.language,
        timestamps: args.timestamps,
        ..Options::default()
    };
    let runs = args.bench.unwrap_or(1).max(1);
    let mut best: Option<(f64, _)> = None;
    for _ in 0..runs {
        let t = Instant::now();
        let tr = engine
            .transcribe_pcm(&samples, &opts)
            .map_err(|e| e.to_string())?;
        let s = t.elapsed().as_secs_f64();
        if best.as_ref().is_none_or(|(b, _)| s < *b) {
            best = Some((s, tr));
        }
    }
    let Some((seconds, tr)) = best else {
        return Err("no run".into());
    };
    for seg in &tr.segments {
        println!("[{:7.2} → {:7.2}] {}", seg.start, seg.end, seg.text.trim());
    }
    if args.bench.is_some() {
        let per_token = tr.decoder_s * 1000.0 / tr.decoded_tokens.max(1) as f64;
        eprintln!(
            "audio {duration:.2} s, load {load_s:.2} s, best of {runs}: {seconds:.3} s, RTF {:.4} (encoder {:.3} s, decoder {:.3} s = {per_token:.1} ms/token over {} tokens)",
            seconds / duration,
            tr.encoder_s,
            tr.decoder_s,
            tr.decoded_tokens
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        eprintln!(
            "usage: whisper-transcribe MODEL_DIR FILE.wav [--language CODE] [--no-timestamps] [--f32-projection] [--bench N] [--save-pcm PATH]"
        );
        return ExitCode::from(2);
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("whisper-transcribe: {e}");
            ExitCode::FAILURE
        }
    }
}
