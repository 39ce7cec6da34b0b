//! The Web Worker's entry point: `postMessage` in, `runner::handle`, `postMessage` out.

use crate::runner;
use manifest::worker_protocol::FromWorker;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

fn post(scope: &DedicatedWorkerGlobalScope, reply: &FromWorker) {
    if let Ok(text) = serde_json::to_string(reply) {
        // A closed port only means the widget is gone; nothing to tell anyone.
        let _ = scope.post_message(&JsValue::from_str(&text));
    }
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    let Ok(scope) = js_sys::global().dyn_into::<DedicatedWorkerGlobalScope>() else {
        return; // Loaded outside a worker (a test page): nothing to listen to.
    };
    let reply_scope = scope.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let text = event.data().as_string().unwrap_or_default();
        runner::handle(&text, |reply| post(&reply_scope, &reply));
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget(); // Lives as long as the worker.
    post(&scope, &FromWorker::Ready);
}
