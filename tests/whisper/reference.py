"""faster-whisper on the same audio as our engine, for the native tests and benchmarks.

usage: reference.py MODEL_DIR SAMPLES_F32 OUT_DIR [--language en] [--timestamps] [--bench] [--only float32|int8] [--condition-on-previous-text [--also-unconditioned]]

SAMPLES_F32 is raw little-endian float32, 16 kHz mono. Writes to OUT_DIR:
  features.f32   faster-whisper's log-mel of the whole file ([80, frames] row-major)
  result.json    transcripts (float32 and int8), timings, frame count
Decoding options match our engine: greedy with openai's temperature fallback,
timestamps only with --timestamps, no VAD, one CPU thread. `--only` runs one
compute type (to measure its memory alone). Without conditioning on previous
text unless --condition-on-previous-text (faster-whisper's default);
--also-unconditioned then adds "unconditioned" to each compute type's entry:
the same run without, so that one call measures both.
"""
import json
import sys
import time

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.feature_extractor import FeatureExtractor


def run(model, audio, language, timestamps, condition, runs):
    """Transcribes `runs` times; the transcript and the best time."""
    best = None
    for _ in range(runs):
        t0 = time.perf_counter()
        segments, _info = model.transcribe(
            audio,
            beam_size=1,
            language=language,
            without_timestamps=not timestamps,
            condition_on_previous_text=condition,
            vad_filter=False,
        )
        segments = list(segments)
        text = " ".join(s.text.strip() for s in segments)
        elapsed = time.perf_counter() - t0
        best = elapsed if best is None else min(best, elapsed)
    return {
        "text": text,
        "seconds": best,
        "rtf": best / (len(audio) / 16000),
        "temperatures": [s.temperature for s in segments],
        "avg_logprobs": [s.avg_logprob for s in segments],
    }


def main():
    args = sys.argv[1:]
    model_dir, samples_path, out_dir = args[:3]
    language = None
    if "--language" in args:
        language = args[args.index("--language") + 1]
    bench = "--bench" in args
    timestamps = "--timestamps" in args
    condition = "--condition-on-previous-text" in args
    audio = np.fromfile(samples_path, dtype="<f4")
    duration = len(audio) / 16000

    features = FeatureExtractor(feature_size=80)(audio)
    features.astype("<f4").tofile(f"{out_dir}/features.f32")

    result = {"frames": int(features.shape[-1]), "duration": duration}
    compute_types = ["float32", "int8"]
    if "--only" in args:
        compute_types = [args[args.index("--only") + 1]]
    for compute_type in compute_types:
        t0 = time.perf_counter()
        model = WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=1)
        load = time.perf_counter() - t0
        entry = run(model, audio, language, timestamps, condition, 3 if bench else 1)
        entry["load_seconds"] = load
        if condition and "--also-unconditioned" in args:
            entry["unconditioned"] = run(model, audio, language, timestamps, False, 1)
        result[compute_type] = entry
    with open(f"{out_dir}/result.json", "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
