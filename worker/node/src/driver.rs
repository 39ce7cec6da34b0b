//! The native node's loop: feeds the same `NodeMachine` the widget drives
//! with what the room, the clock and the workers say, and carries out the
//! actions it returns. No protocol decision is made here.

use crate::room::{self, SendError};
use crate::workers::{JobEvent, Workers};
use crate::{private, status::Status};
use manifest::events::{event_type, Outcome};
use manifest::ids::EventId;
use manifest::limits::NODE_TIMEOUT_MS;
use manifest::node::{Action, HistoryRead, Input, NodeMachine};
use manifest::worker_protocol::JobId;
use matrix_sdk::ruma::events::relation::RelationType;
use matrix_sdk::{Client, Room};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, OnceCell};

/// What reaches the loop from everything it started.
pub enum Event {
    /// Live events from a sync, in the room's order.
    Room(Vec<Value>),
    /// The answer to an action: a send, a read, a decoded recording.
    Input(Box<Input>),
    Job(JobId, JobEvent),
    /// The homeserver scheduled the leave notice (its delay id), or why not.
    LeaveNoticeArmed(Result<String, String>),
    /// Whether the homeserver published the leave notice when asked.
    LeaveNoticeFired(bool),
}

impl Event {
    fn input(input: Input) -> Self {
        Event::Input(Box::new(input))
    }
}

/// Milliseconds since the epoch: the machine's clock, as the homeserver's
/// timestamps count (this machine's clock is assumed to be set by NTP).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub struct Driver {
    pub machine: NodeMachine,
    client: Client,
    room: Room,
    events: mpsc::UnboundedSender<Event>,
    pub workers: Workers,
    delay_id: Option<String>,
    /// Chunks running here: task and chunk, for the log.
    jobs: BTreeMap<JobId, (EventId, u32)>,
    /// Whether the leave notice is still to be published (shutdown).
    pub leaving: bool,
    /// The room's recent timeline, read once for every timeline read on start.
    recent: Arc<OnceCell<Result<Vec<Value>, String>>>,
    pub status: Status,
}

impl Driver {
    pub fn new(
        machine: NodeMachine,
        client: Client,
        room: Room,
        events: mpsc::UnboundedSender<Event>,
        workers: Workers,
    ) -> Self {
        Self {
            machine,
            client,
            room,
            events,
            workers,
            delay_id: None,
            jobs: BTreeMap::new(),
            leaving: false,
            recent: Arc::new(OnceCell::new()),
            status: Status::default(),
        }
    }

    /// The one place inputs enter the machine.
    pub fn handle(&mut self, input: Input) {
        let actions = self.machine.process(input, now_ms());
        for action in actions {
            self.execute(action);
        }
        // Chunks the machine finished itself (a plan) are no longer running here.
        let machine = &self.machine;
        self.jobs.retain(|&job, _| machine.runs(job));
    }

    pub fn on_event(&mut self, event: Event) {
        match event {
            Event::Room(events) => {
                for event in events {
                    let input = Input::from_room_message(&event).unwrap_or(Input::RoomEvent(event));
                    self.handle(input);
                }
            }
            Event::Input(input) => self.handle(*input),
            Event::Job(job, JobEvent::Progress(done)) => {
                self.handle(Input::WorkerProgress { job, done });
            }
            Event::Job(job, JobEvent::Finished(finished)) => {
                let outcome = match finished {
                    Ok(output) => {
                        self.status.chunks_done += 1;
                        Outcome::Output(output.into())
                    }
                    Err(reason) => {
                        tracing::warn!(job, %reason, "a chunk failed");
                        Outcome::Error {
                            reason,
                            retriable: false,
                        }
                    }
                };
                self.jobs.remove(&job);
                self.handle(Input::WorkerFinished { job, outcome });
            }
            Event::LeaveNoticeFired(fired) => {
                self.leaving = false;
                if !fired {
                    // Sent as an ordinary event instead.
                    self.handle(Input::LeaveNoticeNotFired);
                }
            }
            Event::LeaveNoticeArmed(Ok(id)) => self.delay_id = Some(id),
            Event::LeaveNoticeArmed(Err(e)) => tracing::warn!(
                "the homeserver did not take the leave notice ({e}): if this node is killed, friends see it in the pool until its leases time out"
            ),
        }
    }

    /// Chunks running on this machine now.
    pub fn running(&self) -> usize {
        self.jobs.len()
    }

    /// Runs `work` on a tokio task and feeds its answer back to the loop.
    fn spawn<F>(&self, work: F)
    where
        F: std::future::Future<Output = Option<Event>> + Send + 'static,
    {
        let events = self.events.clone();
        tokio::spawn(async move {
            if let Some(event) = work.await {
                let _ = events.send(event);
            }
        });
    }

    fn execute(&mut self, action: Action) {
        let (room, client) = (self.room.clone(), self.client.clone());
        match action {
            Action::Send { request, out } => {
                self.spawn(async move {
                    Some(Event::Input(Box::new(
                        match room::send(&room, &out).await {
                            Ok(()) => Input::Sent { request },
                            Err(SendError {
                                retry_after_ms,
                                permanent,
                                reason,
                            }) => {
                                tracing::warn!(event = out.event_type, %reason, "not sent");
                            if permanent && out.event_type == event_type::NODE {
                                tracing::error!("the room does not let this account announce its node: a room admin must allow the org.potluck.node state event to members (power level 0; README, 'Adding Potluck to a real Element room', step 4)");
                            }
                                Input::SendFailed {
                                    request,
                                    retry_after_ms,
                                    permanent,
                                    reason,
                                }
                            }
                        },
                    )))
                });
            }
            Action::ArmDeadManSwitch { gone, .. } => self.spawn(async move {
                let armed = room::arm_delayed(&room, &gone, NODE_TIMEOUT_MS).await;
                Some(Event::LeaveNoticeArmed(armed))
            }),
            Action::RestartDeadManSwitch => {
                if let Some(id) = self.delay_id.clone() {
                    self.spawn(async move {
                        // If it already fired, the machine sees the node gone and announces again.
                        if let Err(e) = room::update_delayed(&client, &id, false).await {
                            tracing::warn!("heartbeat: {e}");
                        }
                        None
                    });
                }
            }
            Action::FireDeadManSwitch => {
                let id = self.delay_id.take();
                self.leaving = true;
                self.spawn(async move {
                    let fired = match id {
                        Some(id) => room::update_delayed(&client, &id, true).await.is_ok(),
                        None => false,
                    };
                    Some(Event::LeaveNoticeFired(fired))
                });
            }
            Action::RunChunk {
                job,
                task,
                chunk,
                work,
                ..
            } => {
                tracing::info!(task = %task, chunk, kind = work.name(), "running a chunk");
                self.jobs.insert(job, (task, chunk));
                match work {
                    // Runs once its audio is decoded: `Action::RunTranscription`.
                    manifest::task_kind::TaskKind::Transcribe(_) => {}
                    work => self.workers.run_chunk(job, work),
                }
            }
            Action::AbortJob { job } => {
                self.jobs.remove(&job);
                self.workers.abort(job);
            }
            Action::DecodeAudio { audio } => self.spawn(async move {
                let message = audio.message.clone();
                let samples = match room::download_audio(&client, &audio).await {
                    Ok(bytes) => tokio::task::spawn_blocking(move || {
                        potluck_worker::audio::for_whisper(&bytes)
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("decoding stopped: {e}"))),
                    Err(reason) => Err(reason),
                };
                Some(Event::input(Input::AudioDecoded { message, samples }))
            }),
            Action::RunTranscription {
                job,
                work,
                samples,
                previous,
            } => self.workers.transcribe(job, work, samples, previous),
            Action::PrepareModel { model } => self.workers.warm(model),
            // The node announces that it runs no scripts, so none is assigned
            // to it; should one be, it is declined, which the room hears.
            Action::AskConsent { script } => {
                tracing::warn!(script = %script.name, "declined a browser script: a native node runs none");
                self.handle(Input::ScriptConsent {
                    integrity: script.integrity,
                    allow: false,
                });
            }
            Action::SendToDevice { user, content } => self.spawn(async move {
                if let Err(e) = private::send(&client, &user, &content).await {
                    tracing::warn!(user = %user, "a private result was not sent: {e}");
                }
                None
            }),
            Action::ReadHistory { read } => {
                let recent = self.recent.clone();
                self.spawn(async move {
                    let events = read_history(&room, &read, &recent).await;
                    if let Err(e) = &events {
                        tracing::warn!(?read, "could not read the room's past: {e}");
                    }
                    Some(Event::input(Input::HistoryRead { read, events }))
                });
            }
            Action::ReadThread { root } => self.spawn(async move {
                let replies =
                    room::read_relations(&room, root.as_str(), RelationType::Thread).await;
                Some(Event::input(Input::ThreadRead { root, replies }))
            }),
            // Every event of the room comes here, not only Potluck's.
            Action::Rejected(rejection) => tracing::debug!("ignored an event: {rejection}"),
        }
    }
}

async fn read_history(
    room: &Room,
    read: &HistoryRead,
    recent: &OnceCell<Result<Vec<Value>, String>>,
) -> Result<Vec<Value>, String> {
    match read {
        HistoryRead::State {
            event_type,
            state_key,
        } => room::read_state(room, event_type, *state_key).await,
        HistoryRead::Timeline {
            event_type,
            msgtype,
        } => {
            let recent = recent
                .get_or_init(|| room::read_recent(room))
                .await
                .clone()?;
            Ok(recent
                .into_iter()
                .filter(|e| e["type"] == *event_type)
                .filter(|e| msgtype.is_none_or(|m| e["content"]["msgtype"] == m))
                .collect())
        }
        HistoryRead::References { task } => {
            room::read_relations(room, task.as_str(), RelationType::Reference).await
        }
    }
}
