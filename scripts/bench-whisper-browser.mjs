// Whisper speed and memory, side by side in one run on the same audio and
// weights: our engine in a Chromium Web Worker (the release worker a
// contributing node runs, one thread, no cross-origin isolation), the same
// engine natively, faster-whisper (float32 and int8, one thread), and
// transformers.js (fp32 and q8, ONNX Runtime Web's wasm, one thread, in a
// Chromium Web Worker too).
//
//   node scripts/bench-whisper-browser.mjs [--model tiny.en|base] [--runs N] [--clip varied|repeated] [--browser-only] [--no-build]
//
// The audio is espeak-ng reading nine different sentences (about 35 s, so
// two 30 s windows; `--clip repeated`: five sentences twice, see CLIP). Greedy decoding with timestamps for every engine, and
// the temperature fallback for all but transformers.js, which has none. Prints
// a table: real-time factor (best of N, model load excluded), encoder
// seconds, decoder milliseconds per token, peak resident memory, and each
// engine's speed as a fraction of faster-whisper int8's.
// Needs dist/ built with the benchmark's entry point
// (POTLUCK_WORKER_FEATURES=benchmark scripts/build.sh), the models (scripts/fetch-models.sh),
// espeak-ng; installs faster-whisper on first use (scripts/reference-whisper.sh)
// and exports transformers.js's ONNX files from the same weights
// (scripts/transformers-js-model.sh, minutes the first time).
// --no-build uses target/release/potluck as it is (no cargo build).

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

import { launchBrowser } from "../tests/support/browser.mjs";
import { serveStatic } from "../tests/support/static-server.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const option = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const MODEL = option("--model", "tiny.en");
const RUNS = Number(option("--runs", "3"));
/** Only our engine in the browser: no faster-whisper, no transformers.js (quicker, while working on it). */
const BROWSER_ONLY = process.argv.includes("--browser-only");
const NO_BUILD = process.argv.includes("--no-build");
const FIVE_SENTENCES =
  "The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring these things with her from the store. " +
  "The meeting will start at nine o'clock tomorrow morning. We need to finish the report before the end of the week. Thank you all for coming today. ";
/**
 * What is spoken. `varied` (the default): the first nine sentences of the
 * voice-message test, each different. `repeated`: the five test sentences
 * twice, the clip of earlier runs. Its first window's transcript is the same
 * paragraph twice, whose compression ratio (2.30 in faster-whisper's terms)
 * sits just under the 2.4 that makes Whisper decode a window again: a word
 * more or less repeated then decides whether an engine decodes once or twice,
 * which measures that threshold rather than speed.
 */
const CLIP = option("--clip", "varied");
const VOICE_MESSAGE = (await readFile(join(ROOT, "tests/fixtures/speech/voice-message.txt"), "utf8")).trim().split("\n");
const SPOKEN = { varied: VOICE_MESSAGE.slice(0, 9).join(" "), repeated: FIVE_SENTENCES + FIVE_SENTENCES }[CLIP];
if (!SPOKEN) throw new Error(`--clip is varied or repeated, not ${CLIP}`);

const run = (cmd, args, opts = {}) =>
  execFileSync(cmd, args, { cwd: ROOT, encoding: "utf8", maxBuffer: 1 << 26, ...opts });

/** Runs a command under GNU time: its output and its peak resident memory in MB. */
function withPeak(cmd, args) {
  // One thread, as faster-whisper runs (candle natively uses rayon).
  const env = { ...process.env, RAYON_NUM_THREADS: "1" };
  const r = spawnSync("/usr/bin/time", ["-v", cmd, ...args], { cwd: ROOT, encoding: "utf8", maxBuffer: 1 << 26, env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  const peakKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN);
  return { stdout: r.stdout, stderr: r.stderr, peakMb: peakKb / 1024 };
}

/**
 * Peak resident memory (VmHWM) of Chromium's renderer processes, in MB: only
 * those started from this process, not another browser on the machine (a
 * test run beside this one).
 */
async function rendererPeakMb() {
  const parent = new Map();
  const renderers = [];
  for (const pid of await readdir("/proc").catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    // The command name in parentheses may hold spaces: ppid is the 2nd field after it.
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    parent.set(pid, stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes("--type=renderer")) renderers.push(pid);
  }
  const ours = (pid) => {
    for (let p = pid; p && p !== "0"; p = parent.get(p)) if (p === String(process.pid)) return true;
    return false;
  };
  let peak = 0;
  for (const pid of renderers.filter(ours)) {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    peak = Math.max(peak, kb / 1024);
  }
  return peak;
}

/**
 * Runs `worker` (served from `dir` with `mounts`) in a fresh headless
 * Chromium, so that each engine's memory peak is its own: the worker posts
 * `{ready}`, gets `message` with the clip's samples, and answers `{json}` or
 * `{error}`. Returns the parsed JSON and the renderer's peak memory.
 */
async function inChromium(dir, mounts, worker, message) {
  const server = await serveStatic({ root: dir, mounts });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}/bench.html`);
    const reply = await page.evaluate(async ({ url, type, message }) => {
      const pcm = new Float32Array(await (await fetch("/clip.f32")).arrayBuffer());
      const worker = new Worker(url, { type });
      return new Promise((resolve) => {
        worker.onmessage = ({ data }) => {
          // Strings are our worker's job-loop messages ("ready"), not replies.
          if (typeof data === "string") return;
          if (data.ready) worker.postMessage({ ...message, pcm }, [pcm.buffer]);
          else resolve(data);
        };
        worker.onerror = (e) => resolve({ error: e.message });
      });
    }, { ...worker, message });
    if (reply.error) throw new Error(`in the browser (${worker.url}): ${reply.error}`);
    return { ...JSON.parse(reply.json), peakMb: await rendererPeakMb() };
  } finally {
    await browser.close();
    await server.close();
  }
}

async function inBrowser(dir, models) {
  await writeFile(join(dir, "bench-worker.js"), `
importScripts("/dist/potluck_worker.js");
// The worker's own job loop installs its handler when the wasm starts: replace it.
wasm_bindgen({ module_or_path: "/dist/potluck_worker_bg.wasm" }).then(() => {
  self.onmessage = async ({ data }) => {
    try {
      if (!wasm_bindgen.benchmarkTranscribe) {
        throw new Error("dist/ has no benchmark: build it with POTLUCK_WORKER_FEATURES=benchmark scripts/build.sh");
      }
      const json = await wasm_bindgen.benchmarkTranscribe(data.model, "/models", data.pcm, data.runs);
      self.postMessage({ json });
    } catch (e) {
      self.postMessage({ error: String(e) });
    }
  };
  self.postMessage({ ready: true });
});`);
  const mounts = { "/dist/": join(ROOT, "dist"), "/models/": models };
  return inChromium(dir, mounts, { url: "/bench-worker.js", type: "classic" }, { model: MODEL, runs: RUNS });
}

/**
 * transformers.js 4 (`pipeline("automatic-speech-recognition")`) in a module
 * worker, as whisper-web runs it, on the ONNX files exported from our
 * weights. `dtype` "fp32" or "q8" picks onnx/*.onnx or onnx/*_quantized.onnx.
 */
async function transformersJs(dir, tjsModel, dtype) {
  await writeFile(join(dir, "tjs-worker.js"), `
import { env, pipeline } from "/tjs/transformers.js";
// Only the files served here: a relative localModelPath (with an absolute URL
// the tokenizer and preprocessor files are never fetched), no Cache Storage.
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = "/tjs-models/";
env.useBrowserCache = false;
env.useWasmCache = false;
env.backends.onnx.wasm.numThreads = 1;
// The build transformers.js fetches from a CDN for Chromium (asyncify), from npm.
env.backends.onnx.wasm.wasmPaths = {
  mjs: "/ort/ort-wasm-simd-threaded.asyncify.mjs",
  wasm: "/ort/ort-wasm-simd-threaded.asyncify.wasm",
};
self.onmessage = async ({ data: { model, dtype, language, pcm, runs } }) => {
  try {
    let start = performance.now();
    const asr = await pipeline("automatic-speech-recognition", model, { dtype, device: "wasm" });
    const load_s = (performance.now() - start) / 1000;
    // An English-only model takes no language or task (it throws).
    const options = { return_timestamps: true, chunk_length_s: 30, ...(language ? { language, task: "transcribe" } : {}) };
    const out = [];
    for (let i = 0; i < runs; i++) {
      start = performance.now();
      const { text } = await asr(pcm, options);
      out.push({ wall_s: (performance.now() - start) / 1000, text });
    }
    self.postMessage({ json: JSON.stringify({ load_s, runs: out }) });
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
};
self.postMessage({ ready: true });`);
  const tjs = join(tjsModel, "..", ".."); // ~/.cache/potluck/transformers-js
  const mounts = {
    "/tjs/": join(tjs, "node_modules/@huggingface/transformers/dist"),
    "/ort/": join(tjs, "node_modules/onnxruntime-web/dist"),
    "/tjs-models/": join(tjsModel, ".."),
  };
  const language = MODEL.endsWith(".en") ? null : "en";
  return inChromium(dir, mounts, { url: "/tjs-worker.js", type: "module" },
    { model: basename(tjsModel), dtype, language, runs: RUNS });
}

const dir = await mkdtemp(join(tmpdir(), "potluck-bench-whisper-"));
try {
  const models = run("scripts/fetch-models.sh", []).trim();
  run("espeak-ng", ["-v", "en-us", "-s", "150", "-w", join(dir, "clip.wav"), SPOKEN]);
  if (!NO_BUILD) {
    run("cargo", ["build", "--offline", "--locked", "--release", "-j", "2", "-p", "potluck-node", "--bin", "potluck"], { stdio: "ignore" });
  }
  const tjsModel = BROWSER_ONLY ? null : run("scripts/transformers-js-model.sh", [MODEL]).trim();
  await writeFile(join(dir, "bench.html"), "<!doctype html><title>bench</title>");
  const lang = MODEL === "base" ? ["--language", "en"] : [];

  const native = withPeak("target/release/potluck", ["transcribe", join(dir, "clip.wav"), "--model", join(models, MODEL),
    ...lang, "--bench", String(RUNS), "--save-pcm", join(dir, "clip.f32")]);
  const duration = (await readFile(join(dir, "clip.f32"))).length / 4 / 16_000;
  const nativeLine = /RTF ([0-9.]+) \(encoder ([0-9.]+) s, decoder ([0-9.]+) s = ([0-9.]+) ms\/token/.exec(native.stderr);
  if (!nativeLine) throw new Error(`unexpected output of potluck transcribe: ${native.stderr}`);

  const reference = {};
  for (const type of BROWSER_ONLY ? [] : ["float32", "int8"]) {
    const out = join(dir, type);
    run("mkdir", ["-p", out]);
    const r = withPeak("scripts/reference-whisper.sh", [join(models, MODEL), join(dir, "clip.f32"), out, ...lang,
      "--timestamps", "--bench", "--only", type, "--condition-on-previous-text"]);
    reference[type] = { ...JSON.parse(await readFile(join(out, "result.json"), "utf8"))[type], peakMb: r.peakMb };
  }

  const fastest = (runs) => runs.reduce((a, b) => (b.wall_s < a.wall_s ? b : a));
  const browser = await inBrowser(dir, models);
  const best = fastest(browser.runs);
  const bestF32 = fastest(browser.f32_encoder_runs);
  const spread = (runs) => runs.map((r) => (r.wall_s / duration).toFixed(3)).join(", ");
  // One browser after the other, never two at once: one thread each.
  const tjs = {};
  for (const dtype of BROWSER_ONLY ? [] : ["fp32", "q8"]) {
    const r = await transformersJs(dir, tjsModel, dtype);
    tjs[dtype] = { ...r, best: fastest(r.runs) };
  }

  const fwInt8 = reference.int8?.rtf;
  const rows = [
    ["ours, Chromium worker (wasm, SIMD128, integer encoder)", best.wall_s / duration, best.encoder_s, (best.decoder_s * 1000) / Math.max(1, best.tokens), browser.peakMb, "renderer process"],
    ["ours, same worker, encoder in f32 (not the default)", bestF32.wall_s / duration, bestF32.encoder_s, (bestF32.decoder_s * 1000) / Math.max(1, bestF32.tokens), browser.peakMb, "renderer process"],
    ["ours, native", Number(nativeLine[1]), Number(nativeLine[2]), Number(nativeLine[4]), native.peakMb, "process"],
    ...Object.entries(reference).map(([type, r]) => [`faster-whisper ${type}, native`, r.rtf, null, null, r.peakMb, "process"]),
    ...Object.entries(tjs).map(([dtype, r]) =>
      [`transformers.js ${dtype}, Chromium worker (ONNX Runtime Web, wasm)`, r.best.wall_s / duration, null, null, r.peakMb, "renderer process"]),
  ];
  const loads = [`ours ${browser.load_s.toFixed(2)} s`, ...Object.entries(tjs).map(([dtype, r]) => `transformers.js ${dtype} ${r.load_s.toFixed(2)} s`)];
  console.log(`\n${MODEL}, ${duration.toFixed(1)} s of espeak-ng speech, best of ${RUNS}, one thread each; model load in the browser: ${loads.join(", ")}\n`);
  console.log("| engine | RTF | encoder | decoder per token | peak memory | speed × faster-whisper int8 |");
  console.log("|---|---|---|---|---|---|");
  for (const [name, rtf, enc, tok, peak, what] of rows) {
    const cell = (v, unit, digits = 2) => (v == null ? "—" : `${v.toFixed(digits)} ${unit}`);
    console.log(`| ${name} | ${rtf.toFixed(3)} | ${cell(enc, "s")} | ${cell(tok, "ms", 1)} | ${peak.toFixed(0)} MB (${what}) | ${fwInt8 ? `${(fwInt8 / rtf).toFixed(2)}×` : "—"} |`);
  }
  console.log(`\nours in the worker, RTF of every run: ${spread(browser.runs)}; encoder in f32 ${spread(browser.f32_encoder_runs)}`);
  console.log(`\nbrowser transcript: ${best.text.trim()}`);
  console.log(`\nbrowser transcript, encoder in f32: ${bestF32.text.trim()}`);
  for (const [dtype, r] of Object.entries(tjs)) console.log(`\ntransformers.js ${dtype} transcript: ${r.best.text.trim()}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
