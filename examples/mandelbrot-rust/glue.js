// Potluck task: Mandelbrot tiles, computed by Rust compiled to wasm.
//
// build.sh writes task.js from this file with the wasm inlined below (as
// base64), so the script's integrity hash covers the wasm too. Parameters:
// {"cx": "-0.5", "cy": "0", "span": "3", "tiles": 4, "size": 32, "max_iter": 200}
// (Matrix events carry no fractional numbers: coordinates travel as strings);
// split: a list of {"x": column, "y": row}, one per tile. Output: the tile's
// pixels (escape times scaled to 0-255), base64.
"use strict";

const WASM_BASE64 = "__WASM_BASE64__";
let exports = null;

function wasm() {
  if (!exports) {
    const bytes = Uint8Array.from(atob(WASM_BASE64), (c) => c.charCodeAt(0));
    exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports;
  }
  return exports;
}

self.onmessage = ({ data }) => {
  if (data.type !== "run") return;
  const { tiles, size, max_iter: maxIter } = data.args;
  const [cx, cy, span] = [data.args.cx, data.args.cy, data.args.span].map(Number);
  const { x, y } = data.chunk;
  const numbers = [tiles, size, maxIter, x, y];
  if (!numbers.every((n) => Number.isInteger(n) && n >= 0) || size > 48 || ![cx, cy, span].every(Number.isFinite)) {
    self.postMessage({ type: "error", reason: "cx, cy and span must be numbers (as strings); tiles, size (at most 48), max_iter, x and y whole numbers" });
    return;
  }
  const { tile, memory } = wasm();
  const at = tile(cx, cy, span, tiles, size, maxIter, x, y);
  const pixels = new Uint8Array(memory.buffer, at, size * size);
  let binary = "";
  for (const p of pixels) binary += String.fromCharCode(p);
  self.postMessage({ type: "result", output: { x, y, size, pixels: btoa(binary) } });
};
