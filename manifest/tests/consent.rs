//! A contributor sees each new script before their machine runs it, and can
//! decline it: the node state machine, scripted event by event.

use manifest::allowlist::{AllowedScript, Allowlist};
use manifest::events::{Assignment, Outgoing, TaskSpec};
use manifest::ids::{EventId, NodeId, UserId};
use manifest::node::{Action, Input, NodeMachine};
use manifest::task_kind::{ScriptTask, Split, TaskKind, DEFAULT_SCRIPT_SECONDS};
mod common;

use common::{caps, raw};
use serde_json::json;

const INTEGRITY: &str = "sha384-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The coordinator gives `$task`'s chunk 0 to `node`, as its first attempt.
fn first_chunk_to(node: &NodeId) -> Outgoing {
    let first = Assignment {
        chunk: 0,
        node: node.clone(),
        attempt: 1,
    };
    Outgoing::assign(&EventId::parse("$task").unwrap(), &[first])
}

/// Alice's machine contributes; the room allows one script; carol submits a
/// task running it, and the coordinator (alice's node) assigns its chunk.
fn alice_with_an_assigned_script_chunk() -> (NodeMachine, Vec<Action>) {
    let alice = UserId::parse("@alice:hs").unwrap();
    let node = NodeId::new(&alice, "t").unwrap();
    let caps = caps();
    let mut machine = NodeMachine::new(alice);
    machine.process(
        Input::StartContributing {
            node: node.clone(),
            caps: caps.clone(),
        },
        1_000,
    );
    let list = Allowlist {
        kernels: vec![],
        scripts: vec![AllowedScript {
            name: "tiles".into(),
            url: "https://x.org/tiles.js".into(),
            integrity: INTEGRITY.into(),
            description: "renders Mandelbrot tiles".into(),
        }],
    };
    let task = TaskSpec::new(
        TaskKind::Script(ScriptTask {
            url: "https://x.org/tiles.js".into(),
            integrity: INTEGRITY.into(),
            args: json!({}),
            split: Split::List(vec![json!(0)]),
            max_seconds: DEFAULT_SCRIPT_SECONDS,
        }),
        1,
    );
    let assign = first_chunk_to(&node);
    let events = vec![
        raw(
            "$node",
            "@alice:hs",
            &Outgoing::node_online(&node, &caps),
            1_000,
        ),
        raw("$list", "@mod:hs", &Outgoing::allowlist(&list), 1_001),
        raw("$task", "@carol:hs", &Outgoing::task(&task), 1_002),
        raw("$assign", "@alice:hs", &assign, 5_000),
    ];
    let actions = machine.process(Input::RoomEvents(events), 5_001);
    (machine, actions)
}

fn runs(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::RunChunk { .. }))
        .count()
}

#[test]
fn a_new_script_is_shown_to_the_contributor_once_and_runs_only_after_they_agree() {
    let (mut machine, actions) = alice_with_an_assigned_script_chunk();
    let asks: Vec<&AllowedScript> = actions
        .iter()
        .filter_map(|a| match a {
            Action::AskConsent { script } => Some(script),
            _ => None,
        })
        .collect();
    assert_eq!(asks.len(), 1, "{actions:?}");
    assert_eq!(asks[0].description, "renders Mandelbrot tiles");
    assert_eq!(runs(&actions), 0, "nothing runs before the friend agrees");
    let again = machine.process(Input::Tick, 6_000);
    assert!(!again.iter().any(|a| matches!(a, Action::AskConsent { .. })));

    let agreed = machine.process(
        Input::ScriptConsent {
            integrity: INTEGRITY.into(),
            allow: true,
        },
        7_000,
    );
    assert_eq!(runs(&agreed), 1);
}

#[test]
fn a_declined_script_is_announced_and_its_chunk_given_back() {
    let (mut machine, _) = alice_with_an_assigned_script_chunk();
    let declined = machine.process(
        Input::ScriptConsent {
            integrity: INTEGRITY.into(),
            allow: false,
        },
        7_000,
    );
    let mut actions = declined.clone();
    actions.extend(machine.process(Input::Tick, 60_000));
    let sent: Vec<&Outgoing> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { out, .. } => Some(out),
            _ => None,
        })
        .collect();
    let announce = sent
        .iter()
        .find(|o| o.event_type == "org.potluck.node")
        .expect("the node announces what it declines");
    assert_eq!(announce.content["caps"]["declined"], json!([INTEGRITY]));
    let result = sent
        .iter()
        .find(|o| o.event_type == "org.potluck.result")
        .expect("the chunk is given back");
    assert_eq!(result.content["outcomes"][0]["error"]["retriable"], true);
    assert_eq!(runs(&declined), 0);
}

#[test]
fn a_lease_on_work_the_machine_does_not_take_is_given_back_at_once() {
    // Bob's node coordinates and gives alice's node a chunk before the room
    // has seen her announcement, which says it takes transcriptions only.
    let alice = UserId::parse("@alice:hs").unwrap();
    let node = NodeId::new(&alice, "t").unwrap();
    let bob = NodeId::new(&UserId::parse("@bob:hs").unwrap(), "t").unwrap();
    let only_transcripts = manifest::events::NodeCaps {
        runs: Some(vec!["transcribe".into()]),
        ..caps()
    };
    let mut machine = NodeMachine::new(alice);
    machine.process(
        Input::StartContributing {
            node: node.clone(),
            caps: only_transcripts.clone(),
        },
        1_000,
    );
    let primes = TaskSpec::new(TaskKind::Primes { start: 0, end: 99 }, 1);
    let assign = first_chunk_to(&node);
    let events = vec![
        raw(
            "$bob",
            "@bob:hs",
            &Outgoing::node_online(&bob, &caps()),
            900,
        ),
        raw("$task", "@carol:hs", &Outgoing::task(&primes), 1_001),
        raw("$assign", "@bob:hs", &assign, 1_002),
        raw(
            "$node",
            "@alice:hs",
            &Outgoing::node_online(&node, &only_transcripts),
            1_003,
        ),
    ];
    let actions = machine.process(Input::RoomEvents(events), 1_004);
    assert_eq!(runs(&actions), 0, "{actions:?}");
    let given_back: Vec<&serde_json::Value> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { out, .. } if out.event_type == "org.potluck.result" => {
                Some(&out.content["outcomes"][0])
            }
            _ => None,
        })
        .collect();
    assert_eq!(given_back.len(), 1, "{actions:?}");
    assert_eq!(given_back[0]["chunk"], 0);
    let error = &given_back[0]["error"];
    assert_eq!(error["retriable"], true, "{error}");
    assert!(
        error["reason"]
            .as_str()
            .is_some_and(|e| e.contains("does not take this work")),
        "{error}"
    );
}
