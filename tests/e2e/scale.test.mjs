// The scale check only a native node makes cheap: twenty `potluck node`
// processes (one worker each, logged in with access tokens) and 200 tasks of
// two short chunks from twenty friends, on one Synapse with its default rate
// limits. Every task is done once with the right count, every node's ledger
// ends the same (each prints its agreement digest as it leaves), and the
// room events per task stay as the room simulation says (`cargo bench -p
// potluck-manifest --bench pool`, "the scale check": 4.09).
//
// The coordinator's rate limit paces the pool at about nine assignment
// events, so nine tasks, a minute (docs/protocol.md, "Rate-limit budget"):
// this takes some twenty-five minutes, almost all of it waiting, and
// tests/run.sh runs it beside the native and wasm tests and the build.
//
// Needs target/debug/potluck (tests/run.sh builds it).

import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { startNativeNode } from "../support/native-node.mjs";
import { matrix, roomEvents, roomPath } from "../support/chat.mjs";
import { ARTIFACTS, chunkOutputs } from "../support/pool-room.mjs";
import { countPrimes } from "../support/primes.mjs";
import { startSynapse } from "../support/synapse.mjs";

const NODES = 20;
const FRIENDS = 20;
const TASKS_EACH = 10; // one burst of a friend's account: all 200 go out at once
const TASKS = FRIENDS * TASKS_EACH;
const CHUNKS = 2;
const SPAN = 2_000_000; // numbers per task: a chunk takes well under a second
// The simulation's figure for this pool (README, Benchmarks).
const SIMULATED_EVENTS_PER_TASK = 4.09;
const ALL_DONE_MS = 45 * 60_000;
// manifest::limits::RESEND_AFTER_MS (30 s) and a margin: "once" is asserted
// only after every timer that could send a second copy ran out.
const RESEND_WINDOW_MS = 45_000;
const POTLUCK_TYPES = ["org.potluck.task", "org.potluck.assign", "org.potluck.result"];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const pad = (n) => String(n).padStart(2, "0");

describe("twenty native nodes and 200 tasks under default rate limits", () => {
  let synapse;
  let room; // { synapse, roomId }, as tests/support/chat.mjs takes it
  let host;
  let dir;
  const friends = [];
  const nodes = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "potluck-scale-"));
    await mkdir(ARTIFACTS, { recursive: true });
    synapse = await startSynapse({ defaultRateLimits: true });
    host = await synapse.registerUser("host", "host-password");
    // A public room: forty invites would wait on the inviter's rate limit.
    const created = await matrix({ synapse }, host, "POST", "/_matrix/client/v3/createRoom", {
      preset: "public_chat", name: "Potluck at scale",
      power_level_content_override: { events: { "org.potluck.node": 0 } },
    });
    room = { synapse, roomId: created.room_id };
    const members = [];
    for (let i = 0; i < NODES; i++) members.push({ name: `node${pad(i)}`, node: true });
    for (let i = 0; i < FRIENDS; i++) members.push({ name: `friend${pad(i)}`, node: false });
    for (const member of members) {
      Object.assign(member, await synapse.registerUser(member.name, `${member.name}-password`));
      await matrix(room, member, "POST", `/_matrix/client/v3/join/${encodeURIComponent(room.roomId)}`, {});
      if (!member.node) friends.push(member);
    }
    for (const member of members.filter((m) => m.node)) {
      const dataDir = join(dir, member.name);
      const node = startNativeNode(room, member, {
        dataDir, accessToken: member.accessToken, args: ["--accept", "primes"],
      });
      nodes.push({ member, node });
    }
  });

  after(async () => {
    for (const { node } of nodes) node.child.kill("SIGKILL");
    await synapse?.stop();
    if (process.env.POTLUCK_KEEP_TMP !== "1") await rm(dir, { recursive: true, force: true });
  });

  test("every task is done once with the right count, every ledger agrees, and events per task are the simulation's", { timeout: ALL_DONE_MS + 10 * 60_000 }, async () => {
    // Logged in with their tokens, every node announces itself.
    await Promise.all(nodes.map(({ node }) => node.waitForLine(/contributing/, 120_000)));
    const started = Date.now();
    const wanted = new Map();
    await Promise.all(friends.map(async (friend, f) => {
      for (let k = 0; k < TASKS_EACH; k++) {
        const start = (f * TASKS_EACH + k) * SPAN;
        const content = { v: 1, kind: "primes", params: { start, end: start + SPAN }, chunks: CHUNKS };
        const { event_id: id } = await matrix(room, friend, "PUT",
          `${roomPath(room)}/send/org.potluck.task/${friend.name}-${k}`, content);
        wanted.set(id, countPrimes(start, start + SPAN));
      }
    }));
    assert.equal(wanted.size, TASKS);

    // Done: each chunk of each task has its output in the room.
    let events;
    for (;;) {
      events = await roomEvents(room, host);
      const finished = new Set(chunkOutputs(events).map((o) => `${o.task} ${o.chunk}`));
      if (finished.size === TASKS * CHUNKS) break;
      assert.ok(Date.now() - started < ALL_DONE_MS, `${finished.size} of ${TASKS * CHUNKS} chunks done in ${ALL_DONE_MS} ms`);
      await sleep(10_000);
    }
    const tookMs = Date.now() - started;
    await sleep(RESEND_WINDOW_MS);
    events = await roomEvents(room, host);

    const byTask = new Map();
    for (const o of chunkOutputs(events)) {
      if (!byTask.has(o.task)) byTask.set(o.task, []);
      byTask.get(o.task).push(o);
    }
    assert.equal(byTask.size, TASKS, "every task has outputs, and only the friends' tasks");
    for (const [task, count] of wanted) {
      const done = byTask.get(task);
      if (done.length !== CHUNKS) {
        // Seen once in five runs (each chunk reported three times): what the
        // room and every node said of the task, for whoever looks into it.
        const said = nodes.flatMap(({ member, node }) =>
          node.lines.filter((l) => l.includes(task)).map((l) => `${member.name}: ${l}`));
        console.log(`# ${task}: ${done.map((o) => `chunk ${o.chunk} from ${o.sender}`).join(", ")}\n${said.join("\n")}`);
      }
      assert.deepEqual(done.map((o) => o.chunk).sort(), [0, 1], `each chunk of ${task} reported once`);
      assert.equal(done.reduce((sum, o) => sum + o.output.count, 0), count, `the primes of ${task}`);
    }
    const workers = new Set([...byTask.values()].flat().map((o) => o.sender));

    // Every node leaves on SIGTERM, printing its ledger's agreement as it goes.
    await Promise.all(nodes.map(({ node }) => { node.child.kill("SIGTERM"); return node.exited; }));
    const ledgers = nodes.map(({ node }) => node.lines.findLast((l) => /ledger: /.test(l)).match(/ledger: .*/)[0]);
    assert.equal(new Set(ledgers).size, 1, `every node's ledger is the same:\n${ledgers.join("\n")}`);
    assert.match(ledgers[0], new RegExp(`^ledger: ${TASKS} tasks, ${TASKS} done, digest [0-9a-f]{16}$`));

    const perTask = events.filter((e) => POTLUCK_TYPES.includes(e.type)).length / TASKS;
    console.log(`# scale: ${TASKS} tasks x ${CHUNKS} chunks over ${NODES} native nodes (${workers.size} ran chunks) in ${(tookMs / 60_000).toFixed(1)} min; ${perTask.toFixed(2)} room events per task (simulation ${SIMULATED_EVENTS_PER_TASK}); ${ledgers[0]}`);
    assert.ok(perTask <= 1 + 2 * CHUNKS, `${perTask} room events per task`);
    assert.ok(Math.abs(perTask - SIMULATED_EVENTS_PER_TASK) / SIMULATED_EVENTS_PER_TASK < 0.15,
      `${perTask.toFixed(2)} room events per task, the simulation ${SIMULATED_EVENTS_PER_TASK}`);
    // A task's two chunks go to two idle nodes at once.
    assert.ok(workers.size >= CHUNKS, `${workers.size} of ${NODES} nodes ran chunks`);
  });
});
