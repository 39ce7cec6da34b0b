//! A pool of Web Workers running the `worker` crate. One job per worker at a
//! time; a job is stopped by terminating its worker and starting a fresh one,
//! the only way to stop wasm that is busy computing. A span goes to a free
//! worker that has already loaded its Whisper model where there is one, and
//! a model can be loaded ahead of the first span (`WorkerPool::warm`).

use js_sys::{Array, Float32Array, Object, Reflect};
use manifest::task_kind::TaskKind;
use manifest::transcription::{TranscribeTask, WhisperModel};
use manifest::worker_protocol::{FromWorker, JobId, ToWorker};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

/// The bootstrap script that loads the worker's wasm (see `static/worker.js`).
const WORKER_SCRIPT: &str = "./worker.js";

#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    Progress(f32),
    Done(Value),
    /// The task's code failed: running it again would fail again.
    Failed(String),
    /// The worker itself died (out of memory, a browser error): worth retrying elsewhere.
    Crashed(String),
}

type Listener = Rc<dyn Fn(JobId, JobEvent)>;
type NoticeListener = Rc<dyn Fn(String)>;

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Its wasm is still loading.
    Starting,
    Idle,
    /// Runs `job`; a transcription's `model` is the one it needs.
    Running {
        job: JobId,
        model: Option<WhisperModel>,
    },
    /// Loads a model ahead of any span (`WorkerPool::warm`).
    Loading(WhisperModel),
}

struct Slot {
    worker: Worker,
    work: Work,
    /// The Whisper model this worker holds: it keeps one, and drops it to
    /// load another.
    model: Option<WhisperModel>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

struct Queued {
    message: ToWorker,
    /// A transcription's samples, transferred with the message.
    pcm: Option<Float32Array>,
}

impl Slot {
    fn is_free(&self) -> bool {
        self.work == Work::Idle
    }

    fn job(&self) -> Option<JobId> {
        match self.work {
            Work::Running { job, .. } => Some(job),
            _ => None,
        }
    }

    /// Whether this worker holds `model` or is getting it.
    fn has_or_gets(&self, model: WhisperModel) -> bool {
        self.model == Some(model)
            || match self.work {
                Work::Loading(loading) => loading == model,
                Work::Running { model: needs, .. } => needs == Some(model),
                Work::Starting | Work::Idle => false,
            }
    }

    /// Its job or load ended: it is free again, and holds the model it
    /// needed if it `succeeded` (one that failed may have dropped it). The
    /// job it ran, if it ran one.
    fn end(&mut self, succeeded: bool) -> Option<JobId> {
        let (job, needed) = match self.work {
            Work::Running { job, model } => (Some(job), model),
            Work::Loading(model) => (None, Some(model)),
            Work::Starting | Work::Idle => (None, None),
        };
        if needed.is_some() {
            self.model = needed.filter(|_| succeeded);
        }
        if self.work != Work::Starting {
            self.work = Work::Idle;
        }
        job
    }

    /// Posts `message` (and a transcription's samples) and marks the worker busy with it.
    fn start(&mut self, message: &ToWorker, pcm: Option<Float32Array>) -> Result<(), JsValue> {
        let needs = message.model();
        let work = match message {
            ToWorker::LoadModel { model, .. } => Work::Loading(*model),
            ToWorker::Run { job, .. } | ToWorker::Transcribe { job, .. } => Work::Running {
                job: *job,
                model: needs,
            },
        };
        let text = serde_json::to_value(message)
            .map(|v| v.to_string())
            .unwrap_or_default();
        match pcm {
            None => self.worker.post_message(&JsValue::from_str(&text))?,
            Some(pcm) => post_with_samples(&self.worker, &text, &pcm)?,
        }
        self.work = work;
        // The worker drops the model it holds before it loads another.
        if needs.is_some() && needs != self.model {
            self.model = None;
        }
        Ok(())
    }
}

/// The worker `queued` goes to now, if any: a free one that holds its
/// model; none while a worker loads that model (it will hold it sooner than
/// another could load it); else any free one.
fn place(slots: &[Slot], queued: &Queued) -> Option<usize> {
    if let Some(model) = queued.message.model() {
        let holder = slots
            .iter()
            .position(|s| s.is_free() && s.model == Some(model));
        if holder.is_some() {
            return holder;
        }
        if slots.iter().any(|s| s.work == Work::Loading(model)) {
            return None;
        }
    }
    slots.iter().position(Slot::is_free)
}

struct Inner {
    slots: Vec<Slot>,
    queue: VecDeque<Queued>,
    /// A model to load once a worker has nothing else to do, and its server.
    warm: Option<(WhisperModel, String)>,
    listener: Listener,
    /// What the workers tell the friend (a download's progress, a failure
    /// to load a model ahead of time).
    on_notice: NoticeListener,
}

#[derive(Clone)]
pub struct WorkerPool(Rc<RefCell<Inner>>);

impl WorkerPool {
    pub fn new(
        size: u32,
        listener: impl Fn(JobId, JobEvent) + 'static,
        on_notice: impl Fn(String) + 'static,
    ) -> Result<Self, String> {
        let pool = Self(Rc::new(RefCell::new(Inner {
            slots: Vec::new(),
            queue: VecDeque::new(),
            warm: None,
            listener: Rc::new(listener),
            on_notice: Rc::new(on_notice),
        })));
        for index in 0..size as usize {
            let slot = pool.spawn(index)?;
            pool.0.borrow_mut().slots.push(slot);
        }
        Ok(pool)
    }

    fn spawn(&self, index: usize) -> Result<Slot, String> {
        let worker =
            Worker::new(WORKER_SCRIPT).map_err(|e| format!("cannot start a Web Worker: {e:?}"))?;
        let weak = Rc::downgrade(&self.0);
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let text = event.data().as_string().unwrap_or_default();
            let message = serde_json::from_str(&text).map_err(|e| e.to_string());
            match message.and_then(|value| FromWorker::read(&value)) {
                Ok(message) => Self::on_message(&weak, index, message),
                Err(e) => {
                    web_sys::console::error_1(&format!("unreadable worker message: {e}").into())
                }
            }
        });
        let weak = Rc::downgrade(&self.0);
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            Self::on_crash(
                &weak,
                index,
                format!("the worker crashed: {}", event.message()),
            );
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Slot {
            worker,
            work: Work::Starting,
            model: None,
            _on_message: on_message,
            _on_error: on_error,
        })
    }

    fn on_message(weak: &Weak<RefCell<Inner>>, index: usize, message: FromWorker) {
        let Some(inner) = weak.upgrade() else { return };
        let mut notice = None;
        let (job, event) = {
            let mut inner = inner.borrow_mut();
            let Some(slot) = inner.slots.get_mut(index) else {
                return;
            };
            match message {
                FromWorker::Ready => {
                    slot.work = Work::Idle;
                    (None, None)
                }
                FromWorker::Progress { job, fraction } => {
                    (Some(job), Some(JobEvent::Progress(fraction)))
                }
                FromWorker::Done { job, output } => {
                    slot.end(true);
                    (Some(job), Some(JobEvent::Done(output)))
                }
                FromWorker::Failed { job, reason } => {
                    slot.end(false);
                    (Some(job), Some(JobEvent::Failed(reason)))
                }
                FromWorker::ModelLoaded { .. } => {
                    slot.end(true);
                    (None, None)
                }
                FromWorker::ModelFailed { model, reason } => {
                    slot.end(false);
                    notice = Some(format!(
                        "{reason}. (It was loading ahead of the first voice message; a transcription will try again.)"
                    ));
                    web_sys::console::warn_1(
                        &format!("Potluck could not load {} ahead: {reason}", model.name()).into(),
                    );
                    (None, None)
                }
                FromWorker::Notice { text } => {
                    notice = Some(text);
                    (None, None)
                }
                FromWorker::Unreadable { reason } => {
                    (slot.end(false), Some(JobEvent::Failed(reason)))
                }
            }
        };
        let pool = WorkerPool(inner);
        // Listeners may start jobs: call them with no borrow held.
        if let Some(text) = notice {
            let on_notice = pool.0.borrow().on_notice.clone();
            on_notice(text);
        }
        if let (Some(job), Some(event)) = (job, event) {
            let listener = pool.0.borrow().listener.clone();
            listener(job, event);
        }
        pool.dispatch();
    }

    fn on_crash(weak: &Weak<RefCell<Inner>>, index: usize, reason: String) {
        let Some(inner) = weak.upgrade() else { return };
        let pool = WorkerPool(inner);
        let job = pool.0.borrow().slots.get(index).and_then(Slot::job);
        pool.replace(index);
        if let Some(job) = job {
            let listener = pool.0.borrow().listener.clone();
            listener(job, JobEvent::Crashed(reason));
        }
        pool.dispatch();
    }

    /// Terminates the worker in `index` and puts a fresh one in its place.
    fn replace(&self, index: usize) {
        let fresh = self.spawn(index);
        let mut inner = self.0.borrow_mut();
        if let Some(old) = inner.slots.get(index) {
            old.worker.terminate();
        }
        match fresh {
            Ok(slot) => {
                let old = std::mem::replace(&mut inner.slots[index], slot);
                // Its handlers may be on the stack right now: drop them on a later turn.
                gloo::timers::callback::Timeout::new(0, move || drop(old)).forget();
            }
            Err(e) => web_sys::console::error_1(&e.into()),
        }
    }

    /// Queues a job; it starts as soon as a worker is free.
    pub fn run(&self, job: JobId, work: TaskKind) {
        self.enqueue(Queued {
            message: ToWorker::Run { job, work },
            pcm: None,
        });
    }

    /// Queues a span to transcribe, with its 16 kHz samples.
    pub fn transcribe(
        &self,
        job: JobId,
        work: TranscribeTask,
        samples: &[f32],
        previous: Vec<u32>,
        models_url: String,
    ) {
        self.enqueue(Queued {
            message: ToWorker::Transcribe {
                job,
                work: Box::new(work),
                models_url,
                previous,
            },
            pcm: Some(Float32Array::from(samples)),
        });
    }

    /// Loads `model` in one worker as soon as one has nothing to do, unless
    /// a worker holds it or gets it already: the first span that needs it
    /// then starts without the download and load (a second or two). If the
    /// job that was getting it ends without it, nothing loads it ahead again.
    pub fn warm(&self, model: WhisperModel, models_url: String) {
        self.0.borrow_mut().warm = Some((model, models_url));
        self.dispatch();
    }

    fn enqueue(&self, queued: Queued) {
        self.0.borrow_mut().queue.push_back(queued);
        self.dispatch();
    }

    /// Stops a job, queued or running.
    pub fn abort(&self, job: JobId) {
        let running_in = {
            let mut inner = self.0.borrow_mut();
            inner
                .queue
                .retain(|queued| queued.message.job() != Some(job));
            inner.slots.iter().position(|s| s.job() == Some(job))
        };
        if let Some(index) = running_in {
            self.replace(index);
        }
    }

    /// Starts every queued job a worker can take now (one that waits for a
    /// loading model lets those behind it go first), then a load ahead.
    fn dispatch(&self) {
        let mut inner = self.0.borrow_mut();
        while !inner.queue.is_empty() {
            let placed = (inner.queue.iter().enumerate())
                .find_map(|(at, queued)| place(&inner.slots, queued).map(|index| (at, index)));
            let Some((at, index)) = placed else {
                return;
            };
            let Some(Queued { message, pcm }) = inner.queue.remove(at) else {
                return;
            };
            // Scripts never come here (they run in their sandbox, which keeps their limit).
            if let (Some(job), Some(seconds)) = (message.job(), message.time_limit_s()) {
                self.stop_after(index, job, seconds);
            }
            if let Err(e) = inner.slots[index].start(&message, pcm) {
                web_sys::console::error_1(&e);
            }
        }
        start_loading(&mut inner);
    }

    /// Stops `job` if it still runs in `index` after `seconds`: the only way
    /// to stop a shader or wasm that does not return is to end its worker.
    fn stop_after(&self, index: usize, job: JobId, seconds: u32) {
        let weak = Rc::downgrade(&self.0);
        let millis = seconds.saturating_mul(1000);
        gloo::timers::callback::Timeout::new(millis, move || {
            let Some(inner) = weak.upgrade() else { return };
            let pool = WorkerPool(inner);
            let still_running = pool.0.borrow().slots.get(index).and_then(Slot::job) == Some(job);
            if !still_running {
                return;
            }
            pool.replace(index);
            let listener = pool.0.borrow().listener.clone();
            let reason =
                format!("it ran longer than its time limit of {seconds} s and was stopped");
            listener(job, JobEvent::Failed(reason));
            pool.dispatch();
        })
        .forget();
    }

    /// Terminates every worker.
    pub fn shutdown(&self) {
        let mut inner = self.0.borrow_mut();
        for slot in inner.slots.drain(..) {
            slot.worker.terminate();
        }
        inner.queue.clear();
        inner.warm = None;
    }
}

/// Posts the model `Inner::warm` names to a free worker, once no job waits
/// and no worker holds it or gets it already.
fn start_loading(inner: &mut Inner) {
    let Some((model, models_url)) = inner.warm.take() else {
        return;
    };
    if inner.slots.iter().any(|s| s.has_or_gets(model)) {
        return;
    }
    let Some(slot) = inner.slots.iter_mut().find(|s| s.is_free()) else {
        inner.warm = Some((model, models_url));
        return;
    };
    if let Err(e) = slot.start(&ToWorker::LoadModel { model, models_url }, None) {
        web_sys::console::error_1(&e);
    }
}

/// `{message, pcm, models}`, the samples' buffer transferred.
fn post_with_samples(worker: &Worker, message: &str, pcm: &Float32Array) -> Result<(), JsValue> {
    let data = Object::new();
    Reflect::set(&data, &"message".into(), &message.into())?;
    Reflect::set(&data, &"pcm".into(), pcm)?;
    worker.post_message_with_transfer(&data, &Array::of1(&pcm.buffer()))
}
