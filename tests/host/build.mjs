// Builds the test host and the smoke widget into dist-host/ (gitignored).
//
//   dist-host/index.html, host.js (+ chunks)   the host page (matrix-js-sdk + ClientWidgetApi)
//   dist-host/smoke-widget/index.html, widget.js
//   dist-host/smoke-widget/matrix-widget-api.js  matrix-widget-api as one ES module
//
// Run with `node tests/host/build.mjs`, or import { buildHost } from a test. Tests
// should pass their own folder: node --test runs test files in parallel, and two
// builds into one folder would race.

import { copyFile, mkdir, rm } from "node:fs/promises";
import { createRequire } from "node:module";
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

// matrix-widget-api is CommonJS, and `export *` of CommonJS gives an ES module
// no static names; so name every export it has.
function widgetApiModuleSource() {
  const names = Object.keys(createRequire(import.meta.url)("matrix-widget-api")).filter((n) => n !== "__esModule");
  return `export { ${names.join(", ")} } from "matrix-widget-api";`;
}

/** Builds into `outdir` (emptied first) and returns it. */
export async function buildHost(outdir = DIST) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(join(outdir, "smoke-widget"), { recursive: true });
  await Promise.all([
    // Splitting keeps matrix-js-sdk's Rust crypto (never started here) in a chunk
    // that is only fetched on demand.
    esbuild.build({ ...common, entryPoints: [join(here, "host.js")], outdir, splitting: true }),
    esbuild.build({
      ...common,
      stdin: { contents: widgetApiModuleSource(), resolveDir: here },
      outfile: join(outdir, "smoke-widget/matrix-widget-api.js"),
    }),
    copyFile(join(here, "index.html"), join(outdir, "index.html")),
    copyFile(join(here, "smoke-widget/index.html"), join(outdir, "smoke-widget/index.html")),
    copyFile(join(here, "smoke-widget/widget.js"), join(outdir, "smoke-widget/widget.js")),
  ]);
  return outdir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  await buildHost();
  console.log(`built ${DIST} in ${Date.now() - started} ms`);
}
