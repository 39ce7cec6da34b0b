// Time per tile of the widget's WebGPU Mandelbrot (static/kernels/mandelbrot.wgsl,
// 16 tiles of 48 × 48, 256 iterations), in the browser and natively, in the
// same run: Potluck's worker in headless Chromium's WebGPU (SwiftShader, a
// GPU in software) against `run-kernel` through wgpu on Vulkan (Mesa's
// lavapipe here). Both run the same Rust runner and the same shader.
//
//   node scripts/bench-kernel.mjs
//
// Needs dist/ (scripts/build.sh) and mesa-vulkan-drivers (scripts/setup.sh);
// builds run-kernel in release. Prints a table.

import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

import { WEBGPU_ARGS, launchBrowser } from "../tests/support/browser.mjs";
import { ROOT } from "../tests/support/pool-room.mjs";
import { serveStatic } from "../tests/support/static-server.mjs";

const TILES = 4;
const SIZE = 48;
const MAX_ITER = 256;

/** The same task as the widget's button (widget/src/ui/gpu_demo.rs). */
async function mandelbrot() {
  const chunks = [];
  for (let i = 0; i < TILES * TILES; i++) chunks.push([i % TILES, Math.floor(i / TILES), SIZE, TILES, (-4096) >>> 0, 0, 3 << 13, MAX_ITER]);
  return {
    wgsl: await readFile(join(ROOT, "static/kernels/mandelbrot.wgsl"), "utf8"),
    entry: "main", workgroups: [SIZE / 8, SIZE / 8, 1], output_words: SIZE * SIZE / 4, chunks,
    output: { tile: { size: SIZE } },
  };
}

/** Each tile's milliseconds in Potluck's worker, one after another. */
async function inBrowser(task) {
  const server = await serveStatic({ root: join(ROOT, "dist") });
  const browser = await launchBrowser({ args: WEBGPU_ARGS });
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}index.html`);
    return await page.evaluate(async (task) => {
      const worker = new Worker("worker.js");
      const next = () => new Promise((resolve) => worker.addEventListener("message", (e) => resolve(JSON.parse(e.data)), { once: true }));
      const ready = await next();
      if (ready.type !== "ready") throw new Error(JSON.stringify(ready));
      const ms = [];
      for (let i = 0; i < task.chunks.length; i++) {
        const started = performance.now();
        worker.postMessage(JSON.stringify({ type: "run", job: i + 1, work: { kind: "kernel", params: { ...task, chunks: [task.chunks[i]] } } }));
        const reply = await next();
        if (reply.type !== "done") throw new Error(JSON.stringify(reply));
        ms.push(performance.now() - started);
      }
      return ms;
    }, task);
  } finally {
    await browser.close();
    await server.close();
  }
}

function natively(task) {
  execFileSync("cargo", ["build", "--offline", "--locked", "--release", "-q", "-p", "potluck-worker", "--bin", "run-kernel"], { cwd: ROOT, stdio: "inherit" });
  const out = JSON.parse(execFileSync(join(ROOT, "target/release/run-kernel"), { input: JSON.stringify(task) }));
  return { adapter: out.adapter, ms: out.ms };
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const task = await mandelbrot();
const browser = await inBrowser(task);
const native = natively(task);
console.log(`\n${TILES * TILES} tiles of ${SIZE}×${SIZE}, ${MAX_ITER} iterations, one after another\n`);
console.log("| where | first tile (with compilation) | later tiles, mean | ratio to native |");
console.log("|---|---|---|---|");
const later = (ms) => mean(ms.slice(1));
console.log(`| browser worker, WebGPU (SwiftShader) | ${browser[0].toFixed(1)} ms | ${later(browser).toFixed(1)} ms | ${(later(browser) / later(native.ms)).toFixed(2)}× |`);
console.log(`| native, wgpu on Vulkan (${native.adapter}) | ${native.ms[0].toFixed(1)} ms | ${later(native.ms).toFixed(1)} ms | 1.00× |`);
