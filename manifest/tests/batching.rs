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

/// Alice's contributing machine, given every one of `chunks` chunks of
/// carol's task `$task`; the actions that follow at 2,001.
fn alice_given(chunks: u32) -> (NodeMachine, Vec<Action>) {
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
        chunks,
    );
    let assignments: Vec<Assignment> = (0..chunks)
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
    let actions = machine.process(Input::RoomEvents(events), 2_001);
    (machine, actions)
}

fn jobs(actions: &[Action]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RunChunk { job, .. } => Some(*job),
            _ => None,
        })
        .collect()
}

/// The chunks each result event among `actions` reports.
fn reported(actions: &[Action]) -> Vec<Vec<u64>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { out, .. } if out.event_type == "org.potluck.result" => Some(
                (out.content["outcomes"].as_array().unwrap().iter())
                    .map(|o| o["chunk"].as_u64().unwrap())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn output() -> Outcome {
    Outcome::Output(json!({ "count": 1 }).into())
}

#[test]
fn a_result_with_nothing_to_batch_goes_at_once() {
    let (mut machine, actions) = alice_given(1);
    let [job] = jobs(&actions)[..] else {
        panic!("one chunk runs: {actions:?}")
    };
    let finished = machine.process(
        Input::WorkerFinished {
            job,
            outcome: output(),
        },
        2_500,
    );
    assert_eq!(reported(&finished), [vec![0]], "sent as it finished");
}

#[test]
fn a_result_waits_for_its_tasks_chunk_still_running_here_and_goes_with_it() {
    let (mut machine, actions) = alice_given(2);
    let [first, second] = jobs(&actions)[..] else {
        panic!("both chunks run, one per worker: {actions:?}")
    };
    let early = machine.process(
        Input::WorkerFinished {
            job: first,
            outcome: output(),
        },
        2_500,
    );
    assert!(reported(&early).is_empty(), "waits for the other chunk");
    let late = machine.process(
        Input::WorkerFinished {
            job: second,
            outcome: output(),
        },
        2_800,
    );
    assert_eq!(reported(&late), [vec![0, 1]], "one event for both");
}

#[test]
fn a_queue_of_chunks_with_large_outputs_is_reported_in_few_events_that_each_fit() {
    let (mut machine, mut pending) = alice_given(CHUNKS);

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
