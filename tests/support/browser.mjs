// Headless Chromium (Debian's, through playwright-core) and the test host page:
// what every end-to-end test needs to put a friend in front of a widget.

import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
// Without the background-networking flags Chromium keeps dialing Google, which
// this machine's closed network refuses; --no-sandbox because CI runs as root.
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
export const WAIT_MS = 15_000;
// WebGPU in headless Chromium: SwiftShader, a GPU in software.
export const WEBGPU_ARGS = ["--enable-unsafe-webgpu"];

// Element's template variables, filled in by the host as Element does.
export const WIDGET_QUERY = "user=$matrix_user_id&room=$matrix_room_id&theme=$org.matrix.msc2873.client_theme";

export function launchBrowser({ args = [] } = {}) {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...args] });
}

/**
 * Chromium flags for a microphone that plays `wav` (looping) to whoever
 * records, without a permission prompt: how a test speaks into Element.
 */
export function fakeMicrophone(wav) {
  return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", `--use-file-for-fake-audio-capture=${wav}`];
}

/**
 * Opens the test host for `user` in a fresh browser context (its own storage,
 * like another friend's computer). Browser errors are echoed with the user's name.
 */
export async function openHost(browser, { hostUrl, hsUrl, user, roomId, widgetUrl, widgetId = "potluck", autoApprove = false, theme, webgpu = true }) {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  // A machine without WebGPU: the widget finds no navigator.gpu in any frame.
  if (!webgpu) await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }));
  const page = await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error" || process.env.POTLUCK_E2E_CONSOLE === "all") {
      console.error(`[${user.name} console.${msg.type()}] ${msg.text()}`);
    }
  });
  page.on("pageerror", (error) => console.error(`[${user.name} pageerror] ${error.message}`));
  const query = new URLSearchParams({
    hs: hsUrl, user: user.name, password: user.password, room: roomId,
    widget: widgetUrl, widgetId, autoApprove: autoApprove ? "1" : "0",
  });
  if (theme) query.set("theme", theme);
  await page.goto(`${hostUrl}?${query}`);
  return page;
}

/** The widget's frame, once the host has put the iframe in the page. */
export async function widgetFrame(page) {
  const handle = await page.locator("#widget-frame").elementHandle({ timeout: WAIT_MS });
  return handle.contentFrame();
}
