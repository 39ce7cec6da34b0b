//! What a node sends: each event's content struct, serialised with the
//! protocol version. The same structs read events back (`validate`).

use super::assign::{AssignContent, Assignment};
use super::cancel::CancelContent;
use super::node::{NodeCaps, NodeContent};
use super::progress::{ChunkProgress, ProgressContent};
use super::relation::Relation;
use super::result::{ChunkOutcome, ResultContent};
use super::task::TaskSpec;
use super::types::{event_type, PROTOCOL_VERSION};
use crate::allowlist::Allowlist;
use crate::ids::{EventId, NodeId};
use serde::Serialize;
use serde_json::{json, Value};

/// What to send: a room event, or a state event with its key.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub event_type: &'static str,
    pub state_key: Option<String>,
    pub content: Value,
}

/// `content` as JSON with the protocol version. Content structs hold only
/// strings, numbers and maps with string keys, which always serialise.
fn versioned(content: &impl Serialize) -> Value {
    let mut json = serde_json::to_value(content).unwrap_or_else(|_| json!({}));
    json["v"] = json!(PROTOCOL_VERSION);
    json
}

impl Outgoing {
    /// An assignment or a result: once it may be in the room, a second copy
    /// would run or show twice, so it goes again only if it does not show
    /// up (a resend waits for its echo, under the same transaction id where
    /// the client can choose one).
    pub fn waits_for_echo(&self) -> bool {
        matches!(self.event_type, event_type::ASSIGN | event_type::RESULT)
    }

    fn room_event(event_type: &'static str, content: &impl Serialize) -> Self {
        Self {
            event_type,
            state_key: None,
            content: versioned(content),
        }
    }

    fn node(node: &NodeId, content: NodeContent) -> Self {
        Self {
            event_type: event_type::NODE,
            state_key: Some(node.to_string()),
            content: versioned(&content),
        }
    }

    pub fn node_online(node: &NodeId, caps: &NodeCaps) -> Self {
        Self::node_online_since(node, caps, None)
    }
    /// A node announcing itself again (new capabilities, or its state was
    /// overwritten) says since when it has been online: tabs that saw its
    /// first announcement keep what they saw, a tab opening later reads it.
    pub fn node_online_since(node: &NodeId, caps: &NodeCaps, since: Option<u64>) -> Self {
        let content = NodeContent {
            online: true,
            caps: Some(caps.clone()),
            since,
        };
        Self::node(node, content)
    }
    /// A node gone, saying nothing of when it was online.
    pub fn node_gone(node: &NodeId) -> Self {
        let content = NodeContent {
            online: false,
            caps: None,
            since: None,
        };
        Self::node(node, content)
    }
    /// The content of the node's dead-man switch (a delayed event): gone, and
    /// online before since `since` with `caps`. Current state keeps only
    /// this, so it is all a tab opening later learns of the node.
    pub fn node_gone_after(node: &NodeId, since: u64, caps: &NodeCaps) -> Self {
        let content = NodeContent {
            online: false,
            caps: Some(caps.clone()),
            since: Some(since),
        };
        Self::node(node, content)
    }
    /// A task; a part of a task also references its parent, so that a node
    /// reading the parent's relations finds its parts.
    pub fn task(spec: &TaskSpec) -> Self {
        let mut out = Self::room_event(event_type::TASK, spec);
        if let Some(parent) = &spec.parent {
            out.content["m.relates_to"] = json!(Relation::reference(parent));
        }
        out
    }
    pub fn assign(task: &EventId, assignments: &[Assignment]) -> Self {
        let content = AssignContent {
            relates_to: Relation::reference(task),
            assignments: assignments.to_vec(),
        };
        Self::room_event(event_type::ASSIGN, &content)
    }
    pub fn result(task: &EventId, node: &NodeId, outcomes: &[ChunkOutcome]) -> Self {
        let content = ResultContent {
            relates_to: Relation::reference(task),
            node: node.clone(),
            outcomes: outcomes.to_vec(),
        };
        Self::room_event(event_type::RESULT, &content)
    }
    pub fn allowlist(list: &Allowlist) -> Self {
        Self {
            event_type: event_type::ALLOWLIST,
            state_key: Some(String::new()),
            content: versioned(list),
        }
    }
    pub fn progress(task: &EventId, node: &NodeId, chunks: &[ChunkProgress]) -> Self {
        let content = ProgressContent {
            relates_to: Relation::reference(task),
            node: node.clone(),
            chunks: chunks.to_vec(),
        };
        Self::room_event(event_type::PROGRESS, &content)
    }
    pub fn cancel(task: &EventId, reason: Option<&str>) -> Self {
        let content = CancelContent {
            relates_to: Relation::reference(task),
            reason: reason.map(str::to_owned),
        };
        Self::room_event(event_type::CANCEL, &content)
    }
}

/// Sending and reading back, for the round-trip tests next to each event.
#[cfg(test)]
pub(crate) mod test_support {
    use super::Outgoing;
    use crate::ids::{EventId, NodeId, UserId};
    use serde_json::{json, Value};

    pub(crate) fn id(text: &str) -> EventId {
        EventId::parse(text).unwrap()
    }

    pub(crate) fn alices_node() -> NodeId {
        NodeId::new(&UserId::parse("@alice:hs").unwrap(), "tab").unwrap()
    }

    /// `out` as the homeserver delivers it, from `sender` (for round-trip tests).
    pub(crate) fn delivered(out: &Outgoing, sender: &str) -> Value {
        delivered_as("$sent", sender, out, 1_000)
    }

    /// `out` as the homeserver delivers it, as event `id` at `ts`.
    pub(crate) fn delivered_as(id: &str, sender: &str, out: &Outgoing, ts: u64) -> Value {
        let mut raw = json!({"type": out.event_type, "event_id": id, "sender": sender,
            "origin_server_ts": ts, "content": out.content});
        if let Some(key) = &out.state_key {
            raw["state_key"] = json!(key);
        }
        raw
    }

    /// What every node reads back from `out`.
    pub(crate) fn read_back(out: &Outgoing, sender: &str) -> crate::events::PotluckEvent {
        crate::validate::parse_event(&delivered(out, sender))
            .expect("what a node sends, every node reads")
            .event
    }
}
