//! A node with a queue of short chunks: it runs them all, and reports them
//! in few result events, each small enough for the homeserver.

use manifest::events::{Assignment, Outcome, Outgoing, TaskSpec};
use manifest::ids::{EventId, NodeId, UserId};
use manifest::limits::{MAX_CONTENT_BYTES, MAX_INLINE_OUTPUT_BYTES};
use manifest::node::{Action, Input, NodeMachine};
use manifest::task_kind::TaskKind;
mod common;

use common::{caps, raw};
use serde_json::json;
use std::collections::BTreeSet;

const CHUNKS: u32 = 60;

/// An output as large as a result may carry inline.
fn largest_output(chunk: u32) -> Outcome {
    let filler = "x".repeat(MAX_INLINE_OUTPUT_BYTES - 40);
    Outcome::Output(json!({ "chunk": chunk, "pixels": filler }).into())
}

#[test]
fn a_queue_of_chunks_with_large_outputs_is_reported_in_few_events_that_each_fit() {
    let alice = UserId::parse("@alice:hs").unwrap();
    let node = NodeId::new(&alice, "t").unwrap();
    let mut machine = NodeMachine::new(alice);
    machine.process(
        Input::StartContributing {
            node: node.clone(),
            caps: caps(),
        },
        1_000,
    );
    let task_id = EventId::parse("$task").unwrap();
    let task = TaskSpec::new(
        TaskKind::Primes {
            start: 0,
            end: 6_000,
        },
        CHUNKS,
    );
    let assignments: Vec<Assignment> = (0..CHUNKS)
        .map(|chunk| Assignment {
            chunk,
            node: node.clone(),
            attempt: 1,
        })
        .collect();
    let events = vec![
        raw(
            "$node",
            "@alice:hs",
            &Outgoing::node_online(&node, &caps()),
            1_000,
        ),
        raw("$task", "@carol:hs", &Outgoing::task(&task), 1_001),
        raw(
            "$assign",
            "@alice:hs",
            &Outgoing::assign(&task_id, &assignments),
            2_000,
        ),
    ];
    let mut pending = machine.process(Input::RoomEvents(events), 2_001);

    // Each chunk runs 300 ms; results go back to the room as the homeserver
    // would echo them. Two minutes is plenty at one event per 6.7 s.
    let mut reported = BTreeSet::new();
    let mut result_events = 0;
    let mut now = 2_001;
    while now < 120_000 && reported.len() < CHUNKS as usize {
        now += 300;
        let mut actions = std::mem::take(&mut pending);
        actions.extend(machine.process(Input::Tick, now));
        for action in actions {
            match action {
                Action::RunChunk { job, chunk, .. } => {
                    let outcome = largest_output(chunk);
                    pending
                        .extend(machine.process(Input::WorkerFinished { job, outcome }, now + 300));
                }
                Action::Send { out, .. } if out.event_type == "org.potluck.result" => {
                    let size = serde_json::to_vec(&out.content).unwrap().len();
                    assert!(size <= MAX_CONTENT_BYTES, "a result event of {size} bytes");
                    for o in out.content["outcomes"].as_array().unwrap() {
                        assert!(reported.insert(o["chunk"].as_u64().unwrap()), "sent twice");
                    }
                    result_events += 1;
                    let echo = raw(&format!("$r{result_events}"), "@alice:hs", &out, now);
                    pending.extend(machine.process(Input::RoomEvent(echo), now));
                }
                _ => {}
            }
        }
    }
    assert_eq!(reported.len(), CHUNKS as usize, "every chunk reported");
    assert!(
        result_events <= 10,
        "{result_events} result events for {CHUNKS} chunks"
    );
}
