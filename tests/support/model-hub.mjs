// A stand-in for the Hugging Face Hub, for tests and the demo: it serves the
// Whisper models that scripts/fetch-models.sh keeps in ~/.cache/potluck/models
// under the Hub's path shape, `/{repo}/resolve/{revision}/{file}`, as the Hub
// does for a browser: CORS headers, a redirect for the large `model.bin` (the
// Hub sends it to its LFS CDN), and `Cache-Control: public, max-age=31536000,
// immutable`. Only the pinned revisions exist; anything else is a 404, so a
// widget asking for the wrong repo or revision fails here as it would there.
//
// It binds 127.0.0.1 and is its own site, apart from the widget's (served on
// localhost) and the host page's port: models come from a third party, as in
// a real deployment. It counts the bytes it sends, per file.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";

/** The pinned Hub revisions of worker/src/catalog.rs, by model folder. */
export const HUB_MODELS = {
  "tiny.en": { repo: "Systran/faster-whisper-tiny.en", revision: "0d3d19a32d3338f10357c0889762bd8d64bbdeba" },
  base: { repo: "Systran/faster-whisper-base", revision: "ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66" },
};
const FILES = new Set(["model.bin", "config.json", "vocabulary.txt"]);
const CORS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Expose-Headers": "Content-Length, ETag",
};
const IMMUTABLE = "public, max-age=31536000, immutable";

/**
 * @param {object} opts
 * @param {string} opts.models folder with one subfolder per model (tiny.en/, base/)
 * @param {number} [opts.port] 0 for any free port
 * @param {(model: string, file: string, bytes: Buffer) => Buffer} [opts.tamper] changes what is served
 * @returns {Promise<{url: string, sent: Map<string, number>, requests: string[], close: () => Promise<void>}>}
 */
export async function serveModelHub({ models, port = 0, tamper = null }) {
  const sent = new Map(); // path → bytes sent
  const requests = [];
  const byRepo = new Map(Object.entries(HUB_MODELS).map(([model, pin]) => [`${pin.repo}@${pin.revision}`, model]));

  const server = createServer(async (req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    requests.push(`${req.method} ${path}`);
    if (req.method === "OPTIONS") {
      res.writeHead(204, { ...CORS, "Access-Control-Allow-Methods": "GET, HEAD", "Access-Control-Allow-Headers": "*" });
      return res.end();
    }
    const notFound = () => {
      res.writeHead(404, { ...CORS, "Content-Type": "text/plain" });
      res.end("Entry not found\n");
    };
    // The CDN's address for a large file: /cdn/{model}/{file}.
    const cdn = path.match(/^\/cdn\/([^/]+)\/([^/]+)$/);
    // The Hub's: /{owner}/{name}/resolve/{revision}/{file}.
    const hub = path.match(/^\/([^/]+\/[^/]+)\/resolve\/([0-9a-f]{40})\/([^/]+)$/);
    let model;
    let file;
    if (cdn) {
      [, model, file] = cdn;
      if (!HUB_MODELS[model]) return notFound();
    } else if (hub) {
      const [, repo, revision, name] = hub;
      model = byRepo.get(`${repo}@${revision}`);
      file = name;
      if (!model) return notFound();
      if (file === "model.bin") {
        res.writeHead(302, { ...CORS, Location: `/cdn/${model}/${file}`, "Cache-Control": "no-cache" });
        return res.end();
      }
    } else {
      return notFound();
    }
    if (!FILES.has(file)) return notFound();
    const local = join(models, model, file);
    const info = await stat(local).catch(() => null);
    if (!info?.isFile()) return notFound();
    const headers = { ...CORS, "Content-Type": "application/octet-stream", "Cache-Control": IMMUTABLE, ETag: `"${model}-${file}-${info.size}"` };
    if (req.headers["if-none-match"] === headers.ETag) {
      res.writeHead(304, headers);
      return res.end();
    }
    if (tamper) {
      const { readFile } = await import("node:fs/promises");
      const bytes = tamper(model, file, await readFile(local));
      res.writeHead(200, { ...headers, "Content-Length": bytes.length });
      sent.set(path, (sent.get(path) ?? 0) + bytes.length);
      return res.end(req.method === "HEAD" ? undefined : bytes);
    }
    res.writeHead(200, { ...headers, "Content-Length": info.size });
    if (req.method === "HEAD") return res.end();
    const stream = createReadStream(local);
    stream.on("data", (chunk) => sent.set(path, (sent.get(path) ?? 0) + chunk.length));
    stream.on("error", () => res.destroy()).pipe(res);
  });

  await new Promise((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolveListen);
  });
  const actualPort = server.address().port;
  return {
    url: `http://127.0.0.1:${actualPort}`,
    sent,
    requests,
    close: () => new Promise((resolveClose) => {
      server.closeAllConnections();
      server.close(() => resolveClose());
    }),
  };
}
