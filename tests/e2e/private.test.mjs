// Private results end to end: alice and bob contribute, carol submits a
// "count primes" task with "only I see the result". Both nodes run chunks;
// carol's widget shows the right count (checked against a native run),
// alice's and bob's show only that it finished, and no event in the room
// holds the count: the outputs went to carol's devices as to-device messages.
//
// Needs dist/ (tests/run.sh builds it). The expected count comes from the
// tests' own sieve (tests/support/primes.mjs), not from the workers' code.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { countPrimes } from "../support/primes.mjs";
import { primesShown } from "../support/task-words.mjs";
import { contribute, openMore, shownTasks, startPoolRoom, submitPrimes } from "../support/pool-room.mjs";

const TASK_DONE_MS = 120_000;
const RANGE = { start: 0, end: 40_000_000, chunks: 6 };

describe("private results", () => {
  let room;
  const widgets = {};
  const pages = {};

  before(async () => {
    room = await startPoolRoom({ names: ["alice", "bob", "carol"] });
    for (const name of ["alice", "bob", "carol"]) ({ page: pages[name], widget: widgets[name] } = await room.openWidget(name));
  });
  after(() => room?.close());

  test("a private result reaches only the friend who asked, and the room sees only that it finished", async () => {
    await contribute(widgets.alice);
    await contribute(widgets.bob);
    await openMore(widgets.carol);
    const form = widgets.carol.getByTestId("submit-form");
    await form.getByTestId("private").check();
    await submitPrimes(widgets.carol, RANGE);

    const done = (widget) => widget.waitForFunction(() => {
      const el = document.querySelector("[data-testid=task]");
      return el?.dataset.status === "done" && !/on their way/.test(el.querySelector("[data-testid=task-status]").textContent);
    }, null, { timeout: TASK_DONE_MS, polling: 500 });
    await Promise.all([done(widgets.carol), done(widgets.alice), done(widgets.bob)]);

    await auditWidget(pages.carol, "a private result shown to its owner");
    const expected = countPrimes(RANGE.start, RANGE.end);
    const [carols] = await shownTasks(widgets.carol);
    assert.equal(primesShown(carols.status), expected, carols.status);
    assert.ok(carols.doneBy.includes("@alice:localhost") && carols.doneBy.includes("@bob:localhost"),
      `both nodes ran chunks: ${carols.doneBy}`);
    for (const name of ["alice", "bob"]) {
      const [theirs] = await shownTasks(widgets[name]);
      assert.equal(theirs.status, "Done: only carol sees the result", `${name} sees no count`);
    }
    const events = await room.roomEvents();
    const results = events.filter((e) => e.type === "org.potluck.result");
    assert.ok(results.length > 0);
    assert.ok(!JSON.stringify(events).includes(expected), "no room event holds the count");
    for (const event of results) {
      for (const outcome of event.content.outcomes) assert.match(outcome.output.sealed, /^[0-9a-f]{64}$/);
    }
  });
});
