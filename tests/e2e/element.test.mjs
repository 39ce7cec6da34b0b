// The Transcribe flow in real Element Web: a user logs in, creates a room in
// Element's UI (end-to-end encrypted, Element's default), adds Potluck with
// /addwidget, approves its capabilities in Element's dialog, clicks
// Contribute compute, and picks Transcribe in the widget on a voice message
// recorded with Element's recorder (an encrypted attachment) before the
// widget was added; the transcript shows under the voice message as its
// thread, once, also after every resend timer ran out. Then a native node
// (`potluck node`, matrix-sdk) joins the encrypted room, and a friend's
// `!transcribe` reply in Element to a second voice message gets its
// encrypted transcript, which Element decrypts and shows in the thread.
//
// Element Web is not on any package registry: the build in
// ../shared/element-web is used, or the one POTLUCK_ELEMENT_WEB names (a
// folder or a .tar.gz of the built app). Without either, the test says so
// and skips. Element is served on 127.0.0.1, the widget on localhost: two
// sites, as in every real deployment.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS, WIDGET_QUERY, fakeMicrophone, launchBrowser } from "../support/browser.mjs";
import { startNativeNode } from "../support/native-node.mjs";
import { ARTIFACTS, MODELS, ROOT } from "../support/pool-room.mjs";
import { serveModelHub } from "../support/model-hub.mjs";
import { serveStatic } from "../support/static-server.mjs";
import { startSynapse } from "../support/synapse.mjs";

const ELEMENT = process.env.POTLUCK_ELEMENT_WEB
  ?? join(ROOT, "../shared/element-web/element-web-1.11.88-webapp.tar.gz");
const AUDIO = join(ROOT, "widget/test-data/audio");
const TRANSCRIPT_WITHIN_MS = 240_000;
// What erin says into the (fake) microphone: 17.4 s of espeak-ng speech.
const SPOKEN = join(AUDIO, "five-sentences.wav");
// Seconds of it recorded, by the recorder's own clock rather than the test's,
// so every take holds the whole file however long the recorder takes to start.
const RECORD_S = 19;
// Phrases of what erin says. The fake microphone loops the file from wherever
// it is when recording starts, and tiny.en now and then ends a take early
// (once in six runs two of five sentences were left; in one CI run only the
// first, "The quick brown fox jump sober m we assuming"), so a transcript must
// hold one of them: that shows it is the message Element recorded; the word
// error rate is transcribe.test.mjs's and native-node.test.mjs's to check.
const PHRASES = [/brown fox/i, /please call stell/i, /meeting will start/i, /finish the report/i, /thank you all for coming/i];
const heard = (text) => PHRASES.some((p) => p.test(text));
// manifest/src/limits.rs RESEND_AFTER_MS (30 s) and a margin: no copy of a
// reply can come later than this after the first.
const RESEND_WINDOW_MS = 45_000;

/** Element's files in `dir`: unpacked from the tarball, or the folder itself. */
async function elementApp(dir) {
  if (statSync(ELEMENT).isDirectory()) return ELEMENT;
  const app = join(dir, "element");
  await mkdir(app, { recursive: true });
  execFileSync("tar", ["-xzf", ELEMENT, "-C", app]);
  return app;
}

describe("Transcribe in real Element", { skip: !existsSync(ELEMENT) && `no Element Web build at ${ELEMENT} (set POTLUCK_ELEMENT_WEB)` }, () => {
  let dir;
  let synapse;
  let servers = [];
  let browser;
  let elementUrl;
  let widgetUrl;
  let erin;
  let frank;
  let hub;
  // What the first test leaves for the second: erin's Element, the room, frank's Element.
  let page;
  let roomId;
  let frankPage;
  const matrix = async (method, path, user = erin, body = undefined) => {
    const response = await fetch(`${synapse.baseUrl}${path}`, {
      method, headers: { Authorization: `Bearer ${user.accessToken}` }, body: body && JSON.stringify(body),
    });
    assert.equal(response.status, 200, `${path}: ${await response.clone().text()}`);
    return response.json();
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "potluck-element-"));
    // Element 1.11.88 predates room version 12 (implicit creator power) and
    // refuses /addwidget there.
    synapse = await startSynapse({ dir, roomVersion: 10 });
    const app = await elementApp(dir);
    await writeFile(join(app, "config.json"), JSON.stringify({
      default_server_config: { "m.homeserver": { base_url: synapse.baseUrl, server_name: "localhost" } },
      disable_guests: true, disable_3pid_login: true, show_labs_settings: false,
      bug_report_endpoint_url: null, map_style_url: null,
      setting_defaults: { "RustCrypto.staged_rollout_percent": 100 },
    }));
    const element = await serveStatic({ root: app });
    const widget = await serveStatic({ root: join(ROOT, "dist"), host: "localhost" });
    hub = await serveModelHub({ models: MODELS });
    servers = [element, widget, hub];
    erin = { name: "erin", password: "erin-password", ...await synapse.registerUser("erin", "erin-password") };
    frank = { name: "frank", password: "frank-password", ...await synapse.registerUser("frank", "frank-password") };
    browser = await launchBrowser({ args: fakeMicrophone(SPOKEN) });
    elementUrl = element.url;
    widgetUrl = `${widget.url}index.html?${WIDGET_QUERY}&models=${hub.url}`;
  });

  /** `user` logged in to Element in a browser of their own. */
  async function logIn(user) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, permissions: ["microphone"] });
    const page = await context.newPage();
    page.on("pageerror", (e) => console.error(`[${user.name} pageerror] ${e.message}`));
    page.on("console", (m) => {
      if (["error", "warning"].includes(m.type()) && !m.text().includes("before initialization")) console.error(`[${user.name} console] ${m.text()}`);
    });
    await page.goto(`${elementUrl}#/login`);
    await page.locator("#mx_LoginForm_username").fill(user.name);
    await page.locator("#mx_LoginForm_password").fill(user.password);
    await page.locator("#mx_LoginForm_password").press("Enter");
    await page.locator(".mx_RoomList").waitFor({ timeout: 60_000 });
    return page;
  }

  after(async () => {
    await browser?.close();
    await Promise.allSettled(servers.map((s) => s.close()));
    await synapse?.stop();
    if (dir && process.env.POTLUCK_KEEP_TMP !== "1") await rm(dir, { recursive: true, force: true });
  });

  /** Records RECORD_S seconds of a voice message with Element's recorder and sends it. */
  async function recordVoiceMessage(page) {
    await page.getByRole("button", { name: "More options" }).click();
    const asked = Date.now();
    await page.getByRole("menuitem", { name: "Voice Message" }).click();
    // The live recording's clock, a <time dateTime="PT12S">.
    const clock = page.locator(".mx_VoiceRecordComposerTile_recording time.mx_Clock");
    const recorded = async () => {
      const duration = await clock.getAttribute("datetime", { timeout: WAIT_MS });
      const [, minutes = 0, seconds = 0] = /^PT(?:(\d+)M)?(?:(\d+)S)?$/.exec(duration ?? "") ?? [];
      return Number(minutes) * 60 + Number(seconds);
    };
    let started;
    for (const until = Date.now() + RECORD_S * 1_000 + WAIT_MS; ;) {
      const seconds = await recorded();
      started ??= seconds >= 1 ? Date.now() - asked - seconds * 1_000 : undefined;
      if (seconds >= RECORD_S) break;
      assert.ok(Date.now() < until, `Element's recorder reached ${seconds} s of ${RECORD_S} s`);
      await page.waitForTimeout(250);
    }
    console.log(`Element's recorder started about ${Math.max(0, started ?? 0)} ms after it was asked to`);
    await page.getByRole("button", { name: "Send voice message" }).click();
  }

  /** Closes Element's first-run prompts, which would cover a screenshot. */
  async function dismissToasts(page) {
    for (const name of ["Later", "OK", "Dismiss"]) {
      await page.getByRole("button", { name, exact: true }).first().click({ timeout: 2_000 }).catch(() => {});
    }
  }

  test("a user adds the widget in an encrypted room, contributes, transcribes a voice message, and the reply shows in its thread", async (t) => {
    await mkdir(ARTIFACTS, { recursive: true });

    page = await logIn(erin);
    const shot = (name) => page.screenshot({ path: join(ARTIFACTS, `element-${name}.png`) });
    t.after(() => shot("last"));
    await page.getByRole("button", { name: "Add room" }).click();
    await page.getByRole("menuitem", { name: "New room" }).click();
    const create = page.locator(".mx_CreateRoomDialog");
    await create.getByRole("textbox", { name: "Name" }).fill("Voice notes");
    await create.getByRole("button", { name: "Create room" }).click();
    const composer = page.locator(".mx_SendMessageComposer [role=textbox]");
    await composer.waitFor({ timeout: WAIT_MS });

    // A voice message, recorded with Element's own recorder (Ogg Opus, sent
    // in this encrypted room as an encrypted attachment) before Potluck is
    // in the room: the widget must find it in what Element has loaded.
    await recordVoiceMessage(page);
    roomId = (await matrix("GET", "/_matrix/client/v3/joined_rooms")).joined_rooms[0];
    for (const until = Date.now() + WAIT_MS; ;) {
      const recent = await matrix("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=20`);
      if (recent.chunk.some((e) => e.type === "m.room.encrypted")) break;
      assert.ok(Date.now() < until, "the voice message reached the homeserver");
      await new Promise((r) => setTimeout(r, 500));
    }

    await composer.fill(`/addwidget ${widgetUrl}`);
    await composer.press("Enter");
    // Element's command autocomplete can take an Enter (seen once in a full
    // run, the composer still held the command): press it until the command
    // leaves the composer, then wait for the widget to reach the homeserver.
    for (let tries = 1; (await composer.textContent()).trim() !== ""; tries++) {
      assert.ok(tries <= 5, "Element sent the /addwidget command");
      await new Promise((r) => setTimeout(r, 1_000));
      if ((await composer.textContent()).trim() !== "") await composer.press("Enter");
    }
    for (const until = Date.now() + WAIT_MS; ;) {
      const state = await matrix("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state`);
      if (state.some((e) => e.type === "im.vector.modular.widgets" && e.content?.url)) break;
      assert.ok(Date.now() < until, "the widget reached the room's state");
      await new Promise((r) => setTimeout(r, 500));
    }
    await page.getByRole("button", { name: "Room info" }).last().click();
    await page.getByText("Extensions", { exact: true }).click();
    await page.locator(".mx_RightPanel").getByText("Custom", { exact: false }).first().click();

    const approval = page.locator(".mx_WidgetCapabilitiesPromptDialog");
    await approval.waitFor({ timeout: 30_000 });
    await shot("capabilities");
    await approval.getByRole("button", { name: "Approve" }).click();

    // frank, a friend without the widget open, is in the room with Element.
    await matrix("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, erin, { user_id: frank.userId });
    await matrix("POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, frank);
    frankPage = await logIn(frank);
    await frankPage.goto(`${elementUrl}#/room/${roomId}`);
    await frankPage.locator(".mx_SendMessageComposer").waitFor({ timeout: WAIT_MS });

    const frame = page.frameLocator("iframe[src*='localhost']");
    await frame.getByTestId("contribute").click({ timeout: 60_000 });
    await frame.locator("[data-testid=contribute][aria-checked=true]").waitFor({ timeout: WAIT_MS });


    const row = frame.getByTestId("voice").first();
    await row.waitFor({ timeout: 60_000 });
    await row.click({ button: "right" });
    await frame.getByTestId("menu-transcribe").click();
    await frame.locator("[data-testid=voice][data-state=done]").waitFor({ timeout: TRANSCRIPT_WITHIN_MS });
    const transcript = await frame.getByTestId("transcript").first().inputValue();
    console.log(`transcript in Element: ${transcript}`);
    assert.ok(heard(transcript), `the transcript holds what erin said: ${transcript}`);
    // The reply's text as Element shows it: the transcript's first words.
    const opening = transcript.trim().split(/\s+/).slice(0, 4).join(" ");

    await shot("transcript");
    await auditWidget(page, "in Element's right panel, a transcript", "iframe[src*='localhost']");

    // The reply went out through Element, encrypted, as a reply in the
    // voice message's thread: the homeserver files it under the thread, once.
    let roots = [];
    for (const until = Date.now() + 60_000; roots.length === 0 && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 2_000));
      const recent = await matrix("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=50`);
      roots = recent.chunk.filter((e) => e.type === "m.room.encrypted" && e.unsigned?.["m.relations"]?.["m.thread"]);
    }
    assert.equal(roots.length, 1, "the recording is a thread root");
    // Past every timer that could send a second copy: a send is confirmed by
    // Element's answer, and nothing is resent before RESEND_AFTER_MS (30 s).
    await new Promise((r) => setTimeout(r, RESEND_WINDOW_MS));
    const thread = await matrix("GET",
      `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(roots[0].event_id)}/m.thread`);
    assert.equal(thread.chunk.length, 1, "one reply in its thread, after every resend timer ran out");
    assert.equal(thread.chunk[0].type, "m.room.encrypted", "encrypted by Element");
    assert.equal(thread.chunk[0].sender, erin.userId);

    // Element shows it under the voice message as its thread: live for
    // frank, as any reply. Element 1.11.88 loses the live echo of a thread's
    // first reply that its widget sent (the widget driver sends without the
    // thread), so erin's own Element shows it after a reload.
    const threadOf = (p) => p.locator(".mx_ThreadSummary", { hasText: "1 reply" });
    await threadOf(frankPage).waitFor({ timeout: 60_000 });
    assert.ok((await threadOf(frankPage).innerText()).includes(opening));
    await threadOf(frankPage).click();
    await frankPage.locator(".mx_ThreadView").getByText(opening).waitFor({ timeout: WAIT_MS });
    await dismissToasts(frankPage);
    await frankPage.screenshot({ path: join(ARTIFACTS, "element-thread.png") });
    // After the reload Element may also restore that lost echo from its
    // pending events and count it as a second, unsent reply (seen once in a
    // full run under load; the homeserver holds one, asserted above), so
    // erin's check is that the thread shows the transcript.
    await page.reload();
    const shownToErin = page.locator(".mx_ThreadSummary", { hasText: opening });
    await shownToErin.waitFor({ timeout: 60_000 });
    const summary = await shownToErin.innerText();
    if (!summary.includes("1 reply")) console.log(`erin's Element after the reload: ${summary.replace(/\s+/g, " ")}`);
  });
  test("a native node in the encrypted room transcribes a voice message recorded in Element after a !transcribe reply, and its encrypted reply shows in the thread", async () => {
    // gus runs `potluck node` for the room; erin invites him and his node joins.
    const gus = { name: "gus", password: "gus-password", ...await synapse.registerUser("gus", "gus-password") };
    await matrix("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, erin, { user_id: gus.userId });
    // As README's step 4 says: members may announce their node.
    const levelsPath = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.power_levels/`;
    const levels = await matrix("GET", levelsPath);
    levels.events = { ...levels.events, "org.potluck.node": 0 };
    await matrix("PUT", levelsPath, erin, levels);
    const node = startNativeNode({ synapse, roomId, modelHub: hub }, gus, {
      dataDir: await mkdtemp(join(dir, "gus-")), models: MODELS,
    });
    try {
      await node.waitForLine(/contributing/, 60_000);
      // erin's widget was reloaded with her page: the node is the room's only contributor.
      // She records a second voice message; Element shares its key with gus's node.
      await recordVoiceMessage(page);
      // frank joined after the first one, so this is the only one his Element can play.
      const voice = frankPage.locator(".mx_EventTile", { has: frankPage.locator(".mx_MVoiceMessageBody") }).last();
      await voice.waitFor({ timeout: WAIT_MS });
      // frank replies !transcribe to it in plain Element.
      await voice.hover();
      await voice.getByRole("button", { name: "Reply", exact: true }).click();
      // The room's composer, now replying (the thread from before has its own).
      const composer = frankPage.getByRole("textbox", { name: "Send an encrypted reply…" });
      await composer.fill("!transcribe");
      await composer.press("Enter");

      // The node's reply, encrypted, in the voice message's thread.
      let reply;
      for (const until = Date.now() + TRANSCRIPT_WITHIN_MS; !reply;) {
        assert.ok(Date.now() < until, "the native node replied in the thread");
        await new Promise((r) => setTimeout(r, 2_000));
        const recent = await matrix("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=100`);
        reply = recent.chunk.find((e) => e.sender === gus.userId && e.content["m.relates_to"]?.rel_type === "m.thread");
      }
      assert.equal(reply.type, "m.room.encrypted", "encrypted by the native node");
      // frank's Element decrypts it and shows it as the thread of erin's second message.
      const summary = frankPage.locator(".mx_ThreadSummary").nth(1);
      await summary.waitFor({ timeout: 60_000 });
      const shown = await summary.innerText();
      console.log(`native node's transcript in frank's Element: ${shown.replace(/\s+/g, " ")}`);
      assert.ok(heard(shown), `the thread's summary shows what erin said: ${shown}`);
      // Opened, the thread shows the whole reply once Element has rendered it.
      await summary.click();
      const threadView = frankPage.locator(".mx_ThreadView");
      for (const until = Date.now() + WAIT_MS; !heard(await threadView.innerText());) {
        assert.ok(Date.now() < until, `the thread holds what erin said: ${await threadView.innerText()}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      await frankPage.screenshot({ path: join(ARTIFACTS, "element-native-node.png") });

      // Once, past every timer that could send a second copy.
      await new Promise((r) => setTimeout(r, RESEND_WINDOW_MS));
      const root = reply.content["m.relates_to"].event_id;
      const thread = await matrix("GET",
        `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(root)}/m.thread`);
      assert.deepEqual(thread.chunk.map((e) => e.sender), [gus.userId], "one reply, from gus's node");
    } finally {
      node.child.kill("SIGTERM");
      await node.exited;
    }
  });
});
