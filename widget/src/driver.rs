//! The node's loop: feeds the `NodeMachine` what the room, the timer and the
//! workers say, and carries out the actions it returns. No decisions here.

use crate::clock::ServerClock;
use crate::host::params::{ParamsError, Theme, WidgetParams};
use crate::host::room::{self, Room};
use crate::host::widget_api;
use crate::pool::machine_info;
use crate::pool::sandbox::ScriptRun;
use crate::pool::workers::{JobEvent, WorkerPool};
use crate::view::{reveal_private, voice_rows, PoolView, VoiceRow};
use crate::work_today::{local_midnight, work_since, WorkDone};
use crate::{audio, media};
use gloo::timers::callback::Interval;
use js_sys::{Array, Function};
use manifest::allowlist::{AllowedKernel, AllowedScript};
use manifest::capabilities;
use manifest::events::{event_type, Input as TaskInput, Outcome, Outgoing, TaskSpec};
use manifest::ids::{EventId, MxcUri, NodeId, UserId};
use manifest::limits::NODE_TIMEOUT_MS;
use manifest::node::{Action, HistoryRead, Input, NodeMachine, RequestId, Unread};
use manifest::private::{self, PrivateOutputs};
use manifest::sorted_map::SortedMap;
use manifest::task_kind::{ScriptTask, TaskKind};
use manifest::transcription::WhisperModel;
use manifest::validate::parse_task;
use manifest::voice::VoiceMessage;
use manifest::worker_protocol::JobId;
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

/// How often the machine gets a `Tick`: heartbeats, leases and batches are
/// measured in seconds, so once a second is plenty.
const TICK_MS: u32 = 1_000;
/// How long to wait for the host's "ready" before telling the friend.
const READY_TIMEOUT_MS: u32 = 15_000;

/// What a problem shown to the friend is about: it stays until that thing
/// works again, however much else happens meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trouble {
    /// Sending events of this type.
    Sending(&'static str),
    /// Arming the leave notice the homeserver sends if the tab closes.
    LeaveNotice,
    /// Sending a private result to the friend who asked.
    PrivateResult,
    /// Submitting a task with files.
    Submitting,
}

/// What the UI renders.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub me: String,
    pub view: PoolView,
    pub node: Option<NodeId>,
    /// Progress of the chunks running in this browser: (task, chunk, fraction).
    pub local_jobs: Vec<(EventId, u32, f32)>,
    /// Problems talking to the host, each shown until the same thing works again.
    pub problems: Vec<String>,
    /// What the widget could not read of the room's past when it opened;
    /// true until it is opened again.
    pub history_problem: Option<String>,
    /// Follows the client's light or dark theme.
    pub theme: Option<Theme>,
    /// Events waiting for the homeserver's rate limit.
    pub queued_sends: usize,
    /// The scripts the room allows.
    pub allowlist: Vec<AllowedScript>,
    /// The WebGPU kernels the room allows.
    pub kernels: Vec<AllowedKernel>,
    /// Scripts waiting for this friend's yes or no before their machine runs them.
    pub consent_asks: Vec<AllowedScript>,
    /// The room's voice messages, newest first, with their transcripts.
    pub voices: Vec<VoiceRow>,
    /// What a worker said this friend should know (a model not kept).
    pub worker_notice: Option<String>,
    /// Each computer's accepted work since the viewer's midnight.
    pub work_today: SortedMap<NodeId, WorkDone>,
    /// Why this friend's last allowlist edit did not take.
    pub allowlist_problem: Option<String>,
}

struct State {
    machine: NodeMachine,
    clock: ServerClock,
    pool: Option<WorkerPool>,
    delay_id: Option<String>,
    jobs: SortedMap<JobId, (EventId, u32, f32)>,
    /// Chunks of friends' scripts, each running in its own sandbox.
    scripts: SortedMap<JobId, ScriptRun>,
    consent_asks: Vec<AllowedScript>,
    worker_notice: Option<String>,
    /// Outputs of this friend's private tasks, received by to-device message.
    private_outputs: PrivateOutputs,
    problems: SortedMap<Trouble, String>,
    theme: Theme,
    on_change: Rc<dyn Fn(Snapshot)>,
}

/// Kept alive as long as the driver: the host's pushes go through it.
type PushListener = Closure<dyn FnMut(JsValue)>;

pub struct Driver {
    room: Room,
    /// Where workers download Whisper models (see `WidgetParams::models`).
    models: String,
    state: RefCell<State>,
    push_listener: RefCell<Option<PushListener>>,
    _ticker: RefCell<Option<Interval>>,
}

fn local_now() -> f64 {
    js_sys::Date::now()
}

impl Driver {
    /// Connects to the host, checks the capabilities and reads what the room
    /// already holds. On error, the message says what the friend can do.
    pub async fn connect(
        params: WidgetParams,
        on_change: impl Fn(Snapshot) + 'static,
    ) -> Result<Rc<Self>, String> {
        let me = UserId::parse(params.user_id.clone()).map_err(|e| e.to_string())?;
        let api =
            widget_api::boot_widget_api().ok_or_else(|| ParamsError::OutsideHost.to_string())?;
        let driver = Rc::new(Self {
            room: Room::new(api),
            models: params.models.clone(),
            state: RefCell::new(State {
                machine: NodeMachine::new(me),
                clock: ServerClock::default(),
                pool: None,
                delay_id: None,
                jobs: SortedMap::new(),
                scripts: SortedMap::new(),
                consent_asks: Vec::new(),
                worker_notice: None,
                private_outputs: PrivateOutputs::default(),
                problems: SortedMap::new(),
                theme: params.theme,
                on_change: Rc::new(on_change),
            }),
            push_listener: RefCell::new(None),
            _ticker: RefCell::new(None),
        });
        wait_ready(widget_api::boot_when_ready()).await?;

        let missing = capabilities::missing(|id| driver.room.api().has_capability(id));
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(|c| format!("• {}", c.why)).collect();
            return Err(format!(
                "Potluck was not allowed what it needs, so it does nothing. Remove the widget, add it again and approve everything it asks for; it needs to:\n{}",
                list.join("\n")
            ));
        }
        driver.listen();
        driver.handle(Input::ReadHistory);
        driver.start_ticking();
        driver.publish();
        Ok(driver)
    }

    /// Takes the host's pushes from the bootstrap script.
    fn listen(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let listener = Closure::<dyn FnMut(JsValue)>::new(move |data: JsValue| {
            if let Some(driver) = weak.upgrade() {
                driver.on_push(room::to_json(&data));
            }
        });
        widget_api::boot_on_push(listener.as_ref().unchecked_ref());
        *self.push_listener.borrow_mut() = Some(listener);
    }

    /// A push: one event (`send_event`), a batch of state (`update_state`),
    /// the client's new theme (`theme_change`) or a to-device message.
    fn on_push(self: &Rc<Self>, data: Value) {
        if let Some(message) = data.get("to_device") {
            return self.on_to_device(message);
        }
        if let (Some(theme), None) = (data.get("name").and_then(Value::as_str), data.get("type")) {
            self.state.borrow_mut().theme = Theme::from_client(theme);
            return self.publish();
        }
        let events = match data.get("state").and_then(Value::as_array) {
            Some(state) => state.clone(),
            None => vec![data],
        };
        for event in events {
            if let Some(ts) = event.get("origin_server_ts").and_then(Value::as_u64) {
                self.state.borrow_mut().clock.observe(ts, local_now());
            }
            match Input::from_room_message(&event) {
                Some(message) => self.handle(message),
                None => self.handle(Input::RoomEvent(event)),
            }
        }
    }

    fn start_ticking(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let ticker = Interval::new(TICK_MS, move || {
            if let Some(driver) = weak.upgrade() {
                driver.handle(Input::Tick);
            }
        });
        *self._ticker.borrow_mut() = Some(ticker);
    }

    fn now(&self) -> u64 {
        self.state.borrow().clock.now(local_now())
    }

    /// The one place inputs enter the machine.
    pub fn handle(self: &Rc<Self>, input: Input) {
        let now = self.now();
        let actions = self.state.borrow_mut().machine.process(input, now);
        for action in actions {
            self.execute(action);
        }
        // Some chunks the machine finishes itself (a plan, a span outside
        // its recording): they are no longer this machine's work to show.
        {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            state.jobs.retain(|&job, _| state.machine.runs(job));
        }
        self.publish();
    }

    fn execute(self: &Rc<Self>, action: Action) {
        match action {
            Action::Send { request, out } => self.send(request, out),
            Action::ArmDeadManSwitch { gone, .. } => {
                let driver = self.clone();
                spawn_local(async move {
                    match driver.room.send_delayed_state(&gone, NODE_TIMEOUT_MS).await {
                        Ok(id) => {
                            driver.state.borrow_mut().delay_id = Some(id);
                            driver.resolved(Trouble::LeaveNotice);
                        }
                        Err(e) => driver.report(Trouble::LeaveNotice, format!(
                            "If this tab closes suddenly, friends may still see your computer in the pool for a while: the homeserver did not take Potluck's leave notice ({e}). Switching contributing off before closing avoids it."
                        )),
                    }
                });
            }
            Action::RestartDeadManSwitch => {
                let Some(id) = self.state.borrow().delay_id.clone() else {
                    return;
                };
                let driver = self.clone();
                spawn_local(async move {
                    // If it already fired, the machine sees us gone and announces again.
                    if let Err(e) = driver.room.restart_delayed(&id).await {
                        web_sys::console::warn_1(&format!("heartbeat: {e}").into());
                    }
                });
            }
            Action::FireDeadManSwitch => {
                let id = self.state.borrow_mut().delay_id.take();
                let driver = self.clone();
                spawn_local(async move {
                    if let Some(id) = id {
                        if driver.room.send_delayed_now(&id).await.is_ok() {
                            return;
                        }
                    }
                    driver.handle(Input::LeaveNoticeNotFired);
                });
            }
            Action::RunChunk {
                job,
                task,
                chunk,
                work,
                inputs,
                ..
            } => {
                let mut state = self.state.borrow_mut();
                state.jobs.insert(job, (task, chunk, 0.0));
                match work {
                    // Runs once its audio is decoded: `Action::RunTranscription`.
                    TaskKind::Transcribe(_) => {}
                    TaskKind::Script(script) => {
                        drop(state);
                        self.run_script(job, script, inputs);
                    }
                    work => {
                        if let Some(pool) = &state.pool {
                            pool.run(job, work);
                        }
                    }
                }
            }
            Action::AbortJob { job } => {
                let mut state = self.state.borrow_mut();
                state.jobs.remove(&job);
                state.scripts.remove(&job); // Dropping it stops the script.
                if let Some(pool) = &state.pool {
                    pool.abort(job);
                }
            }
            Action::DecodeAudio { audio } => {
                let driver = self.clone();
                spawn_local(async move {
                    let samples = match media::fetch_audio(&driver.room, &audio).await {
                        Ok(bytes) => audio::decode_for_whisper(&bytes).await,
                        Err(reason) => Err(reason),
                    };
                    let message = audio.message;
                    driver.handle(Input::AudioDecoded { message, samples });
                });
            }
            Action::RunTranscription {
                job,
                work,
                samples,
                previous,
            } => {
                if let Some(pool) = &self.state.borrow().pool {
                    pool.transcribe(job, work, &samples, previous, self.models.clone());
                }
            }
            Action::PrepareModel { model } => {
                if let Some(pool) = &self.state.borrow().pool {
                    pool.warm(model, self.models.clone());
                }
            }
            Action::AskConsent { script } => {
                self.state.borrow_mut().consent_asks.push(script);
            }
            Action::SendToDevice { user, content } => {
                let driver = self.clone();
                spawn_local(async move {
                    let sent = driver
                        .room
                        .send_to_device(user.as_str(), private::OUTPUT_EVENT_TYPE, &content)
                        .await;
                    match sent {
                        Ok(_) => driver.resolved(Trouble::PrivateResult),
                        Err(e) => driver.report(Trouble::PrivateResult, format!(
                            "A private result could not be sent to {} ({e}); they can submit the task again.",
                            user.localpart()
                        )),
                    }
                });
            }
            Action::ReadHistory { read } => {
                let driver = self.clone();
                spawn_local(async move {
                    let room = &driver.room;
                    let events = match &read {
                        HistoryRead::State {
                            event_type,
                            state_key,
                        } => room.read_state(event_type, *state_key).await,
                        HistoryRead::Timeline {
                            event_type,
                            msgtype,
                        } => room.read_timeline(event_type, *msgtype).await,
                        HistoryRead::References { task } => {
                            room.read_references(task.as_str()).await
                        }
                    };
                    if let Err(e) = &events {
                        let what = unread_words(read.part());
                        web_sys::console::warn_1(
                            &format!("Potluck could not read {what}: {e}").into(),
                        );
                    }
                    driver.handle(Input::HistoryRead { read, events });
                });
            }
            Action::ReadThread { root } => {
                let driver = self.clone();
                spawn_local(async move {
                    let replies = driver.room.read_thread(root.as_str()).await;
                    driver.handle(Input::ThreadRead { root, replies });
                });
            }
            Action::Rejected(rejection) => {
                web_sys::console::warn_1(&format!("Potluck ignored an event: {rejection}").into());
            }
        }
    }

    /// Runs a script's chunk in its sandbox, once its input files (if any)
    /// are downloaded and checked; a file that fails the check fails the chunk.
    fn run_script(self: &Rc<Self>, job: JobId, script: ScriptTask, inputs: Vec<TaskInput>) {
        let driver = self.clone();
        spawn_local(async move {
            let mut files = Vec::with_capacity(inputs.len());
            for input in &inputs {
                match media::fetch_input(&driver.room, input).await {
                    Ok(bytes) => files.push(bytes),
                    Err(reason) => return driver.on_job(job, JobEvent::Failed(reason)),
                }
            }
            if !driver.state.borrow().jobs.contains_key(&job) {
                return; // Aborted while its inputs downloaded.
            }
            let weak = Rc::downgrade(&driver);
            let run = ScriptRun::start(job, &script, &files, move |job, event| {
                if let Some(driver) = weak.upgrade() {
                    driver.on_job(job, event);
                }
            });
            driver.state.borrow_mut().scripts.insert(job, run);
        });
    }

    /// Uploads a task's input files through the host, names each by its size
    /// and SHA-256 in the task, and submits it.
    pub async fn submit_with_files(
        self: &Rc<Self>,
        mut spec: TaskSpec,
        files: Vec<web_sys::File>,
    ) -> Result<(), String> {
        for file in files {
            let bytes = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
                .await
                .map(|buffer| js_sys::Uint8Array::new(&buffer).to_vec())
                .map_err(|_| format!("the file {} could not be read", file.name()))?;
            let mxc = self
                .room
                .upload(&file)
                .await
                .map_err(|e| format!("the file {} could not be uploaded ({e})", file.name()))?;
            spec.inputs.push(TaskInput {
                mxc: MxcUri::parse(mxc).map_err(|e| e.to_string())?,
                size: bytes.len() as u64,
                sha256: media::sha256_hex(&bytes).await?,
            });
        }
        parse_task(&Outgoing::task(&spec).content).map_err(|e| e.to_string())?;
        self.submit(spec);
        Ok(())
    }

    /// A to-device message: the output of one of this friend's private tasks.
    fn on_to_device(self: &Rc<Self>, message: &Value) {
        if message["type"] != private::OUTPUT_EVENT_TYPE {
            return;
        }
        let received = self
            .state
            .borrow_mut()
            .private_outputs
            .receive(&message["content"]);
        if let Err(e) = received {
            web_sys::console::warn_1(&format!("Potluck ignored a private output: {e}").into());
        }
        self.publish();
    }

    fn send(self: &Rc<Self>, request: RequestId, out: Outgoing) {
        let driver = self.clone();
        spawn_local(async move {
            match driver.room.send(&out).await {
                Ok(()) => {
                    driver.resolved(Trouble::Sending(out.event_type));
                    driver.handle(Input::Sent { request });
                }
                Err(e) => {
                    let what = format!("{} not sent: {}", out.event_type, e.message);
                    web_sys::console::warn_1(&what.into());
                    // An allowlist the room refused is said beside its form.
                    if e.permanent && out.event_type != event_type::ALLOWLIST {
                        driver.report(Trouble::Sending(out.event_type), format!(
                            "Potluck could not send {}: the homeserver refused it ({}). Check that you may post in this room, then reload the widget.",
                            sent_words(out.event_type),
                            e.message
                        ));
                    }
                    driver.handle(Input::SendFailed {
                        request,
                        retry_after_ms: e.retry_after_ms,
                        permanent: e.permanent,
                        reason: e.message,
                    });
                }
            }
        });
    }

    /// Shows `problem` until the same kind of thing works again.
    pub fn report(self: &Rc<Self>, about: Trouble, problem: String) {
        web_sys::console::error_1(&problem.clone().into());
        self.state.borrow_mut().problems.insert(about, problem);
        self.publish();
    }

    /// The trouble `about` is over: its problem goes, and no other.
    pub fn resolved(self: &Rc<Self>, about: Trouble) {
        if self.state.borrow_mut().problems.remove(&about).is_some() {
            self.publish();
        }
    }

    fn on_job(self: &Rc<Self>, job: JobId, event: JobEvent) {
        let outcome = match event {
            JobEvent::Progress(fraction) => {
                if let Some(entry) = self.state.borrow_mut().jobs.get_mut(&job) {
                    entry.2 = fraction;
                }
                // The machine reports it to the room only when a lease needs renewing.
                return self.handle(Input::WorkerProgress {
                    job,
                    done: fraction,
                });
            }
            JobEvent::Done(output) => Outcome::Output(output.into()),
            JobEvent::Failed(reason) => Outcome::Error {
                reason,
                retriable: false,
            },
            JobEvent::Crashed(reason) => Outcome::Error {
                reason,
                retriable: true,
            },
        };
        let finished_script = {
            let mut state = self.state.borrow_mut();
            state.jobs.remove(&job);
            state.scripts.remove(&job)
        };
        // This runs inside the script's own callback: drop it once that returned.
        if let Some(run) = finished_script {
            spawn_local(async move { drop(run) });
        }
        self.handle(Input::WorkerFinished { job, outcome });
    }

    /// Asks the room's nodes to transcribe a voice message.
    pub fn transcribe(self: &Rc<Self>, message: &VoiceMessage, model: WhisperModel) {
        self.submit(TaskSpec::transcription(message.audio.clone(), model));
    }

    /// Starts contributing this machine with `workers` Web Workers.
    pub async fn contribute(self: &Rc<Self>, workers: u32) -> Result<(), String> {
        let (weak, noticed) = (Rc::downgrade(self), Rc::downgrade(self));
        let pool = WorkerPool::new(
            workers,
            move |job, event| {
                if let Some(driver) = weak.upgrade() {
                    driver.on_job(job, event);
                }
            },
            move |text| {
                if let Some(driver) = noticed.upgrade() {
                    driver.state.borrow_mut().worker_notice = Some(text);
                    driver.publish();
                }
            },
        )?;
        let webgpu = machine_info::has_webgpu().await;
        let me = self.state.borrow().machine.me().cloned().ok_or("no user")?;
        let node = NodeId::new(&me, &node_tag()).map_err(|e| e.to_string())?;
        self.state.borrow_mut().pool = Some(pool);
        self.handle(Input::StartContributing {
            node,
            caps: machine_info::caps(workers, webgpu),
        });
        Ok(())
    }

    pub fn stop_contributing(self: &Rc<Self>) {
        self.handle(Input::StopContributing);
        let pool = self.state.borrow_mut().pool.take();
        if let Some(pool) = pool {
            pool.shutdown();
        }
        self.state.borrow_mut().jobs.clear();
        self.publish();
    }

    pub fn submit(self: &Rc<Self>, spec: TaskSpec) {
        self.handle(Input::Submit(spec));
    }

    /// The friend's answer to a script shown before it first runs here.
    pub fn answer_consent(self: &Rc<Self>, integrity: String, allow: bool) {
        self.state
            .borrow_mut()
            .consent_asks
            .retain(|s| s.integrity != integrity);
        self.handle(Input::ScriptConsent { integrity, allow });
    }

    /// Adds a script to the room's allowlist. The homeserver accepts it only
    /// from members with the power to change room state (moderators, by
    /// default); why it did not take shows in `Snapshot::allowlist_problem`.
    pub fn allow_script(self: &Rc<Self>, script: AllowedScript) {
        let list = self
            .state
            .borrow()
            .machine
            .ledger()
            .allowlist()
            .with_script(script);
        self.handle(Input::EditAllowlist(list));
    }

    /// Adds a WebGPU kernel to the room's allowlist (moderators, as above).
    pub fn allow_kernel(self: &Rc<Self>, kernel: AllowedKernel) {
        let list = self
            .state
            .borrow()
            .machine
            .ledger()
            .allowlist()
            .with_kernel(kernel);
        self.handle(Input::EditAllowlist(list));
    }

    pub fn cancel(self: &Rc<Self>, task: EventId) {
        self.handle(Input::Cancel { task, reason: None });
    }

    /// The tab is going away: say so now instead of waiting for the switch.
    pub fn leave(self: &Rc<Self>) {
        if self.state.borrow().machine.node().is_some() {
            self.handle(Input::StopContributing);
        }
    }

    fn publish(&self) {
        let now = self.now();
        let (snapshot, on_change) = {
            let state = self.state.borrow();
            let node = state.machine.node().cloned();
            let ledger = state.machine.ledger();
            let mut view =
                PoolView::build(ledger, node.as_ref(), state.machine.voice_messages(), now);
            if let Some(me) = state.machine.me() {
                reveal_private(&state.private_outputs, &mut view.tasks, ledger, me);
            }
            let snapshot = Snapshot {
                me: state
                    .machine
                    .me()
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
                view,
                node,
                local_jobs: state.jobs.values().cloned().collect(),
                problems: state.problems.values().cloned().collect(),
                history_problem: history_words(state.machine.history_unread()),
                allowlist_problem: state.machine.allowlist_problem().map(str::to_owned),
                theme: Some(state.theme),
                queued_sends: state.machine.queued_sends(),
                allowlist: ledger.allowlist().scripts.clone(),
                kernels: ledger.allowlist().kernels.clone(),
                consent_asks: state.consent_asks.clone(),
                voices: voice_rows(state.machine.ledger(), state.machine.voice_messages(), now),
                worker_notice: state.worker_notice.clone(),
                work_today: work_since(ledger, local_midnight(now)),
            };
            (snapshot, state.on_change.clone())
        };
        on_change(snapshot);
    }
}

async fn wait_ready(ready: js_sys::Promise) -> Result<(), String> {
    let timeout = js_sys::Promise::new(&mut |_resolve, reject: Function| {
        let on_timeout = Closure::once_into_js(move || {
            let _ = reject.call0(&JsValue::NULL);
        });
        let _ = gloo::utils::window().set_timeout_with_callback_and_timeout_and_arguments_0(
            on_timeout.unchecked_ref(),
            READY_TIMEOUT_MS as i32,
        );
    });
    let race = js_sys::Promise::race(&Array::of2(&ready, &timeout));
    wasm_bindgen_futures::JsFuture::from(race).await.map(|_| ()).map_err(|_| {
        "The Matrix client did not answer. Potluck must be opened as a widget in a room (Element: /addwidget).".into()
    })
}

/// This tab's node tag: kept for the tab's life in sessionStorage where the
/// browser allows it (so a reload is the same node), else new each load.
fn node_tag() -> String {
    const KEY: &str = "potluck.node_tag";
    // A widget on another site than its host is refused storage: that throws.
    let storage = gloo::utils::window().session_storage().ok().flatten();
    if let Some(tag) = storage
        .as_ref()
        .and_then(|s| s.get_item(KEY).ok().flatten())
    {
        return tag;
    }
    let tag = format!("{:08x}", (js_sys::Math::random() * u32::MAX as f64) as u32);
    if let Some(storage) = storage {
        let _ = storage.set_item(KEY, &tag);
    }
    tag
}

/// What an event Potluck sends is, for a friend told it was not sent.
fn sent_words(event_type: &str) -> &'static str {
    match event_type {
        event_type::TASK => "your task",
        event_type::ASSIGN => "the work it hands out",
        event_type::RESULT => "your computer's results",
        event_type::PROGRESS => "your computer's progress",
        event_type::CANCEL => "your cancel",
        event_type::NODE => "whether your computer contributes",
        event_type::ALLOWLIST => "the room's allowlist",
        "m.room.message" => "a reply in the chat",
        _ => "a message",
    }
}

/// What the friend is told of a part of the room's past that could not be
/// read (the host's own message goes to the console).
fn unread_words(part: Unread) -> &'static str {
    match part {
        Unread::Nodes => "who contributes",
        Unread::Members => "who has left the room (their computers may still be given work)",
        Unread::Allowlist => {
            "which scripts the room allows (scripts will not run until it changes)"
        }
        Unread::Messages("m.audio") => {
            "voice messages sent before you opened it (new ones will show)"
        }
        Unread::Messages("m.text") => "chat commands sent before you opened it",
        Unread::Messages(_) => "transcripts posted before you opened it",
        Unread::Tasks => "tasks from before you opened it",
    }
}

/// One sentence for everything the widget could not read on open.
fn history_words(unread: &[Unread]) -> Option<String> {
    if unread.is_empty() {
        return None;
    }
    let what: Vec<&str> = unread.iter().map(|&part| unread_words(part)).collect();
    Some(format!(
        "Potluck could not read {}. Reloading the widget may help; if it keeps happening, approve all of Potluck's permissions in your Matrix client.",
        what.join("; nor ")
    ))
}
