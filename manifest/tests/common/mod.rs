//! What the scripted machine tests share: raw room events as the widget
//! delivers them, and a node's capabilities.

#![allow(dead_code)] // Each test file uses a different part.

use manifest::events::{NodeCaps, Outgoing};
use serde_json::{json, Value};

/// `out` as the homeserver would deliver it: with an id, a sender and a timestamp.
pub fn raw(id: &str, sender: &str, out: &Outgoing, ts: u64) -> Value {
    let mut raw = json!({"type": out.event_type, "event_id": id, "sender": sender,
        "origin_server_ts": ts, "content": out.content});
    if let Some(key) = &out.state_key {
        raw["state_key"] = json!(key);
    }
    raw
}

/// A four-core machine offering two workers.
pub fn caps() -> NodeCaps {
    NodeCaps {
        cores: 4,
        slots: 2,
        memory_mb: None,
        webgpu: false,
        models: vec![],
        declined: vec![],
        runs: None,
    }
}
