// Speed-up of a CPU-bound worker-script task in 200 chunks with 1, 2 and 3
// contributing nodes (one worker each), and what coordinating each chunk
// costs in room events and milliseconds, on the real stack (Synapse with
// the tests' relaxed rate limits, the test host, the release widget, the
// sum-of-squares example). The peer: the same script's chunks run one after
// another in this Node.js process (V8, like Chromium), measured in the same run.
//
//   node scripts/bench-pool.mjs [--chunks N] [NODES...]     (default: 200 chunks; 1 2 3 nodes)
//
// Needs dist/ (scripts/build.sh). Prints a table.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import vm from "node:vm";

import { WAIT_MS } from "../tests/support/browser.mjs";
import { ROOT, contribute, shownTasks, startPoolRoom } from "../tests/support/pool-room.mjs";
import { serveStatic } from "../tests/support/static-server.mjs";

const chunksAt = process.argv.indexOf("--chunks");
const CHUNKS = chunksAt > 0 ? Number(process.argv.splice(chunksAt, 2)[1]) : 200;
const CHUNK_SIZE = 1_000_000; // numbers per chunk: about 0.4 s each here
const SCRIPT = "examples/sum-of-squares/task.js";
const NAMES = ["alice", "bob", "dave"];

/** Runs every chunk of the script here, one after another: milliseconds in all. */
async function computeHere(source) {
  let reply;
  const context = vm.createContext({ BigInt, Math, Number, self: { postMessage: (m) => { if (m.type === "result") reply = m; } } });
  vm.runInContext(source, context);
  const started = performance.now();
  for (let i = 0; i < CHUNKS; i++) {
    context.self.onmessage({ data: { type: "run", args: { power: 2 }, chunk: { start: i * CHUNK_SIZE, end: (i + 1) * CHUNK_SIZE } } });
    if (!reply) throw new Error("the script gave no result");
  }
  return performance.now() - started;
}

async function api(room, user, method, path, body) {
  const response = await fetch(`${room.synapse.baseUrl}${path}`, {
    method, headers: { Authorization: `Bearer ${user.accessToken}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

async function run(nodes, scriptUrl, integrity) {
  const room = await startPoolRoom({ names: [...NAMES.slice(0, nodes), "carol"] });
  const roomPath = `/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}`;
  let approving;
  try {
    const creator = room.users[NAMES[0]];
    await api(room, creator, "PUT", `${roomPath}/state/org.potluck.allowlist/`, {
      v: 1, scripts: [{ name: "squares", url: scriptUrl, integrity, description: "sums i^power over a range" }],
    });
    const widgets = [];
    for (const name of NAMES.slice(0, nodes)) {
      const { widget } = await room.openWidget(name);
      await widget.getByTestId("workers").selectOption("1");
      await contribute(widget);
      widgets.push(widget);
    }
    approving = setInterval(() => {
      for (const w of widgets) w.getByTestId("consent-allow").first().click({ timeout: 200 }).catch(() => {});
    }, 250);
    await widgets[0].getByTestId("allowlist").getByText("squares", { exact: true }).waitFor({ timeout: WAIT_MS });
    const started = Date.now();
    const { event_id: task } = await api(room, room.users.carol, "PUT", `${roomPath}/send/org.potluck.task/bench${started}`, {
      v: 1, kind: "script", chunks: CHUNKS,
      params: { url: scriptUrl, integrity, args: { power: 2 }, split: { range: { start: 0, end: CHUNKS * CHUNK_SIZE, size: CHUNK_SIZE } } },
    });
    const report = setInterval(async () => {
      const shown = (await shownTasks(widgets[0]).catch(() => [])).find((t) => t.id === task);
      console.log(`  ${((Date.now() - started) / 1000).toFixed(0)} s: ${shown?.status ?? "not shown yet"}`);
    }, 15_000);
    try {
      await widgets[0].waitForFunction((id) => {
        const el = document.querySelector(`[data-task-id="${id}"]`);
        return el && ["done", "failed", "cancelled"].includes(el.dataset.status);
      }, task, { timeout: 1_800_000, polling: 200 });
    } finally {
      clearInterval(report);
    }
    const wall = Date.now() - started;
    const shown = (await shownTasks(widgets[0])).find((t) => t.id === task);
    if (shown.status !== `done: ${CHUNKS} outputs`) throw new Error(`the task ended ${shown.status}`);
    const events = (await room.roomEvents()).filter((e) => e.content?.["m.relates_to"]?.event_id === task);
    const count = (type) => events.filter((e) => e.type === `org.potluck.${type}`).length;
    const byNode = new Map();
    for (const who of shown.doneBy) byNode.set(who, (byNode.get(who) ?? 0) + 1);
    return {
      nodes, wall, assigns: count("assign"), results: count("result"), progress: count("progress"),
      byNode: [...byNode.entries()].map(([who, n]) => `${who.split(":")[0].slice(1)} ${n}`).join(", "),
    };
  } finally {
    clearInterval(approving);
    await room.close();
  }
}

const counts = process.argv.slice(2).map(Number).filter(Boolean);
const source = await readFile(join(ROOT, SCRIPT), "utf8");
const integrity = `sha384-${createHash("sha384").update(source).digest("base64")}`;
const server = await serveStatic({ root: ROOT, headers: { "Access-Control-Allow-Origin": "*" } });
try {
  const rows = [];
  for (const nodes of counts.length ? counts : [1, 2, 3]) {
    const compute = await computeHere(source); // the peer, measured next to each run
    const r = { ...(await run(nodes, `${server.url}${SCRIPT}`, integrity)), compute };
    rows.push(r);
    console.log(`${nodes} node(s): ${(r.wall / 1000).toFixed(1)} s (the same chunks here, one after another: ${(compute / 1000).toFixed(1)} s)`);
  }
  const one = rows.find((r) => r.nodes === 1)?.wall;
  console.log(`\n${CHUNKS} chunks of ${CHUNK_SIZE.toLocaleString("en")} numbers each, one worker per node, ${(await import("node:os")).cpus().length} cores\n`);
  console.log("| nodes | wall | speed-up | wall ÷ same chunks in Node.js | coordination per chunk | events per chunk (assign + result + progress) | chunks by node |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    // What the pool spends beyond computing, per chunk, over all its workers.
    const overhead = (r.wall * r.nodes - r.compute) / CHUNKS;
    const events = (r.assigns + r.results + r.progress) / CHUNKS;
    console.log(`| ${r.nodes} | ${(r.wall / 1000).toFixed(1)} s | ${one ? (one / r.wall).toFixed(2) + "×" : "—"} | ${(r.wall / r.compute).toFixed(2)} | `
      + `${overhead.toFixed(0)} ms | ${events.toFixed(2)} (${r.assigns} + ${r.results} + ${r.progress}) | ${r.byNode} |`);
  }
} finally {
  await server.close();
}
