//! The node state machine: the one door between a driver (the widget) and
//! the protocol.
//!
//! The driver feeds it what happened (`Input`: a room event, a timer tick, a
//! worker's answer, a click) with the current homeserver time, and carries out
//! what it returns (`Action`: send an event, arm the dead-man switch, run a
//! chunk in a worker). It never waits, never reads a clock and never does I/O.
//!
//! Each feature keeps its own state in its own module, and knows nothing of
//! this one: contributing (`contribute`), consent to scripts (`consent`),
//! running chunks (`running`), sending results (`results`), coordinating
//! (`coordinate`), chat commands (`chat`), transcript replies
//! (`transcripts`), and the send queue with its budget (`outbox`). This
//! module routes inputs to them and runs one step over all of them.

mod action;
mod audio;
mod chat;
mod consent;
mod contribute;
mod coordinate;
mod history;
mod input;
mod outbox;
mod results;
mod running;
mod transcripts;

pub use action::{Action, RequestId};
pub use history::{HistoryRead, Unread, CHAT_MSGTYPES};
pub use input::Input;

use audio::{Audio, Prepared};
use chat::{Chat, ChatMessage};
use consent::Consents;
use contribute::Contribution;
use coordinate::{coordinating, Coordination};
use history::History;
use outbox::{Answered, Outbox, Whose};
use results::{outcome_for_room, Results};
use running::{Given, Running};
use transcripts::Replies;

use crate::events::{
    event_type, Assignment, ChunkOutcome, NodeCaps, Outcome, Outgoing, TaskSpec, REDACTION,
};
use crate::ids::{EventId, NodeId, UserId};
use crate::ledger::Ledger;
use crate::limits::RETRY_AFTER_REFUSAL_MS;
use crate::rejection::{Reason, Rejection};
use crate::task_kind::TaskKind;
use crate::transcription::SpanTranscript;
use crate::validate::parse_task;
use crate::voice::VoiceMessage;
use crate::worker_protocol::JobId;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default)]
pub struct NodeMachine {
    me: Option<UserId>,
    ledger: Ledger,
    contribution: Option<Contribution>,
    consents: Consents,
    running: Running,
    results: Results,
    coordination: Coordination,
    chat: Chat,
    history: History,
    audio: Audio,
    replies: Replies,
    outbox: Outbox,
    /// Whether this node's results go before its assignments at the next
    /// send: the two take turns (see `step`).
    results_first: bool,
    submitted: u64,
    /// The leave notice the dead-man switch was asked to publish, kept in
    /// case it cannot.
    leave_notice: Option<Outgoing>,
    /// Why the friend's last allowlist edit did not take.
    allowlist_problem: Option<String>,
    /// Contributing asked for while the room's past is still being read: a
    /// node announces itself only once it knows the room (who is senior,
    /// which tasks and leases exist).
    start_after_history: Option<(NodeId, NodeCaps)>,
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
        let waiting = self.start_after_history.as_ref().map(|(node, _)| node);
        self.contribution
            .as_ref()
            .map(Contribution::node)
            .or(waiting)
    }
    /// Events waiting for send budget.
    pub fn queued_sends(&self) -> usize {
        self.outbox.len()
    }
    /// Events handed to the driver to send and not answered yet.
    pub fn unanswered_sends(&self) -> usize {
        self.outbox.unanswered()
    }
    /// Whether chunk `job` still runs here: the machine finishes some jobs
    /// itself (a plan, a span outside its recording).
    pub fn runs(&self, job: JobId) -> bool {
        self.running.contains(job)
    }
    /// Why the friend's last allowlist edit did not take, if it did not.
    pub fn allowlist_problem(&self) -> Option<&str> {
        self.allowlist_problem.as_deref()
    }
    /// What of the room's past could not be read.
    pub fn history_unread(&self) -> &[Unread] {
        self.history.unread()
    }
    /// The room's audio messages this node has seen, oldest first.
    pub fn voice_messages(&self) -> impl Iterator<Item = &VoiceMessage> {
        self.chat.voice_messages()
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
            Input::RoomEvents(raws) => self.ingest_all(&raws, &mut actions),
            Input::Tick => {}
            Input::ReadHistory => {
                if let Some(read) = self.history.start() {
                    actions.push(Action::ReadHistory { read });
                }
            }
            Input::HistoryRead { read, events } => {
                match &events {
                    // Chat as the widget hands it over live, oldest first.
                    Ok(messages) if read.is_chat() => {
                        for message in messages.iter().rev().filter_map(Input::from_room_message) {
                            actions.extend(self.process(message, now));
                        }
                    }
                    // State and tasks as one batch: they sort before events
                    // already seen, and a batch folds the ledger again only once.
                    Ok(raws) => self.ingest_all(raws, &mut actions),
                    Err(_) => {}
                }
                let answer = events.as_deref().map_err(|_| ());
                if let Some(next) = self.history.read(&read, answer) {
                    actions.push(Action::ReadHistory { read: next });
                } else if let Some((node, caps)) = self.start_after_history.take() {
                    self.contribution = Some(Contribution::start(node, caps, now));
                }
            }
            Input::StartContributing { node, caps } if self.history.reading() => {
                self.start_after_history = Some((node, caps));
            }
            Input::StartContributing { node, caps } => {
                self.contribution = Some(Contribution::start(node, caps, now));
            }
            Input::StopContributing => {
                self.start_after_history = None;
                if let Some(c) = self.contribution.take() {
                    self.leave_notice = Some(c.leave_notice());
                    actions.push(Action::FireDeadManSwitch);
                }
                let before = actions.len();
                self.running.abort_all(&mut actions);
                self.forget_aborted(&actions[before..]);
                self.results.clear();
                self.coordination.clear();
            }
            Input::LeaveNoticeNotFired => {
                if let Some(gone) = self.leave_notice.take() {
                    self.outbox.push_front(gone, Whose::Node);
                }
            }
            Input::Submit(mut spec) => {
                // A resend after a timeout must not make a second task.
                self.submitted += 1;
                spec.nonce
                    .get_or_insert_with(|| format!("{now:x}-{}", self.submitted));
                self.queue_task(spec, Whose::Friend, &mut actions);
            }
            Input::Cancel { task, reason } => self
                .outbox
                .push(Outgoing::cancel(&task, reason.as_deref()), Whose::Friend),
            Input::ChatMessage {
                event_id,
                sender,
                body,
                sent_at,
                reply_to,
            } => {
                let message = ChatMessage {
                    event_id,
                    sender,
                    body,
                    sent_at,
                    reply_to,
                };
                self.chat.message(&mut self.ledger, message, now);
            }
            Input::AudioMessage(message) => self.chat.audio(message),
            Input::TranscriptPosted { task, sender } => {
                self.replies
                    .seen(&self.ledger, self.me.as_ref(), task, &sender)
            }
            Input::ThreadRead { root, replies } => self.replies.thread_read(
                &self.ledger,
                self.me.as_ref(),
                &root,
                replies,
                &mut self.outbox,
                now,
            ),
            Input::Sent { request } => {
                if let Some(answered) = self.outbox.answered(request) {
                    if answered.out.event_type == event_type::ALLOWLIST {
                        self.allowlist_problem = None;
                    }
                    self.replies.sent(&answered.out);
                    self.acknowledge(&answered.out);
                }
            }
            Input::EditAllowlist(list) => match list.validate() {
                Ok(()) => {
                    self.allowlist_problem = None;
                    self.outbox
                        .push_front(Outgoing::allowlist(&list), Whose::Friend);
                }
                Err(problem) => self.allowlist_problem = Some(problem.to_string()),
            },
            Input::ScriptConsent { integrity, allow } => {
                if allow {
                    self.consents.approve(integrity);
                } else if let Some(c) = self.contribution.as_mut() {
                    if let Some(announce) = c.decline(integrity) {
                        self.outbox.push(announce, Whose::Node);
                    }
                }
            }
            Input::SendFailed {
                request,
                retry_after_ms,
                permanent,
                reason,
            } => match self.outbox.answered(request) {
                // Refused for good: dropped. What depends on it (a result, an
                // assignment) is rebuilt from the ledger when it is next due;
                // a refused allowlist is the friend's to hear of, unless a
                // newer edit of theirs replaced it.
                Some(answered)
                    if permanent
                        && answered.out.event_type == event_type::ALLOWLIST
                        && !answered.replaced =>
                {
                    self.allowlist_problem = Some(reason);
                }
                Some(_) if permanent => {}
                // No answer (a timeout): it may be in the room. Assignments
                // and results wait for it there, and go again only if it
                // does not show up (a copy would run or show twice).
                Some(answered) if retry_after_ms.is_none() && answered.out.waits_for_echo() => {}
                Some(answered) => {
                    self.outbox.pause_until(
                        now.saturating_add(retry_after_ms.unwrap_or(RETRY_AFTER_REFUSAL_MS)),
                    );
                    self.retry(answered);
                }
                None => {}
            },
            Input::WorkerProgress { job, done } => {
                self.running.progress(job, done);
                // Workers report often; what follows from it waits for the next tick.
                return actions;
            }
            Input::WorkerFinished { job, outcome } => {
                self.finish_job(job, outcome, now, &mut actions)
            }
            Input::AudioDecoded { message, samples } => self.audio.decoded(message, samples),
        }
        self.step(now, &mut actions);
        actions
    }

    /// A chunk of this node's finished (in a worker, or here: a plan).
    fn finish_job(&mut self, job: JobId, outcome: Outcome, now: u64, actions: &mut Vec<Action>) {
        let Some(run) = self.running.finish(job) else {
            return; // Aborted meanwhile.
        };
        let outcome = self.audio.finished(job, outcome);
        let outcome = outcome_for_room(&self.ledger, &run.task, run.chunk, outcome, actions);
        let part = match &outcome {
            Outcome::Output(output) => self.part_after(&run.task, output),
            Outcome::Error { .. } => None,
        };
        let awaits_part = part.is_some();
        if let Some(part) = part {
            self.queue_task(part, Whose::Node, actions);
        }
        let outcome = ChunkOutcome {
            chunk: run.chunk,
            attempt: run.attempt,
            outcome,
            compute_ms: Some(now.saturating_sub(run.started_at)),
        };
        self.results.finish(run.task, outcome, awaits_part, now);
    }

    /// Starts what this node was given or claimed, up to its slots, and
    /// prepares the transcriptions among them.
    fn start_work(&mut self, now: u64, actions: &mut Vec<Action>) {
        let Some(c) = &self.contribution else {
            return;
        };
        let before = actions.len();
        let given = Given {
            ledger: &self.ledger,
            claims: self.coordination.claims(),
        };
        self.running.start_assigned(
            given,
            c,
            &mut self.consents,
            &mut self.results,
            now,
            actions,
        );
        let started = actions.split_off(before);
        self.prepare_transcriptions(&started, now, actions);
        actions.splice(before..before, started);
    }

    /// Transcription chunks just started wait for their audio; those whose
    /// audio is here are planned, or go to a worker with their samples.
    fn prepare_transcriptions(&mut self, started: &[Action], now: u64, actions: &mut Vec<Action>) {
        for action in started {
            if let Action::RunChunk {
                job,
                work: TaskKind::Transcribe(task),
                ..
            } = action
            {
                self.audio.need(*job, (**task).clone(), actions);
            }
        }
        for (job, work, prepared) in self.audio.ready() {
            let failed = |reason| Outcome::Error {
                reason,
                retriable: false,
            };
            match prepared {
                Prepared::Span(samples) => {
                    let previous = self.prompt_before(job);
                    actions.push(Action::RunTranscription {
                        job,
                        work,
                        samples,
                        previous,
                    })
                }
                Prepared::Planned(Ok(plan)) => {
                    self.finish_job(job, Outcome::Output(plan.into()), now, actions)
                }
                Prepared::Planned(Err(reason)) | Prepared::Failed(reason) => {
                    self.finish_job(job, failed(reason), now, actions)
                }
            }
        }
    }

    /// The prompt for `job`'s span: the words of the span before, if it is
    /// done here or in the room. A node running a message's spans one after
    /// another conditions each on the last, as Whisper does; spans running
    /// side by side on several workers cannot wait for each other.
    fn prompt_before(&self, job: JobId) -> Vec<u32> {
        let Some(run) = self.running.get(job) else {
            return Vec::new();
        };
        let Some(before) = run.chunk.checked_sub(1) else {
            return Vec::new();
        };
        let done_here = self.results.output(&run.task, before);
        let done_in_room = || {
            let chunk = self.ledger.task(&run.task)?.chunks.get(before as usize)?;
            chunk.done().map(|d| d.output.as_ref())
        };
        done_here
            .or_else(done_in_room)
            .map(SpanTranscript::prompt_of)
            .unwrap_or_default()
    }

    /// Jobs just stopped wait for no audio.
    fn forget_aborted(&mut self, stopped: &[Action]) {
        for action in stopped {
            if let Action::AbortJob { job } = action {
                self.audio.abort(*job);
            }
        }
    }

    /// Events read back at once (a task's references, the room's state), in any order.
    fn ingest_all(&mut self, raws: &[Value], actions: &mut Vec<Action>) {
        raws.iter().for_each(|raw| self.notice_overwrite(raw));
        let rejections = self.ledger.ingest_all(raws);
        actions.extend(rejections.into_iter().map(Action::Rejected));
    }

    fn notice_overwrite(&mut self, raw: &Value) {
        if let Some(c) = self.contribution.as_mut() {
            c.notice_overwrite(raw, self.me.as_ref());
        }
    }

    /// A member redacted one of the room's events: the ledger forgets it (a
    /// tab opening later reads it without content, and refuses it too).
    fn redact(&mut self, event_id: &EventId) {
        let Some(removed) = self.ledger.redact(event_id) else {
            return;
        };
        if let Some(c) = self.contribution.as_mut() {
            c.notice_redacted(&removed);
        }
    }

    /// Puts a refused event back in line: submissions, cancels and node state
    /// as they were (state unless a newer one replaced it); assignments,
    /// results, progress and replies are rebuilt from the ledger by the
    /// feature that made them.
    fn retry(&mut self, answered: Answered) {
        let out = &answered.out;
        if self.replies.send_failed(out) {
            return;
        }
        match (out.event_type, related_task(out)) {
            (event_type::ASSIGN, Some(task)) => {
                self.coordination.refused(&task, &assignments_in(out));
            }
            // Progress is sent again when next due, from what the workers say then.
            (event_type::PROGRESS, Some(task)) => self.running.progress_refused(&task),
            (event_type::RESULT, Some(task)) => self.results.refused(&task, &chunks_in(out)),
            _ => self.outbox.retry(answered),
        }
    }

    /// The homeserver took an event: an assignment or result in it is in the
    /// room, so nothing sends it again, however late the node reads it back.
    fn acknowledge(&mut self, out: &Outgoing) {
        match (out.event_type, related_task(out)) {
            (event_type::ASSIGN, Some(task)) => {
                self.coordination.acknowledged(&task, &assignments_in(out));
            }
            (event_type::RESULT, Some(task)) => {
                self.results.acknowledged(&task, &chunks_in(out));
            }
            _ => {}
        }
    }

    /// The part a chunk's output asks to add to its task.
    fn part_after(&self, task: &EventId, output: &Value) -> Option<TaskSpec> {
        self.ledger.task(task)?.spec.part_after(task, output)
    }

    /// Everything that follows from the current state: the same after any input.
    fn step(&mut self, now: u64, actions: &mut Vec<Action>) {
        if let Some(c) = self.contribution.as_mut() {
            c.keep_alive(&self.ledger, &mut self.outbox, now, actions);
            c.prepare_model(|| self.chat.has_recent_voice(now), actions);
        }
        let before = actions.len();
        self.running.abort_obsolete(&self.ledger, now, actions);
        let stopped = actions.split_off(before);
        self.forget_aborted(&stopped);
        actions.extend(stopped);
        self.start_work(now, actions);
        let coordinating = coordinating(&self.ledger, self.contribution.as_ref(), now);
        // Assignments keep the whole pool busy, and results that wait for send
        // budget only grow their batch; but a coordinator's own results are
        // what frees its own queue, and its account carries both. They take
        // turns, or the coordinator's worker waits for room in its queue.
        for results in [self.results_first, !self.results_first] {
            let before = actions.len();
            if results {
                if let Some(c) = &self.contribution {
                    let runs_task = |task: &EventId| self.running.runs_task(task);
                    let outbox = &mut self.outbox;
                    (self.results).send(&self.ledger, c.node(), runs_task, outbox, now, actions);
                }
            } else if let (true, Some(c)) = (coordinating, &self.contribution) {
                let claimed = self.coordination.claims().len();
                self.coordination
                    .assign(&self.ledger, c.node(), &mut self.outbox, now, actions);
                if self.coordination.claims().len() > claimed {
                    // What it just claimed starts now, not at the next tick.
                    self.start_work(now, actions);
                }
            } else {
                self.coordination.clear();
            }
            if actions.len() > before {
                self.results_first = !results;
            }
        }
        let (specs, refused) = self.chat.start_commands(&self.ledger, coordinating, now);
        actions.extend(refused.into_iter().map(Action::Rejected));
        // A chat command's task is the coordinator's to send, in the sender's name.
        for spec in specs {
            self.queue_task(spec, Whose::Node, actions);
        }
        if coordinating {
            self.replies.read_threads(&self.ledger, now, actions);
        }
        if let Some(c) = &self.contribution {
            self.running
                .report_progress(&self.ledger, c.node(), &mut self.outbox, now, actions);
        }
        self.outbox.flush(now, actions);
    }

    /// Queues a task for sending, unless every node would reject it.
    fn queue_task(&mut self, spec: TaskSpec, whose: Whose, actions: &mut Vec<Action>) {
        let out = Outgoing::task(&spec);
        match parse_task(&out.content) {
            Ok(_) => self.outbox.push(out, whose),
            Err(problem) => actions.push(Action::Rejected(Rejection {
                event_id: None,
                reason: Reason::NotSubmitted(problem),
            })),
        }
    }
}

/// The event a redaction removes: `redacts` at the top level before room
/// version 11, in the content from version 11 on.
fn redacted_by(raw: &Value) -> Option<EventId> {
    if raw.get("type")?.as_str()? != REDACTION {
        return None;
    }
    let target = raw
        .get("redacts")
        .or_else(|| raw.get("content")?.get("redacts"))?
        .as_str()?;
    EventId::parse(target).ok()
}

/// The task an assignment, progress report or result is about.
fn related_task(out: &Outgoing) -> Option<EventId> {
    let id = out.content["m.relates_to"]["event_id"].as_str()?;
    EventId::parse(id).ok()
}

/// The assignments an assignment event carries.
fn assignments_in(out: &Outgoing) -> Vec<Assignment> {
    Vec::<Assignment>::deserialize(&out.content["assignments"]).unwrap_or_default()
}

/// The chunks a result event answers.
fn chunks_in(out: &Outgoing) -> Vec<u32> {
    let outcomes = out.content["outcomes"].as_array().into_iter().flatten();
    outcomes
        .filter_map(|c| c["chunk"].as_u64())
        .map(|c| c as u32)
        .collect()
}

/// What the node modules' tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::events::test_support::delivered_as;
    use crate::events::{NodeCaps, Outgoing, TaskSpec};
    use crate::ids::{NodeId, UserId};
    use crate::ledger::Ledger;

    /// A ledger where alice's node (two workers) is online since 0 and
    /// carol submitted `task` as `$t` at 100.
    pub(crate) fn alice_and_carols_task(task: &TaskSpec) -> (Ledger, NodeId, NodeCaps) {
        let alice = NodeId::new(&UserId::parse("@alice:hs").unwrap(), "tab").unwrap();
        let caps = caps(2);
        let mut ledger = Ledger::new();
        let online = Outgoing::node_online_since(&alice, &caps, Some(0));
        ledger
            .ingest(&delivered_as("$n", "@alice:hs", &online, 0))
            .unwrap();
        let submitted = delivered_as("$t", "@carol:hs", &Outgoing::task(task), 100);
        ledger.ingest(&submitted).unwrap();
        (ledger, alice, caps)
    }

    /// A four-core machine offering `slots` workers, declining nothing.
    pub(crate) fn caps(slots: u32) -> NodeCaps {
        NodeCaps {
            cores: 4,
            slots,
            memory_mb: None,
            webgpu: false,
            models: vec![],
            declined: vec![],
            runs: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::caps;
    use super::*;

    #[test]
    fn a_leave_notice_the_switch_could_not_publish_is_sent_by_the_node_once() {
        let alice = UserId::parse("@alice:hs").unwrap();
        let node = NodeId::new(&alice, "tab").unwrap();
        let caps = caps(1);
        let mut machine = NodeMachine::new(alice);
        machine.process(Input::StartContributing { node, caps }, 0);
        let stop = machine.process(Input::StopContributing, 1_000);
        assert!(stop.contains(&Action::FireDeadManSwitch));

        let sent: Vec<Value> = machine
            .process(Input::LeaveNoticeNotFired, 2_000)
            .into_iter()
            .filter_map(|a| match a {
                Action::Send { out, .. } if out.event_type == event_type::NODE => Some(out.content),
                _ => None,
            })
            .collect();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["online"], false);
        assert_eq!(sent[0]["since"], 0, "it was online since it started");
        assert!(machine
            .process(Input::LeaveNoticeNotFired, 3_000)
            .is_empty());
    }

    #[test]
    fn an_allowlist_edit_goes_first_and_why_it_did_not_take_is_kept_for_the_friend() {
        use crate::allowlist::{AllowedScript, Allowlist};
        let mut machine = NodeMachine::new(UserId::parse("@carol:hs").unwrap());
        let script = |url: &str| AllowedScript {
            name: "sum".into(),
            url: url.into(),
            integrity: format!("sha384-{}", "A".repeat(64)),
            description: String::new(),
        };
        let invalid = Allowlist::default().with_script(script("ftp://nowhere/sum.js"));
        assert!(machine.process(Input::EditAllowlist(invalid), 0).is_empty());
        assert!(
            machine.allowlist_problem().is_some(),
            "an invalid list is not sent"
        );

        let list = Allowlist::default().with_script(script("https://friends.example/sum.js"));
        let sent = machine.process(Input::EditAllowlist(list), 0);
        let [Action::Send { request, out }] = &sent[..] else {
            panic!("{sent:?}")
        };
        assert_eq!(out.event_type, event_type::ALLOWLIST);
        assert_eq!(machine.allowlist_problem(), None);
        let refused = Input::SendFailed {
            request: *request,
            retry_after_ms: None,
            permanent: true,
            reason: "M_FORBIDDEN: you cannot change the room's state".into(),
        };
        assert!(machine.process(refused, 1).is_empty(), "not sent again");
        assert_eq!(
            machine.allowlist_problem(),
            Some("M_FORBIDDEN: you cannot change the room's state")
        );
    }

    /// An allowlist of one script, `name`.
    fn list(name: &str) -> crate::allowlist::Allowlist {
        use crate::allowlist::{AllowedScript, Allowlist};
        Allowlist::default().with_script(AllowedScript {
            name: name.into(),
            url: format!("https://friends.example/{name}.js"),
            integrity: format!("sha384-{}", "A".repeat(64)),
            description: String::new(),
        })
    }

    /// The request of `actions`' one send.
    fn request(actions: Vec<Action>) -> RequestId {
        match &actions[..] {
            [Action::Send { request, .. }] => *request,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_older_allowlist_edit_refused_after_a_newer_one_went_is_not_sent_again() {
        let mut machine = NodeMachine::new(UserId::parse("@carol:hs").unwrap());
        let first = request(machine.process(Input::EditAllowlist(list("sum")), 0));
        let second = request(machine.process(Input::EditAllowlist(list("primes")), 10));
        let busy = Input::SendFailed {
            request: first,
            retry_after_ms: Some(1_000),
            permanent: false,
            reason: "M_LIMIT_EXCEEDED".into(),
        };
        assert!(machine.process(busy, 20).is_empty());
        assert!(
            machine.process(Input::Tick, 600_000).is_empty(),
            "the room keeps the friend's last list"
        );
        let busy_again = Input::SendFailed {
            request: second,
            retry_after_ms: Some(1_000),
            permanent: false,
            reason: "M_LIMIT_EXCEEDED".into(),
        };
        machine.process(busy_again, 600_000);
        let resent = machine.process(Input::Tick, 700_000);
        let [Action::Send { out, .. }] = &resent[..] else {
            panic!("{resent:?}")
        };
        assert_eq!(out.content["scripts"][0]["name"], "primes");
    }

    #[test]
    fn an_older_allowlist_edit_refused_after_a_newer_one_took_leaves_no_problem_to_show() {
        let mut machine = NodeMachine::new(UserId::parse("@carol:hs").unwrap());
        let first = request(machine.process(Input::EditAllowlist(list("sum")), 0));
        let second = request(machine.process(Input::EditAllowlist(list("primes")), 10));
        machine.process(Input::Sent { request: second }, 20);
        let refused = Input::SendFailed {
            request: first,
            retry_after_ms: None,
            permanent: true,
            reason: "M_FORBIDDEN: too late".into(),
        };
        assert!(machine.process(refused, 30).is_empty());
        assert_eq!(
            machine.allowlist_problem(),
            None,
            "the friend's last edit took"
        );
    }

    /// A voice message event as the room delivers it, sent at `sent_at`.
    fn voice_event(id: &str, sent_at: u64) -> Value {
        serde_json::json!({
            "type": "m.room.message", "event_id": id, "sender": "@carol:hs",
            "origin_server_ts": sent_at,
            "content": {"msgtype": "m.audio", "body": "Voice message", "url": "mxc://hs/a"},
        })
    }

    /// The same as the machine's input.
    fn voice(id: &str, sent_at: u64) -> Input {
        Input::from_room_message(&voice_event(id, sent_at)).unwrap()
    }

    /// How many times `actions` ask to load tiny.en ahead.
    fn prepares(actions: &[Action]) -> usize {
        use crate::transcription::WhisperModel;
        let load = Action::PrepareModel {
            model: WhisperModel::TinyEn,
        };
        actions.iter().filter(|a| **a == load).count()
    }

    #[test]
    fn a_contributor_loads_the_whisper_model_once_when_a_recent_voice_message_is_in_the_room() {
        use crate::limits::VOICE_RECENT_MS;
        let alice = UserId::parse("@alice:hs").unwrap();
        let node = NodeId::new(&alice, "tab").unwrap();
        let start = || Input::StartContributing {
            node: node.clone(),
            caps: caps(1),
        };
        let mut machine = NodeMachine::new(alice);
        let old = 1_000;
        let now = old + VOICE_RECENT_MS + 1;
        assert_eq!(
            prepares(&machine.process(voice("$v1", now), now)),
            0,
            "not contributing"
        );
        assert_eq!(
            prepares(&machine.process(start(), now)),
            1,
            "a voice message came just now"
        );
        assert_eq!(
            prepares(&machine.process(voice("$v2", now), now + 1)),
            0,
            "once"
        );
        machine.process(Input::StopContributing, now + 2);
        assert_eq!(
            prepares(&machine.process(start(), now + 3)),
            1,
            "once per contribution"
        );

        let mut later = NodeMachine::new(UserId::parse("@bob:hs").unwrap());
        let bob = NodeId::new(later.me().unwrap(), "tab").unwrap();
        later.process(voice("$v1", old), now);
        let start = Input::StartContributing {
            node: bob,
            caps: caps(1),
        };
        assert_eq!(
            prepares(&later.process(start, now)),
            0,
            "an old one is history"
        );
        assert_eq!(
            prepares(&later.process(voice("$v3", now), now)),
            1,
            "a new one"
        );
    }

    #[test]
    fn a_voice_message_found_in_the_rooms_past_loads_the_model_once_the_past_is_read() {
        let alice = UserId::parse("@alice:hs").unwrap();
        let node = NodeId::new(&alice, "tab").unwrap();
        let mut machine = NodeMachine::new(alice);
        let mut next = machine.process(Input::ReadHistory, 10_000);
        let start = Input::StartContributing {
            node,
            caps: caps(1),
        };
        assert_eq!(
            prepares(&machine.process(start, 10_000)),
            0,
            "not before the past is read"
        );
        let mut asked = 0;
        while let Some(Action::ReadHistory { read }) = next.first().cloned() {
            let chat = if read.is_chat() {
                vec![voice_event("$v", 9_000)]
            } else {
                vec![]
            };
            let events = Ok(chat);
            next = machine.process(Input::HistoryRead { read, events }, 10_000);
            asked += prepares(&next);
            next.retain(|a| matches!(a, Action::ReadHistory { .. }));
        }
        assert_eq!(asked, 1, "then it loads the model, once");
    }

    #[test]
    fn a_node_announces_itself_only_once_it_has_read_the_rooms_past() {
        let alice = UserId::parse("@alice:hs").unwrap();
        let node = NodeId::new(&alice, "tab").unwrap();
        let caps = caps(1);
        let announces = |actions: &[Action]| {
            actions
                .iter()
                .filter(
                    |a| matches!(a, Action::Send { out, .. } if out.event_type == event_type::NODE),
                )
                .count()
        };
        let mut machine = NodeMachine::new(alice);
        let mut next = machine.process(Input::ReadHistory, 0);
        let started = machine.process(
            Input::StartContributing {
                node: node.clone(),
                caps,
            },
            1,
        );
        assert_eq!(announces(&started), 0, "not before the past is read");
        assert_eq!(
            machine.node(),
            Some(&node),
            "it is contributing, as the friend asked"
        );
        let mut announced = 0;
        while let Some(Action::ReadHistory { read }) = next.first().cloned() {
            let answer = Input::HistoryRead {
                read,
                events: Ok(vec![]),
            };
            next = machine.process(answer, 2);
            announced += announces(&next);
            next.retain(|a| matches!(a, Action::ReadHistory { .. }));
        }
        assert_eq!(announced, 1, "then it announces itself, once");
    }
}
