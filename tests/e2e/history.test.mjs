// A room as friends live in it: everything happens before anyone opens the
// widget. A moderator allows a script, carol sends two voice messages, dan
// replies `!transcribe` to one of them and asks for a `!run` in plain chat.
// Only then do alice and bob open Potluck (the test host reads as Element
// does: the loaded live timeline, with the capabilities the widget asked
// for). Their widgets list both voice messages and the allowed script, say
// nothing is unreadable, answer both commands, and transcribe the other
// message from the widget; after every resend timer has run out, each voice
// message has exactly one transcript in its thread.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS } from "../support/browser.mjs";
import { ROOT, contribute, openMore, startPoolRoom } from "../support/pool-room.mjs";
import { matrix, roomPath, send, sendVoiceMessage, threadReplies, waitForReply } from "../support/chat.mjs";
import { serveStatic } from "../support/static-server.mjs";

const AUDIO = join(ROOT, "widget/test-data/audio");
const TRANSCRIPT_WITHIN_MS = 240_000;
// manifest/src/limits.rs RESEND_AFTER_MS (30 s) and a margin.
const RESEND_WINDOW_MS = 45_000;

/** Σ i³ for i in [0, 100): the `!run` below, computed here, not by the script. */
const SUM_OF_CUBES_BELOW_100 = (99 * 100 / 2) ** 2;

describe("a room's past, before any widget opened", () => {
  let room;
  let scripts;
  const widgets = {};
  const pages = {};
  let voiceA;
  let voiceB;
  let runCommand;

  before(async () => {
    room = await startPoolRoom({ names: ["alice", "bob", "carol", "dan"] });
    scripts = await serveStatic({ root: ROOT, headers: { "Access-Control-Allow-Origin": "*" } });
    const { alice, carol, dan } = room.users;
    const script = "examples/sum-of-squares/task.js";
    const integrity = `sha384-${createHash("sha384").update(await readFile(join(ROOT, script))).digest("base64")}`;
    await matrix(room, alice, "PUT", `${roomPath(room)}/state/org.potluck.allowlist/`, {
      v: 1, scripts: [{ name: "squares", url: `${scripts.url}${script}`, integrity, description: "sums i^power over a range" }],
    });
    const short = await readFile(join(AUDIO, "five-sentences.ogg"));
    voiceA = await sendVoiceMessage(room, carol, short, 17_400);
    voiceB = await sendVoiceMessage(room, carol, short, 17_400);
    await send(room, dan, { msgtype: "m.text", body: "!transcribe", "m.relates_to": { "m.in_reply_to": { event_id: voiceB } } });
    runCommand = await send(room, dan, { msgtype: "m.text", body: '!run squares 0 100 10 {"power": 3}' });
    for (const name of ["alice", "bob"]) {
      ({ page: pages[name], widget: widgets[name] } = await room.openWidget(name));
      await openMore(widgets[name]); // where the allowlist is
    }
  });
  after(async () => {
    await scripts?.close();
    await room?.close();
  });

  test("the widgets list the voice messages and the allowed script, and say nothing is unreadable", async () => {
    for (const name of ["alice", "bob"]) {
      for (const message of [voiceA, voiceB]) {
        await widgets[name].locator(`[data-testid=voice][data-event-id="${message}"]`).waitFor({ timeout: WAIT_MS });
      }
      await widgets[name].getByTestId("allowlist").getByText("squares", { exact: true }).waitFor({ timeout: WAIT_MS });
      assert.equal(await widgets[name].getByTestId("history-problem").count(), 0, `${name}'s widget read the room's past`);
    }
    await auditWidget(pages.alice, "the room's past read on opening");
  });

  test("the !transcribe and !run sent while no widget was open are answered, and Transcribe works on the older message", async () => {
    await contribute(widgets.alice);
    await contribute(widgets.bob);
    // Friends' scripts run only after each contributor's yes.
    const approving = setInterval(() => {
      for (const w of Object.values(widgets)) w.getByTestId("consent-allow").first().click({ timeout: 200 }).catch(() => {});
    }, 500);
    try {
      const replyB = await waitForReply(room, voiceB);
      assert.match(replyB.content.body, /Please call Stella/i);

      const row = widgets.alice.locator(`[data-testid=voice][data-event-id="${voiceA}"]`);
      await row.click({ button: "right" });
      await widgets.alice.getByTestId("menu-transcribe").click();
      const replyA = await waitForReply(room, voiceA);
      assert.match(replyA.content.body, /Please call Stella/i);

      // The !run became one task in dan's name, and it finished with Σ i³.
      const runTasks = async () => (await room.roomEvents())
        .filter((e) => e.type === "org.potluck.task" && e.content.command?.event_id === runCommand);
      for (const until = Date.now() + WAIT_MS; (await runTasks()).length === 0;) {
        assert.ok(Date.now() < until, "the !run became a task");
        await new Promise((r) => setTimeout(r, 500));
      }
      const [task] = await runTasks();
      assert.equal(task.content.command.sender, room.users.dan.userId, "in dan's name");
      const shown = widgets.bob.locator(`[data-task-id="${task.event_id}"]`);
      await widgets.bob.waitForFunction((id) =>
        document.querySelector(`[data-task-id="${id}"]`)?.dataset.status === "done", task.event_id, { timeout: TRANSCRIPT_WITHIN_MS });
      const result = JSON.parse(await shown.getByTestId("task-result").textContent());
      // The script reports each sum as a decimal string (it sums BigInts).
      assert.equal(result.outputs.reduce((sum, o) => sum + BigInt(o.sum), 0n), BigInt(SUM_OF_CUBES_BELOW_100));
      assert.equal((await runTasks()).length, 1, "one task for the command");
    } finally {
      clearInterval(approving);
    }
  });

  test("each voice message has one transcript in its thread, after every resend timer ran out", async () => {
    await new Promise((r) => setTimeout(r, RESEND_WINDOW_MS));
    for (const message of [voiceA, voiceB]) {
      assert.equal((await threadReplies(room, message)).length, 1, `one reply to ${message}`);
    }
  });
});
