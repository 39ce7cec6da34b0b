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
use crate::ids::{EventId, UserId};
use crate::ledger::{ChunkRecord, Ledger, TaskStatus};
use crate::task_kind::KindError;
use crate::view::TaskView;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The to-device event type that carries a private output.
pub const OUTPUT_EVENT_TYPE: &str = "org.potluck.output";

/// `{"sealed": <hex SHA-256>}` of an output: serde_json writes object keys in
/// order, so every node seals the same output the same way.
pub fn seal(output: &Value) -> Value {
    json!({ "sealed": digest(output) })
}

/// Lowercase hex SHA-256 of an output's JSON.
fn digest(output: &Value) -> String {
    Sha256::digest(output.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `output` is a seal, as a private task's chunks must report.
pub fn check_sealed(output: &Value) -> Result<(), KindError> {
    let ok = output.as_object().is_some_and(|o| o.len() == 1)
        && output["sealed"]
            .as_str()
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(KindError::BadOutput(
            "a private task's chunk reports only {\"sealed\": <SHA-256>}".into(),
        ))
    }
}

/// The to-device content that carries one chunk's output to the submitter.
pub fn message(task: &EventId, chunk: u32, output: &Value) -> Value {
    json!({ "v": 1, "task": task, "chunk": chunk, "output": output })
}

/// What a submitter's widget has received of its private tasks' outputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrivateOutputs {
    /// (task, chunk) → outputs received, by seal (a replica's may differ).
    received: BTreeMap<(EventId, u32), BTreeMap<String, Value>>,
}

impl PrivateOutputs {
    /// Keeps an output from a to-device message; says why not if malformed.
    pub fn receive(&mut self, content: &Value) -> Result<(), String> {
        let task = content["task"]
            .as_str()
            .and_then(|t| EventId::parse(t).ok())
            .ok_or("a private output names no task")?;
        let chunk = content["chunk"]
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .ok_or("a private output names no chunk")?;
        let output = content
            .get("output")
            .ok_or("a private output has no output")?;
        let kept = self.received.entry((task, chunk)).or_default();
        if kept.len() < 5 {
            kept.insert(digest(output), output.clone()); // At most one per replica.
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
        let sealed = chunk.done.as_ref()?.output["sealed"].as_str()?;
        self.received
            .get(&(task.clone(), index as u32))?
            .get(sealed)
    }

    /// Shows `me` the results only they received: each of their private
    /// tasks that the room says is done gets its merged result, or
    /// `{"private": true, "waiting": n}` while `n` outputs are on their way.
    pub fn reveal(&self, tasks: &mut [TaskView], ledger: &Ledger, me: &UserId) {
        for view in tasks.iter_mut().filter(|t| &t.submitter == me) {
            let TaskStatus::Done { result } = &mut view.status else {
                continue;
            };
            let Some(record) = ledger.task(&view.id).filter(|r| r.spec.private) else {
                continue;
            };
            *result = self.result(ledger, &view.id, &record.spec).unwrap_or_else(
                || json!({ "private": true, "waiting": self.missing(ledger, &view.id) }),
            );
        }
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
    fn a_seal_is_the_same_for_the_same_output_and_hides_it() {
        let output = json!({"count": 5133, "more": [1, 2]});
        let again = serde_json::from_str::<Value>(r#"{"more":[1,2],"count":5133}"#).unwrap();
        assert_eq!(seal(&output), seal(&again));
        assert_ne!(seal(&output), seal(&json!({"count": 5134, "more": [1, 2]})));
        check_sealed(&seal(&output)).unwrap();
        assert!(!seal(&output).to_string().contains("5133"));
        assert!(check_sealed(&json!({"count": 5133})).is_err());
        assert!(check_sealed(&json!({"sealed": "abc"})).is_err());
    }

    #[test]
    fn malformed_messages_are_refused_with_the_reason() {
        let mut outputs = PrivateOutputs::default();
        assert!(outputs
            .receive(&json!({"chunk": 0, "output": 1}))
            .unwrap_err()
            .contains("task"));
        assert!(outputs
            .receive(&json!({"task": "$t", "output": 1}))
            .unwrap_err()
            .contains("chunk"));
        assert!(outputs
            .receive(&json!({"task": "$t", "chunk": 0}))
            .unwrap_err()
            .contains("output"));
        outputs
            .receive(&message(&EventId::parse("$t").unwrap(), 0, &json!(1)))
            .unwrap();
    }
}
