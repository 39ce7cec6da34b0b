//! The room, as Potluck uses it: typed, async calls over the widget API, with
//! errors a friend can read. Content crosses the boundary as JSON text.

use super::widget_api::WidgetApi;
use js_sys::{Array, Reflect, JSON};
use manifest::events::Outgoing;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Relations read back per request; the host pages through the rest.
const RELATIONS_PAGE: u32 = 100;
/// Events of each kind read from the host's timeline when the widget opens.
const EVENTS_ON_OPEN: u32 = 200;

pub struct Room {
    api: WidgetApi,
}

fn to_js(value: &Value) -> JsValue {
    JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

pub fn to_json(value: &JsValue) -> Value {
    JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

/// The message of a rejected widget-API promise.
pub fn describe_error(error: &JsValue) -> String {
    if let Some(message) = Reflect::get(error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
    {
        return message;
    }
    error
        .as_string()
        .unwrap_or_else(|| "the host gave no reason".into())
}

/// Awaits a promise; a rejection becomes its message.
pub(crate) async fn call(promise: js_sys::Promise) -> Result<JsValue, String> {
    JsFuture::from(promise)
        .await
        .map_err(|e| describe_error(&e))
}

/// Why a send failed, as far as the widget API tells (Element and the test
/// host pass the homeserver's answer along as `matrix_api_error`).
#[derive(Debug, Clone)]
pub struct SendError {
    pub message: String,
    /// The homeserver said when to try again (`M_LIMIT_EXCEEDED`).
    pub retry_after_ms: Option<u64>,
    /// Sending again cannot help (forbidden, too large, malformed).
    pub permanent: bool,
}

fn send_error(error: &JsValue) -> SendError {
    let details = Reflect::get(error, &"data".into())
        .map(|d| to_json(&d))
        .unwrap_or(Value::Null);
    let api = &details["matrix_api_error"];
    SendError {
        message: describe_error(error),
        retry_after_ms: api["response"]["retry_after_ms"].as_u64(),
        permanent: matches!(api["http_status"].as_u64(), Some(400 | 403 | 413)),
    }
}

impl Room {
    pub fn new(api: WidgetApi) -> Self {
        Self { api }
    }
    pub fn api(&self) -> &WidgetApi {
        &self.api
    }

    /// Sends `out`; the host's answer (an event id) means it is in the room.
    pub async fn send(&self, out: &Outgoing) -> Result<(), SendError> {
        let content = to_js(&out.content);
        let promise = match &out.state_key {
            Some(key) => self.api.send_state_event(
                out.event_type,
                key,
                &content,
                &JsValue::UNDEFINED,
                &JsValue::UNDEFINED,
            ),
            None => self.api.send_room_event(out.event_type, &content),
        };
        JsFuture::from(promise)
            .await
            .map(|_| ())
            .map_err(|e| send_error(&e))
    }

    /// Schedules a state event the homeserver sends after `delay_ms` unless restarted.
    pub async fn send_delayed_state(
        &self,
        out: &Outgoing,
        delay_ms: u64,
    ) -> Result<String, String> {
        let key = out.state_key.as_deref().unwrap_or_default();
        let promise = self.api.send_state_event(
            out.event_type,
            key,
            &to_js(&out.content),
            &JsValue::UNDEFINED,
            &JsValue::from_f64(delay_ms as f64),
        );
        let response = call(promise).await?;
        Reflect::get(&response, &"delay_id".into())
            .ok()
            .and_then(|id| id.as_string())
            .ok_or_else(|| "the host did not schedule the delayed event (no delay_id)".into())
    }

    pub async fn restart_delayed(&self, delay_id: &str) -> Result<(), String> {
        call(self.api.restart_delayed_event(delay_id))
            .await
            .map(|_| ())
    }

    pub async fn send_delayed_now(&self, delay_id: &str) -> Result<(), String> {
        call(self.api.send_delayed_event_now(delay_id))
            .await
            .map(|_| ())
    }

    /// The room's current state events of `event_type`: every state key, or
    /// only `state_key` when given (what a capability for one key allows).
    pub async fn read_state(
        &self,
        event_type: &str,
        state_key: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let key = state_key.map_or(JsValue::UNDEFINED, JsValue::from_str);
        let read = self
            .api
            .read_state_events(event_type, &JsValue::UNDEFINED, &key);
        Ok(array_of(&call(read).await?))
    }

    /// The newest events of `event_type` the host has loaded; for
    /// `m.room.message`, those of one `msgtype` (capabilities are per msgtype).
    pub async fn read_timeline(
        &self,
        event_type: &str,
        msgtype: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let msgtype = msgtype.map_or(JsValue::UNDEFINED, JsValue::from_str);
        let read = self
            .api
            .read_room_events(event_type, EVENTS_ON_OPEN, &msgtype);
        Ok(array_of(&call(read).await?))
    }

    /// Sends `content` to every device of `user`, encrypted where the host can.
    pub async fn send_to_device(
        &self,
        user: &str,
        event_type: &str,
        content: &Value,
    ) -> Result<(), String> {
        let map = serde_json::json!({ user: { "*": content } });
        call(self.api.send_to_device(event_type, true, &to_js(&map)))
            .await
            .map(|_| ())
    }

    /// Uploads `file` to the media repository through the host; its `mxc://` URI.
    pub async fn upload(&self, file: &web_sys::Blob) -> Result<String, String> {
        let response = call(self.api.upload_file(file)).await?;
        Reflect::get(&response, &"content_uri".into())
            .ok()
            .and_then(|uri| uri.as_string())
            .ok_or_else(|| "the host returned no content_uri for the upload".into())
    }

    /// The bytes of the media at `mxc`, downloaded by the host.
    pub async fn download(&self, mxc: &str) -> Result<Vec<u8>, String> {
        let response = call(self.api.download_file(mxc)).await?;
        let file = Reflect::get(&response, &"file".into()).unwrap_or(JsValue::UNDEFINED);
        // Element and the test host hand over a Blob; an ArrayBuffer works too.
        let buffer = match file.dyn_ref::<web_sys::Blob>() {
            Some(blob) => JsFuture::from(blob.array_buffer())
                .await
                .map_err(|e| describe_error(&e))?,
            None => file,
        };
        if !buffer.is_instance_of::<js_sys::ArrayBuffer>() {
            return Err(format!("the host gave no file for {mxc}"));
        }
        Ok(js_sys::Uint8Array::new(&buffer).to_vec())
    }

    /// Every event that references `event_id`, following the host's pages.
    pub async fn read_references(&self, event_id: &str) -> Result<Vec<Value>, String> {
        self.read_relations(event_id, "m.reference").await
    }

    /// Every reply in `root`'s thread the widget may read.
    pub async fn read_thread(&self, root: &str) -> Result<Vec<Value>, String> {
        self.read_relations(root, "m.thread").await
    }

    /// Every event related to `event_id` by `rel_type`, following the host's pages.
    async fn read_relations(&self, event_id: &str, rel_type: &str) -> Result<Vec<Value>, String> {
        let mut events = Vec::new();
        let mut from = JsValue::UNDEFINED;
        loop {
            let page = call(self.api.read_event_relations(
                event_id,
                &JsValue::UNDEFINED,
                rel_type,
                &JsValue::UNDEFINED,
                RELATIONS_PAGE,
                &from,
            ))
            .await?;
            let chunk = Reflect::get(&page, &"chunk".into()).unwrap_or(JsValue::UNDEFINED);
            events.extend(array_of(&chunk));
            match Reflect::get(&page, &"next_batch".into())
                .ok()
                .and_then(|b| b.as_string())
            {
                Some(next) => from = JsValue::from_str(&next),
                None => return Ok(events),
            }
        }
    }
}

fn array_of(value: &JsValue) -> Vec<Value> {
    if !Array::is_array(value) {
        return Vec::new();
    }
    Array::from(value).iter().map(|v| to_json(&v)).collect()
}
