// The demo, as README.md's "The demo" tells a person to try it: `node
// scripts/demo.mjs` (what scripts/demo.sh runs after building), one browser
// profile per printed link, capabilities approved in the host's dialog, alice
// and bob contribute, carol counts primes and everyone sees the result. Then
// carol's voice message: Transcribe from the widget's list puts the transcript
// in the widget and in the message's thread in the host's timeline; a
// `!transcribe` reply typed in the host's composer brings a second one; and the
// host's Forward brings the message back into the room, where the widget lists it.
//
// Needs dist/, the Whisper models (scripts/fetch-models.sh), espeak-ng and
// opus-tools (tests/run.sh provides them all).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS, launchBrowser, widgetFrame } from "../support/browser.mjs";
import { ARTIFACTS, ROOT, contribute, shownTasks, submitPrimes } from "../support/pool-room.mjs";
import { freePort } from "../support/synapse.mjs";
import { primesShown, shownRanges } from "../support/task-words.mjs";

const DEMO_START_MS = 180_000;
// Three browsers, Synapse and the widget's first load share the machine.
const OPEN_MS = 60_000;
const TASK_DONE_MS = 120_000;
const TRANSCRIPT_WITHIN_MS = 300_000;
// Wide enough for the host's side-by-side layout: widget left, room timeline right.
const VIEWPORT = { width: 1400, height: 900 };
const PRIMES = { start: 0, end: 20_000_000, chunks: 8 };
// What carol says in the demo's voice message (scripts/demo.mjs).
const SPOKEN = ["hello", "friends", "voice", "message", "transcribed", "browsers", "together", "chatted"];

/** The primes in [start, end), by a sieve of Eratosthenes: independent of the product's code. */
function countPrimes(start, end) {
  const composite = new Uint8Array(end);
  let count = 0;
  for (let n = 2; n < end; n++) {
    if (composite[n]) continue;
    if (n >= start) count++;
    for (let m = n * n; m < end; m += n) composite[m] = 1;
  }
  return count;
}

/** A message's own text in the host's timeline (not its thread replies'). */
const bodyOf = (message) => message.locator(":scope > [data-testid=message-body]");

/** How many of the spoken words a transcript has. */
function heard(text) {
  const words = new Set(text.toLowerCase().replace(/[^a-z' ]+/g, " ").split(/\s+/));
  return SPOKEN.filter((w) => words.has(w));
}

function assertHeard(text, what) {
  const found = heard(text);
  assert.ok(found.length >= 4, `${what} has only ${found.join(", ") || "none"} of ${SPOKEN.join(", ")}: "${text}"`);
}

/** Starts the demo; resolves with the process and its friends' links once it says it runs. */
function startDemo(env) {
  const demo = spawn(process.execPath, ["scripts/demo.mjs"], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  demo.stderr.on("data", (chunk) => { err += chunk; });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not start in ${DEMO_START_MS / 1000} s:\n${out}\n${err}`)), DEMO_START_MS);
    demo.stdout.on("data", (chunk) => {
      out += chunk;
      // Its last line; everything else is printed before it.
      if (/^Voice messages: .*\n/m.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    demo.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${code ?? signal}) before it ran:\n${out}\n${err}`));
    });
  });
  return { demo, ready };
}

/** The printed links: `  alice  (@alice:localhost, password alice-password)` and the URL under it. */
function parseLinks(out) {
  const links = {};
  for (const [, name, userId, url] of out.matchAll(/^ {2}(\w+)\s+\((@[^,]+), password [^)]+\)\n\s+(http\S+)$/gm)) {
    links[name] = { userId, url };
  }
  return links;
}

describe("the demo, step by step as the README tells it", () => {
  let demo;
  let browser;
  let output;
  let links;
  let voiceId;
  const pages = {};
  const widgets = {};

  /** The root message `id` in `name`'s host timeline (not a thread reply). */
  const message = (name, id) => pages[name].locator(`[data-testid=timeline] > [data-testid=message][data-event-id="${id}"]`);
  const threadReplies = (name, id) => message(name, id).locator("[data-testid=thread-reply]");
  const action = (name, id, testid) => pages[name].locator(
    `[data-testid=timeline] > [data-testid=message][data-event-id="${id}"] > .actions > [data-testid=${testid}]`);

  /** Opens `name`'s printed link in its own browser context and approves the capabilities, as a person does. */
  async function openLink(name) {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    page.on("console", (msg) => {
      if (msg.type() === "error" || process.env.POTLUCK_E2E_CONSOLE === "all") console.error(`[${name} console.${msg.type()}] ${msg.text()}`);
    });
    page.on("pageerror", (error) => console.error(`[${name} pageerror] ${error.message}`));
    await page.goto(links[name].url);
    const dialog = page.locator("#capability-dialog");
    await dialog.waitFor({ state: "visible", timeout: OPEN_MS });
    await dialog.getByRole("button", { name: "Approve" }).click();
    const widget = await widgetFrame(page);
    await widget.getByTestId("contribute").waitFor({ timeout: OPEN_MS });
    return { page, widget };
  }

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    // Free ports, so the test runs beside a demo on the default ones (8008, 8080, 8081, 8082).
    const ports = {};
    for (const name of ["POTLUCK_HS_PORT", "POTLUCK_HOST_PORT", "POTLUCK_WIDGET_PORT", "POTLUCK_MODELS_PORT"]) {
      ports[name] = await freePort();
    }
    let ready;
    ({ demo, ready } = startDemo(Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)]))));
    output = await ready;
    links = parseLinks(output);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    if (demo && demo.exitCode === null && demo.signalCode === null) {
      const exited = new Promise((resolve) => demo.once("exit", resolve));
      demo.kill("SIGTERM");
      const timer = setTimeout(() => demo.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    }
  });

  test("the demo prints one link per friend and says carol sent a voice message", async () => {
    assert.deepEqual(Object.keys(links), ["alice", "bob", "carol"], output);
    for (const { url } of Object.values(links)) {
      const params = new URL(url).searchParams;
      assert.equal(new URL(params.get("widget")).hostname, "localhost", "the widget is on another site than the host page");
    }
    assert.match(output, /^Voice messages: carol sent one;/m, "espeak-ng and opusenc made carol's voice message");
  });

  test("each friend opens their link, approves the capabilities, and sees the room's timeline beside the widget", async () => {
    for (const name of ["alice", "bob", "carol"]) {
      ({ page: pages[name], widget: widgets[name] } = await openLink(name));
    }
    // Carol's voice message, in everyone's timeline as Element shows one.
    for (const name of ["alice", "bob", "carol"]) {
      const voice = pages[name].locator(
        `[data-testid=timeline] > [data-testid=message][data-msgtype="m.audio"][data-sender="${links.carol.userId}"]`);
      await voice.waitFor({ timeout: WAIT_MS });
      assert.match(await bodyOf(voice).textContent(), /^🎤 Voice message \d+:\d\d$/);
      voiceId ??= await voice.getAttribute("data-event-id");
      assert.equal(await voice.getAttribute("data-event-id"), voiceId);
    }
    // No Potluck event is shown as chat.
    const types = await pages.alice.getByTestId("message").evaluateAll((els) => els.map((e) => e.dataset.msgtype));
    assert.ok(types.every(Boolean), `only messages: ${types}`);
    // The timeline is on the right of the widget.
    const frame = await pages.alice.locator("#widget-frame").boundingBox();
    const timeline = await pages.alice.getByTestId("timeline").boundingBox();
    assert.ok(timeline.x >= frame.x + frame.width - 1, "timeline beside the widget");
  });

  test("alice and bob contribute, carol counts primes, the chunks spread over both, and everyone sees the result", async () => {
    await contribute(widgets.alice);
    await contribute(widgets.bob);
    await widgets.carol.waitForFunction(() => document.querySelectorAll("[data-testid=node]").length === 2, null, { timeout: WAIT_MS });
    const want = countPrimes(PRIMES.start, PRIMES.end);
    const started = Date.now();
    await submitPrimes(widgets.carol, PRIMES);
    for (const name of ["carol", "alice", "bob"]) {
      await widgets[name].waitForFunction(() => {
        const tasks = [...document.querySelectorAll("[data-testid=task]")];
        return tasks.length === 1 && tasks[0].dataset.status === "done";
      }, null, { timeout: TASK_DONE_MS, polling: 500 });
      const [task] = await shownTasks(widgets[name]);
      assert.equal(primesShown(task.status), want, `${name}'s widget: ${task.status}`);
      assert.deepEqual((await shownRanges(widgets[name]))[task.id], [PRIMES.start, PRIMES.end]);
      if (name === "carol") {
        console.log(`# ${want} primes below ${PRIMES.end} in ${Date.now() - started} ms, chunks by ${task.doneBy.map((u) => u.split(":")[0]).join(" ")}`);
        assert.equal(task.doneBy.length, PRIMES.chunks);
        assert.deepEqual([...new Set(task.doneBy)].sort(), [links.alice.userId, links.bob.userId].sort(), "both contributors ran chunks");
      }
    }
  });

  test("carol right-clicks her voice message and picks Transcribe: the transcript shows in the widget and in its thread", async () => {
    const row = widgets.carol.locator(`[data-testid=voice][data-event-id="${voiceId}"]`);
    await row.waitFor({ timeout: WAIT_MS });
    assert.match(await row.textContent(), /carol/);
    const started = Date.now();
    await row.click({ button: "right" });
    await widgets.carol.getByTestId("menu-transcribe").click();

    for (const name of ["carol", "alice", "bob"]) {
      await widgets[name].waitForFunction((id) =>
        document.querySelector(`[data-testid=voice][data-event-id="${id}"]`)?.dataset.state === "done",
      voiceId, { timeout: TRANSCRIPT_WITHIN_MS, polling: 500 });
    }
    const shown = await widgets.carol.locator(`[data-testid=voice][data-event-id="${voiceId}"] [data-testid=transcript]`).inputValue();
    console.log(`# transcript in ${((Date.now() - started) / 1000).toFixed(0)} s: ${shown}`);
    await auditWidget(pages.carol, "the demo's transcript");
    assertHeard(shown, "the widget's transcript");

    // In the host's timeline: a thread reply under the voice message, for everyone.
    for (const name of ["carol", "alice", "bob"]) {
      await threadReplies(name, voiceId).first().waitFor({ timeout: WAIT_MS });
      assert.equal(await threadReplies(name, voiceId).count(), 1, `${name}: one reply in the thread`);
      const reply = threadReplies(name, voiceId).first();
      assert.equal(await reply.getAttribute("data-msgtype"), "m.notice");
      assert.equal(await bodyOf(reply).textContent(), shown);
    }
  });

  test("carol replies !transcribe to the voice message in the host's composer, and a second transcript arrives in its thread", async () => {
    const page = pages.carol;
    await action("carol", voiceId, "reply-button").click();
    const preview = page.getByTestId("reply-preview");
    await preview.waitFor({ timeout: WAIT_MS });
    assert.match(await preview.textContent(), /Replying to carol: 🎤 Voice message/);
    await page.getByTestId("composer-input").fill("!transcribe");
    const started = Date.now();
    await page.getByTestId("composer-send").click();
    await preview.waitFor({ state: "hidden", timeout: WAIT_MS });
    assert.equal(await page.getByTestId("composer-input").inputValue(), "");

    // The reply is chat, quoting the voice message, in everyone's timeline.
    for (const name of ["carol", "alice"]) {
      const sent = pages[name].locator(`[data-testid=timeline] > [data-testid=message][data-in-reply-to="${voiceId}"]`);
      await sent.waitFor({ timeout: WAIT_MS });
      assert.equal(await bodyOf(sent).textContent(), "!transcribe");
      assert.match(await sent.getByTestId("reply-quote").textContent(), /carol: 🎤 Voice message/);
    }

    await threadReplies("carol", voiceId).nth(1).waitFor({ timeout: TRANSCRIPT_WITHIN_MS });
    const bodies = await threadReplies("carol", voiceId).getByTestId("message-body").allTextContents();
    console.log(`# second transcript in ${((Date.now() - started) / 1000).toFixed(0)} s: ${bodies[1]}`);
    assert.equal(bodies.length, 2);
    assertHeard(bodies[1], "the second transcript");
    await threadReplies("alice", voiceId).nth(1).waitFor({ timeout: WAIT_MS });
    await page.screenshot({ path: join(ARTIFACTS, "demo-host.png") });
  });

  test("alice forwards the voice message from the host's timeline, and every widget lists the copy", async () => {
    await action("alice", voiceId, "forward-button").click();
    const copy = pages.alice.locator(
      `[data-testid=timeline] > [data-testid=message][data-msgtype="m.audio"][data-sender="${links.alice.userId}"]:not([data-pending])`);
    await copy.waitFor({ timeout: WAIT_MS });
    assert.match(await bodyOf(copy).textContent(), /^🎤 Voice message \d+:\d\d$/);
    const copyId = await copy.getAttribute("data-event-id");
    assert.notEqual(copyId, voiceId);
    for (const name of ["alice", "bob", "carol"]) {
      const row = widgets[name].locator(`[data-testid=voice][data-event-id="${copyId}"]`);
      await row.waitFor({ timeout: WAIT_MS });
      assert.match(await row.textContent(), /alice/);
    }
  });
});
