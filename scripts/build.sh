#!/usr/bin/env bash
# Builds the widget and its worker into dist/, ready to serve as static files.
#   scripts/build.sh          release: size-optimised, wasm-opt -Oz
#   scripts/build.sh --dev    debug: fast, unoptimised
#   scripts/build.sh --node   only the `potluck` command for this machine
#                             (`potluck node`, README): target/native/potluck
# Offline once `scripts/setup.sh` has fetched the dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if [ "${1:-}" = "--node" ]; then
  cargo build --offline --locked --profile native -p potluck-node --bin potluck
  printf 'built target/native/potluck: %d bytes\n' "$(stat -c %s target/native/potluck)"
  exit 0
fi

# The UI downloads in every friend's tab, so it has a profile of its own that
# also builds the protocol crate for size (Cargo.toml's `ui`); the worker,
# where Whisper runs, is built for speed.
ui_profile=ui worker_profile=release
[ "${1:-}" = "--dev" ] && ui_profile=dev worker_profile=dev
out=dist
profile_dir() { [ "$1" = dev ] && echo debug || echo "$1"; }
ui_dir=target/wasm32-unknown-unknown/$(profile_dir $ui_profile)
worker_dir=target/wasm32-unknown-unknown/$(profile_dir $worker_profile)

want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
if [ "$have" != "$want" ]; then
  echo "wasm-bindgen CLI is '$have' but Cargo.lock pins $want: run scripts/setup.sh" >&2
  exit 1
fi

t0=$(date +%s.%N)
# The release UI compiles its own standard library, for size like the rest
# of the UI, where the prebuilt one is compiled for speed (312 -> 290 KB
# gzipped); that needs the pinned nightly cargo and the library's source.
# Its panic messages keep their text but not their file and line; `--dev`
# keeps both.
own_std=no
if [ "$ui_profile" = ui ]; then
  # Asked without installing: rustup would otherwise fetch a missing toolchain here.
  ui_sysroot=$(RUSTUP_AUTO_INSTALL=0 rustc "+$POTLUCK_UI_TOOLCHAIN" --print sysroot 2>/dev/null || true)
  library="$ui_sysroot/lib/rustlib/src/rust/library"
  if [ -n "$ui_sysroot" ] && [ -d "$library" ] &&
    cargo "+$POTLUCK_UI_TOOLCHAIN" fetch --offline --locked --manifest-path "$library/Cargo.toml" 2>/dev/null; then
    own_std=yes
  else
    echo "warning: no $POTLUCK_UI_TOOLCHAIN with rust-src and its dependencies (scripts/setup.sh installs them): the UI is built with the prebuilt standard library, about 22 KB larger gzipped" >&2
  fi
fi
if [ "$own_std" = yes ]; then
  RUSTFLAGS="${RUSTFLAGS:-} -Zlocation-detail=none" \
    cargo "+$POTLUCK_UI_TOOLCHAIN" build --offline --locked --profile ui --target wasm32-unknown-unknown \
    -p potluck-widget --bin potluck-widget \
    -Z build-std=std,panic_abort -Z build-std-features=optimize_for_size
else
  cargo build --offline --locked --profile "$ui_profile" --target wasm32-unknown-unknown \
    -p potluck-widget --bin potluck-widget
fi
# The worker's module needs SIMD128 anyway (its int8 kernels and candle's
# gemm use it), so all of it is compiled with SIMD128 and LLVM vectorises
# candle's other loops too. The UI stays baseline wasm.
# POTLUCK_WORKER_FEATURES=benchmark adds the in-browser Whisper benchmark.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+simd128" \
  cargo build --offline --locked --profile "$worker_profile" --target wasm32-unknown-unknown \
  -p potluck-worker --lib ${POTLUCK_WORKER_FEATURES:+--features "potluck-worker/$POTLUCK_WORKER_FEATURES"}
t1=$(date +%s.%N)

rm -rf "$out" && mkdir -p "$out"
wasm-bindgen --no-typescript --target web --out-dir "$out" "$ui_dir/potluck-widget.wasm"
wasm-bindgen --no-typescript --target no-modules --out-dir "$out" "$worker_dir/potluck_worker.wasm"

if [ "$worker_profile" = release ]; then
  for wasm in "$out"/*_bg.wasm; do
    # The UI for size; the worker, where Whisper runs, for speed.
    level=-Oz; [[ "$wasm" == *potluck_worker* ]] && level=-O3
    node_modules/.bin/wasm-opt "$level" --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-reference-types --enable-sign-ext --enable-mutable-globals --enable-multivalue \
      --enable-simd \
      "$wasm" -o "$wasm"
  done
fi

# The real matrix-widget-api, as the global `mxwidgets` the Rust bindings use.
node_modules/.bin/esbuild node_modules/matrix-widget-api/lib/index.js --bundle --minify \
  --format=iife --global-name=mxwidgets --log-level=warning --outfile="$out/matrix-widget-api.js"
cp -r static/* "$out/"
# The stylesheet with Element's design tokens (npm, Apache-2.0) bundled in.
node_modules/.bin/esbuild static/style.css --bundle --minify --log-level=warning --outfile="$out/style.css"
cargo run --offline --locked --quiet -p potluck-manifest --bin potluck-capabilities > "$out/capabilities.js"
# The example tasks, for the demo to allow and run.
for example in sum-of-squares word-count; do
  mkdir -p "$out/examples/$example"
  cp "examples/$example/task.js" "$out/examples/$example/"
done
examples/mandelbrot-rust/build.sh "$out/examples/mandelbrot-rust" >/dev/null
# What a moderator pastes into "Allow a script" to run them.
for task in "$out"/examples/*/task.js; do
  printf '  %-44s sha384-%s\n' "${task#"$out"/}" \
    "$(node -e 'process.stdout.write(require("crypto").createHash("sha384").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$task")"
done
t2=$(date +%s.%N)

printf 'built %s in %.1f s (cargo %.1f s)\n' "$worker_profile" "$(echo "$t2 - $t0" | bc)" "$(echo "$t1 - $t0" | bc)"
for f in "$out"/potluck-widget_bg.wasm "$out"/potluck_worker_bg.wasm "$out"/matrix-widget-api.js; do
  printf '  %-32s %8d bytes, %7d gzipped\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(gzip -9c "$f" | wc -c)"
done
