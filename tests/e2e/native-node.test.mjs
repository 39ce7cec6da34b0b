// An always-on friend: `potluck node` (matrix-sdk, natively) contributes in
// the same room as a browser widget, on a real Synapse. Bob runs the native
// node, logged in with his password once; Alice contributes from her
// browser; Carol submits. Work goes to both; a long voice message is split
// over both and its transcript arrives once; the native node killed with
// SIGKILL mid-span has its span finished by Alice's browser; restarted
// from its stored session and stopped with SIGTERM, it hands its lease back
// at once instead of after the node timeout.
//
// Needs dist/, target/debug/potluck, the models (scripts/fetch-models.sh;
// the native node fetches its own copy from the tests' stand-in for the
// Hugging Face Hub) and the speech from scripts/whisper-test-data.sh
// (tests/run.sh makes them).

import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { WAIT_MS } from "../support/browser.mjs";
import { startNativeNode } from "../support/native-node.mjs";
import { send, sendVoiceMessage, threadReplies, waitForReply } from "../support/chat.mjs";
import { countPrimes } from "../support/primes.mjs";
import { primesShown, shownRanges } from "../support/task-words.mjs";
import {
  ROOT, contribute, shownTasks, startPoolRoom, submitPrimes, waitAllDone,
} from "../support/pool-room.mjs";
import { wer } from "../support/wer.mjs";

const AUDIO = join(ROOT, "widget/test-data/audio");
// A node gone by its leave notice: manifest::limits::NODE_TIMEOUT_MS (15 s)
// after it was killed, plus delivery.
const GONE_WITHIN_MS = 15_000 + 10_000;
// Stopped with SIGTERM, it says so itself: well before that timeout.
const LEFT_WITHIN_MS = 5_000;
// manifest::limits::RESEND_AFTER_MS (30 s) and a margin: "exactly once" is
// asserted only after every timer that could post a second reply ran out.
const RESEND_WINDOW_MS = 45_000;

const nodes = (widget) => widget.getByTestId("node").evaluateAll((els) =>
  els.map((e) => ({ owner: e.dataset.owner, text: e.textContent })));
const nodeCount = (widget, n, timeout = WAIT_MS) => widget.waitForFunction(
  (want) => document.querySelectorAll("[data-testid=node]").length === want, n, { timeout });
// The log line the node writes when it starts a chunk.
const RUNNING = /running a chunk task=(\$\S+) chunk=(\d+)/;

/**
 * Carol sends the 88.6 s voice message and replies `!transcribe` to it from
 * plain chat, as in Element; returns the message's id, what it says and
 * faster-whisper's result on it.
 */
async function carolAsksForATranscript(room) {
  const speech = await readFile(join(AUDIO, "voice-message.ogg"));
  const text = (await readFile(join(ROOT, "tests/fixtures/speech/voice-message.txt"), "utf8")).split("\n").join(" ");
  const reference = JSON.parse(await readFile(join(AUDIO, "voice-message-reference/result.json"), "utf8"));
  const message = await sendVoiceMessage(room, room.users.carol, speech, Math.round(reference.duration * 1000));
  await send(room, room.users.carol, {
    msgtype: "m.text", body: "!transcribe", "m.relates_to": { "m.in_reply_to": { event_id: message } },
  });
  return { message, text, reference };
}

describe("a native node beside a browser", () => {
  let room;
  let dataDir;
  let modelsDir;
  let bobNode;
  const widgets = {};

  before(async () => {
    room = await startPoolRoom({ names: ["alice", "bob", "carol"] });
    dataDir = await mkdtemp(join(tmpdir(), "potluck-native-"));
    modelsDir = await mkdtemp(join(tmpdir(), "potluck-native-models-"));
  });
  after(async () => {
    bobNode?.child.kill("SIGKILL");
    await room?.close();
  });

  test("bob starts `potluck node` with his password; it fetches the pinned model, and friends see his machine beside alice's browser, taking no scripts", async () => {
    bobNode = startNativeNode(room, room.users.bob, { dataDir, models: modelsDir });
    await bobNode.waitForLine(/contributing/, 60_000);
    const fetched = [...room.modelHub.sent.keys()].filter((path) => path.includes("tiny.en"));
    assert.equal(fetched.length, 3, `model files fetched: ${fetched}`);
    ({ widget: widgets.alice } = await room.openWidget("alice"));
    ({ widget: widgets.carol } = await room.openWidget("carol"));
    await contribute(widgets.alice);
    await nodeCount(widgets.carol, 2);
    const bobs = (await nodes(widgets.carol)).find((n) => n.owner === room.users.bob.userId);
    assert.match(bobs.text, /no scripts/, bobs.text);
  });

  test("primes tasks are shared by the native node and the browser, each chunk done once with the right count", async () => {
    const tasks = 4;
    const chunks = 4;
    const range = 200_000_000;
    for (let k = 0; k < tasks; k++) {
      await submitPrimes(widgets.carol, { start: k * range, end: (k + 1) * range, chunks });
    }
    await waitAllDone(widgets.carol, tasks, 240_000);
    const shown = await shownTasks(widgets.carol);
    const ranges = await shownRanges(widgets.carol);
    const doneBy = new Set();
    for (const task of shown) {
      const [start, end] = ranges[task.id];
      assert.equal(primesShown(task.status), countPrimes(start, end), `task [${start}, ${end}): ${task.status}`);
      assert.equal(task.doneBy.length, chunks, `one accepted result per chunk: ${task.doneBy}`);
      task.doneBy.forEach((who) => doneBy.add(who));
    }
    assert.deepEqual([...doneBy].sort(), [room.users.alice.userId, room.users.bob.userId]);
  });

  test("a long voice message is split over both, and its transcript arrives once", async () => {
    const { message, text, reference } = await carolAsksForATranscript(room);
    const started = Date.now();
    const reply = await waitForReply(room, message);
    const took = (Date.now() - started) / 1000;

    const events = await room.roomEvents();
    const parts = events.filter((e) => e.type === "org.potluck.task" && e.content.parent).map((e) => e.event_id);
    const spanRunners = new Set(events.filter((e) => e.type === "org.potluck.result"
      && parts.includes(e.content["m.relates_to"]?.event_id)
      && e.content.outcomes.some((o) => "output" in o)).map((e) => e.sender));
    assert.deepEqual([...spanRunners].sort(), [room.users.alice.userId, room.users.bob.userId], "spans ran on both");
    const ours = wer(text, reply.content.body);
    const fasterWhisper = wer(text, reference.float32.text);
    console.log(`# ${reference.duration.toFixed(1)} s transcribed in ${took.toFixed(0)} s by a native node and a browser; WER ${ours.toFixed(3)}, faster-whisper ${fasterWhisper.toFixed(3)}`);
    assert.ok(ours <= fasterWhisper + 0.03, `WER ${ours} against faster-whisper's ${fasterWhisper}: ${reply.content.body}`);

    await new Promise((r) => setTimeout(r, RESEND_WINDOW_MS));
    assert.equal((await threadReplies(room, message)).length, 1, "exactly one transcript");
  });

  test("killed with SIGKILL in the middle of a span, the native node's span is finished by alice's browser, and the transcript arrives once", async () => {
    const seen = bobNode.lines.length;
    const { message, text, reference } = await carolAsksForATranscript(room);
    // The transcription's own task (its plan); its parts are the spans.
    let transcription;
    while (!transcription) {
      transcription = (await room.roomEvents()).find((e) => e.type === "org.potluck.task"
        && e.content.kind === "transcribe" && !e.content.parent && e.content.params?.audio?.message === message);
      if (!transcription) await new Promise((r) => setTimeout(r, 250));
    }
    const span = new RegExp(`running a chunk task=(?!\\${transcription.event_id} )(\\$\\S+) chunk=(\\d+) kind="transcribe"`);
    // A span takes about a second natively: bob is killed within a few
    // milliseconds of starting one, before its result can go out.
    const [, part, chunk] = await bobNode.waitForLine(span, 120_000, seen);
    bobNode.child.kill("SIGKILL");
    await nodeCount(widgets.carol, 1, GONE_WITHIN_MS);
    const reply = await waitForReply(room, message);

    const results = (await room.roomEvents()).filter((e) => e.type === "org.potluck.result"
      && e.content["m.relates_to"]?.event_id === part);
    const ranIt = results.filter((e) => e.content.outcomes.some((o) => o.chunk === Number(chunk) && "output" in o)).map((e) => e.sender);
    assert.deepEqual(ranIt, [room.users.alice.userId], "alice's browser transcribed the span bob's node left, and only she reported it");
    const ours = wer(text, reply.content.body);
    console.log(`# after bob's node was killed mid-span: WER ${ours.toFixed(3)}`);
    assert.ok(ours <= wer(text, reference.float32.text) + 0.03, `WER ${ours}: ${reply.content.body}`);
    await new Promise((r) => setTimeout(r, RESEND_WINDOW_MS));
    assert.equal((await threadReplies(room, message)).length, 1, "exactly one transcript");
  });

  test("restarted from its stored session and stopped with SIGTERM, it hands its lease back within seconds", async () => {
    // No password this time: the session saved on the first start is used.
    bobNode = startNativeNode(room, room.users.bob, { dataDir, models: modelsDir, password: null });
    await bobNode.waitForLine(/restored the saved session/, 60_000);
    await nodeCount(widgets.carol, 2, 60_000);
    const tasksBefore = (await shownTasks(widgets.carol)).length;
    await submitPrimes(widgets.carol, { start: 0, end: 600_000_000, chunks: 2 });
    const [, task, chunk] = await bobNode.waitForLine(RUNNING, 60_000);
    const stoppedAt = Date.now();
    bobNode.child.kill("SIGTERM");
    await nodeCount(widgets.carol, 1, LEFT_WITHIN_MS);
    const leftAfterMs = Date.now() - stoppedAt;
    assert.deepEqual(await bobNode.exited, { code: 0, signal: null }, "a clean exit");
    await waitAllDone(widgets.carol, tasksBefore + 1, 300_000);
    const handedBack = (await shownTasks(widgets.carol)).find((t) => t.id === task);
    assert.equal(handedBack.doneBy[Number(chunk)], room.users.alice.userId, "alice ran the chunk bob's node gave back");
    console.log(`# SIGTERM: bob's node left the pool after ${leftAfterMs} ms`);
  });
});
