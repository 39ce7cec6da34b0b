//! Private results: carol submits a task whose outputs must reach her alone.
//! alice's and bob's nodes run its chunks; the room sees only seals and that
//! the task finished; carol's widget gets every output by to-device message
//! and merges the result, ignoring an output whose seal the room never accepted.

mod common;

use common::{caps, raw};
use manifest::events::{Outcome, Outgoing, TaskSpec};
use manifest::ids::{EventId, NodeId, UserId};
use manifest::ledger::TaskStatus;
use manifest::node::{Action, Input, NodeMachine};
use manifest::private::{self, PrivateOutputs};
use manifest::task_kind::TaskKind;
use serde_json::{json, Value};

const NAMES: [&str; 3] = ["alice", "bob", "carol"];

fn user(name: &str) -> UserId {
    UserId::parse(format!("@{name}:hs")).unwrap()
}

fn count_primes(start: u64, end: u64) -> u64 {
    (start..end)
        .filter(|&n| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

/// A room that stamps and delivers every event to everyone, and to-device
/// messages to whom they are addressed.
struct Room {
    nodes: Vec<NodeMachine>,
    timeline: Vec<Value>,
    now: u64,
    /// To-device messages, by recipient.
    to_device: Vec<(UserId, Value)>,
    /// Chunks run, by node index.
    ran: [u32; 3],
}

impl Room {
    fn new() -> Self {
        let mut room = Room {
            nodes: NAMES.iter().map(|n| NodeMachine::new(user(n))).collect(),
            timeline: Vec::new(),
            now: 1_000,
            to_device: Vec::new(),
            ran: [0; 3],
        };
        for (node, name) in NAMES.iter().enumerate().take(2) {
            let start = Input::StartContributing {
                node: NodeId::new(&user(name), "tab").unwrap(),
                caps: caps(),
            };
            let actions = room.nodes[node].process(start, room.now);
            room.carry_out(node, actions);
        }
        room
    }

    fn carry_out(&mut self, node: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { out, .. } => self.post(node, &out),
                Action::SendToDevice { user, content } => self.to_device.push((user, content)),
                Action::RunChunk { job, work, .. } => {
                    self.ran[node] += 1;
                    let TaskKind::Primes { start, end } = work else {
                        panic!("only primes here")
                    };
                    let outcome =
                        Outcome::Output(json!({ "count": count_primes(start, end) }).into());
                    let actions =
                        self.nodes[node].process(Input::WorkerFinished { job, outcome }, self.now);
                    self.carry_out(node, actions);
                }
                _ => {}
            }
        }
    }

    fn post(&mut self, node: usize, out: &Outgoing) {
        let event = raw(
            &format!("$e{}", self.timeline.len()),
            &format!("@{}:hs", NAMES[node]),
            out,
            self.now,
        );
        self.timeline.push(event.clone());
        for to in 0..self.nodes.len() {
            let actions = self.nodes[to].process(Input::RoomEvent(event.clone()), self.now);
            self.carry_out(to, actions);
        }
    }

    fn tick(&mut self) {
        self.now += 1_000;
        for node in 0..self.nodes.len() {
            let actions = self.nodes[node].process(Input::Tick, self.now);
            self.carry_out(node, actions);
        }
    }
}

#[test]
fn a_private_result_reaches_only_its_submitter_and_the_room_sees_only_seals() {
    let mut room = Room::new();
    let mut spec = TaskSpec::new(
        TaskKind::Primes {
            start: 0,
            end: 40_000,
        },
        8,
    );
    spec.private = true;
    let actions = room.nodes[2].process(Input::Submit(spec.clone()), room.now);
    room.carry_out(2, actions);
    let task = EventId::parse(
        room.timeline
            .iter()
            .find(|e| e["type"] == "org.potluck.task")
            .and_then(|e| e["event_id"].as_str())
            .unwrap(),
    )
    .unwrap();

    // Before the real outputs: a forged one for chunk 0, which no seal matches.
    let mut carols = PrivateOutputs::default();
    carols
        .receive(&private::message(&task, 0, &json!({"count": 1})))
        .unwrap();

    for _ in 0..120 {
        room.tick();
    }
    let ledger = room.nodes[2].ledger();
    let record = ledger.task(&task).unwrap();
    let TaskStatus::Done { result } = ledger.task_status(record, room.now) else {
        panic!(
            "the task finished in the room: {:?}",
            ledger.task_status(record, room.now)
        )
    };
    assert_eq!(result, json!({"private": true, "chunks": 8}));
    assert!(
        room.ran[0] > 0 && room.ran[1] > 0,
        "both nodes ran chunks: {:?}",
        room.ran
    );

    // The room holds seals, never a count.
    let results: Vec<&Value> = room
        .timeline
        .iter()
        .filter(|e| e["type"] == "org.potluck.result")
        .collect();
    assert!(!results.is_empty());
    for event in &results {
        for outcome in event["content"]["outcomes"].as_array().unwrap() {
            manifest::seal::check_sealed(&outcome["output"]).unwrap();
        }
    }

    // Every output went to carol, and only to her.
    assert_eq!(room.to_device.len(), 8);
    assert!(room.to_device.iter().all(|(to, _)| to == &user("carol")));
    assert_eq!(carols.missing(ledger, &task), 8);
    for (_, content) in &room.to_device {
        carols.receive(content).unwrap();
    }
    assert_eq!(carols.missing(ledger, &task), 0);
    let merged = carols.result(ledger, &task, &spec).unwrap();
    assert_eq!(merged, json!({"count": count_primes(0, 40_000)}));

    // What each widget shows: the count for carol alone; the room's view for
    // the others (they received nothing), and carol's too.
    assert_eq!(carols.shown_result(ledger, &task), Some(merged));
    let others = PrivateOutputs::default();
    assert_eq!(
        others.shown_result(ledger, &task),
        Some(json!({"private": true, "waiting": 8}))
    );
    let TaskStatus::Done { result } = ledger.task_status(ledger.task(&task).unwrap(), room.now)
    else {
        panic!()
    };
    assert_eq!(result, json!({"private": true, "chunks": 8}));
}

#[test]
fn a_transcription_cannot_be_private() {
    let mut content = json!({"v": 1, "kind": "primes", "params": {"start": 0, "end": 9}, "chunks": 1, "private": true});
    assert!(manifest::validate::parse_task(&content).is_ok());
    content["kind"] = json!("transcribe");
    content["params"] = json!({"audio": {"message": "$m", "url": "mxc://hs/a", "mimetype": "audio/ogg"}, "model": "tiny.en"});
    assert_eq!(
        manifest::validate::parse_task(&content),
        Err(manifest::validate::TaskError::PrivateTranscription)
    );
}
