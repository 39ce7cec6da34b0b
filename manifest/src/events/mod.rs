//! The room events of the protocol: one module per event type, each with the
//! content struct that is both sent (`Outgoing`) and read (`validate`).
//! Every content carries `"v": PROTOCOL_VERSION`.
//!
//! A task's id is the event id of its `org.potluck.task` event. Everything
//! about a task (assignments, results, cancel) is linked to that event with an
//! `m.reference` relation, so a node that opens the room later can read it all
//! back with `/relations`, even where its client shows no history.

mod assign;
mod cancel;
mod node;
mod outgoing;
mod progress;
pub(crate) mod read;
mod relation;
mod result;
mod task;
mod types;

pub use assign::{AssignContent, Assignment};
pub use cancel::CancelContent;
pub use node::{NodeCaps, NodeContent, WasOnline};
#[cfg(test)]
pub(crate) use outgoing::test_support;
pub use outgoing::Outgoing;
pub use progress::{ChunkProgress, ProgressContent};
pub use relation::{NotAReference, Relation};
pub use result::{ChunkOutcome, Outcome, ResultContent};
pub use task::{ChatCommand, Input, Requirements, TaskSpec};
pub use types::{event_type, MEMBER, NAMESPACE, PROTOCOL_VERSION, REDACTION};

use crate::allowlist::Allowlist;
use crate::ids::{EventId, NodeId, UserId};
use std::sync::Arc;

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
