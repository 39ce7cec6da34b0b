// One room of friends for end-to-end tests of the Potluck widget: a Synapse,
// the test host on http://127.0.0.1, the release widget (dist/) on
// http://localhost, and a browser to put each friend in front of it.

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { buildHost } from "../host/build.mjs";
import { WAIT_MS, WIDGET_QUERY, launchBrowser, openHost, widgetFrame } from "./browser.mjs";
import { roomEvents } from "./chat.mjs";
import { serveModelHub } from "./model-hub.mjs";
import { serveStatic } from "./static-server.mjs";
import { startSynapse } from "./synapse.mjs";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS = join(ROOT, "test-artifacts");
/** Where `scripts/fetch-models.sh` keeps the Whisper models. */
export const MODELS = process.env.POTLUCK_MODELS ?? join(homedir(), ".cache/potluck/models");

/**
 * Starts everything for friends `names` (the first creates the room).
 * `defaultRateLimits` keeps Synapse's own limits, as on a real homeserver;
 * `browserArgs` are extra Chromium flags (WebGPU, for one).
 */
export async function startPoolRoom({ names, defaultRateLimits = false, browserArgs = [] }) {
  const dir = await mkdtemp(join(tmpdir(), "potluck-e2e-"));
  const [synapse, hostDist] = await Promise.all([
    startSynapse({ dir, defaultRateLimits }), buildHost(join(dir, "dist-host")),
  ]);
  const hostServer = await serveStatic({ root: hostDist });
  // dist/ alone, as README's deployment serves it; Whisper models from a
  // stand-in for the Hugging Face Hub on another site, named by `models=`.
  const widgetServer = await serveStatic({ root: join(ROOT, "dist"), host: "localhost" });
  const modelHub = await serveModelHub({ models: MODELS });
  const users = {};
  for (const name of names) {
    const password = `${name}-password`;
    users[name] = { name, password, ...(await synapse.registerUser(name, password)) };
  }
  const [creator, ...members] = names.map((n) => users[n]);
  const roomId = await synapse.createRoom(creator.accessToken, { members, body: { name: "Potluck friends" } });
  const browser = await launchBrowser({ args: browserArgs });
  await mkdir(ARTIFACTS, { recursive: true });

  return {
    synapse, users, roomId, modelHub,

    /** The widget's URL as /addwidget gives it, fetching models from `models`. */
    widgetUrl: (models = modelHub.url) => `${widgetServer.url}index.html?${WIDGET_QUERY}&models=${models}`,

    /** Opens the host page for `name`; returns the page. */
    open: (name, opts = {}) => openHost(browser, {
      hostUrl: hostServer.url, hsUrl: synapse.baseUrl, user: users[name], roomId,
      widgetUrl: `${widgetServer.url}index.html?${WIDGET_QUERY}&models=${modelHub.url}`, ...opts,
    }),

    /**
     * Opens `name`'s page with capabilities approved; returns the widget's
     * frame once it runs. `{ webgpu: false }`: a machine without WebGPU.
     */
    async openWidget(name, opts = {}) {
      const page = await this.open(name, { autoApprove: true, ...opts });
      const widget = await widgetFrame(page);
      await widget.getByTestId("contribute").waitFor({ timeout: WAIT_MS });
      return { page, widget };
    },

    /** Every event in the room, oldest first, read from Synapse directly. */
    roomEvents: () => roomEvents({ synapse, roomId }, creator),

    async close() {
      await browser.close();
      await Promise.allSettled([hostServer.close(), widgetServer.close(), modelHub.close()]);
      await synapse.stop();
      if (process.env.POTLUCK_KEEP_TMP !== "1") await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The chunk outputs posted to the room: one entry per `output` outcome. */
export function chunkOutputs(events) {
  return events.filter((e) => e.type === "org.potluck.result").flatMap((e) =>
    e.content.outcomes.filter((o) => "output" in o)
      .map((o) => ({ task: e.content["m.relates_to"]?.event_id, chunk: o.chunk, output: o.output, sender: e.sender })));
}

/** Submits a "count primes" task from `widget`'s form. */
export async function submitPrimes(widget, { start, end, chunks }) {
  await openMore(widget);
  const form = widget.getByTestId("submit-form");
  await form.getByTestId("start").fill(String(start));
  await form.getByTestId("end").fill(String(end));
  await form.getByTestId("chunks").fill(String(chunks));
  await form.getByTestId("submit").click();
}

/** Waits until `widget` shows `count` tasks, all done. */
export function waitAllDone(widget, count, timeout) {
  return widget.waitForFunction((n) => {
    const tasks = [...document.querySelectorAll("[data-testid=task]")];
    return tasks.length === n && tasks.every((t) => t.dataset.status === "done");
  }, count, { timeout, polling: 500 });
}

/** The tasks as `widget` shows them. */
export function shownTasks(widget) {
  return widget.getByTestId("task").evaluateAll((els) => els.map((e) => ({
    id: e.dataset.taskId, status: e.querySelector("[data-testid=task-status]").textContent,
    doneBy: e.dataset.doneBy.split(",").filter(Boolean), what: e.querySelector(".what").textContent,
  })));
}

/** Opens "More" (counting primes, kernels, scripts, the allowlist) as a friend would, if it is closed. */
export async function openMore(widget) {
  const more = widget.getByTestId("more");
  if (!(await more.evaluate((details) => details.open))) await more.locator("> summary").click();
}

/** Switches Contribute compute on and waits until the widget says it contributes. */
export async function contribute(widget) {
  await widget.getByTestId("contribute").click();
  await widget.locator("[data-testid=contribute][aria-checked=true]").waitFor({ timeout: WAIT_MS });
}

/**
 * The account whose node coordinates, as `widget`'s pool list shows it. The
 * oldest node coordinates, by the time each node says it came online, so
 * which of two friends who started seconds apart does is the room's to say.
 */
export async function coordinatorOf(widget) {
  return widget.locator("[data-testid=node]", { has: widget.locator(".badge", { hasText: "coordinator" }) })
    .getAttribute("data-owner", { timeout: WAIT_MS });
}
