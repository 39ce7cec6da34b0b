//! The Web Worker's entry point: `postMessage` in, a runner, `postMessage` out.
//!
//! Most jobs are a JSON string for `runner::handle`. A WebGPU kernel's is the
//! same JSON, run asynchronously on the worker's GPU. A transcription's job
//! is `ToWorker::Transcribe` as `message`, beside its span's samples as `pcm`
//! (a transferred `Float32Array`; see `manifest::worker_protocol`).
//! `ToWorker::LoadModel` loads a Whisper model before any span needs it.

use crate::catalog::{ModelSource, FILES};
use crate::kernel::Gpu;
use crate::model_store::{Download, ModelStore};
use crate::runner;
use crate::speech::transcribe_span;
use js_sys::{Float32Array, Reflect};
use manifest::kernel::KernelTask;
use manifest::task_kind::TaskKind;
use manifest::transcription::{TranscribeTask, WhisperModel};
use manifest::worker_protocol::{FromWorker, ToWorker};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};
use whisper::transcribe::{self, Engine};

thread_local! {
    /// The model this worker loaded last, by name: kept for the worker's life
    /// so that the next span does not load it again.
    static ENGINE: RefCell<Option<(String, Rc<Engine>)>> = const { RefCell::new(None) };
    /// The GPU this worker opened for its first kernel, kept for the next.
    static GPU: RefCell<Option<Rc<Gpu>>> = const { RefCell::new(None) };
}

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
        let data = event.data();
        match data.as_string() {
            Some(text) => match ToWorker::read(&text) {
                Ok(ToWorker::Run {
                    job,
                    work: TaskKind::Kernel(kernel),
                }) => on_kernel_job(&reply_scope, job, *kernel),
                Ok(ToWorker::LoadModel { model, models_url }) => {
                    on_load_model(&reply_scope, model, models_url)
                }
                Ok(request) => runner::run(request, |reply| post(&reply_scope, &reply)),
                // Says what could not be read.
                Err(_) => runner::handle(&text, |reply| post(&reply_scope, &reply)),
            },
            None => on_audio_job(&reply_scope, &data),
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget(); // Lives as long as the worker.
    post(&scope, &FromWorker::Ready);
}

/// A WebGPU kernel's chunk: one dispatch on this worker's GPU.
fn on_kernel_job(scope: &DedicatedWorkerGlobalScope, job: u64, kernel: KernelTask) {
    let scope = scope.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let result = match gpu().await {
            Ok(gpu) => gpu.run(&kernel).await,
            Err(reason) => Err(reason),
        };
        let reply = match result {
            Ok(bytes) => FromWorker::Done {
                job,
                output: kernel.output_from(&bytes),
            },
            Err(reason) => FromWorker::Failed { job, reason },
        };
        post(&scope, &reply);
    });
}

/// Loads `model` ahead of the spans that will need it.
fn on_load_model(scope: &DedicatedWorkerGlobalScope, model: WhisperModel, models_url: String) {
    let scope = scope.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let notice = |text: String| post(&scope, &FromWorker::Notice { text });
        let reply = match engine(model.name(), &models_url, notice).await {
            Ok(_) => FromWorker::ModelLoaded { model },
            Err(reason) => FromWorker::ModelFailed { model, reason },
        };
        post(&scope, &reply);
    });
}

/// This worker's GPU, opened on first use.
async fn gpu() -> Result<Rc<Gpu>, String> {
    if let Some(gpu) = GPU.with_borrow(Clone::clone) {
        return Ok(gpu);
    }
    let gpu = Rc::new(Gpu::open().await?);
    GPU.with_borrow_mut(|g| *g = Some(gpu.clone()));
    Ok(gpu)
}

/// A transcription job: its message and its samples.
fn on_audio_job(scope: &DedicatedWorkerGlobalScope, data: &JsValue) {
    let field = |name: &str| Reflect::get(data, &name.into()).unwrap_or(JsValue::UNDEFINED);
    let text = field("message").as_string().unwrap_or_default();
    let (job, task, models, previous) = match ToWorker::read(&text) {
        Ok(ToWorker::Transcribe {
            job,
            work,
            models_url,
            previous,
        }) => (job, work, models_url, previous),
        Ok(other) => {
            let reason = "only transcriptions come with samples".to_owned();
            return post(
                scope,
                &match other.job() {
                    Some(job) => FromWorker::Failed { job, reason },
                    None => FromWorker::Unreadable { reason },
                },
            );
        }
        Err(e) => {
            return post(
                scope,
                &FromWorker::Unreadable {
                    reason: format!("the worker could not read its job: {e}"),
                },
            )
        }
    };
    let samples = field("pcm")
        .dyn_into::<Float32Array>()
        .map(|pcm| pcm.to_vec())
        .unwrap_or_default();
    let scope = scope.clone();
    wasm_bindgen_futures::spawn_local(async move {
        let notice = |text: String| post(&scope, &FromWorker::Notice { text });
        let reply = match transcribe(&task, &samples, &previous, &models, notice).await {
            Ok(output) => FromWorker::Done { job, output },
            Err(reason) => FromWorker::Failed { job, reason },
        };
        post(&scope, &reply);
    });
}

async fn transcribe(
    task: &TranscribeTask,
    samples: &[f32],
    previous: &[u32],
    models: &str,
    notice: impl Fn(String),
) -> Result<serde_json::Value, String> {
    let span = task
        .spans()
        .first()
        .ok_or("a worker transcribes spans; planning happens in the widget")?;
    let engine = engine(task.model.name(), models, notice).await?;
    let started = transcribe::now();
    let mut transcript = transcribe_span(&engine, samples, span, previous)?;
    transcript.inference_ms = ((transcribe::now() - started) * 1000.0).max(0.0) as u64;
    serde_json::to_value(transcript).map_err(|e| e.to_string())
}

/// "Downloading the tiny.en model: 34 of 76 MB".
fn download_words(model: &str, received: u64, total: u64) -> String {
    let mb = |bytes: u64| (bytes as f64 / 1e6).round() as u64;
    if total > 0 {
        format!(
            "Downloading the {model} model: {} of {} MB",
            mb(received),
            mb(total)
        )
    } else {
        format!("Downloading the {model} model: {} MB", mb(received))
    }
}

/// The model, from this worker's memory, the browser's cache or the network.
/// Says through `notice` when the browser would not keep the files.
async fn engine(model: &str, models: &str, notice: impl Fn(String)) -> Result<Rc<Engine>, String> {
    let loaded = ENGINE.with_borrow(|e| {
        e.as_ref()
            .filter(|(name, _)| name == model)
            .map(|(_, engine)| engine.clone())
    });
    if let Some(engine) = loaded {
        return Ok(engine);
    }
    // One model at a time: free the other before loading this one.
    ENGINE.with_borrow_mut(|e| *e = None);
    let source = ModelSource::from_hub(model, models)?;
    let store = ModelStore::open().await.map_err(|e| e.to_string())?;
    // The weights are most of the download: friends see it come in.
    let downloading = |d: Download| {
        if d.file == FILES[0] {
            notice(download_words(model, d.received, d.total));
        }
    };
    let (engine, report) = store
        .load_engine(&source, &downloading)
        .await
        .map_err(|e| format!("the {model} model could not be loaded: {e}"))?;
    match report.not_kept {
        None => notice(format!(
            "The {model} model is ready, and kept in this browser for next time."
        )),
        // Usual in Element: a widget on another site gets no storage. The
        // browser's own words are for the console, not for friends.
        Some(reason) => {
            web_sys::console::warn_1(&format!("Potluck keeps no model files: {reason}").into());
            notice(format!(
                "The {model} model is ready. Your browser lets widgets keep no files, so a new tab gets it again from the browser's cache or the model server."
            ));
        }
    }
    let engine = Rc::new(engine);
    ENGINE.with_borrow_mut(|e| *e = Some((model.to_owned(), engine.clone())));
    Ok(engine)
}
