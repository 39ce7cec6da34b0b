//! `org.potluck.result`: a node reports the outcomes of chunks it ran.

use super::relation::Relation;
use crate::ids::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// The content of a result event, sent and read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultContent {
    #[serde(rename = "m.relates_to")]
    pub relates_to: Relation,
    pub node: NodeId,
    pub outcomes: Vec<ChunkOutcome>,
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

/// Read in `read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

#[cfg(test)]
mod tests {
    use crate::events::outgoing::test_support::{alices_node, id, read_back};
    use crate::events::{ChunkOutcome, Outcome, Outgoing, PotluckEvent};
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn a_result_reads_back_as_sent() {
        let outcomes = vec![
            ChunkOutcome {
                chunk: 0,
                attempt: 1,
                outcome: Outcome::Output(Arc::new(json!({"count": 5}))),
                compute_ms: Some(1_200),
            },
            ChunkOutcome {
                chunk: 1,
                attempt: 2,
                outcome: Outcome::Error {
                    reason: "out of memory".into(),
                    retriable: true,
                },
                compute_ms: None,
            },
        ];
        let sent = Outgoing::result(&id("$task"), &alices_node(), &outcomes);
        assert_eq!(
            read_back(&sent, "@alice:hs"),
            PotluckEvent::Result {
                task: id("$task"),
                node: alices_node(),
                outcomes
            }
        );
    }
}
