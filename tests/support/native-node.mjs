// `potluck node` (worker/src/node) as a friend starts it, for the tests and
// benchmarks: a child process logged in as one of the room's users, its log
// kept in test-artifacts/native-node-NAME.log and readable line by line.

import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { join } from "node:path";

import { WAIT_MS } from "./browser.mjs";
import { ARTIFACTS, ROOT } from "./pool-room.mjs";

export const POTLUCK = join(ROOT, "target/debug/potluck");

/**
 * Starts `potluck node` for `user` in `room`'s room with one worker.
 * @param {object} opts
 * @param {string} opts.dataDir its session and keys
 * @param {string} [opts.models] its models folder (fetched from the room's Hub stand-in, if it has one)
 * @param {string|null} [opts.password] null: start from the stored session
 * @param {string} [opts.accessToken] log in with this token (POTLUCK_ACCESS_TOKEN) instead
 * @param {string[]} [opts.args] more options
 */
export function startNativeNode(room, user, { dataDir, models, password = user.password, accessToken, args = [] }) {
  const env = { ...process.env };
  for (const name of ["POTLUCK_PASSWORD", "POTLUCK_ACCESS_TOKEN", "POTLUCK_MODELS"]) delete env[name];
  if (models) env.POTLUCK_MODELS = models;
  if (accessToken) env.POTLUCK_ACCESS_TOKEN = accessToken;
  else if (password) env.POTLUCK_PASSWORD = password;
  const hub = room.modelHub ? ["--models", room.modelHub.url] : [];
  const child = spawn(process.env.POTLUCK_BIN ?? POTLUCK, [
    "node", "--homeserver", room.synapse.baseUrl, "--user", user.userId, "--room", room.roomId,
    "--data-dir", dataDir, "--workers", "1", ...hub, ...args,
  ], { env, stdio: ["ignore", "pipe", "pipe"] });
  const log = createWriteStream(join(ARTIFACTS, `native-node-${user.name}.log`), { flags: "a" });
  const lines = [];
  const listeners = new Set();
  for (const stream of [child.stdout, child.stderr]) {
    let rest = "";
    stream.on("data", (data) => {
      log.write(data);
      const parts = (rest + data.toString()).split("\n");
      rest = parts.pop();
      for (const line of parts) {
        lines.push(line);
        for (const listener of listeners) listener(line);
      }
    });
  }
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return {
    child, lines, exited,
    /** The first log line from line `from` on (past or to come) that `pattern` matches. */
    waitForLine(pattern, timeout = WAIT_MS, from = 0) {
      const seen = lines.slice(from).find((l) => pattern.test(l));
      if (seen) return Promise.resolve(seen.match(pattern));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(new Error(`no log line ${pattern} within ${timeout} ms:\n${lines.slice(-20).join("\n")}`));
        }, timeout);
        const listener = (line) => {
          const match = line.match(pattern);
          if (!match) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve(match);
        };
        listeners.add(listener);
      });
    },
  };
}
