// What friends do in a room without Potluck: send messages and voice
// messages, read a message's thread. Straight to Synapse's client-server
// API, as any Matrix client (or a member who crafts events) would.

import assert from "node:assert/strict";

/**
 * Calls Synapse as `user`; returns the parsed answer (asserting a 200). A 429
 * is waited out as any client does: under Synapse's default rate limits a
 * friend's burst of sends is paced, not refused.
 */
export async function matrix(room, user, method, path, body) {
  for (;;) {
    const response = await fetch(`${room.synapse.baseUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${user.accessToken}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (response.status === 429) {
      await new Promise((resolve) => setTimeout(resolve, JSON.parse(text).retry_after_ms ?? 1_000));
      continue;
    }
    assert.equal(response.status, 200, `${method} ${path}: ${text}`);
    return JSON.parse(text);
  }
}

export const roomPath = (room) => `/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}`;
/** Every event in the room as `user` may read them, oldest first, page by page. */
export async function roomEvents(room, user) {
  const events = [];
  let from = "";
  for (;;) {
    const page = await matrix(room, user, "GET",
      `${roomPath(room)}/messages?dir=f&limit=1000${from && `&from=${encodeURIComponent(from)}`}`);
    events.push(...page.chunk);
    if (!page.end || page.chunk.length === 0) return events;
    from = page.end;
  }
}

const txn = () => `t${Date.now()}${Math.random()}`;

/** Sends an event of `type` (a chat message by default); returns its id. */
export async function send(room, user, content, type = "m.room.message") {
  return (await matrix(room, user, "PUT", `${roomPath(room)}/send/${type}/${txn()}`, content)).event_id;
}

/** A voice message as Element sends one (MSC3245 voice, MSC1767 audio). */
export async function sendVoiceMessage(room, user, bytes, durationMs) {
  const response = await fetch(`${room.synapse.baseUrl}/_matrix/media/v3/upload?filename=voice.ogg`, {
    method: "POST", headers: { Authorization: `Bearer ${user.accessToken}`, "Content-Type": "audio/ogg" }, body: bytes,
  });
  assert.equal(response.status, 200, await response.clone().text());
  const { content_uri: url } = await response.json();
  return send(room, user, {
    msgtype: "m.audio", body: "Voice message", url,
    info: { duration: durationMs, mimetype: "audio/ogg", size: bytes.length },
    "org.matrix.msc1767.audio": { duration: durationMs, waveform: [0, 512, 1024, 512] },
    "org.matrix.msc3245.voice": {},
  });
}

/** Transcript replies in `message`'s thread, as the homeserver files them. */
export async function threadReplies(room, message) {
  const path = `/_matrix/client/v1/rooms/${encodeURIComponent(room.roomId)}/relations/${encodeURIComponent(message)}/m.thread?limit=100`;
  const thread = await matrix(room, room.users.alice, "GET", path);
  return thread.chunk.filter((e) => e.content?.["org.potluck.transcript"]);
}

/** The first transcript reply in `message`'s thread from a sender `accept` takes. */
export async function waitForReply(room, message, { within = 240_000, accept = () => true } = {}) {
  for (const until = Date.now() + within; Date.now() < until;) {
    const replies = (await threadReplies(room, message)).filter(accept);
    if (replies.length) return replies[0];
    await new Promise((r) => setTimeout(r, 2_000));
  }
  throw new Error(`no transcript for ${message} within ${within / 1000} s`);
}
