// How often a friend's browser downloads a Whisper model. A widget on another
// site than its client gets no Cache Storage, so Potluck's worker fetches the
// model over HTTP each time a tab loads it; whether the browser's HTTP cache
// then serves it depends on the server's headers (the Hub stand-in sends what
// a CDN should: `Cache-Control: public, max-age=31536000, immutable`) and on
// the profile. Chromium partitions its HTTP cache by top-level site and frame
// site, which is the same for every tab of one room in one browser.
//
// Measured here in the client/widget/model-server layout of a deployment
// (three sites), with the byte count the model server sent per tab.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";

import { CHROMIUM, CHROMIUM_ARGS } from "../support/browser.mjs";
import { HUB_MODELS, serveModelHub } from "../support/model-hub.mjs";
import { MODELS, ROOT } from "../support/pool-room.mjs";
import { serveStatic } from "../support/static-server.mjs";

const { repo, revision } = HUB_MODELS["tiny.en"];

describe("the model in the browser's HTTP cache", () => {
  let client;
  let widget;
  let hub;
  let profile;
  before(async () => {
    client = await serveStatic({ root: join(ROOT, "tests/fixtures/cross-site") });
    widget = await serveStatic({ root: join(ROOT, "tests/fixtures/cross-site"), host: "localhost" });
    hub = await serveModelHub({ models: MODELS });
    profile = await mkdtemp(join(tmpdir(), "potluck-profile-"));
  });
  after(async () => {
    await Promise.allSettled([client?.close(), widget?.close(), hub?.close()]);
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  /** Bytes the model server sent while each of `tabs` tabs loaded the model once. */
  async function bytesPerTab(context, tabs) {
    const url = `${hub.url}/${repo}/resolve/${revision}/model.bin`;
    const sent = () => [...hub.sent.values()].reduce((a, b) => a + b, 0);
    const counts = [];
    for (let i = 0; i < tabs; i++) {
      const before = sent();
      const page = await context.newPage();
      await page.goto(`${client.url}top.html?frame=${encodeURIComponent(`${widget.url}frame.html`)}`);
      const frame = await (await page.locator("#frame").elementHandle()).contentFrame();
      await frame.waitForFunction(() => window.fetchInWorker);
      const got = await frame.evaluate((u) => window.fetchInWorker(u), url);
      assert.ok(got > 70_000_000, `the worker got the model: ${got}`);
      counts.push(sent() - before);
      await page.close();
    }
    return counts;
  }

  test("a browser profile downloads the model once, whatever the number of tabs", async () => {
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    try {
      const counts = await bytesPerTab(context, 3);
      console.log(`persistent profile, bytes the model server sent per tab: ${counts.join(", ")}`);
      assert.ok(counts[0] > 70_000_000, "the first tab downloads it");
      assert.deepEqual(counts.slice(1), [0, 0], "later tabs get it from the HTTP cache");
    } finally {
      await context.close();
    }
  });

  test("a private window keeps nothing that large: each tab downloads it", async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    try {
      const counts = await bytesPerTab(await browser.newContext(), 2);
      console.log(`private (incognito) context, bytes the model server sent per tab: ${counts.join(", ")}`);
      assert.ok(counts.every((n) => n > 70_000_000));
    } finally {
      await browser.close();
    }
  });
});
