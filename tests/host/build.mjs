// Builds the test host and the smoke widget into dist-host/ (gitignored).
//
//   dist-host/index.html, host.js (+ chunks)   the host page (matrix-js-sdk + ClientWidgetApi)
//   dist-host/smoke-widget/index.html, widget.js
//   dist-host/smoke-widget/matrix-widget-api.js  matrix-widget-api as one ES module
//
// Run with `node tests/host/build.mjs`, or import { buildHost } from a test.

import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
export const DIST = join(here, "../../dist-host");

const common = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "chrome120",
  sourcemap: true,
  logLevel: "warning",
};

export async function buildHost() {
  await rm(DIST, { recursive: true, force: true });
  await mkdir(join(DIST, "smoke-widget"), { recursive: true });
  await Promise.all([
    // Splitting keeps matrix-js-sdk's Rust crypto (never started here) in a chunk
    // that is only fetched on demand.
    esbuild.build({ ...common, entryPoints: [join(here, "host.js")], outdir: DIST, splitting: true }),
    esbuild.build({
      ...common,
      stdin: { contents: 'export * from "matrix-widget-api";', resolveDir: here },
      outfile: join(DIST, "smoke-widget/matrix-widget-api.js"),
    }),
    copyFile(join(here, "index.html"), join(DIST, "index.html")),
    copyFile(join(here, "smoke-widget/index.html"), join(DIST, "smoke-widget/index.html")),
    copyFile(join(here, "smoke-widget/widget.js"), join(DIST, "smoke-widget/widget.js")),
  ]);
  return DIST;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  await buildHost();
  console.log(`built ${DIST} in ${Date.now() - started} ms`);
}
