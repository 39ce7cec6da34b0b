//! A room's ledger built event by event for the widget's unit tests: alice's
//! and bob's machines contribute, carol submits, results come back.

use manifest::events::{Assignment, ChunkOutcome, NodeCaps, Outcome, Outgoing, TaskSpec};
use manifest::ids::{EventId, NodeId, UserId};
use manifest::ledger::Ledger;
use serde_json::{json, Value};
use std::sync::Arc;

/// `out` as the room delivers it, sent by alice.
pub fn delivered(id: &str, out: &Outgoing, ts: u64) -> Value {
    delivered_as(id, "@alice:hs", out, ts)
}

/// `out` as the room delivers it, sent by `sender`.
pub fn delivered_as(id: &str, sender: &str, out: &Outgoing, ts: u64) -> Value {
    let mut raw = json!({"type": out.event_type, "event_id": id, "sender": sender,
        "origin_server_ts": ts, "content": out.content});
    if let Some(key) = &out.state_key {
        raw["state_key"] = json!(key);
    }
    raw
}

/// `user`'s machine (one tab).
pub fn node(user: &str) -> NodeId {
    NodeId::new(&UserId::parse(user).unwrap(), "tab").unwrap()
}

pub fn caps(slots: u32) -> NodeCaps {
    NodeCaps {
        cores: 4,
        slots,
        memory_mb: None,
        webgpu: false,
        models: Vec::new(),
        declined: Vec::new(),
        runs: None,
    }
}

pub fn id(event: &str) -> EventId {
    EventId::parse(event).unwrap()
}

/// A ledger where alice's and bob's machines contribute, alice's
/// coordinating, one worker each.
pub fn pool() -> Ledger {
    let mut ledger = Ledger::new();
    for (i, user) in ["@alice:hs", "@bob:hs"].into_iter().enumerate() {
        let online = Outgoing::node_online(&node(user), &caps(1));
        let event = delivered_as(&format!("$on{i}"), user, &online, 1_000 + i as u64);
        ledger.ingest(&event).unwrap();
    }
    ledger
}

/// The coordinator (alice) gives `chunk` of `task` to `to`'s machine.
pub fn assign(ledger: &mut Ledger, event: &str, task: &str, chunk: u32, to: &str, ts: u64) {
    let assignment = Assignment {
        chunk,
        node: node(to),
        attempt: 1,
    };
    let out = Outgoing::assign(&id(task), &[assignment]);
    ledger.ingest(&delivered(event, &out, ts)).unwrap();
}

/// `by`'s machine answers `chunk` of `task` with `output`, after 100 ms of work.
pub fn answer(
    ledger: &mut Ledger,
    event: &str,
    task: &str,
    chunk: u32,
    by: &str,
    output: Value,
    ts: u64,
) {
    let outcome = ChunkOutcome {
        chunk,
        attempt: 1,
        outcome: Outcome::Output(Arc::new(output)),
        compute_ms: Some(100),
    };
    let out = Outgoing::result(&id(task), &node(by), &[outcome]);
    ledger.ingest(&delivered_as(event, by, &out, ts)).unwrap();
}

/// Carol submits `spec`.
pub fn submit(ledger: &mut Ledger, event: &str, spec: &TaskSpec, ts: u64) {
    let out = Outgoing::task(spec);
    ledger
        .ingest(&delivered_as(event, "@carol:hs", &out, ts))
        .unwrap();
}
