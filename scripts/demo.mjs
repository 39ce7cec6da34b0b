// The local demo: its own Synapse, three friends in one room with the Potluck
// widget added, the host page and the widget served, until Ctrl-C.
// Run through scripts/demo.sh, which installs and builds first.

import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { buildHost } from "../tests/host/build.mjs";
import { WIDGET_QUERY } from "../tests/support/browser.mjs";
import { serveModelHub } from "../tests/support/model-hub.mjs";
import { serveStatic } from "../tests/support/static-server.mjs";
import { startSynapse } from "../tests/support/synapse.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const port = (name, fallback) => Number(process.env[name] ?? fallback);
const FRIENDS = ["alice", "bob", "carol"];
const WIDGET_ID = "potluck";

const dir = await mkdtemp(join(tmpdir(), "potluck-demo-"));
const synapse = await startSynapse({ dir, port: port("POTLUCK_HS_PORT", 8008) });
const host = await serveStatic({ root: await buildHost(join(dir, "host")), port: port("POTLUCK_HOST_PORT", 8080) });
// dist/ alone, on another site than the host page, as in every real deployment.
const widget = await serveStatic({ root: join(ROOT, "dist"), host: "localhost", port: port("POTLUCK_WIDGET_PORT", 8081) });
// Whisper models as the Hugging Face Hub serves them (a real deployment's
// default), from where scripts/fetch-models.sh keeps them: the demo needs no internet.
const models = process.env.POTLUCK_MODELS ?? join(homedir(), ".cache/potluck/models");
const hub = await serveModelHub({ models, port: port("POTLUCK_MODELS_PORT", 8082) });
const widgetUrl = `${widget.url}index.html?${WIDGET_QUERY}&models=${hub.url}`;

const users = [];
for (const name of FRIENDS) {
  const password = `${name}-password`;
  users.push({ name, password, ...(await synapse.registerUser(name, password)) });
}
const [alice, ...others] = users;
const roomId = await synapse.createRoom(alice.accessToken, { members: others, body: { name: "Potluck demo" } });

// Add the widget to the room the way Element's /addwidget does, so a real
// Element pointed at this homeserver shows it too.
await fetch(`${synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/im.vector.modular.widgets/${WIDGET_ID}`, {
  method: "PUT",
  headers: { Authorization: `Bearer ${alice.accessToken}`, "Content-Type": "application/json" },
  body: JSON.stringify({ type: "m.custom", url: widgetUrl, name: "Potluck", data: {}, id: WIDGET_ID, creatorUserId: alice.userId }),
}).then((r) => { if (!r.ok) throw new Error(`adding the widget: ${r.status}`); });

// A voice message from carol to transcribe: espeak-ng speech as Ogg Opus,
// sent as Element sends voice messages. The demo runs without it if the
// speech tools are missing.
const voiceNote = await sendVoiceMessage(users[2]).catch((e) => `no voice message (${e.message})`);

console.log(`
Potluck demo is running (Ctrl-C stops it and deletes its data).

  homeserver   ${synapse.baseUrl}   (server name: localhost)
  room         ${roomId}
  widget       ${widgetUrl}

Open one link per friend, each in its own browser profile or private window:
`);
for (const user of users) {
  const query = new URLSearchParams({
    hs: synapse.baseUrl, user: user.name, password: user.password, room: roomId, widget: widgetUrl, widgetId: WIDGET_ID,
  });
  console.log(`  ${user.name.padEnd(6)} (${user.userId}, password ${user.password})\n    ${host.url}?${query}\n`);
}
console.log("Approve the capabilities, click Contribute compute in two of them, and submit tasks from the third.");
console.log(`Voice messages: ${voiceNote}; right-click it in the widget and pick Transcribe.`);

/** An Ogg Opus file's length: its last page's granule position counts 48 kHz samples (RFC 7845). */
function oggSeconds(bytes) {
  const at = bytes.lastIndexOf(Buffer.from("OggS"));
  return Number(bytes.readBigUInt64LE(at + 6)) / 48_000;
}

async function sendVoiceMessage(from) {
  const text = "Hello friends. This voice message was transcribed by your browsers, together, while you chatted.";
  const wav = join(dir, "voice.wav");
  const ogg = join(dir, "voice.ogg");
  execFileSync("espeak-ng", ["-v", "en-us", "-s", "150", "-w", wav, text]);
  execFileSync("opusenc", ["--quiet", "--bitrate", "32", wav, ogg]);
  const bytes = await readFile(ogg);
  const auth = { Authorization: `Bearer ${from.accessToken}` };
  const upload = await fetch(`${synapse.baseUrl}/_matrix/media/v3/upload?filename=voice.ogg`, {
    method: "POST", headers: { ...auth, "Content-Type": "audio/ogg" }, body: bytes,
  });
  if (!upload.ok) throw new Error(`upload: ${upload.status}`);
  const { content_uri: url } = await upload.json();
  const sent = await fetch(`${synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/demo-voice`, {
    method: "PUT", headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({
      msgtype: "m.audio", body: "Voice message", url, "org.matrix.msc3245.voice": {},
      info: { mimetype: "audio/ogg", size: bytes.length, duration: Math.round(oggSeconds(bytes) * 1000) },
    }),
  });
  if (!sent.ok) throw new Error(`send: ${sent.status}`);
  return `carol sent one`;
}

async function shutdown() {
  await Promise.allSettled([host.close(), widget.close(), hub.close(), synapse.stop()]);
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
}
process.on("SIGINT", shutdown);
process.on("SIGTERM", shutdown);
