// Where the Whisper model comes from: the widget URL's `models=` names a
// server with the Hugging Face Hub's path shape (the Hub itself by default).
// Every transcription test already fetches through a Hub stand-in (redirect
// for model.bin, CORS) with dist/ served alone; this one serves a model whose
// config.json is not the pinned file: the widget refuses it, and the voice
// message's thread says why, once. While the model downloads, the widget
// shows how far it got.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS, widgetFrame } from "../support/browser.mjs";
import { serveModelHub } from "../support/model-hub.mjs";
import { MODELS, ROOT, contribute, startPoolRoom } from "../support/pool-room.mjs";

const AUDIO = join(ROOT, "widget/test-data/audio");

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
    await widget.evaluate(() => {
      window.notices = [];
      new MutationObserver(() => {
        const text = document.querySelector("[data-testid=worker-notice]")?.textContent;
        if (text && text !== window.notices.at(-1)) window.notices.push(text);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });

    const bytes = await readFile(join(AUDIO, "five-sentences.ogg"));
    const { carol } = room.users;
    const upload = await fetch(`${room.synapse.baseUrl}/_matrix/media/v3/upload?filename=voice.ogg`, {
      method: "POST", headers: { Authorization: `Bearer ${carol.accessToken}`, "Content-Type": "audio/ogg" }, body: bytes,
    });
    const { content_uri: url } = await upload.json();
    const send = await fetch(`${room.synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}/send/m.room.message/v1`, {
      method: "PUT", headers: { Authorization: `Bearer ${carol.accessToken}`, "Content-Type": "application/json" },
      body: JSON.stringify({ msgtype: "m.audio", body: "Voice message", url, info: { duration: 17_400, mimetype: "audio/ogg", size: bytes.length }, "org.matrix.msc3245.voice": {} }),
    });
    const { event_id: message } = await send.json();

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
    console.log(`the thread says: ${replies[0].content.body}`);
    assert.match(replies[0].content.body, /config\.json is not the file Potluck expects/);
    assert.ok(tampered.requests.some((r) => r.includes("/Systran/faster-whisper-tiny.en/resolve/")), "fetched at the Hub's path");
    await auditWidget(page, "a transcription failed for a wrong model file");
    const notices = await widget.evaluate(() => window.notices);
    console.log(`notices while the model downloaded: ${notices.length}, last: ${notices.at(-1)}`);
    assert.ok(notices.some((n) => /^Downloading the tiny\.en model: \d+ of 76 MB$/.test(n)), notices.join(" | "));
  });
});
