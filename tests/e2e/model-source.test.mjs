// Where the Whisper model comes from: the widget URL's `models=` names a
// server with the Hugging Face Hub's path shape (the Hub itself by default).
// Every transcription test already fetches through a Hub stand-in (redirect
// for model.bin, CORS) with dist/ served alone; this one serves a model whose
// config.json is not the pinned file: the widget refuses it, and the voice
// message's thread says why, once. While the model downloads, the widget
// shows how far it got. And a contributor loads the model as soon as a voice
// message arrives, so that the first transcript does not wait for it.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS, widgetFrame } from "../support/browser.mjs";
import { serveModelHub } from "../support/model-hub.mjs";
import { MODELS, ROOT, contribute, startPoolRoom } from "../support/pool-room.mjs";

const AUDIO = join(ROOT, "widget/test-data/audio");

/** carol posts the five-sentence recording as a voice message; its event id. */
async function postVoice(room) {
  const bytes = await readFile(join(AUDIO, "five-sentences.ogg"));
  const { carol } = room.users;
  const upload = await fetch(`${room.synapse.baseUrl}/_matrix/media/v3/upload?filename=voice.ogg`, {
    method: "POST", headers: { Authorization: `Bearer ${carol.accessToken}`, "Content-Type": "audio/ogg" }, body: bytes,
  });
  const { content_uri: url } = await upload.json();
  const send = await fetch(`${room.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}/send/m.room.message/v${Date.now()}`, {
    method: "PUT", headers: { Authorization: `Bearer ${carol.accessToken}`, "Content-Type": "application/json" },
    body: JSON.stringify({ msgtype: "m.audio", body: "Voice message", url, info: { duration: 17_400, mimetype: "audio/ogg", size: bytes.length }, "org.matrix.msc3245.voice": {} }),
  });
  return (await send.json()).event_id;
}

/** Records every text the widget's worker notice shows, as it changes, in `window.notices`. */
async function recordNotices(widget) {
  await widget.evaluate(() => {
    window.notices = [];
    new MutationObserver(() => {
      const text = document.querySelector("[data-testid=worker-notice]")?.textContent;
      if (text && text !== window.notices.at(-1)) window.notices.push(text);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}

/** Right-clicks `message` in `widget`, picks Transcribe and waits for its reply in the thread. */
async function transcribe(room, widget, message) {
  const row = widget.locator(`[data-testid=voice][data-event-id="${message}"]`);
  await row.waitFor({ timeout: WAIT_MS });
  await row.click({ button: "right" });
  await widget.getByTestId("menu-transcribe").click();
  let replies = [];
  for (const until = Date.now() + 120_000; replies.length === 0 && Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 1_000));
    replies = (await room.roomEvents()).filter((e) => e.content?.["org.potluck.transcript"] && e.content["m.relates_to"]?.event_id === message);
  }
  assert.equal(replies.length, 1, "one reply");
  return replies[0];
}

describe("a model file that is not the pinned one", () => {
  let room;
  let tampered;
  before(async () => {
    tampered = await serveModelHub({
      models: MODELS,
      tamper: (_model, file, bytes) => (file === "config.json" ? Buffer.concat([bytes, Buffer.from(" ")]) : bytes),
    });
    room = await startPoolRoom({ names: ["alice", "carol"] });
  });
  after(async () => {
    await room?.close();
    await tampered?.close();
  });

  test("is refused, and the transcription fails with the reason", async () => {
    const page = await room.open("alice", { autoApprove: true, widgetUrl: room.widgetUrl(tampered.url) });
    const widget = await widgetFrame(page);
    await widget.getByTestId("contribute").waitFor({ timeout: WAIT_MS });
    await contribute(widget);
    // Every notice the widget shows, as it changes: the download's progress among them.
    await recordNotices(widget);
    const reply = await transcribe(room, widget, await postVoice(room));
    console.log(`the thread says: ${reply.content.body}`);
    assert.match(reply.content.body, /config\.json is not the file Potluck expects/);
    assert.ok(tampered.requests.some((r) => r.includes("/Systran/faster-whisper-tiny.en/resolve/")), "fetched at the Hub's path");
    await auditWidget(page, "a transcription failed for a wrong model file");
    const notices = await widget.evaluate(() => window.notices);
    console.log(`notices while the model downloaded: ${notices.length}, last: ${notices.at(-1)}`);
    assert.ok(notices.some((n) => /^Downloading the tiny\.en model: \d+ of 76 MB$/.test(n)), notices.join(" | "));
  });
});

describe("a voice message while a friend contributes", () => {
  let room;
  before(async () => {
    room = await startPoolRoom({ names: ["alice", "carol"] });
  });
  after(() => room?.close());

  test("gets the model ready before anyone asks, so that its transcript needs no download", async () => {
    const { widget } = await room.openWidget("alice");
    await contribute(widget);
    await recordNotices(widget);
    const message = await postVoice(room);
    // Nobody asked for a transcript yet.
    await widget.waitForFunction(() => /tiny\.en model is ready/.test(
      document.querySelector("[data-testid=worker-notice]")?.textContent ?? ""), null, { timeout: WAIT_MS });
    const beforeAsking = await widget.evaluate(() => window.notices.length);
    assert.equal((await room.roomEvents()).filter((e) => e.type === "org.potluck.task").length, 0, "no task yet");

    const reply = await transcribe(room, widget, message);
    console.log(`the thread says: ${reply.content.body}`);
    assert.match(reply.content.body, /finish the report/i, "the words, not an error");
    const afterAsking = (await widget.evaluate(() => window.notices)).slice(beforeAsking);
    console.log(`notices after Transcribe: ${afterAsking.length ? afterAsking.join(" | ") : "none"}`);
    // A worker tells the friend only while it loads a model.
    assert.deepEqual(afterAsking, [], "the model was not loaded again");
  });
});
