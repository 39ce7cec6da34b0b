// Whisper speed and memory, side by side in one run on the same audio and
// weights: our engine in a Chromium Web Worker (the release worker a
// contributing node runs, one thread, no cross-origin isolation), the same
// engine natively, and faster-whisper (float32 and int8, one thread).
//
//   node scripts/bench-whisper-browser.mjs [--model tiny.en|base] [--runs N] [--browser-only]
//
// The audio is espeak-ng reading the five test sentences twice (about 35 s,
// so two 30 s windows). Greedy decoding with timestamps and the temperature
// fallback for every engine. Prints a table: real-time factor (best of N),
// encoder seconds, decoder milliseconds per token, peak resident memory, and
// each engine's speed as a fraction of faster-whisper int8's.
// Needs dist/ (scripts/build.sh), the models (scripts/fetch-models.sh),
// espeak-ng; installs faster-whisper on first use (scripts/reference-whisper.sh).

import { execFileSync, spawnSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { launchBrowser } from "../tests/support/browser.mjs";
import { serveStatic } from "../tests/support/static-server.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const option = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : fallback;
};
const MODEL = option("--model", "tiny.en");
const RUNS = Number(option("--runs", "3"));
/** Only our engine in the browser (quicker, while working on it). */
const BROWSER_ONLY = process.argv.includes("--browser-only");
const SENTENCES =
  "The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring these things with her from the store. " +
  "The meeting will start at nine o'clock tomorrow morning. We need to finish the report before the end of the week. Thank you all for coming today. ";

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

/** Peak resident memory (VmHWM) of Chromium's renderer processes, in MB. */
async function rendererPeakMb() {
  let peak = 0;
  for (const pid of await readdir("/proc").catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (!cmdline.includes("--type=renderer")) continue;
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    peak = Math.max(peak, kb / 1024);
  }
  return peak;
}

async function inBrowser(dir, models) {
  await writeFile(join(dir, "bench.html"), "<!doctype html><title>bench</title>");
  await writeFile(join(dir, "bench-worker.js"), `
importScripts("/dist/potluck_worker.js");
// The worker's own job loop installs its handler when the wasm starts: replace it.
wasm_bindgen({ module_or_path: "/dist/potluck_worker_bg.wasm" }).then(() => {
  self.onmessage = async ({ data }) => {
    try {
      const json = await wasm_bindgen.benchmarkTranscribe(data.model, "/models", data.pcm, data.runs);
      self.postMessage({ json });
    } catch (e) {
      self.postMessage({ error: String(e) });
    }
  };
  self.postMessage({ ready: true });
});`);
  const server = await serveStatic({ root: dir, mounts: { "/dist/": join(ROOT, "dist"), "/models/": models } });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}/bench.html`);
    const reply = await page.evaluate(async ({ model, runs }) => {
      const pcm = new Float32Array(await (await fetch("/clip.f32")).arrayBuffer());
      const worker = new Worker("/bench-worker.js");
      return new Promise((resolve) => {
        worker.onmessage = ({ data }) => {
          // Strings are the job loop's own messages ("ready"): not ours.
          if (typeof data === "string") return;
          if (data.ready) worker.postMessage({ model, runs, pcm }, [pcm.buffer]);
          else resolve(data);
        };
        worker.onerror = (e) => resolve({ error: e.message });
      });
    }, { model: MODEL, runs: RUNS });
    if (reply.error) throw new Error(`in the browser: ${reply.error}`);
    return { ...JSON.parse(reply.json), peakMb: await rendererPeakMb() };
  } finally {
    await browser.close();
    await server.close();
  }
}

const dir = await mkdtemp(join(tmpdir(), "potluck-bench-whisper-"));
try {
  const models = run("scripts/fetch-models.sh", []).trim();
  run("espeak-ng", ["-v", "en-us", "-s", "150", "-w", join(dir, "clip.wav"), SENTENCES + SENTENCES]);
  run("cargo", ["build", "--offline", "--locked", "--release", "-j", "2", "-p", "potluck-worker", "--bin", "potluck"], { stdio: "ignore" });
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
      "--timestamps", "--bench", "--only", type]);
    reference[type] = { ...JSON.parse(await readFile(join(out, "result.json"), "utf8"))[type], peakMb: r.peakMb };
  }

  const browser = await inBrowser(dir, models);
  const best = browser.runs.reduce((a, b) => (b.wall_s < a.wall_s ? b : a));

  const fwInt8 = reference.int8?.rtf;
  const rows = [
    ["ours, Chromium worker (wasm, SIMD128)", best.wall_s / duration, best.encoder_s, (best.decoder_s * 1000) / Math.max(1, best.tokens), browser.peakMb, "renderer process"],
    ["ours, native", Number(nativeLine[1]), Number(nativeLine[2]), Number(nativeLine[4]), native.peakMb, "process"],
    ...Object.entries(reference).map(([type, r]) => [`faster-whisper ${type}, native`, r.rtf, null, null, r.peakMb, "process"]),
  ];
  console.log(`\n${MODEL}, ${duration.toFixed(1)} s of espeak-ng speech, best of ${RUNS}, one thread each; browser model load ${browser.load_s.toFixed(2)} s\n`);
  console.log("| engine | RTF | encoder | decoder per token | peak memory | speed × faster-whisper int8 |");
  console.log("|---|---|---|---|---|---|");
  for (const [name, rtf, enc, tok, peak, what] of rows) {
    const cell = (v, unit, digits = 2) => (v == null ? "—" : `${v.toFixed(digits)} ${unit}`);
    console.log(`| ${name} | ${rtf.toFixed(3)} | ${cell(enc, "s")} | ${cell(tok, "ms", 1)} | ${peak.toFixed(0)} MB (${what}) | ${fwInt8 ? `${(fwInt8 / rtf).toFixed(2)}×` : "—"} |`);
  }
  console.log(`\nbrowser transcript: ${best.text.trim()}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
