//! The node state machine: the one door between the browser and the protocol.
//!
//! The widget feeds it what happened (`Input`: a room event, a timer tick, a
//! worker's answer, a click) with the current homeserver time, and carries out
//! what it returns (`Action`: send an event, arm the dead-man switch, run a
//! chunk in a worker). It never waits, never reads a clock and never does I/O.

use crate::allowlist::AllowedScript;
use crate::commands;
use crate::events::{
    event_type, Assignment, ChatCommand, ChunkOutcome, ChunkProgress, NodeCaps, Outcome, Outgoing,
    PotluckEvent, TaskSpec,
};
use crate::ids::{EventId, NodeId, UserId};
use crate::ledger::{Lease, Ledger, TaskRecord, TaskStatus};
use crate::limits::{
    COMMAND_MAX_AGE_MS, COORDINATOR_SETTLE_MS, HEARTBEAT_MS, MAX_ASSIGNMENTS_PER_EVENT,
    MAX_CONTENT_BYTES, MAX_INLINE_OUTPUT_BYTES, PROGRESS_EVERY_MS, RESEND_AFTER_MS,
    RESULT_BATCH_MS, RETRY_AFTER_REFUSAL_MS,
};
use crate::rate::RateBudget;
use crate::scheduler::{self, InFlight};
use crate::task_kind::TaskKind;
use crate::transcription::Transcript;
use crate::validate::{check_matrix_json, parse_task, Rejection};
use crate::voice::{self, VoiceMessage};
use crate::worker_protocol::JobId;
use crate::{private, seal};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An event from the room (live, read back from the timeline or relations).
    RoomEvent(Value),
    /// Several events read back at once (a task's relations, the room's state),
    /// in any order: cheaper than one by one when they arrive late.
    RoomEvents(Vec<Value>),
    /// Time passed; check leases, heartbeats and batches.
    Tick,
    StartContributing {
        node: NodeId,
        caps: NodeCaps,
    },
    StopContributing,
    Submit(TaskSpec),
    Cancel {
        task: EventId,
        reason: Option<String>,
    },
    WorkerFinished {
        job: JobId,
        outcome: Outcome,
    },
    /// A worker says how far it got (0 to 1). Reported to the room only for
    /// long chunks, to keep their leases (see `limits::PROGRESS_EVERY_MS`).
    WorkerProgress {
        job: JobId,
        done: f32,
    },
    /// The friend's answer to `Action::AskConsent`. Declining is announced in
    /// the node's capabilities, so the coordinator sends that script elsewhere.
    ScriptConsent {
        integrity: String,
        allow: bool,
    },
    /// A chat message in the room (`m.room.message`); `!run` commands start
    /// tasks, anything else is ignored.
    ChatMessage {
        event_id: EventId,
        sender: UserId,
        body: String,
        /// The homeserver's timestamp of the message.
        sent_at: u64,
        /// The message it replies to: what `!transcribe` transcribes.
        reply_to: Option<EventId>,
    },
    /// A voice message (or other audio) in the room: a friend may ask for
    /// its transcript, in the widget or with a `!transcribe` reply.
    AudioMessage(VoiceMessage),
    /// A transcript reply seen in the room: that task is answered, if the
    /// sender is one of the nodes that ran it (see `counts_as_reply`).
    TranscriptPosted {
        task: EventId,
        sender: UserId,
    },
    /// The replies in a voice message's thread, as the host read them for
    /// `Action::ReadThread` (hosts do not feed thread replies live), or why
    /// they could not be read.
    ThreadRead {
        root: EventId,
        replies: Result<Vec<Value>, String>,
    },
    /// The host took an event and returned its id: it is in the room.
    Sent {
        out: Outgoing,
    },
    /// The host or homeserver did not take an event (rate limit, timeout,
    /// network). It is sent again; the ledger ignores any duplicate.
    SendFailed {
        out: Outgoing,
        retry_after_ms: Option<u64>,
    },
}

impl Input {
    /// A room message (`m.room.message`) as the machine's input: a voice
    /// message, a transcript reply, or chat (where commands come from).
    /// `None` for any other event, or a message without the fields chat has.
    pub fn from_room_message(event: &Value) -> Option<Input> {
        if event.get("type")?.as_str()? != voice::REPLY_EVENT_TYPE {
            return None;
        }
        if let Some(message) = VoiceMessage::from_event(event) {
            return Some(Input::AudioMessage(message));
        }
        if let Some(task) = voice::replied_task(event) {
            let sender = UserId::parse(event.get("sender")?.as_str()?).ok()?;
            return Some(Input::TranscriptPosted { task, sender });
        }
        Some(Input::ChatMessage {
            event_id: EventId::parse(event.get("event_id")?.as_str()?).ok()?,
            sender: UserId::parse(event.get("sender")?.as_str()?).ok()?,
            body: event.get("content")?.get("body")?.as_str()?.to_owned(),
            sent_at: event.get("origin_server_ts")?.as_u64()?,
            reply_to: voice::reply_to(event),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Send(Outgoing),
    /// Schedule `node_gone` as a delayed state event, published by the
    /// homeserver if the node stops restarting it.
    ArmDeadManSwitch {
        node: NodeId,
        gone: Outgoing,
    },
    RestartDeadManSwitch,
    /// Publish the node's departure now (the user switched contributing off);
    /// `gone` is what the switch says, to send directly if it cannot fire.
    FireDeadManSwitch {
        gone: Outgoing,
    },
    RunChunk {
        job: JobId,
        task: EventId,
        chunk: u32,
        attempt: u32,
        work: TaskKind,
    },
    AbortJob {
        job: JobId,
    },
    /// Show the friend a script the room allowed, before their machine first
    /// runs it; they answer with `Input::ScriptConsent`.
    AskConsent {
        script: AllowedScript,
    },
    /// Send a private chunk output to the submitter's devices (see `private`).
    SendToDevice {
        user: UserId,
        content: Value,
    },
    /// Read the replies in this voice message's thread and hand them back as
    /// `Input::ThreadRead`: before a transcript is posted, and after a send
    /// that failed (it may have landed), so that it is never posted twice.
    ReadThread {
        root: EventId,
    },
    /// An event was not accepted; log it, nothing else to do.
    Rejected(Rejection),
}

#[derive(Debug, Clone)]
struct Contribution {
    node: NodeId,
    caps: NodeCaps,
    /// When the announcement was last sent (not yet seen back: `None` means "send it").
    announced_at: Option<u64>,
    last_heartbeat: u64,
    /// Another member wrote this node's state key: put it back.
    overwritten: bool,
    /// Since when it says it is online: kept from its first announcement,
    /// so that putting its state back keeps its seniority even before the
    /// first announcement came back.
    since: Option<u64>,
}

impl Contribution {
    /// What its dead-man switch says: gone, and since when it was online.
    fn leave_notice(&self) -> Outgoing {
        match self.since {
            Some(since) => Outgoing::node_gone_after(&self.node, since, &self.caps),
            None => Outgoing::node_gone(&self.node),
        }
    }
}

#[derive(Debug, Clone)]
struct RunningChunk {
    task: EventId,
    chunk: u32,
    attempt: u32,
    done: f32,
    /// When progress on this chunk was last sent to the room.
    reported_at: Option<u64>,
    started_at: u64,
}

#[derive(Debug, Clone)]
struct FinishedChunk {
    task: EventId,
    outcome: ChunkOutcome,
    /// The chunk split its task: its result waits until the part it added
    /// is in the ledger, so that no node sees the task done without it.
    awaits_part: bool,
    finished_at: u64,
    /// Sent at, waiting to see it accepted in the ledger.
    sent_at: Option<u64>,
}

#[derive(Debug, Default)]
pub struct NodeMachine {
    me: Option<UserId>,
    ledger: Ledger,
    contribution: Option<Contribution>,
    running: BTreeMap<JobId, RunningChunk>,
    finished: Vec<FinishedChunk>,
    /// Assignments sent and not yet seen back: (task, chunk, node) → (attempt, sent at).
    assigning: BTreeMap<(EventId, u32, NodeId), (u32, u64)>,
    outbox: VecDeque<Outgoing>,
    budget: RateBudget,
    /// Whether this node's results go before its assignments at the next
    /// send: the two take turns (see `step`).
    results_first: bool,
    next_job: JobId,
    submitted: u64,
    /// Scripts (by integrity) the friend agreed to run, and those already put to them.
    approved: BTreeSet<String>,
    asked: BTreeSet<String>,
    /// `!run` and `!transcribe` messages not yet started as tasks.
    commands: BTreeMap<EventId, PendingCommand>,
    /// The audio messages this node has seen, by event id.
    voices: BTreeMap<EventId, VoiceMessage>,
    /// Where each finished transcription's reply stands.
    replies: BTreeMap<EventId, ReplyState>,
}

/// A transcription's reply, as this node knows it. A reply is posted only
/// after its thread was read and found without one, and posted again only
/// after a send that failed and a second read of the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyState {
    /// The thread is being read (asked at `since`).
    Checking { since: u64 },
    /// The thread had no reply: queued or handed to the host, until the host
    /// says it was sent (`Input::Sent`) or failed (`Input::SendFailed`).
    Sending,
    /// In the room: seen there, or the host confirmed the send.
    Posted,
}

/// A friend's answer about running a kind of work on their machine.
enum Consent {
    Given,
    Declined,
    /// Not answered yet; the script to show them, if they were not asked already.
    Pending(Option<AllowedScript>),
}

#[derive(Debug, Clone)]
struct PendingCommand {
    sender: UserId,
    body: String,
    sent_at: u64,
    reply_to: Option<EventId>,
    /// When this node submitted its task, if it did (not yet seen back).
    submitted_at: Option<u64>,
}

impl NodeMachine {
    pub fn new(me: UserId) -> Self {
        Self {
            me: Some(me),
            ..Self::default()
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
    pub fn me(&self) -> Option<&UserId> {
        self.me.as_ref()
    }
    pub fn node(&self) -> Option<&NodeId> {
        self.contribution.as_ref().map(|c| &c.node)
    }
    /// Events waiting for send budget.
    pub fn queued_sends(&self) -> usize {
        self.outbox.len()
    }
    /// The room's audio messages this node has seen, oldest first.
    pub fn voice_messages(&self) -> impl Iterator<Item = &VoiceMessage> {
        let mut voices: Vec<&VoiceMessage> = self.voices.values().collect();
        voices.sort_by_key(|v| (v.sent_at, &v.event_id));
        voices.into_iter()
    }

    pub fn process(&mut self, input: Input, now: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::RoomEvent(raw) => {
                if let Some(redacted) = redacted_by(&raw) {
                    self.redact(&redacted);
                } else {
                    self.notice_overwrite(&raw);
                    if let Err(rejection) = self.ledger.ingest(&raw) {
                        actions.push(Action::Rejected(rejection));
                    }
                }
            }
            Input::RoomEvents(raws) => {
                raws.iter().for_each(|raw| self.notice_overwrite(raw));
                let rejections = self.ledger.ingest_all(&raws);
                actions.extend(rejections.into_iter().map(Action::Rejected));
            }
            Input::Tick => {}
            Input::StartContributing { node, caps } => {
                self.contribution = Some(Contribution {
                    node,
                    caps,
                    announced_at: None,
                    last_heartbeat: now,
                    overwritten: false,
                    since: None,
                });
            }
            Input::StopContributing => {
                if let Some(c) = self.contribution.take() {
                    actions.push(Action::FireDeadManSwitch {
                        gone: c.leave_notice(),
                    });
                }
                actions.extend(self.running.keys().map(|&job| Action::AbortJob { job }));
                self.running.clear();
                self.finished.clear();
                self.assigning.clear();
            }
            Input::Submit(mut spec) => {
                // A resend after a timeout must not make a second task.
                self.submitted += 1;
                spec.nonce
                    .get_or_insert_with(|| format!("{now:x}-{}", self.submitted));
                self.queue_task(spec, &mut actions);
            }
            Input::Cancel { task, reason } => self
                .outbox
                .push_back(Outgoing::cancel(&task, reason.as_deref())),
            Input::ChatMessage {
                event_id,
                sender,
                body,
                sent_at,
                reply_to,
            } => {
                let fresh = now.saturating_sub(sent_at) <= COMMAND_MAX_AGE_MS;
                let is_command = commands::is_command(&body) || voice::is_command(&body);
                if is_command {
                    self.ledger
                        .note_chat_command(event_id.clone(), sender.clone(), sent_at);
                }
                if is_command && fresh && self.ledger.task_for_command(&event_id).is_none() {
                    self.commands.entry(event_id).or_insert(PendingCommand {
                        sender,
                        body,
                        sent_at,
                        reply_to,
                        submitted_at: None,
                    });
                }
            }
            Input::AudioMessage(message) => {
                self.voices.insert(message.event_id.clone(), message);
            }
            Input::TranscriptPosted { task, sender } => {
                if self.counts_as_reply(&task, &sender) {
                    self.replies.insert(task, ReplyState::Posted);
                }
            }
            Input::ThreadRead { root, replies } => self.thread_read(&root, replies, now),
            Input::Sent { out } => {
                if let Some(task) = reply_task(&out) {
                    self.replies.insert(task, ReplyState::Posted);
                }
            }
            Input::ScriptConsent { integrity, allow } => {
                if allow {
                    self.approved.insert(integrity);
                } else if let Some(c) = self.contribution.as_mut() {
                    if !c.caps.declined.contains(&integrity) {
                        c.caps.declined.push(integrity);
                        self.outbox
                            .push_back(Outgoing::node_online_since(&c.node, &c.caps, c.since));
                    }
                }
            }
            Input::SendFailed {
                out,
                retry_after_ms,
            } => {
                self.budget.pause_until(
                    now.saturating_add(retry_after_ms.unwrap_or(RETRY_AFTER_REFUSAL_MS)),
                );
                self.retry(out);
            }
            Input::WorkerProgress { job, done } => {
                if let Some(run) = self.running.get_mut(&job) {
                    run.done = done.clamp(0.0, 1.0);
                }
                // Workers report often; what follows from it waits for the next tick.
                return actions;
            }
            Input::WorkerFinished { job, outcome } => {
                let outcome = fit_inline(outcome);
                if let Some(run) = self.running.remove(&job) {
                    let outcome = self.seal_if_private(&run, outcome, &mut actions);
                    let part = match &outcome {
                        Outcome::Output(output) => self.part_after(&run.task, output),
                        Outcome::Error { .. } => None,
                    };
                    let awaits_part = part.is_some();
                    if let Some(part) = part {
                        self.queue_task(part, &mut actions);
                    }
                    self.finished.push(FinishedChunk {
                        awaits_part,
                        task: run.task,
                        outcome: ChunkOutcome {
                            chunk: run.chunk,
                            attempt: run.attempt,
                            outcome,
                            compute_ms: Some(now.saturating_sub(run.started_at)),
                        },
                        finished_at: now,
                        sent_at: None,
                    });
                }
            }
        }
        self.step(now, &mut actions);
        actions
    }

    /// Someone else wrote this node's state key (any member may send node
    /// state): every ledger refuses it, but the room's current state now
    /// holds it, and a tab opening later reads only current state. So the
    /// node announces itself again at once, putting its own state back.
    fn notice_overwrite(&mut self, raw: &Value) {
        let Some(c) = self.contribution.as_mut() else {
            return;
        };
        let mine = raw["type"] == event_type::NODE && raw["state_key"] == c.node.as_str();
        let by_other = raw["sender"].as_str() != self.me.as_ref().map(UserId::as_str);
        if mine && by_other {
            c.overwritten = true;
        }
    }

    /// A member redacted one of the room's events: the ledger forgets it (a
    /// tab opening later reads it without content, and refuses it too). If
    /// it was this node's own announcement, the node makes it again.
    fn redact(&mut self, event_id: &EventId) {
        let Some(removed) = self.ledger.redact(event_id) else {
            return;
        };
        if let (PotluckEvent::NodeOnline { node, .. }, Some(c)) =
            (&removed.event, self.contribution.as_mut())
        {
            if node == &c.node {
                c.overwritten = true;
            }
        }
    }

    /// Puts a refused event back in line: submissions, cancels and node state
    /// as they were; assignments and results are rebuilt from the ledger.
    fn retry(&mut self, out: Outgoing) {
        // A transcript reply that failed may still have landed: it goes out
        // again only once its thread was read and found without it.
        if let Some(task) = reply_task(&out) {
            self.replies.remove(&task);
            return;
        }
        let task = out.content["m.relates_to"]["event_id"]
            .as_str()
            .and_then(|id| EventId::parse(id).ok());
        let chunks = |key: &str| -> Vec<u32> {
            out.content[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["chunk"].as_u64())
                .map(|c| c as u32)
                .collect()
        };
        match (out.event_type, task) {
            (event_type::ASSIGN, Some(task)) => {
                let refused: Vec<Assignment> =
                    serde_json::from_value(out.content["assignments"].clone()).unwrap_or_default();
                self.assigning.retain(|(t, chunk, node), _| {
                    t != &task || !refused.iter().any(|a| a.chunk == *chunk && &a.node == node)
                });
            }
            // Progress is sent again when next due, from what the workers say then.
            (event_type::PROGRESS, Some(task)) => {
                for run in self.running.values_mut().filter(|r| r.task == task) {
                    run.reported_at = None;
                }
            }
            (event_type::RESULT, Some(task)) => {
                let refused = chunks("outcomes");
                for f in self
                    .finished
                    .iter_mut()
                    .filter(|f| f.task == task && refused.contains(&f.outcome.chunk))
                {
                    f.sent_at = None;
                }
            }
            _ => self.outbox.push_front(out),
        }
    }

    /// The part a chunk's output asks to add to its task.
    fn part_after(&self, task: &EventId, output: &Value) -> Option<TaskSpec> {
        self.ledger.task(task)?.spec.part_after(task, output)
    }

    /// Everything that follows from the current state: the same after any input.
    fn step(&mut self, now: u64, actions: &mut Vec<Action>) {
        self.keep_alive(now, actions);
        self.abort_obsolete(now, actions);
        self.start_assigned(now, actions);
        // Assignments keep the whole pool busy, and results that wait for send
        // budget only grow their batch; but a coordinator's own results are
        // what frees its own queue, and its account carries both. They take
        // turns, or the coordinator's worker waits for room in its queue.
        for results in [self.results_first, !self.results_first] {
            let before = actions.len();
            if results {
                self.send_results(now, actions);
            } else {
                self.coordinate(now, actions);
            }
            if actions.len() > before {
                self.results_first = !results;
            }
        }
        self.start_commands(now, actions);
        self.post_transcripts(now, actions);
        self.report_progress(now, actions);
        while !self.outbox.is_empty() && self.budget.try_take(now) {
            if let Some(out) = self.outbox.pop_front() {
                actions.push(Action::Send(out));
            }
        }
    }

    fn keep_alive(&mut self, now: u64, actions: &mut Vec<Action>) {
        let Some(c) = self.contribution.as_mut() else {
            return;
        };
        let seen_online = self.ledger.node(&c.node).is_some_and(|n| n.online);
        let announce_due = match c.announced_at {
            None => true,
            // Not seen back, or the homeserver announced us gone while we live
            // (a throttled tab missed heartbeats): announce again.
            Some(at) => !seen_online && now >= at + RESEND_AFTER_MS,
        };
        if (announce_due || c.overwritten) && self.budget.try_take(now) {
            if announce_due && self.ledger.node(&c.node).is_some_and(|n| !n.online) {
                // The room saw it go: it is online again from now.
                c.since = None;
            }
            let since = *c.since.get_or_insert(now);
            actions.push(Action::Send(Outgoing::node_online_since(
                &c.node,
                &c.caps,
                Some(since),
            )));
            c.overwritten = false;
            if !announce_due {
                // Only its overwritten state is put back: its dead-man switch still runs.
                return;
            }
            actions.push(Action::ArmDeadManSwitch {
                node: c.node.clone(),
                gone: c.leave_notice(),
            });
            c.announced_at = Some(now);
            c.last_heartbeat = now;
        } else if c.announced_at.is_some() && now >= c.last_heartbeat + HEARTBEAT_MS {
            actions.push(Action::RestartDeadManSwitch);
            c.last_heartbeat = now;
        }
    }

    /// Stops work nobody needs any more: done elsewhere, cancelled or failed.
    fn abort_obsolete(&mut self, now: u64, actions: &mut Vec<Action>) {
        let ledger = &self.ledger;
        let obsolete: Vec<JobId> = self
            .running
            .iter()
            .filter(|(_, run)| {
                ledger.task(&run.task).is_none_or(|task| {
                    ledger.task_status(task, now).is_terminal()
                        || task
                            .chunks
                            .get(run.chunk as usize)
                            .is_none_or(|c| c.done.is_some() || c.failed.is_some())
                })
            })
            .map(|(&job, _)| job)
            .collect();
        for job in obsolete {
            self.running.remove(&job);
            actions.push(Action::AbortJob { job });
        }
    }

    /// Runs chunks the coordinator gave this node, up to its slots.
    fn start_assigned(&mut self, now: u64, actions: &mut Vec<Action>) {
        let Some(c) = &self.contribution else { return };
        if self.running.len() >= c.caps.slots as usize {
            return;
        }
        // Queued chunks start in the scheduler's fairness order: the friend
        // with the fewest chunks in the pool first, then the oldest lease.
        let held = scheduler::running_by_submitter(&self.ledger, now);
        let mut starts = Vec::new();
        let mut declined = Vec::new();
        let mut asks: Vec<AllowedScript> = Vec::new();
        for task in self.ledger.tasks() {
            if self.ledger.task_status(task, now).is_terminal() {
                continue;
            }
            for (index, chunk) in task.chunks.iter().enumerate() {
                let leases = self.ledger.held_leases(chunk, now);
                let Some(lease) = leases.iter().find(|l| l.node == c.node) else {
                    continue;
                };
                let index = index as u32;
                let already = self
                    .running
                    .values()
                    .any(|r| r.task == task.id && r.chunk == index)
                    || self.finished.iter().any(|f| {
                        f.task == task.id
                            && f.outcome.chunk == index
                            && f.outcome.attempt == lease.attempt
                    });
                if already {
                    continue;
                }
                match self.consent(&task.spec.kind, &c.caps) {
                    Consent::Given => {}
                    Consent::Declined => {
                        // Give the lease back at once, so another node runs it.
                        declined.push(FinishedChunk {
                            task: task.id.clone(),
                            outcome: ChunkOutcome {
                                chunk: index,
                                attempt: lease.attempt,
                                outcome: Outcome::Error {
                                    reason: "the contributor declined this script".into(),
                                    retriable: true,
                                },
                                compute_ms: None,
                            },
                            awaits_part: false,
                            finished_at: now,
                            sent_at: None,
                        });
                        continue;
                    }
                    Consent::Pending(ask) => {
                        asks.extend(ask);
                        continue;
                    }
                }
                let share = held.get(&task.submitter).copied().unwrap_or(0);
                starts.push((
                    (share, lease.granted_at),
                    task.id.clone(),
                    index,
                    lease.attempt,
                    task.spec.kind.chunk(index, task.spec.chunks),
                ));
            }
        }
        self.finished.extend(declined);
        for script in asks {
            if self.asked.insert(script.integrity.clone()) {
                actions.push(Action::AskConsent { script });
            }
        }
        starts.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        for (_, task, chunk, attempt, work) in starts {
            if self.running.len() >= c.caps.slots as usize {
                break;
            }
            let job = self.next_job;
            self.next_job += 1;
            self.running.insert(
                job,
                RunningChunk {
                    task: task.clone(),
                    chunk,
                    attempt,
                    done: 0.0,
                    reported_at: None,
                    started_at: now,
                },
            );
            actions.push(Action::RunChunk {
                job,
                task,
                chunk,
                attempt,
                work,
            });
        }
    }

    /// Whether the friend lets this machine run work of this kind: only
    /// friends' scripts need a yes, once per script.
    fn consent(&self, kind: &TaskKind, caps: &NodeCaps) -> Consent {
        let TaskKind::Script(script) = kind else {
            return Consent::Given;
        };
        if caps.declined.contains(&script.integrity) {
            return Consent::Declined;
        }
        if self.approved.contains(&script.integrity) {
            return Consent::Given;
        }
        let not_yet_asked = !self.asked.contains(&script.integrity);
        let ask = self
            .ledger
            .allowlist()
            .allows(script)
            .ok()
            .filter(|_| not_yet_asked)
            .cloned();
        Consent::Pending(ask)
    }

    /// Batches finished chunks per task into one result event.
    fn send_results(&mut self, now: u64, actions: &mut Vec<Action>) {
        let Some(c) = &self.contribution else { return };
        let ledger = &self.ledger;
        // Seen back in the ledger (accepted, or the chunk settled otherwise): done.
        self.finished.retain(|f| {
            let Some(task) = ledger.task(&f.task) else {
                return true;
            };
            let Some(chunk) = task.chunks.get(f.outcome.chunk as usize) else {
                return false;
            };
            let settled =
                chunk.done.is_some() || chunk.failed.is_some() || task.cancelled.is_some();
            let released = !chunk
                .leases
                .iter()
                .any(|l| l.node == c.node && l.attempt == f.outcome.attempt);
            !(settled || (f.sent_at.is_some() && released))
        });
        let mut due: BTreeMap<EventId, Vec<usize>> = BTreeMap::new();
        for (i, f) in self.finished.iter().enumerate() {
            let part_seen = || ledger.task(&f.task).is_some_and(|t| !t.children.is_empty());
            if f.awaits_part && !part_seen() {
                continue;
            }
            let waiting_to_send = f.sent_at.is_none() && now >= f.finished_at + RESULT_BATCH_MS;
            let resend = f.sent_at.is_some_and(|at| now >= at + RESEND_AFTER_MS);
            if waiting_to_send || resend {
                due.entry(f.task.clone()).or_default().push(i);
            }
        }
        for (task, indices) in due {
            for indices in fit_in_events(&indices, |i| &self.finished[i].outcome) {
                if !self.budget.try_take(now) {
                    return;
                }
                let outcomes: Vec<ChunkOutcome> = indices
                    .iter()
                    .map(|&i| self.finished[i].outcome.clone())
                    .collect();
                for &i in &indices {
                    self.finished[i].sent_at = Some(now);
                }
                actions.push(Action::Send(Outgoing::result(&task, &c.node, &outcomes)));
            }
        }
    }

    /// Reports progress on chunks whose leases would otherwise expire, one event
    /// per task. Short chunks finish before any report is due and cost nothing.
    fn report_progress(&mut self, now: u64, actions: &mut Vec<Action>) {
        let Some(c) = &self.contribution else { return };
        let ledger = &self.ledger;
        let mut due: BTreeMap<EventId, Vec<JobId>> = BTreeMap::new();
        for (&job, run) in &self.running {
            let Some(lease) = lease_of(ledger, run, &c.node) else {
                continue;
            };
            let since = lease.renewed_at.max(run.reported_at.unwrap_or(0));
            if now >= since.saturating_add(PROGRESS_EVERY_MS) {
                due.entry(run.task.clone()).or_default().push(job);
            }
        }
        for (task, jobs) in due {
            if !self.budget.try_take(now) {
                break;
            }
            let mut chunks = Vec::new();
            for job in jobs {
                if let Some(run) = self.running.get_mut(&job) {
                    run.reported_at = Some(now);
                    chunks.push(ChunkProgress {
                        chunk: run.chunk,
                        attempt: run.attempt,
                        percent: (run.done * 100.0).round() as u8,
                    });
                }
            }
            actions.push(Action::Send(Outgoing::progress(&task, &c.node, &chunks)));
        }
    }

    /// This node is the coordinator, and has been online long enough to
    /// have seen older nodes' announcements.
    fn coordinating(&self, now: u64) -> bool {
        let Some(c) = &self.contribution else {
            return false;
        };
        let settled = self
            .ledger
            .node(&c.node)
            .is_some_and(|n| now >= n.since.saturating_add(COORDINATOR_SETTLE_MS));
        settled && self.ledger.coordinator() == Some(&c.node)
    }

    /// The coordinator turns `!run` messages into tasks, once each.
    fn start_commands(&mut self, now: u64, actions: &mut Vec<Action>) {
        let ledger = &self.ledger;
        self.commands.retain(|id, c| {
            ledger.task_for_command(id).is_none()
                && now.saturating_sub(c.sent_at) <= COMMAND_MAX_AGE_MS
        });
        if !self.coordinating(now) {
            return;
        }
        let mut specs = Vec::new();
        let mut refused = Vec::new();
        for (id, c) in &mut self.commands {
            if c.submitted_at.is_some_and(|at| now < at + RESEND_AFTER_MS) {
                continue;
            }
            let command = ChatCommand {
                event_id: id.clone(),
                sender: c.sender.clone(),
            };
            let parsed = if voice::is_command(&c.body) {
                transcribe_command(&c.body, c.reply_to.as_ref(), &self.voices, command)
            } else {
                commands::parse_run(&c.body, self.ledger.allowlist(), command)
            };
            match parsed {
                Ok(spec) => {
                    c.submitted_at = Some(now);
                    specs.push(spec);
                }
                Err(reason) => refused.push((id.clone(), reason)),
            }
        }
        for (id, reason) in refused {
            self.commands.remove(&id);
            actions.push(Action::Rejected(Rejection {
                event_id: Some(id.to_string()),
                reason: format!("the chat command was not run: {reason}"),
            }));
        }
        for spec in specs {
            self.queue_task(spec, actions);
        }
    }

    /// The coordinator answers each finished transcription in the voice
    /// message's thread, once. Hosts do not feed thread replies back live, so
    /// the thread is read first (`Action::ReadThread`); the reply is queued
    /// only if the thread has none (see `thread_read`). Only recent ones: an
    /// older task's reply may be beyond what the host lets this node read.
    fn post_transcripts(&mut self, now: u64, actions: &mut Vec<Action>) {
        if !self.coordinating(now) {
            return;
        }
        let ledger = &self.ledger;
        let mut reads = Vec::new();
        for task in ledger.tasks() {
            let Some(message) = transcription_root(task) else {
                continue;
            };
            let due = match self.replies.get(&task.id) {
                None => true,
                // The host never answered: read again.
                Some(ReplyState::Checking { since }) => {
                    now >= since.saturating_add(RESEND_AFTER_MS)
                }
                Some(ReplyState::Sending | ReplyState::Posted) => false,
            };
            // Checked before the status, which merges the whole transcript.
            let recent = || now.saturating_sub(last_activity(ledger, task)) <= COMMAND_MAX_AGE_MS;
            if due && recent() && ledger.task_status(task, now).is_terminal() {
                reads.push((task.id.clone(), message.clone()));
            }
        }
        for (task, root) in reads {
            self.replies
                .insert(task, ReplyState::Checking { since: now });
            actions.push(Action::ReadThread { root });
        }
    }

    /// A thread was read: replies in it count (`counts_as_reply`), and each
    /// transcription of its message still without one gets its reply queued.
    fn thread_read(&mut self, root: &EventId, replies: Result<Vec<Value>, String>, now: u64) {
        // Unreadable: the transcription stays `Checking` and is read again later.
        let Ok(replies) = replies else { return };
        for reply in &replies {
            if let Some(Input::TranscriptPosted { task, sender }) = Input::from_room_message(reply)
            {
                if self.counts_as_reply(&task, &sender) {
                    self.replies.insert(task, ReplyState::Posted);
                }
            }
        }
        let checking: Vec<EventId> = self
            .replies
            .iter()
            .filter(|(_, state)| matches!(state, ReplyState::Checking { .. }))
            .map(|(task, _)| task.clone())
            .collect();
        for task in checking {
            let Some(record) = self.ledger.task(&task) else {
                continue;
            };
            if transcription_root(record) != Some(root) {
                continue;
            }
            if let Some(reply) = reply_for(&self.ledger, record, now) {
                self.replies.insert(task, ReplyState::Sending);
                self.outbox.push_back(reply);
            }
        }
    }

    /// Whether a transcript reply from `sender` answers `task`: one from
    /// this node's own account, the coordinator's, or a node that ran part of
    /// it. Anyone else's "transcript" is only a message.
    fn counts_as_reply(&self, task: &EventId, sender: &UserId) -> bool {
        if self.me.as_ref() == Some(sender) {
            return true;
        }
        let ledger = &self.ledger;
        if ledger.coordinator().is_some_and(|c| c.is_owned_by(sender)) {
            return true;
        }
        let Some(record) = ledger.task(task) else {
            return false;
        };
        std::iter::once(record)
            .chain(record.children.iter().filter_map(|id| ledger.task(id)))
            .flat_map(|t| &t.chunks)
            .any(|chunk| {
                chunk.leases.iter().any(|l| l.node.is_owned_by(sender))
                    || chunk.votes.iter().any(|v| v.node.is_owned_by(sender))
                    || chunk
                        .done
                        .as_ref()
                        .is_some_and(|d| d.node.is_owned_by(sender))
            })
    }

    /// Queues a task for sending, unless every node would reject it.
    fn queue_task(&mut self, spec: TaskSpec, actions: &mut Vec<Action>) {
        let out = Outgoing::task(&spec);
        match parse_task(&out.content) {
            Ok(_) => self.outbox.push_back(out),
            Err(reason) => actions.push(Action::Rejected(Rejection {
                event_id: None,
                reason: format!("the task was not submitted: {reason}"),
            })),
        }
    }

    /// If this node is the coordinator, hands ready chunks to nodes.
    fn coordinate(&mut self, now: u64, actions: &mut Vec<Action>) {
        if !self.coordinating(now) {
            self.assigning.clear();
            return;
        }
        let ledger = &self.ledger;
        // Forget assignments that came back (the lease is in the ledger, or
        // the chunk settled) or went missing.
        self.assigning
            .retain(|(task, chunk, node), (attempt, sent)| {
                let Some(record) = ledger.task(task) else {
                    return false;
                };
                let Some(c) = record.chunks.get(*chunk as usize) else {
                    return false;
                };
                let came_back = c
                    .leases
                    .iter()
                    .any(|l| &l.node == node && l.attempt == *attempt);
                // Still open: a backup of a chunk someone holds is not `Ready`.
                let open = c.done.is_none()
                    && c.failed.is_none()
                    && !ledger.task_status(record, now).is_terminal();
                open && !came_back && now < *sent + RESEND_AFTER_MS
            });
        let in_flight: InFlight = self.assigning.keys().cloned().collect();
        // What does not fit this round's events is planned again next round.
        for (task, assignments) in scheduler::plan(ledger, now, &in_flight) {
            for assignments in assignments.chunks(MAX_ASSIGNMENTS_PER_EVENT) {
                if !self.budget.try_take(now) {
                    return;
                }
                for a in assignments {
                    self.assigning
                        .insert((task.clone(), a.chunk, a.node.clone()), (a.attempt, now));
                }
                actions.push(Action::Send(Outgoing::assign(&task, assignments)));
            }
        }
    }
}

/// The lease in the ledger under which this node runs `run`.
fn lease_of<'a>(ledger: &'a Ledger, run: &RunningChunk, node: &NodeId) -> Option<&'a Lease> {
    ledger
        .task(&run.task)?
        .chunks
        .get(run.chunk as usize)?
        .leases
        .iter()
        .find(|l| &l.node == node && l.attempt == run.attempt)
}

impl NodeMachine {
    /// A private task's output goes to its submitter; the room gets its seal.
    fn seal_if_private(
        &self,
        run: &RunningChunk,
        outcome: Outcome,
        actions: &mut Vec<Action>,
    ) -> Outcome {
        let Outcome::Output(output) = &outcome else {
            return outcome;
        };
        let Some(record) = self.ledger.task(&run.task).filter(|r| r.spec.private) else {
            return outcome;
        };
        actions.push(Action::SendToDevice {
            user: record.submitter.clone(),
            content: private::message(&run.task, run.chunk, output),
        });
        Outcome::Output(Arc::new(seal::seal(output)))
    }
}

/// An output no result event can carry (too big, or numbers a homeserver
/// refuses) fails the chunk here, with a reason, rather than making an event
/// that the homeserver or every node would reject.
/// Splits outcomes into groups that each fit one result event: many short
/// chunks finish while a node waits for send budget, and each output may be up
/// to `MAX_INLINE_OUTPUT_BYTES`.
fn fit_in_events<'a>(
    indices: &[usize],
    outcome: impl Fn(usize) -> &'a ChunkOutcome,
) -> Vec<Vec<usize>> {
    // Room for the event's own fields (relation, node id, version).
    let budget = MAX_CONTENT_BYTES - 1024;
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut size = 0;
    for &i in indices {
        let bytes = serde_json::to_vec(outcome(i)).map_or(budget, |b| b.len() + 1);
        match groups.last_mut() {
            Some(group) if size + bytes <= budget => group.push(i),
            _ => {
                groups.push(vec![i]);
                size = 0;
            }
        }
        size += bytes;
    }
    groups
}

fn fit_inline(outcome: Outcome) -> Outcome {
    let Outcome::Output(output) = &outcome else {
        return outcome;
    };
    let size = serde_json::to_vec(output).map_or(usize::MAX, |bytes| bytes.len());
    let problem = if size > MAX_INLINE_OUTPUT_BYTES {
        format!("the output is {size} bytes; a result carries at most {MAX_INLINE_OUTPUT_BYTES}")
    } else if let Err(e) = check_matrix_json(output) {
        format!("the output has {e}")
    } else {
        return outcome;
    };
    Outcome::Error {
        reason: problem,
        retriable: false,
    }
}

/// `!transcribe [model]`, replying to an audio message this node has seen,
/// as a task on the sender's behalf.
fn transcribe_command(
    body: &str,
    reply_to: Option<&EventId>,
    voices: &BTreeMap<EventId, VoiceMessage>,
    command: ChatCommand,
) -> Result<TaskSpec, String> {
    let model = voice::parse_command(body)?;
    let target = reply_to.ok_or("reply !transcribe to the voice message to transcribe")?;
    let message = voices.get(target).ok_or(
        "the message it replies to is not audio, or older than what this client has loaded",
    )?;
    let mut spec = TaskSpec::transcription(message.audio.clone(), model);
    spec.command = Some(command);
    Ok(spec)
}

/// When anything last happened to a task and its parts (homeserver time).
fn last_activity(ledger: &Ledger, task: &TaskRecord) -> u64 {
    std::iter::once(task)
        .chain(task.children.iter().filter_map(|id| ledger.task(id)))
        .flat_map(|t| {
            std::iter::once(t.submitted_at).chain(
                t.chunks
                    .iter()
                    .filter_map(|c| c.done.as_ref().map(|d| d.at)),
            )
        })
        .max()
        .unwrap_or_default()
}

/// The event a redaction removes: `redacts` at the top level before room
/// version 11, in the content from version 11 on.
fn redacted_by(raw: &Value) -> Option<EventId> {
    if raw.get("type")?.as_str()? != crate::events::REDACTION {
        return None;
    }
    let target = raw
        .get("redacts")
        .or_else(|| raw.get("content")?.get("redacts"))?
        .as_str()?;
    EventId::parse(target).ok()
}

/// The voice message a top-level transcription answers in its thread.
fn transcription_root(task: &TaskRecord) -> Option<&EventId> {
    let TaskKind::Transcribe(transcribe) = &task.spec.kind else {
        return None;
    };
    (transcribe.is_plan() && task.spec.parent.is_none()).then_some(&transcribe.audio.message)
}

/// The reply a finished transcription gets; `None` while it still runs.
fn reply_for(ledger: &Ledger, task: &TaskRecord, now: u64) -> Option<Outgoing> {
    let TaskKind::Transcribe(transcribe) = &task.spec.kind else {
        return None;
    };
    let message = &transcribe.audio.message;
    Some(match ledger.task_status(task, now) {
        TaskStatus::Done { result } => match Transcript::deserialize(&result) {
            Ok(transcript) => voice::reply(message, &task.id, Ok(&transcript)),
            Err(e) => voice::reply(message, &task.id, Err(&e.to_string())),
        },
        TaskStatus::Failed { reason } => voice::reply(message, &task.id, Err(&reason)),
        _ => return None,
    })
}

/// The transcription a transcript reply answers, if `out` is one.
fn reply_task(out: &Outgoing) -> Option<EventId> {
    (out.event_type == voice::REPLY_EVENT_TYPE)
        .then(|| voice::task_of_reply(&out.content))
        .flatten()
}
