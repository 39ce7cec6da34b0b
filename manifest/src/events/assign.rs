//! `org.potluck.assign`: the coordinator hands chunks of a task to nodes.

use super::relation::Relation;
use crate::ids::NodeId;
use serde::{Deserialize, Serialize};

/// The content of an assignment event, sent and read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignContent {
    #[serde(rename = "m.relates_to")]
    pub relates_to: Relation,
    pub assignments: Vec<Assignment>,
}

/// One chunk handed to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub chunk: u32,
    pub node: NodeId,
    /// 1 for the first issue of a chunk, 2 for its reissue, …
    pub attempt: u32,
}

#[cfg(test)]
mod tests {
    use crate::events::outgoing::test_support::{alices_node, id, read_back};
    use crate::events::{Assignment, Outgoing, PotluckEvent};

    #[test]
    fn an_assignment_reads_back_as_sent() {
        let assignments = vec![Assignment {
            chunk: 3,
            node: alices_node(),
            attempt: 2,
        }];
        assert_eq!(
            read_back(&Outgoing::assign(&id("$task"), &assignments), "@bob:hs"),
            PotluckEvent::Assign {
                task: id("$task"),
                assignments
            }
        );
    }
}
