// Potluck's test host: embeds one widget in one room the way Element Web does,
// over matrix-js-sdk against a real homeserver.
//
// Mirrors Element (apps/web/src/stores/widgets/{WidgetMessaging,ElementWidgetDriver}.ts,
// components/views/elements/AppTile.tsx): the iframe's sandbox and allow lists,
// the templated URL plus widgetId/parentUrl, the capability prompt, the driver's
// reads (the loaded live timeline only, never back-paginated), and live events
// fed through a "read up to" marker. It must not be kinder than Element: a widget
// that works here but needs more than Element gives would fail for real users.
//
// Query parameters: hs, user, password, room, widget (URL, may hold Element's
// $template variables), widgetId (default "potluck"), theme (light|dark),
// lang (default "en"), autoApprove (1 = approve every capability without asking).
//
// Beside the widget, timeline.js shows the room to the friend (messages, thread
// replies, Reply, Forward, a composer), as Element's timeline does; it only
// listens to the client and sends as the user, never through the widget's driver.

import {
  ClientEvent, Direction, MatrixError, PendingEventOrdering, RoomStateEvent, SyncState,
  UpdateDelayedEventAction, createClient,
} from "matrix-js-sdk";
import { ClientWidgetApi, MatrixCapabilities, Widget, WidgetDriver } from "matrix-widget-api";

import { showTimeline } from "./timeline.js";

const params = new URLSearchParams(location.search);
const config = {
  hs: params.get("hs"),
  user: params.get("user"),
  password: params.get("password"),
  roomId: params.get("room"),
  widgetUrl: params.get("widget"),
  widgetId: params.get("widgetId") || "potluck",
  theme: params.get("theme") === "dark" ? "dark" : "light",
  lang: params.get("lang") || "en",
  autoApprove: ["1", "true"].includes(params.get("autoApprove")),
};

// Element's own client id, sent as $org.matrix.msc2873.client_id: widgets see what Element sends.
const ELEMENT_CLIENT_ID = "io.element.web";
// Element's MatrixClientPeg start options; initialSyncLimit decides how much
// history the live timeline holds, and so what read_events can ever return.
const START_OPTS = {
  initialSyncLimit: 20,
  lazyLoadMembers: true,
  threadSupport: true,
  pendingEventOrdering: PendingEventOrdering.Detached,
};
// Element checks at most this many recent events when deciding whether a live
// event is new to the widget (WidgetMessaging.advanceReadUpToMarker).
const READ_UP_TO_WINDOW = 100;

const $ = (id) => document.getElementById(id);

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
  (isError ? console.error : console.log)(`[host] ${text}`);
}

/** Element's WidgetCapabilitiesPromptDialog: resolves with the ticked capabilities, or none on Deny. */
function askUserForCapabilities(capabilities) {
  const dialog = $("capability-dialog");
  const list = $("capability-list");
  list.replaceChildren(...[...capabilities].map((cap) => {
    const item = document.createElement("li");
    item.innerHTML = `<label><input type="checkbox" checked> <code></code></label>`;
    item.querySelector("input").value = cap;
    item.querySelector("code").textContent = cap;
    return item;
  }));
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const ticked = [...list.querySelectorAll("input:checked")].map((box) => box.value);
      resolve(new Set(dialog.returnValue === "approve" ? ticked : []));
    }, { once: true });
    dialog.showModal();
  });
}

/** The driver: carries out what ClientWidgetApi has already checked the widget may do. */
class TestHostDriver extends WidgetDriver {
  constructor(client, roomId) {
    super();
    this.client = client;
    this.roomId = roomId;
  }

  async validateCapabilities(requested) {
    // Element grants these two without asking (ElementWidgetDriver's constructor).
    const autoAllowed = new Set([MatrixCapabilities.Screenshots, "io.element.requires_client"]);
    const toAsk = new Set([...requested].filter((cap) => !autoAllowed.has(cap)));
    const approved = config.autoApprove || toAsk.size === 0 ? toAsk : await askUserForCapabilities(toAsk);
    const allowed = new Set([...requested].filter((cap) => autoAllowed.has(cap) || approved.has(cap)));
    setStatus(`capabilities approved: ${allowed.size} of ${requested.size}`);
    return allowed;
  }

  // A room widget is locked to its room; a falsy roomId means that room.
  target(roomId) {
    return roomId || this.roomId;
  }

  async sendEvent(eventType, content, stateKey = null, roomId = null) {
    roomId = this.target(roomId);
    let result;
    if (stateKey !== null) {
      result = await this.client.sendStateEvent(roomId, eventType, content, stateKey);
    } else if (eventType === "m.room.redaction") {
      result = await this.client.redactEvent(roomId, content.redacts);
    } else {
      result = await this.client.sendEvent(roomId, eventType, content);
    }
    return { roomId, eventId: result.event_id };
  }

  // matrix-widget-api 1.19 passes no parent_delay_id to the driver (it warns and drops it).
  async sendDelayedEvent(delay, eventType, content, stateKey = null, roomId = null) {
    roomId = this.target(roomId);
    const result = stateKey !== null
      ? await this.client._unstable_sendDelayedStateEvent(roomId, { delay }, eventType, content, stateKey)
      : await this.client._unstable_sendDelayedEvent(roomId, { delay }, null, eventType, content);
    return { roomId, delayId: result.delay_id };
  }

  // js-sdk 37.5 has one update call taking the action (POST .../delayed_events/{id} {action}).
  async cancelScheduledDelayedEvent(delayId) {
    await this.client._unstable_updateDelayedEvent(delayId, UpdateDelayedEventAction.Cancel);
  }

  async restartScheduledDelayedEvent(delayId) {
    await this.client._unstable_updateDelayedEvent(delayId, UpdateDelayedEventAction.Restart);
  }

  async sendScheduledDelayedEvent(delayId) {
    await this.client._unstable_updateDelayedEvent(delayId, UpdateDelayedEventAction.Send);
  }

  // Only what the client has loaded: newest first, never paginating back (as Element).
  async readRoomTimeline(roomId, eventType, msgtype, stateKey, limit, since) {
    limit = limit > 0 ? limit : Number.MAX_SAFE_INTEGER;
    const room = this.client.getRoom(roomId);
    if (!room) return [];
    const results = [];
    const events = room.getLiveTimeline().getEvents();
    for (let i = events.length - 1; i >= 0 && results.length < limit; i--) {
      const ev = events[i];
      if (ev.getId() === since) break;
      if (ev.getType() !== eventType) continue;
      if (eventType === "m.room.message" && msgtype && msgtype !== ev.getContent().msgtype) continue;
      if (stateKey !== undefined && ev.getStateKey() !== stateKey) continue;
      results.push(ev.getEffectiveEvent());
    }
    return results;
  }

  async readRoomState(roomId, eventType, stateKey) {
    const state = this.client.getRoom(roomId)?.getLiveTimeline().getState(Direction.Forward);
    if (!state) return [];
    if (stateKey === undefined) return state.getStateEvents(eventType).map((ev) => ev.getEffectiveEvent());
    const ev = state.getStateEvents(eventType, stateKey);
    return ev ? [ev.getEffectiveEvent()] : [];
  }

  // The server's /relations endpoint, so relations reach past the loaded timeline.
  async readEventRelations(eventId, roomId, relationType, eventType, from, to, limit, direction) {
    const { events, nextBatch, prevBatch } = await this.client.relations(
      this.target(roomId), eventId, relationType ?? null, eventType ?? null,
      { from, to, limit, dir: direction },
    );
    return {
      chunk: events.map((ev) => ev.getEffectiveEvent()),
      nextBatch: nextBatch ?? undefined,
      prevBatch: prevBatch ?? undefined,
    };
  }

  // Element's call: the legacy /_matrix/media/v3/config (Synapse 1.163 answers it and /v1 alike).
  async getMediaConfig() {
    return this.client.getMediaConfig();
  }

  async uploadFile(file) {
    const { content_uri } = await this.client.uploadContent(file);
    return { contentUri: content_uri };
  }

  // Authenticated media (MSC3916): the URL alone gives 401; the token goes in a header.
  async downloadFile(contentUri) {
    const url = this.client.mxcUrlToHttp(contentUri, undefined, undefined, undefined, false, true, true);
    if (!url) throw new Error(`not an mxc URI: ${contentUri}`);
    const response = await fetch(url, { headers: { Authorization: `Bearer ${this.client.getAccessToken()}` } });
    if (!response.ok) throw new Error(`download of ${contentUri} failed: ${response.status}`);
    return { file: await response.blob() };
  }

  getKnownRooms() {
    return this.client.getVisibleRooms().map((room) => room.roomId);
  }

  // Element encrypts to-device messages with Olm when the widget asks; this
  // host has no crypto (its test rooms are unencrypted), so it sends them in
  // the clear, to every device the map names ("*": all of a user's devices).
  async sendToDevice(eventType, encrypted, contentMap) {
    const map = new Map(Object.entries(contentMap).map(([user, devices]) => [user, new Map(Object.entries(devices))]));
    await this.client.sendToDevice(eventType, map);
  }

  // Lets the widget see the homeserver's errcode, as Element does.
  processError(error) {
    return error instanceof MatrixError ? { matrix_api_error: error.asWidgetApiErrorData() } : undefined;
  }
}

/**
 * Feeds new events to the widget as Element's WidgetMessaging does: every event
 * the client sees, but only once it is past the newest event that existed when
 * the widget started (so no history, no backfill). ClientWidgetApi then drops
 * what the widget has no capability for, or what is from another room.
 */
function feedLiveEvents(client, widgetApi) {
  const readUpTo = new Map(); // room id → id of the newest event already fed
  for (const room of client.getRooms()) {
    const events = room.getLiveTimeline().getEvents();
    if (events.length) readUpTo.set(room.roomId, events.at(-1).getId());
  }

  // Whether `ev` lies after the room's marker; moves the marker if so.
  const advance = (ev) => {
    const roomId = ev.getRoomId();
    const room = client.getRoom(roomId);
    if (!ev.getId() || !room) return false;
    const marker = readUpTo.get(roomId);
    if (marker === ev.getId()) return false;
    if (marker) {
      const recent = room.getLiveTimeline().getEvents().slice(-READ_UP_TO_WINDOW).reverse();
      const position = recent.findIndex((e) => e.getId() === ev.getId() || e.getId() === marker);
      // Not found, or the marker comes first walking back from the newest: already seen.
      if (position < 0 || recent[position].getId() === marker) return false;
    }
    readUpTo.set(roomId, ev.getId());
    return true;
  };
  // With threads on, a relation to an event the client has not loaded stays out
  // of every timeline; Element feeds it anyway (not replies, which always fit).
  const relatesToUnknown = (ev) =>
    Boolean(ev.relationEventId && !ev.replyEventId && !client.getRoom(ev.getRoomId())?.findEventById(ev.relationEventId));
  const fromInvite = (ev) => client.getRoom(ev.getRoomId())?.getMyMembership() === "invite";

  client.on(ClientEvent.Event, (ev) => {
    if (relatesToUnknown(ev) || fromInvite(ev) || advance(ev)) {
      widgetApi.feedEvent(ev.getEffectiveEvent()).catch((e) => console.error("[host] feedEvent failed", e));
    }
  });
  // To-device messages reach the widget while it runs, as Element feeds them.
  client.on(ClientEvent.ToDeviceEvent, (ev) => {
    widgetApi.feedToDevice(ev.getEffectiveEvent(), ev.isEncrypted()).catch((e) => console.error("[host] feedToDevice failed", e));
  });
  client.on(RoomStateEvent.Events, (ev) => {
    widgetApi.feedStateUpdate(ev.getEffectiveEvent()).catch((e) => console.error("[host] feedStateUpdate failed", e));
  });
}

/** The iframe URL as Element's WidgetMessaging.runUrlTemplate builds it. */
function embedUrl(widget, client, roomId) {
  const templated = widget.getCompleteUrl({
    widgetRoomId: roomId,
    currentUserId: client.getUserId(),
    userDisplayName: client.getUser(client.getUserId())?.displayName ?? undefined,
    clientId: ELEMENT_CLIENT_ID,
    clientTheme: config.theme,
    clientLanguage: config.lang,
    deviceId: client.getDeviceId() ?? undefined,
    baseUrl: client.baseUrl,
  });
  const url = new URL(templated);
  url.searchParams.set("widgetId", widget.id);
  url.searchParams.set("parentUrl", location.href.split("#", 2)[0]);
  // URL parsers encode '$'; Element puts it back so later templating still matches.
  return url.toString().replace(/%24/g, "$");
}

async function login() {
  const response = await createClient({ baseUrl: config.hs }).loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: config.user },
    password: config.password,
    initial_device_display_name: "Potluck test host",
  });
  return createClient({
    baseUrl: config.hs,
    accessToken: response.access_token,
    userId: response.user_id,
    deviceId: response.device_id,
  });
}

async function startSync(client) {
  const prepared = new Promise((resolve, reject) => {
    client.on(ClientEvent.Sync, function onSync(state, _prev, data) {
      if (state === SyncState.Prepared) {
        client.off(ClientEvent.Sync, onSync);
        resolve();
      } else if (state === SyncState.Error) {
        reject(data?.error ?? new Error("sync failed"));
      }
    });
  });
  await client.startClient(START_OPTS);
  await prepared;
}

async function main() {
  for (const key of ["hs", "user", "password", "roomId", "widgetUrl"]) {
    if (!config[key]) throw new Error(`missing query parameter for ${key}`);
  }
  document.body.classList.toggle("dark", config.theme === "dark");

  setStatus("logging in");
  const client = await login();
  $("user").textContent = client.getUserId();

  setStatus("syncing");
  await startSync(client);
  const room = client.getRoom(config.roomId);
  if (room?.getMyMembership() !== "join") {
    throw new Error(`${client.getUserId()} has not joined ${config.roomId}`);
  }

  const widget = new Widget({
    id: config.widgetId,
    creatorUserId: client.getUserId(),
    type: "m.custom",
    url: config.widgetUrl,
    name: "Potluck",
    data: {},
    waitForIframeLoad: true,
  });
  const iframe = document.createElement("iframe");
  iframe.id = "widget-frame";
  iframe.title = widget.name;
  // AppTile's exact lists; no cross-origin-isolated, so no SharedArrayBuffer.
  iframe.setAttribute("sandbox",
    "allow-forms allow-popups allow-popups-to-escape-sandbox allow-same-origin allow-scripts allow-presentation allow-downloads");
  iframe.setAttribute("allow",
    "microphone; camera; encrypted-media; autoplay; display-capture; clipboard-write; clipboard-read;");
  iframe.allowFullscreen = true;
  iframe.src = embedUrl(widget, client, config.roomId);
  $("widget-container").append(iframe);

  // ClientWidgetApi needs iframe.contentWindow, so the iframe must be in the page first.
  const widgetApi = new ClientWidgetApi(widget, iframe, new TestHostDriver(client, config.roomId));
  widgetApi.setViewedRoomId(config.roomId); // a room widget is locked to its room
  widgetApi.once("ready", () => {
    setStatus("widget ready");
    widgetApi.updateTheme({ name: config.theme }).catch((e) => console.error("[host] updateTheme failed", e));
  });
  feedLiveEvents(client, widgetApi);
  // The friend's own view of the room beside the widget; it changes nothing the widget sees.
  showTimeline(client, config.roomId);

  window.potluckHost = { userId: client.getUserId(), roomId: config.roomId, client, widgetApi };
  setStatus("widget loading");
}

main().catch((error) => setStatus(`error: ${error?.message ?? error}`, true));
