#!/usr/bin/env bash
# Builds the Rust example task into one script, task.js, with the wasm inlined,
# and prints the integrity hash a moderator allows.
#   examples/mandelbrot-rust/build.sh [output folder]   (default dist/examples/mandelbrot-rust)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-dist/examples/mandelbrot-rust}
cargo build --offline --locked --release --target wasm32-unknown-unknown -p potluck-example-mandelbrot --lib
wasm=target/wasm32-unknown-unknown/release/potluck_example_mandelbrot.wasm
mkdir -p "$out"
node_modules/.bin/wasm-opt -O3 "$wasm" -o "$out/task.wasm"
node -e '
  const fs = require("fs");
  const [glue, wasm, out] = process.argv.slice(1);
  const script = fs.readFileSync(glue, "utf8").replace("__WASM_BASE64__", fs.readFileSync(wasm).toString("base64"));
  fs.writeFileSync(out, script);
' examples/mandelbrot-rust/glue.js "$out/task.wasm" "$out/task.js"
rm "$out/task.wasm"
node -e '
  const hash = require("crypto").createHash("sha384").update(require("fs").readFileSync(process.argv[1]));
  console.log(`${process.argv[1]}: sha384-${hash.digest("base64")}`);
' "$out/task.js"
