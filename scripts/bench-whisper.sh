#!/usr/bin/env bash
# Native real-time factor of our Whisper engine against faster-whisper on the
# same audio, weights and decoding options (greedy, timestamps, temperature
# fallback), one CPU thread each.
#   scripts/bench-whisper.sh [tiny.en|base] [RUNS]
# Speech is espeak-ng's reading of the five test sentences (17.4 s). Prints
# both engines' best-of-RUNS figures and the speed ratio. Needs the models
# (scripts/fetch-models.sh) and installs faster-whisper on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-tiny.en}"
runs="${2:-3}"
models="$(scripts/fetch-models.sh)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
text="The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring these things with her from the store. The meeting will start at nine o'clock tomorrow morning. We need to finish the report before the end of the week. Thank you all for coming today."
espeak-ng -v en-us -s 150 -w "$tmp/clip.wav" "$text"

cargo build --offline --locked --release -j 2 -p potluck-node --bin potluck >&2
lang=()
[ "$model" = base ] && lang=(--language en)
echo "== ours ($model, candle f32, RAYON_NUM_THREADS=1)"
RAYON_NUM_THREADS=1 target/release/potluck transcribe "$tmp/clip.wav" --model "$models/$model" \
  "${lang[@]}" --bench "$runs" --save-pcm "$tmp/clip.f32" 2> "$tmp/ours.txt"
cat "$tmp/ours.txt"
echo "== faster-whisper ($model, 1 thread)"
scripts/reference-whisper.sh "$models/$model" "$tmp/clip.f32" "$tmp" "${lang[@]}" --timestamps --bench
python3 - "$tmp/ours.txt" "$tmp/result.json" <<'PY'
import json, re, sys
ours = float(re.search(r"RTF ([0-9.]+)", open(sys.argv[1]).read()).group(1))
ref = json.load(open(sys.argv[2]))
for ct in ["float32", "int8"]:
    r = ref[ct]["rtf"]
    print(f"faster-whisper {ct:7s} RTF {r:.4f}; ours {ours:.4f} = {r / ours:.2f}x faster-whisper's speed")
PY
