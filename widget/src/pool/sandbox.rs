//! Friends' task scripts run in the sandbox of `static/sandbox.js`, never in
//! Potluck's own workers: this binds it for the driver. One `ScriptRun` per
//! chunk; dropping it stops the script.

use crate::pool::workers::JobEvent;
use js_sys::Function;
use manifest::task_kind::ScriptTask;
use manifest::worker_protocol::JobId;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// Returns the function that stops the run.
    #[wasm_bindgen(js_name = potluckRunScript)]
    fn potluck_run_script(request: &str, inputs: &js_sys::Array, on_event: &Function) -> Function;
}

/// What the sandbox reports, as `static/sandbox.js` sends it: `{"type":
/// "progress" | "done" | "failed", …}`. Read by hand, as the widget reads its
/// workers' messages (`FromWorker::read`): serde's derived reader of a
/// tagged enum buffers the message in its generic content type first.
fn read_sandbox_event(text: &str) -> Result<JobEvent, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let field = |key: &str| json.get(key).ok_or(format!("missing field `{key}`"));
    let kind = field("type")?;
    Ok(match kind.as_str() {
        Some("progress") => {
            let fraction = field("fraction")?.as_f64();
            JobEvent::Progress(fraction.ok_or("`fraction` is not a number")? as f32)
        }
        Some("done") => JobEvent::Done(field("output")?.clone()),
        Some("failed") => {
            let reason = field("reason")?.as_str();
            JobEvent::Failed(reason.ok_or("`reason` is not a string")?.to_owned())
        }
        _ => return Err(format!("unknown type {kind}")),
    })
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
            let event = read_sandbox_event(&text).unwrap_or_else(|e| {
                JobEvent::Crashed(format!("the sandbox said something unreadable: {e}"))
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandboxs_reports_read_as_it_sends_them_and_others_say_why_not() {
        let read = |text: &str| read_sandbox_event(text);
        assert_eq!(
            read(r#"{"type":"progress","fraction":0.5}"#),
            Ok(JobEvent::Progress(0.5))
        );
        assert_eq!(
            read(r#"{"type":"done","output":{"sum":3}}"#),
            Ok(JobEvent::Done(json!({"sum": 3})))
        );
        assert_eq!(
            read(r#"{"type":"failed","reason":"boom"}"#),
            Ok(JobEvent::Failed("boom".into()))
        );
        assert_eq!(
            read(r#"{"type":"done"}"#),
            Err("missing field `output`".into())
        );
        assert_eq!(
            read(r#"{"type":"progress","fraction":"half"}"#),
            Err("`fraction` is not a number".into())
        );
        assert_eq!(
            read(r#"{"type":"hello"}"#),
            Err(r#"unknown type "hello""#.into())
        );
        assert!(read("not json").is_err());
    }
}
