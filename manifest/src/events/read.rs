//! Readers, by hand, of the contents whose JSON serde would read only by
//! buffering: a task's kind (`"kind"` names it, `"params"` holds it) sits in
//! the task's own object, and a chunk's outcome (`"output"` or `"error"`) in
//! its result's. serde's derived reader of such flattened and tagged types
//! first copies the whole object into its generic content type, whose code
//! the widget's UI would carry for these three types alone. Written with
//! serde, as ever; read here, from the `Value` every event arrives as.

use super::result::{ChunkOutcome, Outcome};
use super::task::{ChatCommand, Input, Requirements, TaskSpec};
use crate::ids::EventId;
use crate::task_kind::TaskKind;
use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::sync::Arc;

/// `json` as a `T`, or serde's words for why it is not one.
pub(crate) fn typed<T: DeserializeOwned>(json: &Value) -> Result<T, String> {
    T::deserialize(json).map_err(|e| e.to_string())
}

/// `object`'s `key`, or serde's words for its absence.
pub(crate) fn field<'a>(object: &'a Value, key: &str) -> Result<&'a Value, String> {
    object
        .get(key)
        .ok_or_else(|| format!("missing field `{key}`"))
}

impl TaskKind {
    const NAMES: &'static str = "`primes`, `script`, `transcribe`, `kernel`";

    /// The kind of the task whose content is `task`.
    fn read(task: &Value) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Primes {
            start: u64,
            end: u64,
        }
        let kind = field(task, "kind")?;
        let name = kind
            .as_str()
            .ok_or_else(|| format!("`kind` is {kind}, expected one of {}", Self::NAMES))?;
        let params = field(task, "params")?;
        Ok(match name {
            "primes" => {
                let Primes { start, end } = typed(params)?;
                TaskKind::Primes { start, end }
            }
            "script" => TaskKind::Script(typed(params)?),
            "transcribe" => TaskKind::Transcribe(typed(params)?),
            "kernel" => TaskKind::Kernel(typed(params)?),
            other => {
                let names = Self::NAMES;
                return Err(format!(
                    "unknown variant `{other}`, expected one of {names}"
                ));
            }
        })
    }
}

impl<'de> Deserialize<'de> for TaskKind {
    fn deserialize<D: Deserializer<'de>>(json: D) -> Result<Self, D::Error> {
        Self::read(&Value::deserialize(json)?).map_err(D::Error::custom)
    }
}

/// Everything in a task's content but its kind, with `TaskSpec`'s defaults.
#[derive(Deserialize)]
struct TaskFields {
    chunks: u32,
    #[serde(default)]
    priority: i8,
    #[serde(default)]
    requirements: Requirements,
    #[serde(default)]
    inputs: Vec<Input>,
    #[serde(default)]
    deadline_ms: Option<u64>,
    #[serde(default = "one")]
    replication: u8,
    #[serde(default)]
    parent: Option<EventId>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    command: Option<ChatCommand>,
    #[serde(default)]
    private: bool,
}

fn one() -> u8 {
    1
}

impl<'de> Deserialize<'de> for TaskSpec {
    fn deserialize<D: Deserializer<'de>>(json: D) -> Result<Self, D::Error> {
        let task = Value::deserialize(json)?;
        let kind = TaskKind::read(&task).map_err(D::Error::custom)?;
        let fields: TaskFields = typed(&task).map_err(D::Error::custom)?;
        Ok(TaskSpec {
            kind,
            chunks: fields.chunks,
            priority: fields.priority,
            requirements: fields.requirements,
            inputs: fields.inputs,
            deadline_ms: fields.deadline_ms,
            replication: fields.replication,
            parent: fields.parent,
            nonce: fields.nonce,
            command: fields.command,
            private: fields.private,
        })
    }
}

impl<'de> Deserialize<'de> for ChunkOutcome {
    fn deserialize<D: Deserializer<'de>>(json: D) -> Result<Self, D::Error> {
        /// Everything in a chunk's outcome but the outcome itself.
        #[derive(Deserialize)]
        struct OutcomeFields {
            chunk: u32,
            attempt: u32,
            #[serde(default)]
            compute_ms: Option<u64>,
        }
        #[derive(Deserialize)]
        struct Failure {
            reason: String,
            retriable: bool,
        }
        let read = |outcome: &Value| -> Result<ChunkOutcome, String> {
            let fields: OutcomeFields = typed(outcome)?;
            // As serde read the flattened outcome: the first of its keys in
            // the object's (sorted) order.
            let outcome = match (outcome.get("error"), outcome.get("output")) {
                (Some(error), _) => {
                    let Failure { reason, retriable } = typed(error)?;
                    Outcome::Error { reason, retriable }
                }
                (None, Some(output)) => Outcome::Output(Arc::new(output.clone())),
                (None, None) => return Err("no variant of enum Outcome found".into()),
            };
            Ok(ChunkOutcome {
                chunk: fields.chunk,
                attempt: fields.attempt,
                outcome,
                compute_ms: fields.compute_ms,
            })
        };
        read(&Value::deserialize(json)?).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(content: Value) -> Result<TaskSpec, String> {
        typed(&content)
    }

    #[test]
    fn a_task_reads_its_kind_and_the_defaults_of_what_it_leaves_out() {
        let spec = task(json!({
            "kind": "primes", "params": {"start": 2, "end": 100}, "chunks": 4, "v": 1
        }))
        .unwrap();
        assert_eq!(spec.kind, TaskKind::Primes { start: 2, end: 100 });
        assert_eq!((spec.chunks, spec.priority, spec.replication), (4, 0, 1));
        assert!(spec.inputs.is_empty() && spec.parent.is_none() && !spec.private);
    }

    #[test]
    fn a_task_without_a_kind_it_knows_says_why() {
        let unknown = task(json!({"kind": "mine_bitcoin", "params": {}, "chunks": 1}));
        assert_eq!(
            unknown.unwrap_err(),
            "unknown variant `mine_bitcoin`, expected one of \
             `primes`, `script`, `transcribe`, `kernel`"
        );
        let no_params = task(json!({"kind": "primes", "chunks": 1}));
        assert_eq!(no_params.unwrap_err(), "missing field `params`");
        let numbered = task(json!({"kind": 0, "params": {}, "chunks": 1}));
        assert!(numbered.unwrap_err().starts_with("`kind` is 0"));
        let bad_params = task(json!({"kind": "primes", "params": {"start": 1}, "chunks": 1}));
        assert_eq!(bad_params.unwrap_err(), "missing field `end`");
        let no_chunks = task(json!({"kind": "primes", "params": {"start": 1, "end": 9}}));
        assert_eq!(no_chunks.unwrap_err(), "missing field `chunks`");
    }

    #[test]
    fn an_outcome_reads_its_output_or_its_error() {
        let done: ChunkOutcome =
            typed(&json!({"chunk": 3, "attempt": 1, "output": {"count": 5}})).unwrap();
        assert_eq!(done.outcome, Outcome::Output(Arc::new(json!({"count": 5}))));
        assert_eq!((done.chunk, done.attempt, done.compute_ms), (3, 1, None));
        let failed: ChunkOutcome = typed(&json!({
            "chunk": 0, "attempt": 2, "compute_ms": 9,
            "error": {"reason": "out of memory", "retriable": true}
        }))
        .unwrap();
        assert_eq!(
            failed.outcome,
            Outcome::Error {
                reason: "out of memory".into(),
                retriable: true
            }
        );
        assert_eq!(failed.compute_ms, Some(9));
        let neither = typed::<ChunkOutcome>(&json!({"chunk": 0, "attempt": 1}));
        assert_eq!(neither.unwrap_err(), "no variant of enum Outcome found");
    }

    #[test]
    fn every_kind_reads_back_as_written() {
        use crate::transcription::{AudioRef, TranscribeTask, WhisperModel};
        let audio: AudioRef =
            serde_json::from_value(json!({"message": "$voice", "url": "mxc://hs/a"})).unwrap();
        let kinds = [
            TaskKind::Primes { start: 0, end: 9 },
            TaskKind::Transcribe(Box::new(TranscribeTask::plan(audio, WhisperModel::TinyEn))),
        ];
        for kind in kinds {
            let written = serde_json::to_value(&kind).unwrap();
            assert_eq!(typed::<TaskKind>(&written).unwrap(), kind);
        }
    }
}
