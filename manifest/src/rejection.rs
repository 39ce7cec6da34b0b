//! Why an event or a chat command was not taken: a `Rejection`, whose
//! `Reason` is `validate`'s (the event on its own is wrong), the ledger's
//! `Refused` (what only the events before it show: who coordinates, who
//! holds a lease, which task a message started), or a chat command's.
//! The words people read are each variant's `Display`; nothing here decides.

use crate::commands::RunError;
use crate::ids::{EventId, NodeId, UserId};
use crate::kind_error::KindError;
use crate::limits::MAX_SUBTASKS;
use crate::validate::{Invalid, InvalidEvent, TaskError};
use crate::voice::TranscribeError;
use std::fmt;
use thiserror::Error;

/// An event or command that was not taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The event or chat message, if it has an id (a task this node did not
    /// submit has none yet).
    pub event_id: Option<String>,
    pub reason: Reason,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.event_id {
            Some(id) => write!(f, "{id}: {}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

impl From<InvalidEvent> for Rejection {
    fn from(invalid: InvalidEvent) -> Self {
        Self {
            event_id: invalid.event_id,
            reason: Reason::Invalid(invalid.problem),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Reason {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Refused(#[from] Refused),
    /// A `!run` or `!transcribe` the coordinator could not start.
    #[error("the chat command was not run: {0}")]
    CommandNotRun(CommandError),
    /// A task this node was about to send, which every node would reject.
    #[error("the task was not submitted: {0}")]
    NotSubmitted(TaskError),
}

/// Why a chat command starts no task.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Transcribe(#[from] TranscribeError),
}

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
    #[error("chunk {chunk} assigned to {node}, which cannot run it (it needs WebGPU or memory, is a script the node declined, or is work the node does not take)")]
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
    fn a_rejection_reads_with_its_event_and_its_reason() {
        let refused = Rejection {
            event_id: Some("$e1".into()),
            reason: Reason::Refused(Refused::PartFromChat),
        };
        assert_eq!(
            refused.to_string(),
            "$e1: a part of a task is not started from chat"
        );
        let command = Rejection {
            event_id: Some("$m".into()),
            reason: Reason::CommandNotRun(TranscribeError::NoReply.into()),
        };
        assert_eq!(
            command.to_string(),
            "$m: the chat command was not run: reply !transcribe to the voice message to transcribe"
        );
        let task = Rejection {
            event_id: None,
            reason: Reason::NotSubmitted(TaskError::ZeroDeadline),
        };
        assert_eq!(
            task.to_string(),
            "the task was not submitted: a deadline of 0 ms can never be met"
        );
    }

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
