// End to end, without Potluck's Rust widget: a real Synapse, the test host page
// on http://127.0.0.1, the smoke widget on http://localhost (another site, as in
// a real deployment), headless Chromium. Proves that the harness, the host's
// driver and Synapse work together before any Potluck test relies on them.
//
// Run: node --test tests/e2e/   (POTLUCK_KEEP_TMP=1 keeps Synapse's folder and
// log; POTLUCK_E2E_CONSOLE=all prints every browser console line). The tests
// share one room and build on each other; node:test runs them in order.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { buildHost } from "../host/build.mjs";
import { WAIT_MS, launchBrowser, openHost as openHostPage, widgetFrame } from "../support/browser.mjs";
import { serveStatic } from "../support/static-server.mjs";
import { startSynapse } from "../support/synapse.mjs";

const SMOKE_EVENT = "org.potluck.smoke";
const NODE_EVENT = "org.potluck.node";
// Element's template variables, filled in by the host.
const WIDGET_QUERY = "user=$matrix_user_id&room=$matrix_room_id&widget=$matrix_widget_id"
  + "&theme=$org.matrix.msc2873.client_theme&lang=$org.matrix.msc2873.client_language"
  + "&hs=$org.matrix.msc4039.matrix_base_url";

describe("test host + Synapse + smoke widget", () => {
  let dir, synapse, hostServer, widgetServer, browser;
  let alice, bob, roomId;
  let alicePage, aliceWidget, bobWidget;

  /** Opens the host page for one user in a fresh browser profile; returns the page. */
  function openHost(user, { widgetId = "smoke", autoApprove = false } = {}) {
    return openHostPage(browser, {
      hostUrl: hostServer.url, hsUrl: synapse.baseUrl, user, roomId,
      widgetUrl: `${widgetServer.url}index.html?${WIDGET_QUERY}`, widgetId, autoApprove,
    });
  }

  /**
   * Waits until the widget in `frame` was pushed an event matching `want`:
   * `action` ("send_event" | "update_state") and top-level event fields compare
   * equal; `content` fields too, one by one.
   */
  function waitForReceived(frame, want) {
    return frame.waitForFunction((w) => window.smoke.received.some(({ action, event }) =>
      Object.entries(w).every(([key, value]) =>
        key === "action" ? action === value
          : key === "content" ? Object.entries(value).every(([k, v]) => event.content?.[k] === v)
            : event[key] === value)),
    want, { timeout: WAIT_MS });
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "potluck-host-smoke-"));
    const [hs, dist] = await Promise.all([startSynapse({ dir }), buildHost(join(dir, "dist-host"))]);
    synapse = hs;
    hostServer = await serveStatic({ root: dist });
    widgetServer = await serveStatic({ root: join(dist, "smoke-widget"), host: "localhost" });

    alice = { name: "alice", password: "alice-password" };
    bob = { name: "bob", password: "bob-password" };
    Object.assign(alice, await synapse.registerUser(alice.name, alice.password));
    Object.assign(bob, await synapse.registerUser(bob.name, bob.password));
    roomId = await synapse.createRoom(alice.accessToken, { members: [bob], body: { name: "smoke" } });

    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await hostServer?.close();
    await widgetServer?.close();
    await synapse?.stop();
    if (dir && process.env.POTLUCK_KEEP_TMP !== "1") await rm(dir, { recursive: true, force: true });
  });

  test("an event sent by one user's widget reaches the other's through Synapse", async () => {
    // Alice approves in the dialog, as a user would.
    alicePage = await openHost(alice);
    const dialog = alicePage.locator("#capability-dialog");
    await dialog.waitFor({ state: "visible", timeout: WAIT_MS });
    const listed = await dialog.locator("input[type=checkbox]").evaluateAll((boxes) => boxes.map((b) => b.value));
    assert.ok(listed.includes(`org.matrix.msc2762.send.event:${SMOKE_EVENT}`), listed.join());
    assert.ok(listed.includes("org.matrix.msc4157.send.delayed_event"), listed.join());
    await dialog.getByRole("button", { name: "Approve" }).click();
    aliceWidget = await widgetFrame(alicePage);
    // `window.smoke` exists once the widget's module has run, which may be
    // after its frame is found: a predicate that threw would end the wait.
    await aliceWidget.waitForFunction(() => window.smoke?.approved, null, { timeout: WAIT_MS });

    // Only now Bob, whose host approves silently: a widget is pushed only what
    // arrives after its capabilities were granted, as in Element.
    const bobPage = await openHost(bob, { autoApprove: true });
    bobWidget = await widgetFrame(bobPage);
    assert.equal(await alicePage.locator("#user").textContent(), alice.userId);

    // Element's URL: template variables filled in, widgetId and parentUrl added.
    const src = new URL(aliceWidget.url());
    assert.equal(src.hostname, "localhost");
    assert.equal(src.searchParams.get("user"), alice.userId);
    assert.equal(src.searchParams.get("room"), roomId);
    assert.equal(src.searchParams.get("widget"), "smoke");
    assert.equal(src.searchParams.get("theme"), "light");
    assert.equal(src.searchParams.get("hs"), synapse.baseUrl);
    assert.equal(src.searchParams.get("widgetId"), "smoke");
    assert.equal(new URL(src.searchParams.get("parentUrl")).host, new URL(hostServer.url).host);

    await aliceWidget.waitForFunction(() => window.smoke?.sent, null, { timeout: WAIT_MS });
    await bobWidget.waitForFunction(() => window.smoke?.sent, null, { timeout: WAIT_MS });
    // Bob's hello is pushed to Alice's running widget.
    await waitForReceived(aliceWidget,
      { action: "send_event", type: SMOKE_EVENT, sender: bob.userId, content: { body: `hello from ${bob.userId}` } });

    // Alice's hello predates Bob's widget: it is not pushed, but Bob can read it
    // from the timeline his client loaded at startup.
    const bobReads = await bobWidget.evaluate(async (type) => ({
      pushed: window.smoke.received.map((r) => r.event.content.body),
      read: (await window.smoke.api.readRoomEvents(type, 20)).map((e) => e.content.body),
    }), SMOKE_EVENT);
    assert.ok(!bobReads.pushed.includes(`hello from ${alice.userId}`), bobReads.pushed.join());
    assert.ok(bobReads.read.includes(`hello from ${alice.userId}`), bobReads.read.join());

    // Now both widgets run: Alice's next event reaches Bob live.
    await aliceWidget.evaluate((type) => window.smoke.api.sendRoomEvent(type, { body: "live" }), SMOKE_EVENT);
    await waitForReceived(bobWidget, { action: "send_event", type: SMOKE_EVENT, sender: alice.userId, content: { body: "live" } });
  });

  test("delayed events sent through the widget API arrive after their delay", async () => {
    // A timeline event, 1.5 s late.
    const started = Date.now();
    const sent = await bobWidget.evaluate(
      (type) => window.smoke.api.sendRoomEvent(type, { body: "delayed" }, undefined, 1500), SMOKE_EVENT);
    assert.match(sent.delay_id, /.+/);
    await waitForReceived(aliceWidget, { type: SMOKE_EVENT, content: { body: "delayed" } });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1400, `delayed event arrived after ${elapsed} ms`);

    // A cancelled one never arrives (checked once a later one has).
    await bobWidget.evaluate(async (type) => {
      const { delay_id } = await window.smoke.api.sendRoomEvent(type, { body: "cancelled" }, undefined, 1000);
      await window.smoke.api.cancelScheduledDelayedEvent(delay_id);
      await window.smoke.api.sendRoomEvent(type, { body: "after cancel" }, undefined, 2000);
    }, SMOKE_EVENT);
    await waitForReceived(aliceWidget, { type: SMOKE_EVENT, content: { body: "after cancel" } });
    const bodies = await aliceWidget.evaluate(() => window.smoke.received.map((r) => r.event.content.body));
    assert.ok(!bodies.includes("cancelled"), bodies.join());

    // A delayed state event from an ordinary member (power level 0).
    await bobWidget.evaluate(([type, key]) =>
      window.smoke.api.sendStateEvent(type, key, { alive: true }, undefined, 1000), [NODE_EVENT, bob.userId]);
    await waitForReceived(aliceWidget, { type: NODE_EVENT, state_key: bob.userId, content: { alive: true } });
    const response = await fetch(`${synapse.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}`
      + `/state/${NODE_EVENT}/${encodeURIComponent(bob.userId)}`, { headers: { Authorization: `Bearer ${alice.accessToken}` } });
    assert.deepEqual(await response.json(), { alive: true });
  });

  test("the driver reads the timeline, state and relations, and moves media", async () => {
    const result = await aliceWidget.evaluate(async ([smoke, node, userId]) => {
      const api = window.smoke.api;
      const hello = await api.sendRoomEvent(smoke, { body: "root" });
      await api.sendRoomEvent(smoke, {
        body: "claim", "m.relates_to": { rel_type: "m.reference", event_id: hello.event_id },
      });
      await api.sendStateEvent(node, userId, { alive: "alice" });
      const { content_uri } = await api.uploadFile(new Blob(["potluck bytes"], { type: "text/plain" }));
      const { file } = await api.downloadFile(content_uri);
      // Sends return before the event is back from sync; reads see the client's timeline.
      let timeline = [];
      for (let i = 0; i < 50 && !timeline.some((e) => e.content.body === "claim"); i++) {
        await new Promise((r) => setTimeout(r, 100));
        timeline = await api.readRoomEvents(smoke, 50);
      }
      return {
        timeline: timeline.map((e) => e.content.body),
        state: (await api.readStateEvents(node, 10)).map((e) => e.state_key),
        relations: (await api.readEventRelations(hello.event_id, undefined, "m.reference")).chunk
          .map((e) => e.content.body),
        downloaded: await file.text(),
        mediaConfig: await api.getMediaConfig(),
      };
    }, [SMOKE_EVENT, NODE_EVENT, alice.userId]);

    assert.ok(result.timeline.includes("claim") && result.timeline.includes(`hello from ${bob.userId}`),
      result.timeline.join());
    assert.ok(result.state.includes(alice.userId) && result.state.includes(bob.userId), result.state.join());
    assert.deepEqual(result.relations, ["claim"]);
    assert.equal(result.downloaded, "potluck bytes");
    assert.equal(result.mediaConfig["m.upload.size"], 200 * 1024 * 1024);
  });

  test("Deny grants no capabilities", async () => {
    const page = await openHost(alice, { widgetId: "smoke-denied" });
    const dialog = page.locator("#capability-dialog");
    await dialog.waitFor({ state: "visible", timeout: WAIT_MS });
    await dialog.getByRole("button", { name: "Deny" }).click();
    const widget = await widgetFrame(page);
    await widget.waitForFunction(() => document.getElementById("status").textContent.startsWith("send failed"),
      null, { timeout: WAIT_MS });
    assert.deepEqual(await widget.evaluate(() => window.smoke.approved), []);
    await page.context().close();
  });
});
