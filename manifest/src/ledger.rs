//! The ledger: a pure fold from the events a node saw to the state of every
//! task and node.
//!
//! Events are applied in homeserver order, `(origin_server_ts, event_id)`, not
//! in the order they arrived, so two nodes that saw the same events agree,
//! whatever the order, duplicates or delays. An event that arrives late (sorts
//! before one already applied) makes the ledger fold again from the start.
//! Nothing here reads a sender's own clock: the homeserver's timestamps and the
//! caller's `now` are the only times.

use crate::events::{
    Assignment, ChunkOutcome, NodeCaps, Outcome, PotluckEvent, SeenEvent, TaskSpec,
};
use crate::fairness::Usage;
use crate::ids::{EventId, NodeId, UserId};
use crate::limits::{
    BACKOFF_BASE_MS, LEASE_HARD_MS, LEASE_SOFT_MS, MAX_ATTEMPTS, MAX_REJECTIONS_KEPT,
};
use crate::validate::{parse_event, Rejection};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet, VecDeque};

#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    pub id: NodeId,
    pub caps: NodeCaps,
    pub online: bool,
    /// When the node last announced itself (homeserver time).
    pub since: u64,
}

/// A node's right to run one chunk, from the assignment's timestamp on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub node: NodeId,
    pub attempt: u32,
    pub granted_at: u64,
}

impl Lease {
    pub fn soft_expired(&self, now: u64) -> bool {
        now >= self.granted_at.saturating_add(LEASE_SOFT_MS)
    }
    pub fn accepts_result_at(&self, ts: u64) -> bool {
        ts <= self.granted_at.saturating_add(LEASE_HARD_MS)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChunkDone {
    pub node: NodeId,
    pub attempt: u32,
    pub output: Value,
    pub at: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkRecord {
    /// Leases not yet given back; a node gives one back by reporting an error.
    pub leases: Vec<Lease>,
    /// The highest attempt issued so far.
    pub attempts: u32,
    /// A retriable failure asks to wait until then.
    pub retry_after: u64,
    pub done: Option<ChunkDone>,
    pub failed: Option<String>,
}

/// What a chunk is doing at a given moment.
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkStatus<'a> {
    Done(&'a ChunkDone),
    Failed(String),
    /// Held by nodes whose leases are live.
    Running(Vec<&'a Lease>),
    /// Waiting out a back-off after a retriable failure.
    BackingOff {
        until: u64,
    },
    /// Ready to be assigned.
    Ready,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub id: EventId,
    pub submitter: UserId,
    pub spec: TaskSpec,
    pub submitted_at: u64,
    pub chunks: Vec<ChunkRecord>,
    pub cancelled: Option<Option<String>>,
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

#[derive(Debug, Clone, Default)]
struct State {
    nodes: BTreeMap<NodeId, NodeRecord>,
    tasks: BTreeMap<EventId, TaskRecord>,
    /// Tasks by (submitter, nonce), to recognise a resent submission.
    nonces: BTreeMap<(UserId, String), EventId>,
    /// Relations whose task has not been seen yet, replayed when it arrives.
    orphans: BTreeMap<EventId, Vec<SeenEvent>>,
    usage: Usage,
    rejections: VecDeque<Rejection>,
}

/// Homeserver order: timestamp, then event id to break ties the same way everywhere.
fn order_key(event: &SeenEvent) -> (u64, EventId) {
    (event.origin_server_ts, event.event_id.clone())
}

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Every accepted event in homeserver order, kept to fold again when one arrives late.
    events: BTreeMap<(u64, EventId), SeenEvent>,
    seen: HashSet<EventId>,
    state: State,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one raw event from the room. Returns the rejection, if any, so
    /// the caller can log it; the ledger keeps the latest few too.
    pub fn ingest(&mut self, raw: &Value) -> Result<(), Rejection> {
        self.ingest_all(std::iter::once(raw))
            .pop()
            .map_or(Ok(()), Err)
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
                Err(rejection) => {
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
        self.insert_all(vec![event]);
    }

    fn insert_all(&mut self, mut fresh: Vec<SeenEvent>) {
        fresh.retain(|e| self.seen.insert(e.event_id.clone()));
        fresh.sort_by_key(order_key);
        let in_order = match (fresh.first(), self.events.last_key_value()) {
            (Some(first), Some((last, _))) => *last < order_key(first),
            _ => true,
        };
        for event in fresh {
            let event = self.events.entry(order_key(&event)).or_insert(event);
            if in_order {
                self.state.apply(event);
            }
        }
        if !in_order {
            self.refold();
        }
    }

    fn refold(&mut self) {
        let rejections = std::mem::take(&mut self.state.rejections);
        self.state = State {
            rejections,
            ..State::default()
        };
        for event in self.events.values() {
            self.state.apply(event);
        }
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
        self.state.coordinator()
    }

    pub fn chunk_status<'a>(&'a self, chunk: &'a ChunkRecord, now: u64) -> ChunkStatus<'a> {
        if let Some(done) = &chunk.done {
            return ChunkStatus::Done(done);
        }
        if let Some(reason) = &chunk.failed {
            return ChunkStatus::Failed(reason.clone());
        }
        let live: Vec<&Lease> = chunk
            .leases
            .iter()
            .filter(|l| !l.soft_expired(now) && self.node(&l.node).is_some_and(|n| n.online))
            .collect();
        if !live.is_empty() {
            return ChunkStatus::Running(live);
        }
        if chunk.attempts >= MAX_ATTEMPTS {
            // Only give up once no lease can still deliver a late result.
            let deliverable = chunk
                .leases
                .iter()
                .any(|l| l.accepts_result_at(now) && self.node(&l.node).is_some_and(|n| n.online));
            if !deliverable {
                return ChunkStatus::Failed(format!("gave up after {MAX_ATTEMPTS} attempts"));
            }
            return ChunkStatus::Running(chunk.leases.iter().collect());
        }
        if now < chunk.retry_after {
            return ChunkStatus::BackingOff {
                until: chunk.retry_after,
            };
        }
        ChunkStatus::Ready
    }

    pub fn task_status(&self, task: &TaskRecord, now: u64) -> TaskStatus {
        if let Some(reason) = &task.cancelled {
            return TaskStatus::Cancelled {
                reason: reason.clone(),
            };
        }
        let finished = task.chunks.iter().all(|c| c.done.is_some());
        if let Some(deadline) = task.spec.deadline_ms {
            let missed = task.chunks.iter().any(|c| {
                c.done
                    .as_ref()
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
                .filter_map(|c| c.done.as_ref().map(|d| &d.output));
            return match task.spec.kind.merge(outputs) {
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
    fn coordinator(&self) -> Option<&NodeId> {
        self.nodes
            .values()
            .filter(|n| n.online)
            .min_by(|a, b| (a.since, &a.id).cmp(&(b.since, &b.id)))
            .map(|n| &n.id)
    }

    fn remember(&mut self, rejection: Rejection) {
        if self.rejections.len() == MAX_REJECTIONS_KEPT {
            self.rejections.pop_front();
        }
        self.rejections.push_back(rejection);
    }

    fn reject(&mut self, event: &SeenEvent, reason: String) {
        self.remember(Rejection {
            event_id: Some(event.event_id.to_string()),
            reason,
        });
    }

    fn apply(&mut self, event: &SeenEvent) {
        let ts = event.origin_server_ts;
        // A relation can arrive before its task: park it until the task comes.
        if let Some(task) = event.event.task_referenced() {
            if !self.tasks.contains_key(task) {
                self.orphans
                    .entry(task.clone())
                    .or_default()
                    .push(event.clone());
                return;
            }
        }
        match &event.event {
            PotluckEvent::NodeOnline { node, caps } => {
                self.nodes.insert(
                    node.clone(),
                    NodeRecord {
                        id: node.clone(),
                        caps: caps.clone(),
                        online: true,
                        since: ts,
                    },
                );
            }
            PotluckEvent::NodeGone { node } => {
                if let Some(record) = self.nodes.get_mut(node) {
                    record.online = false;
                }
            }
            PotluckEvent::Task(spec) => {
                if let Some(nonce) = &spec.nonce {
                    let key = (event.sender.clone(), nonce.clone());
                    if let Some(first) = self.nonces.get(&key) {
                        let reason = format!("a resend of task {first}");
                        return self.reject(event, reason);
                    }
                    self.nonces.insert(key, event.event_id.clone());
                }
                let record = TaskRecord {
                    id: event.event_id.clone(),
                    submitter: event.sender.clone(),
                    spec: spec.clone(),
                    submitted_at: ts,
                    chunks: vec![ChunkRecord::default(); spec.chunks as usize],
                    cancelled: None,
                };
                self.tasks.insert(event.event_id.clone(), record);
                for orphan in self.orphans.remove(&event.event_id).unwrap_or_default() {
                    self.apply(&orphan);
                }
            }
            PotluckEvent::Assign { task, assignments } => {
                self.apply_assign(event, task, assignments)
            }
            PotluckEvent::Result {
                task,
                node,
                outcomes,
            } => self.apply_result(event, task, node, outcomes),
            PotluckEvent::Cancel { task, reason } => {
                let Some(record) = self.tasks.get_mut(task) else {
                    return;
                };
                if record.submitter != event.sender {
                    let reason = format!("only {} can cancel this task", record.submitter);
                    return self.reject(event, reason);
                }
                if record.cancelled.is_none() && !record.chunks.iter().all(|c| c.done.is_some()) {
                    record.cancelled = Some(reason.clone());
                }
            }
        }
    }

    fn apply_assign(&mut self, event: &SeenEvent, task: &EventId, assignments: &[Assignment]) {
        // One coordinator at a time, decided by the events before this one:
        // a node that wrongly thought itself coordinator (it had not yet seen
        // an older node) assigns nothing.
        if !self
            .coordinator()
            .is_some_and(|c| c.is_owned_by(&event.sender))
        {
            let reason = format!("{} assigned work but is not the coordinator", event.sender);
            return self.reject(event, reason);
        }
        for a in assignments {
            let node_online = self.nodes.get(&a.node).is_some_and(|n| n.online);
            let Some(record) = self.tasks.get_mut(task) else {
                return;
            };
            let Some(chunk) = record.chunks.get_mut(a.chunk as usize) else {
                let reason = format!("chunk {} does not exist", a.chunk);
                self.reject(event, reason);
                continue;
            };
            if !node_online {
                let reason = format!(
                    "chunk {} assigned to {}, which is not online",
                    a.chunk, a.node
                );
                self.reject(event, reason);
                continue;
            }
            if chunk.done.is_some() || chunk.failed.is_some() || record.cancelled.is_some() {
                continue;
            }
            chunk.attempts = chunk.attempts.max(a.attempt);
            chunk.leases.push(Lease {
                node: a.node.clone(),
                attempt: a.attempt,
                granted_at: event.origin_server_ts,
            });
        }
    }

    fn apply_result(
        &mut self,
        event: &SeenEvent,
        task: &EventId,
        node: &NodeId,
        outcomes: &[ChunkOutcome],
    ) {
        let ts = event.origin_server_ts;
        for o in outcomes {
            let Some(record) = self.tasks.get_mut(task) else {
                return;
            };
            let kind = record.spec.kind.clone();
            let submitter = record.submitter.clone();
            let cancelled = record.cancelled.is_some();
            let Some(chunk) = record.chunks.get_mut(o.chunk as usize) else {
                let reason = format!("chunk {} does not exist", o.chunk);
                self.reject(event, reason);
                continue;
            };
            if chunk.done.is_some() || chunk.failed.is_some() || cancelled {
                // First valid result wins; later ones are ignored, not errors.
                continue;
            }
            let Some(lease_at) = chunk
                .leases
                .iter()
                .position(|l| &l.node == node && l.attempt == o.attempt)
            else {
                let reason = format!(
                    "{node} holds no lease on chunk {} (attempt {})",
                    o.chunk, o.attempt
                );
                self.reject(event, reason);
                continue;
            };
            let lease = chunk.leases[lease_at].clone();
            if !lease.accepts_result_at(ts) {
                let reason = format!("result for chunk {} came after the hard deadline", o.chunk);
                self.reject(event, reason);
                continue;
            }
            match &o.outcome {
                Outcome::Output(output) => {
                    if let Err(e) = kind.check_output(output) {
                        chunk.leases.remove(lease_at);
                        let reason = format!("chunk {}: {e}", o.chunk);
                        self.reject(event, reason);
                        continue;
                    }
                    chunk.done = Some(ChunkDone {
                        node: node.clone(),
                        attempt: o.attempt,
                        output: output.clone(),
                        at: ts,
                    });
                    chunk.leases.clear();
                    let seconds = ts.saturating_sub(lease.granted_at) as f64 / 1000.0;
                    self.usage.record(&submitter, seconds, ts);
                }
                Outcome::Error { reason, retriable } => {
                    chunk.leases.remove(lease_at);
                    if *retriable {
                        let backoff = BACKOFF_BASE_MS << (o.attempt.saturating_sub(1)).min(10);
                        chunk.retry_after = chunk.retry_after.max(ts.saturating_add(backoff));
                    } else {
                        chunk.failed = Some(reason.clone());
                    }
                }
            }
        }
    }
}
