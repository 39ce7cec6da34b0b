// Voice messages to transcripts across friends, end to end: a real Synapse,
// the test host on http://127.0.0.1, the release widget on http://localhost,
// the real tiny.en model served beside it, and real speech sent as Element
// sends a voice message (Ogg Opus, MSC3245). Carol talks; alice right-clicks
// her message and picks Transcribe; alice and bob contribute; the transcript
// comes back as a threaded reply. Then bob's page closes in the middle of a
// transcription, a `!transcribe` reply from plain chat, and a file that is
// not audio.
//
// Needs dist/, the models (scripts/fetch-models.sh), the speech made by
// scripts/whisper-test-data.sh and target/debug/potluck to score transcripts
// (tests/run.sh makes all of them first).

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS } from "../support/browser.mjs";
import { ARTIFACTS, ROOT, contribute, startPoolRoom } from "../support/pool-room.mjs";
import { wer } from "../support/wer.mjs";

const AUDIO = join(ROOT, "widget/test-data/audio");
// Allowed above faster-whisper's word error rate on the same audio (the bar).
// Issue 23: within one point of faster-whisper with its defaults, which
// condition each window on the text before it.
const WER_MARGIN = 0.01;
const TRANSCRIPT_WITHIN_MS = 240_000;
// manifest/src/limits.rs RESEND_AFTER_MS (30 s) and a margin: "exactly once"
// is asserted only after this long past the last reply.
const RESEND_WINDOW_MS = 45_000;

/** Uploads `bytes` to the media repository as `user`; returns the mxc URI. */
async function upload(room, user, bytes, type) {
  const response = await fetch(`${room.synapse.baseUrl}/_matrix/media/v3/upload?filename=voice.ogg`, {
    method: "POST", headers: { Authorization: `Bearer ${user.accessToken}`, "Content-Type": type }, body: bytes,
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()).content_uri;
}

async function send(room, user, content, type = "m.room.message") {
  const txn = `t${Date.now()}${Math.random()}`;
  const url = `${room.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}/send/${type}/${txn}`;
  const response = await fetch(url, {
    method: "PUT", headers: { Authorization: `Bearer ${user.accessToken}`, "Content-Type": "application/json" },
    body: JSON.stringify(content),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()).event_id;
}

/** A voice message as Element sends one (MSC3245 voice, MSC1767 audio). */
async function sendVoiceMessage(room, user, bytes, durationMs, mimetype = "audio/ogg") {
  const url = await upload(room, user, bytes, mimetype);
  return send(room, user, {
    msgtype: "m.audio", body: "Voice message", url,
    info: { duration: durationMs, mimetype, size: bytes.length },
    "org.matrix.msc1767.text": "Voice message",
    "org.matrix.msc1767.file": { url, name: "Voice message.ogg", mimetype, size: bytes.length },
    "org.matrix.msc1767.audio": { duration: durationMs, waveform: [0, 256, 512, 1024, 512, 256] },
    "org.matrix.msc3245.voice": {},
  });
}

/** The Potluck replies in `message`'s thread. */
async function repliesTo(room, message) {
  return (await room.roomEvents()).filter((e) => e.type === "m.room.message"
    && e.content["org.potluck.transcript"] && e.content["m.relates_to"]?.event_id === message);
}

async function waitForReply(room, message, timeout = TRANSCRIPT_WITHIN_MS) {
  const until = Date.now() + timeout;
  while (Date.now() < until) {
    const replies = await repliesTo(room, message);
    if (replies.length > 0) return replies[0];
    await new Promise((r) => setTimeout(r, 2_000));
  }
  throw new Error(`no transcript for ${message} within ${timeout / 1000} s`);
}

/** Which accounts posted results for the chunks of the parts of `task`. */
async function spanRunners(room, task) {
  const events = await room.roomEvents();
  const parts = events.filter((e) => e.type === "org.potluck.task" && e.content.parent === task).map((e) => e.event_id);
  return new Set(events.filter((e) => e.type === "org.potluck.result" && parts.includes(e.content["m.relates_to"]?.event_id)
    && e.content.outcomes.some((o) => "output" in o)).map((e) => e.sender));
}

describe("transcribing voice messages", () => {
  let room;
  let speech;
  let text;
  let fwWer;
  let fwUnconditionedWer;
  let durationMs;
  const pages = {};
  const widgets = {};
  /** Every voice message a test asked to transcribe: each must get one reply. */
  const transcribed = [];

  before(async () => {
    speech = await readFile(join(AUDIO, "voice-message.ogg"));
    text = (await readFile(join(ROOT, "tests/fixtures/speech/voice-message.txt"), "utf8")).split("\n").join(" ");
    const reference = JSON.parse(await readFile(join(AUDIO, "voice-message-reference/result.json"), "utf8"));
    durationMs = Math.round(reference.duration * 1000);
    fwWer = wer(text, reference.float32.text);
    fwUnconditionedWer = wer(text, reference.float32.unconditioned.text);
    room = await startPoolRoom({ names: ["alice", "bob", "carol"] });
    for (const name of ["alice", "bob"]) {
      ({ page: pages[name], widget: widgets[name] } = await room.openWidget(name));
    }
  });
  after(() => room?.close());

  test("alice right-clicks carol's voice message, picks Transcribe, and the transcript arrives in its thread", async () => {
    const message = await sendVoiceMessage(room, room.users.carol, speech, durationMs);
    const row = widgets.alice.locator(`[data-testid=voice][data-event-id="${message}"]`);
    await row.waitFor({ timeout: WAIT_MS });
    const seconds = Math.ceil(durationMs / 1000);
    const shownDuration = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
    assert.match(await row.textContent(), new RegExp(`carol.*${shownDuration}`), "sender and duration shown");
    // Nobody contributes yet: the request waits, visibly.
    await row.click({ button: "right" });
    await widgets.alice.getByTestId("menu-transcribe").click();
    await widgets.alice.waitForFunction((id) =>
      document.querySelector(`[data-testid=voice][data-event-id="${id}"]`)?.dataset.state === "queued", message, { timeout: WAIT_MS });

    const started = Date.now();
    await contribute(widgets.alice);
    await contribute(widgets.bob);
    const reply = await waitForReply(room, message);
    const took = (Date.now() - started) / 1000;

    assert.equal(reply.content.msgtype, "m.notice");
    assert.equal(reply.content["m.relates_to"].rel_type, "m.thread");
    const ours = wer(text, reply.content.body);
    console.log(`transcript of ${durationMs / 1000} s in ${took.toFixed(0)} s with 2 nodes; WER ${ours.toFixed(3)}, faster-whisper ${fwWer.toFixed(3)} (not conditioned: ${fwUnconditionedWer.toFixed(3)})`);
    console.log(`  ${reply.content.body}`);
    assert.ok(ours <= fwWer + WER_MARGIN, `WER ${ours.toFixed(3)} vs faster-whisper's ${fwWer.toFixed(3)}`);

    const task = reply.content["org.potluck.transcript"].task;
    const runners = await spanRunners(room, task);
    assert.deepEqual([...runners].sort(), [room.users.alice.userId, room.users.bob.userId].sort(), "both nodes transcribed");

    // Everyone's widget shows it, bob's too.
    for (const name of ["alice", "bob"]) {
      await widgets[name].waitForFunction((id) =>
        document.querySelector(`[data-testid=voice][data-event-id="${id}"]`)?.dataset.state === "done", message, { timeout: WAIT_MS });
    }
    const shown = await widgets.bob.locator(`[data-testid=voice][data-event-id="${message}"] [data-testid=transcript]`).inputValue();
    assert.equal(shown, reply.content.body);
    // Chromium refuses Cache Storage to a widget on another site than its
    // host (here localhost in 127.0.0.1's page): the friend is told where the
    // model will come from next time (model-cache.test.mjs measures it).
    // (A worker still downloading shows its progress there first.)
    const kept = /tiny\.en model is ready\. Your browser lets widgets keep no files, so a new tab gets it again/;
    await widgets.alice.waitForFunction((source) => new RegExp(source).test(
      document.querySelector("[data-testid=worker-notice]")?.textContent ?? ""), kept.source, { timeout: WAIT_MS });
    const notice = await widgets.alice.getByTestId("worker-notice").textContent();
    console.log(`alice's widget says: ${notice}`);
    assert.match(notice, kept);
    await pages.alice.screenshot({ path: join(ARTIFACTS, "transcribe-widget.png") });
    await auditWidget(pages.alice, "a transcript in the widget");
    transcribed.push(message);
  });

  test("bob's page closes while he transcribes, and the transcript still arrives, once", async () => {
    const message = await sendVoiceMessage(room, room.users.carol, speech, durationMs);
    const row = widgets.bob.locator(`[data-testid=voice][data-event-id="${message}"]`);
    await row.waitFor({ timeout: WAIT_MS });
    // From the keyboard this time: focus the row, Shift+F10, Enter.
    await row.focus();
    await row.press("Shift+F10");
    await widgets.bob.getByTestId("menu-transcribe").press("Enter");
    // Close bob's page once his machine runs a span.
    await widgets.bob.getByTestId("local-job").first().waitFor({ timeout: TRANSCRIPT_WITHIN_MS });
    await pages.bob.close();
    const reply = await waitForReply(room, message);
    const ours = wer(text, reply.content.body);
    console.log(`after bob left: WER ${ours.toFixed(3)}`);
    assert.ok(ours <= fwWer + WER_MARGIN, `WER ${ours.toFixed(3)} vs faster-whisper's ${fwWer.toFixed(3)}`);
    transcribed.push(message);
  });

  test("a !transcribe reply in plain chat starts one transcription, and a file that is not audio fails once, with the reason", async () => {
    const short = await readFile(join(AUDIO, "five-sentences.ogg"));
    const message = await sendVoiceMessage(room, room.users.carol, short, 17_400);
    await widgets.alice.locator(`[data-testid=voice][data-event-id="${message}"]`).waitFor({ timeout: WAIT_MS });
    await send(room, room.users.carol, {
      msgtype: "m.text", body: "!transcribe", "m.relates_to": { "m.in_reply_to": { event_id: message } },
    });
    const reply = await waitForReply(room, message);
    assert.match(reply.content.body, /Please call Stella/);

    const broken = await sendVoiceMessage(room, room.users.carol, Buffer.from("this is not audio at all"), 5_000);
    await widgets.alice.locator(`[data-testid=voice][data-event-id="${broken}"]`).waitFor({ timeout: WAIT_MS });
    await send(room, room.users.carol, {
      msgtype: "m.text", body: "!transcribe", "m.relates_to": { "m.in_reply_to": { event_id: broken } },
    });
    const failure = await waitForReply(room, broken, 60_000);
    assert.match(failure.content.body, /Could not transcribe this: .*decoded/);
    transcribed.push(message, broken);
  });

  test("every voice message got exactly one reply, after every resend timer ran out", async () => {
    assert.equal(transcribed.length, 4, "the tests above each asked for their transcripts");
    await new Promise((r) => setTimeout(r, RESEND_WINDOW_MS));
    for (const message of transcribed) {
      assert.equal((await repliesTo(room, message)).length, 1, `one reply to ${message}`);
    }
  });
});
