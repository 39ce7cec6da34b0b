// The widget as friends see it, in the sizes Element shows widgets (its right
// panel, about 360 px; a room app, 1,200 px) and in both of Element's themes.
// Each main state is screenshotted into test-artifacts/ui/ (the README's
// pictures come from there) and audited by axe-core: no serious or critical
// WCAG violation. Then everything is done with the keyboard alone: switching
// contributing on, the voice message's menu, the tools under "More", a task.
//
// Needs dist/ (tests/run.sh builds it first). No Whisper model runs here.

import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS } from "../support/browser.mjs";
import { sendVoiceMessage } from "../support/chat.mjs";
import { ARTIFACTS, ROOT, contribute, openMore, startPoolRoom, submitPrimes, waitAllDone } from "../support/pool-room.mjs";

const SHOTS = join(ARTIFACTS, "ui");
// Element's right panel and a full-width room app. The test host puts the
// widget beside a 380 px timeline from 1,000 px up, so the page is wider.
const WIDTHS = { narrow: { widget: 360, page: 360 }, wide: { widget: 1200, page: 1581 } };

/**
 * Screenshots the whole widget (not only what its frame shows) at `width`:
 * the page grows to hold the frame at its content's height, as the browser
 * paints a cross-site frame only where it is on screen.
 */
async function shoot(page, widget, width, name) {
  const { widget: expected, page: pageWidth } = WIDTHS[width];
  await page.setViewportSize({ width: pageWidth, height: 900 });
  await widget.waitForFunction((w) => window.innerWidth === w, expected, { timeout: WAIT_MS });
  const frame = page.locator("#widget-frame");
  const height = await widget.evaluate(() => document.documentElement.scrollHeight);
  const top = (await frame.boundingBox()).y;
  await page.setViewportSize({ width: pageWidth, height: Math.ceil(top + height + 8) });
  await frame.evaluate((el, h) => { el.style.height = `${h}px`; }, height);
  await frame.screenshot({ path: join(SHOTS, `${name}-${width}.png`) });
  await frame.evaluate((el) => { el.style.height = ""; });
  await page.setViewportSize({ width: pageWidth, height: 900 });
}

/** Screenshots `state` at both widths for each friend's page and audits each. */
async function capture(pages, widgets, state) {
  for (const [name, theme] of [["alice", "light"], ["bob", "dark"]]) {
    for (const width of Object.keys(WIDTHS)) {
      await shoot(pages[name], widgets[name], width, `${state}-${theme}`);
      await auditWidget(pages[name], `${state}, ${theme}, ${width}`);
    }
  }
}

/** Which element of the widget has the keyboard's focus, by its test id or tag. */
function focused(widget) {
  return widget.evaluate(() => {
    const el = document.activeElement;
    return el?.dataset.testid ?? el?.tagName.toLowerCase();
  });
}

/** Whether the focused element shows a focus ring. */
function focusRingShown(widget) {
  return widget.evaluate(() => getComputedStyle(document.activeElement).outlineStyle !== "none");
}

describe("the widget as friends see it", { timeout: 600_000 }, () => {
  let room;
  const pages = {};
  const widgets = {};

  before(async () => {
    await mkdir(SHOTS, { recursive: true });
    room = await startPoolRoom({ names: ["alice", "bob", "carol"] });
    // Alice uses Element's light theme, bob its dark one.
    for (const [name, theme] of [["alice", "light"], ["bob", "dark"], ["carol", "light"]]) {
      ({ page: pages[name], widget: widgets[name] } = await room.openWidget(name, { theme }));
    }
  });
  after(() => room?.close());

  test("its main states at 360 and 1,200 px, light and dark, have no serious accessibility problem", async () => {
    await capture(pages, widgets, "empty");

    const voice = await readFile(join(ROOT, "widget/test-data/audio/five-sentences.ogg"));
    const message = await sendVoiceMessage(room, room.users.carol, voice, 17_400);
    for (const name of ["alice", "bob"]) {
      await widgets[name].locator(`[data-testid=voice][data-event-id="${message}"]`).waitFor({ timeout: WAIT_MS });
      await contribute(widgets[name]);
    }
    await widgets.alice.locator("[data-testid=node]").nth(1).waitFor({ timeout: WAIT_MS });
    await capture(pages, widgets, "contributing");

    await submitPrimes(widgets.carol, { start: 0, end: 3_000_000, chunks: 4 });
    for (const name of ["alice", "bob"]) await waitAllDone(widgets[name], 1, 120_000);
    // The pool at a glance counts the four pieces as today's work.
    const pieces = await widgets.alice.getByTestId("work-today").evaluateAll((els) => els.map((e) => Number(e.dataset.pieces)));
    assert.equal(pieces.reduce((a, b) => a + b, 0), 4, `pieces today per computer: ${pieces}`);
    for (const name of ["alice", "bob"]) await openMore(widgets[name]);
    await capture(pages, widgets, "task-done-more-open");
  });

  test("everything can be done with the keyboard alone, with a visible focus", async () => {
    const { carol } = widgets;
    const page = pages.carol;
    // Into the frame as a keyboard user arrives: Tab from the host's last control.
    await carol.locator("h1").click();
    await page.keyboard.press("Tab");
    assert.equal(await focused(carol), "contribute");
    assert.ok(await focusRingShown(carol), "the focused switch shows a ring");
    await page.keyboard.press("Space");
    await carol.locator("[data-testid=contribute][aria-checked=true]").waitFor({ timeout: WAIT_MS });

    // A voice message's menu: Shift+F10 opens it with Transcribe focused; Escape closes it.
    const row = carol.getByTestId("voice").first();
    await row.focus();
    assert.ok(await focusRingShown(carol), "the focused voice message shows a ring");
    await page.keyboard.press("Shift+F10");
    await carol.getByTestId("voice-menu").waitFor({ timeout: WAIT_MS });
    assert.equal(await focused(carol), "menu-transcribe");
    await page.keyboard.press("Escape");
    await carol.getByTestId("voice-menu").waitFor({ state: "detached", timeout: WAIT_MS });

    // "More" opens from the keyboard (carol had it open: she closes it first),
    // and a task goes out from its form.
    const summary = carol.getByTestId("more").locator("> summary");
    if (await carol.getByTestId("more").evaluate((d) => d.open)) {
      await summary.focus();
      await page.keyboard.press("Enter");
    }
    assert.ok(!(await carol.getByTestId("more").evaluate((d) => d.open)), "Enter closes More");
    await summary.focus();
    await page.keyboard.press("Enter");
    assert.ok(await carol.getByTestId("more").evaluate((d) => d.open), "Enter opens More");
    const before = await carol.getByTestId("task").count();
    await carol.getByTestId("start").focus();
    await page.keyboard.press("Control+A");
    await page.keyboard.type("0");
    await page.keyboard.press("Tab");
    assert.equal(await focused(carol), "end");
    await page.keyboard.press("Control+A");
    await page.keyboard.type("1000000");
    await page.keyboard.press("Enter");
    await carol.locator("[data-testid=task]").nth(before).waitFor({ timeout: WAIT_MS });
  });

  test("opened outside a Matrix room, it says how to add it, accessibly", async () => {
    const page = await pages.carol.context().newPage();
    await page.goto(room.widgetUrl().replace(/\?.*/, ""));
    await page.getByTestId("stopped").waitFor({ timeout: WAIT_MS });
    assert.match(await page.getByTestId("stopped").textContent(), /\/addwidget/);
    await page.setViewportSize({ width: 360, height: 640 });
    await page.screenshot({ path: join(SHOTS, "outside-a-room-narrow.png") });
    await page.close();
  });
});
