// A throwaway Synapse for end-to-end tests: one process, sqlite, 127.0.0.1 only.
//
// Everything talks plain HTTP to the client-server API (no SDK), so a failing
// test shows the server's own answer. Nothing here may reach outside 127.0.0.1.

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

/** The custom state event every Potluck node publishes; ordinary members must be able to send it. */
export const POTLUCK_NODE_EVENT = "org.potluck.node";

const SHARED_SECRET = "potluck-test-shared-secret";
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

// Every rate limiter Synapse 1.163 reads (synapse/config/ratelimiting.py), dotted
// keys meaning nested maps. rc_remote_media_downloads (bytes, not events) and
// rc_federation (no federation here) are left alone.
const RATE_LIMITERS = [
  "rc_message", "rc_registration", "rc_registration_token_validity",
  "rc_login.address", "rc_login.account", "rc_login.failed_attempts",
  "rc_joins.local", "rc_joins.remote", "rc_joins_per_room",
  "rc_invites.per_room", "rc_invites.per_user", "rc_invites.per_issuer",
  "rc_third_party_invite", "rc_key_requests", "rc_3pid_validation",
  "rc_media_create", "rc_presence.per_user", "rc_delayed_event_mgmt",
  "rc_room_creation", "rc_reports", "rc_user_directory", "rc_profile",
];

// Synapse's default `events` map for new rooms (handlers/room.py). A
// power_level_content_override replaces `events` wholesale (a shallow update),
// so we repeat the defaults and add ours on top. Tombstone is 150 in v12 rooms
// and 100 before; 100 is the conservative choice for both here.
const DEFAULT_EVENT_LEVELS = {
  "m.room.name": 50,
  "m.room.power_levels": 100,
  "m.room.history_visibility": 100,
  "m.room.canonical_alias": 50,
  "m.room.avatar": 50,
  "m.room.tombstone": 100,
  "m.room.server_acl": 100,
  "m.room.encryption": 100,
};

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function homeserverConfig({ dir, port, defaultRateLimits, roomVersion }) {
  const config = {
    server_name: "localhost",
    public_baseurl: `http://127.0.0.1:${port}/`,
    pid_file: join(dir, "homeserver.pid"),
    listeners: [{
      port, bind_addresses: ["127.0.0.1"], type: "http", tls: false, x_forwarded: false,
      resources: [{ names: ["client"], compress: false }],
    }],
    database: { name: "sqlite3", args: { database: join(dir, "homeserver.db") } },
    media_store_path: join(dir, "media_store"),
    signing_key_path: join(dir, "localhost.signing.key"),
    registration_shared_secret: SHARED_SECRET,
    enable_registration: false,
    trusted_key_servers: [],
    suppress_key_server_warning: true,
    enable_authenticated_media: true,
    max_upload_size: "200M",
    // MSC4140 (delayed events) is on only when a maximum delay is set.
    max_event_delay_duration: "24h",
    presence: { enabled: false },
    report_stats: false,
  };
  if (roomVersion) config.default_room_version = String(roomVersion);
  if (!defaultRateLimits) {
    for (const key of RATE_LIMITERS) {
      const path = key.split(".");
      let node = config;
      for (const part of path.slice(0, -1)) node = node[part] ??= {};
      node[path.at(-1)] = { per_second: 1000, burst_count: 10000 };
    }
  }
  return config;
}

function synapsePython() {
  const venv = process.env.SYNAPSE_VENV ?? join(homedir(), ".cache/potluck/synapse-venv");
  return join(venv, "bin/python");
}

// Runs Synapse's homeserver module through a tiny Python shim that asks the
// kernel to SIGTERM it when its parent (this node process) dies, even by
// SIGKILL, so no test run can leave a stray homeserver behind.
// PR_SET_PDEATHSIG is 1 and survives the exec.
const PDEATHSIG_SHIM =
  "import ctypes, os, signal, sys;" +
  "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM);" +
  "os.execv(sys.executable, [sys.executable, '-m', 'synapse.app.homeserver'] + sys.argv[1:])";

function run(python, args, { cwd, logFd }) {
  return spawn(python, ["-c", PDEATHSIG_SHIM, ...args], {
    cwd, stdio: ["ignore", logFd, logFd],
  });
}

async function logTail(logPath) {
  const text = await readFile(logPath, "utf8").catch(() => "");
  return text.split("\n").slice(-30).join("\n");
}

async function api(baseUrl, method, path, { accessToken, body } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (accessToken) headers.Authorization = `Bearer ${accessToken}`;
  const response = await fetch(baseUrl + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${method} ${path} → ${response.status} ${JSON.stringify(json)}`);
  }
  return json;
}

/**
 * Starts Synapse in `dir` (a fresh temporary folder when omitted) and resolves
 * once it answers /_matrix/client/versions.
 *
 * @param {object} opts
 * @param {string} [opts.dir] where homeserver.yaml, the database, media and homeserver.log go;
 *   when omitted, a temporary folder that stop() removes (POTLUCK_KEEP_TMP=1 keeps it)
 * @param {number} [opts.port] listener port on 127.0.0.1; a free one when omitted
 * @param {boolean} [opts.defaultRateLimits] keep Synapse's default rate limits (for tests about them)
 * @param {string|number} [opts.roomVersion] default_room_version for new rooms
 */
export async function startSynapse({ dir, port, defaultRateLimits = false, roomVersion } = {}) {
  const python = synapsePython();
  await access(python, constants.X_OK).catch(() => {
    throw new Error(`no Synapse at ${python}: run scripts/setup.sh, or set SYNAPSE_VENV`);
  });
  // A folder we made ourselves is ours to remove on stop(), unless asked to keep it.
  const ownsDir = !dir;
  dir ??= await mkdtemp(join(tmpdir(), "potluck-synapse-"));
  port ??= await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const configPath = join(dir, "homeserver.yaml");
  const logPath = join(dir, "homeserver.log");

  // JSON is valid YAML, and spares us a YAML writer.
  const config = homeserverConfig({ dir, port, defaultRateLimits, roomVersion });
  await writeFile(configPath, JSON.stringify(config, null, 2) + "\n");
  const log = await open(logPath, "a");

  const keygen = run(python, ["-c", configPath, "--generate-keys"], { cwd: dir, logFd: log.fd });
  const keygenCode = await new Promise((resolve) => keygen.on("exit", resolve));
  if (keygenCode !== 0) {
    const tail = await logTail(logPath);
    await log.close();
    if (ownsDir) await rm(dir, { recursive: true, force: true });
    throw new Error(`synapse --generate-keys exited ${keygenCode}:\n${tail}`);
  }

  const child = run(python, ["-c", configPath], { cwd: dir, logFd: log.fd });
  let exitCode = null;
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => {
    exitCode = code ?? signal;
    resolve();
  }));
  // Last resort for an ordinary exit of the test process; stop() is the normal path.
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);

  async function stop() {
    process.off("exit", killOnExit);
    if (exitCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    await log.close().catch(() => {});
    if (ownsDir && process.env.POTLUCK_KEEP_TMP !== "1") await rm(dir, { recursive: true, force: true });
  }

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    // Read the log before stop(), which may remove the folder.
    if (exitCode !== null) {
      const tail = await logTail(logPath);
      await stop();
      throw new Error(`synapse exited (${exitCode}) while starting:\n${tail}`);
    }
    const up = await fetch(`${baseUrl}/_matrix/client/versions`).then((r) => r.ok, () => false);
    if (up) break;
    if (Date.now() > deadline) {
      const tail = await logTail(logPath);
      await stop();
      throw new Error(`synapse did not answer within ${START_TIMEOUT_MS} ms:\n${tail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  /** Registers a user through the shared-secret admin API (no rate limit, no UIA). */
  async function registerUser(name, password, admin = false) {
    const { nonce } = await api(baseUrl, "GET", "/_synapse/admin/v1/register");
    const mac = createHmac("sha1", SHARED_SECRET)
      .update(`${nonce}\0${name}\0${password}\0${admin ? "admin" : "notadmin"}`)
      .digest("hex");
    const result = await api(baseUrl, "POST", "/_synapse/admin/v1/register", {
      body: { nonce, username: name, password, admin, mac },
    });
    return { userId: result.user_id, accessToken: result.access_token };
  }

  async function joinRoom(accessToken, roomIdOrAlias) {
    const { room_id } = await api(baseUrl, "POST",
      `/_matrix/client/v3/join/${encodeURIComponent(roomIdOrAlias)}`, { accessToken, body: {} });
    return room_id;
  }

  /**
   * Creates a private room where any member may send `org.potluck.node` state,
   * then invites and joins each member.
   *
   * @param {string} accessToken the creator's token
   * @param {object} [opts]
   * @param {{userId: string, accessToken: string}[]} [opts.members] users to invite and join
   * @param {object} [opts.body] extra /createRoom fields (name, room_version, …);
   *   its power_level_content_override is merged with ours
   * @returns {Promise<string>} the room id
   */
  async function createRoom(accessToken, { members = [], body = {} } = {}) {
    const override = body.power_level_content_override ?? {};
    const { room_id: roomId } = await api(baseUrl, "POST", "/_matrix/client/v3/createRoom", {
      accessToken,
      body: {
        preset: "private_chat",
        ...body,
        invite: [...(body.invite ?? []), ...members.map((m) => m.userId)],
        power_level_content_override: {
          ...override,
          events: { ...DEFAULT_EVENT_LEVELS, [POTLUCK_NODE_EVENT]: 0, ...override.events },
        },
      },
    });
    for (const member of members) await joinRoom(member.accessToken, roomId);
    return roomId;
  }

  return { baseUrl, dir, logPath, stop, registerUser, createRoom, joinRoom };
}
