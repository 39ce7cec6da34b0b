//! `org.potluck.progress`: a node says how far it got with long chunks,
//! which renews their leases.

use super::relation::Relation;
use crate::ids::NodeId;
use serde::{Deserialize, Serialize};

/// The content of a progress event, sent and read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressContent {
    #[serde(rename = "m.relates_to")]
    pub relates_to: Relation,
    pub node: NodeId,
    pub chunks: Vec<ChunkProgress>,
}

/// How far a node got with one chunk it holds a lease on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkProgress {
    pub chunk: u32,
    pub attempt: u32,
    /// Percent done, 0 to 100: Matrix events carry no fractional numbers.
    pub percent: u8,
}

#[cfg(test)]
mod tests {
    use crate::events::outgoing::test_support::{alices_node, id, read_back};
    use crate::events::{ChunkProgress, Outgoing, PotluckEvent};

    #[test]
    fn a_progress_report_reads_back_as_sent() {
        let chunks = vec![ChunkProgress {
            chunk: 4,
            attempt: 1,
            percent: 40,
        }];
        let sent = Outgoing::progress(&id("$task"), &alices_node(), &chunks);
        assert_eq!(
            read_back(&sent, "@alice:hs"),
            PotluckEvent::Progress {
                task: id("$task"),
                node: alices_node(),
                chunks
            }
        );
    }
}
