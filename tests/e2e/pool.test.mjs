// The compute pool end to end: a real Synapse, the test host (Element's way of
// embedding widgets) on http://127.0.0.1, the release build of the Potluck
// widget on http://localhost (another site), three friends in three browser
// contexts. Two contribute, one submits ten tasks; one contributor's page is
// closed in the middle of a chunk, and every task still completes, once.
//
// Needs `scripts/build.sh` to have built dist/ (tests/run.sh does).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";

import { buildHost } from "../host/build.mjs";
import { WAIT_MS, WIDGET_QUERY, launchBrowser, openHost, widgetFrame } from "../support/browser.mjs";
import { serveStatic } from "../support/static-server.mjs";
import { startSynapse } from "../support/synapse.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const ARTIFACTS = join(ROOT, "test-artifacts");
const TASKS = 10;
const CHUNKS = 2;
// Each task counts primes in its own 4e8-wide range: about a second per chunk
// in a worker, long enough to close a tab in the middle of one.
const RANGE = 400_000_000;
// Bob's node must be gone from everyone's view within one node timeout
// (manifest::limits::NODE_TIMEOUT_MS = 15 s) plus delivery.
const GONE_WITHIN_MS = 15_000 + 10_000;

function expectedCount(start, end) {
  const bin = join(ROOT, "target/release/count-primes");
  return Number(execFileSync(bin, [String(start), String(end)]).toString().trim());
}

describe("the compute pool", () => {
  let dir, synapse, hostServer, widgetServer, browser;
  const users = {
    alice: { name: "alice", password: "alice-password" },
    bob: { name: "bob", password: "bob-password" },
    carol: { name: "carol", password: "carol-password" },
  };
  let roomId;
  const pages = {};
  const widgets = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "potluck-pool-"));
    const [hs, hostDist] = await Promise.all([startSynapse({ dir }), buildHost(join(dir, "dist-host"))]);
    synapse = hs;
    hostServer = await serveStatic({ root: hostDist });
    widgetServer = await serveStatic({ root: join(ROOT, "dist"), host: "localhost" });
    for (const user of Object.values(users)) {
      Object.assign(user, await synapse.registerUser(user.name, user.password));
    }
    roomId = await synapse.createRoom(users.alice.accessToken, {
      members: [users.bob, users.carol], body: { name: "Potluck friends" },
    });
    browser = await launchBrowser();
    await mkdir(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await hostServer?.close();
    await widgetServer?.close();
    await synapse?.stop();
    if (dir && process.env.POTLUCK_KEEP_TMP !== "1") await rm(dir, { recursive: true, force: true });
  });

  const open = (name, opts = {}) => openHost(browser, {
    hostUrl: hostServer.url, hsUrl: synapse.baseUrl, user: users[name], roomId,
    widgetUrl: `${widgetServer.url}index.html?${WIDGET_QUERY}`, ...opts,
  });

  test("each friend approves the widget's capabilities and sees the pool", async () => {
    // Alice approves in the dialog, as a friend would; the others' hosts remember.
    pages.alice = await open("alice");
    const dialog = pages.alice.locator("#capability-dialog");
    await dialog.waitFor({ state: "visible", timeout: WAIT_MS });
    const asked = await dialog.locator("input[type=checkbox]").evaluateAll((boxes) => boxes.map((b) => b.value));
    assert.ok(asked.includes("org.matrix.msc4157.send.delayed_event"), asked.join());
    assert.ok(asked.every((cap) => cap.includes("org.potluck.") || cap.startsWith("org.matrix.msc4157.")),
      `asks for more than it needs: ${asked.join()}`);
    await dialog.getByRole("button", { name: "Approve" }).click();
    widgets.alice = await widgetFrame(pages.alice);
    for (const name of ["bob", "carol"]) {
      pages[name] = await open(name, { autoApprove: true });
      widgets[name] = await widgetFrame(pages[name]);
    }
    for (const widget of Object.values(widgets)) {
      await widget.getByTestId("contribute").waitFor({ timeout: WAIT_MS });
    }
  });

  test("two friends contribute and everyone sees them", async () => {
    for (const name of ["alice", "bob"]) {
      await widgets[name].getByTestId("contribute").click();
      await widgets[name].getByText("Stop contributing").waitFor({ timeout: WAIT_MS });
    }
    const nodes = widgets.carol.getByTestId("node");
    await widgets.carol.waitForFunction(() => document.querySelectorAll("[data-testid=node]").length === 2,
      null, { timeout: WAIT_MS });
    const owners = await nodes.evaluateAll((els) => els.map((e) => e.dataset.owner).sort());
    assert.deepEqual(owners, [users.alice.userId, users.bob.userId]);
  });

  test("ten tasks complete once each, even when a contributor's tab closes mid-chunk", async () => {
    const form = widgets.carol.getByTestId("submit-form");
    for (let k = 0; k < TASKS; k++) {
      await form.getByTestId("start").fill(String(k * RANGE));
      await form.getByTestId("end").fill(String((k + 1) * RANGE));
      await form.getByTestId("chunks").fill(String(CHUNKS));
      await form.getByTestId("submit").click();
    }
    await widgets.carol.waitForFunction((n) => document.querySelectorAll("[data-testid=task]").length === n,
      TASKS, { timeout: WAIT_MS });

    // Once Bob has finished a chunk, close his whole page while his worker is
    // in the middle of another.
    await widgets.carol.waitForFunction((bob) => [...document.querySelectorAll("[data-testid=task]")]
      .some((t) => t.dataset.doneBy.split(",").includes(bob)), users.bob.userId, { timeout: 120_000 });
    const bobJob = widgets.bob.getByTestId("local-job").first();
    await bobJob.waitFor({ timeout: 60_000 });
    const orphanedTask = await bobJob.getAttribute("data-task-id");
    const orphanedChunk = Number(await bobJob.getAttribute("data-chunk"));
    await pages.bob.context().close();
    const closedAt = Date.now();

    // The homeserver's delayed "node gone" event tells everyone he left.
    await widgets.carol.waitForFunction(() => document.querySelectorAll("[data-testid=node]").length === 1,
      null, { timeout: GONE_WITHIN_MS });
    const goneAfterMs = Date.now() - closedAt;

    await widgets.carol.waitForFunction((n) =>
      [...document.querySelectorAll("[data-testid=task]")].filter((t) => t.dataset.status === "done").length === n,
    TASKS, { timeout: 240_000, polling: 500 });
    await widgets.carol.locator("body").screenshot({ path: join(ARTIFACTS, "widget-pool.png") });

    const tasks = await widgets.carol.getByTestId("task").evaluateAll((els) => els.map((e) => ({
      id: e.dataset.taskId, status: e.querySelector("[data-testid=task-status]").textContent,
      doneBy: e.dataset.doneBy.split(",").filter(Boolean), what: e.querySelector(".what").textContent,
    })));
    for (const task of tasks) {
      const [, start, end] = task.what.match(/\[(\d+), (\d+)\)/);
      const want = expectedCount(Number(start), Number(end));
      assert.equal(task.status, `done: ${want} primes`, `task [${start}, ${end})`);
      assert.equal(task.doneBy.length, CHUNKS, `one accepted result per chunk: ${task.doneBy}`);
    }
    const orphan = tasks.find((t) => t.id === orphanedTask);
    assert.equal(orphan.doneBy[orphanedChunk], users.alice.userId, "Alice finished the chunk Bob left");

    // Every result event in the room, as Synapse stores it: nothing accepted twice.
    const outputs = await roomResultOutputs();
    for (const task of tasks) {
      const chunks = outputs.filter((o) => o.task === task.id).map((o) => o.chunk);
      assert.deepEqual([...new Set(chunks)].sort(), [...Array(CHUNKS).keys()], `task ${task.id} chunks`);
    }
    console.log(`# bob's node gone after ${goneAfterMs} ms; results in room: ${outputs.length} for ${TASKS * CHUNKS} chunks`);
  });

  /** Every chunk output posted to the room, read from Synapse directly. */
  async function roomResultOutputs() {
    const url = `${synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=1000`;
    const response = await fetch(url, { headers: { Authorization: `Bearer ${users.alice.accessToken}` } });
    const { chunk } = await response.json();
    return chunk.filter((e) => e.type === "org.potluck.result").flatMap((e) =>
      e.content.outcomes.filter((o) => "output" in o).map((o) => ({ task: e.content["m.relates_to"].event_id, chunk: o.chunk })));
  }
});
