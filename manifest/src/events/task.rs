//! `org.potluck.task`: a task submitted to the pool. Its content is the
//! `TaskSpec`; a part of a task also references its parent task.

use super::node::NodeCaps;
use crate::ids::{EventId, MxcUri, UserId};
use crate::kind_error::KindError;
use crate::task_kind::TaskKind;
use crate::transcription::{AudioRef, TranscribeTask, WhisperModel};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// A task as its submitter describes it. Read in `read`, where what the
/// JSON leaves out takes its default (priority 0, replication 1, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskSpec {
    #[serde(flatten)]
    pub kind: TaskKind,
    /// The task is split into this many chunks, which different nodes may run.
    pub chunks: u32,
    /// Higher runs first among one submitter's own tasks (never ahead of other friends).
    pub priority: i8,
    pub requirements: Requirements,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Input>,
    /// Milliseconds after submission by which the task must be done, else it fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// How many different nodes run each chunk; a majority of identical
    /// outputs decides (see `limits::MAX_REPLICATION`).
    #[serde(skip_serializing_if = "is_one")]
    pub replication: u8,
    /// The task this one is a part of. Only the parent's submitter, or a node
    /// that holds a lease on the parent (the one splitting it), may add parts,
    /// and only before the parent's own chunks are all done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<EventId>,
    /// Chosen by the submitter's client: a second event with the same sender
    /// and nonce (a resend after a timeout) is the same task, not a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The chat message (`!run …`) this task was started from, by the
    /// coordinator on the sender's behalf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<ChatCommand>,
    /// Outputs go to the submitter alone, by to-device message; the room sees
    /// only their seals (see `private`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

/// A chat message that asked for a task, and who sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCommand {
    pub event_id: EventId,
    pub sender: UserId,
}

fn is_one(n: &u8) -> bool {
    *n == 1
}

impl TaskSpec {
    /// Whether the coordinator runs its chunk itself without an assignment
    /// event, its result standing for the claim (a transcription's plan,
    /// unreplicated; see `node::coordinate`).
    pub fn claimed_by_coordinator(&self) -> bool {
        self.replication == 1 && self.kind.claimed_by_coordinator()
    }

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
        let chunks = spans.spans().len() as u32;
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
        let taken = caps.takes(self.kind.name());
        self.requirements.met_by(caps) && gpu_ok && !declined && taken
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

    #[test]
    fn a_part_of_a_task_reads_back_as_sent_with_its_parent() {
        let audio: AudioRef =
            serde_json::from_value(json!({"message": "$voice", "url": "mxc://hs/a"})).unwrap();
        let request = TaskSpec::transcription(audio, WhisperModel::TinyEn);
        let plan = json!({"duration_ms": 9_000, "spans": [{"start_ms": 0, "end_ms": 9_000}]});
        let part = request
            .part_after(&EventId::parse("$task").unwrap(), &plan)
            .unwrap();
        let sent = crate::events::Outgoing::task(&part);
        assert_eq!(sent.content["m.relates_to"]["event_id"], "$task");
        assert_eq!(
            crate::events::outgoing::test_support::read_back(&sent, "@alice:hs"),
            crate::events::PotluckEvent::Task(part.into())
        );
    }
}
