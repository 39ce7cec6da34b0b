//! Private results: the submitter asked that outputs come back to them alone.
//!
//! A node that finishes a chunk of a private task sends the output to the
//! submitter's devices as a to-device message (which Element encrypts), and
//! puts only its seal in the room: `{"sealed": <SHA-256 of the output's
//! JSON>}`. The ledger runs on seals as on outputs (leases, replication
//! votes, failures), so the room sees the task finish and nothing more. The
//! submitter's widget keeps the outputs whose seals the ledger accepted and
//! merges them into the result only it shows.

use crate::events::TaskSpec;
use crate::ids::EventId;
use crate::ledger::{ChunkRecord, Ledger};
use crate::seal::seal_digest;
use crate::sorted_map::SortedMap;
use serde_json::{json, Value};
use thiserror::Error;

/// The to-device event type that carries a private output.
pub const OUTPUT_EVENT_TYPE: &str = "org.potluck.output";

/// The to-device content that carries one chunk's output to the submitter.
pub fn message(task: &EventId, chunk: u32, output: &Value) -> Value {
    json!({ "v": 1, "task": task, "chunk": chunk, "output": output })
}

/// Why a to-device message is no private output.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotAnOutput {
    #[error("a private output names no task")]
    NoTask,
    #[error("a private output names no chunk")]
    NoChunk,
    #[error("a private output has no output")]
    NoOutput,
}

/// What a submitter's widget has received of its private tasks' outputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrivateOutputs {
    /// (task, chunk) → outputs received, by seal (a replica's may differ).
    received: SortedMap<(EventId, u32), SortedMap<String, Value>>,
}

impl PrivateOutputs {
    /// Keeps an output from a to-device message; says why not if malformed.
    pub fn receive(&mut self, content: &Value) -> Result<(), NotAnOutput> {
        let task = content["task"]
            .as_str()
            .and_then(|t| EventId::parse(t).ok())
            .ok_or(NotAnOutput::NoTask)?;
        let chunk = content["chunk"]
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .ok_or(NotAnOutput::NoChunk)?;
        let output = content.get("output").ok_or(NotAnOutput::NoOutput)?;
        let kept = self.received.entry((task, chunk)).or_default();
        if kept.len() < 5 {
            kept.insert(seal_digest(output), output.clone()); // At most one per replica.
        }
        Ok(())
    }

    /// The merged result of a private task the ledger says is done, once
    /// every chunk's output whose seal the room accepted has arrived: `None`
    /// while some are missing.
    pub fn result(&self, ledger: &Ledger, task: &EventId, spec: &TaskSpec) -> Option<Value> {
        let record = ledger.task(task)?;
        let outputs: Option<Vec<&Value>> = record
            .chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| self.accepted(task, i, chunk))
            .collect();
        spec.kind.merge(outputs?).ok()
    }

    /// The output received for chunk `index` whose seal the ledger accepted.
    fn accepted(&self, task: &EventId, index: usize, chunk: &ChunkRecord) -> Option<&Value> {
        let sealed = chunk.done()?.output["sealed"].as_str()?;
        self.received
            .get(&(task.clone(), index as u32))?
            .get(sealed)
    }

    /// What a private task shows its submitter: the merged result once
    /// every accepted output has arrived, or `{"private": true, "waiting": n}`
    /// while `n` are on their way. `None` for a task that is not private.
    pub fn shown_result(&self, ledger: &Ledger, task: &EventId) -> Option<Value> {
        let record = ledger.task(task).filter(|r| r.spec.private)?;
        Some(
            self.result(ledger, task, &record.spec).unwrap_or_else(
                || json!({ "private": true, "waiting": self.missing(ledger, task) }),
            ),
        )
    }

    /// How many of a private task's accepted chunks have not reached us yet.
    pub fn missing(&self, ledger: &Ledger, task: &EventId) -> usize {
        ledger.task(task).map_or(0, |record| {
            record
                .chunks
                .iter()
                .enumerate()
                .filter(|&(i, chunk)| self.accepted(task, i, chunk).is_none())
                .count()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_messages_are_refused_with_the_reason() {
        let mut outputs = PrivateOutputs::default();
        assert_eq!(
            outputs.receive(&json!({"chunk": 0, "output": 1})),
            Err(NotAnOutput::NoTask)
        );
        assert_eq!(
            outputs.receive(&json!({"task": "$t", "output": 1})),
            Err(NotAnOutput::NoChunk)
        );
        assert_eq!(
            outputs.receive(&json!({"task": "$t", "chunk": 0})),
            Err(NotAnOutput::NoOutput)
        );
        assert_eq!(
            NotAnOutput::NoChunk.to_string(),
            "a private output names no chunk"
        );
        outputs
            .receive(&message(&EventId::parse("$t").unwrap(), 0, &json!(1)))
            .unwrap();
    }
}
