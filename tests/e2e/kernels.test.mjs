// WebGPU kernels end to end: alice and bob contribute from browsers with
// WebGPU (SwiftShader in headless Chromium), carol from one without, and dave
// runs `potluck node --accept kernels` (wgpu on Mesa's lavapipe, each chunk in
// a process of its own). alice renders the Mandelbrot set on friends' GPUs: a
// WGSL kernel, one tile per chunk, refused until alice (the room's moderator)
// allows its source. Only the three GPUs compute tiles, carol's machine none;
// the picture is assembled from them; and the same task run natively through
// wgpu on lavapipe (target/debug/run-kernel) gives the same pixels.
//
// Needs dist/, target/debug/run-kernel and target/debug/potluck (tests/run.sh
// builds them).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { auditWidget } from "../support/audit.mjs";
import { WAIT_MS, WEBGPU_ARGS } from "../support/browser.mjs";
import { startNativeNode } from "../support/native-node.mjs";
import { ARTIFACTS, ROOT, chunkOutputs, contribute, openMore, shownTasks, startPoolRoom } from "../support/pool-room.mjs";

const TASK_DONE_MS = 180_000;

describe("WebGPU kernels", () => {
  let room;
  let davesNode;
  const pages = {};
  const widgets = {};

  before(async () => {
    room = await startPoolRoom({ names: ["alice", "bob", "carol", "dave"], browserArgs: WEBGPU_ARGS });
    for (const name of ["alice", "bob", "carol"]) {
      ({ page: pages[name], widget: widgets[name] } = await room.openWidget(name, { webgpu: name !== "carol" }));
      // Kernels are under "More".
      await openMore(widgets[name]);
    }
  });

  after(async () => {
    davesNode?.child.kill("SIGKILL");
    await room?.close();
  });

  test("the Mandelbrot kernel runs only on GPUs, the browsers' and a native node's, and matches wgpu on lavapipe", async () => {
    davesNode = startNativeNode(room, room.users.dave, {
      dataDir: await mkdtemp(join(tmpdir(), "potluck-kernels-")), args: ["--accept", "kernels"],
    });
    await davesNode.waitForLine(/kernels run on this GPU/, 60_000);
    for (const name of ["alice", "bob", "carol"]) await contribute(widgets[name]);
    const node = (owner) => widgets.alice.locator(`[data-testid=node][data-owner="@${owner}:localhost"] .caps`);
    await node("carol").waitFor({ timeout: WAIT_MS });
    await node("dave").waitFor({ timeout: WAIT_MS });
    assert.match(await node("alice").textContent(), /WebGPU/);
    assert.match(await node("bob").textContent(), /WebGPU/);
    assert.match(await node("dave").textContent(), /WebGPU/);
    assert.doesNotMatch(await node("carol").textContent(), /WebGPU/);

    const settled = () => widgets.alice.waitForFunction(() => {
      const el = document.querySelector("[data-testid=task]");
      return el && ["done", "failed", "cancelled"].includes(el.dataset.status);
    }, null, { timeout: TASK_DONE_MS, polling: 500 });

    // Like a script, a kernel runs only once the room allowed its source.
    await widgets.alice.getByTestId("submit-mandelbrot-gpu").click();
    await settled();
    const [refused] = await shownTasks(widgets.alice);
    assert.match(refused.status, /Failed: this WebGPU kernel is not on this room's allowlist yet; a moderator can allow it under More/);
    await widgets.alice.getByTestId("allow-mandelbrot-gpu").click();
    await widgets.alice.getByTestId("allow-mandelbrot-gpu").waitFor({ state: "detached", timeout: WAIT_MS });

    await widgets.alice.getByTestId("submit-mandelbrot-gpu").click();
    await widgets.alice.waitForFunction(() => document.querySelectorAll("[data-testid=task]").length === 2, null, { timeout: WAIT_MS });
    await settled();
    const [task] = await shownTasks(widgets.alice);
    assert.equal(task.status, "Done: 16 results");
    for (const name of ["alice", "bob", "dave"]) {
      assert.ok(task.doneBy.includes(`@${name}:localhost`), `${name}'s GPU ran tiles: ${task.doneBy}`);
    }
    const senders = new Set(chunkOutputs(await room.roomEvents()).filter((o) => o.task === task.id).map((o) => o.sender));
    assert.ok(!senders.has("@carol:localhost"), "carol's machine, without WebGPU, ran no tile");

    // The same task natively: wgpu on Vulkan (lavapipe), the same shader.
    const event = (await room.roomEvents()).find((e) => e.event_id === task.id);
    const native = JSON.parse(execFileSync(join(ROOT, "target/debug/run-kernel"), { input: JSON.stringify(event.content.params) }));
    const result = JSON.parse(await widgets.alice.locator(`[data-task-id="${task.id}"] [data-testid=task-result]`).textContent());
    let same = 0;
    let total = 0;
    for (const [i, tile] of result.outputs.entries()) {
      const mine = Buffer.from(tile.pixels, "base64");
      const theirs = Buffer.from(native.outputs[i].pixels, "base64");
      assert.equal(mine.length, theirs.length);
      for (let p = 0; p < mine.length; p++) same += mine[p] === theirs[p] ? 1 : 0;
      total += mine.length;
    }
    console.log(`browser (SwiftShader) vs native (${native.adapter}): ${same}/${total} pixels equal`);
    assert.equal(same, total, "every pixel the same in the browser and natively");

    const picture = widgets.alice.locator(`[data-task-id="${task.id}"] [data-testid=tile-image]`);
    assert.equal(await picture.getAttribute("data-tiles"), "16");
    const legend = await picture.getByTestId("tile-legend").textContent();
    assert.match(legend, /alice \(\d+\)/);
    assert.match(legend, /bob \(\d+\)/);
    assert.match(legend, /dave \(\d+\)/);
    await picture.screenshot({ path: join(ARTIFACTS, "mandelbrot-gpu.png") });
    await auditWidget(pages.alice, "a picture from friends' GPUs");

    // The next test is about browsers' workers: dave's node leaves first.
    // (Its own time limit is tested natively, worker/node/tests/kernel_process.rs.)
    davesNode.child.kill("SIGTERM");
    assert.deepEqual(await davesNode.exited, { code: 0, signal: null });
  });

  test("a kernel past its time limit is stopped, its task fails with the reason, and the GPU runs the next kernel", async () => {
    const wgsl = await readFile(join(ROOT, "tests/fixtures/kernels/spin.wgsl"), "utf8");
    const integrity = `sha256-${createHash("sha256").update(wgsl).digest("base64")}`;
    const spin = (rounds, maxSeconds) => JSON.stringify({
      wgsl, entry: "main", workgroups: [16, 1, 1], output_words: 1, chunks: [[rounds]], max_seconds: maxSeconds,
    });
    const alice = widgets.alice;
    await alice.getByText("Your own kernel").click();
    await alice.getByLabel("kernel name").fill("spin");
    await alice.getByLabel("kernel hash").fill(integrity);
    await alice.getByRole("button", { name: "Allow (moderators)" }).click();

    const submit = async (task) => {
      const before = await alice.getByTestId("task").count();
      await alice.getByTestId("kernel-task").fill(task);
      await alice.getByTestId("kernel-submit").click();
      await alice.waitForFunction((n) => document.querySelectorAll("[data-testid=task]").length === n + 1, before, { timeout: WAIT_MS });
      await alice.waitForFunction(() => {
        const el = document.querySelector("[data-testid=task]");
        return ["done", "failed", "cancelled"].includes(el.dataset.status);
      }, null, { timeout: TASK_DONE_MS, polling: 500 });
      return (await shownTasks(alice))[0];
    };
    // About 14 s on SwiftShader here (3.7 s per million rounds), far past its
    // 1 s limit. WebGPU cannot cancel a dispatch: the browser's GPU process
    // finishes it after the worker is gone, so it is long, not endless.
    const stopped = await submit(spin(4_000_000, 1));
    assert.match(stopped.status, /Failed: .*ran longer than its time limit of 1 s and was stopped/);
    const next = await submit(spin(1_000, 30));
    assert.equal(next.status, "Done: 1 result");
  });
});
