// Friends' own scripts end to end: a room's moderator allows scripts, two
// friends contribute, a third submits a script task in 20 chunks from the
// widget; each contributor approves the new script before it runs; the merged
// result is right and both machines ran chunks. Scripts that are not allowed,
// or whose bytes do not match the allowed hash, fail before running a line.
// An input file reaches a script through the media repository, checked by
// its SHA-256. A script that tries to leave its sandbox gets nothing; one that loops forever
// is stopped at its time limit and the node goes on with the next task.
//
// Needs dist/ (tests/run.sh builds it).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS } from "../support/browser.mjs";
import { ARTIFACTS, ROOT, contribute, coordinatorOf, openMore, shownTasks, startPoolRoom, submitPrimes } from "../support/pool-room.mjs";
import { serveStatic } from "../support/static-server.mjs";

const ALLOWLIST = "org.potluck.allowlist";
const TASK_DONE_MS = 120_000;

async function integrity(path) {
  const digest = createHash("sha384").update(await readFile(join(ROOT, path))).digest("base64");
  return `sha384-${digest}`;
}

/** What Synapse answers when `user` puts the allowlist. */
async function putAllowlist(room, user, scripts) {
  const url = `${room.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}/state/${ALLOWLIST}/`;
  const response = await fetch(url, {
    method: "PUT",
    headers: { Authorization: `Bearer ${user.accessToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ v: 1, scripts }),
  });
  return response.status;
}

/** Sends a task event as `user` straight to the room, as any Matrix client could. */
async function sendTask(room, user, content) {
  const url = `${room.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}/send/org.potluck.task/${Date.now()}${Math.random()}`;
  const response = await fetch(url, {
    method: "PUT",
    headers: { Authorization: `Bearer ${user.accessToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ v: 1, ...content }),
  });
  const body = await response.text();
  assert.equal(response.status, 200, body);
  return JSON.parse(body).event_id;
}

/** Waits until `widget` shows task `id` in a final state; returns it. */
async function settled(widget, id, timeout = TASK_DONE_MS) {
  await widget.waitForFunction((taskId) => {
    const el = document.querySelector(`[data-task-id="${taskId}"]`);
    return el && ["done", "failed", "cancelled"].includes(el.dataset.status);
  }, id, { timeout, polling: 500 });
  const tasks = await shownTasks(widget);
  return tasks.find((t) => t.id === id);
}

/** The newest task `widget` shows. */
async function newestTaskId(widget, before) {
  await widget.waitForFunction((n) => document.querySelectorAll("[data-testid=task]").length > n, before,
    { timeout: WAIT_MS });
  return (await shownTasks(widget))[0].id;
}

describe("scripts the room allowed", () => {
  let room;
  let scripts;
  const widgets = {};
  const pages = {};
  let approving = null;

  before(async () => {
    room = await startPoolRoom({ names: ["alice", "bob", "carol"] });
    scripts = await serveStatic({ root: ROOT, headers: { "Access-Control-Allow-Origin": "*" } });
    for (const name of ["alice", "bob", "carol"]) {
      ({ page: pages[name], widget: widgets[name] } = await room.openWidget(name));
      // Scripts and the allowlist are under "More".
      await openMore(widgets[name]);
    }
  });
  after(async () => {
    clearInterval(approving);
    await scripts?.close();
    await room?.close();
  });

  const at = (path) => `${scripts.url}${path}`;

  test("only a moderator can change the allowlist", async () => {
    const squares = {
      name: "squares", url: at("examples/sum-of-squares/task.js"),
      integrity: await integrity("examples/sum-of-squares/task.js"), description: "sums i^power over a range",
    };
    const probe = {
      name: "probe", url: at("tests/fixtures/scripts/probe.js"),
      integrity: await integrity("tests/fixtures/scripts/probe.js"), description: "tries to leave its sandbox",
    };
    const forever = {
      name: "forever", url: at("tests/fixtures/scripts/forever.js"),
      integrity: await integrity("tests/fixtures/scripts/forever.js"), description: "never stops",
    };
    const mandelbrot = {
      name: "mandelbrot", url: at("dist/examples/mandelbrot-rust/task.js"),
      integrity: await integrity("dist/examples/mandelbrot-rust/task.js"), description: "Mandelbrot tiles, in Rust",
    };
    const hog = {
      name: "hog", url: at("tests/fixtures/scripts/hog.js"),
      integrity: await integrity("tests/fixtures/scripts/hog.js"), description: "allocates without bound",
    };
    const words = {
      name: "words", url: at("examples/word-count/task.js"),
      integrity: await integrity("examples/word-count/task.js"), description: "counts the words of a text file",
    };
    // The script changed on its server since the room allowed it.
    const changed = { ...squares, name: "changed", url: at("examples/sum-of-squares/task.js?v=2"),
      integrity: `sha384-${"A".repeat(64)}` };
    assert.equal(await putAllowlist(room, room.users.carol, [squares]), 403, "carol is no moderator");
    assert.equal(await putAllowlist(room, room.users.alice, [squares, probe, forever, changed, mandelbrot, words, hog]), 200);
    await widgets.carol.getByTestId("allowlist").getByText("probe", { exact: true }).waitFor({ timeout: WAIT_MS });
  });

  test("a contributor sees a new script before it runs, nothing runs until they agree, then its 20 chunks run on both nodes with the right merged result", async () => {
    await contribute(widgets.alice);
    await contribute(widgets.bob);
    const form = widgets.carol.getByTestId("script-form");
    await form.getByTestId("script-name").selectOption("squares");
    await form.getByTestId("script-split").fill("0 20000 1000");
    await form.getByTestId("script-args").fill('{"power": 2}');
    await form.getByTestId("script-submit").click();
    const consent = widgets.alice.getByTestId("consent");
    await consent.waitFor({ timeout: WAIT_MS });
    assert.match(await consent.textContent(), /squares/);
    assert.match(await consent.textContent(), /sums i\^power over a range/);
    await auditWidget(pages.alice, "asked to consent to a script");
    const ran = (await room.roomEvents()).filter((e) => e.type === "org.potluck.result");
    assert.deepEqual(ran, [], "no chunk ran before anyone agreed");
    // From here on, both contributors agree to every script they are shown.
    approving = setInterval(() => {
      for (const w of [widgets.alice, widgets.bob]) {
        w.getByTestId("consent-allow").first().click({ timeout: 200 }).catch(() => {});
      }
    }, 500);

    // Once they agree, its 20 chunks run on both nodes and the merged sum is right.
    const id = (await shownTasks(widgets.carol))[0].id;
    const task = await settled(widgets.carol, id);
    assert.equal(task.status, "Done: 20 results");
    const result = JSON.parse(await widgets.carol.locator(`[data-task-id="${id}"] [data-testid=task-result]`).textContent());
    const total = result.outputs.reduce((sum, o) => sum + BigInt(o.sum), 0n);
    let expected = 0n;
    for (let i = 0n; i < 20000n; i++) expected += i * i;
    assert.equal(total, expected);
    assert.ok(task.doneBy.includes("@alice:localhost") && task.doneBy.includes("@bob:localhost"),
      `both nodes ran chunks: ${task.doneBy}`);
    await pages.carol.screenshot({ path: join(ARTIFACTS, "script-task.png"), fullPage: true });
    await auditWidget(pages.carol, "a script's 20 results");
  });

  test("a task in Rust compiled to wasm gives the pixels the same Rust gives natively", async () => {
    const before = (await shownTasks(widgets.carol)).length;
    const view = { cx: "-0.5", cy: "0", span: "3", tiles: 4, size: 32, max_iter: 200 };
    const tiles = [];
    for (let y = 0; y < view.tiles; y++) for (let x = 0; x < view.tiles; x++) tiles.push({ x, y });
    const form = widgets.carol.getByTestId("script-form");
    await form.getByTestId("script-name").selectOption("mandelbrot");
    await form.getByTestId("script-split").fill(JSON.stringify(tiles));
    await form.getByTestId("script-args").fill(JSON.stringify(view));
    await form.getByTestId("script-submit").click();
    const id = await newestTaskId(widgets.carol, before);
    const task = await settled(widgets.carol, id);
    assert.equal(task.status, "Done: 16 results");
    const result = JSON.parse(await widgets.carol.locator(`[data-task-id="${id}"] [data-testid=task-result]`).textContent());
    const native = join(ROOT, "target/release/mandelbrot-tile");
    for (const out of result.outputs) {
      const args = [view.cx, view.cy, view.span, view.tiles, view.size, view.max_iter, out.x, out.y].map(String);
      assert.equal(out.pixels, execFileSync(native, args).toString().trim(), `tile ${out.x},${out.y}`);
    }
    // The picture, assembled from the tiles and tinted by whose machine made each.
    const picture = widgets.carol.locator(`[data-task-id="${id}"] [data-testid=tile-image]`);
    assert.equal(await picture.getAttribute("data-tiles"), "16");
    const legend = await picture.getByTestId("tile-legend").textContent();
    assert.match(legend, /alice \(\d+\)/);
    assert.match(legend, /bob \(\d+\)/);
    await picture.screenshot({ path: join(ARTIFACTS, "mandelbrot-tiles.png") });
  });

  test("an input file goes through the media repository and a script gets exactly its bytes", async () => {
    // 40 lines of 1 to 8 words: the file carol picks in the form.
    const lines = Array.from({ length: 40 }, (_, i) => Array.from({ length: 1 + (i * 7) % 8 }, (_, w) => `w${i}_${w}`).join(" "));
    const text = `${lines.join("\n")}\n`;
    const expected = lines.reduce((n, line) => n + line.split(" ").length, 0);
    const before = (await shownTasks(widgets.carol)).length;
    const form = widgets.carol.getByTestId("script-form");
    await form.getByTestId("script-name").selectOption("words");
    await form.getByTestId("script-split").fill("0 40 10");
    await form.getByTestId("script-args").fill("");
    await form.getByTestId("script-inputs").setInputFiles({ name: "text.txt", mimeType: "text/plain", buffer: Buffer.from(text) });
    await form.getByTestId("script-submit").click();
    const id = await newestTaskId(widgets.carol, before);
    assert.equal((await settled(widgets.carol, id)).status, "Done: 4 results");
    const result = JSON.parse(await widgets.carol.locator(`[data-task-id="${id}"] [data-testid=task-result]`).textContent());
    assert.equal(result.outputs.reduce((n, o) => n + o.words, 0), expected);
    await form.getByTestId("script-inputs").setInputFiles([]);

    // The task names the file by its hash: a task naming the same upload
    // with another hash fails its chunk, and its script never sees the bytes.
    const task = (await room.roomEvents()).find((e) => e.event_id === id).content;
    const input = task.inputs[0];
    assert.equal(input.size, Buffer.byteLength(text));
    assert.equal(input.sha256, createHash("sha256").update(text).digest("hex"));
    const tampered = await sendTask(room, room.users.carol, {
      kind: "script", params: task.params, chunks: 4, inputs: [{ ...input, sha256: "0".repeat(64) }],
    });
    assert.match((await settled(widgets.carol, tampered)).status, /is not the file the task names/);
  });

  test("a script that is not allowed, or not with that hash, fails before any node runs it", async () => {
    const squares = { url: at("examples/sum-of-squares/task.js"), integrity: `sha384-${"B".repeat(64)}` };
    const split = { list: [1] };
    const wrongHash = await sendTask(room, room.users.carol,
      { kind: "script", params: { ...squares, split }, chunks: 1 });
    const unlisted = await sendTask(room, room.users.carol,
      { kind: "script", params: { url: at("tests/fixtures/scripts/unlisted.js"), integrity: squares.integrity, split }, chunks: 1 });
    assert.match((await settled(widgets.carol, wrongHash)).status, /allowed in this room only with another hash/);
    assert.match((await settled(widgets.carol, unlisted)).status, /not on this room's allowlist/);
    const ranThem = (await room.roomEvents()).filter((e) => ["org.potluck.assign", "org.potluck.result"].includes(e.type)
      && [wrongHash, unlisted].includes(e.content["m.relates_to"]?.event_id));
    assert.deepEqual(ranThem, [], "no node was given them");
  });

  test("bytes that do not match the allowed hash are never run", async () => {
    const before = (await shownTasks(widgets.carol)).length;
    const form = widgets.carol.getByTestId("script-form");
    await form.getByTestId("script-name").selectOption("changed");
    await form.getByTestId("script-split").fill("0 10 10");
    await form.getByTestId("script-submit").click();
    const id = await newestTaskId(widgets.carol, before);
    assert.match((await settled(widgets.carol, id)).status, /could not be loaded with the hash the room allowed/);
  });

  test("a script that tries to leave its sandbox gets nothing", async () => {
    const before = (await shownTasks(widgets.carol)).length;
    const widgetOrigin = new URL(widgets.carol.url()).origin;
    const form = widgets.carol.getByTestId("script-form");
    await form.getByTestId("script-name").selectOption("probe");
    await form.getByTestId("script-split").fill("[1]");
    await form.getByTestId("script-args").fill(JSON.stringify({ widget_origin: widgetOrigin }));
    await form.getByTestId("script-submit").click();
    const id = await newestTaskId(widgets.carol, before);
    assert.equal((await settled(widgets.carol, id)).status, "Done: 1 result");
    const result = JSON.parse(await widgets.carol.locator(`[data-task-id="${id}"] [data-testid=task-result]`).textContent());
    const report = result.outputs[0];
    assert.equal(report.origin, "null", "an opaque origin");
    assert.match(report.indexed_db, /^refused/);
    assert.match(report.cache_storage, /^refused/);
    assert.match(report.widget_page, /^refused/, "the widget's own origin is out of reach");
    assert.equal(report.has_parent, false);
    const escaped = (await room.roomEvents()).filter((e) => e.content?.body === "escaped the sandbox");
    assert.deepEqual(escaped, [], "its widget-API request never reached the host");
  });

  test("!run in plain chat starts the task once, in the sender's name", async () => {
    const before = (await shownTasks(widgets.carol)).length;
    const url = `${room.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}/send/m.room.message/run${Date.now()}`;
    const response = await fetch(url, {
      method: "PUT",
      headers: { Authorization: `Bearer ${room.users.carol.accessToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ msgtype: "m.text", body: '!run squares 0 100 10 {"power": 3}' }),
    });
    assert.equal(response.status, 200);
    const id = await newestTaskId(widgets.bob, before);
    const task = await settled(widgets.bob, id);
    assert.equal(task.status, "Done: 10 results");
    const result = JSON.parse(await widgets.bob.locator(`[data-task-id="${id}"] [data-testid=task-result]`).textContent());
    let expected = 0n;
    for (let i = 0n; i < 100n; i++) expected += i ** 3n;
    assert.equal(result.outputs.reduce((sum, o) => sum + BigInt(o.sum), 0n), expected);
    const byCommand = (await room.roomEvents()).filter((e) => e.type === "org.potluck.task" && e.content.command);
    assert.equal(byCommand.length, 1, "one task for one message, though three widgets saw it");
    assert.equal(byCommand[0].content.command.sender, room.users.carol.userId);
    assert.equal(byCommand[0].sender, await coordinatorOf(widgets.bob), "sent by the coordinator");
  });

  test("a script that never ends is stopped at its time limit and the node goes on", async () => {
    const before = (await shownTasks(widgets.carol)).length;
    const form = widgets.carol.getByTestId("script-form");
    await form.getByTestId("script-name").selectOption("forever");
    await form.getByTestId("script-split").fill("[1]");
    await form.getByTestId("script-args").fill("");
    await form.getByTestId("script-seconds").fill("3");
    await form.getByTestId("script-submit").click();
    const id = await newestTaskId(widgets.carol, before);
    assert.match((await settled(widgets.carol, id)).status, /stopped after 3 s/);
    await submitPrimes(widgets.carol, { start: 0, end: 1_000_000, chunks: 2 });
    const next = await newestTaskId(widgets.carol, before + 1);
    assert.match((await settled(widgets.carol, next)).status, /^Done: 78\D?498 primes$/);
  });

  test("a script that allocates without bound is stopped and the node goes on", async () => {
    const before = (await shownTasks(widgets.carol)).length;
    const form = widgets.carol.getByTestId("script-form");
    await form.getByTestId("script-name").selectOption("hog");
    await form.getByTestId("script-split").fill("[1]");
    await form.getByTestId("script-args").fill("");
    await form.getByTestId("script-seconds").fill("30");
    await form.getByTestId("script-submit").click();
    const id = await newestTaskId(widgets.carol, before);
    const status = (await settled(widgets.carol, id)).status;
    console.log(`a script that allocates without bound: ${status}`);
    assert.match(status, /^Failed: /);
    await submitPrimes(widgets.carol, { start: 0, end: 1_000_000, chunks: 2 });
    const next = await newestTaskId(widgets.carol, before + 1);
    assert.match((await settled(widgets.carol, next)).status, /^Done: 78\D?498 primes$/);
  });
});
