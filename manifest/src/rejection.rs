//! Why the ledger did not take an event: what only the events before it can
//! show (who coordinates, who holds a lease, which task a message started).
//! Checks an event passes or fails on its own are `validate`'s; the words
//! people read are each variant's `Display`, and nothing here decides.

use crate::ids::{EventId, NodeId, UserId};
use crate::kind_error::KindError;
use crate::limits::MAX_SUBTASKS;
use thiserror::Error;

/// A valid event the ledger refused, given what came before it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refused {
    // Tasks started from chat.
    #[error("{sender} started a task for a chat command but is not the coordinator")]
    CommandNotByCoordinator { sender: UserId },
    #[error("{sender} started a task in {named}'s name for a message {actual} sent")]
    CommandInAnotherName {
        sender: UserId,
        named: UserId,
        actual: UserId,
    },
    #[error("{command} already started task {first}")]
    CommandAlreadyStarted { command: EventId, first: EventId },

    // Parts of a task and resends.
    #[error("its parent task {parent} is unknown")]
    UnknownParent { parent: EventId },
    #[error("a part of a task cannot be split further")]
    PartOfAPart,
    #[error(
        "{sender} may not add parts to task {parent}: only its submitter or a node running it can"
    )]
    NotSplitter { sender: UserId, parent: EventId },
    #[error("task {parent} is already finished")]
    ParentFinished { parent: EventId },
    #[error("task {parent} already has {MAX_SUBTASKS} parts")]
    TooManyParts { parent: EventId },
    #[error("a part of a task is not started from chat")]
    PartFromChat,
    #[error("a resend of task {first}")]
    Resend { first: EventId },

    #[error("only {submitter} can cancel this task")]
    NotSubmitter { submitter: UserId },

    // Assignments.
    #[error("{sender} assigned work but is not the coordinator")]
    AssignNotByCoordinator { sender: UserId },
    #[error("chunk {chunk} does not exist")]
    NoSuchChunk { chunk: u32 },
    #[error("chunk {chunk} assigned as attempt {attempt}, but only {issued} were issued so far")]
    AttemptSkipsAhead {
        chunk: u32,
        attempt: u32,
        issued: u32,
    },
    #[error("chunk {chunk} assigned to {node}, which already ran it")]
    AlreadyRan { chunk: u32, node: NodeId },
    #[error("chunk {chunk} assigned to {node}, which cannot run it (it needs WebGPU, memory or a script the node declined)")]
    CannotRun { chunk: u32, node: NodeId },

    // Progress and results.
    #[error("{node} reported progress on chunk {chunk} but holds no lease on it")]
    ProgressWithoutLease { node: NodeId, chunk: u32 },
    #[error("{node} holds no lease on chunk {chunk} (attempt {attempt})")]
    NoLease {
        node: NodeId,
        chunk: u32,
        attempt: u32,
    },
    #[error("result for chunk {chunk} came after the hard deadline")]
    AfterDeadline { chunk: u32 },
    #[error("chunk {chunk}: {error}")]
    BadOutput { chunk: u32, error: KindError },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_people_read_them() {
        let node = NodeId::parse("t1|@mallory:hs").unwrap();
        assert_eq!(
            Refused::NoLease {
                node: node.clone(),
                chunk: 2,
                attempt: 1
            }
            .to_string(),
            "t1|@mallory:hs holds no lease on chunk 2 (attempt 1)"
        );
        assert_eq!(
            Refused::CommandInAnotherName {
                sender: UserId::parse("@alice:hs").unwrap(),
                named: UserId::parse("@carol:hs").unwrap(),
                actual: UserId::parse("@dan:hs").unwrap(),
            }
            .to_string(),
            "@alice:hs started a task in @carol:hs's name for a message @dan:hs sent"
        );
        assert_eq!(
            Refused::TooManyParts {
                parent: EventId::parse("$t").unwrap()
            }
            .to_string(),
            format!("task $t already has {MAX_SUBTASKS} parts")
        );
    }
}
