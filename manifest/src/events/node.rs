//! `org.potluck.node`: a state event per node (state key = node id) that
//! announces it with its capabilities, or says it is gone.

use serde::{Deserialize, Serialize};

/// The content of a node event, sent and read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeContent {
    pub online: bool,
    /// Required online; in a leave notice, what it offered while online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<NodeCaps>,
    /// Since when the node says it has been online (its first announcement
    /// may leave it out: the homeserver's timestamp counts then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

/// What a node offers. Announced when it starts contributing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCaps {
    /// Logical cores of the machine (`navigator.hardwareConcurrency`).
    pub cores: u32,
    /// Web Workers the friend gives to the pool.
    pub slots: u32,
    /// `navigator.deviceMemory` in MiB where the browser tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    /// WebGPU adapter available.
    #[serde(default)]
    pub webgpu: bool,
    /// Models already in this browser's cache.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Scripts (by integrity) the friend declined to run on this machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declined: Vec<String>,
    /// The kinds of work this node takes (`primes`, `script`, `transcribe`,
    /// `kernel`), where that is not every kind: a node outside a browser
    /// runs no browser scripts, and its owner may narrow it further. Absent:
    /// every kind, as a browser takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<Vec<String>>,
}

impl NodeCaps {
    /// Whether this node takes work of the kind named `kind` (see `runs`).
    pub fn takes(&self, kind: &str) -> bool {
        (self.runs.as_ref()).is_none_or(|kinds| kinds.iter().any(|k| k == kind))
    }
}

/// A gone node's time online, as its final state keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct WasOnline {
    pub since: u64,
    pub caps: NodeCaps,
}

#[cfg(test)]
mod tests {
    use crate::events::outgoing::test_support::read_back;
    use crate::events::{NodeCaps, Outgoing, PotluckEvent, WasOnline};
    use crate::ids::{NodeId, UserId};

    #[test]
    fn announcements_and_leave_notices_read_back_as_sent() {
        let node = NodeId::new(&UserId::parse("@alice:hs").unwrap(), "tab").unwrap();
        let caps = NodeCaps {
            cores: 8,
            slots: 3,
            memory_mb: Some(8192),
            webgpu: true,
            models: vec!["tiny.en".into()],
            declined: vec![],
            runs: Some(vec!["primes".into(), "transcribe".into()]),
        };
        assert_eq!(
            read_back(
                &Outgoing::node_online_since(&node, &caps, Some(7)),
                "@alice:hs"
            ),
            PotluckEvent::NodeOnline {
                node: node.clone(),
                caps: Box::new(caps.clone()),
                since: Some(7)
            }
        );
        assert_eq!(
            read_back(&Outgoing::node_gone_after(&node, 7, &caps), "@alice:hs"),
            PotluckEvent::NodeGone {
                node: node.clone(),
                was: Some(Box::new(WasOnline { since: 7, caps }))
            }
        );
        assert_eq!(
            read_back(&Outgoing::node_gone(&node), "@alice:hs"),
            PotluckEvent::NodeGone { node, was: None }
        );
    }
}
