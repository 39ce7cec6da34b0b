// Starts the widget API before the wasm app has loaded.
//
// A host asks the widget for its capabilities as soon as the iframe's `load`
// event fires (Element's default, and all that `/addwidget` can set up), and
// the wasm is still downloading then. So this classic script, which runs while
// the page parses, creates matrix-widget-api's WidgetApi, requests the
// capabilities (capabilities.js, generated from manifest/src/capabilities.rs)
// and holds on to what the host pushes until the Rust side takes over through
// `potluckBoot`. Outside a host (no widgetId/parentUrl) it does nothing.
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const widgetId = params.get("widgetId");
  const parentUrl = params.get("parentUrl");
  let api = null;
  let ready = Promise.resolve(false);
  let early = [];
  let handler = null;

  if (widgetId && parentUrl && window.parent !== window) {
    try {
      api = new mxwidgets.WidgetApi(widgetId, new URL(parentUrl).origin);
      api.requestCapabilities(self.POTLUCK_CAPABILITIES);
      ready = new Promise((resolve) => api.once("ready", () => resolve(true)));
      // Every push must be acknowledged, or the host logs an error.
      const accept = (ev) => {
        ev.preventDefault();
        api.transport.reply(ev.detail, {});
        if (handler) handler(ev.detail.data);
        else early.push(ev.detail.data);
      };
      api.on("action:send_event", accept);
      api.on("action:update_state", accept);
      api.on("action:theme_change", accept);
      // To-device messages (private results) arrive wrapped, to tell them from room events.
      api.on("action:send_to_device", (ev) => {
        ev.preventDefault();
        api.transport.reply(ev.detail, {});
        const message = { to_device: ev.detail.data };
        if (handler) handler(message);
        else early.push(message);
      });
      api.start();
    } catch (error) {
      console.error("Potluck could not start the widget API:", error);
      api = null;
    }
  }

  self.potluckBoot = {
    /** The started WidgetApi, or null outside a host. */
    widgetApi: () => api,
    /** Resolves true once the host approved capabilities. */
    whenReady: () => ready,
    /** Hands every push so far, and from now on, to `fn`. */
    onPush: (fn) => {
      handler = fn;
      const held = early;
      early = [];
      held.forEach(fn);
    },
  };
})();
