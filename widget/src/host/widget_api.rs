//! Bindings to npm `matrix-widget-api`'s `WidgetApi` (bundled by
//! `scripts/build.sh` as the global `mxwidgets`), as started by
//! `static/boot.js` before the wasm loaded. Only what Potluck calls is bound.

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = mxwidgets, js_name = WidgetApi)]
    pub type WidgetApi;

    /// The API `boot.js` started, or null when the page is not in a host.
    #[wasm_bindgen(js_namespace = potluckBoot, js_name = widgetApi)]
    pub fn boot_widget_api() -> Option<WidgetApi>;

    /// Resolves `true` once the host has answered the capability request.
    #[wasm_bindgen(js_namespace = potluckBoot, js_name = whenReady)]
    pub fn boot_when_ready() -> Promise;

    /// Hands every push from the host (`send_event`, `update_state`,
    /// `theme_change` data), the held ones first, to `handler`.
    #[wasm_bindgen(js_namespace = potluckBoot, js_name = onPush)]
    pub fn boot_on_push(handler: &Function);

    #[wasm_bindgen(method, js_name = hasCapability)]
    pub fn has_capability(this: &WidgetApi, capability: &str) -> bool;

    #[wasm_bindgen(method, js_name = sendRoomEvent)]
    pub fn send_room_event(this: &WidgetApi, event_type: &str, content: &JsValue) -> Promise;

    #[wasm_bindgen(method, js_name = sendStateEvent)]
    pub fn send_state_event(
        this: &WidgetApi,
        event_type: &str,
        state_key: &str,
        content: &JsValue,
        room_id: &JsValue,
        delay_ms: &JsValue,
    ) -> Promise;

    #[wasm_bindgen(method, js_name = restartScheduledDelayedEvent)]
    pub fn restart_delayed_event(this: &WidgetApi, delay_id: &str) -> Promise;

    #[wasm_bindgen(method, js_name = sendScheduledDelayedEvent)]
    pub fn send_delayed_event_now(this: &WidgetApi, delay_id: &str) -> Promise;

    /// The newest `limit` events of a type (and, for messages, a msgtype:
    /// a capability granted per msgtype allows only reads that name it).
    #[wasm_bindgen(method, js_name = readRoomEvents)]
    pub fn read_room_events(
        this: &WidgetApi,
        event_type: &str,
        limit: u32,
        msgtype: &JsValue,
    ) -> Promise;

    /// State events of a type; with `state_key`, only that one (a capability
    /// granted for one state key allows only reads that name it).
    #[wasm_bindgen(method, js_name = readStateEvents)]
    pub fn read_state_events(
        this: &WidgetApi,
        event_type: &str,
        limit: &JsValue,
        state_key: &JsValue,
    ) -> Promise;

    #[wasm_bindgen(method, js_name = readEventRelations)]
    pub fn read_event_relations(
        this: &WidgetApi,
        event_id: &str,
        room_id: &JsValue,
        relation_type: &str,
        event_type: &JsValue,
        limit: u32,
        from: &JsValue,
    ) -> Promise;

    /// MSC3819: an event to users' devices, `{user: {device or "*": content}}`;
    /// `encrypted` asks the host to encrypt it (Element uses Olm).
    #[wasm_bindgen(method, js_name = sendToDevice)]
    pub fn send_to_device(
        this: &WidgetApi,
        event_type: &str,
        encrypted: bool,
        content_map: &JsValue,
    ) -> Promise;

    /// MSC4039: the media at an `mxc://` URI, fetched by the host (which holds
    /// the access token). Resolves `{ file: Blob }`.
    #[wasm_bindgen(method, js_name = downloadFile)]
    pub fn download_file(this: &WidgetApi, content_uri: &str) -> Promise;

    /// MSC4039: uploads a file (a `Blob`) through the host. Resolves
    /// `{ content_uri }`.
    #[wasm_bindgen(method, js_name = uploadFile)]
    pub fn upload_file(this: &WidgetApi, file: &JsValue) -> Promise;
}
