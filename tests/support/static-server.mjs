// A minimal static file server for tests: serves one folder, read-only, on 127.0.0.1.
//
// It always binds 127.0.0.1, so the same server answers as http://127.0.0.1:<port>
// and http://localhost:<port>: two different *sites* (as Element and a widget are in
// a real deployment), both secure contexts. It never lists directories.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, resolve, sep } from "node:path";

const MIME_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  // WebAssembly.instantiateStreaming refuses any other type.
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".ogg": "audio/ogg",
  ".txt": "text/plain; charset=utf-8",
  ".bin": "application/octet-stream",
};

/** Resolves a URL path inside `root` (or a mounted folder), or null when it would escape it. */
function fileFor(root, urlPath, mounts) {
  for (const [prefix, folder] of Object.entries(mounts)) {
    if (urlPath.startsWith(prefix)) return fileFor(folder, "/" + urlPath.slice(prefix.length), {});
  }
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes("\0")) return null;
  const path = resolve(join(root, decoded));
  return path === root || path.startsWith(root + sep) ? path : null;
}

/**
 * @param {object} opts
 * @param {string} opts.root folder to serve
 * @param {string} [opts.host] the host name used in the returned url (the socket is always 127.0.0.1)
 * @param {number} [opts.port] 0 for any free port
 * @param {Record<string, string>} [opts.headers] extra headers on every response (e.g. COOP/COEP)
 * @param {Record<string, string>} [opts.mounts] URL prefixes ("/models/") served from other folders
 * @returns {Promise<{url: string, port: number, close: () => Promise<void>}>}
 */
export async function serveStatic({ root, host = "127.0.0.1", port = 0, headers = {}, mounts = {} }) {
  root = resolve(root);
  mounts = Object.fromEntries(Object.entries(mounts).map(([prefix, folder]) => [prefix, resolve(folder)]));
  const server = createServer(async (req, res) => {
    const send = (status, type, body) => {
      res.writeHead(status, { ...headers, "Content-Type": type, "Cache-Control": "no-store" });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "text/plain", "method not allowed\n");

    let path = fileFor(root, new URL(req.url, "http://x").pathname, mounts);
    let info = path && (await stat(path).catch(() => null));
    // A folder is served only through its index.html; no listing.
    if (info?.isDirectory()) {
      path = join(path, "index.html");
      info = await stat(path).catch(() => null);
    }
    if (!info?.isFile()) return send(404, "text/plain", "not found\n");

    res.writeHead(200, {
      ...headers,
      "Content-Type": MIME_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream",
      "Content-Length": info.size,
      // Tests rebuild between runs; a cached bundle would test stale code.
      "Cache-Control": "no-store",
    });
    if (req.method === "HEAD") return res.end();
    createReadStream(path).on("error", () => res.destroy()).pipe(res);
  });

  await new Promise((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolveListen);
  });
  const actualPort = server.address().port;
  return {
    url: `http://${host}:${actualPort}/`,
    port: actualPort,
    close: () => new Promise((resolveClose) => {
      server.closeAllConnections();
      server.close(() => resolveClose());
    }),
  };
}
