// The host page's room panel: what a friend sees of the chat beside the widget,
// as in Element. The room's messages with their thread replies under them,
// updated live; Reply and Forward on each message; a composer that sends plain
// text, as a reply when one is picked. So a friend can read the transcripts
// Potluck posts in a voice message's thread, reply `!transcribe` to a voice
// message, or forward an older one into the room.
//
// This is the user's side only: what the widget may read and how events reach
// it stay in host.js (TestHostDriver, feedLiveEvents).

import { ClientEvent, RoomEvent, ThreadEvent } from "matrix-js-sdk";

const $ = (id) => document.getElementById(id);

const MESSAGE = "m.room.message";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("data-") || key === "type" || key === "title") node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

/** Seconds as Element shows a voice message's length: m:ss. */
function duration(ms) {
  const seconds = Math.ceil((Number(ms) || 0) / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

const relation = (ev) => ev.getWireContent()["m.relates_to"] ?? {};
const threadRootOf = (ev) => (relation(ev).rel_type === "m.thread" ? relation(ev).event_id : undefined);
const inReplyTo = (ev) => relation(ev)["m.in_reply_to"]?.event_id;

/** One line for a message, as Element's timeline and reply previews summarise it. */
function summary(ev) {
  if (ev.isRedacted()) return "(message deleted)";
  const content = ev.getContent();
  const body = String(content.body ?? "");
  switch (content.msgtype) {
    case "m.audio": {
      const ms = content.info?.duration ?? content["org.matrix.msc1767.audio"]?.duration;
      const voice = "org.matrix.msc3245.voice" in content;
      return `${voice ? "🎤 Voice message" : `🔊 ${body}`}${ms ? ` ${duration(ms)}` : ""}`;
    }
    case "m.image": return `🖼 ${body}`;
    case "m.video": return `🎞 ${body}`;
    case "m.file": return `📎 ${body}`;
    case "m.emote": return `* ${body}`;
    default:
      // A reply's fallback quote ("> <@user> …" lines) is not part of what was said.
      return inReplyTo(ev) ? body.replace(/^(>.*\n)+\n?/, "") : body;
  }
}

/** Shows the room's timeline in `#timeline` and wires the composer; returns nothing. */
export function showTimeline(client, roomId) {
  const room = client.getRoom(roomId);
  const list = $("timeline");
  const replies = new Map(); // thread root id → Map(reply id → MatrixEvent)
  const fetchedThreads = new Set(); // roots whose replies were read from /relations
  let replyingTo = null; // the MatrixEvent a reply goes to
  $("room-name").textContent = room.name;

  const name = (ev) => ev.sender?.name || room.getMember(ev.getSender())?.name || ev.getSender();

  function addReply(ev) {
    const root = threadRootOf(ev);
    if (!root || ev.getRoomId() !== roomId || ev.getType() !== MESSAGE) return;
    if (!replies.has(root)) replies.set(root, new Map());
    replies.get(root).set(ev.getId(), ev);
  }

  /** Thread replies older than the loaded timeline come from the server's /relations. */
  function fetchThread(rootId) {
    if (fetchedThreads.has(rootId)) return;
    fetchedThreads.add(rootId);
    client.relations(roomId, rootId, "m.thread", null, { limit: 50 })
      .then(({ events }) => { events.forEach(addReply); schedule(); })
      .catch((e) => console.error(`[host] reading the thread of ${rootId} failed`, e));
  }

  function eventById(id) {
    return room.findEventById(id)
      ?? [...replies.values()].map((thread) => thread.get(id)).find(Boolean);
  }

  function pickReply(ev) {
    replyingTo = ev;
    $("reply-preview-text").textContent = `Replying to ${name(ev)}: ${summary(ev)}`;
    $("reply-preview").hidden = false;
    $("composer-input").focus();
  }

  function cancelReply() {
    replyingTo = null;
    $("reply-preview").hidden = true;
  }

  async function send(content) {
    $("composer-error").hidden = true;
    try {
      await client.sendEvent(roomId, MESSAGE, content);
    } catch (e) {
      $("composer-error").textContent = `Not sent: ${e?.message ?? e}`;
      $("composer-error").hidden = false;
      throw e;
    }
  }

  /** Element's Forward: the same content again as a new message, without its relations. */
  function forward(ev) {
    const content = structuredClone(ev.getContent());
    delete content["m.relates_to"];
    send(content).catch((e) => console.error("[host] forward failed", e));
  }

  function messageElement(ev, { inThread = false } = {}) {
    const content = ev.getContent();
    const item = el("li", {
      className: `message ${content.msgtype === "m.notice" ? "notice" : ""}`,
      "data-testid": inThread ? "thread-reply" : "message",
      "data-event-id": ev.getId(),
      "data-sender": ev.getSender(),
      "data-msgtype": content.msgtype ?? "",
    });
    if (ev.status) item.dataset.pending = ev.status;
    const replyTo = inReplyTo(ev);
    if (replyTo && !(inThread && relation(ev).is_falling_back)) {
      item.dataset.inReplyTo = replyTo;
      const target = eventById(replyTo);
      item.append(el("blockquote", { className: "quote", "data-testid": "reply-quote" },
        target ? `↩ ${name(target)}: ${summary(target)}` : "↩ in reply to an earlier message"));
    }
    const time = ev.getDate()?.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }) ?? "";
    item.append(
      el("div", { className: "meta" },
        el("span", { className: "sender", title: ev.getSender() }, name(ev)), " ",
        el("time", {}, time)),
      el("div", { className: "body", "data-testid": "message-body" }, summary(ev)),
    );
    if (!ev.status && !ev.isRedacted()) {
      const actions = el("div", { className: "actions" },
        el("button", { type: "button", "data-testid": "reply-button", onclick: () => pickReply(ev) }, "Reply"));
      if (content.msgtype === "m.audio") {
        actions.append(el("button", { type: "button", "data-testid": "forward-button", onclick: () => forward(ev) }, "Forward"));
      }
      item.append(actions);
    }
    if (!inThread) item.append(el("ol", { className: "thread", "data-testid": "thread" }));
    return item;
  }

  /** Puts `items`' elements in `container` in order, reusing those already there. */
  function syncChildren(container, items, keyOf, create) {
    const existing = new Map([...container.children].map((child) => [child.dataset.key, child]));
    let previous = null;
    for (const item of items) {
      const key = keyOf(item);
      let child = existing.get(key);
      if (!child) {
        child = create(item);
        child.dataset.key = key;
      }
      existing.delete(key);
      const expected = previous ? previous.nextElementSibling : container.firstElementChild;
      if (expected !== child) container.insertBefore(child, expected);
      previous = child;
    }
    existing.forEach((child) => child.remove());
  }

  const keyOf = (ev) => `${ev.getId()}|${ev.status ?? ""}|${ev.isRedacted()}`;
  const shown = (ev) => ev.getType() === MESSAGE && !ev.getType().startsWith("org.potluck.") && !threadRootOf(ev);

  function render() {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const events = [...room.getLiveTimeline().getEvents(), ...room.getPendingEvents()].filter(shown);
    syncChildren(list, events, keyOf, (ev) => messageElement(ev));
    for (const ev of events) {
      if (ev.getServerAggregatedRelation("m.thread") || room.getThread(ev.getId())) fetchThread(ev.getId());
      const thread = [...(replies.get(ev.getId())?.values() ?? [])].sort((a, b) => a.getTs() - b.getTs());
      const container = list.querySelector(`:scope > [data-key="${CSS.escape(keyOf(ev))}"] > .thread`);
      syncChildren(container, thread, keyOf, (reply) => messageElement(reply, { inThread: true }));
    }
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  let scheduled = false;
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => { scheduled = false; render(); }, 0);
  }

  for (const thread of room.getThreads()) thread.events.forEach(addReply);
  client.on(ClientEvent.Event, (ev) => {
    if (ev.getRoomId() !== roomId) return;
    addReply(ev);
    schedule();
  });
  room.on(RoomEvent.Timeline, (ev) => { addReply(ev); schedule(); });
  room.on(RoomEvent.LocalEchoUpdated, schedule);
  room.on(RoomEvent.Redaction, schedule);
  room.on(ThreadEvent.New, schedule);
  room.on(ThreadEvent.Update, schedule);

  $("reply-cancel").addEventListener("click", cancelReply);
  $("composer").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("composer-input");
    const body = input.value.trim();
    if (!body) return;
    const content = { msgtype: "m.text", body, "m.mentions": {} };
    if (replyingTo) {
      const root = threadRootOf(replyingTo);
      const replyRelation = { "m.in_reply_to": { event_id: replyingTo.getId() } };
      // A reply inside a thread stays in it, as Element sends it.
      content["m.relates_to"] = root ? { rel_type: "m.thread", event_id: root, is_falling_back: false, ...replyRelation } : replyRelation;
      if (replyingTo.getSender() !== client.getUserId()) content["m.mentions"] = { user_ids: [replyingTo.getSender()] };
    }
    $("composer-send").disabled = true;
    try {
      await send(content);
      input.value = "";
      cancelReply();
    } catch {
      // Shown under the composer; the text stays to send again.
    } finally {
      $("composer-send").disabled = false;
    }
  });
  $("room-panel").hidden = false;
  render();
}
