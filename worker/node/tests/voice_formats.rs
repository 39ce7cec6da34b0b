//! Voice messages as users have them: espeak-ng speech encoded by opusenc
//! (libopus, 32 kbit/s, as Element's recorder encodes) read back by
//! `audio::read`, against the WAV it was encoded from and against libopus's
//! own decode (`opusdec`), mono and stereo; then `potluck transcribe` on the
//! Ogg Opus and on the WAV.
//!
//! Needs `espeak-ng` and opus-tools (`scripts/setup.sh` installs both) and,
//! for the command line, tiny.en in `~/.cache/potluck/models`
//! (`scripts/fetch-models.sh`); a missing one fails the test unless the
//! tests were built with `POTLUCK_ALLOW_MISSING_TEST_DATA=1` (README, "Tests").
#![cfg(not(target_arch = "wasm32"))]

use potluck_worker::audio::{self, resample::resample, Audio};
use potluck_worker::catalog::local_models_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use whisper::wer::wer;

/// Five sentences, 17 s: long enough for several Ogg pages and pauses.
const TEXT: &str = "The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring these things with her from the store. The meeting will start at nine o'clock tomorrow morning. We need to finish the report before the end of the week. Thank you all for coming today.";

/// Envelopes are compared at this rate, in 10 ms windows.
const ENVELOPE_RATE: u32 = 16_000;
const WINDOW: usize = 160;

fn missing(what: &str) {
    assert!(
        option_env!("POTLUCK_ALLOW_MISSING_TEST_DATA").is_some(),
        "{what}; set POTLUCK_ALLOW_MISSING_TEST_DATA=1 to skip instead"
    );
    eprintln!("SKIPPED: {what}");
}

/// A fresh folder per call: tests run in parallel threads of one process.
fn scratch() -> PathBuf {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("potluck-voice-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// None when the program is not installed.
fn run(command: &mut Command) -> Option<Output> {
    let out = command.output().ok()?;
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out)
}

/// A 16-bit PCM WAV.
fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
    let data = (samples.len() * 2) as u32;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
    out.extend_from_slice(&(2 * channels).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, out).unwrap();
}

/// The WAV's 16-bit samples (interleaved) and rate.
fn wav16(path: &Path) -> (u32, Vec<i16>) {
    let bytes = std::fs::read(path).unwrap();
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    let data = bytes.windows(4).position(|w| w == b"data").unwrap() + 8;
    let samples = bytes[data..]
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    (rate, samples)
}

struct Clip {
    dir: PathBuf,
    wav: PathBuf,
    ogg: PathBuf,
}

/// [`TEXT`] spoken, in mono or as stereo (the right channel an echo of the
/// left, 12 ms later and quieter, so that the channels differ), as WAV and
/// as Ogg Opus. None when a tool is missing.
fn clip(stereo: bool) -> Option<Clip> {
    let dir = scratch();
    let mono = dir.join("mono.wav");
    let wav = dir.join("speech.wav");
    let ogg = dir.join("speech.ogg");
    run(Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&mono)
        .arg(TEXT))?;
    if stereo {
        let (rate, left) = wav16(&mono);
        let delay = rate as usize * 12 / 1000;
        let right = |i: usize| {
            i.checked_sub(delay)
                .map_or(0, |j| (f32::from(left[j]) * 0.6) as i16)
        };
        let both: Vec<i16> = (0..left.len()).flat_map(|i| [left[i], right(i)]).collect();
        write_wav(&wav, rate, 2, &both);
    } else {
        std::fs::rename(&mono, &wav).unwrap();
    }
    run(Command::new("opusenc")
        .args(["--quiet", "--bitrate", "32"])
        .arg(&wav)
        .arg(&ogg))?;
    Some(Clip { dir, wav, ogg })
}

fn read(path: &Path) -> Audio {
    audio::read(&std::fs::read(path).unwrap()).unwrap()
}

/// libopus's decode of the same file (`opusdec`), a float WAV at 48 kHz.
fn opusdec(clip: &Clip) -> Option<PathBuf> {
    let out = clip.dir.join("libopus.wav");
    run(Command::new("opusdec")
        .args(["--quiet", "--rate", "48000", "--float"])
        .arg(&clip.ogg)
        .arg(&out))?;
    Some(out)
}

fn envelope(audio: &Audio) -> Vec<f64> {
    resample(&audio.samples, audio.rate, ENVELOPE_RATE)
        .chunks(WINDOW)
        .map(|w| {
            (w.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / w.len() as f64).sqrt()
        })
        .collect()
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let mean = |x: &[f64]| x[..n].iter().sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        ab += (a[i] - ma) * (b[i] - mb);
        aa += (a[i] - ma).powi(2);
        bb += (b[i] - mb).powi(2);
    }
    ab / (aa * bb).sqrt()
}

/// Signal-to-difference ratio of `ours` against `reference`, in dB.
fn snr_db(ours: &[f32], reference: &[f32]) -> f64 {
    let (mut signal, mut noise) = (0.0, 0.0);
    for (&o, &r) in ours.iter().zip(reference) {
        signal += f64::from(r).powi(2);
        noise += f64::from(o - r).powi(2);
    }
    10.0 * (signal / noise.max(1e-30)).log10()
}

fn check_decode(stereo: bool) {
    let Some(clip) = clip(stereo) else {
        return missing(
            "espeak-ng or opus-tools is not installed (scripts/setup.sh installs them)",
        );
    };
    let (wav, ogg) = (read(&clip.wav), read(&clip.ogg));
    assert_eq!(ogg.rate, 48_000);
    let seconds = |a: &Audio| a.samples.len() as f64 / f64::from(a.rate);
    let drift_ms = (seconds(&ogg) - seconds(&wav)).abs() * 1000.0;
    let envelopes = correlation(&envelope(&ogg), &envelope(&wav));
    let Some(libopus) = opusdec(&clip) else {
        return missing("opusdec is not installed (scripts/setup.sh installs opus-tools)");
    };
    // Our WAV reader averages opusdec's channels as ours does.
    let libopus = read(&libopus).samples;
    let snr = snr_db(&ogg.samples, &libopus);
    eprintln!(
        "{}: {:.3} s (WAV {:.3} s), envelope correlation with the WAV {envelopes:.4}, {snr:.1} dB from libopus",
        if stereo { "stereo" } else { "mono" },
        seconds(&ogg),
        seconds(&wav)
    );
    // Pre-skip and the end's granule position trim the decode to the input's length.
    assert!(
        drift_ms < 1.0,
        "length differs from the WAV's by {drift_ms:.2} ms"
    );
    assert!(envelopes >= 0.99, "envelope correlation {envelopes}");
    assert_eq!(
        ogg.samples.len(),
        libopus.len(),
        "length differs from libopus's"
    );
    // opus-rs follows libopus's float decoder; measured ~155 dB (float rounding).
    assert!(snr >= 60.0, "{snr:.1} dB from libopus's decode");
    let _ = std::fs::remove_dir_all(&clip.dir);
}

#[test]
fn mono_ogg_opus_decodes_like_libopus_and_like_the_wav_it_came_from() {
    check_decode(false);
}

#[test]
fn stereo_ogg_opus_decodes_like_libopus_and_like_the_wav_it_came_from() {
    check_decode(true);
}

/// `potluck transcribe FILE --no-timestamps`: its exit status, stdout and stderr.
fn transcribe(file: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_potluck"))
        .arg("transcribe")
        .arg(file)
        .args(["--model", "tiny.en", "--no-timestamps"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_once(']').map(|(_, text)| text.trim().to_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    (
        out.status.success(),
        text,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Lossy coding moves a word or two where tiny.en hesitates (espeak-ng's
/// first sentence), so the Ogg Opus is held to libopus's decode of itself,
/// word for word, and to the WAV's word error rate within this margin.
const WER_MARGIN: f64 = 0.05;

#[test]
fn transcribing_the_ogg_opus_gives_the_words_of_libopus_and_of_the_wav() {
    if !local_models_dir().join("tiny.en/model.bin").exists() {
        return missing("no tiny.en model (run scripts/fetch-models.sh)");
    }
    for stereo in [false, true] {
        let Some((clip, libopus)) = clip(stereo).and_then(|c| opusdec(&c).map(|l| (c, l))) else {
            return missing(
                "espeak-ng or opus-tools is not installed (scripts/setup.sh installs them)",
            );
        };
        let (wav_ok, from_wav, wav_err) = transcribe(&clip.wav);
        let (ogg_ok, from_ogg, ogg_err) = transcribe(&clip.ogg);
        let (libopus_ok, from_libopus, libopus_err) = transcribe(&libopus);
        assert!(
            wav_ok && ogg_ok && libopus_ok,
            "{wav_err}\n{ogg_err}\n{libopus_err}"
        );
        let (wer_wav, wer_ogg) = (wer(TEXT, &from_wav), wer(TEXT, &from_ogg));
        eprintln!(
            "stereo {stereo}: WER {wer_ogg:.3} from the Ogg Opus, {wer_wav:.3} from the WAV\n  Ogg Opus: {from_ogg}\n  WAV:      {from_wav}"
        );
        assert_eq!(from_ogg, from_libopus, "ours and libopus's decodes");
        assert!(
            wer_ogg <= wer_wav + WER_MARGIN,
            "WER {wer_ogg:.3} from the Ogg Opus, {wer_wav:.3} from the WAV"
        );
        let _ = std::fs::remove_dir_all(&clip.dir);
    }
}

#[test]
fn transcribing_another_format_names_the_formats_it_reads() {
    let dir = scratch();
    let mp3 = dir.join("voice.mp3");
    std::fs::write(&mp3, b"ID3\x04\0\0\0\0\0\0 not really an mp3").unwrap();
    let (ok, _, stderr) = transcribe(&mp3);
    assert!(!ok);
    assert!(
        stderr.contains("voice.mp3: not a voice message Potluck reads (MP3): it reads Ogg Opus (what Element sends) and WAV"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
