//! The room events of the protocol: their types, content schemas and how a
//! node builds the content it sends. Every content carries `"v": 1`.
//!
//! A task's id is the event id of its `org.potluck.task` event. Everything
//! about a task (assignments, results, cancel) is linked to that event with an
//! `m.reference` relation, so a node that opens the room later can read it all
//! back with `/relations`, even where its client shows no history.

use crate::allowlist::Allowlist;
use crate::ids::{EventId, MxcUri, NodeId, UserId};
use crate::kind_error::KindError;
use crate::task_kind::TaskKind;
use crate::transcription::{AudioRef, TranscribeTask, WhisperModel};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// Namespace of every Potluck event type.
pub const NAMESPACE: &str = "org.potluck";
/// The protocol version this code speaks; other versions are rejected, not guessed at.
pub const PROTOCOL_VERSION: u32 = 1;

pub mod event_type {
    /// State event, one per node (state key = node id): announce, or gone.
    pub const NODE: &str = "org.potluck.node";
    /// A task submitted to the pool.
    pub const TASK: &str = "org.potluck.task";
    /// The coordinator hands chunks of a task to nodes.
    pub const ASSIGN: &str = "org.potluck.assign";
    /// A node reports the outcomes of chunks it ran.
    pub const RESULT: &str = "org.potluck.result";
    /// A node says how far it got with long chunks, which renews their leases.
    pub const PROGRESS: &str = "org.potluck.progress";
    /// The submitter withdraws a task.
    pub const CANCEL: &str = "org.potluck.cancel";
    /// State event (empty state key): the scripts the room allows.
    pub const ALLOWLIST: &str = "org.potluck.allowlist";
    /// Every Potluck event type.
    pub const ALL: [&str; 7] = [NODE, TASK, ASSIGN, RESULT, PROGRESS, CANCEL, ALLOWLIST];
}

/// Room membership (state key = user id): a member who leaves takes their
/// nodes with them (not one of Potluck's types; nodes read it).
pub const MEMBER: &str = "m.room.member";

/// What a node offers. Announced when it starts contributing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCaps {
    /// Logical cores of the machine (`navigator.hardwareConcurrency`).
    pub cores: u32,
    /// Web Workers the friend gives to the pool.
    pub slots: u32,
    /// `navigator.deviceMemory` in MiB where the browser tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// WebGPU adapter available.
    #[serde(default)]
    pub webgpu: bool,
    /// Models already in this browser's cache.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Scripts (by integrity) the friend declined to run on this machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declined: Vec<String>,
}

/// What a task needs of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub webgpu: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_memory_mb: Option<u32>,
}

impl Requirements {
    pub fn met_by(&self, caps: &NodeCaps) -> bool {
        (!self.webgpu || caps.webgpu)
            && self
                .min_memory_mb
                .is_none_or(|need| caps.memory_mb.is_some_and(|have| have >= need))
    }
}

/// A file a task reads, in the homeserver's media repository. Events stay
/// small: the event carries where the file is and how to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub mxc: MxcUri,
    /// Bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the file, checked before a worker reads it.
    pub sha256: String,
}

/// A task as its submitter describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    #[serde(flatten)]
    pub kind: TaskKind,
    /// The task is split into this many chunks, which different nodes may run.
    pub chunks: u32,
    /// Higher runs first among one submitter's own tasks (never ahead of other friends).
    #[serde(default)]
    pub priority: i8,
    #[serde(default)]
    pub requirements: Requirements,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Input>,
    /// Milliseconds after submission by which the task must be done, else it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// How many different nodes run each chunk; a majority of identical
    /// outputs decides (see `limits::MAX_REPLICATION`).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub replication: u8,
    /// The task this one is a part of. Only the parent's submitter, or a node
    /// that holds a lease on the parent (the one splitting it), may add parts,
    /// and only before the parent's own chunks are all done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<EventId>,
    /// Chosen by the submitter's client: a second event with the same sender
    /// and nonce (a resend after a timeout) is the same task, not a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The chat message (`!run …`) this task was started from, by the
    /// coordinator on the sender's behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<ChatCommand>,
    /// Outputs go to the submitter alone, by to-device message; the room sees
    /// only their seals (see `private`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

/// A chat message that asked for a task, and who sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCommand {
    pub event_id: EventId,
    pub sender: UserId,
}

fn one() -> u8 {
    1
}
fn is_one(n: &u8) -> bool {
    *n == 1
}

impl TaskSpec {
    /// A new transcription of `audio`: one chunk, which plans.
    pub fn transcription(audio: AudioRef, model: WhisperModel) -> TaskSpec {
        let plan = TranscribeTask::plan(audio, model);
        TaskSpec::new(TaskKind::Transcribe(Box::new(plan)), 1)
    }

    /// The part a chunk's output adds to task `parent` (a transcription's
    /// plan adds the chunks that transcribe its spans); `None` for most.
    pub fn part_after(&self, parent: &EventId, output: &Value) -> Option<TaskSpec> {
        let TaskKind::Transcribe(transcribe) = &self.kind else {
            return None;
        };
        let spans = transcribe.spans_after(output)?;
        let chunks = spans.spans.len() as u32;
        let mut spec = TaskSpec::new(TaskKind::Transcribe(Box::new(spans)), chunks);
        spec.parent = Some(parent.clone());
        // A resend after a timeout is the same part, not a second one.
        spec.nonce = Some(format!("spans-of-{parent}"));
        Some(spec)
    }

    /// Whether a node with these capabilities can and will run this task.
    pub fn runs_on(&self, caps: &NodeCaps) -> bool {
        let declined = match &self.kind {
            TaskKind::Script(script) => caps.declined.contains(&script.integrity),
            TaskKind::Primes { .. } | TaskKind::Transcribe(_) | TaskKind::Kernel(_) => false,
        };
        // A kernel needs a GPU whatever its submitter wrote.
        let gpu_ok = caps.webgpu || !matches!(self.kind, TaskKind::Kernel(_));
        self.requirements.met_by(caps) && gpu_ok && !declined
    }

    /// Checks one chunk's output: a seal for a private task, else the kind's shape.
    pub fn check_output(&self, output: &Value) -> Result<(), KindError> {
        if self.private {
            crate::seal::check_sealed(output)
        } else {
            self.kind.check_output(output)
        }
    }

    /// The task's result in the room: the merged outputs, or for a private
    /// task only that it is done (its outputs are the submitter's).
    pub fn merge<'a>(
        &self,
        outputs: impl IntoIterator<Item = &'a Value>,
    ) -> Result<Value, KindError> {
        if self.private {
            let count = outputs.into_iter().count();
            Ok(serde_json::json!({ "private": true, "chunks": count }))
        } else {
            self.kind.merge(outputs)
        }
    }

    /// A task of `chunks` chunks with no inputs, deadline, replication or parent.
    pub fn new(kind: TaskKind, chunks: u32) -> Self {
        Self {
            kind,
            chunks,
            priority: 0,
            requirements: Requirements::default(),
            inputs: Vec::new(),
            deadline_ms: None,
            replication: 1,
            parent: None,
            nonce: None,
            command: None,
            private: false,
        }
    }
}

/// One chunk handed to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub chunk: u32,
    pub node: NodeId,
    /// 1 for the first issue of a chunk, 2 for its reissue, …
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The chunk's output, small JSON (see `limits::MAX_INLINE_OUTPUT_BYTES`),
    /// shared: the ledger keeps it without copying it.
    Output(Arc<Value>),
    Error {
        reason: String,
        retriable: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkOutcome {
    pub chunk: u32,
    pub attempt: u32,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Milliseconds the chunk ran on the node, so the coordinator can size
    /// each node's queue to the task (see `scheduler::free_capacity`). Absent
    /// from older nodes; the ledger then counts from the lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_ms: Option<u64>,
}

/// How far a node got with one chunk it holds a lease on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkProgress {
    pub chunk: u32,
    pub attempt: u32,
    /// Percent done, 0 to 100: Matrix events carry no fractional numbers.
    pub percent: u8,
}

/// A validated Potluck event, with what the homeserver says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenEvent {
    pub event_id: EventId,
    pub sender: UserId,
    /// The homeserver's timestamp: the only clock decisions are based on.
    pub origin_server_ts: u64,
    pub event: PotluckEvent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PotluckEvent {
    NodeOnline {
        node: NodeId,
        /// Boxed: the rarest event need not make every event in the ledger big.
        caps: Box<NodeCaps>,
        /// When the node says it came online, if it announced itself before:
        /// how a tab that reads only current state learns its seniority.
        since: Option<u64>,
    },
    NodeGone {
        node: NodeId,
        /// Since when it was online and what it offered (absent from older
        /// nodes and forgeries): a node's final state keeps the time it was
        /// online, so a tab opening later can check the work it did then.
        was: Option<Box<WasOnline>>,
    },
    /// Shared with the ledger's record of the task, not copied.
    Task(Arc<TaskSpec>),
    Assign {
        task: EventId,
        assignments: Vec<Assignment>,
    },
    Result {
        task: EventId,
        node: NodeId,
        outcomes: Vec<ChunkOutcome>,
    },
    Progress {
        task: EventId,
        node: NodeId,
        chunks: Vec<ChunkProgress>,
    },
    Cancel {
        task: EventId,
        reason: Option<String>,
    },
    Allowlist(Allowlist),
    /// A member's membership event (`m.room.member`): left, joined again, or
    /// a new display name. Their nodes go offline, and those still running
    /// announce themselves again: one who left cannot (nor can their leave
    /// notice fire), and a tab that opens later sees the same, whichever
    /// membership event is the latest.
    Membership {
        user: UserId,
    },
    /// A chat message asking for a task (`!run`, `!transcribe`), as the
    /// ledger notes it: who really sent it (`SeenEvent::sender`), to check
    /// the task the coordinator starts for it against.
    ChatCommand,
}

impl PotluckEvent {
    /// The task this event is about (for a subtask: its parent), which must
    /// be in the ledger before this event can be applied.
    pub fn task_referenced(&self) -> Option<&EventId> {
        match self {
            Self::Assign { task, .. }
            | Self::Result { task, .. }
            | Self::Progress { task, .. }
            | Self::Cancel { task, .. } => Some(task),
            Self::Task(spec) => spec.parent.as_ref(),
            Self::NodeOnline { .. }
            | Self::NodeGone { .. }
            | Self::Allowlist(_)
            | Self::Membership { .. }
            | Self::ChatCommand => None,
        }
    }
}

/// A gone node's time online, as its final state keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct WasOnline {
    pub since: u64,
    pub caps: NodeCaps,
}

/// What to send: a room event, or a state event with its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub event_type: &'static str,
    pub state_key: Option<String>,
    pub content: Value,
}

fn reference(task: &EventId) -> Value {
    json!({ "rel_type": "m.reference", "event_id": task })
}

/// A redaction: how the room says an event is gone (not one of Potluck's
/// types; nodes read it to forget what it removed).
pub const REDACTION: &str = "m.room.redaction";

impl Outgoing {
    pub fn node_online(node: &NodeId, caps: &NodeCaps) -> Self {
        Self::node_online_since(node, caps, None)
    }
    /// A node announcing itself again (new capabilities, or its state was
    /// overwritten) says since when it has been online: tabs that saw its
    /// first announcement keep what they saw, a tab opening later reads it.
    pub fn node_online_since(node: &NodeId, caps: &NodeCaps, since: Option<u64>) -> Self {
        let mut content = json!({ "v": PROTOCOL_VERSION, "online": true, "caps": caps });
        if let Some(since) = since {
            content["since"] = json!(since);
        }
        Self {
            event_type: event_type::NODE,
            state_key: Some(node.to_string()),
            content,
        }
    }
    /// A node gone, saying nothing of when it was online.
    pub fn node_gone(node: &NodeId) -> Self {
        Self {
            event_type: event_type::NODE,
            state_key: Some(node.to_string()),
            content: json!({ "v": PROTOCOL_VERSION, "online": false }),
        }
    }
    /// The content of the node's dead-man switch (a delayed event): gone, and
    /// online before since `since` with `caps`. Current state keeps only
    /// this, so it is all a tab opening later learns of the node.
    pub fn node_gone_after(node: &NodeId, since: u64, caps: &NodeCaps) -> Self {
        let mut gone = Self::node_gone(node);
        gone.content["since"] = json!(since);
        gone.content["caps"] = json!(caps);
        gone
    }
    /// A task; a part of a task also references its parent, so that a node
    /// reading the parent's relations finds its parts.
    pub fn task(spec: &TaskSpec) -> Self {
        let mut content = serde_json::to_value(spec).unwrap_or_default();
        content["v"] = json!(PROTOCOL_VERSION);
        if let Some(parent) = &spec.parent {
            content["m.relates_to"] = reference(parent);
        }
        Self {
            event_type: event_type::TASK,
            state_key: None,
            content,
        }
    }
    pub fn assign(task: &EventId, assignments: &[Assignment]) -> Self {
        Self {
            event_type: event_type::ASSIGN,
            state_key: None,
            content: json!({
                "v": PROTOCOL_VERSION,
                "m.relates_to": reference(task),
                "assignments": assignments,
            }),
        }
    }
    pub fn result(task: &EventId, node: &NodeId, outcomes: &[ChunkOutcome]) -> Self {
        Self {
            event_type: event_type::RESULT,
            state_key: None,
            content: json!({
                "v": PROTOCOL_VERSION,
                "m.relates_to": reference(task),
                "node": node,
                "outcomes": outcomes,
            }),
        }
    }
    pub fn allowlist(list: &Allowlist) -> Self {
        let mut content = serde_json::to_value(list).unwrap_or_default();
        content["v"] = json!(PROTOCOL_VERSION);
        Self {
            event_type: event_type::ALLOWLIST,
            state_key: Some(String::new()),
            content,
        }
    }
    pub fn progress(task: &EventId, node: &NodeId, chunks: &[ChunkProgress]) -> Self {
        Self {
            event_type: event_type::PROGRESS,
            state_key: None,
            content: json!({
                "v": PROTOCOL_VERSION,
                "m.relates_to": reference(task),
                "node": node,
                "chunks": chunks,
            }),
        }
    }
    pub fn cancel(task: &EventId, reason: Option<&str>) -> Self {
        let mut content = json!({ "v": PROTOCOL_VERSION, "m.relates_to": reference(task) });
        if let Some(reason) = reason {
            content["reason"] = json!(reason);
        }
        Self {
            event_type: event_type::CANCEL,
            state_key: None,
            content,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_transcriptions_plan_adds_one_part_with_a_chunk_per_span_and_only_once() {
        let audio: AudioRef =
            serde_json::from_value(json!({"message": "$voice", "url": "mxc://hs/a"})).unwrap();
        let request = TaskSpec::transcription(audio, WhisperModel::TinyEn);
        assert_eq!(request.chunks, 1);
        let parent = EventId::parse("$task").unwrap();
        let plan = json!({"duration_ms": 41_000, "spans": [
            {"start_ms": 0, "end_ms": 30_000}, {"start_ms": 30_000, "end_ms": 41_000}]});

        let part = request.part_after(&parent, &plan).unwrap();
        assert_eq!(part.chunks, 2);
        assert_eq!(part.parent, Some(parent.clone()));
        assert!(part.kind.validate(part.chunks).is_ok());
        // The same nonce each time: a resend is the same part, not another.
        assert_eq!(
            part.nonce,
            request.part_after(&parent, &plan).unwrap().nonce
        );
        assert!(
            part.part_after(&parent, &plan).is_none(),
            "spans add nothing"
        );

        let primes = TaskSpec::new(TaskKind::Primes { start: 0, end: 10 }, 1);
        assert!(primes.part_after(&parent, &plan).is_none());
    }
}
