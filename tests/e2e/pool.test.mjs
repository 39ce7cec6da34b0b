// The compute pool end to end: a real Synapse, the test host (Element's way of
// embedding widgets) on http://127.0.0.1, the release build of the Potluck
// widget on http://localhost (another site), friends in separate browser
// contexts. Two contribute, one submits ten tasks; one contributor's page is
// closed in the middle of a chunk, and every task still completes, once.
//
// Needs dist/ (tests/run.sh builds it). Expected counts come from the tests'
// own sieve (tests/support/primes.mjs), not from the workers' code.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS, widgetFrame } from "../support/browser.mjs";
import { countPrimes } from "../support/primes.mjs";
import { primesShown, shownRanges } from "../support/task-words.mjs";
import {
  ARTIFACTS, chunkOutputs, contribute, shownTasks, startPoolRoom, submitPrimes, waitAllDone,
} from "../support/pool-room.mjs";

const TASKS = 10;
const CHUNKS = 2;
// Each task counts primes in its own range, a second or so per chunk in a
// worker: long enough to close a tab in the middle of one.
const RANGE = 300_000_000;
// Bob's node must be gone from everyone's view within one node timeout
// (manifest::limits::NODE_TIMEOUT_MS = 15 s) plus delivery.
const GONE_WITHIN_MS = 15_000 + 10_000;

const nodeCount = (widget, n, timeout = WAIT_MS) => widget.waitForFunction(
  (want) => document.querySelectorAll("[data-testid=node]").length === want, n, { timeout });

describe("the compute pool", () => {
  let room;
  const pages = {};
  const widgets = {};

  before(async () => {
    room = await startPoolRoom({ names: ["alice", "bob", "carol", "dave"] });
  });
  after(() => room?.close());

  test("a friend approves the widget's capabilities in the host's dialog", async () => {
    pages.alice = await room.open("alice");
    const dialog = pages.alice.locator("#capability-dialog");
    await dialog.waitFor({ state: "visible", timeout: WAIT_MS });
    const asked = await dialog.locator("input[type=checkbox]").evaluateAll((boxes) => boxes.map((b) => b.value));
    assert.ok(asked.includes("org.matrix.msc4157.send.delayed_event"), asked.join());
    // Chat: commands, voice messages and transcripts; it may post only notices (transcripts).
    // Media: voice messages and input files down, input files up.
    const chat = (cap) => /^org\.matrix\.msc2762\.(receive\.event:m\.room\.message#m\.(text|audio|notice)|send\.event:m\.room\.message#m\.notice|receive\.event:m\.room\.redaction|receive\.state_event:m\.room\.member)$/.test(cap);
    const media = (cap) => ["org.matrix.msc4039.download_file", "org.matrix.msc4039.upload_file"].includes(cap);
    assert.ok(asked.every((cap) => cap.includes("org.potluck.") || cap.startsWith("org.matrix.msc4157.") || chat(cap) || media(cap)),
      `asks for more than it needs: ${asked.join()}`);
    await dialog.getByRole("button", { name: "Approve" }).click();
    widgets.alice = await widgetFrame(pages.alice);
    await widgets.alice.getByTestId("contribute").waitFor({ timeout: WAIT_MS });
    for (const name of ["bob", "carol"]) {
      ({ page: pages[name], widget: widgets[name] } = await room.openWidget(name));
    }
  });

  test("a friend who denies the capabilities gets an explanation, and the widget sends nothing", async () => {
    const page = await room.open("dave");
    const dialog = page.locator("#capability-dialog");
    await dialog.waitFor({ state: "visible", timeout: WAIT_MS });
    await dialog.getByRole("button", { name: "Deny" }).click();
    const widget = await widgetFrame(page);
    const stopped = widget.getByTestId("stopped");
    await stopped.waitFor({ timeout: WAIT_MS });
    assert.match(await stopped.textContent(), /not allowed what it needs/);
    assert.equal(await widget.getByTestId("contribute").count(), 0);
    await auditWidget(page, "capabilities denied");
    await page.context().close();
    const fromDave = (await room.roomEvents()).filter((e) => e.sender === room.users.dave.userId && e.type.startsWith("org.potluck."));
    assert.deepEqual(fromDave, []);
  });

  test("two friends contribute and everyone sees them", async () => {
    await contribute(widgets.alice);
    await contribute(widgets.bob);
    await nodeCount(widgets.carol, 2);
    const owners = await widgets.carol.getByTestId("node").evaluateAll((els) => els.map((e) => e.dataset.owner).sort());
    assert.deepEqual(owners, [room.users.alice.userId, room.users.bob.userId]);
  });

  test("ten tasks complete once each, even when a contributor's tab closes mid-chunk", async () => {
    const started = Date.now();
    for (let k = 0; k < TASKS; k++) {
      await submitPrimes(widgets.carol, { start: k * RANGE, end: (k + 1) * RANGE, chunks: CHUNKS });
    }
    // Carol's widget paces her submissions under the homeserver's rate limit.
    await widgets.carol.waitForFunction((n) => document.querySelectorAll("[data-testid=task]").length === n,
      TASKS, { timeout: 120_000 });

    // Once Bob has finished a chunk, close his whole page while his worker is
    // in the middle of another: one not yet half done, read in one step, so
    // the chunk cannot finish and be reported between reading it and closing.
    await widgets.carol.waitForFunction((bob) => [...document.querySelectorAll("[data-testid=task]")]
      .some((t) => t.dataset.doneBy.split(",").includes(bob)), room.users.bob.userId, { timeout: 120_000 });
    const bobJob = await widgets.bob.waitForFunction(() => {
      const job = [...document.querySelectorAll("[data-testid=local-job]")]
        .find((li) => Number(li.querySelector("progress").value) < 50);
      return job && { task: job.dataset.taskId, chunk: Number(job.dataset.chunk) };
    }, null, { timeout: 60_000, polling: 50 }).then((handle) => handle.jsonValue());
    await pages.bob.context().close();
    const { task: orphanedTask, chunk: orphanedChunk } = bobJob;
    const closedAt = Date.now();

    // The homeserver's delayed "node gone" event tells everyone he left.
    await nodeCount(widgets.carol, 1, GONE_WITHIN_MS);
    const goneAfterMs = Date.now() - closedAt;

    await waitAllDone(widgets.carol, TASKS, 240_000);
    const tookMs = Date.now() - started;
    await widgets.carol.locator("body").screenshot({ path: join(ARTIFACTS, "widget-pool.png") });
    await auditWidget(pages.carol, "ten tasks done");

    const tasks = await shownTasks(widgets.carol);
    const ranges = await shownRanges(widgets.carol);
    for (const task of tasks) {
      const [start, end] = ranges[task.id];
      const want = countPrimes(start, end);
      assert.equal(primesShown(task.status), want, `task [${start}, ${end}): ${task.status}`);
      assert.equal(task.doneBy.length, CHUNKS, `one accepted result per chunk: ${task.doneBy}`);
    }
    const orphan = tasks.find((t) => t.id === orphanedTask);
    assert.equal(orphan.doneBy[orphanedChunk], room.users.alice.userId, "Alice finished the chunk Bob left");

    // Every chunk's output is in the room; Bob's unfinished chunk has none from him.
    const events = await room.roomEvents();
    const outputs = chunkOutputs(events);
    for (const task of tasks) {
      const chunks = outputs.filter((o) => o.task === task.id).map((o) => o.chunk);
      assert.deepEqual([...new Set(chunks)].sort(), [...Array(CHUNKS).keys()], `task ${task.id} chunks`);
    }
    const potluckEvents = events.filter((e) => e.type.startsWith("org.potluck.")).length;
    console.log(`# ${TASKS} tasks x ${CHUNKS} chunks in ${tookMs} ms; bob's node gone after ${goneAfterMs} ms; `
      + `${outputs.length} chunk outputs, ${potluckEvents} Potluck events in the room`);
  });

  test("switching contributing off removes the node from everyone's view at once", async () => {
    await widgets.alice.getByTestId("contribute").click();
    await widgets.alice.locator("[data-testid=contribute][aria-checked=false]").waitFor({ timeout: WAIT_MS });
    const started = Date.now();
    await nodeCount(widgets.carol, 0);
    // Well under the 15 s timeout: the node sent its leave notice itself.
    assert.ok(Date.now() - started < 10_000, `gone after ${Date.now() - started} ms`);
  });
});
