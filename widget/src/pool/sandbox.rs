//! Friends' task scripts run in the sandbox of `static/sandbox.js`, never in
//! Potluck's own workers: this binds it for the driver. One `ScriptRun` per
//! chunk; dropping it stops the script.

use crate::pool::workers::JobEvent;
use crate::read_json::read_json;
use js_sys::Function;
use manifest::task_kind::ScriptTask;
use manifest::worker_protocol::JobId;
use serde::Deserialize;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// Returns the function that stops the run.
    #[wasm_bindgen(js_name = potluckRunScript)]
    fn potluck_run_script(request: &str, inputs: &js_sys::Array, on_event: &Function) -> Function;
}

/// What the sandbox reports, as `static/sandbox.js` sends it.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SandboxEvent {
    Progress { fraction: f32 },
    Done { output: Value },
    Failed { reason: String },
}

pub struct ScriptRun {
    stop: Function,
    _on_event: Closure<dyn FnMut(String)>,
}

impl ScriptRun {
    /// Fetches the script (checking its integrity) and runs one chunk of it,
    /// with the task's input files (already checked), in the task's order.
    pub fn start(
        job: JobId,
        script: &ScriptTask,
        inputs: &[Vec<u8>],
        listener: impl Fn(JobId, JobEvent) + 'static,
    ) -> Self {
        let on_event = Closure::<dyn FnMut(String)>::new(move |text: String| {
            let event = match read_json::<SandboxEvent>(&text) {
                Ok(SandboxEvent::Progress { fraction }) => JobEvent::Progress(fraction),
                Ok(SandboxEvent::Done { output }) => JobEvent::Done(output),
                Ok(SandboxEvent::Failed { reason }) => JobEvent::Failed(reason),
                Err(e) => JobEvent::Crashed(format!("the sandbox said something unreadable: {e}")),
            };
            listener(job, event);
        });
        let request = json!({
            "url": script.url,
            "integrity": script.integrity,
            "args": script.args,
            "chunk": script.split.chunk_value(),
            "maxSeconds": script.max_seconds,
        });
        let files: js_sys::Array = inputs
            .iter()
            .map(|bytes| js_sys::Uint8Array::from(bytes.as_slice()))
            .collect();
        let stop = potluck_run_script(
            &request.to_string(),
            &files,
            on_event.as_ref().unchecked_ref(),
        );
        Self {
            stop,
            _on_event: on_event,
        }
    }
}

impl Drop for ScriptRun {
    fn drop(&mut self) {
        let _ = self.stop.call0(&JsValue::NULL);
    }
}
