// The pool on a homeserver with Synapse's default rate limits (0.2 events/s
// per account, burst 10), as every real deployment has them: more tasks than
// one burst, over two browser nodes; none is lost and the room events per task
// stay small and constant.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { chunkOutputs, contribute, shownTasks, startPoolRoom, submitPrimes, waitAllDone } from "../support/pool-room.mjs";

const TASKS = 12; // more than one burst of the submitter's account
const CHUNKS = 3;
// The accounts' budgets set the pace: the room simulation of this pool
// (`a_batch_under_default_limits_finishes_in_the_order_it_was_submitted`)
// takes 3.7-3.9 min, and 3.7 min here on an idle machine. The wait is for a
// lost task, with room for a CI machine busy with other tests.
const ALL_DONE_WITHIN_MS = 540_000;

describe("default rate limits", () => {
  let room;
  before(async () => {
    room = await startPoolRoom({ names: ["alice", "bob", "carol"], defaultRateLimits: true });
  });
  after(() => room?.close());

  test("a batch of tasks over two nodes loses nothing", async () => {
    const alice = await room.openWidget("alice");
    const bob = await room.openWidget("bob");
    const carol = await room.openWidget("carol");
    await contribute(alice.widget);
    await contribute(bob.widget);
    const started = Date.now();
    for (let k = 0; k < TASKS; k++) {
      await submitPrimes(carol.widget, { start: k * 10_000_000, end: (k + 1) * 10_000_000, chunks: CHUNKS });
    }
    await waitAllDone(carol.widget, TASKS, ALL_DONE_WITHIN_MS);
    const tookMs = Date.now() - started;

    const tasks = await shownTasks(carol.widget);
    assert.equal(new Set(tasks.map((t) => t.id)).size, TASKS);
    for (const task of tasks) assert.equal(task.doneBy.length, CHUNKS, task.what);
    const events = await room.roomEvents();
    const outputs = chunkOutputs(events);
    for (const task of tasks) {
      const chunks = new Set(outputs.filter((o) => o.task === task.id).map((o) => o.chunk));
      assert.equal(chunks.size, CHUNKS, `every chunk of ${task.id} has its output in the room`);
    }
    const workers = new Set(tasks.flatMap((t) => t.doneBy));
    assert.equal(workers.size, 2, "both nodes ran chunks");

    // Per task: its submission, then assignments and results batched per task:
    // never more than one of each per chunk, however busy the pool.
    const perTask = events.filter((e) => ["org.potluck.task", "org.potluck.assign", "org.potluck.result"].includes(e.type)).length / TASKS;
    assert.ok(perTask <= 1 + 2 * CHUNKS, `${perTask} room events per task`);
    console.log(`# default limits: ${TASKS} tasks x ${CHUNKS} chunks in ${tookMs} ms, ${perTask.toFixed(2)} room events per task`);
  });
});
