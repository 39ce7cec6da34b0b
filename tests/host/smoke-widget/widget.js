// The smoke widget: asks for what Potluck will ask for, sends one event once
// approved, and lists what the host pushes to it. Tests drive the rest through
// `window.smoke.api` (a matrix-widget-api WidgetApi).

import { MatrixCapabilities, WidgetApi } from "./matrix-widget-api.js";

const SMOKE_EVENT = "org.potluck.smoke";
const NODE_EVENT = "org.potluck.node";

const params = new URLSearchParams(location.search);
const userId = params.get("user"); // from the $matrix_user_id template variable
const $ = (id) => document.getElementById(id);
$("user").textContent = userId;

// Only messages from the host page's origin are accepted.
const api = new WidgetApi(params.get("widgetId"), new URL(params.get("parentUrl")).origin);
api.requestCapabilityToSendEvent(SMOKE_EVENT);
api.requestCapabilityToReceiveEvent(SMOKE_EVENT);
api.requestCapabilityToSendState(NODE_EVENT);
api.requestCapabilityToReceiveState(NODE_EVENT);
api.requestCapabilities([
  MatrixCapabilities.MSC4157SendDelayedEvent,
  MatrixCapabilities.MSC4157UpdateDelayedEvent,
  MatrixCapabilities.MSC4039UploadFile,
  MatrixCapabilities.MSC4039DownloadFile,
]);

/** Everything the host pushed: {action, event}. Tests poll this. */
const received = [];
window.smoke = { api, received, approved: null, sent: null, theme: params.get("theme") };

function show(action, event) {
  received.push({ action, event });
  const item = document.createElement("li");
  item.dataset.action = action;
  item.dataset.type = event.type;
  item.dataset.sender = event.sender;
  item.textContent = `${action} ${event.type} from ${event.sender}: ${JSON.stringify(event.content)}`;
  $("received").append(item);
}

// To-widget actions we handle must be acknowledged, or the host gets an error.
api.on("action:send_event", (ev) => {
  ev.preventDefault();
  api.transport.reply(ev.detail, {});
  show("send_event", ev.detail.data);
});
api.on("action:update_state", (ev) => {
  ev.preventDefault();
  api.transport.reply(ev.detail, {});
  for (const event of ev.detail.data.state) show("update_state", event);
});
api.on("action:theme_change", (ev) => {
  ev.preventDefault();
  api.transport.reply(ev.detail, {});
  window.smoke.theme = ev.detail.data.name;
});
api.on("action:notify_capabilities", (ev) => {
  window.smoke.approved = ev.detail.data.approved;
  $("approved").replaceChildren(...ev.detail.data.approved.map((cap) => {
    const item = document.createElement("li");
    item.textContent = cap;
    return item;
  }));
});

api.on("ready", async () => {
  $("status").textContent = "ready";
  try {
    const { event_id } = await api.sendRoomEvent(SMOKE_EVENT, { body: `hello from ${userId}` });
    window.smoke.sent = event_id;
    $("sent").textContent = event_id;
  } catch (error) {
    $("status").textContent = `send failed: ${error.message}`;
    console.error("[smoke-widget] send failed", error);
  }
});

api.start();
