//! Bindings to npm `matrix-widget-api`'s `WidgetApi`, which `static/index.html`
//! loads as the global `mxwidgets` (bundled by `scripts/build.sh`). Only what
//! Potluck calls is bound.

use js_sys::{Array, Function, Promise};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = mxwidgets, js_name = WidgetApi)]
    pub type WidgetApi;

    #[wasm_bindgen(constructor, js_namespace = mxwidgets, js_class = "WidgetApi")]
    pub fn new(widget_id: &str, client_origin: &str) -> WidgetApi;

    #[wasm_bindgen(method, js_name = requestCapabilities)]
    pub fn request_capabilities(this: &WidgetApi, capabilities: &Array);

    #[wasm_bindgen(method, js_name = hasCapability)]
    pub fn has_capability(this: &WidgetApi, capability: &str) -> bool;

    #[wasm_bindgen(method)]
    pub fn start(this: &WidgetApi);

    /// EventEmitter: `ready`, `action:send_event`, `action:update_state`, `action:theme_change`.
    #[wasm_bindgen(method)]
    pub fn on(this: &WidgetApi, event: &str, listener: &Function);

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

    #[wasm_bindgen(method, js_name = readRoomEvents)]
    pub fn read_room_events(this: &WidgetApi, event_type: &str, limit: u32) -> Promise;

    #[wasm_bindgen(method, js_name = readStateEvents)]
    pub fn read_state_events(this: &WidgetApi, event_type: &str) -> Promise;

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

    #[wasm_bindgen(method, getter)]
    pub fn transport(this: &WidgetApi) -> Transport;

    pub type Transport;

    /// Acknowledges a request from the host; without it the host logs an error.
    #[wasm_bindgen(method)]
    pub fn reply(this: &Transport, request: &JsValue, response: &JsValue);
}
