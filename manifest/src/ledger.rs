//! The ledger: a pure fold from the events a node saw to the state of every
//! task and node.
//!
//! Events are applied in homeserver order, `(origin_server_ts, event_id)`, not
//! in the order they arrived, so two nodes that saw the same events agree,
//! whatever the order, duplicates or delays. An event that arrives late (sorts
//! before one already applied) makes the ledger fold again from the start.
//! Nothing here reads a sender's own clock: the homeserver's timestamps and the
//! caller's `now` are the only times.

use crate::allowlist::{Allowlist, NotAllowed};
use crate::events::{
    Assignment, ChatCommand, ChunkOutcome, ChunkProgress, NodeCaps, Outcome, PotluckEvent,
    SeenEvent, TaskSpec,
};
use crate::fairness::Usage;
use crate::ids::{EventId, NodeId, UserId};
use crate::limits::{
    max_attempts, BACKOFF_BASE_MS, LEASE_HARD_MS, LEASE_SOFT_MS, MAX_REJECTIONS_KEPT, MAX_SUBTASKS,
};
use crate::rejection::{Refused, Rejection};
use crate::sorted_map::{SortedMap, SortedSet};
use crate::task_kind::TaskKind;
use crate::transcription::WhisperModel;
use crate::validate::parse_event;
use indexmap::IndexMap;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    pub id: NodeId,
    pub caps: NodeCaps,
    pub online: bool,
    /// When the node last announced itself (homeserver time).
    pub since: u64,
}

/// A node's right to run one chunk, from the assignment's timestamp on.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub node: NodeId,
    pub attempt: u32,
    pub granted_at: u64,
    /// The last progress report that came in time; the soft timeout counts from here.
    pub renewed_at: u64,
    /// Fraction done, as last reported (0 until the node reports).
    pub progress: f32,
}

impl Lease {
    /// Past the soft timeout since it was granted or last renewed by a progress report.
    pub fn soft_expired(&self, now: u64) -> bool {
        now >= self.lapsed_at()
    }
    /// When it lapses unless renewed or answered first: the soft timeout
    /// after the last progress report, and never later than the hard
    /// deadline, after which no answer would count (so progress reports
    /// alone cannot hold a chunk forever).
    pub fn lapsed_at(&self) -> u64 {
        self.renewed_at
            .saturating_add(LEASE_SOFT_MS)
            .min(self.granted_at.saturating_add(LEASE_HARD_MS))
    }
    pub fn accepts_result_at(&self, ts: u64) -> bool {
        ts <= self.granted_at.saturating_add(LEASE_HARD_MS)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChunkDone {
    pub node: NodeId,
    pub attempt: u32,
    /// Shared with the result event it came from: outputs are not copied.
    pub output: Arc<Value>,
    pub at: u64,
    /// How long the chunk ran: what the node reports, but never more than
    /// the lease has been out (so a node cannot claim more than it could have run).
    pub took_ms: u64,
    /// For a replicated chunk decided by a majority: the nodes whose output
    /// differed or who answered with an error. Shown, not hidden.
    pub dissent: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    /// How many different nodes must run this chunk (the task's replication).
    pub replicas: u8,
    /// Leases not yet given back; a node gives one back with its result or an error.
    pub leases: Vec<Lease>,
    /// The highest attempt issued so far.
    pub attempts: u32,
    /// A retriable failure asks to wait until then.
    pub retry_after: u64,
    /// Outputs of a replicated chunk so far, at most one per node, until a
    /// majority agrees. A chunk that runs once takes its first output as done.
    pub votes: Vec<ChunkDone>,
    /// Replicas that failed for good (node, reason): they vote for no output,
    /// so the others' agreement still decides the chunk.
    pub errors: Vec<(NodeId, String)>,
    /// Done (the accepted output: the first or, replicated, the
    /// majority's) or failed for good; `None` while open.
    pub settled: Option<Settled>,
}

/// How a chunk ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    Done(ChunkDone),
    Failed(String),
}

impl ChunkRecord {
    fn new(replicas: u8) -> Self {
        Self {
            replicas,
            leases: Vec::new(),
            attempts: 0,
            retry_after: 0,
            votes: Vec::new(),
            errors: Vec::new(),
            settled: None,
        }
    }

    /// The accepted output, once the chunk is done.
    pub fn done(&self) -> Option<&ChunkDone> {
        match &self.settled {
            Some(Settled::Done(done)) => Some(done),
            _ => None,
        }
    }

    /// Why the chunk failed for good, if it did.
    pub fn failed(&self) -> Option<&str> {
        match &self.settled {
            Some(Settled::Failed(reason)) => Some(reason),
            _ => None,
        }
    }

    /// Whether `node` already gave this chunk its output or its error.
    pub fn answered_by(&self, node: &NodeId) -> bool {
        self.votes.iter().any(|v| &v.node == node) || self.errors.iter().any(|(n, _)| n == node)
    }

    fn is_settled(&self) -> bool {
        self.settled.is_some()
    }

    /// Identical outputs a replicated chunk needs: a strict majority.
    pub fn quorum(&self) -> usize {
        usize::from(self.replicas) / 2 + 1
    }
}

/// What a chunk is doing at a given moment.
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkStatus<'a> {
    Done(&'a ChunkDone),
    Failed(String),
    /// Held by nodes whose leases are live, and no more replicas wanted.
    Running(Vec<&'a Lease>),
    /// Waiting out a back-off after a retriable failure.
    BackingOff {
        until: u64,
    },
    /// Ready to be assigned (to more nodes, if replicated and some run it already).
    Ready,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub id: EventId,
    /// Who the work is for and whose fair share it uses: for a subtask, the
    /// parent's submitter, whoever split it.
    pub submitter: UserId,
    pub spec: Arc<TaskSpec>,
    pub submitted_at: u64,
    pub chunks: Vec<ChunkRecord>,
    /// Subtasks, in the order they were submitted.
    pub children: Vec<EventId>,
    /// Why no node may run it (its script is not allowed in the room).
    pub refused: Option<NotAllowed>,
    /// Its submitter withdrew it before it finished.
    pub cancelled: Option<Cancellation>,
}

/// A submitter's cancel, with the reason they gave, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub reason: Option<String>,
}

impl TaskRecord {
    fn own_chunks_done(&self) -> bool {
        self.chunks.iter().all(|c| c.done().is_some())
    }

    /// How long one chunk of this task runs: the median of the chunks done so
    /// far (the median, so one slow machine or one stall does not set it).
    /// `None` before the first chunk is done.
    pub fn chunk_ms_estimate(&self) -> Option<u64> {
        let mut took: Vec<u64> = self
            .chunks
            .iter()
            .filter_map(|c| c.done().map(|d| d.took_ms))
            .collect();
        if took.is_empty() {
            return None;
        }
        let middle = took.len() / 2;
        Some(*took.select_nth_unstable(middle).1)
    }
}

/// A task's state, as a person would describe it.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskStatus {
    Queued,
    Running { done: u32, total: u32 },
    Done { result: Value },
    Failed { reason: String },
    Cancelled { reason: Option<String> },
}

impl TaskStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Done { .. } | Self::Failed { .. } | Self::Cancelled { .. }
        )
    }
}

/// What the ledger itself shows of a node's reliability: when it last
/// answered a chunk it held, and when a lease of its last lapsed unanswered.
/// A node whose last lapse is newer than its last answer is on probation
/// (see `scheduler`): a silent node must lose work, not win it again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reliability {
    pub last_answer: u64,
    pub last_lapse: u64,
}

#[derive(Debug, Clone, Default)]
struct State {
    nodes: SortedMap<NodeId, NodeRecord>,
    /// Kept apart from `nodes`: a node's record is replaced when it announces
    /// itself again, its history is not.
    reliability: SortedMap<NodeId, Reliability>,
    /// The Whisper models each node has run, as its accepted outputs show:
    /// its workers hold them, so it transcribes the next span without
    /// loading one (1–2 s in a browser). Forgotten when it announces itself
    /// again (a new contribution has new workers).
    warm_models: SortedMap<NodeId, SortedSet<WhisperModel>>,
    /// Recomputed when a node comes or goes, not for every event that asks.
    coordinator: Option<NodeId>,
    /// Tasks in homeserver order, found by id in constant time: every
    /// assignment, progress report and result looks its task up.
    tasks: IndexMap<EventId, TaskRecord>,
    /// Tasks by (submitter, nonce), to recognise a resent submission.
    nonces: HashMap<(UserId, String), EventId>,
    /// Tasks by the chat message that started them: one per message.
    commands: HashMap<EventId, EventId>,
    /// Who sent each chat command seen (see `Ledger::note_chat_command`).
    chat_senders: HashMap<EventId, UserId>,
    /// Relations whose task has not been seen yet, replayed when it arrives.
    orphans: HashMap<EventId, Vec<SeenEvent>>,
    usage: Usage,
    allowlist: Allowlist,
    rejections: VecDeque<Rejection>,
}

/// The announcement a node's state implies about its past: a node announcing
/// itself again (its state was overwritten or its capabilities changed) says
/// since when it has been online, and a gone node's final state says since
/// when it had been. Current state keeps only the latest of these, so for a
/// tab that reads only current state this is how it learns the node was
/// online then, and can check the work it assigned or did. Tabs that saw the
/// real announcement fold this one too: it changes nothing they knew.
fn time_online(event: &SeenEvent) -> Option<SeenEvent> {
    let (node, caps, since) = match &event.event {
        PotluckEvent::NodeGone {
            node,
            was: Some(was),
        } => (node, &was.caps, was.since),
        PotluckEvent::NodeOnline {
            node,
            caps,
            since: Some(since),
        } => (node, &**caps, *since),
        _ => return None,
    };
    let since = since.min(event.origin_server_ts);
    if since == event.origin_server_ts && matches!(event.event, PotluckEvent::NodeOnline { .. }) {
        return None;
    }
    Some(SeenEvent {
        event_id: EventId::parse(format!("{}~online", event.event_id.as_str())).ok()?,
        sender: event.sender.clone(),
        origin_server_ts: since,
        event: PotluckEvent::NodeOnline {
            node: node.clone(),
            caps: Box::new(caps.clone()),
            since: Some(since),
        },
    })
}

/// Homeserver order: timestamp, then event id to break ties the same way everywhere.
fn order_key(event: &SeenEvent) -> (u64, &EventId) {
    (event.origin_server_ts, &event.event_id)
}

fn homeserver_order(a: &SeenEvent, b: &SeenEvent) -> Ordering {
    order_key(a).cmp(&order_key(b))
}

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Every accepted event in homeserver order, kept to fold again when one
    /// arrives late. Also how duplicates are recognised: the homeserver gives
    /// an event one id and one timestamp, however often it is read back.
    events: Vec<SeenEvent>,
    state: State,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one raw event from the room. Returns the rejection, if any, so
    /// the caller can log it; the ledger keeps the latest few too.
    pub fn ingest(&mut self, raw: &Value) -> Result<(), Rejection> {
        match parse_event(raw) {
            Ok(event) => {
                self.insert(event);
                Ok(())
            }
            Err(invalid) => {
                let rejection = Rejection::from(invalid);
                self.state.remember(rejection.clone());
                Err(rejection)
            }
        }
    }

    /// Takes in a batch of raw events in any order (a page of relations, a
    /// room's state) and returns those that failed validation. However many
    /// of them sort before events already applied, the ledger folds again at
    /// most once.
    pub fn ingest_all<'a>(&mut self, raws: impl IntoIterator<Item = &'a Value>) -> Vec<Rejection> {
        let mut rejections = Vec::new();
        let mut fresh = Vec::new();
        for raw in raws {
            match parse_event(raw) {
                Ok(event) => fresh.push(event),
                Err(invalid) => {
                    let rejection = Rejection::from(invalid);
                    self.state.remember(rejection.clone());
                    rejections.push(rejection);
                }
            }
        }
        self.insert_all(fresh);
        rejections
    }

    /// Takes in one validated event. Duplicates are ignored.
    pub fn insert(&mut self, event: SeenEvent) {
        // One that implies an earlier announcement goes in with it.
        if time_online(&event).is_some() {
            return self.insert_all(vec![event]);
        }
        // The common case, a live event newer than all before it (so no
        // duplicate either): apply it alone.
        if self.is_newest(&event) {
            self.state.apply(&event);
            self.events.push(event);
            return;
        }
        self.insert_all(vec![event]);
    }

    fn is_newest(&self, event: &SeenEvent) -> bool {
        self.events
            .last()
            .is_none_or(|last| homeserver_order(last, event) == Ordering::Less)
    }

    fn insert_all(&mut self, fresh: Vec<SeenEvent>) {
        let mut fresh: Vec<SeenEvent> = fresh
            .into_iter()
            .flat_map(|event| time_online(&event).into_iter().chain([event]))
            .collect();
        fresh.sort_by(homeserver_order);
        fresh.dedup_by(|a, b| homeserver_order(a, b) == Ordering::Equal);
        fresh.retain(|e| {
            self.events
                .binary_search_by(|seen| homeserver_order(seen, e))
                .is_err()
        });
        let Some(first) = fresh.first() else { return };
        if self.is_newest(first) {
            for event in fresh {
                self.state.apply(&event);
                self.events.push(event);
            }
            return;
        }
        // Two sorted runs: the sort merges them in linear time.
        self.events.extend(fresh);
        self.events.sort_by(homeserver_order);
        self.refold();
    }

    fn refold(&mut self) {
        let rejections = std::mem::take(&mut self.state.rejections);
        self.state = State {
            rejections,
            ..State::default()
        };
        for event in &self.events {
            self.state.apply(event);
        }
    }

    /// Whether `node`'s workers have run `model` (see `State::warm_models`).
    pub fn holds_model(&self, node: &NodeId, model: WhisperModel) -> bool {
        self.state
            .warm_models
            .get(node)
            .is_some_and(|models| models.contains(&model))
    }

    /// The answers and lapses recorded for `node` (lapses of leases on chunks
    /// still open are the scheduler's to see, from the leases themselves).
    pub fn reliability(&self, node: &NodeId) -> Reliability {
        self.state
            .reliability
            .get(node)
            .copied()
            .unwrap_or_default()
    }

    /// A chat command seen in the room (`!run`, `!transcribe`): the task the
    /// coordinator starts for it must name its real sender. A tab that has
    /// not seen the message (older than what its client loaded) cannot check.
    pub fn note_chat_command(&mut self, event_id: EventId, sender: UserId, sent_at: u64) {
        self.insert(SeenEvent {
            event_id,
            sender,
            origin_server_ts: sent_at,
            event: PotluckEvent::ChatCommand,
        });
    }

    /// A redaction took `event_id` out of the room: fold the ledger again
    /// without it, as a tab opening now reads it (a redacted event keeps no
    /// content, so every node refuses what is left of it). Returns the event
    /// if the ledger held it.
    pub fn redact(&mut self, event_id: &EventId) -> Option<SeenEvent> {
        let at = self.events.iter().position(|e| &e.event_id == event_id)?;
        let removed = self.events.remove(at);
        if let Some(online) = time_online(&removed) {
            self.events.retain(|e| e.event_id != online.event_id);
        }
        self.refold();
        Some(removed)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeRecord> {
        self.state.nodes.values()
    }
    pub fn node(&self, id: &NodeId) -> Option<&NodeRecord> {
        self.state.nodes.get(id)
    }
    pub fn online_nodes(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes().filter(|n| n.online)
    }
    pub fn tasks(&self) -> impl Iterator<Item = &TaskRecord> {
        self.state.tasks.values()
    }
    pub fn task(&self, id: &EventId) -> Option<&TaskRecord> {
        self.state.tasks.get(id)
    }
    pub fn usage(&self) -> &Usage {
        &self.state.usage
    }
    /// The task a chat command started, if one did.
    pub fn task_for_command(&self, command: &EventId) -> Option<&EventId> {
        self.state.commands.get(command)
    }
    /// The scripts the room allows, as the latest allowlist state says.
    pub fn allowlist(&self) -> &Allowlist {
        &self.state.allowlist
    }
    pub fn rejections(&self) -> impl Iterator<Item = &Rejection> {
        self.state.rejections.iter()
    }
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// The coordinator: the online node that has been online longest (ties by
    /// id). Every node computes the same answer from the same events, and when
    /// the coordinator's tab closes the homeserver's "node gone" event hands the
    /// role to the next one.
    pub fn coordinator(&self) -> Option<&NodeId> {
        self.state.coordinator.as_ref()
    }

    fn node_online(&self, node: &NodeId) -> bool {
        self.node(node).is_some_and(|n| n.online)
    }

    /// Leases on a chunk that still count at `now`: live ones, and once the
    /// chunk has used all its attempts, any that can still deliver a late result.
    pub fn held_leases<'a>(&'a self, chunk: &'a ChunkRecord, now: u64) -> Vec<&'a Lease> {
        if chunk.is_settled() {
            return Vec::new();
        }
        let exhausted = chunk.attempts >= max_attempts(chunk.replicas);
        chunk
            .leases
            .iter()
            .filter(|l| self.node_online(&l.node))
            .filter(|l| !l.soft_expired(now) || (exhausted && l.accepts_result_at(now)))
            .collect()
    }

    /// More nodes a chunk should be issued to now (0 unless it is `Ready`).
    pub fn replicas_wanted(&self, chunk: &ChunkRecord, now: u64) -> u32 {
        if self.chunk_status(chunk, now) != ChunkStatus::Ready {
            return 0;
        }
        let held = self.held_leases(chunk, now).len() + chunk.votes.len() + chunk.errors.len();
        let wanted = usize::from(chunk.replicas).saturating_sub(held) as u32;
        wanted.min(max_attempts(chunk.replicas).saturating_sub(chunk.attempts))
    }

    pub fn chunk_status<'a>(&'a self, chunk: &'a ChunkRecord, now: u64) -> ChunkStatus<'a> {
        match &chunk.settled {
            Some(Settled::Done(done)) => return ChunkStatus::Done(done),
            Some(Settled::Failed(reason)) => return ChunkStatus::Failed(reason.clone()),
            None => {}
        }
        let held = self.held_leases(chunk, now);
        let covered = held.len() + chunk.votes.len() >= usize::from(chunk.replicas);
        if covered && !held.is_empty() {
            return ChunkStatus::Running(held);
        }
        let limit = max_attempts(chunk.replicas);
        if chunk.attempts >= limit {
            // Only give up once no lease can still deliver a late result.
            if held.is_empty() {
                return ChunkStatus::Failed(format!("gave up after {limit} attempts"));
            }
            return ChunkStatus::Running(held);
        }
        if now < chunk.retry_after {
            return ChunkStatus::BackingOff {
                until: chunk.retry_after,
            };
        }
        ChunkStatus::Ready
    }

    /// A task's state, its subtasks included: it is done when its own chunks
    /// and all its parts are, and fails when one of them fails.
    pub fn task_status(&self, task: &TaskRecord, now: u64) -> TaskStatus {
        let own = self.own_status(task, now);
        if task.children.is_empty()
            || (own.is_terminal() && !matches!(own, TaskStatus::Done { .. }))
        {
            return own;
        }
        let parts: Vec<(&TaskRecord, TaskStatus)> = task
            .children
            .iter()
            .filter_map(|id| self.task(id))
            .map(|child| (child, self.own_status(child, now)))
            .collect();
        let count = parts.len();
        let mut done = task.chunks.iter().filter(|c| c.done().is_some()).count() as u32;
        let mut total = task.chunks.len() as u32;
        let mut results = Vec::new();
        for (index, (child, status)) in parts.into_iter().enumerate() {
            let part = index + 1;
            total = total.saturating_add(child.chunks.len() as u32);
            match status {
                TaskStatus::Failed { reason } => {
                    return TaskStatus::Failed {
                        reason: format!("part {part} of {count}: {reason}"),
                    }
                }
                TaskStatus::Cancelled { .. } => {
                    return TaskStatus::Failed {
                        reason: format!("part {part} of {count} was cancelled"),
                    }
                }
                TaskStatus::Done { result } => {
                    done = done.saturating_add(child.chunks.len() as u32);
                    results.push(result);
                }
                TaskStatus::Running { done: d, .. } => done = done.saturating_add(d),
                TaskStatus::Queued => {}
            }
        }
        match own {
            TaskStatus::Done { result } if results.len() == count => {
                match task.spec.kind.merge_parts(&result, &results) {
                    Ok(result) => TaskStatus::Done { result },
                    Err(e) => TaskStatus::Failed {
                        reason: e.to_string(),
                    },
                }
            }
            _ => TaskStatus::Running { done, total },
        }
    }

    /// Whether nothing more of `task` will run: cancelled (itself or its
    /// parent), refused, past its deadline, or failed. Cheap, unlike
    /// `task_status` (which merges outputs): the scheduler asks it for every
    /// task, so that a stopped task's leases hold no worker.
    pub fn is_stopped(&self, task: &TaskRecord, now: u64) -> bool {
        let parent = task.spec.parent.as_ref().and_then(|p| self.task(p));
        let past_deadline = task
            .spec
            .deadline_ms
            .is_some_and(|d| now > task.submitted_at.saturating_add(d));
        task.cancelled.is_some()
            || task.refused.is_some()
            || parent.is_some_and(|p| p.cancelled.is_some())
            || past_deadline
            || task.chunks.iter().any(|c| c.failed().is_some())
    }

    /// A task's state from its own chunks alone.
    fn own_status(&self, task: &TaskRecord, now: u64) -> TaskStatus {
        if let Some(Cancellation { reason }) = &task.cancelled {
            return TaskStatus::Cancelled {
                reason: reason.clone(),
            };
        }
        if let Some(refused) = &task.refused {
            return TaskStatus::Failed {
                reason: refused.to_string(),
            };
        }
        let parent = task.spec.parent.as_ref().and_then(|p| self.task(p));
        if parent.is_some_and(|p| p.cancelled.is_some()) {
            return TaskStatus::Cancelled {
                reason: Some("its parent task was cancelled".into()),
            };
        }
        let finished = task.chunks.iter().all(|c| c.done().is_some());
        if let Some(deadline) = task.spec.deadline_ms {
            let missed = task.chunks.iter().any(|c| {
                c.done()
                    .is_none_or(|d| d.at > task.submitted_at.saturating_add(deadline))
            });
            if now > task.submitted_at.saturating_add(deadline) && (!finished || missed) {
                return TaskStatus::Failed {
                    reason: format!("not done within its deadline of {} s", deadline / 1000),
                };
            }
        }
        let mut done = 0;
        let mut started = false;
        for (index, chunk) in task.chunks.iter().enumerate() {
            match self.chunk_status(chunk, now) {
                ChunkStatus::Done(_) => done += 1,
                ChunkStatus::Failed(reason) => {
                    return TaskStatus::Failed {
                        reason: format!("chunk {} of {}: {reason}", index + 1, task.chunks.len()),
                    }
                }
                ChunkStatus::Running(_) | ChunkStatus::BackingOff { .. } => started = true,
                ChunkStatus::Ready => started |= chunk.attempts > 0,
            }
        }
        if done as usize == task.chunks.len() {
            let outputs = task
                .chunks
                .iter()
                .filter_map(|c| c.done().map(|d| &*d.output));
            return match task.spec.merge(outputs) {
                Ok(result) => TaskStatus::Done { result },
                Err(e) => TaskStatus::Failed {
                    reason: e.to_string(),
                },
            };
        }
        if started || done > 0 {
            TaskStatus::Running {
                done,
                total: task.chunks.len() as u32,
            }
        } else {
            TaskStatus::Queued
        }
    }
}

impl State {
    fn elect_coordinator(&mut self) {
        self.coordinator = self
            .nodes
            .values()
            .filter(|n| n.online)
            .min_by(|a, b| (a.since, &a.id).cmp(&(b.since, &b.id)))
            .map(|n| n.id.clone());
    }

    /// Whether the event's sender owns the coordinator, as of the events before it.
    fn sent_by_coordinator(&self, event: &SeenEvent) -> bool {
        self.coordinator
            .as_ref()
            .is_some_and(|c| c.is_owned_by(&event.sender))
    }

    fn remember(&mut self, rejection: Rejection) {
        if self.rejections.len() == MAX_REJECTIONS_KEPT {
            self.rejections.pop_front();
        }
        self.rejections.push_back(rejection);
    }

    fn reject(&mut self, event: &SeenEvent, refused: Refused) {
        self.remember(Rejection {
            event_id: Some(event.event_id.to_string()),
            reason: refused.into(),
        });
    }

    /// Keeps an event about a task not seen yet, to apply when the task comes
    /// (a relation can arrive before its task).
    fn park(&mut self, task: &EventId, event: &SeenEvent) {
        self.orphans
            .entry(task.clone())
            .or_default()
            .push(event.clone());
    }

    fn apply(&mut self, event: &SeenEvent) {
        let ts = event.origin_server_ts;
        match &event.event {
            PotluckEvent::NodeOnline { node, caps, since } => {
                // A node that updates its capabilities keeps its seniority
                // (and so the coordinator role): it never went away. A tab
                // that missed its first announcement (it reads current state
                // only) takes the seniority it states, never later than now.
                let since = match self.nodes.get(node) {
                    Some(record) if record.online => record.since,
                    _ => since.map_or(ts, |s| s.min(ts)),
                };
                let was_online = self.nodes.get(node).is_some_and(|r| r.online);
                if !was_online {
                    self.warm_models.remove(node);
                }
                self.nodes.insert(
                    node.clone(),
                    NodeRecord {
                        id: node.clone(),
                        caps: NodeCaps::clone(caps),
                        online: true,
                        since,
                    },
                );
                self.elect_coordinator();
            }
            PotluckEvent::NodeGone { node, .. } => {
                if let Some(record) = self.nodes.get_mut(node) {
                    record.online = false;
                    self.elect_coordinator();
                }
            }
            PotluckEvent::Task(spec) => {
                if let Some(parent) = spec
                    .parent
                    .as_ref()
                    .filter(|p| !self.tasks.contains_key(*p))
                {
                    return self.park(parent, event);
                }
                if let Some(nonce) = &spec.nonce {
                    let key = (event.sender.clone(), nonce.clone());
                    if let Some(first) = self.nonces.get(&key) {
                        let refused = Refused::Resend {
                            first: first.clone(),
                        };
                        return self.reject(event, refused);
                    }
                    self.nonces.insert(key, event.event_id.clone());
                }
                let submitter = match (&spec.parent, &spec.command) {
                    (Some(parent), None) => match self.adopt(event, parent) {
                        Ok(submitter) => submitter,
                        Err(reason) => return self.reject(event, reason),
                    },
                    (None, Some(command)) => match self.take_command(event, command) {
                        Ok(()) => command.sender.clone(),
                        Err(reason) => return self.reject(event, reason),
                    },
                    (None, None) => event.sender.clone(),
                    (Some(_), Some(_)) => return self.reject(event, Refused::PartFromChat),
                };
                let record = TaskRecord {
                    id: event.event_id.clone(),
                    submitter,
                    spec: spec.clone(),
                    submitted_at: ts,
                    chunks: vec![ChunkRecord::new(spec.replication); spec.chunks as usize],
                    children: Vec::new(),
                    refused: self.refusal(&spec.kind),
                    cancelled: None,
                };
                self.tasks.insert(event.event_id.clone(), record);
                for orphan in self.orphans.remove(&event.event_id).unwrap_or_default() {
                    self.apply(&orphan);
                }
            }
            PotluckEvent::Allowlist(list) => self.allowlist = list.clone(),
            PotluckEvent::Membership { user } => {
                let mut changed = false;
                for record in self.nodes.values_mut() {
                    if record.online && record.id.is_owned_by(user) {
                        record.online = false;
                        changed = true;
                    }
                }
                if changed {
                    self.elect_coordinator();
                }
            }
            PotluckEvent::ChatCommand => {
                self.chat_senders
                    .insert(event.event_id.clone(), event.sender.clone());
            }
            PotluckEvent::Assign { task, .. }
            | PotluckEvent::Result { task, .. }
            | PotluckEvent::Progress { task, .. }
            | PotluckEvent::Cancel { task, .. } => match self.tasks.get_index_of(task) {
                Some(at) => self.apply_relation(event, at),
                None => self.park(task, event),
            },
        }
    }

    /// Applies an event about the task at index `task` of `self.tasks`.
    fn apply_relation(&mut self, event: &SeenEvent, task: usize) {
        match &event.event {
            PotluckEvent::Assign { assignments, .. } => self.apply_assign(event, task, assignments),
            PotluckEvent::Result { node, outcomes, .. } => {
                self.apply_result(event, task, node, outcomes)
            }
            PotluckEvent::Progress { node, chunks, .. } => {
                self.apply_progress(event, task, node, chunks)
            }
            PotluckEvent::Cancel { reason, .. } => self.apply_cancel(event, task, reason),
            PotluckEvent::NodeOnline { .. }
            | PotluckEvent::NodeGone { .. }
            | PotluckEvent::Task(_)
            | PotluckEvent::Allowlist(_)
            | PotluckEvent::Membership { .. }
            | PotluckEvent::ChatCommand => {}
        }
    }

    fn apply_cancel(&mut self, event: &SeenEvent, task: usize, reason: &Option<String>) {
        let record = &self.tasks[task];
        if record.submitter != event.sender {
            let refused = Refused::NotSubmitter {
                submitter: record.submitter.clone(),
            };
            return self.reject(event, refused);
        }
        let finished = record.own_chunks_done()
            && record
                .children
                .iter()
                .all(|c| self.tasks.get(c).is_some_and(TaskRecord::own_chunks_done));
        let record = &mut self.tasks[task];
        if record.cancelled.is_none() && !finished {
            record.cancelled = Some(Cancellation {
                reason: reason.clone(),
            });
        }
    }

    /// Why a task of this kind may not run here, judged by the allowlist in
    /// force when it was submitted.
    fn refusal(&self, kind: &TaskKind) -> Option<NotAllowed> {
        match kind {
            TaskKind::Script(script) => self.allowlist.allows(script).err(),
            TaskKind::Kernel(kernel) => self.allowlist.allows_kernel(kernel).err(),
            TaskKind::Primes { .. } | TaskKind::Transcribe(_) => None,
        }
    }

    /// A task for a chat command is the coordinator's to submit (so one node
    /// decides, and nobody can start work in another friend's name), once.
    fn take_command(&mut self, event: &SeenEvent, command: &ChatCommand) -> Result<(), Refused> {
        if !self.sent_by_coordinator(event) {
            return Err(Refused::CommandNotByCoordinator {
                sender: event.sender.clone(),
            });
        }
        if let Some(sender) = self
            .chat_senders
            .get(&command.event_id)
            .filter(|s| **s != command.sender)
        {
            return Err(Refused::CommandInAnotherName {
                sender: event.sender.clone(),
                named: command.sender.clone(),
                actual: sender.clone(),
            });
        }
        let command = &command.event_id;
        if let Some(first) = self.commands.get(command) {
            return Err(Refused::CommandAlreadyStarted {
                command: command.clone(),
                first: first.clone(),
            });
        }
        self.commands
            .insert(command.clone(), event.event_id.clone());
        Ok(())
    }

    /// Takes a subtask into its parent's family and returns whose fair share
    /// it uses, or why it may not join.
    fn adopt(&mut self, event: &SeenEvent, parent: &EventId) -> Result<UserId, Refused> {
        let parent_id = || parent.clone();
        let by_coordinator = self.sent_by_coordinator(event);
        let Some(record) = self.tasks.get_mut(parent) else {
            return Err(Refused::UnknownParent {
                parent: parent_id(),
            });
        };
        if record.spec.parent.is_some() {
            return Err(Refused::PartOfAPart);
        }
        let splitting = record
            .chunks
            .iter()
            .any(|c| c.leases.iter().any(|l| l.node.is_owned_by(&event.sender)));
        // The coordinator splits a plan it claimed (see `apply_result`): it
        // holds no lease, and nobody else does.
        let claimed_by_sender = by_coordinator
            && record.spec.claimed_by_coordinator()
            && record.chunks.iter().all(|c| c.leases.is_empty());
        let splitting = splitting || claimed_by_sender;
        if record.submitter != event.sender && !splitting {
            return Err(Refused::NotSplitter {
                sender: event.sender.clone(),
                parent: parent_id(),
            });
        }
        let settled = record.cancelled.is_some()
            || record.own_chunks_done()
            || record.chunks.iter().any(|c| c.failed().is_some());
        if settled {
            return Err(Refused::ParentFinished {
                parent: parent_id(),
            });
        }
        if record.children.len() >= MAX_SUBTASKS {
            return Err(Refused::TooManyParts {
                parent: parent_id(),
            });
        }
        record.children.push(event.event_id.clone());
        Ok(record.submitter.clone())
    }

    fn apply_assign(&mut self, event: &SeenEvent, task: usize, assignments: &[Assignment]) {
        // One coordinator at a time, decided by the events before this one:
        // a node that wrongly thought itself coordinator (it had not yet seen
        // an older node) assigns nothing.
        if !self.sent_by_coordinator(event) {
            let refused = Refused::AssignNotByCoordinator {
                sender: event.sender.clone(),
            };
            return self.reject(event, refused);
        }
        for a in assignments {
            // A node that is not online gets its lease all the same: it only
            // counts once the node is online (see `held_leases`), and a tab
            // that opens later may not know the node at all (its owner's last
            // state says nothing of it) yet must grant what the others did.
            let can_run = self
                .nodes
                .get(&a.node)
                .is_none_or(|n| self.tasks[task].spec.runs_on(&n.caps));
            let record = &mut self.tasks[task];
            let Some(chunk) = record.chunks.get_mut(a.chunk as usize) else {
                self.reject(event, Refused::NoSuchChunk { chunk: a.chunk });
                continue;
            };
            if chunk.is_settled() || record.cancelled.is_some() {
                continue;
            }
            // Attempts count up one replica (or one backup) at a time: an
            // assignment that skips ahead would burn the chunk's retries.
            let furthest = chunk.attempts.saturating_add(u32::from(chunk.replicas) + 1);
            if a.attempt == 0 || a.attempt > furthest {
                let refused = Refused::AttemptSkipsAhead {
                    chunk: a.chunk,
                    attempt: a.attempt,
                    issued: chunk.attempts,
                };
                self.reject(event, refused);
                continue;
            }
            // An assignment to a node that cannot take it still uses its
            // attempt, so attempts count alike in every tab.
            chunk.attempts = chunk.attempts.max(a.attempt);
            let refused = if chunk.answered_by(&a.node) {
                Some(Refused::AlreadyRan {
                    chunk: a.chunk,
                    node: a.node.clone(),
                })
            } else if !can_run {
                Some(Refused::CannotRun {
                    chunk: a.chunk,
                    node: a.node.clone(),
                })
            } else {
                None
            };
            if let Some(refused) = refused {
                self.reject(event, refused);
                continue;
            }
            // Most chunks only ever hold as many leases as they have replicas.
            chunk.leases.reserve_exact(usize::from(chunk.replicas));
            chunk.leases.push(Lease {
                node: a.node.clone(),
                attempt: a.attempt,
                granted_at: event.origin_server_ts,
                renewed_at: event.origin_server_ts,
                progress: 0.0,
            });
        }
    }

    /// A progress report renews the leases it names, if they are still live:
    /// after the soft timeout the chunk has been issued again, and a late
    /// report does not take it back.
    fn apply_progress(
        &mut self,
        event: &SeenEvent,
        task: usize,
        node: &NodeId,
        reports: &[ChunkProgress],
    ) {
        let ts = event.origin_server_ts;
        let record = &mut self.tasks[task];
        let mut unknown = Vec::new();
        for report in reports {
            let lease = record.chunks.get_mut(report.chunk as usize).and_then(|c| {
                c.leases
                    .iter_mut()
                    .find(|l| &l.node == node && l.attempt == report.attempt)
            });
            match lease {
                Some(lease) if !lease.soft_expired(ts) => {
                    lease.renewed_at = lease.renewed_at.max(ts);
                    lease.progress = f32::from(report.percent.min(100)) / 100.0;
                }
                Some(_) => {}
                None => unknown.push(report.chunk),
            }
        }
        for chunk in unknown {
            let refused = Refused::ProgressWithoutLease {
                node: node.clone(),
                chunk,
            };
            self.reject(event, refused);
        }
    }

    fn apply_result(
        &mut self,
        event: &SeenEvent,
        task: usize,
        node: &NodeId,
        outcomes: &[ChunkOutcome],
    ) {
        let ts = event.origin_server_ts;
        // A coordinator claims only work its machine takes.
        let can_run = (self.nodes.get(node)).is_none_or(|n| self.tasks[task].spec.runs_on(&n.caps));
        let record = &mut self.tasks[task];
        let mut rejections = Vec::new();
        for o in outcomes {
            let Some(chunk) = record.chunks.get_mut(o.chunk as usize) else {
                rejections.push(Refused::NoSuchChunk { chunk: o.chunk });
                continue;
            };
            if chunk.is_settled() || record.cancelled.is_some() {
                // First valid result wins; later ones are ignored, not errors.
                continue;
            }
            // The coordinator's own claim: a chunk nobody holds, which the
            // coordinator ran itself without spending an assignment event on
            // it, as its next attempt. Only while it coordinates: after a
            // handover the new coordinator may have given the chunk away.
            let own_claim = chunk.leases.is_empty()
                && record.spec.claimed_by_coordinator()
                && o.attempt == chunk.attempts.saturating_add(1)
                && o.attempt <= max_attempts(chunk.replicas)
                && ts >= chunk.retry_after
                && can_run
                && self.coordinator.as_ref() == Some(node);
            if own_claim {
                chunk.attempts = o.attempt;
                chunk.leases.push(Lease {
                    node: node.clone(),
                    attempt: o.attempt,
                    granted_at: record.submitted_at,
                    renewed_at: record.submitted_at,
                    progress: 0.0,
                });
            }
            let Some(lease_at) = chunk
                .leases
                .iter()
                .position(|l| &l.node == node && l.attempt == o.attempt)
            else {
                rejections.push(Refused::NoLease {
                    node: node.clone(),
                    chunk: o.chunk,
                    attempt: o.attempt,
                });
                continue;
            };
            let granted_at = chunk.leases[lease_at].granted_at;
            if !chunk.leases[lease_at].accepts_result_at(ts) {
                rejections.push(Refused::AfterDeadline { chunk: o.chunk });
                continue;
            }
            let reliability = self.reliability.entry(node.clone()).or_default();
            reliability.last_answer = reliability.last_answer.max(ts);
            // The node gives its lease back with its output or its error.
            chunk.leases.remove(lease_at);
            match &o.outcome {
                Outcome::Output(output) => {
                    if let Err(error) = record.spec.check_output(output) {
                        rejections.push(Refused::BadOutput {
                            chunk: o.chunk,
                            error,
                        });
                        continue;
                    }
                    if let TaskKind::Transcribe(transcription) = &record.spec.kind {
                        if transcription.ran_whisper(output) {
                            let warm = self.warm_models.entry(node.clone()).or_default();
                            warm.insert(transcription.model);
                        }
                    }
                    let leased_ms = ts.saturating_sub(granted_at);
                    let took_ms = o.compute_ms.map_or(leased_ms, |ms| ms.min(leased_ms));
                    // Usage counts running time, not time spent in a node's queue.
                    self.usage
                        .record(&record.submitter, took_ms as f64 / 1000.0, ts);
                    let vote = ChunkDone {
                        node: node.clone(),
                        attempt: o.attempt,
                        output: Arc::clone(output),
                        at: ts,
                        took_ms,
                        dissent: Vec::new(),
                    };
                    if chunk.replicas == 1 {
                        // Nothing to vote on: the first valid output wins.
                        chunk.settled = Some(Settled::Done(vote));
                        release_leases(&mut self.reliability, chunk, ts);
                    } else if !chunk.answered_by(node) {
                        // One vote per node, however many leases it got.
                        chunk.votes.push(vote);
                        count_votes(chunk, ts, &mut self.reliability);
                    }
                }
                Outcome::Error { reason, retriable } => {
                    if *retriable {
                        let backoff = BACKOFF_BASE_MS << (o.attempt.saturating_sub(1)).min(10);
                        chunk.retry_after = chunk.retry_after.max(ts.saturating_add(backoff));
                    } else if chunk.replicas == 1 {
                        chunk.settled = Some(Settled::Failed(reason.clone()));
                    } else if !chunk.answered_by(node) {
                        // A replica's error votes for no output: the others'
                        // agreement still decides, and only when no output can
                        // reach a majority any more does the chunk fail.
                        chunk.errors.push((node.clone(), reason.clone()));
                        count_votes(chunk, ts, &mut self.reliability);
                    }
                }
            }
        }
        for refused in rejections {
            self.reject(event, refused);
        }
    }
}

/// A chunk settled: its leases go, and those that had lapsed unanswered (the
/// node neither answered nor reported progress) are recorded against their
/// nodes first.
fn release_leases(
    reliability: &mut SortedMap<NodeId, Reliability>,
    chunk: &mut ChunkRecord,
    ts: u64,
) {
    for lease in chunk.leases.iter().filter(|l| l.soft_expired(ts)) {
        let entry = reliability.entry(lease.node.clone()).or_default();
        entry.last_lapse = entry.last_lapse.max(lease.lapsed_at());
    }
    chunk.leases.clear();
}

/// Settles a chunk once a majority of its replicas agree on one output, or
/// fails it once no output can reach a majority any more: a disagreement is
/// reported, never resolved by picking one. A settled chunk's leases go.
fn count_votes(chunk: &mut ChunkRecord, ts: u64, reliability: &mut SortedMap<NodeId, Reliability>) {
    let quorum = chunk.quorum();
    let mut best: Option<(&ChunkDone, usize)> = None;
    for vote in &chunk.votes {
        let agreeing = chunk
            .votes
            .iter()
            .filter(|v| v.output == vote.output)
            .count();
        if best.is_none_or(|(_, n)| agreeing > n) {
            best = Some((vote, agreeing));
        }
    }
    let agreeing = best.map_or(0, |(_, n)| n);
    if let Some((vote, _)) = best.filter(|(_, n)| *n >= quorum) {
        let dissent = chunk
            .votes
            .iter()
            .filter(|v| v.output != vote.output)
            .map(|v| v.node.clone())
            .chain(chunk.errors.iter().map(|(node, _)| node.clone()))
            .collect();
        chunk.settled = Some(Settled::Done(ChunkDone {
            at: ts,
            dissent,
            ..vote.clone()
        }));
        release_leases(reliability, chunk, ts);
        return;
    }
    let answered = chunk.votes.len() + chunk.errors.len();
    let outstanding = usize::from(chunk.replicas).saturating_sub(answered);
    if agreeing + outstanding < quorum {
        let mut distinct: Vec<&Value> = Vec::new();
        for v in &chunk.votes {
            if !distinct.contains(&&*v.output) {
                distinct.push(&v.output);
            }
        }
        chunk.settled = Some(Settled::Failed(match chunk.errors.first() {
            Some((_, reason)) if distinct.len() <= 1 => format!(
                "{} of its {} replicas failed: {reason}",
                chunk.errors.len(),
                chunk.replicas
            ),
            _ => format!(
                "its {} replicas disagree: {} different outputs and {} errors, no majority",
                answered,
                distinct.len(),
                chunk.errors.len()
            ),
        }));
        release_leases(reliability, chunk, ts);
    }
}
