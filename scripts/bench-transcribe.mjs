// Time to transcript for a five-minute voice message with 1, 2 and 3
// contributing nodes, on the real stack (Synapse, the test host, the release
// widget, tiny.en), and where the wall time goes: inference in the workers,
// or coordination (download, decoding, planning, room events, waiting).
//
//   node scripts/bench-transcribe.mjs [NODES...]     (default: 1 2 3)
//   node scripts/bench-transcribe.mjs --short [NODES...]   (default: 1 2)
//   node scripts/bench-transcribe.mjs --native
//
// --short: voice messages of 5 s and 20 s under Synapse's *default* rate
// limits, as a friend sends them: the first in fresh tabs (the model starts
// loading when the message arrives, and Transcribe is clicked at once), one
// right after it (send budget spent), and one after 45 s idle; time from Transcribe to the
// threaded reply, Whisper's own time, and the room events each cost, by
// sender. alice (a contributor) asks for each transcript in her widget.
//
// --native: the five-minute message with one browser node, one native node
// (`potluck node`, target/debug/potluck or POTLUCK_BIN, its model read from
// the models folder), and both together: the time to transcript, and the
// native node's share of the spans when both contribute.
//
// Each run is a fresh room, so every node starts cold as a friend's would:
// it downloads the model (or reads it from the browser's cache) when the
// first voice message arrives. Needs dist/ (scripts/build.sh), the models (scripts/fetch-models.sh)
// and espeak-ng and opusenc (scripts/setup.sh). Prints a table.

import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { WAIT_MS } from "../tests/support/browser.mjs";
import { startNativeNode } from "../tests/support/native-node.mjs";
import { MODELS, ROOT, contribute, startPoolRoom } from "../tests/support/pool-room.mjs";

const TARGET_SECONDS = 300;
const NAMES = ["alice", "bob", "dave"];

/** About five minutes of espeak-ng speech with pauses, as Ogg Opus. */
async function fiveMinutes(dir) {
  const sentences = await testSentences();
  // 22 sentences make about 89 s.
  const count = Math.ceil(sentences.length * TARGET_SECONDS / 89);
  return speak(dir, "speech", Array.from({ length: count }, (_, i) => sentences[i % sentences.length]));
}

/** The sentences of the end-to-end test's voice message. */
async function testSentences() {
  return (await readFile(join(ROOT, "tests/fixtures/speech/voice-message.txt"), "utf8")).split("\n").filter(Boolean);
}

function oggSeconds(bytes) {
  // The last page's granule position counts 48 kHz samples (RFC 7845).
  const at = bytes.lastIndexOf(Buffer.from("OggS"));
  return Number(bytes.readBigUInt64LE(at + 6)) / 48_000;
}

/** espeak-ng speech of `sentences`, with pauses, as Ogg Opus. */
async function speak(dir, name, sentences) {
  let ssml = "<speak>";
  for (const [i, sentence] of sentences.entries()) ssml += `${sentence} <break time="${400 + 300 * (i % 4)}ms"/> `;
  ssml += "</speak>";
  execFileSync("espeak-ng", ["-m", "-v", "en-us", "-s", "150", "-w", join(dir, `${name}.wav`), ssml]);
  execFileSync("opusenc", ["--quiet", "--bitrate", "32", join(dir, `${name}.wav`), join(dir, `${name}.ogg`)]);
  return readFile(join(dir, `${name}.ogg`));
}

async function send(room, user, path, init) {
  const response = await fetch(`${room.synapse.baseUrl}${path}`, {
    ...init, headers: { Authorization: `Bearer ${user.accessToken}`, ...init.headers },
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** carol posts `speech` as a voice message; its event id. */
async function postVoice(room, speech, seconds) {
  const carol = room.users.carol;
  const { content_uri: url } = await send(room, carol, "/_matrix/media/v3/upload?filename=voice.ogg", {
    method: "POST", headers: { "Content-Type": "audio/ogg" }, body: speech,
  });
  const { event_id: message } = await send(room, carol,
    `/_matrix/client/v3/rooms/${encodeURIComponent(room.roomId)}/send/m.room.message/bench${Date.now()}`, {
      method: "PUT", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        msgtype: "m.audio", body: "Voice message", url, "org.matrix.msc3245.voice": {},
        info: { duration: Math.round(seconds * 1000), mimetype: "audio/ogg", size: speech.length },
      }),
    });
  return message;
}

/** Clicks Transcribe on `message` in `widget` and waits for the reply: seconds, and the reply. */
async function transcribe(room, widget, message, withinMinutes = 10) {
  const row = widget.locator(`[data-testid=voice][data-event-id="${message}"]`);
  await row.waitFor({ timeout: WAIT_MS });
  const started = Date.now();
  await row.getByTestId("transcribe-button").click();
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const reply = (await room.roomEvents()).find((e) => e.content?.["org.potluck.transcript"]
      && e.content["m.relates_to"]?.event_id === message);
    if (reply) return { wall: (Date.now() - started) / 1000, reply };
    if (Date.now() - started > withinMinutes * 60_000) throw new Error(`no transcript within ${withinMinutes} minutes`);
  }
}

/** The room events a transcription cost (its task, its parts, what refers to them, the reply), and Whisper's time. */
function costOf(events, reply) {
  const task = reply.content["org.potluck.transcript"].task;
  const family = new Set([task, ...events.filter((e) => e.content?.parent === task).map((e) => e.event_id)]);
  const related = events.filter((e) => e.type.startsWith("org.potluck.") && e.type !== "org.potluck.node"
    && (family.has(e.event_id) || family.has(e.content?.["m.relates_to"]?.event_id)));
  const inference = related.filter((e) => e.type === "org.potluck.result")
    .flatMap((e) => e.content.outcomes).reduce((sum, o) => sum + (o.output?.inference_ms ?? 0), 0) / 1000;
  const bySender = new Map();
  for (const e of [...related, reply]) bySender.set(e.sender, (bySender.get(e.sender) ?? 0) + 1);
  const words = [...bySender.entries()].map(([who, n]) => `${who.split(":")[0].slice(1)} ${n}`).join(", ");
  return { events: related.length + 1, bySender: words, inference };
}

/** The first `nodes` friends open the widget and contribute; their widgets. */
async function contributors(room, nodes) {
  const widgets = [];
  for (const name of NAMES.slice(0, nodes)) {
    const { widget } = await room.openWidget(name);
    await contribute(widget);
    widgets.push(widget);
  }
  return widgets;
}

async function shortMessages(nodes, messages) {
  const room = await startPoolRoom({ names: [...NAMES.slice(0, nodes), "carol"], defaultRateLimits: true });
  try {
    const widgets = await contributors(room, nodes);
    const rows = [];
    for (const [index, { label, speech, seconds }] of messages.entries()) {
      // Only the first length meets fresh tabs; the next comes after a rest.
      const first = index === 0 ? "first (fresh tabs)" : "first after 45 s rest";
      const when = [first, "right after it", "after 45 s idle"];
      const posted = [];
      for (let i = 0; i < 3; i++) posted.push(await postVoice(room, speech, seconds));
      for (const [i, message] of posted.entries()) {
        if (i === 2) await new Promise((r) => setTimeout(r, 45_000));
        const { wall, reply } = await transcribe(room, widgets[0], message);
        rows.push({ nodes, label, when: when[i], wall, ...costOf(await room.roomEvents(), reply) });
        console.log(`${label}, ${nodes} contributor(s), ${when[i]}: ${wall.toFixed(1)} s`);
      }
      await new Promise((r) => setTimeout(r, 45_000)); // The next length starts rested too.
    }
    return rows;
  } finally {
    await room.close();
  }
}

/** The spans of `reply`'s transcription and each sender's share: Whisper's seconds and spans. */
function spanWork(events, reply) {
  const task = reply.content["org.potluck.transcript"].task;
  const part = events.find((e) => e.type === "org.potluck.task" && e.content.parent === task)?.event_id;
  const related = events.filter((e) => e.type.startsWith("org.potluck.") && e.type !== "org.potluck.node"
    && [task, part].includes(e.content["m.relates_to"]?.event_id ?? e.event_id));
  const perNode = new Map();
  for (const e of related.filter((e) => e.type === "org.potluck.result" && e.content["m.relates_to"]?.event_id === part)) {
    for (const o of e.content.outcomes.filter((o) => o.output)) {
      const mine = perNode.get(e.sender) ?? { seconds: 0, spans: 0 };
      perNode.set(e.sender, { seconds: mine.seconds + (o.output.inference_ms ?? 0) / 1000, spans: mine.spans + 1 });
    }
  }
  return {
    spans: events.find((e) => e.event_id === part)?.content.chunks ?? 0,
    perNode,
    events: related.length + 1, // and the reply
  };
}

async function run(nodes, speech, seconds) {
  const room = await startPoolRoom({ names: [...NAMES.slice(0, nodes), "carol"] });
  try {
    const widgets = await contributors(room, nodes);
    const message = await postVoice(room, speech, seconds);
    const { wall, reply } = await transcribe(room, widgets[0], message, 30);
    const { spans, perNode, events } = spanWork(await room.roomEvents(), reply);
    const inference = [...perNode.values()].map((n) => n.seconds);
    return {
      nodes, wall, spans, events,
      inference: inference.reduce((a, b) => a + b, 0), busiest: Math.max(0, ...inference),
      byNode: [...perNode.entries()].map(([who, n]) => `${who.split(":")[0].slice(1)} ${n.seconds.toFixed(0)} s`).join(", "),
    };
  } finally {
    await room.close();
  }
}

/**
 * The five-minute message in a fresh room whose contributors are alice's
 * browser (`browser`) and/or bob's native node (`native`); alice asks.
 */
async function runMixed({ browser, native }, speech, seconds, dir) {
  const room = await startPoolRoom({ names: ["alice", "bob", "carol"] });
  let node;
  try {
    const { widget } = await room.openWidget("alice");
    if (browser) await contribute(widget);
    if (native) {
      const dataDir = await mkdtemp(join(dir, "node-"));
      node = startNativeNode(room, room.users.bob, { dataDir, models: MODELS });
      await node.waitForLine(/contributing/, 120_000);
    }
    const count = Number(browser) + Number(native);
    await widget.waitForFunction((n) => document.querySelectorAll("[data-testid=node]").length === n, count, { timeout: WAIT_MS });
    const message = await postVoice(room, speech, seconds);
    const { wall, reply } = await transcribe(room, widget, message, 30);
    const { spans, perNode } = spanWork(await room.roomEvents(), reply);
    const share = (user) => perNode.get(user.userId) ?? { seconds: 0, spans: 0 };
    return { wall, spans, browser: share(room.users.alice), native: share(room.users.bob) };
  } finally {
    node?.child.kill("SIGTERM");
    await node?.exited;
    await room.close();
  }
}

async function nativeAgainstBrowser(dir) {
  const speech = await fiveMinutes(dir);
  const seconds = oggSeconds(speech);
  console.log(`voice message: ${seconds.toFixed(1)} s of speech, ${(speech.length / 1024).toFixed(0)} KiB Ogg Opus`);
  const configs = [
    { name: "one browser node", browser: true, native: false },
    { name: "one native node", browser: false, native: true },
    { name: "both", browser: true, native: true },
  ];
  const rows = [];
  for (const config of configs) {
    const r = await runMixed(config, speech, seconds, dir);
    rows.push({ ...config, ...r });
    console.log(`${config.name}: ${r.wall.toFixed(0)} s`);
  }
  const browserOnly = rows[0].wall;
  console.log("\n| contributors | time to transcript | × one browser | RTF | spans (browser / native) | Whisper seconds (browser / native) | native node's share of the spans |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.wall.toFixed(0)} s | ${(browserOnly / r.wall).toFixed(2)}× | ${(r.wall / seconds).toFixed(3)} | `
      + `${r.browser.spans} / ${r.native.spans} | ${r.browser.seconds.toFixed(1)} / ${r.native.seconds.toFixed(1)} | `
      + `${((100 * r.native.spans) / Math.max(1, r.spans)).toFixed(0)} % |`);
  }
}

const short = process.argv.includes("--short");
const counts = process.argv.slice(2).map(Number).filter(Boolean);
const dir = await mkdtemp(join(tmpdir(), "potluck-bench-"));
try {
  if (process.argv.includes("--native")) {
    await nativeAgainstBrowser(dir);
  } else if (short) {
    const sentences = await testSentences();
    const messages = [];
    for (const [label, count] of [["5 s", 1], ["20 s", 5]]) {
      const speech = await speak(dir, label.replace(" ", ""), sentences.slice(0, count));
      messages.push({ label: `${label} (${oggSeconds(speech).toFixed(1)} s)`, speech, seconds: oggSeconds(speech) });
    }
    const rows = [];
    for (const nodes of counts.length ? counts : [1, 2]) rows.push(...await shortMessages(nodes, messages));
    console.log("\n| message | contributors | when | Transcribe → reply | inference | room events | by sender |");
    console.log("|---|---|---|---|---|---|---|");
    for (const r of rows) {
      console.log(`| ${r.label} | ${r.nodes} | ${r.when} | ${r.wall.toFixed(1)} s | ${r.inference.toFixed(1)} s | ${r.events} | ${r.bySender} |`);
    }
  } else {
    await fiveMinuteMessage(counts, dir);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

async function fiveMinuteMessage(counts, dir) {
  const speech = await fiveMinutes(dir);
  const seconds = oggSeconds(speech);
  console.log(`voice message: ${seconds.toFixed(1)} s of speech, ${(speech.length / 1024).toFixed(0)} KiB Ogg Opus`);
  const rows = [];
  for (const nodes of counts.length ? counts : [1, 2, 3]) {
    const r = await run(nodes, speech, seconds);
    rows.push(r);
    console.log(`${nodes} node(s): ${r.wall.toFixed(0)} s`);
  }
  const one = rows.find((r) => r.nodes === 1)?.wall;
  console.log("\n| nodes | time to transcript | speed-up | RTF | inference (all nodes) | busiest node | coordination (wall − busiest) | room events | inference by node |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.nodes} | ${r.wall.toFixed(0)} s | ${one ? (one / r.wall).toFixed(2) + "×" : "—"} | ${(r.wall / seconds).toFixed(3)} | `
      + `${r.inference.toFixed(0)} s | ${r.busiest.toFixed(0)} s | ${(r.wall - r.busiest).toFixed(0)} s | ${r.events} | ${r.byNode} |`);
  }
}
