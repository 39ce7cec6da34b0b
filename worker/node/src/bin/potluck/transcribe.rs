//! `potluck transcribe`: the worker's Whisper engine, natively, for tests,
//! benchmarks and friends who prefer a terminal.
//!
//! It reads voice messages as users have them: Ogg Opus (what Element
//! sends) or WAV, any rate, mono or stereo, told apart by their bytes
//! (`audio::read`); anything else is an error naming those two formats.
//! `--model` names a model that `scripts/fetch-models.sh` put under
//! `$POTLUCK_MODELS` (default `~/.cache/potluck/models`), tiny.en unless
//! given, or a directory: either what `whisper-convert` writes
//! (`model.safetensors`, `model.json`, `vocabulary.txt`) or a CTranslate2
//! package (`model.bin`, `config.json`, `vocabulary.txt`), converted in
//! memory. Audio longer than one window is split at its pauses and the
//! chunks' transcripts stitched, as the room's workers do; each chunk is
//! conditioned on the text of the chunks before it, as faster-whisper does,
//! unless `--no-condition` (its `condition_on_previous_text=False`).
//! `--bench N` transcribes N times and prints the best real-time factor with
//! the encoder and decoder times, model load excluded. `--save-pcm` writes
//! the 16 kHz samples it transcribes (raw little-endian f32), so that a
//! reference engine can be given exactly the same audio. `--f32-projection`
//! keeps the vocabulary projection in f32 (the default is int8);
//! `--integer-encoder` runs the encoder's linear layers in integers (`int_matmul`),
//! as a browser worker does; natively the default is f32.
//! With `--bench`, each window's temperature, average log-probability and
//! compression ratio follow: a window decoded above temperature 0 was
//! decoded more than once.

use potluck_worker::audio::{self, split::split_at_silences};
use potluck_worker::catalog::{local_models_dir, DEFAULT_MODEL};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use whisper::mel::{HOP_LENGTH, N_FRAMES, SAMPLE_RATE};
use whisper::transcribe::{Engine, Options, Transcript};

/// A model directory, or a model's name under the models directory.
fn model_dir(model: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(model);
    if path.is_dir() {
        return Ok(path);
    }
    let models = local_models_dir();
    let dir = models.join(model);
    if dir.is_dir() {
        Ok(dir)
    } else {
        Err(format!(
            "no model '{model}' in {} (scripts/fetch-models.sh fetches tiny.en and base)",
            models.display()
        ))
    }
}

/// The whole recording, split at its pauses into windows, decoded in order
/// and stitched.
fn transcribe(engine: &Engine, samples: &[f32], opts: &Options) -> Result<Transcript, String> {
    let window_s = (N_FRAMES * HOP_LENGTH) as f64 / SAMPLE_RATE as f64;
    let chunks = split_at_silences(samples, SAMPLE_RATE as u32, window_s);
    engine
        .transcribe_chunks(samples, chunks, opts)
        .map_err(|e| e.to_string())
}

struct Args {
    model: String,
    audio: PathBuf,
    language: Option<String>,
    bench: Option<usize>,
    save_pcm: Option<PathBuf>,
    timestamps: bool,
    condition: bool,
    f32_projection: bool,
    integer_encoder: bool,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Option<Args> {
    let mut it = args.into_iter();
    let (mut positional, mut language, mut bench, mut save_pcm) = (Vec::new(), None, None, None);
    let mut model = DEFAULT_MODEL.to_owned();
    let (mut timestamps, mut condition, mut f32_projection) = (true, true, false);
    let mut integer_encoder = false;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--model" => model = it.next()?,
            "--language" => language = Some(it.next()?),
            "--bench" => bench = Some(it.next()?.parse().ok()?),
            "--save-pcm" => save_pcm = Some(PathBuf::from(it.next()?)),
            "--no-timestamps" => timestamps = false,
            "--no-condition" => condition = false,
            "--f32-projection" => f32_projection = true,
            "--integer-encoder" => integer_encoder = true,
            _ => positional.push(PathBuf::from(a)),
        }
    }
    let [audio] = <[PathBuf; 1]>::try_from(positional).ok()?;
    Some(Args {
        model,
        audio,
        language,
        bench,
        save_pcm,
        timestamps,
        condition,
        f32_projection,
        integer_encoder,
    })
}

fn run(args: Args) -> Result<(), String> {
    // The audio first: a file it cannot read fails before a model loads.
    let audio = std::fs::read(&args.audio).map_err(|e| format!("{}: {e}", args.audio.display()))?;
    let samples =
        audio::for_whisper(&audio).map_err(|e| format!("{}: {e}", args.audio.display()))?;
    let t0 = Instant::now();
    let mut engine = Engine::from_dir(&model_dir(&args.model)?)?;
    if args.f32_projection {
        engine
            .model
            .decoder
            .set_int8_projection(false)
            .map_err(|e| e.to_string())?;
    }
    if args.integer_encoder {
        engine
            .model
            .encoder
            .set_integer(true)
            .map_err(|e| e.to_string())?;
    }
    let load_s = t0.elapsed().as_secs_f64();
    let duration = samples.len() as f64 / SAMPLE_RATE as f64;
    if let Some(p) = &args.save_pcm {
        let raw: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(p, raw).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let opts = Options {
        language: args.language,
        timestamps: args.timestamps,
        condition_on_previous_text: args.condition,
        ..Options::default()
    };
    let runs = args.bench.unwrap_or(1).max(1);
    let mut best: Option<(f64, _)> = None;
    for _ in 0..runs {
        let t = Instant::now();
        let tr = transcribe(&engine, &samples, &opts)?;
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
        // What the fallback did, window by window: a window decoded at a
        // higher temperature was decoded more than once.
        for w in &tr.windows {
            eprintln!(
                "window at {:.2} s: temperature {:.1}, avg logprob {:.3}, compression ratio {:.2}",
                w.start, w.result.temperature, w.result.avg_logprob, w.result.compression_ratio
            );
        }
    }
    Ok(())
}

pub const USAGE: &str = "potluck transcribe FILE.ogg|FILE.wav [--model tiny.en|base|DIR] [--language CODE] [--no-timestamps] [--no-condition] [--f32-projection] [--integer-encoder] [--bench N] [--save-pcm PATH]";

pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let Some(args) = parse_args(args) else {
        eprintln!("usage: {USAGE}");
        return ExitCode::from(2);
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("potluck transcribe: {e}");
            ExitCode::FAILURE
        }
    }
}
