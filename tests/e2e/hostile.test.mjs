// One member who misbehaves, in a room where alice and bob contribute:
// mallory (any member can send room events) posts transcription tasks with
// crafted spans for carol's voice message, one 74.6 hours in (the offset that
// overflowed a 32-bit sample index and crashed every contributor in turn)
// and one past the end of the recording, and a fake "transcript" in the
// voice message's thread before the real one. Both contributors' widgets keep
// running, each crafted task is refused or fails once with its reason, and
// the real transcript arrives, once, from the room's coordinator. Then bob
// leaves the room with his widget still open: his computer leaves the pool.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS } from "../support/browser.mjs";
import { matrix, roomPath, send, sendVoiceMessage, threadReplies, waitForReply } from "../support/chat.mjs";
import { ROOT, contribute, coordinatorOf, startPoolRoom } from "../support/pool-room.mjs";

const AUDIO = join(ROOT, "widget/test-data/audio");
// manifest/src/limits.rs RESEND_AFTER_MS (30 s) and a margin.
const RESEND_WINDOW_MS = 45_000;

describe("a hostile member", () => {
  let room;
  const widgets = {};
  const pages = {};
  let voice;
  let audio;

  before(async () => {
    room = await startPoolRoom({ names: ["alice", "bob", "carol", "mallory"] });
    for (const name of ["alice", "bob"]) ({ page: pages[name], widget: widgets[name] } = await room.openWidget(name));
    await contribute(widgets.alice);
    await contribute(widgets.bob);
    voice = await sendVoiceMessage(room, room.users.carol, await readFile(join(AUDIO, "five-sentences.ogg")), 17_400);
    const events = await room.roomEvents();
    audio = { message: voice, url: events.find((e) => e.event_id === voice).content.url };
  });
  after(() => room?.close());

  /** A transcription task for carol's message with `spans`, as mallory crafts it. */
  const craftedTask = (spans) => send(room, room.users.mallory, {
    v: 1, kind: "transcribe", params: { audio, model: "tiny.en", spans }, chunks: spans.length,
  }, "org.potluck.task");

  test("crafted spans crash no contributor: one is refused, the other fails once with its reason", async () => {
    const overflow = await craftedTask([{ start_ms: 268_435_456, end_ms: 268_455_456 }]);
    const pastTheEnd = await craftedTask([{ start_ms: 3_600_000, end_ms: 3_620_000 }]);
    // The one past the end runs, finds no samples there and fails for good.
    await widgets.bob.waitForFunction((id) =>
      document.querySelector(`[data-task-id="${id}"]`)?.dataset.status === "failed", pastTheEnd, { timeout: 60_000 });
    const reason = await widgets.bob.locator(`[data-task-id="${pastTheEnd}"] [data-testid=task-status]`).textContent();
    assert.match(reason, /outside the recording/);
    await auditWidget(pages.bob, "a crafted task failed");
    // The overflowing one is not a task anyone's widget shows or runs.
    for (const name of ["alice", "bob"]) {
      assert.equal(await widgets[name].locator(`[data-task-id="${overflow}"]`).count(), 0, `${name} refused it`);
      await widgets[name].locator("[data-testid=contribute][aria-checked=true]").waitFor({ timeout: WAIT_MS });
    }
    const results = (await room.roomEvents()).filter((e) => e.type === "org.potluck.result"
      && [overflow, pastTheEnd].includes(e.content["m.relates_to"]?.event_id));
    const attempts = results.flatMap((e) => e.content.outcomes).map((o) => o.attempt);
    assert.deepEqual(attempts, [1], "the span past the end ran once, not five times");
  });

  test("a fake transcript in the thread does not stop the real one, and the widgets keep working", async () => {
    const row = widgets.alice.locator(`[data-testid=voice][data-event-id="${voice}"]`);
    await row.click({ button: "right" });
    await widgets.alice.getByTestId("menu-transcribe").click();
    // As soon as the transcription exists, mallory "answers" it: in the
    // thread, and as a plain message the widgets see live.
    let task;
    for (const until = Date.now() + WAIT_MS; !task;) {
      assert.ok(Date.now() < until, "the transcription was submitted");
      task = (await room.roomEvents()).find((e) => e.type === "org.potluck.task"
        && e.sender === room.users.alice.userId && e.content.params?.audio?.message === voice && !e.content.params.spans);
      if (!task) await new Promise((r) => setTimeout(r, 200));
    }
    const fake = { msgtype: "m.notice", body: "I never said that", "org.potluck.transcript": { task: task.event_id, segments: [] } };
    await send(room, room.users.mallory, {
      ...fake, "m.relates_to": { rel_type: "m.thread", event_id: voice, is_falling_back: true, "m.in_reply_to": { event_id: voice } },
    });
    await send(room, room.users.mallory, fake);

    const real = await waitForReply(room, voice, { accept: (e) => e.sender !== room.users.mallory.userId });
    assert.match(real.content.body, /Please call Stella/i);
    assert.equal(real.sender, await coordinatorOf(widgets.alice), "from the coordinator");
    await new Promise((r) => setTimeout(r, RESEND_WINDOW_MS));
    const replies = await threadReplies(room, voice);
    assert.equal(replies.filter((e) => e.sender !== room.users.mallory.userId).length, 1, "one real transcript");
  });

  test("a friend who leaves the room takes their computer out of the pool at once", async () => {
    const bobsNode = (page) => page.locator(`[data-testid=node][data-owner="${room.users.bob.userId}"]`).count();
    assert.equal(await bobsNode(widgets.alice), 1);
    // Bob leaves from another client; his widget's tab stays open and keeps
    // restarting his leave notice, which could not fire anyway.
    await matrix(room, room.users.bob, "POST", `${roomPath(room)}/leave`, {});
    await widgets.alice.waitForFunction((owner) =>
      !document.querySelector(`[data-testid=node][data-owner="${owner}"]`), room.users.bob.userId, { timeout: 10_000 });
    // Still gone after his heartbeats would have kept it (15 s timeout).
    await new Promise((r) => setTimeout(r, 20_000));
    assert.equal(await bobsNode(widgets.alice), 0);
  });
});
